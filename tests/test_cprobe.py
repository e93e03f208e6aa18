"""The C probe (lab/cprobe.c, lab/cprobe.py) and its place in the validation grid."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from lab import cprobe, grid_command
from lab.grid import resimulate
from lab.grid_cells import cell_scenario
from lab.grid_results import render
from lab.machine import GCC_INSTALL_HINT
from sim.model import simulate


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "sigprof-lab" / "cprobe"


def test_build_is_cached_by_the_source_hash(cache: Path, require_tool) -> None:
    require_tool("gcc", GCC_INSTALL_HINT)
    first = cprobe.build()
    built_at = first.stat().st_mtime_ns
    second = cprobe.build()
    assert (second, second.stat().st_mtime_ns) == (first, built_at)
    assert first.parent == cache


def test_without_gcc_the_error_says_how_to_install_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(cprobe.CProbeError, match="apt-get install gcc"):
        cprobe.build()


def test_grid_with_cprobe_but_no_gcc_is_one_line_and_exit_2(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code = grid_command.main(
        ["--cprobe", "--worlds", "sim,real", "--cells", "native/2t/200Hz/process"]
    )
    err = capsys.readouterr().err
    assert (code, err.count("\n"), "apt-get install gcc" in err) == (2, 1, True)


def test_grid_cprobe_needs_the_real_world(capsys: pytest.CaptureFixture[str]) -> None:
    code = grid_command.main(["--cprobe", "--worlds", "sim"])
    err = capsys.readouterr().err
    assert (code, err.startswith("error: --cprobe"), err.count("\n")) == (2, True, 1)


def test_the_probe_runs_only_in_native_process_cells() -> None:
    cells = [("native", 2, 200, "process"), ("python", 2, 200, "process")]
    cells += [("native", 2, 200, "per-thread"), ("native", 4, 1000, "perf")]
    assert [cprobe.probes(cell) for cell in cells] == [True, False, False, False]


@pytest.mark.real
def test_one_busy_thread_below_the_tick_rate_gets_every_sample(cache: Path, require_tool) -> None:
    """One busy thread at 100 Hz: one expiry per 2.5 ticks, never two in a round, so no
    collision can drop one: every expiry is delivered (capture 1 within the tick's
    granularity of the process clock)."""
    require_tool("gcc", GCC_INSTALL_HINT)
    run = cprobe.probe_run(1, 100, 1.0, 250)
    if run["cpu_seconds"] < 0.9:
        pytest.skip(f"the busy thread got {run['cpu_seconds']:.2f} CPU-s of 1 (machine busy)")
    assert 0.95 <= run["capture_ratio"] <= 1.05
    assert run["samples_per_thread"][0] == run["samples"]


@pytest.mark.real
def test_the_handler_stamps_every_delivery_in_order_of_threads(cache: Path, require_tool) -> None:
    require_tool("gcc", GCC_INSTALL_HINT)
    run = cprobe.probe_run(2, 400, 0.5, 250, keep_times=True)
    assert len(run["times_ns"]) == run["samples"] == sum(run["samples_per_thread"])
    assert set(run["thread_index"]) <= {0, 1}


def test_the_grid_table_shows_the_probe_beside_realprof() -> None:
    def world(capture: float) -> dict:
        return {"capture_ratio": capture, "runs": []}

    data = {
        "command": "python -m realprof grid --cprobe",
        "repeat": 1,
        "cells": [
            {
                "workload": "native",
                "threads": 2,
                "rate_hz": 200,
                "timer": "process",
                "sim": world(0.85),
                "real": world(0.87),
                "sim-cprobe": world(0.85),
                "cprobe": world(0.95),
            }
        ],
    }
    text = render(data)
    rows = [line.split() for line in text.splitlines() if line.strip().startswith("native/2t")]
    assert rows == [
        ["native/2t/200Hz/process", "0.850", "0.870", "+0.020"],
        ["native/2t/200Hz/process", "0.850", "0.950", "+0.100!"],
    ]
    assert "C probe: 0/1 cells within 0.05 of the model; largest gap +0.100" in text


def test_the_probe_is_predicted_with_the_survival_its_own_runs_counted() -> None:
    """p belongs to the process: the probe's cells are simulated with the medians of the
    probe's survival runs, realprof's with realprof's (here far apart, so a mix-up shows)."""
    machine = {
        "cpus": 2,
        "kernel_hz": 250,
        "same_round_survival": 0.6,
        "same_round_survival_after_switch": 0.2,
    }
    probe = {"same_round_survival": 0.6, "same_round_survival_after_switch": 1.0}
    data = {
        "cells": [
            {
                "workload": "native",
                "threads": 4,
                "rate_hz": 200,
                "timer": "process",
                "sim-cprobe": {},
            }
        ],
        "duration_s": 0.5,
        "repeat": 1,
        "model_machine": machine,
        "cprobe_calibration": {"runs": [], **probe},
    }
    resimulate(data, progress=False)
    scenario = cell_scenario("native", 4, 200, "process", 0.5, machine | probe, "cprobe")
    expected = simulate(dataclasses.replace(scenario, seed=1)).report.capture_ratio

    assert data["cells"][0]["sim-cprobe"]["capture_ratio"] == expected
