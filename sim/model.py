"""The simulation: kernel ticks drive timer checks, checks raise signals, handlers sample.

This module is the loop that runs the mechanisms together in virtual time (integer
nanoseconds, SimPy): it builds them from a scenario, runs the threads' programs, the
tick rounds, the timer checks and the signal deliveries, and stops.

1. **Thread programs.** Each workload thread (`sim.workload`) repeats its steps: CPU work
   on the machine (`sim.machine`, with the GIL for Python steps) or a sleep, which ends
   on a high-resolution timer between ticks, never on a tick instant (`sim.sleeps`). A
   Go M takes the profiling rate (its profilehz and, from Go 1.18, its own timer)
   lazily, at its next `execute()`: a step's end, or sysmon's preemption of a goroutine
   that ran 10 ms, seen at a tick (`sim.runtimes`); until then its signals are
   discarded. With `workload.gomaxprocs`, a goroutine's Go code also needs one of Go's
   Ps (`sim.gosched`): the goroutines beyond GOMAXPROCS wait off the CPU, and sysmon's
   10 ms preemption, seen at a tick, hands a P on; without it the kernel time-slices
   every goroutine as a thread. A Go workload may also list the runtime's own threads
   that wake between ticks (`workload.runtime_wakers`, `sim.gowakers`): each wake-up
   takes a CPU from a busy thread for a few µs.
2. **Tick round.** At each tick instant the CPUs that tick together do, in a random order
   weighted by `cpu_check_bias`: account the tick to the current thread (the process clock
   gains a whole tick, `sim.cputimers`), run the timer *fast path* (flag the thread when
   its own timer or the process timer is due) and reschedule (preempt a thread whose
   slice is used up when someone waits). Only then do the flagged checks run, and only
   after every check of the round has generated its signal are signals delivered: this
   two-phase order is what makes a second same-round process signal find the first one
   still pending (`legacy_queue` in kernel/signal.c, `sim.signals`;
   docs/walkthrough/03-signals-and-coalescing.md). With `tick_skew`, each CPU ticks alone,
   at its own offset.
3. **Deferred check.** A thread preempted by the tick that flagged it runs its check when
   it is next dispatched, against the clocks of that later moment
   (`exit_to_user_mode_loop`).
4. **Delivery** at the receiver's return to user mode: perf signals, then thread-directed
   timer signals (each re-arms its timer and counts its overruns), then shared ones; each
   goes to the runtime's handler (`sim.handler`), whose CPU cost is spent on the receiver
   before its own work, and whose sample goes to profBuf (`sim.profbuf`) and on to the
   reader thread (`sim.reader`). With `timer: perf` there are no tick checks at all:
   each thread's overflows are scheduled on its exact CPU clock (`sim.perfsignals`). On
   Windows there are no signals: a sampler thread suspends the threads (`sim.suspend`).
5. **Stop.** Timers are disarmed at the end of the workload's duration; what is still
   pending is counted, CPython's tripped deliveries are discarded, Go's extra buffer is
   flushed, and the reader drains to EOF. The report is built from the counts
   (`sim.results`); a trace window, if asked for, records the timeline (`sim.trace`).

Randomness comes from the scenario's seed alone: one stream for the round orders, the
signals' survival and the thread timers' first expiries, one of its own for GIL
hand-overs, one for where sleeps end in the timer slack (`sim.sleeps`, seeded
`sleeps/{seed}`), and one for the Go runtime's wakers (`wakers/{seed}`). Events are
created in a fixed order, so a seed gives the same run, bit for bit. Ground truth is
exact: the CPU each leaf function and each workload thread received, from the machine's
accounting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator, Iterator
from typing import Any

import simpy

from contract.profile import Profile
from contract.scenario import PYTHON_RUNTIMES, Scenario
from sim.context import RunContext
from sim.cputimers import ProcessTimer, ThreadTimer, itimer_interval_ns, thread_timer_interval_ns
from sim.gosched import Processors
from sim.gowakers import RuntimeWakers
from sim.handler import Handler
from sim.machine import RUNNING, SLEEPING, Machine, Thread
from sim.perfevents import perf_hrtimer_period_ns
from sim.perfsignals import PerfSignals
from sim.profbuf import ProfBuf
from sim.reader import Reader
from sim.results import SimResult, sim_report
from sim.runtimes import GO_FORCE_PREEMPT_NS, RuntimeSpec, runtime_spec
from sim.signals import SI_KERNEL, SI_POLL_IN, SI_TIMER, ProcessSignals
from sim.sleeps import Sleeps
from sim.suspend import SuspendSampler
from sim.trace import Trace
from sim.workload import build_threads

__all__ = ["SimResult", "Simulation", "Trace", "simulate"]


class _CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts scheduled events (for the benchmark)."""

    def __init__(self) -> None:
        super().__init__()
        self.events_scheduled = 0

    def schedule(self, event, priority=1, delay=0):  # type: ignore[no-untyped-def]
        self.events_scheduled += 1
        super().schedule(event, priority, delay)


class Simulation:
    """One run of a scenario: the mechanisms, wired together, and the loop that drives them."""

    def __init__(self, scenario: Scenario, trace_window_ms: tuple[float, float] | None = None):
        self.scenario = scenario
        self.spec: RuntimeSpec = runtime_spec(scenario.profiler)
        self.env = _CountingEnvironment()
        self.rng = random.Random(scenario.seed)
        machine_cfg = scenario.machine
        self.tick_ns = machine_cfg.tick_ns
        self.duration_ns = round(scenario.workload.duration_s * 1e9)
        # A free-threaded interpreter has no GIL to model: its Python steps run in parallel.
        gil = scenario.profiler.model in PYTHON_RUNTIMES and not scenario.profiler.free_threaded
        gil_ns = round(scenario.profiler.gil_switch_interval_ms * 1e6) if gil else None
        # A stream of its own, so GIL hand-overs do not shift the rest of a seeded run.
        gil_rng = random.Random(f"gil/{scenario.seed}") if gil else None
        self.machine = Machine(
            self.env, machine_cfg.cpus, machine_cfg.slice_ns, gil_ns, gil_rng=gil_rng
        )
        self.machine.on_return_to_user = self._return_to_user
        self.rate_hz = scenario.profiler.rate_hz

        self.threads: list[Thread] = []
        for tid, spec in enumerate(build_threads(scenario), start=1):
            thread = Thread(tid, spec.name, spec.group, spec.kind, spec.program)
            thread.is_main = spec.is_main
            thread.on_work_done = self._next_op
            self.threads.append(thread)
        self.main_thread = self.threads[0]

        self.signals = ProcessSignals(
            machine_cfg.same_round_survival,
            self.rng,
            same_round_survival_after_switch=machine_cfg.same_round_survival_after_switch,
        )
        self.counters = self.signals.counters
        self.process_timer = (
            ProcessTimer(itimer_interval_ns(self.rate_hz), self.tick_ns)
            if self.spec.process_timer
            else None
        )
        self.thread_interval_ns = thread_timer_interval_ns(self.rate_hz)
        self.perf_period_ns = perf_hrtimer_period_ns(self.rate_hz)
        self.perf_delivery_ns = round(machine_cfg.perf_delivery_us * 1000)
        self.profbuf = ProfBuf(
            self.spec.buffer_words, self.spec.tag_capacity, self.spec.free_on_read
        )
        self.profile = Profile(self.rate_hz, start_time_ns=0, duration_ns=self.duration_ns)
        self.round_id = 0
        self.in_round = False  # returns to user mode wait for the round's check phase
        self.stopped = False
        self._started = 0.0
        self._extra_stop_events = 0
        self.switch_times_ns: list[int] = []

        self.ctx = RunContext(self.env, self.machine, self.spec, self.counters, self._event)
        self.sleeps = Sleeps(self.env, scenario.seed)
        self.reader = Reader(
            self.ctx,
            self.profbuf,
            self.profile,
            round(scenario.profiler.reader_period_ms * 1e6),
            scenario.profiler.reader_cost_us_per_sample,
            self.sleeps,
            Sleeps(self.env, scenario.seed, "reader-watch"),
        )
        self.handler = Handler(self.ctx, self.profbuf, self.reader, self.main_thread)
        self.perf = PerfSignals(self.ctx, self.perf_period_ns, self.perf_delivery_ns, self._deliver)
        self.sampler: SuspendSampler | None = None
        # Go's Ps, when the scenario caps them (workload.gomaxprocs); else no cap.
        self.procs: Processors | None = None
        gomaxprocs = scenario.workload.gomaxprocs
        if gomaxprocs is not None:
            self.procs = Processors(self.machine, gomaxprocs, self._p_granted)
            self.reader.acquire_p = lambda t: self.procs.acquire(t, front=True)  # type: ignore[union-attr]
            self.reader.release_p = self.procs.release

        # Go's runtime threads that wake between ticks (workload.runtime_wakers), if any.
        self.wakers = RuntimeWakers(
            self.env,
            self.machine,
            scenario.workload.runtime_wakers,
            scenario.seed,
            lambda: self.stopped,
        )

        self.trace: Trace | None = None
        if trace_window_ms is not None:
            start, end = (round(v * 1e6) for v in trace_window_ms)
            self.trace = Trace(
                start, end, machine_cfg.cpus, self.tick_ns, [t.name for t in self.threads]
            )
            self.machine.on_segment = self._trace_segment

    # -- tracing ----------------------------------------------------------------------

    def _event(self, kind: str, thread: Thread) -> None:
        if self.trace is not None:
            self.trace.add_event(self.env.now, kind, thread.name)

    def _trace_segment(self, cpu: int, thread: Thread, start: int, end: int) -> None:
        assert self.trace is not None
        self.trace.add_segment(cpu, thread.name, start, end)

    # -- thread programs --------------------------------------------------------------

    def _start(self) -> None:
        if self.spec.perf_events:
            self.perf.open(self.threads)
        for thread in self.threads:
            thread.state = SLEEPING  # "new": not on a CPU, not queued
            self._begin_op(thread)
        for thread in self.threads:
            if self.spec.lazy_switch:
                if thread.kind == "go":
                    # Busy goroutines were running before profiling started; their Ms
                    # switch at the next execute().
                    thread.exec_due_cpu_ns = thread.sum_exec_ns + GO_FORCE_PREEMPT_NS
            elif self.spec.thread_timers:
                self._arm_thread_timer(thread)
        self.reader.start()
        self.wakers.start()
        if self.spec.suspend_sampler:
            self.sampler = SuspendSampler(self.ctx, self.threads, self.handler)
            self.sampler.start()

    def _arm_thread_timer(self, thread: Thread) -> None:
        if thread.kind != "go" or self.stopped:
            return
        thread.timer = ThreadTimer(
            self.thread_interval_ns, self.machine.current_cpu_ns(thread), self.rng
        )
        thread.timer_valid = True

    def _execute(self, thread: Thread) -> None:
        """Go's execute(): the M's lazy switch, setThreadCPUProfiler(sched.profilehz).

        It sets the M's profilehz (from then on sigprof keeps its signals) and, where the
        runtime has per-thread timers, arms the M's own timer."""
        if self.spec.lazy_switch and thread.kind == "go" and not thread.profilehz_set:
            if self.stopped:
                return
            thread.profilehz_set = True
            self.switch_times_ns.append(self.env.now)
            if self.spec.thread_timers:
                self._arm_thread_timer(thread)

    def _p_granted(self, thread: Thread) -> None:
        """A waiting goroutine got a P: its M runs execute() and is woken."""
        if thread.truth:
            self._execute(thread)
        self.machine.wake(thread)

    def _begin_op(self, thread: Thread) -> None:
        op = thread.program[thread.step_index]
        thread.op = op
        machine = self.machine
        procs = self.procs
        if procs is not None and not op.needs_p:
            procs.release(thread)  # entersyscall, a cgo call, a park: the P goes on
        if op.kind in ("sleep", "syscall"):
            machine.gil_release(thread)
            machine.block(thread, SLEEPING)
            thread.in_syscall = op.kind == "syscall"
            # An hrtimer ends the sleep (or the blocking call), between ticks (sim.sleeps).
            self.sleeps.sleep(op.duration_ns, self._next_op, thread)
            return
        thread.in_syscall = False
        if not op.needs_gil:
            machine.gil_release(thread)
        machine.start_work(thread, op.duration_ns)
        if op.needs_gil and not machine.gil_acquire(thread):
            return  # waiting for the GIL; woken by the hand-over
        if procs is not None and op.needs_p and not procs.acquire(thread):
            return  # waiting for a P; woken by _p_granted
        if thread.state != RUNNING:
            machine.wake(thread)
        elif thread.is_main and self.handler.tripped:
            self.handler.run_python_handler()

    def _next_op(self, thread: Thread) -> None:
        """The thread's step is done (its work, or its sleep): on to the next one."""
        thread.step_index = (thread.step_index + 1) % len(thread.program)
        self._execute(thread)
        self._begin_op(thread)

    # -- ticks ------------------------------------------------------------------------

    def _tick_groups(self) -> list[tuple[int, list[int]]]:
        cpus = self.scenario.machine.cpus
        if not self.scenario.machine.tick_skew:
            return [(0, list(range(cpus)))]
        # skew_tick=1: CPU n ticks n*T/(2*cpus) later (kernel/time/tick-sched.c).
        return [(cpu * self.tick_ns // (2 * cpus), [cpu]) for cpu in range(cpus)]

    def _tick_loop(self, offset_ns: int, cpus: list[int]) -> Generator[simpy.Event, Any, None]:
        k = 1
        while True:
            when = k * self.tick_ns + offset_ns
            if when >= self.duration_ns:
                return
            yield self.env.timeout(when - self.env.now)
            self._round(cpus)
            k += 1

    def _round_order(self, cpus: list[int]) -> list[int]:
        if len(cpus) == 1:
            return cpus
        bias = self.scenario.machine.cpu_check_bias
        rng = self.rng
        if bias is None:
            order = list(cpus)
            rng.shuffle(order)
            return order
        # Weighted order without replacement (Efraimidis-Spirakis keys u^(1/w)).
        return sorted(cpus, key=lambda c: -(rng.random() ** (1.0 / bias[c])))

    def _round(self, cpus: list[int]) -> None:
        machine = self.machine
        self.round_id += 1
        order = self._round_order(cpus)
        trace = self.trace if self.trace is not None and self.trace.covers(self.env.now) else None
        self.in_round = True
        pt = self.process_timer
        # Phase 1a: every CPU of the round charges its tick. account_process_tick is the
        # first thing update_process_times does and the timer fast path the last, so by
        # the time any CPU looks at the process clock, all simultaneous ticks are in it.
        for cpu in order:
            if trace is not None:
                trace.ticks.append((cpu, self.env.now))
            current = machine.cpus[cpu]
            if current is not None:
                machine.account(current)
                if pt is not None:
                    pt.charge_tick(self.tick_ns)
        # Phase 1b: fast path (flag the task) and reschedule, CPU by CPU.
        before_switch = {cpu: machine.cpus[cpu] for cpu in order}
        for cpu in order:
            current = machine.cpus[cpu]
            if current is None:
                continue
            if current.truth:
                if (
                    self.spec.lazy_switch
                    and not current.profilehz_set
                    and current.kind == "go"
                    and current.sum_exec_ns >= current.exec_due_cpu_ns
                ):
                    self._execute(current)  # sysmon preempted the goroutine: execute()
                if not current.work_scheduled and (
                    (current.timer is not None and current.timer.due(current.sum_exec_ns))
                    or (pt is not None and pt.due())
                ):
                    current.work_scheduled = True
                if self.procs is not None and self.procs.maybe_preempt(current):
                    continue  # sysmon took its P: another goroutine runs instead
            machine.preempt(cpu)
        self.in_round = False
        # Phase 2a: every flagged thread now current runs its check (threads dispatched
        # by this round's preemptions included: they return to user mode now).
        for cpu in order:
            current = machine.cpus[cpu]
            if current is not None and current.work_scheduled:
                self._check(current, after_switch=current is not before_switch[cpu])
        # Phase 2b: deliveries at the return to user mode.
        for cpu in order:
            current = machine.cpus[cpu]
            if current is not None:
                self._deliver(current)
                if current.is_main and self.handler.tripped:
                    self.handler.run_python_handler()
        if self.signals.pending:
            self.signals.release_stale()

    # -- checks, signals, handlers ------------------------------------------------------

    def _return_to_user(self, thread: Thread) -> None:
        if thread.perf is not None:
            self.perf.sched_in(thread)
        if not thread.truth:
            if thread is self.reader.thread:
                self.reader.run()
            elif self.wakers.owns(thread):
                self.wakers.run(thread)
            return
        if self.in_round:
            return  # a tick-time dispatch: the round's phase 2 checks and delivers
        if thread.work_scheduled:
            self._check(thread, after_switch=True)
        self._deliver(thread)
        if thread.is_main and self.handler.tripped:
            self.handler.run_python_handler()

    def _check(self, thread: Thread, after_switch: bool = False) -> None:
        thread.work_scheduled = False
        if self.stopped:
            return
        timer = thread.timer
        if timer is not None and timer.due(self.machine.current_cpu_ns(thread)):
            timer.fire()
            thread.private_pending += 1
            self.counters.generated += 1
            self.counters.generated_thread += 1
            self._event("expiry-thread", thread)
        pt = self.process_timer
        if pt is not None and pt.check():
            outcome = self.signals.generate(thread, self.round_id, self.threads, after_switch)
            self._event("expiry-process" if outcome == "queued" else "drop-pending", thread)

    def _deliver(self, thread: Thread) -> None:
        if self.stopped:
            return
        if thread.in_handler:
            if thread.perf is not None and thread.perf.pending:
                self.perf.at_sigreturn(thread)
            return
        shared = self.signals.take_for(thread) if self.signals.pending else 0
        private = thread.private_pending
        perf = thread.perf is not None and thread.perf.take()
        if not shared and not private and not perf:
            return
        thread.private_pending = 0
        if perf:
            self.handler.handle(thread, SI_POLL_IN)
        for _ in range(private):
            assert thread.timer is not None
            overrun = thread.timer.rearm_at_dequeue(self.machine.current_cpu_ns(thread))
            self.counters.timer_overruns += overrun
            self.handler.handle(thread, SI_TIMER)
        for _ in range(shared):
            self.handler.handle(thread, SI_KERNEL)

    # -- run ----------------------------------------------------------------------------

    def _stop(self) -> None:
        machine = self.machine
        for thread in [*self.threads, self.reader.thread, *self.wakers.specs]:
            machine.account(thread)
        self.stopped = True
        self.reader.stopped = True
        self.perf.stopped = True
        if self.sampler is not None:
            self.sampler.stopped = True
        self.counters.pending_at_stop = len(self.signals.pending) + sum(
            t.private_pending + (t.perf is not None and t.perf.pending) for t in self.threads
        )
        self.handler.stop()
        self.reader.drain()

    def run(self) -> SimResult:
        for _ in self.run_in_slices(1):
            pass
        return self.result()

    def run_in_slices(self, slices: int) -> Iterator[float]:
        """Run as `run` does, in `slices` equal spans of virtual time, yielding the share
        of the duration done after each (the browser's progress bar and Cancel sit between
        them); then call `result()`. Each span ends with SimPy's `run(until=...)` stop
        event, scheduled URGENT before the span's last instant: the model's events keep
        their order (time, priority, then creation), so the report is the same for any
        `slices`; `sim_events` counts one stop event, as `run` does."""
        self._started = time.perf_counter()
        self._start()
        for offset, cpus in self._tick_groups():
            self.env.process(self._tick_loop(offset, cpus))
        ends = sorted({self.duration_ns * k // slices for k in range(1, slices + 1)} - {0})
        for end_ns in ends:
            self.env.run(until=end_ns)
            yield end_ns / self.duration_ns
        # SimPy schedules each stop event twice: once, and again when it stops the run.
        self._extra_stop_events = 2 * (len(ends) - 1)
        self._stop()

    def result(self) -> SimResult:
        """The report of a run that `run_in_slices` finished."""
        elapsed = time.perf_counter() - self._started
        report = sim_report(
            self.scenario,
            self.spec,
            counters=self.counters,
            handler=self.handler,
            machine=self.machine,
            threads=self.threads,
            profile=self.profile,
            duration_ns=self.duration_ns,
            perf_period_ns=self.perf_period_ns,
            switch_times_ns=self.switch_times_ns,
        )
        stats = {
            "wall_time_s": elapsed,
            "sim_events": self.env.events_scheduled - self._extra_stop_events,
            "context_switches": self.machine.context_switches,
            "gil_handovers": self.machine.gil_handovers,
            "reader_reads": self.reader.reads,
            "reader_watches": self.reader.watches,
            "runtime_wakes": self.wakers.wakes,
            "runtime_wakes_skipped": self.wakers.wakes_skipped,
            "reader_records": self.reader.records,
            "profbuf_max_used_words": self.profbuf.max_used_words,
            "process_timer_fires": self.process_timer.fires if self.process_timer else 0,
            "same_round_survivals": self.counters.survived_same_round,
            "lazy_switch_last_ms": (
                max(self.switch_times_ns) / 1e6 if self.switch_times_ns else None
            ),
        }
        return SimResult(self.scenario, report, self.profile, self.trace, stats)


def simulate(scenario: Scenario, trace_window_ms: tuple[float, float] | None = None) -> SimResult:
    """Run one scenario in the simulated world."""
    return Simulation(scenario, trace_window_ms).run()
