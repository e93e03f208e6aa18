"""perf_event task-clock events: a per-thread CPU-time timer that is not checked at ticks.

Models a software `PERF_COUNT_SW_TASK_CLOCK` event opened on one thread
(`perf_event_open(2)` with `pid` = the thread's id, `cpu` = -1, `sample_period` = the
period in ns) whose overflow is announced as a signal: `O_ASYNC`, `F_SETSIG` = SIGPROF and
`F_SETOWN_EX` with `F_OWNER_TID`. This project's C sampler does this for `--timer perf`
(`realprof/_sampler.c` `perf_open`); async-profiler's `cpu` mode uses the same event; Go
does not (golang/go #42502 and #53286 propose it), so `go1.18`/`go1.26` with this timer
are a hypothetical of what Go could do.

What the kernel does (kernel/events/core.c, fs/fcntl.c, kernel/signal.c, Linux 6.x):

* **Counting.** The event counts the thread's CPU time, in the kernel or in a signal
  handler as much as in its own code. An hrtimer ends each period while the thread is on
  a CPU: `task_clock_event_start` arms it at sched-in (`perf_swevent_start_hrtimer`),
  `task_clock_event_stop` cancels it at sched-out and keeps what was left of the period
  (`perf_swevent_cancel_hrtimer` saves `period_left`), so an overflow happens exactly
  when the thread has used one more period of CPU, whichever CPUs it ran on.
* **No drift, no tick.** At each expiry `perf_swevent_hrtimer` calls
  `__perf_event_overflow` and restarts itself with `hrtimer_forward_now` one period after
  the previous expiry, not after the handler: the schedule never slips, and nothing waits
  for the scheduler tick, so one thread can get far more than CONFIG_HZ signals per
  second. The hrtimer's period is at least 10 µs (`max_t(u64, 10000, sample_period)`), so
  at most 100 000 overflows per CPU-second.
* **Signal.** `__perf_event_overflow` queues irq_work (`perf_pending_irq`), which calls
  `perf_event_wakeup` → `kill_fasync` → `send_sigio_to_task`: SIGPROF with si_code
  POLL_IN, directed at the owning thread only (`F_OWNER_TID` is PIDTYPE_PID). It is
  delivered at that thread's next return to user mode: within microseconds when it is on
  a CPU (the `perf_delivery_us` parameter), at its next dispatch otherwise, and at the end
  of the running handler (sigreturn) when SIGPROF is blocked because the handler runs.
* **Coalescing.** SIGPROF is a standard signal: an overflow while one is still pending on
  the thread is dropped (`legacy_queue` in `__send_signal_locked`), counted as
  `signals_dropped_pending`. There is no overrun count (`timer_overruns` stays 0): the
  lost overflow is simply gone. Another thread's signals never collide with it.

So the tick ceiling disappears and the handler's cost is the limit: when the period
approaches the handler's cost, overflows arrive while the previous signal is pending or
its handler still runs, and they are dropped.

This module keeps one event's state and arithmetic (`PerfEvent`) and the periods;
`sim.perfsignals` schedules the hrtimers and the deliveries on the simulated machine.

Left out: interrupt throttling (`perf_event_max_sample_rate`, 100 000 per second by
default, out of reach above the 10 µs floor), the ring buffer and wakeup watermarks (no
samples are read from the event, only its signal is used), `PERF_EVENT_IOC_REFRESH`
event limits, inherited events, multiplexing (software events are never multiplexed),
the kernel's special cases for a period that ends exactly at sched-out (`period_left`
zero or negative), and the interruption of a sleeping syscall by a pending signal
(delivery waits for the next dispatch).
"""

from __future__ import annotations

# perf_swevent_hrtimer / perf_swevent_start_hrtimer: max_t(u64, 10000, sample_period).
PERF_MIN_PERIOD_NS = 10_000


def perf_sample_period_ns(rate_hz: float) -> int:
    """`attr.sample_period` for a rate, in ns of task clock (as realprof computes it)."""
    return max(1, int(1_000_000_000 // rate_hz))


def perf_hrtimer_period_ns(rate_hz: float) -> int:
    """The hrtimer's period: the sample period, but never below the kernel's 10 µs."""
    return max(PERF_MIN_PERIOD_NS, perf_sample_period_ns(rate_hz))


class PerfEvent:
    """One thread's task-clock event: the next overflow on its CPU clock, and its signal.

    `expires_ns` is the thread CPU time of the next overflow (what `period_left` plus the
    armed hrtimer mean together). `token` changes at every sched-in, so an overflow
    scheduled for an earlier stint on a CPU is recognised as cancelled. `queued` numbers
    the signals queued, so that the return to user mode that follows one overflow's
    interrupt delivers that signal and not a later one.
    """

    __slots__ = ("expires_ns", "fires", "pending", "period_ns", "queued", "token")

    def __init__(self, period_ns: int, thread_cpu_ns: int) -> None:
        self.period_ns = period_ns
        # perf_swevent_init_hrtimer: period_left starts at a whole sample_period.
        self.expires_ns = thread_cpu_ns + period_ns
        self.fires = 0
        self.pending = False  # SIGPROF from this event waits on the thread's private list
        self.queued = 0
        self.token = 0

    def sched_in(self) -> int:
        """task_clock_event_start: a new stint on a CPU; returns its token."""
        self.token += 1
        return self.token

    def remaining_ns(self, thread_cpu_ns: int) -> int:
        """CPU time left until the next overflow (0 if it is due now)."""
        return max(0, self.expires_ns - thread_cpu_ns)

    def due(self, thread_cpu_ns: int) -> bool:
        return thread_cpu_ns >= self.expires_ns

    def overflow(self) -> bool:
        """perf_swevent_hrtimer: one overflow, the hrtimer forwarded by one period.

        Returns True if its signal is queued, False if it is dropped because the previous
        one is still pending on the thread (legacy_queue).
        """
        self.fires += 1
        self.expires_ns += self.period_ns
        if self.pending:
            return False
        self.pending = True
        self.queued += 1
        return True

    def take(self) -> bool:
        """Dequeue at the return to user mode: True if a signal was pending."""
        taken, self.pending = self.pending, False
        return taken
