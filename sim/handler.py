"""The runtime's signal handler: what becomes of a delivered SIGPROF.

`Handler.handle` runs on the thread that took the signal, at its return to user mode
(`sigprof`, src/runtime/proc.go; this project's `realprof/_sampler.c`). The handler's
CPU cost is charged to that thread before its own work continues; then, by the runtime's
policy (`sim.runtimes`), the signal becomes exactly one of:

* **discarded**, for one named reason: *duplicate*, `validSIGPROF` rejected it (Go 1.18+,
  `realprof` with both timers); *unswitched*, it passed `validSIGPROF` on a Go M that has
  not yet taken the profiling rate, and `sigprof` returned because `mp.profilehz == 0`
  (`sim.runtimes`, the lazy switch); *after stop*, CPython's handler was uninstalled
  before it ran;
* **merged**: CPython's C handler only trips a flag, and the Python handler, run on the
  main thread the next time it executes bytecode (with the GIL, unless the interpreter is
  free-threaded), takes one sample of the
  *main thread's* stack for every delivery since its last run (`Modules/signalmodule.c`);
* **recorded** in profBuf, or **lost** when profBuf is full (`sim.profbuf`): the sample is
  the interrupted stack, or `[idle]` outside a CPU step. Go's samples of threads it did
  not create go first to the `extra` buffer (`cpuprof.addNonGo`, 1 + depth words each);
  what does not fit there is lost and counted in `lostExtra`. The next Go thread's sample,
  or the stop, flushes the extra buffer into profBuf with time 0, then the lostExtra
  count as one record (`cpuprof.addExtra`).

Invariants: every delivery is counted once, as delivered and as one of the four outcomes
(or still tripped, waiting for the main thread, which `stop` turns into discarded: the
handler was uninstalled before it ran); a lost sample is counted once, when it is lost,
whether in the extra buffer or in profBuf. Each write to profBuf gives the reader the
chance to wake (`Reader.maybe_wake`).
"""

from __future__ import annotations

from contract.profile import Frame
from sim.context import RunContext
from sim.machine import RUNNING, Thread
from sim.profbuf import ProfBuf, Record
from sim.reader import Reader
from sim.runtimes import PYTHON_HANDLER_COST_NS

IDLE_STACK = (Frame("[idle]"),)


class Handler:
    """The profiler's handler and its sample path, with the count of each outcome."""

    def __init__(
        self, ctx: RunContext, profbuf: ProfBuf, reader: Reader, main_thread: Thread
    ) -> None:
        self.ctx = ctx
        self.profbuf = profbuf
        self.reader = reader
        self.main_thread = main_thread
        # Outcomes of delivered signals, each counted where it happens.
        self.recorded = 0
        self.lost_overflow = 0  # in profBuf or in the extra buffer
        self.lost_extra = 0  # in the extra buffer
        self.discarded = 0
        self.discarded_duplicate = 0  # validSIGPROF
        self.discarded_unswitched = 0  # sigprof: mp.profilehz == 0
        self.discarded_after_stop = 0  # CPython: tripped, never handled
        self.merged = 0
        self.tripped = 0  # CPython: deliveries waiting for the main thread's handler
        self.extra: list[tuple[tuple[Frame, ...], str]] = []
        self.extra_used_words = 0
        self.lost_extra_pending = 0

    def handle(self, thread: Thread, si_code: int) -> None:
        """The runtime's signal handler, on `thread`."""
        self.ctx.counters.delivered += 1
        self.ctx.machine.add_handler_time(thread, self.ctx.spec.handler_cost_ns)
        self.ctx.event("deliver", thread)
        if self.ctx.spec.python_handler:
            self.tripped += 1
            if self.main_thread.state == RUNNING:
                self.run_python_handler()
            return
        go_thread = thread.kind == "go"
        if not self.ctx.spec.accepts(si_code, thread.timer_valid, go_thread):
            self.discarded += 1
            self.discarded_duplicate += 1
            self.ctx.event("discard", thread)
            return
        if self.ctx.spec.lazy_switch and go_thread and not thread.profilehz_set:
            # sigprof's first check on an M: profiling is not on for this thread yet.
            self.discarded += 1
            self.discarded_unswitched += 1
            self.ctx.event("discard", thread)
            return
        self.sample(thread)

    def run_python_handler(self) -> None:
        """CPython runs the Python-level handler on the main thread, inside bytecode."""
        main = self.main_thread
        op = main.op
        if (
            not self.tripped
            or main.state != RUNNING
            or op is None
            or not op.bytecode
            or (op.needs_gil and not main.holds_gil)
        ):
            return
        self.merged += self.tripped - 1
        self.tripped = 0
        self.ctx.machine.add_handler_time(main, PYTHON_HANDLER_COST_NS)
        if self.merged:
            self.ctx.event("merge", main)
        self.sample(main)

    def sample(self, thread: Thread) -> None:
        """Unwind `thread` and store the sample (the extra buffer for non-Go threads)."""
        op = thread.op
        # A blocked M shows its call's stack (Windows samples Ms in system calls).
        stack = op.stack if op is not None and op.kind in ("cpu", "syscall") else IDLE_STACK
        if thread.kind == "external" and self.ctx.spec.extra_words is not None:
            # sigprofNonGo -> cpuprof.addNonGo: [1+n, pcs...] into the extra buffer.
            words = 1 + len(stack)
            if self.extra_used_words + words <= self.ctx.spec.extra_words:
                self.extra.append((stack, thread.name))
                self.extra_used_words += words
            else:
                self.lost_extra += 1
                self.lost_extra_pending += 1
                self.lost_overflow += 1
                self.ctx.event("lost", thread)
            return
        if self.extra or self.lost_extra_pending:
            self._flush_extra()
        self._write_sample(stack, thread.name, self.ctx.env.now, thread)

    def _write_sample(
        self, stack: tuple[Frame, ...], thread_name: str, time_ns: int, thread: Thread | None
    ) -> None:
        record = Record("sample", time_ns, 1, 3 + len(stack), (stack, thread_name))
        if self.profbuf.write(record):
            self.recorded += 1
            if thread is not None:
                self.ctx.event("record", thread)
        else:
            self.lost_overflow += 1
            if thread is not None:
                self.ctx.event("lost", thread)
        self.reader.maybe_wake()

    def _flush_extra(self) -> None:
        """addExtra: replay non-Go samples (time 0), then the lostExtra count."""
        entries, self.extra, self.extra_used_words = self.extra, [], 0
        for stack, name in entries:
            self._write_sample(stack, name, 0, None)
        if self.lost_extra_pending:
            count, self.lost_extra_pending = self.lost_extra_pending, 0
            # Written as a record whose samples were already counted as lost.
            self.profbuf.write(Record("lost_extra", 0, count, 5))

    def stop(self) -> None:
        """Profiling stops: deliveries still tripped are discarded, extra is flushed."""
        if self.tripped:
            self.discarded += self.tripped  # the handler was uninstalled before it ran
            self.discarded_after_stop += self.tripped
            self.tripped = 0
        if self.extra or self.lost_extra_pending:
            self._flush_extra()
