"""Windows: a sampler thread that suspends the others, instead of a signal.

Go on Windows has no SIGPROF (src/runtime/os_windows.go `profileLoop`): a thread at the
highest priority wakes on a wall-clock timer every `1000/hz` ms (at least 1 ms,
`RuntimeSpec.suspend_period_ns`) and, for every M that is not blocked, whether on a CPU
or merely runnable, suspends it, reads its context, records a sample of its stack and
resumes it.

In the model each visit is a generated and delivered "signal" with `si_code`
`SI_SUSPEND`, so the funnel reads as for the other runtimes, and the sample goes through
the handler's sample path (`sim.handler`). No timer is checked at ticks and nothing is
coalesced: the limit is the wall clock, not CPU time, so a thread is sampled per period
it was runnable, whether it ran or waited for a CPU. The sampler's own CPU cost, one
handler's cost per thread visited, is spent on its thread, woken with high priority
when it sleeps. That thread is not part of the workload's truth and takes no sample of
itself.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim.handler import Handler
from sim.machine import RUNNABLE, RUNNING, SLEEPING, Machine, Thread
from sim.runtimes import RuntimeSpec
from sim.signals import SI_SUSPEND, SignalCounters


class SuspendSampler:
    """`profileLoop`: the thread that samples the process's Ms every period."""

    def __init__(
        self,
        env: simpy.Environment,
        machine: Machine,
        spec: RuntimeSpec,
        threads: list[Thread],
        counters: SignalCounters,
        handler: Handler,
        event: Callable[[str, Thread], None],
    ) -> None:
        self.env = env
        self.machine = machine
        self.spec = spec
        self.threads = threads
        self.counters = counters
        self.handler = handler
        self.event = event  # the trace's event recorder
        self.stopped = False
        self.thread = Thread(0, "profileLoop", "profileLoop", "sampler", ())
        self.thread.truth = False
        self.thread.on_work_done = lambda t: machine.block(t, SLEEPING)

    def start(self) -> None:
        self.env.process(self._loop())

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        sampler = self.thread
        sampler.state = SLEEPING
        period_ns = self.spec.suspend_period_ns
        while True:
            yield self.env.timeout(period_ns)
            if self.stopped:
                return
            # profileLoop: suspend, sample and resume every M that is not blocked.
            targets = [t for t in self.threads if t.state in (RUNNING, RUNNABLE)]
            for thread in targets:
                self.counters.generated += 1
                self.counters.delivered += 1
                self.machine.account(thread)
                self.event("deliver", thread)
                if self.spec.accepts(SI_SUSPEND, False, True):
                    self.handler.sample(thread)
            if sampler.state == SLEEPING:
                self.machine.start_work(sampler, max(1, len(targets)) * self.spec.handler_cost_ns)
                self.machine.wake(sampler, high_priority=True)
