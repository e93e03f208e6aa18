"""Go's Ps: at most GOMAXPROCS goroutines run Go code at once (`workload.gomaxprocs`).

Without a cap the model runs every goroutine on a thread of its own and lets the kernel
time-slice them, which Go does not do: an M needs a P to run Go code, there are
GOMAXPROCS Ps (the CPU count by default), and the goroutines beyond them wait in Go's run
queues, off the CPU and on no M (src/runtime/proc.go `schedule`, `findRunnable`). A
goroutine in a cgo call or a system call keeps its M but gives up its P
(`entersyscall`), which is how a Go program gets more runnable threads than CPUs.

What is modelled, with a goroutine still one `Thread` (its M) of the model:

* A `run` step of a `go` thread needs a P; a `native` step (a cgo call), a `sleep_ms`
  and a `syscall_ms` step release it first. A goroutine that finds no P waits, in state
  `P_WAIT`, in one FIFO queue; when a P is freed the head of the queue takes it, its M
  runs `execute()` (so Go 1.18's lazy timer switch happens here) and is woken.
* sysmon's preemption: a goroutine that has held its P for `GO_FORCE_PREEMPT_NS` (10 ms,
  `forcePreemptNS`) of wall time while others wait goes to the back of the queue. Like
  the lazy switch's preemption it is looked at on the model's tick rounds, not on
  sysmon's own 20 µs-10 ms schedule.
* The profiler's reader is a goroutine too (runtime/pprof's `profileWriter`): woken, it
  needs a P, and takes the head of the queue, as `ready()` puts a woken goroutine in
  its P's `runnext` slot.

Invariants: at most `count` threads hold a P; a thread is in the queue only while it
waits (state `P_WAIT`), and only threads that hold no P are queued.

Left out: per-P local run queues and work stealing (one global FIFO), spinning Ms,
sysmon's retake of a P from a syscall only after 20 µs (here at once), idle Ms (an M
that parks has nothing to sample in the model), and a goroutine that inherits its
predecessor's time slice from `runnext`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sim.machine import P_WAIT, RUNNING, Machine, Thread
from sim.runtimes import GO_FORCE_PREEMPT_NS


class Processors:
    """The Ps and the goroutines waiting for one."""

    def __init__(self, machine: Machine, count: int, on_granted: Callable[[Thread], None]):
        self.machine = machine
        self.count = count
        self.holders: set[Thread] = set()
        self.waiters: deque[Thread] = deque()
        # Called when a waiting goroutine gets a P: its M runs execute() and is woken.
        self.on_granted = on_granted
        self.preemptions = 0

    def acquire(self, thread: Thread, front: bool = False) -> bool:
        """Take a P, or wait for one off the CPU. True if the thread holds one now."""
        if thread.holds_p:
            return True
        if len(self.holders) < self.count:
            self._take(thread)
            return True
        if front:
            self.waiters.appendleft(thread)
        else:
            self.waiters.append(thread)
        self.machine.block(thread, P_WAIT)
        return False

    def release(self, thread: Thread) -> None:
        """The goroutine leaves Go code (cgo, syscall, sleep, done): its P goes on."""
        if not thread.holds_p:
            return
        self.holders.discard(thread)
        thread.holds_p = False
        self._grant_next()

    def maybe_preempt(self, thread: Thread) -> bool:
        """sysmon: a goroutine that held its P for 10 ms while others wait yields it."""
        if not thread.holds_p or not self.waiters:
            return False
        if self.machine.env.now - thread.p_since_ns < GO_FORCE_PREEMPT_NS:
            return False
        self.holders.discard(thread)
        thread.holds_p = False
        self.waiters.append(thread)
        self.machine.block(thread, P_WAIT)
        self.preemptions += 1
        self._grant_next()
        return True

    def _take(self, thread: Thread) -> None:
        self.holders.add(thread)
        thread.holds_p = True
        thread.p_since_ns = self.machine.env.now

    def _grant_next(self) -> None:
        if not self.waiters or len(self.holders) >= self.count:
            return
        nxt = self.waiters.popleft()
        self._take(nxt)
        if nxt.state != RUNNING:
            self.on_granted(nxt)
