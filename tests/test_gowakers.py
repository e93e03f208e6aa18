"""The Go runtime's wakers (sim.gowakers) and their measurement (lab.go_wakers).

The wakers are threads of the Go runtime that wake between ticks and take a CPU from a
busy thread. Under per-thread timers that lets a thread's expiries pile up into one
signal and an overrun, so four busy goroutines on two CPUs lose samples they did not
lose without them; the model must show it, at the rate the wakers were given.
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest

from contract.scenario import ScenarioError, validate_scenario
from lab.go_wakers import analyse, wakers_from
from sim.gowakers import mean_gap_ms
from sim.model import Simulation

DURATION_S = 4.0
# A sysmon-like waker: gaps of 2 to 10 ms (about 170 wake-ups a second), 10 µs each.
SYSMON_LIKE = {"name": "sysmon", "gap_points_ms": [2.0, 4.0, 6.0, 8.0, 10.0], "run_us": 10.0}


def go_cell(threads: int, rate_hz: int, wakers: list[dict[str, Any]] | None, **profiler):
    return validate_scenario(
        {
            "machine": {"cpus": 2, "kernel_hz": 250, "same_round_survival": 0.6},
            "profiler": {"runtime": "go1.18", "rate_hz": rate_hz, **profiler},
            "workload": {
                "duration_s": DURATION_S,
                "threads": [
                    {
                        "name": "busy",
                        "count": threads,
                        "program": [{"native": {"function": "spin", "cpu_ms": 1000}}],
                    }
                ],
                **({"runtime_wakers": wakers} if wakers is not None else {}),
            },
        }
    )


def binomial_se(capture: float, expected: float) -> float:
    return math.sqrt(max(capture * (1 - capture), 1e-4) / expected)


def test_wakers_between_ticks_cost_four_goroutines_per_thread_samples():
    without = Simulation(go_cell(4, 250, None)).run().report
    simulation = Simulation(go_cell(4, 250, [SYSMON_LIKE]))
    with_wakers = simulation.run().report
    expected = DURATION_S * 2 * 250  # two busy CPUs
    se = math.hypot(
        binomial_se(without.capture_ratio, expected),
        binomial_se(with_wakers.capture_ratio, expected),
    )
    assert simulation.wakers.wakes > 0
    assert without.capture_ratio - with_wakers.capture_ratio > 4 * se, (
        without.capture_ratio,
        with_wakers.capture_ratio,
    )


def test_a_victim_that_gets_its_cpu_back_loses_less():
    """After a waker's few µs, the thread it took the CPU from usually resumes (EEVDF);
    a queued thread running instead moves the busy threads' slices off the tick."""
    back = Simulation(go_cell(4, 250, [SYSMON_LIKE | {"victim_resumes": 1.0}])).run().report
    queued = Simulation(go_cell(4, 250, [SYSMON_LIKE | {"victim_resumes": 0.0}])).run().report
    expected = DURATION_S * 2 * 250
    se = math.hypot(
        binomial_se(back.capture_ratio, expected), binomial_se(queued.capture_ratio, expected)
    )
    assert back.capture_ratio - queued.capture_ratio > 3 * se, (
        back.capture_ratio,
        queued.capture_ratio,
    )


def test_with_a_cpu_to_spare_the_wakers_take_it_and_cost_nothing():
    without = Simulation(go_cell(1, 250, None)).run().report
    with_wakers = Simulation(go_cell(1, 250, [SYSMON_LIKE])).run().report
    assert without.samples_recorded == with_wakers.samples_recorded


def test_the_wakers_wake_at_the_rate_their_gaps_give():
    simulation = Simulation(go_cell(4, 250, [SYSMON_LIKE]))
    simulation.run()
    woke = simulation.wakers.wakes + simulation.wakers.wakes_skipped
    expected = DURATION_S * 1000 / mean_gap_ms(SYSMON_LIKE["gap_points_ms"])
    # Gaps are independent draws: the count is within a few Poisson errors (the
    # spread of uniform gaps is smaller than an exponential's).
    assert abs(woke - expected) < 4 * math.sqrt(expected), (woke, expected)


def test_mean_gap_of_quantile_points():
    assert mean_gap_ms([0.0, 2.0]) == 1.0
    assert mean_gap_ms([1.0, 1.0, 3.0]) == 1.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"runtime": "realprof"}, "workload.runtime_wakers applies to Go runtimes only"),
        (
            {"points": [3.0, 2.0, 4.0]},
            "gap_points_ms must not decrease",
        ),
        ({"points": [1.0]}, "gap_points_ms"),
    ],
)
def test_malformed_wakers_are_refused_with_one_line(change, message):
    waker = dict(SYSMON_LIKE, gap_points_ms=change.get("points", SYSMON_LIKE["gap_points_ms"]))
    with pytest.raises(ScenarioError) as error:
        go_cell(4, 250, [waker], **({"runtime": change["runtime"]} if "runtime" in change else {}))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_command_line_refuses_wakers_on_a_python_runtime(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "profiler: {runtime: realprof}\n"
        "workload:\n"
        "  duration_s: 1\n"
        "  threads: [{name: a, program: [{run: {function: f, cpu_ms: 10}}]}]\n"
        "  runtime_wakers: [{name: s, gap_points_ms: [1, 2], run_us: 5}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "sim", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "runtime_wakers applies to Go runtimes only" in done.stderr
    assert "Traceback" not in done.stderr


def trace_line(task: str, tid: int, cpu: int, ts: float, event: str, rest: str) -> str:
    return f"{task}-{tid} [{cpu:03d}] d..1. {ts:.6f}: {event}: {rest}"


def switch(prev: tuple[str, int], state: str, nxt: tuple[str, int]) -> str:
    return (
        f"prev_comm={prev[0]} prev_pid={prev[1]} prev_prio=120 prev_state={state} ==> "
        f"next_comm={nxt[0]} next_pid={nxt[1]} next_prio=120"
    )


def synthetic_trace(wakes_between: int, gap_s: float, after_tick_s: float = 0.001) -> list[str]:
    """Two busy goroutines (tids 11, 12) on CPUs 0 and 1, ticks every 4 ms on both, and a
    runtime thread (tid 20) that wakes on CPU 0 `gap_s` apart, `after_tick_s` after a tick
    (`gap_s` a whole number of ticks): each time it switches 11 out and, 10 µs later,
    sleeps and gives the CPU back."""
    busy, runtime = ("goworld", 11), ("goworld", 20)
    lines = []
    end = after_tick_s + wakes_between * gap_s + 0.004
    for k in range(int(end / 0.004) + 1):
        for cpu in (0, 1):
            lines.append(
                trace_line(
                    "goworld",
                    11 + cpu,
                    cpu,
                    k * 0.004,
                    "hrtimer_expire_entry",
                    "hrtimer=0 function=tick_nohz_handler now=0",
                )
            )
    lines.append(
        trace_line("swapper", 0, 0, 0.0000, "sched_switch", switch(("swapper", 0), "R", busy))
    )
    lines.append(
        trace_line(
            "swapper", 0, 1, 0.0000, "sched_switch", switch(("swapper", 0), "R", ("goworld", 12))
        )
    )
    for i in range(wakes_between):
        t = after_tick_s + i * gap_s
        lines.append(trace_line("goworld", 11, 0, t, "sched_switch", switch(busy, "R", runtime)))
        lines.append(
            trace_line("goworld", 20, 0, t + 10e-6, "sched_switch", switch(runtime, "S", busy))
        )
    lines.append(
        trace_line(
            "goworld", 12, 1, end, "sched_switch", switch(("goworld", 12), "S", ("swapper", 0))
        )
    )
    return lines


def test_the_analysis_finds_a_runtime_thread_waking_between_ticks():
    counts = analyse(synthetic_trace(40, 0.008), threads=2, rate_hz=150)
    (thread,) = counts["runtime_threads"].values()
    assert thread["between_ticks_wakes_per_s"] > 0
    assert thread["between_ticks_gap_deciles_ms"] == [8.0] * 9
    assert thread["median_run_us"] == 10.0
    (waker,) = wakers_from(counts)
    assert waker["gap_points_ms"][0] == waker["gap_points_ms"][-1] == 8.0
    assert waker["run_us"] == 10.0
    assert waker["victim_resumes"] == 1.0  # each time, thread 11 gets CPU 0 back
    assert counts["busy_preempted_between_ticks_per_s"] > 0


def test_a_preemption_at_the_tick_is_no_waker():
    counts = analyse(synthetic_trace(40, 0.008, after_tick_s=20e-6), threads=2, rate_hz=150)
    assert counts["busy_preempted_between_ticks_per_s"] == 0
    assert wakers_from(counts) == []


def test_a_thread_with_too_few_gaps_is_no_waker():
    counts = analyse(synthetic_trace(5, 0.008), threads=2, rate_hz=150)
    assert wakers_from(counts) == []
