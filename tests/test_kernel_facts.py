"""The kernel facts the simulator must reproduce (Linux kernel/time/, kernel/signal.c).

Exact values where the model is exact (aligned ticks, p = 0 or 1), tolerances from the
binomial sampling noise where a random choice is involved.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from contract.overrides import with_overrides
from contract.pprof import to_pprof_bytes
from contract.scenario import validate_scenario
from sim.cputimers import ProcessTimer, ThreadTimer, itimer_interval_ns
from sim.model import simulate


def busy(
    threads: int,
    cpus: int,
    rate_hz: float,
    runtime: str = "go1.17",
    kernel_hz: int = 250,
    duration_s: float = 5,
    timer: str | None = None,
    **machine,
):
    return validate_scenario(
        {
            "name": "busy",
            "machine": {"cpus": cpus, "kernel_hz": kernel_hz, **machine},
            "profiler": {"runtime": runtime, "rate_hz": rate_hz, "timer": timer},
            "workload": {
                "duration_s": duration_s,
                "threads": [
                    {
                        "name": "spin",
                        "count": threads,
                        "program": [{"run": {"function": "spin", "cpu_ms": 1000}}],
                    }
                ],
            },
        }
    )


def tick_rounds(duration_s: float, kernel_hz: int) -> int:
    """Tick instants strictly inside (0, duration)."""
    tick_ns = (1_000_000_000 + kernel_hz // 2) // kernel_hz
    duration_ns = round(duration_s * 1e9)
    return (duration_ns - 1) // tick_ns


@pytest.mark.parametrize("kernel_hz", [100, 250, 1000])
@pytest.mark.parametrize("rate_hz", [2000, 5000])
@pytest.mark.parametrize(("runtime", "timer"), [("go1.17", None), ("realprof", "per-thread")])
def test_one_busy_thread_caps_at_kernel_hz(kernel_hz, rate_hz, runtime, timer):
    # Two CPUs, so the reader thread never takes a tick from the busy one.
    report = simulate(busy(1, 2, rate_hz, runtime, kernel_hz, duration_s=2, timer=timer)).report
    rounds = tick_rounds(2, kernel_hz)
    # At most one signal per tick at which the thread is current, whatever the rate.
    assert report.samples_in_profile <= rounds
    # The first expiry comes a tick late; Go's M drops what it takes before its lazy
    # switch (sysmon's preemption at 10 ms), counted as discarded.
    delivered = report.samples_in_profile + report.signals_discarded_unswitched
    assert delivered >= rounds - 2
    assert report.signals_discarded_unswitched <= math.ceil(10 * kernel_hz / 1000)
    assert report.samples_in_profile / report.wall_seconds <= kernel_hz


def test_per_thread_timers_cap_at_kernel_hz_per_thread():
    report = simulate(busy(4, 4, 1000, "go1.18", duration_s=2)).report
    per_thread = [row.samples for row in report.threads]
    rounds = tick_rounds(2, 250)
    assert len(per_thread) == 4
    assert all(rounds - 5 <= n <= rounds for n in per_thread)
    # The missed intervals are not lost silently: they are reported as overruns.
    assert report.timer_overruns > 2 * report.samples_in_profile


def test_two_busy_threads_on_two_cpus_at_100hz_lose_nothing():
    report = simulate(busy(2, 2, 100, "go1.17")).report
    assert report.signals_dropped_pending == 0
    assert report.samples_lost_overflow == 0
    # Expected samples are continuous; the profile loses at most the first interval
    # (the first expiry is a tick late) and the last partial one.
    assert report.expected_samples - 3 <= report.samples_in_profile <= report.expected_samples


def test_go117_many_threads_hit_the_250_percent_ceiling():
    """golang/go #35057: 16 busy threads on 16 CPUs, aligned ticks, p = 0."""
    report = simulate(busy(16, 16, 100, "go1.17", same_round_survival=0.0)).report
    assert report.capture_ratio <= 0.25
    # Exactly one delivered signal per tick round, for the whole process; the two
    # before the Ms' lazy switch at 12 ms (ticks at 4 and 8 ms) are dropped by sigprof.
    assert report.signals_delivered == tick_rounds(5, 250)
    assert report.signals_discarded_unswitched == 2
    assert report.samples_in_profile == tick_rounds(5, 250) - 2
    assert report.profile_cpu_percent == pytest.approx(250, abs=1)
    assert report.signals_dropped_pending == report.signals_generated - report.signals_delivered


def test_go118_per_thread_timers_lift_the_ceiling():
    report = simulate(busy(16, 16, 100, "go1.18", same_round_survival=0.0)).report
    assert report.capture_ratio >= 0.95
    assert report.conservation_errors() == []
    # The process timer is still armed; its signals land on Ms with their own timers.
    assert report.signals_discarded > 0


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_saturated_capture_follows_the_same_round_bound(p):
    """Walkthrough chapter 3: capture = min(1, HZ·(1 + p·(C − 1)) / (C·R)) when R ≥ HZ."""
    cpus, rate, hz = 4, 500, 250
    report = simulate(busy(cpus, cpus, rate, "go1.17", same_round_survival=p)).report
    bound = min(1.0, hz * (1 + p * (cpus - 1)) / (cpus * rate))
    # Survival is a coin per extra generation: binomial noise on the delivered count.
    extra = report.signals_generated - tick_rounds(5, hz)
    se = math.sqrt(max(extra, 1) * p * (1 - p)) / report.expected_samples
    assert report.capture_ratio == pytest.approx(bound, abs=3 * se + 0.01)


def test_survival_after_a_switch_needs_a_switch():
    """One busy thread per CPU never switches: the after-switch survival changes nothing."""
    base = busy(2, 2, 500, "go1.17", duration_s=2, same_round_survival=0.3)
    other = busy(
        2,
        2,
        500,
        "go1.17",
        duration_s=2,
        same_round_survival=0.3,
        same_round_survival_after_switch=1.0,
    )
    # The reader stays asleep until the end: its wake-ups would preempt a busy thread.
    quiet = {"profiler.reader_period_ms": 60_000}
    first = simulate(with_overrides(base, quiet)).report
    second = simulate(with_overrides(other, quiet)).report
    assert first.signals_dropped_pending > 0
    assert (first.signals_delivered, first.samples_in_profile, first.signals_dropped_pending) == (
        second.signals_delivered,
        second.samples_in_profile,
        second.signals_dropped_pending,
    )


@pytest.mark.parametrize("after_switch, bound", [(0.0, 0.25), (1.0, 0.5)])
def test_oversubscribed_checks_survive_with_the_after_switch_chance(after_switch, bound):
    """Four busy threads on two CPUs: every tick preempts, so every check runs after a
    switch; saturated at 500 Hz, capture is HZ·(1 + p_switch)/(2·R) whatever p is."""
    report = simulate(
        busy(
            4,
            2,
            500,
            "go1.17",
            duration_s=2,
            same_round_survival=1.0 - after_switch,
            same_round_survival_after_switch=after_switch,
        )
    ).report
    assert report.capture_ratio == pytest.approx(bound, abs=0.02)


def test_skewed_ticks_remove_the_collisions():
    report = simulate(busy(4, 4, 500, "go1.17", tick_skew=True)).report
    assert report.signals_dropped_pending == 0
    assert report.capture_ratio == pytest.approx(0.5, abs=0.01)  # each CPU: HZ/R


def test_cpu_check_bias_skews_attribution_like_golang_issue_14434():
    """Equal work, 80/20 in the profile when CPU 0's check wins four rounds in five."""
    scenario = busy(2, 2, 100, "go1.17", duration_s=10, cpu_check_bias=[4, 1])
    # Keep the reader off the CPUs until the end: it would take rounds from one CPU.
    scenario = with_overrides(scenario, {"profiler.reader_period_ms": 60_000})
    report = simulate(scenario).report
    shares = sorted(row.share for row in report.threads)
    n = report.samples_in_profile
    se = math.sqrt(0.8 * 0.2 / n)
    assert shares[1] == pytest.approx(0.8, abs=3 * se)
    assert [row.true_share for row in report.threads] == [0.5, 0.5]


def test_fair_kernel_splits_equal_work_evenly():
    report = simulate(busy(2, 2, 100, "go1.17", duration_s=10)).report
    se = math.sqrt(0.25 / report.samples_in_profile)
    for row in report.threads:
        assert row.share == pytest.approx(0.5, abs=3 * se)


def test_go118_switches_per_thread_timers_lazily():
    result = simulate(busy(2, 2, 100, "go1.18", duration_s=1))
    # Busy goroutines reach execute() when sysmon preempts them after 10 ms of running;
    # the switch is seen at the next tick.
    assert 10 <= result.stats["lazy_switch_last_ms"] <= 10 + 4
    assert any("lazily" in note for note in result.report.notes)


@pytest.mark.parametrize("runtime", ["go1.17", "go1.18", "go1.26"])
@pytest.mark.parametrize("timer", [None, "process"])
def test_process_signals_to_unswitched_ms_are_discarded_not_recorded(runtime, timer):
    # sigprof returns while mp.profilehz == 0, and an M sets it only at its next
    # execute() (src/runtime/proc.go): what it takes before the switch passes
    # validSIGPROF and is dropped (Go 1.17's profilehz included).
    scenario = busy(4, 4, 100, runtime, duration_s=0.2, timer=timer, same_round_survival=0.0)
    result = simulate(scenario, trace_window_ms=(0, 200))
    report = result.report
    # Busy goroutines reach execute() by sysmon's preemption after 10 ms, seen at the
    # next tick (12 ms at HZ=250); 4 busy CPUs charge the process clock 16 ms a tick, so
    # the process timer signals at each tick before it (4 and 8 ms).
    switched_ms = math.ceil(10 / 4) * 4
    before = [kind for t, kind, _ in result.trace.events if t / 1e6 < switched_ms]
    assert before.count("deliver") == 2
    assert before.count("record") == 0
    assert report.signals_discarded_unswitched == before.count("deliver")
    assert report.samples_recorded + report.signals_discarded == report.signals_delivered
    assert report.conservation_errors() == []


def test_same_seed_gives_byte_identical_report_and_profile():
    scenario = busy(3, 2, 250, "go1.17", duration_s=1, same_round_survival=0.5)
    first, second = simulate(scenario), simulate(scenario)
    assert first.report.to_json() == second.report.to_json()
    assert to_pprof_bytes(first.profile) == to_pprof_bytes(second.profile)
    other = simulate(dataclasses.replace(scenario, seed=2))
    assert other.report.to_json() != first.report.to_json()


def test_process_timer_drains_a_backlog_one_interval_per_check():
    interval = itimer_interval_ns(1000)
    timer = ProcessTimer(interval, tick_ns=4_000_000)
    timer.clock_ns = 50_000_000  # far behind: many intervals overdue
    backlog = timer.backlog_ns
    assert timer.check()
    assert timer.backlog_ns == backlog - interval
    fires = 0
    while timer.check():
        fires += 1
    assert timer.backlog_ns == 0
    assert fires == backlog // interval


def test_thread_timer_reports_skipped_intervals_as_overrun():
    timer = ThreadTimer(1_000_000, thread_cpu_ns=0)
    assert timer.expires_ns == 1_000_000
    assert timer.due(4_000_000)
    timer.fire()
    assert not timer.due(10_000_000)  # REQUEUE_PENDING until the signal is dequeued
    assert timer.rearm_at_dequeue(4_500_000) == 3  # 1, 2, 3, 4 ms elapsed: three extra
    assert timer.expires_ns == 5_000_000


def test_setitimer_interval_is_whole_microseconds_like_go():
    assert itimer_interval_ns(300) == 3_333_000
    assert itimer_interval_ns(100) == 10_000_000


@pytest.mark.parametrize(
    ("runtime", "profile_s"),
    # Stop at 0.25 s. Up to Go 1.25 the writer wakes when its pending 100 ms sleep ends
    # (it slept after its read at ~0.2 s: ~0.3 s), reads what is left, and reports EOF
    # one sleep later (~0.4 s): duration_nanos is its wall time
    # (src/runtime/pprof/pprof.go profileWriter, golang/go #63043). Its sleeps end on
    # hrtimers a little after their length (the slack, sim.sleeps) and start after each
    # read's work, so the wake-ups drift late by at most 3 x (50 us slack + the reads'
    # cost, well under 100 us): 1 ms of room. From Go 1.26 the stop wakes the blocked
    # reader at once.
    [("go1.17", 0.4), ("go1.18", 0.4), ("go1.26", 0.25), ("realprof", 0.25)],
)
def test_profile_duration_is_the_writers_wall_time(runtime, profile_s):
    result = simulate(busy(1, 2, 100, runtime, duration_s=0.25))
    report = result.report
    assert profile_s <= result.profile.duration_ns / 1e9 < profile_s + 0.001
    profile_s = result.profile.duration_ns / 1e9
    assert report.profile_seconds == pytest.approx(profile_s)
    # go tool pprof divides by the duration: a short Go profile shows less CPU.
    shown = report.samples_in_profile / 100 / profile_s * 100
    assert report.pprof_cpu_percent == pytest.approx(shown)
    assert report.wall_seconds == pytest.approx(0.25)


def test_profile_duration_follows_the_writers_own_sleeps():
    # A writer whose reads take 20 ms (20 samples a read at 1 ms each) starts each
    # 100 ms sleep 20 ms after its wake-up, so its wake-ups fall at ~0.1, ~0.22, ~0.34 s:
    # stopped at 0.25 s, it reads what is left at ~0.34 s and reports EOF a sleep later,
    # ~0.44 s, not on the 100 ms grid (0.3 + 0.1 = 0.4 s).
    scenario = busy(2, 2, 100, "go1.18", duration_s=0.25)
    scenario = with_overrides(scenario, {"profiler.reader_cost_us_per_sample": 1000})
    duration_s = simulate(scenario).profile.duration_ns / 1e9
    assert 0.43 < duration_s < 0.46, duration_s
