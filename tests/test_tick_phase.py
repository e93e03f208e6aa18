"""Nothing periodic in the model may lock onto the tick grid.

A tick charges a whole tick of CPU to whichever thread is current when it lands
(`update_process_times` -> `account_process_tick`), and ITIMER_PROF runs on that charged
clock. A thread woken exactly on tick instants is current at every tick it wakes on, so
it is charged a whole tick for a few microseconds of work, every time: the profile of
one busy thread at 100 Hz then showed 103.8% over 10 s, because Go's reader woke every
100 ms, on the grid. Real sleeps end on hrtimers, between ticks (`sim.sleeps`).

Each test sweeps one periodic thing over values at and near multiples of the 4 ms tick
(HZ=250) and asks that one busy thread's capture at 100 Hz stay within binomial noise
of 1. The bound, derived once here and used by every test:

* Tick accounting samples who is current: over `n` ticks, a thread current a fraction
  `p` of the time is charged Binomial(n, p) ticks when its phase against the grid is
  random. The busy thread (p = 1) is charged every tick, exactly. The others are the
  noise: a sleeping thread of the workload (its CPU is in the truth, so its charge is
  unbiased) and the profiler's reader, at its reads and, in realprof, at its wake-ups
  to watch for threads (its CPU is not in the truth: it adds `n·p`
  ticks on average). SE of the charged ticks: sqrt(sum n·p·(1-p)).
* The capture is the charged clock over the true CPU: relative SE = SE_ticks · tick /
  truth; the reader's mean adds n·p_reader · tick / truth.
* Two end effects that are not noise: the first expiry comes a tick late
  (`set_cpu_itimer`) and the last interval is partial: at most (interval + tick) /
  truth below 1.

Bound: |capture − 1| ≤ 3·SE + reader mean + (interval + tick)/truth. Before the fix the
reader alone put one busy thread 0.038 above 1 at 100 ms (the bound there is 0.002).
"""

from __future__ import annotations

import math

import pytest

from contract.runtimes import RUNTIMES
from contract.scenario import validate_scenario
from sim.model import simulate
from sim.reader import READER_BASE_COST_NS, WATCH_COST_NS

DURATION_S = 10
KERNEL_HZ = 250
TICK_S = 1 / KERNEL_HZ
RATE_HZ = 100
READER_COST_US_PER_SAMPLE = 0.5  # the scenario default, set explicitly below


def scenario(
    runtime: str = "go1.17",
    timer: str | None = None,
    rate_hz: float = RATE_HZ,
    reader_period_ms: float = 100,
    busy_step_ms: float = 1000,
    sleeper: tuple[float, float] | None = None,
):
    """One busy thread on a 2-CPU machine (the reader and any sleeper use the other CPU),
    and optionally a thread that runs `sleeper[0]` ms and sleeps `sleeper[1]` ms."""
    threads = [
        {
            "name": "spin",
            "count": 1,
            "program": [{"run": {"function": "main.spin", "cpu_ms": busy_step_ms}}],
        }
    ]
    if sleeper is not None:
        run_ms, sleep_ms = sleeper
        threads.append(
            {
                "name": "ticker",
                "count": 1,
                "program": [
                    {"run": {"function": "main.tick", "cpu_ms": run_ms}},
                    {"sleep_ms": sleep_ms},
                ],
            }
        )
    return validate_scenario(
        {
            "name": "tick-phase",
            "machine": {"cpus": 2, "kernel_hz": KERNEL_HZ},
            "profiler": {
                "runtime": runtime,
                "timer": timer,
                "rate_hz": rate_hz,
                "reader_period_ms": reader_period_ms,
                "reader_cost_us_per_sample": READER_COST_US_PER_SAMPLE,
            },
            "workload": {"duration_s": DURATION_S, "threads": threads},
        }
    )


def capture_bound(report, reader_period_ms: float, sleeper: tuple[float, float] | None) -> float:
    """3·SE + the reader's mean + the end effects (the module docstring derives it)."""
    ticks = DURATION_S * KERNEL_HZ
    truth_s = report.cpu_seconds
    reads = DURATION_S * 1000 / reader_period_ms
    # realprof's reader also wakes between reads to watch for threads (sim.reader).
    watch_ms = RUNTIMES[report.runtime].reader_watch_ms
    watches = DURATION_S * 1000 / watch_ms - reads if watch_ms else 0
    reader_cpu_s = (
        reads * READER_BASE_COST_NS * 1e-9
        + watches * WATCH_COST_NS * 1e-9
        + report.samples_in_profile * READER_COST_US_PER_SAMPLE * 1e-6
    )
    p_reader = reader_cpu_s / DURATION_S
    variance_ticks = ticks * p_reader * (1 - p_reader)
    if sleeper is not None:
        run_ms, sleep_ms = sleeper
        p_sleeper = run_ms / (run_ms + sleep_ms)
        variance_ticks += ticks * p_sleeper * (1 - p_sleeper)
    se = math.sqrt(variance_ticks) * TICK_S / truth_s
    reader_mean = ticks * p_reader * TICK_S / truth_s
    ends = (1 / report.rate_hz + TICK_S) / truth_s
    return 3 * se + reader_mean + ends


def assert_capture_near_one(report, reader_period_ms=100, sleeper=None) -> None:
    bound = capture_bound(report, reader_period_ms, sleeper)
    assert abs(report.capture_ratio - 1) <= bound, (report.capture_ratio, bound)


# Whole ticks (4, 8, 100, 1000 ms), and a little off them either way.
PERIODS_MS = [4, 8, 20, 96, 99.99, 100, 100.01, 104, 1000]


@pytest.mark.parametrize("reader_period_ms", PERIODS_MS)
def test_reader_period_leaves_one_busy_thread_at_one(reader_period_ms):
    report = simulate(scenario(reader_period_ms=reader_period_ms)).report
    assert_capture_near_one(report, reader_period_ms)


# Intervals of 20, 16, 12, 10, 8 and 4 ms (whole ticks), and rates just beside them.
RATES_HZ = [50, 62.5, 83.333, 99, 100, 101, 124, 125, 126, 249, 250]


@pytest.mark.parametrize(("runtime", "timer"), [("go1.17", None), ("realprof", "process")])
@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_timer_interval_leaves_one_busy_thread_at_one(rate_hz, runtime, timer):
    report = simulate(scenario(runtime, timer, rate_hz=rate_hz)).report
    assert_capture_near_one(report)


# A second thread that wakes every 4, 8 or 20 ms, exactly or a little off.
SLEEPERS_MS = [
    (0.05, 3.95),
    (0.05, 3.96),
    (0.05, 3.94),
    (0.1, 7.9),
    (1, 3),
    (2, 2),
    (4, 4),
    (0.05, 19.95),
    (10, 10),
]


@pytest.mark.parametrize(("runtime", "timer"), [("go1.17", None), ("realprof", "process")])
@pytest.mark.parametrize("sleeper", SLEEPERS_MS, ids=lambda s: f"run{s[0]}-sleep{s[1]}")
def test_a_sleeping_thread_beside_one_busy_thread_keeps_capture_at_one(sleeper, runtime, timer):
    report = simulate(scenario(runtime, timer, sleeper=sleeper)).report
    assert_capture_near_one(report, sleeper=sleeper)


# Go's scheduling points: a goroutine's step ends in execute() (the M's lazy switch to its
# own timer), at whole ticks of CPU and beside them; 1000 ms leaves it to sysmon.
STEPS_MS = [4, 3.99, 4.01, 8, 10, 12, 20, 1000]


@pytest.mark.parametrize("busy_step_ms", STEPS_MS)
def test_go_scheduling_points_leave_one_busy_thread_at_one(busy_step_ms):
    report = simulate(scenario("go1.18", busy_step_ms=busy_step_ms)).report
    assert_capture_near_one(report)
