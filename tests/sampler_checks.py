"""Checks the real-sampler tests share (imported by tests/test_sampler*.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


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


def target_root() -> Path:
    """The checkout whose ``realprof`` a target subprocess imports.

    The first ``PYTHONPATH`` entry that holds ``realprof/sampler.py`` (so that
    ``PYTHONPATH=/other/tree pytest ...`` runs the targets against that tree, e.g. the
    code before a change), else this repository. pytest's own ``pythonpath = ["."]``
    puts this repository first in the test process itself, so ``realprof.__file__``
    there would always name this repository.
    """
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and (Path(entry) / "realprof" / "sampler.py").is_file():
            return Path(entry).resolve()
    return Path(__file__).resolve().parent.parent


def run_target(
    source: str, *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Runs ``python -c source args...`` under a hard timeout, output captured as text.

    A crash or a hang fails the calling test instead of taking pytest down. The
    target imports realprof from ``target_root()`` and starts without faulthandler
    (``PYTHONFAULTHANDLER`` removed: the targets that want it enable it themselves).
    """
    root = target_root()
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(root) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("PYTHONFAULTHANDLER", None)
    full_env.update(env or {})
    try:
        return subprocess.run(
            [sys.executable, "-c", source, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=root,
            env=full_env,
        )
    except subprocess.TimeoutExpired as expired:
        err = expired.stderr or b""
        if isinstance(err, bytes):
            err = err.decode(errors="replace")
        pytest.fail(f"the target did not finish within {timeout} s; stderr so far:\n{err[-3000:]}")


def target_result(proc: subprocess.CompletedProcess, marker: str = "RESULT ") -> dict[str, Any]:
    """The JSON a target printed after ``marker``; skips the test on a ``SKIP`` line
    (the target could not run here, e.g. the kernel refused a perf event), fails it
    with the target's stderr if the target died or printed no result."""
    for line in proc.stdout.splitlines():
        if line.startswith("SKIP "):
            pytest.skip(line[len("SKIP ") :])
    if proc.returncode != 0:
        how = (
            f"killed by {signal.Signals(-proc.returncode).name}"
            if proc.returncode < 0
            else f"exit status {proc.returncode}"
        )
        pytest.fail(f"the target failed ({how}):\n{proc.stderr[-4000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith(marker):
            return json.loads(line[len(marker) :])
    pytest.fail(f"the target printed no {marker.strip()} line:\n{proc.stdout}\n{proc.stderr}")
