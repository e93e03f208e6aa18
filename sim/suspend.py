"""Windows: a sampler thread that suspends the others, instead of a signal.

Go on Windows has no SIGPROF (src/runtime/os_windows.go `profileLoop`): a thread at the
highest priority wakes on a wall-clock timer every `1000/hz` ms (at least 1 ms,
`RuntimeSpec.suspend_period_ns`) and, for every M whose `profilehz` is set and that is
not `blocked`, suspends it, reads its context, records a sample of its stack and resumes
it. `blocked` is set only while an M sleeps on a note (`notesleep`, src/runtime/
lock_sema.go), as an idle M does; an M in a system call or a cgo call is not blocked, so
it is sampled on a CPU, waiting for one, or waiting in the kernel (`sigprof` unwinds the
goroutine from the call's saved pc and sp). In the model an M is sampled when it is
running, runnable, or in a `syscall_ms` step; a goroutine waiting for a P
(`sim.gosched`) or in a `sleep_ms` step is on no M, or on a parked one, and is not.
Left out: every M is taken to have its `profilehz` set from the start. In Go an M sets
it at its next `execute()` (the lazy switch, as on Linux), and each M's switch re-arms
the one waitable timer (`setThreadCPUProfiler`, os_windows.go); the model has neither,
so an M's first samples, before its switch, are in its profile.

The timer is a waitable timer. With a resolution (`suspend_timer_resolution_ns`, Go
1.16 up to golang/go #61665 on Windows' default 15.625 ms clock) it fires at the first
clock interrupt at or after each due time, and once per interrupt at most: 10 ms
periods become 15.625 ms ones, about 64 Hz.

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

    def _wake_times(self) -> Generator[int, None, None]:
        """When the waitable timer wakes profileLoop: each due time, rounded up to the
        timer's resolution, at most once per clock interrupt."""
        period_ns = self.ctx.spec.suspend_period_ns
        resolution_ns = self.ctx.spec.suspend_timer_resolution_ns
        due_ns = last_ns = 0
        while True:
            due_ns += period_ns
            if resolution_ns is None:
                yield due_ns
                continue
            fire_ns = -(-due_ns // resolution_ns) * resolution_ns
            if fire_ns > last_ns:
                last_ns = fire_ns
                yield fire_ns

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        ctx = self.ctx
        sampler = self.thread
        for wake_ns in self._wake_times():
            yield ctx.env.timeout(wake_ns - ctx.env.now)
            if self.stopped:
                return
            # profileLoop: suspend, sample and resume every M that is not parked.
            targets = [
                t
                for t in self.threads
                if t.state in (RUNNING, RUNNABLE) or (t.state == SLEEPING and t.in_syscall)
            ]
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
