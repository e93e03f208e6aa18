"""How a scenario's profiler runs in the real world: its runtime mapped onto realprof.

The real world (`lab.workload`) has one sampler with two handlers, so a scenario's
runtime is mapped: `realprof` uses the scenario's timer; `cpython` uses the Python-level
handler on the process timer (the naive port); `go1.17` uses realprof's C handler with
the process timer (Go <= 1.17's setitimer); `go1.18`/`go1.26` use realprof with `both`
timers and the validSIGPROF-style duplicate filter (`go1.26`'s half-full reader is not
modelled: the reader drains every `reader_period_ms`). `go-windows` has no equivalent
here (no thread-suspending sampler), and `external` thread groups need threads that the
runtime did not create (cgo), which a pure-Python workload cannot make: both are
refused with `RealWorldError`, before anything runs.

`profiler.free_threaded` must match the interpreter: a free-threaded scenario needs a
Python whose GIL is off now (a `t` build, `--python`; `lab.interpreters`), and a scenario
with the GIL refuses a Python running without one (set `PYTHON_GIL=1` on a `t` build to
measure it with the GIL). Whether the GIL stays off for the whole run is checked by the
workload's threads (`lab.workload`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from contract.scenario import Scenario
from lab.interpreters import free_threaded_build, gil_enabled
from sim.workload import thread_names


class RealWorldError(Exception):
    """A scenario the real world cannot run; the message is one line for the user."""


@dataclass(frozen=True)
class RealSettings:
    """How a scenario's profiler section is run by the real sampler."""

    runtime: str  # the report's runtime: what really ran
    handler: str  # "c" or "python"
    timer: str  # "process", "per-thread", "both" or "perf"
    notes: tuple[str, ...]


def real_settings(scenario: Scenario, source: str = "") -> RealSettings:
    """Map the scenario's runtime onto realprof, or raise RealWorldError."""
    where = f"{source}: " if source else ""
    profiler = scenario.profiler
    runtime = profiler.model
    if runtime == "go-windows":
        raise RealWorldError(
            f"{where}profiler.runtime: go-windows samples by suspending threads from a "
            "timer thread; that sampler exists only in the simulator (the real world here "
            "is SIGPROF on Linux)"
        )
    externals = [
        (index, group.name)
        for index, group in enumerate(scenario.workload.threads)
        if group.kind == "external"
    ]
    if externals:
        index, name = externals[0]
        raise RealWorldError(
            f"{where}workload.threads.{index}.kind: group {name!r} is external: external "
            "(cgo-created) threads exist only in the simulator"
        )
    gil = _gil_note(scenario, source)
    if runtime == "realprof":
        timer = profiler.effective_timer
        return RealSettings(
            "realprof", "c", timer, (f"runtime realprof: the C handler with timer {timer}", *gil)
        )
    if runtime == "cpython":
        first = scenario.workload.threads[0]
        main_name = thread_names(first.name, first.count)[0]
        return RealSettings(
            "cpython",
            "python",
            "process",
            (
                "runtime cpython: realprof's Python-level handler (signal.setitimer + "
                "signal.signal) on the process timer; it samples the main thread (here "
                f"{main_name}) whoever burned the CPU",
                *gil,
            ),
        )
    if runtime == "go1.17":
        return RealSettings(
            "realprof",
            "c",
            "process",
            ("runtime go1.17 → realprof's C handler with the process timer (setitimer)",),
        )
    # go1.18 / go1.26
    timer = profiler.effective_timer
    extra = (
        "; go1.26's half-full reader wakeup is not modelled (the reader drains every "
        f"{profiler.reader_period_ms:g} ms)"
        if runtime == "go1.26"
        else ""
    )
    return RealSettings(
        "realprof",
        "c",
        timer,
        (
            f"runtime {runtime} → realprof's C handler with timer {timer}"
            + (" and a validSIGPROF-style duplicate filter" if timer == "both" else "")
            + extra,
        ),
    )


def _gil_note(scenario: Scenario, source: str) -> tuple[str, ...]:
    """The note on the interpreter's GIL, or RealWorldError when it contradicts the scenario."""
    where = f"{source}: " if source else ""
    version = sys.version.split()[0]
    if scenario.profiler.free_threaded:
        if not free_threaded_build():
            raise RealWorldError(
                f"{where}profiler.free_threaded: this Python ({version}) has the GIL; run it "
                "on a free-threaded build: python -m realprof scenario "
                f"{source or 'FILE'} --python PATH/TO/python3.14t"
            )
        if gil_enabled():
            raise RealWorldError(
                f"{where}profiler.free_threaded: this free-threaded Python ({version}) runs "
                "with the GIL on (PYTHON_GIL=1 or -X gil=1?); unset it"
            )
        return (
            f"free-threaded CPython {version}: sys._is_gil_enabled() was False in every "
            "workload thread at its start and at its end",
        )
    if not gil_enabled():
        raise RealWorldError(
            f"{where}profiler.free_threaded is false but this Python ({version}) runs without "
            "the GIL; set profiler.free_threaded=true, or PYTHON_GIL=1 to run it with the GIL"
        )
    if free_threaded_build():
        return (f"free-threaded build of CPython {version} run with the GIL on (PYTHON_GIL=1)",)
    return ()
