"""What the mechanisms of one run share: the clock, the machine, the runtime, the counts.

`sim.model.Simulation` builds one `RunContext` per run and hands it to each mechanism
that schedules events, spends CPU or counts signals: the handler (`sim.handler`), the
reader (`sim.reader`), the perf events (`sim.perfsignals`) and Windows' sampler
(`sim.suspend`). Each keeps only its own state besides.

Invariants: one context per run, never changed once built, so every mechanism of a run
sees the same SimPy environment (one virtual clock), the same machine, the same runtime
policy and the same funnel counters; `event` records a profiler event at the current
instant in the trace's window, and does nothing when there is no trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import simpy

from sim.machine import Machine, Thread
from sim.runtimes import RuntimeSpec
from sim.signals import SignalCounters


@dataclass(frozen=True)
class RunContext:
    env: simpy.Environment
    machine: Machine
    spec: RuntimeSpec
    counters: SignalCounters
    event: Callable[[str, Thread], None]  # (kind, thread): into the trace, if any
