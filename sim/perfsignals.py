"""perf events in virtual time: each thread's overflow hrtimer, and its signal's delivery.

`sim.perfevents.PerfEvent` says *when* a thread's task-clock event overflows, in that
thread's CPU time; this module turns it into SimPy events on the machine
(kernel/events/core.c, Linux 6.x):

* **Sched-in.** When a thread is dispatched, `sched_in` arms the hrtimer for what is left
  of its period (`task_clock_event_start`): one timeout at the instant the thread's
  exact CPU clock reaches the next overflow if it keeps running. A new token marks the
  stint, so a timeout armed for an earlier one finds a stale token and does nothing: that
  is the sched-out's `perf_swevent_cancel_hrtimer` (nothing is removed from SimPy's
  queue).
* **Overflow.** On the thread's CPU (`perf_swevent_hrtimer`): the overflow is counted as a
  generated signal, queued on the thread unless its previous SIGPROF is still pending
  (then dropped, `legacy_queue`), and the hrtimer is forwarded one period after this
  expiry (`hrtimer_forward_now`), never after the handler.
* **Delivery.** A queued signal is delivered at the thread's return to user mode after
  the overflow's interrupt, `perf_delivery_us` later, if the thread is still on a CPU;
  otherwise at its next dispatch. While its handler runs SIGPROF is blocked: the delivery
  waits for the handler's end (sigreturn). Delivery itself, and the handler, are the
  simulation's (`deliver`, called with the thread).

Invariants: a thread has at most one pending perf signal, and `queued` numbers them, so a
delayed delivery attempt for a signal already delivered at an earlier return to user
mode does nothing; after `stop`, no overflow is counted and nothing is delivered.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.context import RunContext
from sim.events import after
from sim.machine import RUNNING, Thread
from sim.perfevents import PerfEvent


class PerfSignals:
    """The task-clock events of a process's threads, scheduled on the machine."""

    def __init__(
        self,
        ctx: RunContext,
        period_ns: int,
        delivery_ns: int,
        deliver: Callable[[Thread], None],
    ) -> None:
        self.ctx = ctx
        self.period_ns = period_ns
        self.delivery_ns = delivery_ns
        self.deliver = deliver  # the signal delivery at a return to user mode
        self.stopped = False

    def open(self, threads: list[Thread]) -> None:
        """perf_event_open(tid) + PERF_EVENT_IOC_ENABLE on every thread the runtime
        created, before any runs: each dispatch then schedules its overflow."""
        for thread in threads:
            if thread.kind == "go":
                thread.perf = PerfEvent(self.period_ns, thread.sum_exec_ns)

    def sched_in(self, thread: Thread) -> None:
        """task_clock_event_start: arm the hrtimer for what is left of the period."""
        event = thread.perf
        assert event is not None
        token = event.sched_in()
        if self.stopped:
            return
        # Dispatch has just set run_start_ns: sum_exec_ns is the thread's CPU time now.
        delay = event.remaining_ns(thread.sum_exec_ns)
        after(self.ctx.env, delay, self._overflow, thread, token)

    def _overflow(self, thread: Thread, token: int) -> None:
        """perf_swevent_hrtimer on the thread's CPU: overflow, restart, raise SIGPROF."""
        event = thread.perf
        assert event is not None
        if self.stopped or event.token != token or thread.state != RUNNING:
            return  # cancelled at sched-out (the next sched-in armed a new one)
        cpu_ns = self.ctx.machine.current_cpu_ns(thread)
        if event.due(cpu_ns):
            self.ctx.counters.generated += 1
            self.ctx.counters.generated_perf += 1
            if event.overflow():
                self.ctx.event("expiry-perf", thread)
                after(self.ctx.env, self.delivery_ns, self._deliver, thread, event.queued)
            else:
                self.ctx.counters.dropped_pending += 1
                self.ctx.counters.dropped_perf += 1
                self.ctx.event("drop-perf", thread)
        # hrtimer_forward_now: the next expiry is one period after this one.
        after(self.ctx.env, event.remaining_ns(cpu_ns), self._overflow, thread, token)

    def _deliver(self, thread: Thread, queued: int | None = None) -> None:
        """The return to user mode after signal `queued`'s interrupt (None: sigreturn)."""
        event = thread.perf
        if self.stopped or event is None or not event.pending or thread.state != RUNNING:
            return  # delivered meanwhile, or the thread's next dispatch delivers it
        if queued is not None and queued != event.queued:
            return  # that signal went at an earlier return to user mode; this one has its own
        self.ctx.machine.account(thread)  # brings handler_debt_ns (in_handler) up to now
        self.deliver(thread)

    def at_sigreturn(self, thread: Thread) -> None:
        """SIGPROF is blocked while the handler runs: try again when it returns."""
        if thread.state != RUNNING:
            return  # the next dispatch tries again
        self.ctx.machine.account(thread)
        after(self.ctx.env, thread.handler_debt_ns, self._deliver, thread)
