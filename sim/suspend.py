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

from collections.abc import Generator
from typing import Any

import simpy

from sim.context import RunContext
from sim.handler import Handler
from sim.machine import RUNNABLE, RUNNING, SLEEPING, Thread
from sim.signals import SI_SUSPEND


class SuspendSampler:
    """`profileLoop`: the thread that samples the process's Ms every period."""

    def __init__(self, ctx: RunContext, threads: list[Thread], handler: Handler) -> None:
        self.ctx = ctx
        self.threads = threads
        self.handler = handler
        self.stopped = False
        self.thread = Thread.helper(
            "profileLoop", "sampler", lambda t: ctx.machine.block(t, SLEEPING)
        )

    def start(self) -> None:
        self.ctx.env.process(self._loop())

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        ctx = self.ctx
        sampler = self.thread
        period_ns = ctx.spec.suspend_period_ns
        while True:
            yield ctx.env.timeout(period_ns)
            if self.stopped:
                return
            # profileLoop: suspend, sample and resume every M that is not blocked.
            targets = [t for t in self.threads if t.state in (RUNNING, RUNNABLE)]
            for thread in targets:
                ctx.counters.generated += 1
                ctx.counters.delivered += 1
                ctx.machine.account(thread)
                ctx.event("deliver", thread)
                if ctx.spec.accepts(SI_SUSPEND, False, True):
                    self.handler.sample(thread)
            if sampler.state == SLEEPING:
                ctx.machine.start_work(sampler, max(1, len(targets)) * ctx.spec.handler_cost_ns)
                ctx.machine.wake(sampler, high_priority=True)
