"""CPU timers: the process-wide ITIMER_PROF and per-thread CLOCK_THREAD_CPUTIME_ID timers.

Models `kernel/time/posix-cpu-timers.c` and `kernel/time/itimer.c` of Linux 6.x with
POSIX_CPU_TIMERS_TASK_WORK.

Process timer (`setitimer(ITIMER_PROF)`, used by every Go version and by CPython's
`signal.setitimer`): one expiry `E` per process, compared against the *tick-charged*
process clock `G`, which gains a whole tick each time a tick finds one of the process's
threads current. It is checked only at ticks, and a due timer advances by exactly one
interval per check (`check_cpu_itimer`), so a timer that fell behind drains its backlog
one interval at a time and never skips ahead. Arming adds one tick (`set_cpu_itimer`),
so the first expiry is a tick late. Go computes the interval in whole microseconds
(`1e6/hz`, src/runtime/signal_unix.go `setProcessCPUProfilerTimer`).

Per-thread timer (`timer_create(CLOCK_THREAD_CPUTIME_ID)` with `SIGEV_THREAD_ID`, Go 1.18+
on Linux, this project's C sampler): compares the thread's exact CPU time with its own
expiry, but is still checked only at a tick where its thread is current. Once fired, it
stays in REQUEUE_PENDING until its signal is dequeued; then it is re-armed past "now" by
whole intervals (`bump_cpu_timer`) and the skipped ones are reported as `si_overrun`.
Go picks a random first expiry in [1, period] ns so short-lived threads are not biased
against (golang/go #40435; src/runtime/os_linux.go `setThreadCPUProfiler`), and so does
this project's C sampler (`realprof/_sampler.c` `thread_timer_spec`).

This module keeps the timers' state and arithmetic only; when they are checked (at
ticks, or at the return to user mode after one) is the simulation's (`sim.model`).

Left out (docs/walkthrough/02-process-timer-and-tick.md says so): ITIMER_VIRTUAL,
RLIMIT_CPU, steal time, and `expiry_active` (its effect is part of the
`same_round_survival` parameter of the signals model).
"""

from __future__ import annotations

import random


def itimer_interval_ns(rate_hz: float) -> int:
    """setitimer's interval for a rate: whole microseconds, as Go computes it."""
    return max(1, int(1_000_000 // rate_hz)) * 1000


def thread_timer_interval_ns(rate_hz: float) -> int:
    return max(1, int(1_000_000_000 // rate_hz))


class ProcessTimer:
    """ITIMER_PROF: one expiry against the tick-charged process clock."""

    __slots__ = ("armed", "checks", "clock_ns", "expires_ns", "fires", "interval_ns")

    def __init__(self, interval_ns: int, tick_ns: int, clock_ns: int = 0) -> None:
        self.interval_ns = interval_ns
        self.clock_ns = clock_ns
        # set_cpu_itimer adds TICK_NSEC to a nonzero value.
        self.expires_ns = clock_ns + interval_ns + tick_ns
        self.armed = True
        self.checks = 0
        self.fires = 0

    def charge_tick(self, tick_ns: int) -> None:
        self.clock_ns += tick_ns

    def due(self) -> bool:
        return self.armed and self.clock_ns >= self.expires_ns

    def check(self) -> bool:
        """One check: if due, advance by exactly one interval and report a fire."""
        self.checks += 1
        if not self.due():
            return False
        self.expires_ns += self.interval_ns
        self.fires += 1
        return True

    @property
    def backlog_ns(self) -> int:
        return max(0, self.clock_ns - self.expires_ns)


ARMED = 0
REQUEUE_PENDING = 1


class ThreadTimer:
    """A timer on one thread's exact CPU clock, delivered to that thread only."""

    __slots__ = ("expires_ns", "fires", "interval_ns", "overruns", "status")

    def __init__(
        self, interval_ns: int, thread_cpu_ns: int, rng: random.Random | None = None
    ) -> None:
        self.interval_ns = interval_ns
        first = rng.randint(1, interval_ns) if rng is not None else interval_ns
        self.expires_ns = thread_cpu_ns + first
        self.status = ARMED
        self.fires = 0
        self.overruns = 0

    def due(self, thread_cpu_ns: int) -> bool:
        return self.status == ARMED and thread_cpu_ns >= self.expires_ns

    def fire(self) -> None:
        """collect_timerqueue + cpu_timer_fire: the signal is queued, the timer waits."""
        self.status = REQUEUE_PENDING
        self.fires += 1

    def rearm_at_dequeue(self, thread_cpu_ns: int) -> int:
        """posix_cpu_timer_rearm at dequeue: returns si_overrun for this delivery."""
        intervals = (thread_cpu_ns - self.expires_ns) // self.interval_ns + 1
        if intervals < 1:
            intervals = 1
        self.expires_ns += intervals * self.interval_ns
        self.status = ARMED
        overrun = intervals - 1
        self.overruns += overrun
        return overrun
