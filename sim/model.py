"""The simulation: kernel ticks drive timer checks, checks raise signals, handlers sample.

This module wires the mechanisms together in virtual time (integer nanoseconds, SimPy):

1. **Tick round.** At each tick instant the CPUs that tick together do, in a random order
   weighted by `cpu_check_bias`: account the tick to the current thread (the process clock
   gains a whole tick), run the timer *fast path* (flag the thread when its own timer or
   the process timer is due) and reschedule (preempt a thread whose slice is used up when
   someone waits). Only then do the flagged checks run, and only after every check of
   the round has generated its signal are signals delivered: this two-phase order is what
   makes a second same-round process signal find the first one still pending
   (`legacy_queue` in kernel/signal.c; docs/walkthrough/03-signals-and-coalescing.md).
2. **Deferred check.** A thread preempted by the tick that flagged it runs its check when
   it is next dispatched, against the clocks of that later moment
   (`exit_to_user_mode_loop`).
3. **Delivery** at the receiver's return to user mode: thread-directed signals first,
   then shared ones; the handler's CPU cost is spent on the receiver before its own work.
   With `timer: perf` there are no tick checks at all (`sim.perfevents`): each thread's
   next overflow is scheduled at the instant its exact CPU clock reaches it (recomputed
   at every dispatch), and its signal is delivered `perf_delivery_us` later, or when the
   thread next runs, or when its running handler returns.
4. **Runtime policy** (`sim.runtimes`): record, discard, merge; Go's extra buffer for
   non-Go threads; the profBuf (`sim.profbuf`) and its reader, itself a thread that needs
   a CPU (and the GIL under realprof), so a saturated machine can starve it.
5. **Stop.** Timers are disarmed at the end of the workload's duration; what is still
   pending is counted, Go's extra buffer is flushed, and the reader drains to EOF.

Ground truth is exact: the CPU each leaf function and each thread received, from the
machine's accounting. The reader and the Windows sampler thread use CPU but are not part
of the workload's truth and never take a SIGPROF themselves (their bursts are tens of µs).
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from typing import Any

import simpy

from contract.profile import Frame, Profile
from contract.report import Report, build_report
from contract.scenario import PYTHON_RUNTIMES, Scenario
from sim.cputimers import ProcessTimer, ThreadTimer, itimer_interval_ns, thread_timer_interval_ns
from sim.machine import RUNNABLE, RUNNING, SLEEPING, Machine, Thread
from sim.perfevents import PERF_MIN_PERIOD_NS, PerfEvent, perf_hrtimer_period_ns
from sim.profbuf import ProfBuf, Record
from sim.runtimes import GO_FORCE_PREEMPT_NS, PYTHON_HANDLER_COST_NS, RuntimeSpec, runtime_spec
from sim.signals import SI_KERNEL, SI_POLL_IN, SI_SUSPEND, SI_TIMER, ProcessSignals
from sim.workload import build_threads

READER_BASE_COST_NS = 5_000
READER_STACK = (Frame("runtime/pprof.profileWriter"),)


@dataclass
class Trace:
    """What happened in a short window, for the timeline figure."""

    start_ns: int
    end_ns: int
    cpus: int
    tick_ns: int
    threads: list[str]
    segments: list[tuple[int, str, int, int]] = field(default_factory=list)  # cpu, thread, t0, t1
    ticks: list[tuple[int, int]] = field(default_factory=list)  # cpu, t
    events: list[tuple[int, str, str]] = field(default_factory=list)  # t, kind, thread

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "cpus": self.cpus,
            "tick_ns": self.tick_ns,
            "threads": self.threads,
            "segments": [list(s) for s in self.segments],
            "ticks": [list(t) for t in self.ticks],
            "events": [list(e) for e in self.events],
        }


@dataclass
class SimResult:
    scenario: Scenario
    report: Report
    profile: Profile
    trace: Trace | None
    stats: dict[str, Any]


class _CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts scheduled events (for the benchmark)."""

    def __init__(self) -> None:
        super().__init__()
        self.events_scheduled = 0

    def schedule(self, event, priority=1, delay=0):  # type: ignore[no-untyped-def]
        self.events_scheduled += 1
        super().schedule(event, priority, delay)


class Simulation:
    def __init__(self, scenario: Scenario, trace_window_ms: tuple[float, float] | None = None):
        self.scenario = scenario
        self.spec: RuntimeSpec = runtime_spec(scenario.profiler)
        self.env = _CountingEnvironment()
        self.rng = random.Random(scenario.seed)
        machine_cfg = scenario.machine
        self.tick_ns = machine_cfg.tick_ns
        self.duration_ns = round(scenario.workload.duration_s * 1e9)
        python = scenario.profiler.runtime in PYTHON_RUNTIMES
        gil_ns = round(scenario.profiler.gil_switch_interval_ms * 1e6) if python else None
        # A stream of its own, so GIL hand-overs do not shift the rest of a seeded run.
        gil_rng = random.Random(f"gil/{scenario.seed}") if python else None
        self.machine = Machine(
            self.env, machine_cfg.cpus, machine_cfg.slice_ns, gil_ns, gil_rng=gil_rng
        )
        self.machine.on_return_to_user = self._return_to_user
        self.rate_hz = scenario.profiler.rate_hz

        self.threads: list[Thread] = []
        for tid, spec in enumerate(build_threads(scenario), start=1):
            thread = Thread(tid, spec.name, spec.group, spec.kind, spec.program)
            thread.is_main = spec.is_main
            thread.on_work_done = self._op_done
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
        # Outcomes of delivered signals, each counted where it happens.
        self.recorded = 0
        self.lost_overflow = 0
        self.lost_extra = 0
        self.discarded = 0
        self.merged = 0
        self.tripped = 0  # CPython: deliveries waiting for the main thread's handler
        self.extra: list[tuple[tuple[Frame, ...], str]] = []
        self.extra_used_words = 0
        self.lost_extra_pending = 0
        self.reader_records = 0
        self.reader_reads = 0
        self.round_id = 0
        self.in_round = False  # returns to user mode wait for the round's check phase
        self.stopped = False
        self.timer_switch_times_ns: list[int] = []

        self.reader = Thread(0, "reader", "reader", "reader", ())
        self.reader.truth = False
        self.reader.on_work_done = self._reader_done
        self.reader.state = SLEEPING
        self.reader_wake_pending = False
        self.sampler: Thread | None = None

        self.trace: Trace | None = None
        if trace_window_ms is not None:
            start, end = (round(v * 1e6) for v in trace_window_ms)
            self.trace = Trace(
                start, end, machine_cfg.cpus, self.tick_ns, [t.name for t in self.threads]
            )
            self.machine.on_segment = self._trace_segment

    # -- tracing ----------------------------------------------------------------------

    def _tracing(self) -> bool:
        return self.trace is not None and self.trace.start_ns <= self.env.now <= self.trace.end_ns

    def _event(self, kind: str, thread: Thread) -> None:
        if self.trace is not None and self._tracing():
            self.trace.events.append((self.env.now, kind, thread.name))

    def _trace_segment(self, cpu: int, thread: Thread, start: int, end: int) -> None:
        trace = self.trace
        assert trace is not None
        if end > trace.start_ns and start < trace.end_ns:
            trace.segments.append(
                (cpu, thread.name, max(start, trace.start_ns), min(end, trace.end_ns))
            )

    # -- thread programs --------------------------------------------------------------

    def _start(self) -> None:
        if self.spec.perf_events:
            for thread in self.threads:
                # perf_event_open(tid) + PERF_EVENT_IOC_ENABLE on every thread the runtime
                # created, before any runs: each dispatch below schedules its overflow.
                if thread.kind == "go":
                    thread.perf = PerfEvent(self.perf_period_ns, thread.sum_exec_ns)
        for thread in self.threads:
            thread.state = SLEEPING  # "new": not on a CPU, not queued
            self._begin_op(thread)
        if self.spec.thread_timers:
            for thread in self.threads:
                if self.spec.lazy_thread_timers:
                    if thread.kind == "go":
                        # Busy goroutines were running before profiling started; their
                        # Ms switch at the next execute().
                        thread.exec_due_cpu_ns = thread.sum_exec_ns + GO_FORCE_PREEMPT_NS
                else:
                    self._arm_thread_timer(thread)
        if self.spec.reader == "periodic":
            self.env.process(self._reader_loop())
        if self.spec.suspend_sampler:
            self.sampler = Thread(0, "profileLoop", "profileLoop", "sampler", ())
            self.sampler.truth = False
            self.sampler.on_work_done = lambda t: self.machine.block(t, SLEEPING)
            self.env.process(self._windows_sampler())

    def _arm_thread_timer(self, thread: Thread) -> None:
        if thread.kind != "go" or self.stopped:
            return
        thread.timer = ThreadTimer(
            self.thread_interval_ns, self.machine.current_cpu_ns(thread), self.rng
        )
        thread.timer_valid = True
        if self.spec.lazy_thread_timers:
            self.timer_switch_times_ns.append(self.env.now)

    def _execute(self, thread: Thread) -> None:
        """Go's execute(): the M's lazy switch to its own timer."""
        if (
            self.spec.lazy_thread_timers
            and self.spec.thread_timers
            and thread.kind == "go"
            and not thread.timer_valid
        ):
            self._arm_thread_timer(thread)

    def _begin_op(self, thread: Thread) -> None:
        op = thread.program[thread.step_index]
        thread.op = op
        machine = self.machine
        if op.kind == "sleep":
            machine.gil_release(thread)
            machine.block(thread, SLEEPING)
            event = self.env.timeout(op.duration_ns)
            event.callbacks.append(lambda _e, t=thread: self._sleep_done(t))
            return
        if not op.needs_gil:
            machine.gil_release(thread)
        machine.start_work(thread, op.duration_ns)
        if op.needs_gil and not machine.gil_acquire(thread):
            return  # waiting for the GIL; woken by the hand-over
        if thread.state != RUNNING:
            machine.wake(thread)
        elif thread.is_main and self.tripped:
            self._run_python_handler()

    def _next_op(self, thread: Thread) -> None:
        thread.step_index = (thread.step_index + 1) % len(thread.program)
        self._execute(thread)
        self._begin_op(thread)

    def _op_done(self, thread: Thread) -> None:
        self._next_op(thread)

    def _sleep_done(self, thread: Thread) -> None:
        self._next_op(thread)

    # -- ticks ------------------------------------------------------------------------

    def _tick_groups(self) -> list[tuple[int, list[int]]]:
        cpus = self.scenario.machine.cpus
        if not self.scenario.machine.tick_skew:
            return [(0, list(range(cpus)))]
        # skew_tick=1: CPU n ticks n*T/(2*cpus) later (kernel/time/tick-sched.c).
        return [(cpu * self.tick_ns // (2 * cpus), [cpu]) for cpu in range(cpus)]

    def _tick_loop(self, offset_ns: int, cpus: list[int]):
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
        tracing = self._tracing()
        self.in_round = True
        pt = self.process_timer
        # Phase 1a: every CPU of the round charges its tick. account_process_tick is the
        # first thing update_process_times does and the timer fast path the last, so by
        # the time any CPU looks at the process clock, all simultaneous ticks are in it.
        for cpu in order:
            if tracing:
                self.trace.ticks.append((cpu, self.env.now))  # type: ignore[union-attr]
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
                    self.spec.lazy_thread_timers
                    and self.spec.thread_timers
                    and not current.timer_valid
                    and current.kind == "go"
                    and current.sum_exec_ns >= current.exec_due_cpu_ns
                ):
                    self._execute(current)  # sysmon preempted the goroutine: execute()
                if not current.work_scheduled and (
                    (current.timer is not None and current.timer.due(current.sum_exec_ns))
                    or (pt is not None and pt.due())
                ):
                    current.work_scheduled = True
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
                if current.is_main and self.tripped:
                    self._run_python_handler()
        if self.signals.pending:
            self.signals.release_stale()

    # -- checks, signals, handlers ------------------------------------------------------

    def _return_to_user(self, thread: Thread) -> None:
        if thread.perf is not None:
            self._perf_sched_in(thread)
        if not thread.truth:
            if thread is self.reader:
                self._reader_run()
            return
        if self.in_round:
            return  # a tick-time dispatch: the round's phase 2 checks and delivers
        if thread.work_scheduled:
            self._check(thread, after_switch=True)
        self._deliver(thread)
        if thread.is_main and self.tripped:
            self._run_python_handler()

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
                self._perf_at_sigreturn(thread)
            return
        shared = self.signals.take_for(thread) if self.signals.pending else 0
        private = thread.private_pending
        perf = thread.perf is not None and thread.perf.take()
        if not shared and not private and not perf:
            return
        thread.private_pending = 0
        if perf:
            self._handle(thread, SI_POLL_IN)
        for _ in range(private):
            assert thread.timer is not None
            overrun = thread.timer.rearm_at_dequeue(self.machine.current_cpu_ns(thread))
            self.counters.timer_overruns += overrun
            self._handle(thread, SI_TIMER)
        for _ in range(shared):
            self._handle(thread, SI_KERNEL)

    # -- perf_event task-clock events (sim.perfevents) --------------------------------------

    def _perf_sched_in(self, thread: Thread) -> None:
        """task_clock_event_start: arm the hrtimer for what is left of the period."""
        event = thread.perf
        assert event is not None
        token = event.sched_in()
        if self.stopped:
            return
        # Dispatch has just set run_start_ns: sum_exec_ns is the thread's CPU time now.
        delay = event.remaining_ns(thread.sum_exec_ns)
        timeout = self.env.timeout(delay)
        timeout.callbacks.append(lambda _e, t=thread, k=token: self._perf_overflow(t, k))

    def _perf_overflow(self, thread: Thread, token: int) -> None:
        """perf_swevent_hrtimer on the thread's CPU: overflow, restart, raise SIGPROF."""
        event = thread.perf
        assert event is not None
        if self.stopped or event.token != token or thread.state != RUNNING:
            return  # cancelled at sched-out (the next sched-in armed a new one)
        cpu_ns = self.machine.current_cpu_ns(thread)
        if event.due(cpu_ns):
            self.counters.generated += 1
            self.counters.generated_perf += 1
            if event.overflow():
                self._event("expiry-perf", thread)
                timeout = self.env.timeout(self.perf_delivery_ns)
                timeout.callbacks.append(
                    lambda _e, t=thread, q=event.queued: self._perf_deliver(t, q)
                )
            else:
                self.counters.dropped_pending += 1
                self.counters.dropped_perf += 1
                self._event("drop-perf", thread)
        # hrtimer_forward_now: the next expiry is one period after this one.
        timeout = self.env.timeout(event.remaining_ns(cpu_ns))
        timeout.callbacks.append(lambda _e, t=thread, k=token: self._perf_overflow(t, k))

    def _perf_deliver(self, thread: Thread, queued: int | None = None) -> None:
        """The return to user mode after signal `queued`'s interrupt (None: sigreturn)."""
        event = thread.perf
        if self.stopped or event is None or not event.pending or thread.state != RUNNING:
            return  # delivered meanwhile, or the thread's next dispatch delivers it
        if queued is not None and queued != event.queued:
            return  # that signal went at an earlier return to user mode; this one has its own
        self.machine.account(thread)  # brings handler_debt_ns (in_handler) up to now
        self._deliver(thread)

    def _perf_at_sigreturn(self, thread: Thread) -> None:
        """SIGPROF is blocked while the handler runs: try again when it returns."""
        if thread.state != RUNNING:
            return  # the next dispatch tries again
        self.machine.account(thread)
        timeout = self.env.timeout(thread.handler_debt_ns)
        timeout.callbacks.append(lambda _e, t=thread: self._perf_deliver(t))

    def _handle(self, thread: Thread, si_code: int) -> None:
        """The runtime's signal handler, on `thread`."""
        self.counters.delivered += 1
        self.machine.add_handler_time(thread, self.spec.handler_cost_ns)
        self._event("deliver", thread)
        if self.spec.python_handler:
            self.tripped += 1
            if self.main_thread.state == RUNNING:
                self._run_python_handler()
            return
        if not self.spec.accepts(si_code, thread.timer_valid, thread.kind == "go"):
            self.discarded += 1
            self._event("discard", thread)
            return
        self._sample(thread)

    def _run_python_handler(self) -> None:
        """CPython runs the Python-level handler on the main thread, inside bytecode."""
        main = self.main_thread
        op = main.op
        if (
            not self.tripped
            or main.state != RUNNING
            or not main.holds_gil
            or op is None
            or not op.needs_gil
        ):
            return
        self.merged += self.tripped - 1
        self.tripped = 0
        self.machine.add_handler_time(main, PYTHON_HANDLER_COST_NS)
        if self.merged:
            self._event("merge", main)
        self._sample(main)

    def _stack(self, thread: Thread) -> tuple[Frame, ...]:
        op = thread.op
        if op is None or op.kind != "cpu":
            return (Frame("[idle]"),)
        return op.stack

    def _sample(self, thread: Thread) -> None:
        stack = self._stack(thread)
        if thread.kind == "external" and self.spec.extra_words is not None:
            # sigprofNonGo -> cpuprof.addNonGo: [1+n, pcs...] into the extra buffer.
            words = 1 + len(stack)
            if self.extra_used_words + words <= self.spec.extra_words:
                self.extra.append((stack, thread.name))
                self.extra_used_words += words
            else:
                self.lost_extra += 1
                self.lost_extra_pending += 1
                self.lost_overflow += 1
                self._event("lost", thread)
            return
        if self.extra or self.lost_extra_pending:
            self._flush_extra()
        self._write_sample(stack, thread.name, self.env.now, thread)

    def _write_sample(
        self, stack: tuple[Frame, ...], thread_name: str, time_ns: int, thread: Thread | None
    ) -> None:
        record = Record("sample", time_ns, 1, 3 + len(stack), (stack, thread_name))
        if self.profbuf.write(record):
            self.recorded += 1
            if thread is not None:
                self._event("record", thread)
        else:
            self.lost_overflow += 1
            if thread is not None:
                self._event("lost", thread)
        self._maybe_wake_reader()

    def _flush_extra(self) -> None:
        """addExtra: replay non-Go samples (time 0), then the lostExtra count."""
        entries, self.extra, self.extra_used_words = self.extra, [], 0
        for stack, name in entries:
            self._write_sample(stack, name, 0, None)
        if self.lost_extra_pending:
            count, self.lost_extra_pending = self.lost_extra_pending, 0
            # Written as a record whose samples were already counted as lost.
            self.profbuf.write(Record("lost_extra", 0, count, 5))

    # -- the reader -------------------------------------------------------------------

    def _reader_loop(self):
        period_ns = round(self.scenario.profiler.reader_period_ms * 1e6)
        while True:
            yield self.env.timeout(period_ns)
            if self.stopped:
                return
            if self.reader.state == SLEEPING and not self.reader_wake_pending:
                self._wake_reader()

    def _maybe_wake_reader(self) -> None:
        if self.spec.reader != "half-full" or self.reader_wake_pending:
            return
        if self.reader.state != SLEEPING:
            return
        capacity = self.profbuf.capacity_words or 0
        if self.profbuf.unread_words >= capacity // 2 or self.profbuf.overflow_pending:
            self._wake_reader()

    def _wake_reader(self) -> None:
        self.reader_wake_pending = True
        if self.spec.reader_needs_gil and not self.machine.gil_acquire(self.reader):
            return
        self.machine.wake(self.reader)

    def _reader_run(self) -> None:
        if not self.reader_wake_pending:
            return
        self.reader_wake_pending = False
        records = self.profbuf.read()
        self.reader_reads += 1
        self._consume(records)
        cost_us = self.scenario.profiler.reader_cost_us_per_sample
        self.machine.start_work(
            self.reader, READER_BASE_COST_NS + round(cost_us * 1000 * len(records))
        )

    def _reader_done(self, reader: Thread) -> None:
        self.machine.gil_release(reader)
        self.machine.block(reader, SLEEPING)
        if self.spec.reader == "half-full":
            self._maybe_wake_reader()

    def _consume(self, records: list[Record]) -> None:
        for record in records:
            if record.kind == "sample":
                stack, thread_name = record.payload
                self.profile.add(stack, thread_name, record.count)
                self.reader_records += record.count
            elif record.kind == "overflow":
                self.profile.add_lost("overflow", record.count)
            elif record.kind == "lost_extra":
                self.profile.add_lost("extra", record.count)

    # -- Windows ----------------------------------------------------------------------

    def _windows_sampler(self):
        sampler = self.sampler
        assert sampler is not None
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
                self._event("deliver", thread)
                if self.spec.accepts(SI_SUSPEND, False, True):
                    self._sample(thread)
            if sampler.state == SLEEPING:
                self.machine.start_work(sampler, max(1, len(targets)) * self.spec.handler_cost_ns)
                self.machine.wake(sampler, high_priority=True)

    # -- run ----------------------------------------------------------------------------

    def _stop(self) -> None:
        machine = self.machine
        for thread in [*self.threads, self.reader]:
            machine.account(thread)
        self.stopped = True
        self.counters.pending_at_stop = len(self.signals.pending) + sum(
            t.private_pending + (t.perf is not None and t.perf.pending) for t in self.threads
        )
        if self.tripped:
            self.discarded += self.tripped  # the handler was uninstalled before it ran
            self.tripped = 0
        if self.extra or self.lost_extra_pending:
            self._flush_extra()
        self._consume(self.profbuf.read())
        self._consume(self.profbuf.read(eof=True))

    def run(self) -> SimResult:
        started = time.perf_counter()
        self._start()
        for offset, cpus in self._tick_groups():
            self.env.process(self._tick_loop(offset, cpus))
        self.env.run(until=self.duration_ns)
        self._stop()
        elapsed = time.perf_counter() - started
        report = self._report()
        stats = {
            "wall_time_s": elapsed,
            "sim_events": self.env.events_scheduled,
            "context_switches": self.machine.context_switches,
            "gil_handovers": self.machine.gil_handovers,
            "reader_reads": self.reader_reads,
            "reader_records": self.reader_records,
            "profbuf_max_used_words": self.profbuf.max_used_words,
            "process_timer_fires": self.process_timer.fires if self.process_timer else 0,
            "same_round_survivals": self.counters.survived_same_round,
            "timer_switch_last_ms": (
                max(self.timer_switch_times_ns) / 1e6 if self.timer_switch_times_ns else None
            ),
        }
        return SimResult(self.scenario, report, self.profile, self.trace, stats)

    def _report(self) -> Report:
        c = self.counters
        machine = self.machine
        cpu_ns = sum(machine.thread_cpu_ns.get(t.name, 0) for t in self.threads)
        counts = {
            "signals_generated": c.generated,
            "timer_overruns": c.timer_overruns,
            "signals_dropped_pending": c.dropped_pending,
            "signals_pending_at_stop": c.pending_at_stop,
            "signals_delivered": c.delivered,
            "signals_merged": self.merged,
            "signals_discarded": self.discarded,
            "samples_recorded": self.recorded,
            "samples_lost_overflow": self.lost_overflow,
        }
        scenario = self.scenario
        return build_report(
            world="sim",
            scenario=scenario.name,
            runtime=scenario.profiler.runtime,
            timer=self.spec.timer,
            seed=scenario.seed,
            machine=dataclasses.asdict(scenario.machine),
            rate_hz=self.rate_hz,
            wall_seconds=self.duration_ns / 1e9,
            cpu_seconds=cpu_ns / 1e9,
            counts=counts,
            function_samples=self.profile.by_function(),
            thread_samples=self.profile.by_thread(),
            true_function_cpu_s={k: v / 1e9 for k, v in machine.function_cpu_ns.items()},
            true_thread_cpu_s={
                t.name: machine.thread_cpu_ns.get(t.name, 0) / 1e9 for t in self.threads
            },
            notes=self._notes(cpu_ns),
        )

    def _notes(self, cpu_ns: int) -> list[str]:
        """Why samples were lost, stage by stage, in words."""
        c = self.counters
        notes = []
        hz = self.scenario.machine.kernel_hz
        if self.spec.perf_events:
            notes.extend(self._perf_notes())
        elif self.rate_hz > hz and not self.spec.suspend_sampler:
            notes.append(
                f"rate {self.rate_hz:g} Hz is above the kernel tick ({hz} Hz): timers are "
                f"checked only at ticks, so one thread gets at most {hz} signals/s"
            )
        if c.dropped_pending - c.dropped_perf:
            share = (c.dropped_pending - c.dropped_perf) / max(1, c.generated_process)
            notes.append(
                f"{c.dropped_pending - c.dropped_perf} process-timer expiries ({share:.0%}) were "
                "dropped because "
                "a SIGPROF was already pending: one pending signal per process (golang/go #35057)"
            )
        if self.discarded and self.spec.valid_sigprof:
            notes.append(
                f"{self.discarded} signals were discarded as duplicates: on a thread with its "
                "own timer the process timer's signal is ignored (validSIGPROF)"
            )
        if self.merged:
            notes.append(
                f"{self.merged} deliveries merged: CPython runs the Python handler once, on the "
                "main thread, for all signals since its last run"
            )
        if self.lost_overflow:
            notes.append(
                f"{self.lost_overflow} samples lost to a full buffer "
                f"({self.lost_extra} of them in Go's extra buffer for non-Go threads)"
            )
        if c.timer_overruns:
            notes.append(
                f"{c.timer_overruns} timer intervals were folded into other signals as overruns "
                "(unweighted, they are missing from the profile)"
            )
        if self.timer_switch_times_ns:
            notes.append(
                f"per-thread timers were switched on lazily, the last at "
                f"{max(self.timer_switch_times_ns) / 1e6:.1f} ms (Go's execute())"
            )
        return notes

    def _perf_notes(self) -> list[str]:
        c = self.counters
        hz = self.scenario.machine.kernel_hz
        notes = []
        if self.scenario.profiler.runtime.startswith("go"):
            notes.append(
                "hypothetical: Go does not use perf_event timers (golang/go #42502, #53286); "
                "this is what its profiler could do with one task-clock event per M"
            )
            externals = [t.name for t in self.threads if t.perf is None]
            if externals:
                notes.append(
                    f"{len(externals)} thread(s) Go did not create have no perf event and "
                    "are not sampled"
                )
        if self.rate_hz > hz:
            notes.append(
                f"rate {self.rate_hz:g} Hz is above the kernel tick ({hz} Hz), but perf "
                "task-clock events overflow on each thread's exact CPU time (an hrtimer), "
                "not at ticks: the tick does not cap the rate"
            )
        if self.perf_period_ns == PERF_MIN_PERIOD_NS and self.rate_hz > 1e9 / PERF_MIN_PERIOD_NS:
            notes.append(
                f"the kernel's hrtimer period is at least 10 µs: at most "
                f"{1e9 / PERF_MIN_PERIOD_NS:,.0f} overflows per CPU-second, not {self.rate_hz:g}"
            )
        if c.dropped_perf:
            share = c.dropped_perf / max(1, c.generated_perf)
            handler_us = self.spec.handler_cost_ns / 1000
            notes.append(
                f"{c.dropped_perf} perf overflows ({share:.0%}) were dropped because that "
                f"thread's previous SIGPROF was still pending (a standard signal does not "
                f"queue): with a {self.perf_period_ns / 1000:g} µs period and a "
                f"{handler_us:g} µs handler, the handler's cost is the limit"
            )
        return notes


def simulate(scenario: Scenario, trace_window_ms: tuple[float, float] | None = None) -> SimResult:
    """Run one scenario in the simulated world."""
    return Simulation(scenario, trace_window_ms).run()
