"""Sleeps: a thread that sleeps is woken by a high-resolution timer, not by the tick.

Linux has two clocks of events that matter here. The tick is a per-CPU hrtimer that
fires on a fixed grid, every TICK_NSEC (kernel/time/tick-sched.c `tick_setup_sched_timer`),
and at each tick `update_process_times` charges a whole tick of CPU time to whichever
task is current (kernel/sched/cputime.c `account_process_tick`): that tick-charged time
is the clock ITIMER_PROF runs on (`sim.cputimers`). A sleep, on the other hand, ends on
an hrtimer of its own, armed for the sleep's end with the task's timer slack
(`hrtimer_nanosleep` in kernel/time/hrtimer.c; 50 µs by default, `init_task`'s
`timer_slack_ns`): the timer may run at any hrtimer interrupt from its soft expiry (the
requested end) up to its hard expiry (end + slack), the instant the CPU's timer device
is programmed for. So a sleeper wakes between ticks, at an instant that has nothing to
do with the tick grid, and is charged a tick only if a tick lands while it runs.

What sleeps this way in the model: a workload thread's `sleep_ms` and `syscall_ms`
steps and the profile reader between its reads (`sim.reader`; Go's profileWriter calls
`time.Sleep`). `sleep` returns the wake-up instant (the reader keeps it: a Go
profile's duration ends a period after it).

Invariants:

* A sleep of `d` ns ends in `[d, d + TIMER_SLACK_NS]` ns, never earlier.
* Where in the slack it ends is drawn uniformly, from a random stream of its own seeded
  by the scenario's seed, so a seed gives the same run bit for bit and the draws do not
  shift the other streams (round orders, survivals, first expiries, GIL hand-overs).

Why this matters: with wake-ups exactly on tick instants, a thread that sleeps a whole
number of ticks wakes at every tick it is charged for, or at none: a deterministic bias
of up to a tick per wake-up (docs/walkthrough/02-process-timer-and-tick.md).

Left out (docs/walkthrough/02-process-timer-and-tick.md, "What the model leaves out"):
the real wake-up instant is not uniform in the slack (an idle CPU runs the timer at its
hard expiry; any earlier interrupt on that CPU, a tick included, runs it sooner), wake-up
latency beyond the slack, real-time tasks' zero slack, and the runtime's own timer
machinery (Go parks the goroutine and the M waits in `epoll_pwait` or a futex, both
hrtimer-based too).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import simpy

from sim.events import after

TIMER_SLACK_NS = 50_000  # init_task.timer_slack_ns (init/init_task.c)


class Sleeps:
    """Ends every sleep of one run on an hrtimer: its duration plus a draw in the slack."""

    def __init__(self, env: simpy.Environment, seed: int, stream: str = "sleeps") -> None:
        self.env = env
        # A stream per use, so adding sleeps of one kind does not move the others.
        self.rng = random.Random(f"{stream}/{seed}")

    def sleep(self, duration_ns: int, wake: Callable[..., Any], *args: Any) -> int:
        """Call `wake(*args)` when a sleep of `duration_ns` begun now ends; returns when."""
        delay_ns = duration_ns + self.rng.randint(0, TIMER_SLACK_NS)
        after(self.env, delay_ns, wake, *args)
        return int(self.env.now) + delay_ns
