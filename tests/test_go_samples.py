"""The walkthrough's real Go measurement (`python -m realprof go-samples`, lab.go_samples).

One run of both parts at half the schedule's default length, shared by the tests:

* a goroutine started with a plain `go` inside `pprof.Do` carries its creator's label,
  so `request=b` holds b's and the child's CPU, and every sample of the child's own
  stack is labelled `request=b` (three binomial standard errors);
* the execution trace's CPU sample events are the profile's samples (same signals);
* the profile has a Location with two Lines (main.mix inlined into main.work);
* under Go 1.19 a second C thread calling into Go on the reused extra M gets no samples.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from lab.go_samples import measure

_run: dict[str, Any] = {}


@pytest.fixture
def data(require_tool) -> dict[str, Any]:
    require_tool("go", "apt-get install golang-go")
    require_tool("gcc", "apt-get install gcc")
    if "data" not in _run:
        _run["data"] = measure(scale=1.0)
    return _run["data"]


def test_child_goroutine_inherits_its_creators_label(data: dict[str, Any]) -> None:
    labels = data["labels"]
    expected = labels["expected"]["b"]  # b's and b-child's thread CPU x rate
    tolerance = 3 * math.sqrt(expected) + 2

    assert abs(labels["samples"]["b"] - expected) <= tolerance


def test_every_sample_of_the_child_goroutine_carries_the_inherited_label(
    data: dict[str, Any],
) -> None:
    """The child's own samples (its stack has no pprof.Do): all under request=b, as many
    as its thread CPU predicts."""
    labels = data["labels"]
    child, expected = labels["child_samples"], labels["child_expected"]

    assert set(child) == {"b"}, child
    assert expected > 10
    assert abs(child["b"] - expected) <= 3 * math.sqrt(expected) + 2


def test_trace_cpu_samples_are_the_profiles_samples(data: dict[str, Any]) -> None:
    assert data["trace"]["cpu_sample_events"] == sum(data["labels"]["samples"].values())


def test_an_inlined_call_is_one_location_with_two_lines(data: dict[str, Any]) -> None:
    assert data["labels"]["inlined_example"] == ["main.mix", "main.work"]


def test_go119_second_c_thread_callback_is_not_sampled(data: dict[str, Any]) -> None:
    if not data["go"].startswith("go1.19"):
        pytest.skip(f"the reused extra M's timer is measured for Go 1.19, not {data['go']}")
    second = data["cgo"]["secondThreadCallback"]
    first = data["cgo"]["firstThreadCallback"]

    assert second["expected"] > 5
    assert second["samples"] == 0
    assert abs(first["samples"] - first["expected"]) <= 3 * math.sqrt(first["expected"]) + 2
