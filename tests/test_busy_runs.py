"""A real run that did not get the CPUs it asked for measures a different machine.

One rule (`lab.machine.cpus_wanted`, `got_its_cpus`) serves the grid's retry of such
runs, `lab.grid_results.revalidate` for data recorded before the retry, and
`lab.calibrate.fresh_prediction`'s pairs.
"""

from __future__ import annotations

import pytest

from lab.grid_results import revalidate
from lab.machine import GOT_ITS_CPUS, cpus_wanted, got_its_cpus


@pytest.mark.parametrize(
    ("workload", "threads", "expected"),
    [
        ("native", 1, 1),
        ("native", 4, 2),
        ("python", 4, 1),
        ("python-ft", 4, 2),
        ("python-ft", 1, 1),
    ],
)
def test_threads_without_a_gil_want_a_cpu_each_up_to_the_cpus(workload, threads, expected):
    assert expected == cpus_wanted(workload, threads, cpus=2)


@pytest.mark.parametrize(
    ("share", "expected"), [(GOT_ITS_CPUS, True), (GOT_ITS_CPUS - 0.01, False)]
)
def test_a_run_got_its_cpus_when_it_used_that_share_of_their_time(share, expected):
    assert expected == got_its_cpus(share * 2 * 2.0, cpus=2, duration_s=2.0)


def grid_with(workload: str, cpu_seconds: float) -> dict:
    run = {"capture_ratio": 0.9, "cpu_seconds": cpu_seconds, "samples_in_profile": 360}
    cell = {"workload": workload, "threads": 2, "rate_hz": 100, "timer": "process"}
    return {"duration_s": 2.0, "cells": [cell | {"real": {"runs": [run]}}]}


def test_revalidate_holds_free_threaded_cells_to_a_cpu_per_thread():
    # Two free-threaded threads that got one CPU between them took turns on it.
    data = revalidate(grid_with("python-ft", cpu_seconds=2.0), cpus=2)
    assert "real" not in data["cells"][0]
    assert [note.rsplit(": ", 1)[1] for note in data["notes"]] == ["python-ft/2t/100Hz/process"]


def test_revalidate_keeps_python_threads_that_share_one_cpu():
    data = revalidate(grid_with("python", cpu_seconds=2.0), cpus=2)
    assert [run["machine_busy"] for run in data["cells"][0]["real"]["runs"]] == [False]
