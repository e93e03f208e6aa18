"""The validation grid's cells: which experiments the grid runs, and each one's scenario.

A cell is `(workload, threads, rate_hz, timer)`: busy threads {1, 2, 4} × rate {100, 200,
250, 500, 1000} Hz × timer {process, per-thread}, and × rate {100, 250, 1000, 2000,
5000} Hz for the perf_event timer (which the tick does not cap), once with busy native
(GIL-free) threads and once with busy Python threads; and, on a free-threaded CPython
(`python-ft`: python3.14t, no GIL, `profiler.free_threaded`), busy Python threads under the
process and per-thread timers only. `QUICK_CELLS` is one cell per regime. `cell_scenario`
writes a cell as a scenario, for the simulator and for the real worlds alike; `cell_key`
names it in `grid.json` and on the command line. The grid (`lab.grid`) runs the cells;
calibration (`lab.calibrate`) predicts one of them.
"""

from __future__ import annotations

from typing import Any

from contract.runtimes import RUNTIMES
from contract.scenario import Scenario, validate_scenario

THREADS = (1, 2, 4)
RATES_HZ = (100, 200, 250, 500, 1000)
TIMERS = ("process", "per-thread", "perf")
PERF_RATES_HZ = (100, 250, 1000, 2000, 5000)
WORKLOADS = ("native", "python", "python-ft")
# The workloads that run Python bytecode, and the one that runs it without the GIL.
PYTHON_WORKLOADS = ("python", "python-ft")
FREE_THREADED_WORKLOAD = "python-ft"
# The timers of the free-threaded cells (issue 15: the process-timer ceiling and its cure).
FREE_THREADED_TIMERS = ("process", "per-thread")
QUICK_CELLS = (
    # One cell per regime: unsaturated, tick-capped per thread, process-timer collisions,
    # the GIL, oversubscription.
    ("native", 2, 100, "per-thread"),
    ("native", 2, 1000, "per-thread"),
    ("native", 2, 500, "process"),
    ("native", 1, 1000, "process"),
    ("python", 2, 100, "per-thread"),
    ("python", 2, 500, "process"),
    ("native", 4, 250, "per-thread"),
    ("native", 2, 1000, "perf"),
    ("native", 2, 5000, "perf"),
    # No GIL: Python threads in parallel meet the process timer's ceiling.
    ("python-ft", 4, 250, "process"),
)


def cell_key(workload: str, threads: int, rate_hz: int, timer: str) -> str:
    """The cell's name, e.g. native/2t/500Hz/process."""
    return f"{workload}/{threads}t/{rate_hz}Hz/{timer}"


def cell_scenario(
    workload: str,
    threads: int,
    rate_hz: int,
    timer: str,
    duration_s: float,
    machine: dict[str, Any],
    runtime: str = "realprof",
    runtime_wakers: list[dict[str, Any]] | None = None,
) -> Scenario:
    """The cell as a scenario: `threads` busy threads in one spinning step of depth 4;
    a Go model's twin may replay the Go runtime's wakers measured beside it."""
    step = "native" if workload == "native" else "run"
    function = "spin_native" if workload == "native" else "spin_python"
    free_threaded = {"free_threaded": True} if workload == FREE_THREADED_WORKLOAD else {}
    return validate_scenario(
        {
            "name": cell_key(workload, threads, rate_hz, timer),
            "machine": machine,
            "profiler": {
                "runtime": runtime,
                # A Go model arms the timers of its release (go1.18 on: both).
                "timer": RUNTIMES[runtime].default_timer if RUNTIMES[runtime].go else timer,
                "rate_hz": rate_hz,
                **free_threaded,
            },
            "workload": {
                "duration_s": duration_s,
                "threads": [
                    {
                        "name": "busy",
                        "count": threads,
                        "program": [{step: {"function": function, "cpu_ms": 1000, "depth": 4}}],
                    }
                ],
                **({"runtime_wakers": runtime_wakers} if runtime_wakers else {}),
            },
        }
    )


def as_cell(entry: dict[str, Any]) -> tuple[str, int, int, str]:
    """A grid.json cell entry as the (workload, threads, rate_hz, timer) it measured."""
    return entry["workload"], entry["threads"], entry["rate_hz"], entry["timer"]


def grid_order(cell: tuple[str, int, int, str]) -> tuple[int, int, int, int]:
    """The grid's order: workload, threads, rate, timer."""
    workload, threads, rate_hz, timer = cell
    return WORKLOADS.index(workload), threads, rate_hz, TIMERS.index(timer)


def cells(quick: bool, timers: tuple[str, ...] = TIMERS) -> list[tuple[str, int, int, str]]:
    """The cells of the grid (or of the quick grid) for `timers`, in the grid's order."""
    if quick:
        return [cell for cell in QUICK_CELLS if cell[3] in timers]
    out = []
    for w in WORKLOADS:
        for n in THREADS:
            for t in timers:
                if w == FREE_THREADED_WORKLOAD and t not in FREE_THREADED_TIMERS:
                    continue
                for r in PERF_RATES_HZ if t == "perf" else RATES_HZ:
                    out.append((w, n, r, t))
    return sorted(out, key=grid_order)
