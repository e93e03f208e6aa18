"""A free-threaded CPython (PEP 703, python3.14t) in the real world, and the issue's check.

The simulator's side (`profiler.free_threaded`: no GIL, Python steps in parallel) is
pinned in tests/test_runtimes.py. Here: the real world refuses an interpreter whose GIL
contradicts the scenario, `realprof scenario --python` runs the command under another
interpreter, and, on a free-threaded build, issue 15's check: four busy Python threads
on two CPUs under the process timer at 250 Hz capture at least 0.1 less without the GIL
than with it (`PYTHON_GIL=1` on the same build), the simulator predicts the capture
within the run-to-run scatter, and the per-thread and perf_event timers bring it back
(per-thread as far as the model says it can: see the test).

Noise: capture ratios of the same real run scatter by a few hundredths here (the grid's
cells, docs/data/grid.json). The prediction is held to the larger of the measured range
of the runs and the grid's tolerance, 0.05.
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
from pathlib import Path

import cli_runs
import pytest

from contract.scenario_file import load_scenario
from lab.grid_cells import cell_key, cell_scenario, cells
from lab.interpreters import gil_enabled, report_under
from lab.machine import machine_here
from sim.model import simulate

REPO = Path(__file__).resolve().parent.parent
RUNS = 3
DURATION_S = 2.0
TOLERANCE = 0.05  # the grid's (lab/grid_results.py render)


def run_realprof(*args: str) -> subprocess.CompletedProcess[str]:
    return cli_runs.run_realprof(*args, timeout=300)


@pytest.mark.skipif(not gil_enabled(), reason="this Python runs without the GIL")
def test_a_free_threaded_scenario_is_refused_on_a_python_with_the_gil() -> None:
    result = run_realprof("scenario", "free-threaded-ceiling")

    version = sys.version.split()[0]
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "python -m realprof scenario: error: free-threaded-ceiling: profiler.free_threaded: "
        f"this Python ({version}) has the GIL; run it on a free-threaded build: python -m "
        "realprof scenario free-threaded-ceiling --python PATH/TO/python3.14t\n",
    )


def test_a_python_that_is_not_there_is_one_line() -> None:
    result = run_realprof("scenario", "quickstart", "--python", "/nonexistent/python3.14t")

    assert (result.returncode, result.stderr) == (
        2,
        "python -m realprof scenario: error: --python /nonexistent/python3.14t: cannot run: "
        "No such file or directory\n",
    )


def test_the_free_threaded_cells_are_python_threads_without_the_gil() -> None:
    free = [cell for cell in cells(quick=False) if cell[0] == "python-ft"]

    assert {(threads, timer) for _, threads, _, timer in free} == {
        (n, t) for n in (1, 2, 4) for t in ("process", "per-thread")
    }
    assert {rate for _, _, rate, _ in free} == {100, 200, 250, 500, 1000}
    scenario = cell_scenario("python-ft", 4, 250, "process", 1.0, {"cpus": 2})
    assert scenario.profiler.free_threaded
    assert cell_key("python-ft", 4, 250, "process") == "python-ft/4t/250Hz/process"


@pytest.mark.real
def test_another_python_runs_the_scenario_command() -> None:
    # The plumbing of --python, on this very interpreter: the child reads the same file
    # and prints the report the command prints.
    result = run_realprof(
        "scenario",
        "realprof-per-thread",
        "--set",
        "workload.duration_s=0.5",
        "--json",
        "--python",
        sys.executable,
    )

    assert result.returncode == 0, result.stderr
    assert '"world": "real"' in result.stdout


def _capture(python: Path, scenario, gil: bool) -> float:
    env = {"PYTHON_GIL": "1"} if gil else {}
    return report_under(python, scenario, env).capture_ratio


@pytest.mark.real
def test_without_the_gil_python_threads_meet_the_process_timer_ceiling(
    free_threaded_python: Path,
) -> None:
    """Issue 15's check, on python3.14t (the fixture skips without one).

    The issue asked per-thread timers to bring the capture back above 0.95. At 250 Hz on
    an HZ=250 kernel, four busy threads on two CPUs do not get there: each thread's timer
    is due every tick of its own CPU time, a thread switched out between ticks escapes
    the tick-time check, and the model predicts 0.92 (the GIL-free native cell
    native/4t/250Hz/per-thread measured 0.908, docs/data/grid.json). So per-thread is held
    to the model, and the perf_event timer, which no tick caps, to 0.95.
    """
    base = load_scenario(REPO / "scenarios" / "free-threaded-ceiling.yaml")
    machine, _ = machine_here(base, None)
    free = cell_scenario("python-ft", 4, 250, "process", DURATION_S, machine)
    with_gil = cell_scenario("python", 4, 250, "process", DURATION_S, machine)
    per_thread = cell_scenario("python-ft", 4, 250, "per-thread", DURATION_S, machine)
    perf = cell_scenario("python-ft", 4, 250, "perf", DURATION_S, machine)

    # Interleaved, so a drift of the machine hits both worlds alike. Each free-threaded
    # run checks sys._is_gil_enabled() is False in every thread (lab.workload).
    free_runs, gil_runs, per_thread_runs = [], [], []
    for _ in range(RUNS):
        free_runs.append(_capture(free_threaded_python, free, gil=False))
        gil_runs.append(_capture(free_threaded_python, with_gil, gil=True))
        per_thread_runs.append(_capture(free_threaded_python, per_thread, gil=False))
    perf_capture = _capture(free_threaded_python, perf, gil=False)

    def predicted(scenario) -> float:
        return statistics.median(
            simulate(dataclasses.replace(scenario, seed=seed)).report.capture_ratio
            for seed in range(1, RUNS + 1)
        )

    def within_scatter(runs: list[float], scenario) -> bool:
        gap = abs(statistics.median(runs) - predicted(scenario))
        return gap <= max(max(runs) - min(runs), TOLERANCE)

    assert statistics.median(gil_runs) - statistics.median(free_runs) >= 0.1, (
        free_runs,
        gil_runs,
    )
    assert within_scatter(free_runs, free), (free_runs, predicted(free))
    assert within_scatter(per_thread_runs, per_thread), (per_thread_runs, predicted(per_thread))
    assert perf_capture > 0.95, perf_capture
