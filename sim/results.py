"""A run's result: the report, with the funnel's counts and the losses explained in words.

`sim_report` turns the counts kept by the mechanisms into a `contract.report.Report`:

* the funnel, stage by stage: signals generated (`sim.signals`' counters, which
  `sim.cputimers`' and `sim.perfevents`' expiries feed), timer overruns, expiries
  dropped because a SIGPROF was pending, signals still pending at stop, delivered,
  merged, discarded, recorded and lost to a full buffer (`sim.handler`);
* the profile's samples by leaf function and by thread (`contract.profile`);
* the ground truth, exact: the CPU time each leaf function and each workload thread
  received, from the machine's accounting (`sim.machine`); the reader and the Windows
  sampler thread are not part of it;
* notes: first, for a scenario that names a Go release (`runtime: go1.21`), the model
  that stands for it and what that model does; then one per cause of loss that happened,
  in the order of the pipeline.

Nothing here changes a count: the report is built after the run has stopped, from
numbers each mechanism kept where its events happened. The funnel's conservation (every
generated signal ends in exactly one stage) is checked by `Report.conservation_errors`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from contract.profile import Profile
from contract.report import Report, build_report
from contract.scenario import Scenario
from sim.handler import Handler
from sim.machine import Machine, Thread
from sim.perfevents import PERF_MIN_PERIOD_NS
from sim.runtimes import RuntimeSpec
from sim.signals import SignalCounters
from sim.trace import Trace


@dataclass
class SimResult:
    scenario: Scenario
    report: Report
    profile: Profile
    trace: Trace | None
    stats: dict[str, Any]


def sim_report(
    scenario: Scenario,
    spec: RuntimeSpec,
    *,
    counters: SignalCounters,
    handler: Handler,
    machine: Machine,
    threads: list[Thread],
    profile: Profile,
    duration_ns: int,
    perf_period_ns: int,
    switch_times_ns: list[int],
) -> Report:
    """The report of a stopped run."""
    c = counters
    cpu_ns = sum(machine.thread_cpu_ns.get(t.name, 0) for t in threads)
    counts = {
        "signals_generated": c.generated,
        "timer_overruns": c.timer_overruns,
        "signals_dropped_pending": c.dropped_pending,
        "signals_pending_at_stop": c.pending_at_stop,
        "signals_delivered": c.delivered,
        "signals_merged": handler.merged,
        "signals_discarded": handler.discarded,
        "signals_discarded_duplicate": handler.discarded_duplicate,
        "signals_discarded_unswitched": handler.discarded_unswitched,
        "signals_discarded_after_stop": handler.discarded_after_stop,
        "samples_recorded": handler.recorded,
        "samples_lost_overflow": handler.lost_overflow,
    }
    notes = _notes(scenario, spec, c, handler, threads, perf_period_ns, switch_times_ns)
    return build_report(
        world="sim",
        scenario=scenario.name,
        runtime=scenario.profiler.model,
        timer=spec.timer,
        seed=scenario.seed,
        machine=dataclasses.asdict(scenario.machine),
        rate_hz=scenario.profiler.rate_hz,
        wall_seconds=duration_ns / 1e9,
        cpu_seconds=cpu_ns / 1e9,
        counts=counts,
        function_samples=profile.by_function(),
        thread_samples=profile.by_thread(),
        true_function_cpu_s={k: v / 1e9 for k, v in machine.function_cpu_ns.items()},
        true_thread_cpu_s={t.name: machine.thread_cpu_ns.get(t.name, 0) / 1e9 for t in threads},
        notes=notes,
        profile_seconds=profile.duration_ns / 1e9,
    )


def _notes(
    scenario: Scenario,
    spec: RuntimeSpec,
    c: SignalCounters,
    handler: Handler,
    threads: list[Thread],
    perf_period_ns: int,
    switch_times_ns: list[int],
) -> list[str]:
    """Why samples were lost, stage by stage, in words."""
    # A Go release asked for by name (`runtime: go1.21`): say which model stands for it.
    notes = [scenario.profiler.runtime_note] if scenario.profiler.runtime_note else []
    hz = scenario.machine.kernel_hz
    rate_hz = scenario.profiler.rate_hz
    if spec.perf_events:
        notes.extend(_perf_notes(scenario, spec, c, threads, perf_period_ns))
    elif rate_hz > hz and not spec.suspend_sampler:
        notes.append(
            f"rate {rate_hz:g} Hz is above the kernel tick ({hz} Hz): timers are "
            f"checked only at ticks, so one thread gets at most {hz} signals/s"
        )
    if c.dropped_pending - c.dropped_perf:
        share = (c.dropped_pending - c.dropped_perf) / max(1, c.generated_process)
        notes.append(
            f"{c.dropped_pending - c.dropped_perf} process-timer expiries ({share:.0%}) were "
            "dropped because "
            "a SIGPROF was already pending: one pending signal per process (golang/go #35057)"
        )
    if handler.discarded_duplicate:
        notes.append(
            f"{handler.discarded_duplicate} signals were discarded as duplicates: on a thread "
            "with its own timer the process timer's signal is ignored (validSIGPROF)"
        )
    if handler.discarded_unswitched:
        notes.append(
            f"{handler.discarded_unswitched} process-timer signals reached an M that had not "
            "yet switched to the profiling rate (its next execute()) and were dropped by "
            "sigprof (mp.profilehz == 0)"
        )
    if handler.merged:
        notes.append(
            f"{handler.merged} deliveries merged: CPython runs the Python handler once, on "
            "the main thread, for all signals since its last run"
        )
    if handler.lost_overflow:
        notes.append(
            f"{handler.lost_overflow} samples lost to a full buffer "
            f"({handler.lost_extra} of them in Go's extra buffer for non-Go threads)"
        )
    if c.timer_overruns:
        notes.append(
            f"{c.timer_overruns} timer intervals were folded into other signals as overruns "
            "(unweighted, they are missing from the profile)"
        )
    if switch_times_ns:
        what = "per-thread timers were switched on" if spec.thread_timers else "Ms took the rate"
        notes.append(
            f"{what} lazily, the last at {max(switch_times_ns) / 1e6:.1f} ms (Go's execute())"
        )
    return notes


def _perf_notes(
    scenario: Scenario,
    spec: RuntimeSpec,
    c: SignalCounters,
    threads: list[Thread],
    perf_period_ns: int,
) -> list[str]:
    hz = scenario.machine.kernel_hz
    rate_hz = scenario.profiler.rate_hz
    notes = []
    if scenario.profiler.model.startswith("go"):
        notes.append(
            "hypothetical: Go does not use perf_event timers (golang/go #42502, #53286); "
            "this is what its profiler could do with one task-clock event per M"
        )
        externals = [t.name for t in threads if t.perf is None]
        if externals:
            notes.append(
                f"{len(externals)} thread(s) Go did not create have no perf event and "
                "are not sampled"
            )
    if rate_hz > hz:
        notes.append(
            f"rate {rate_hz:g} Hz is above the kernel tick ({hz} Hz), but perf "
            "task-clock events overflow on each thread's exact CPU time (an hrtimer), "
            "not at ticks: the tick does not cap the rate"
        )
    if perf_period_ns == PERF_MIN_PERIOD_NS and rate_hz > 1e9 / PERF_MIN_PERIOD_NS:
        notes.append(
            f"the kernel's hrtimer period is at least 10 µs: at most "
            f"{1e9 / PERF_MIN_PERIOD_NS:,.0f} overflows per CPU-second, not {rate_hz:g}"
        )
    if c.dropped_perf:
        share = c.dropped_perf / max(1, c.generated_perf)
        handler_us = spec.handler_cost_ns / 1000
        notes.append(
            f"{c.dropped_perf} perf overflows ({share:.0%}) were dropped because that "
            f"thread's previous SIGPROF was still pending (a standard signal does not "
            f"queue): with a {perf_period_ns / 1000:g} µs period and a "
            f"{handler_us:g} µs handler, the handler's cost is the limit"
        )
    return notes
