"""The perf_event task-clock timer (`profiler.timer: perf`, sim/perfevents.py).

Exact facts where the model is exact: an event overflows each time its thread has used
one more period of CPU (first at one whole period, counted from when profiling starts),
its signal reaches the running thread `perf_delivery_us` later, SIGPROF does not queue,
and `python -m sim` stops before the events due at the very end of the run (SimPy's
`run(until=...)` does not process them). So one thread busy for the whole run at period P
gets exactly floor((duration − 1 ns) / P) overflows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.pprof import to_pprof_bytes
from contract.scenario import ScenarioError, validate_scenario
from contract.scenario_file import load_scenario
from sim.__main__ import EXIT_BAD_INPUT, main
from sim.model import Simulation, simulate
from sim.perfevents import PERF_MIN_PERIOD_NS, PerfEvent, perf_hrtimer_period_ns

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def busy(
    threads: int,
    cpus: int,
    rate_hz: float,
    timer: str | None = "perf",
    runtime: str = "realprof",
    duration_s: float = 2,
    kernel_hz: int = 250,
    handler_cost_us: float | None = None,
    **machine,
):
    """`threads` native threads that never leave the CPU (no GIL, no sleeps)."""
    return validate_scenario(
        {
            "name": "busy",
            "machine": {"cpus": cpus, "kernel_hz": kernel_hz, **machine},
            "profiler": {
                "runtime": runtime,
                "timer": timer,
                "rate_hz": rate_hz,
                "handler_cost_us": handler_cost_us,
            },
            "workload": {
                "duration_s": duration_s,
                "threads": [
                    {
                        "name": "spin",
                        "count": threads,
                        "program": [{"native": {"function": "c_spin", "cpu_ms": 1000}}],
                    }
                ],
            },
        }
    )


def funnel(report) -> tuple[int, ...]:
    return (
        report.signals_generated,
        report.signals_delivered,
        report.signals_dropped_pending,
        report.signals_pending_at_stop,
        report.timer_overruns,
        report.signals_discarded,
        report.samples_recorded,
        report.samples_in_profile,
    )


# -- the tick ceiling is gone ---------------------------------------------------------


@pytest.mark.parametrize("runtime", ["realprof", "go1.18", "go1.26"])
def test_one_busy_thread_gets_one_signal_per_period_of_cpu_above_hz(runtime):
    # Two CPUs: the reader wakes on the idle one and never takes CPU from the spinner.
    report = simulate(busy(1, 2, 1000, runtime=runtime, duration_s=2)).report
    # Overflows at 1, 2, ..., 1999 ms of CPU; the one due at 2000 ms is the stop instant.
    # Each is delivered 3 µs later and handled in 2 µs (realprof) or 1.5 µs (Go), long
    # before the next: nothing is dropped, nothing is pending at stop, no overruns.
    assert funnel(report) == (1999, 1999, 0, 0, 0, 0, 1999, 1999)
    assert report.cpu_seconds == 2.0
    assert report.expected_samples == 2000.0
    assert report.capture_ratio == 0.9995
    assert report.conservation_errors() == []


def test_per_thread_timer_caps_the_same_thread_at_hz():
    perf = simulate(busy(1, 2, 1000, duration_s=2)).report
    per_thread = simulate(busy(1, 2, 1000, timer="per-thread", duration_s=2)).report
    assert per_thread.samples_in_profile <= 250 * 2
    assert perf.samples_in_profile == 1999
    assert perf.timer_overruns == 0
    assert per_thread.timer_overruns > 0  # the intervals the tick could not deliver


def test_two_threads_on_two_cpus_at_5000_hz_are_captured():
    report = simulate(busy(2, 2, 5000, duration_s=2)).report
    assert report.capture_ratio >= 0.95
    assert report.signals_dropped_pending == 0
    assert report.conservation_errors() == []
    # Both threads: one overflow per 200 µs of their own CPU time (the reader takes a
    # little of it, at 100 ms intervals, from whichever thread shares its CPU).
    for row in report.threads:
        expected = int(row.true_cpu_seconds * 1e9) // 200_000
        assert expected - 1 <= row.samples <= expected
    per_thread = simulate(busy(2, 2, 5000, timer="per-thread", duration_s=2)).report
    assert per_thread.capture_ratio <= 250 / 5000


def test_overflows_follow_exact_cpu_time_across_time_slices():
    """Three threads share one CPU: each event counts only its own thread's CPU time."""
    sim = Simulation(busy(3, 1, 1000, duration_s=1))
    sim.run()
    for thread in sim.threads:
        assert thread.perf is not None
        owed = thread.sum_exec_ns // thread.perf.period_ns
        # At most the last overflow is missing: due at the stop instant, or at a
        # sched-out that had no sched-in before the end.
        assert owed - 1 <= thread.perf.fires <= owed, thread.name
    assert sim.counters.dropped_pending == 0


# -- the handler's cost is the new limit ----------------------------------------------


def test_a_period_shorter_than_the_handler_drops_pending_signals():
    """50 kHz (20 µs) with a 50 µs handler: back-to-back handlers, one per 50 µs.

    One thread alone on its CPU: overflows at 20, 40, 60, ... µs. The first is delivered
    at 23 µs (3 µs latency); each handler returns 50 µs after it began, and SIGPROF,
    pending since the first overflow after that handler's start, is delivered at once at
    sigreturn. So handlers start at 23 + 50 j µs: 4000 of them in 0.2 s. Of the 9999
    overflows (20 µs × 1..9999; the 10000th is the stop instant) the last, at 199 980
    µs, is still pending at stop, and 9999 − 4000 − 1 = 5998 found SIGPROF pending.
    """
    report = simulate(busy(1, 2, 50_000, duration_s=0.2, handler_cost_us=50)).report
    assert funnel(report) == (9999, 4000, 5998, 1, 0, 0, 4000, 4000)
    assert report.expected_samples == 10_000.0
    assert report.capture_ratio == 0.4  # period / handler cost
    assert report.conservation_errors() == []
    assert any("handler's cost is the limit" in note for note in report.notes)


def test_two_threads_never_collide():
    """Thread-directed: two threads overflowing at (nearly) the same instants drop nothing.

    A process-directed signal would find the other thread's SIGPROF pending.
    """
    report = simulate(busy(2, 2, 20_000, duration_s=0.5)).report
    assert report.signals_dropped_pending == 0
    assert report.capture_ratio >= 0.99


def test_a_slow_delivery_drops_overflows_while_pending():
    """100 kHz (10 µs periods) and a 15 µs delivery latency: half the overflows are lost.

    The overflow at 10 µs is delivered at 25 µs, so the one at 20 µs finds it pending and
    is dropped; the one at 30 µs is queued again, and so on: odd multiples of 10 µs are
    sampled, even ones dropped. A kernel tick is a return to user mode too: at 4 ms the
    tick's return delivers the signal pending since 3.99 ms early, so the overflow at
    4 ms is queued, and the parity flips at every tick. After the last tick (96 ms) the
    even ones are sampled: the last, at 99.98 ms, is delivered at 99.995 ms and the
    overflow at 99.99 ms is dropped. 9999 overflows: 5000 delivered, 4999 dropped.
    """
    report = simulate(
        busy(1, 2, 100_000, duration_s=0.1, handler_cost_us=1, perf_delivery_us=15)
    ).report
    assert funnel(report) == (9999, 5000, 4999, 0, 0, 0, 5000, 5000)
    assert report.capture_ratio == 0.5
    assert report.conservation_errors() == []


def test_the_hrtimer_period_is_at_least_10_us():
    assert PERF_MIN_PERIOD_NS == 10_000
    assert perf_hrtimer_period_ns(1000) == 1_000_000
    assert perf_hrtimer_period_ns(100_000) == 10_000
    assert perf_hrtimer_period_ns(400_000) == 10_000
    report = simulate(busy(1, 2, 400_000, duration_s=0.01, handler_cost_us=0.5)).report
    # 10 µs periods: 999 overflows in 10 ms (the 1000th is the stop instant).
    assert report.signals_generated == 999
    assert any("at least 10 µs" in note for note in report.notes)


def test_perf_event_overflow_and_pending():
    event = PerfEvent(1_000_000, thread_cpu_ns=500)
    assert event.expires_ns == 1_000_500
    assert not event.due(1_000_499)
    assert event.due(1_000_500)
    assert event.overflow()  # queued
    assert event.expires_ns == 2_000_500  # forwarded by one period: no drift
    assert not event.overflow()  # SIGPROF still pending: dropped
    assert event.take()
    assert not event.take()
    assert event.fires == 2
    assert event.remaining_ns(2_999_500) == 1_000
    assert event.remaining_ns(4_000_000) == 0


# -- scenarios, errors, determinism -----------------------------------------------------


def test_go117_and_cpython_cannot_use_perf():
    for runtime, allowed in (("go1.17", "process"), ("cpython", "process")):
        with pytest.raises(ScenarioError) as info:
            busy(1, 2, 100, runtime=runtime)
        message = str(info.value)
        assert f"runtime {runtime} cannot use timer 'perf'; allowed: {allowed}" in message


def test_go117_with_perf_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(
        "profiler: {runtime: go1.17, timer: perf}\n"
        "workload:\n"
        "  duration_s: 0.05\n"
        "  threads: [{name: w, program: [{run: {function: f, cpu_ms: 1}}]}]\n",
        encoding="utf-8",
    )
    assert main([str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"error: {path}:1: profiler: runtime go1.17 cannot use timer 'perf'" in err
    assert "allowed: process" in err


def test_perf_delivery_us_is_a_machine_parameter_with_a_default():
    assert busy(1, 2, 100).machine.perf_delivery_us == 3.0
    # The calibrated machine profile has no such key: it keeps validating.
    scenario = load_scenario(SCENARIOS / "beyond-the-tick.yaml", ["machine=this-machine"])
    assert scenario.machine.perf_delivery_us == 3.0
    with pytest.raises(ScenarioError, match=r"machine\.perf_delivery_us"):
        busy(1, 2, 100, perf_delivery_us=-1)


def test_shipped_scenario_beats_the_tick():
    path = SCENARIOS / "beyond-the-tick.yaml"
    perf = simulate(load_scenario(path)).report
    per_thread = simulate(load_scenario(path, ["profiler.timer=per-thread"])).report
    process = simulate(load_scenario(path, ["profiler.timer=process"])).report
    assert (
        perf.runtime,
        perf.timer,
        perf.rate_hz,
        perf.machine["kernel_hz"],
    ) == ("realprof", "perf", 1000, 250)
    assert perf.capture_ratio >= 0.99
    assert per_thread.capture_ratio <= 0.25
    assert process.capture_ratio < per_thread.capture_ratio
    for report in (perf, per_thread, process):
        assert report.conservation_errors() == []


def test_same_seed_gives_identical_perf_report_and_profile():
    scenario = busy(3, 2, 3000, duration_s=0.5)
    first, second = simulate(scenario), simulate(scenario)
    assert first.report.to_json() == second.report.to_json()
    assert to_pprof_bytes(first.profile) == to_pprof_bytes(second.profile)
