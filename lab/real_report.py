"""The real world's report: a real run's profile and clocks, in the simulator's report.

`real_report` builds the `contract.report.Report` (world "real") of a run of
`lab.workload`: the sampler's counts, the profile's samples by function and thread, and
the truth the workload threads measured on their own CPU clocks, with notes that say
where this machine differs from the scenario's and what the counts mean.

Left out: the scenario's `machine` section (the real world runs on this machine and
reports its facts beside the scenario's), handler and reader costs (measured, not
modelled), Go's extra buffer, and the counts the kernel keeps to itself
(`signals_generated`, `signals_dropped_pending`, `signals_pending_at_stop` are null).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from contract.profile import Profile
from contract.report import Report, build_report
from contract.scenario import RunStep, Scenario
from lab.machine import machine_facts
from lab.real_settings import RealSettings
from realprof.sampler import integrity_notes
from sim.workload import thread_names


def real_report(
    scenario: Scenario,
    settings: RealSettings,
    profile: Profile,
    stats: dict[str, Any],
    wall_ns: int,
    notes: list[str],
    true_functions: dict[str, float],
    true_threads: dict[str, float],
) -> Report:
    """The run's report; the truths are CPU seconds by step function and by thread."""
    profiler = scenario.profiler
    facts = machine_facts()
    facts["scenario_machine"] = dataclasses.asdict(scenario.machine)
    cpu_seconds = sum(true_threads.values())
    counts = {
        "signals_generated": None,
        "signals_dropped_pending": None,
        "signals_pending_at_stop": None,
        "timer_overruns": stats.get("timer_overruns"),
        "signals_delivered": stats.get("signals_delivered"),
        "signals_merged": stats.get("signals_merged"),
        "signals_discarded": stats.get("signals_discarded"),
        "samples_recorded": stats.get("samples_recorded"),
        "samples_lost_overflow": stats.get("samples_lost_overflow"),
    }
    notes = [*notes, *_notes(scenario, settings, profile, stats, facts, true_functions)]
    return build_report(
        world="real",
        scenario=scenario.name,
        runtime=settings.runtime,
        timer=settings.timer,
        seed=scenario.seed,
        machine=facts,
        rate_hz=profiler.rate_hz,
        wall_seconds=wall_ns / 1e9,
        cpu_seconds=cpu_seconds,
        counts=counts,
        function_samples=profile.by_function(),
        thread_samples=profile.by_thread(),
        true_function_cpu_s=true_functions,
        true_thread_cpu_s=true_threads,
        notes=notes,
    )


def _notes(
    scenario: Scenario,
    settings: RealSettings,
    profile: Profile,
    stats: dict[str, Any],
    facts: dict[str, Any],
    true_functions: dict[str, float],
) -> list[str]:
    notes = [
        "signals generated, dropped while pending and pending at stop are not observable "
        "in-process (the kernel does not count them): null",
        "truth: per-thread CPU clocks (CLOCK_THREAD_CPUTIME_ID) read at step boundaries; "
        "cpu_seconds is the workload threads' sum, signal handler time included",
    ]
    wanted = scenario.machine
    hz = facts.get("kernel_hz")
    differences = []
    if facts.get("cpus") != wanted.cpus:
        differences.append(f"{facts.get('cpus')} CPUs (scenario: {wanted.cpus})")
    if hz != wanted.kernel_hz:
        shown = hz if hz is not None else "unknown"
        differences.append(f"HZ={shown} (scenario: {wanted.kernel_hz})")
    skewed = facts.get("tick_alignment") == "skewed"
    if facts.get("tick_alignment") is not None and skewed != wanted.tick_skew:
        differences.append(
            f"ticks {facts['tick_alignment']} (scenario: "
            f"{'skewed' if wanted.tick_skew else 'aligned'})"
        )
    if differences:
        notes.append("this machine differs from the scenario's: " + ", ".join(differences))
    if hz is None:
        notes.append(f"kernel HZ is {facts.get('kernel_hz_source')}")
    elif scenario.profiler.rate_hz > hz:
        notes.append(
            f"rate {scenario.profiler.rate_hz:g} Hz is above the kernel tick ({hz} Hz): CPU "
            f"timers are checked at ticks, so a thread gets at most {hz} signals/s"
        )
    total = max(1, profile.total_samples)
    workload_threads = {
        name
        for group in scenario.workload.threads
        for name in thread_names(group.name, group.count)
    }
    others = {
        name: count for name, count in profile.by_thread().items() if name not in workload_threads
    }
    if others:
        listed = ", ".join(f"{name}: {count}" for name, count in sorted(others.items()))
        notes.append(
            f"{sum(others.values())} sample(s) landed on threads outside the workload "
            f"({listed}), whose CPU is not in cpu_seconds: a process-timer SIGPROF goes to "
            "another thread, even an idle one, when the running thread has it blocked"
        )
    outside = sum(
        count
        for (stack, thread), count in profile.samples.items()
        if thread in workload_threads and stack[0].function not in true_functions
    )
    if outside:
        notes.append(
            f"{outside} sample(s) ({outside / total:.1%}) of workload threads landed outside "
            "the steps' functions (thread loop, barrier, sleep); their true share is 0"
        )
    if stats.get("native_samples"):
        notes.append(
            f"{stats['native_samples']} sample(s) found their thread without the GIL (native "
            "code or a blocking wait); their leaf is the Python function that called it"
        )
    if scenario.profiler.model.startswith("go"):
        python_threads = sum(
            group.count
            for group in scenario.workload.threads
            if any(isinstance(step, RunStep) for step in group.program)
        )
        if python_threads > 1:
            notes.append(
                f"Go runs its {python_threads} threads' `run` steps in parallel; here they are "
                "Python bytecode and the GIL lets one run at a time (`native` steps run in "
                "parallel)"
            )
    if settings.handler == "python" and stats.get("signals_merged"):
        notes.append(
            f"{stats['signals_merged']} deliveries merged: CPython runs the Python handler "
            "once, on the main thread, for all signals since its last run"
        )
    if stats.get("signals_delivered_estimated"):
        notes.append("signals_delivered is estimated (process CPU / interval): no extension")
    if stats.get("signals_discarded"):
        notes.append(
            f"{stats['signals_discarded']} signal(s) discarded (duplicates filtered like "
            "validSIGPROF, stale timers, or profiling off)"
        )
    if stats.get("samples_lost_overflow"):
        notes.append(f"{stats['samples_lost_overflow']} sample(s) lost to a full ring buffer")
    if stats.get("timer_overruns"):
        notes.append(
            f"{stats['timer_overruns']} timer interval(s) folded into other signals as overruns "
            "(unweighted, missing from the profile)"
        )
    notes += integrity_notes(stats)
    if stats.get("reader_errors"):
        notes.append(f"reader errors: {'; '.join(stats['reader_errors'])}")
    notes.append(
        "the scenario's handler/reader costs and machine calibration are simulator inputs; "
        "here they are whatever this machine does"
    )
    return notes
