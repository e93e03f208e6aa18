"""The machine: CPUs, a scheduler with time slices, exact CPU-time accounting, the GIL.

What it models (Linux 6.x, `kernel/sched/fair.c` with EEVDF, seen from far enough away):

* `cpus` CPUs, each running one thread or idle, each with its own FIFO run queue. A
  waking thread takes an idle CPU (its previous one first), else queues on its previous
  CPU, or on the shortest queue if it never ran (`select_task_rq_fair`, roughly). A CPU
  that goes idle with an empty queue pulls a waiting thread from the longest queue (the
  "newidle" balance), so threads keep their CPU unless there is a reason to move.
* Preemption happens at a tick (and at one kind of wake-up, below): a thread that has
  used up its slice (`base_slice_ms`, EEVDF's 0.75 ms × (1 + ilog2(min(cpus, 8)))) goes
  to the back of the queue when someone is waiting. The slice is shorter than a 4 ms
  tick, so with more runnable threads than CPUs every tick preempts.
* Exact per-thread CPU time (`sum_exec_runtime`, what CLOCK_THREAD_CPUTIME_ID reads),
  advanced whenever a running thread is looked at. The tick-charged process clock used by
  ITIMER_PROF lives with the timer (`sim.cputimers.ProcessTimer`).
* Signal handler time is spent on the interrupted thread before its own work continues.
* The GIL for the Python runtimes (CPython's `Python/ceval_gil.c`): one holder runs
  bytecode; a thread that wants it sleeps off-CPU; after waiting one switch interval
  (5 ms by default) it forces the holder to drop it, and a holder that leaves Python (a
  native step, a sleep) releases it at once. A holder preempted by the kernel keeps the
  GIL while it waits for a CPU. Who takes a dropped GIL is not a queue in CPython: the
  holder signals a condition variable that all waiters sleep on in timed waits, and the
  waiter the kernel wakes and runs first wins (`Python/ceval_gil.c`, `drop_gil` and
  `take_gil`; POSIX condition variables promise no order). The model draws the next
  holder uniformly among the waiters. A FIFO queue instead would make three or more
  threads take turns in a fixed order, and a fixed order locks their bursts to the tick
  grid: four Python threads at 200 Hz would then never see an overrun, where a real
  machine does (docs/walkthrough/11-sim-versus-reality.md).

* Wake-up preemption for short sleepers that are not the workload's (`wake_preempting`):
  realprof's reader, which wakes every 10 ms to watch for threads (`sim.reader`), and
  the Go runtime's own threads (`sim.gowakers`). The woken thread takes its CPU at once,
  unless the current thread has run less than a slice since it was dispatched (EEVDF's
  RUN_TO_PARITY protects it; the sleeper then queues; for the Go runtime's threads the
  model replays measured takings of a busy thread's CPU, each a preemption, so they skip
  that check), and the victim
  queues behind the threads that were waiting. So on oversubscribed CPUs a thread
  switched out at a tick can be switched back in between ticks, and run its deferred
  timer check there (`sim.model`).

Left out (docs/walkthrough/02-process-timer-and-tick.md says so): wake-up preemption by
the workload's own threads, load balancing beyond the newidle pull and migration costs,
priorities beyond the one "high priority" wake used by the Windows
sampler thread, NUMA, SMT and steal time.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy

from sim.events import after

if TYPE_CHECKING:
    from sim.cputimers import ThreadTimer
    from sim.perfevents import PerfEvent
    from sim.workload import Op

# A holder notices a drop request at its next eval-breaker check, and the waiter must
# then be woken by the kernel: tens of microseconds, never exactly on a tick instant.
GIL_DROP_LATENCY_NS = 20_000

RUNNING = "running"
RUNNABLE = "runnable"
SLEEPING = "sleeping"
GIL_WAIT = "gil-wait"
P_WAIT = "p-wait"  # a goroutine waiting for a Go P (sim.gosched): off the CPU, on no M


class Thread:
    """A kernel thread (Go: an M) with its program and profiler-visible state."""

    __slots__ = (
        "cpu",
        "exec_due_cpu_ns",
        "gil_drop_request",
        "group",
        "handler_debt_ns",
        "holds_gil",
        "holds_p",
        "in_syscall",
        "is_main",
        "kind",
        "last_cpu",
        "name",
        "needs_gil_now",
        "on_work_done",
        "op",
        "p_since_ns",
        "perf",
        "private_pending",
        "profilehz_set",
        "program",
        "run_start_ns",
        "slice_start_ns",
        "state",
        "step_index",
        "sum_exec_ns",
        "tid",
        "timer",
        "timer_valid",
        "truth",
        "work_gen",
        "work_remaining_ns",
        "work_scheduled",
    )

    def __init__(self, tid: int, name: str, group: str, kind: str, program: tuple[Op, ...]):
        self.tid = tid
        self.name = name
        self.group = group
        self.kind = kind  # "go", "external", or a helper: "reader", "sampler"
        self.program = program
        self.is_main = False
        self.step_index = 0
        self.op: Op | None = None
        self.state = RUNNABLE
        self.cpu: int | None = None
        self.last_cpu: int | None = None
        # CPU-time accounting: exact CPU time so far, start of the current stint on a CPU
        # and of its slice, handler time to spend before its own work.
        self.sum_exec_ns = self.run_start_ns = self.slice_start_ns = 0
        self.handler_debt_ns = 0
        self.work_remaining_ns = self.work_gen = 0  # the current step, and its generation
        self.work_scheduled = False  # the tick flagged a timer check (task work queued)
        self.timer: ThreadTimer | None = None
        self.timer_valid = False  # Go's profileTimerValid
        self.exec_due_cpu_ns = 0  # Go: the lazy switch (next execute()) is due by then
        self.profilehz_set = False  # Go: mp.profilehz != 0, the M has switched
        self.private_pending = 0  # thread-directed timer signals queued
        self.perf: PerfEvent | None = None  # perf_event task-clock event (timer perf)
        self.holds_gil = False
        self.gil_drop_request = False
        self.needs_gil_now = False
        self.holds_p = False  # Go: holds a P (sim.gosched); since when, in wall time
        self.p_since_ns = 0
        self.in_syscall = False  # Go: blocked in a system call or cgo call, not parked
        self.on_work_done: Callable[[Thread], None] | None = None
        self.truth = True  # counted in the workload's ground truth

    @classmethod
    def helper(cls, name: str, kind: str, on_work_done: Callable[[Thread], None]) -> Thread:
        """A thread of the profiler itself (the reader, Windows' sampler): it uses CPU,
        asleep until woken, but is not part of the workload's truth and takes no signal."""
        thread = cls(0, name, name, kind, ())
        thread.truth = False
        thread.on_work_done = on_work_done
        thread.state = SLEEPING
        return thread

    @property
    def in_handler(self) -> bool:
        return self.handler_debt_ns > 0

    def __repr__(self) -> str:
        return f"<Thread {self.name} {self.state} cpu={self.cpu}>"


class Machine:
    """CPUs, run queue and GIL, driven by a SimPy environment in integer nanoseconds."""

    def __init__(
        self,
        env: simpy.Environment,
        cpus: int,
        slice_ns: int,
        gil_switch_interval_ns: int | None,
        gil_rng: random.Random | None = None,
    ) -> None:
        self.env = env
        # Which waiter takes a dropped GIL: None for a FIFO queue, else a uniform draw.
        self.gil_rng = gil_rng
        self.cpus: list[Thread | None] = [None] * cpus
        self.runqueues: list[deque[Thread]] = [deque() for _ in range(cpus)]
        self.slice_ns = slice_ns
        self.gil_switch_interval_ns = gil_switch_interval_ns
        self.gil_holder: Thread | None = None
        self.gil_waiters: deque[Thread] = deque()
        self.gil_episode = 0
        self.gil_handovers = 0
        self.function_cpu_ns: dict[str, int] = {}
        self.thread_cpu_ns: dict[str, int] = {}
        self.handler_cpu_ns = 0
        self.context_switches = 0
        # Hooks set by the model.
        self.on_return_to_user: Callable[[Thread], None] = lambda t: None
        self.on_segment: Callable[[int, Thread, int, int], None] | None = None

    # -- accounting ---------------------------------------------------------------------

    def account(self, thread: Thread) -> None:
        """Bring a running thread's CPU clocks up to now."""
        if thread.state != RUNNING:
            return
        now = self.env.now
        elapsed = now - thread.run_start_ns
        if elapsed <= 0:
            return
        if self.on_segment is not None:
            self.on_segment(thread.cpu, thread, thread.run_start_ns, now)  # type: ignore[arg-type]
        thread.run_start_ns = now
        thread.sum_exec_ns += elapsed
        in_handler = min(elapsed, thread.handler_debt_ns)
        thread.handler_debt_ns -= in_handler
        work = elapsed - in_handler
        thread.work_remaining_ns -= work
        if thread.truth:
            self.handler_cpu_ns += in_handler
            self.thread_cpu_ns[thread.name] = self.thread_cpu_ns.get(thread.name, 0) + elapsed
            if work and thread.op is not None:
                fn = thread.op.function
                self.function_cpu_ns[fn] = self.function_cpu_ns.get(fn, 0) + work

    def current_cpu_ns(self, thread: Thread) -> int:
        if thread.state == RUNNING:
            self.account(thread)
        return thread.sum_exec_ns

    # -- work completion ----------------------------------------------------------------

    def _arm_work_done(self, thread: Thread) -> None:
        delay = thread.handler_debt_ns + max(0, thread.work_remaining_ns)
        gen = thread.work_gen
        after(self.env, delay, self._work_done, thread, gen)

    def _work_done(self, thread: Thread, gen: int) -> None:
        if thread.work_gen != gen or thread.state != RUNNING:
            return  # stale: the thread was preempted or blocked since
        self.account(thread)
        if thread.handler_debt_ns > 0 or thread.work_remaining_ns > 0:
            self._arm_work_done(thread)  # a handler ran meanwhile and pushed the end out
            return
        assert thread.on_work_done is not None
        thread.on_work_done(thread)

    def start_work(self, thread: Thread, work_ns: int) -> None:
        """Give a running thread `work_ns` of CPU work; `on_work_done` fires at its end."""
        thread.work_remaining_ns = work_ns
        thread.work_gen += 1
        if thread.state == RUNNING:
            self._arm_work_done(thread)

    def add_handler_time(self, thread: Thread, cost_ns: int) -> None:
        """Handler CPU on `thread`, spent before its own work continues."""
        if thread.state == RUNNING:
            self.account(thread)
        thread.handler_debt_ns += cost_ns
        # The pending work_done event fires early and re-arms for the remainder.

    # -- scheduling ---------------------------------------------------------------------

    def dispatch(self, cpu: int, thread: Thread) -> None:
        self.cpus[cpu] = thread
        thread.state = RUNNING
        thread.cpu = cpu
        thread.last_cpu = cpu
        thread.run_start_ns = self.env.now
        thread.slice_start_ns = self.env.now
        self.context_switches += 1
        thread.work_gen += 1
        self._arm_work_done(thread)
        if thread.gil_drop_request and thread.holds_gil:
            # The eval loop sees the drop request as soon as the thread runs again.
            self.gil_force_drop(thread)
            return
        self.on_return_to_user(thread)

    def _pick_next(self, cpu: int) -> None:
        self.cpus[cpu] = None
        queue = self.runqueues[cpu]
        if not queue:
            longest = max(self.runqueues, key=len)
            if not longest:
                return
            queue = longest
        self.dispatch(cpu, queue.popleft())

    def preempt(self, cpu: int) -> Thread | None:
        """Tick-time reschedule: returns the newly dispatched thread, if any."""
        current = self.cpus[cpu]
        queue = self.runqueues[cpu]
        if current is None or not queue:
            return None
        if self.env.now - current.slice_start_ns < self.slice_ns:
            return None
        self.account(current)
        current.work_gen += 1
        current.state = RUNNABLE
        current.cpu = None
        queue.append(current)
        self.dispatch(cpu, queue.popleft())
        return self.cpus[cpu]

    def block(self, thread: Thread, state: str) -> None:
        """The thread leaves the CPU (sleep, GIL wait) or its run queue."""
        if thread.state == RUNNING:
            self.account(thread)
            cpu = thread.cpu
            thread.work_gen += 1
            thread.state = state
            thread.cpu = None
            assert cpu is not None
            self._pick_next(cpu)
        elif thread.state == RUNNABLE:
            for queue in self.runqueues:
                if thread in queue:
                    queue.remove(thread)
                    break
            thread.state = state
        else:
            thread.state = state

    def wake(self, thread: Thread, high_priority: bool = False) -> None:
        thread.state = RUNNABLE
        idle = [c for c, t in enumerate(self.cpus) if t is None]
        if idle:
            cpu = thread.last_cpu if thread.last_cpu in idle else idle[0]
            self.dispatch(cpu, thread)  # type: ignore[arg-type]
            return
        if high_priority:
            # A real-time-like wake takes CPU 0 at once; the victim keeps its place.
            victim = self.cpus[0]
            assert victim is not None
            self.account(victim)
            victim.work_gen += 1
            victim.state = RUNNABLE
            victim.cpu = None
            self.runqueues[0].appendleft(victim)
            self.dispatch(0, thread)
            return
        if thread.last_cpu is not None:
            target = thread.last_cpu
        else:
            target = min(range(len(self.cpus)), key=lambda c: len(self.runqueues[c]))
        self.runqueues[target].append(thread)

    def wake_preempting(
        self, thread: Thread, cpu: int, parity: bool = True, victim_first: bool = False
    ) -> None:
        """A short sleeper's wake-up on `cpu` (EEVDF's wake-up preemption): it takes the
        CPU at once unless the current thread's slice is still protected (run for less
        than a slice since it was dispatched, RUN_TO_PARITY), in which case it queues as
        any wake-up does; `parity=False` where the wake-up replays a measured preemption
        (`sim.gowakers`). The victim goes to the back of the queue: a thread that
        has been waiting is owed more CPU than one that just ran, so it runs first when
        the sleeper leaves; with `victim_first` it goes to the front and gets the CPU
        back (a sleeper that ran a few µs, measured so). An idle CPU is taken as by
        `wake`."""
        victim = self.cpus[cpu]
        if victim is None or any(t is None for t in self.cpus):
            self.wake(thread)
            return
        if parity and self.env.now - victim.slice_start_ns < self.slice_ns:
            thread.last_cpu = cpu
            self.wake(thread)
            return
        self.account(victim)
        victim.work_gen += 1
        victim.state = RUNNABLE
        victim.cpu = None
        if victim_first:
            self.runqueues[cpu].appendleft(victim)
        else:
            self.runqueues[cpu].append(victim)
        self.dispatch(cpu, thread)

    def start(self, threads: list[Thread]) -> None:
        for thread in threads:
            self.wake(thread)

    # -- the GIL ------------------------------------------------------------------------

    def gil_acquire(self, thread: Thread) -> bool:
        """Take the GIL or start waiting for it (off-CPU). True if taken at once."""
        thread.needs_gil_now = True
        if thread.holds_gil:
            return True
        if self.gil_holder is None:
            self._gil_take(thread)
            return True
        self.gil_waiters.append(thread)
        self.block(thread, GIL_WAIT)
        self._arm_drop_request(thread)
        return False

    def _gil_take(self, thread: Thread) -> None:
        self.gil_holder = thread
        thread.holds_gil = True
        thread.gil_drop_request = False
        self.gil_episode += 1

    def _arm_drop_request(self, waiter: Thread) -> None:
        assert self.gil_switch_interval_ns is not None
        episode = self.gil_episode
        after(self.env, self.gil_switch_interval_ns, self._drop_request, waiter, episode)

    def _drop_request(self, waiter: Thread, episode: int) -> None:
        if waiter.state != GIL_WAIT or self.gil_episode != episode:
            return
        after(self.env, GIL_DROP_LATENCY_NS, self._drop_now, waiter, episode)

    def _drop_now(self, waiter: Thread, episode: int) -> None:
        if waiter.state != GIL_WAIT or self.gil_episode != episode:
            return
        holder = self.gil_holder
        if holder is None:
            return
        if holder.state == RUNNING:
            self.gil_force_drop(holder)
        else:
            holder.gil_drop_request = True

    def gil_force_drop(self, holder: Thread) -> None:
        """The holder saw a drop request: hand over and wait for the GIL again."""
        self.gil_release(holder)
        self.gil_waiters.append(holder)
        self.block(holder, GIL_WAIT)
        if self.gil_holder is not holder:
            self._arm_drop_request(holder)

    def gil_release(self, thread: Thread) -> None:
        if not thread.holds_gil:
            return
        thread.holds_gil = False
        thread.gil_drop_request = False
        thread.needs_gil_now = False
        self.gil_holder = None
        if self.gil_waiters:
            if self.gil_rng is not None and len(self.gil_waiters) > 1:
                index = self.gil_rng.randrange(len(self.gil_waiters))
                nxt = self.gil_waiters[index]
                del self.gil_waiters[index]
            else:
                nxt = self.gil_waiters.popleft()
            self._gil_take(nxt)
            self.gil_handovers += 1
            if self.gil_waiters:
                self._arm_drop_request(self.gil_waiters[0])
            self.wake(nxt)
