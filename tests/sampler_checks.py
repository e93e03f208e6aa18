"""Checks the real-sampler tests share (imported by tests/test_sampler*.py)."""

from __future__ import annotations

from typing import Any


def signals_accounted(stats: dict[str, Any]) -> int:
    """Where the delivered signals went, by realprof's funnel (realprof/sampler.py):
    recorded + lost to a full buffer + discarded + merged. Conservation is
    ``stats["signals_delivered"] == signals_accounted(stats)``."""
    return (
        stats["samples_recorded"]
        + stats["samples_lost_overflow"]
        + stats["signals_discarded"]
        + stats["signals_merged"]
    )
