"""The reader: the thread that drains profBuf into the profile.

Go's reader is `runtime/pprof`'s profileWriter goroutine, which calls
`runtime_cpuProfile_read` (`readProfile`, src/runtime/cpuprof.go) and adds each record to
the profile builder; this project's realprof has a Python reader thread. Either way the
reader is a thread like any other: it needs a CPU (and, under realprof, the GIL) to run,
so a saturated machine delays it and profBuf fills meanwhile. In Go with a GOMAXPROCS
cap (`workload.gomaxprocs`, `sim.gosched`) it is a goroutine: it also needs a P, and
waits for one when every P runs a busy goroutine.

When it wakes, by the runtime's policy (`RuntimeSpec.reader`):

* `periodic`: `reader_period_ms` after the previous read's work is done (Go up to 1.25:
  profileWriter's loop calls `time.Sleep(100 * time.Millisecond)` before each read,
  src/runtime/pprof/pprof.go). The sleep ends on an hrtimer, between ticks
  (`sim.sleeps`), so the reader's runs drift across the tick grid as the real one's do;
  a reader woken on tick instants would be charged a whole tick of process CPU at each
  read (docs/walkthrough/02-process-timer-and-tick.md);
* `half-full`: when a write leaves profBuf at least half full or holding an overflow,
  and again after a read if that is still so (Go 1.26, golang/go #63043);
* `at-stop`: never while running; the naive CPython port keeps its samples in a
  dictionary until the end.

realprof's reader also wakes between reads, every `reader_watch_ns` (10 ms,
`realprof/reader.py` WATCH_PERIOD_S), to look for threads it has no entry for, without
the GIL, and goes back to sleep after `WATCH_COST_NS` of CPU. Those wake-ups land on
either CPU at random and preempt (`Machine.wake_preempting`): on oversubscribed CPUs
each one switches threads between ticks, and a thread that was preempted at a tick with
its timer check still to run (`sim.model`, deferred check) may be the one switched in,
and check there, far from the other CPU's check. Their sleeps draw from a stream of
their own (`sim.sleeps`).

Invariants:

* One wake-up at a time: `wake_pending` is set when a wake is requested and cleared when
  the reader, dispatched, reads; no second request is made meanwhile. A periodic reader
  has at most one sleep under way, begun when its work is done.
* The read happens at the reader's return to user mode, when it is on a CPU; its CPU
  cost, `READER_BASE_COST_NS` plus `reader_cost_us_per_sample` per record, is spent
  after the read (what it copied is already in the profile).
* Every record reaches the profile exactly once: samples with their stack and thread,
  overflow records and lostExtra counts as lost samples. `drain` reads what is left at
  stop, then once more with EOF.
* The profile's duration is the writer's wall time (Go's `duration_nanos`, from
  `newProfileBuilder` to `build` in src/runtime/pprof): for Go up to 1.25 it runs past
  the stop to the writer's next wake-up, and one period more if data was left
  (golang/go #63043); otherwise it is the profiled interval.
* The reader is not part of the workload's truth and never takes a SIGPROF.
* A watch never overlaps a read: a watch is skipped while the reader is up (reading, or
  waiting for the GIL), and a read that falls due during a watch starts when it ends.

Left out: realprof's reader keeps a fixed-rate schedule (its next drain is due one
period after the previous one was due, `realprof/reader.py`), where the model's sleeps
one period after its work, as Go's does. The watch the other way round: realprof's C
watch naps 10 ms after each scan (`watch_threads` in `realprof/_sampler.c`), where the
model arms each watch sleep at the instant the last one fell due, so its wake-ups drift
across the tick grid by the timer slack alone and beat slowly against it: four busy
threads at 200 Hz capture 0.80 in the model's second second and 0.70 in its fourth
(`python benchmarks/cell_windows.py docs/data/xeon/grid.json`; benchmarks/README.md,
"The model's capture window by window", which also says why it stays).
"""

from __future__ import annotations

from collections.abc import Callable

from contract.profile import Profile
from sim.context import RunContext
from sim.machine import SLEEPING, Thread
from sim.profbuf import ProfBuf, Record
from sim.sleeps import Sleeps

READER_BASE_COST_NS = 5_000
# CPU per wake-up of realprof's reader, drains included: 102-117 µs on this project's VM
# (`python benchmarks/reader_watch.py`, benchmarks/README.md).
WATCH_COST_NS = 100_000


class Reader:
    """profBuf's reader thread, woken by the runtime's policy."""

    def __init__(
        self,
        ctx: RunContext,
        profbuf: ProfBuf,
        profile: Profile,
        period_ns: int,
        cost_us_per_sample: float,
        sleeps: Sleeps,
        watch_sleeps: Sleeps | None = None,
    ) -> None:
        self.ctx = ctx
        self.sleeps = sleeps
        self.watch_sleeps = watch_sleeps
        self.profbuf = profbuf
        self.profile = profile
        self.period_ns = period_ns
        self.cost_us_per_sample = cost_us_per_sample
        self.thread = Thread.helper("reader", "reader", self._done)
        self.wake_pending = False
        self.next_wake_ns: int | None = None  # a periodic reader's pending wake-up
        self.stopped = False
        self.reads = 0
        self.records = 0  # samples that reached the profile
        self.watches = 0
        self.watching = False  # woken for a watch, not yet done with it
        self.read_due = False  # a periodic read fell due during a watch
        # Go with a GOMAXPROCS cap (sim.gosched): the reader is a goroutine that needs a
        # P to run. acquire_p(thread) takes one or queues the thread at the front (a woken
        # goroutine goes to its P's runnext) and wakes it when granted.
        self.acquire_p: Callable[[Thread], bool] | None = None
        self.release_p: Callable[[Thread], None] | None = None

    def start(self) -> None:
        if self.ctx.spec.reader == "periodic":
            self.next_wake_ns = self.sleeps.sleep(self.period_ns, self._slept)
        watch_ns = self.ctx.spec.reader_watch_ns
        if watch_ns is not None and self.watch_sleeps is not None:
            self.watch_sleeps.sleep(watch_ns, self._watch_due)

    def _slept(self) -> None:
        """A periodic reader's sleep is over: wake it to read."""
        if self.stopped:
            return
        if self.watching:
            self.read_due = True  # up for a watch: it reads when that is done
            return
        self._wake()

    def _watch_due(self) -> None:
        """realprof's watch period is over: a sleeping reader wakes, preempting."""
        watch_ns = self.ctx.spec.reader_watch_ns
        if self.stopped or watch_ns is None or self.watch_sleeps is None:
            return
        self.watch_sleeps.sleep(watch_ns, self._watch_due)
        if self.thread.state != SLEEPING or self.wake_pending or self.watching:
            return
        self.watching = True
        # It wakes on whichever CPU the kernel picks for it: either, at random.
        cpu = self.watch_sleeps.rng.randrange(len(self.ctx.machine.cpus))
        self.ctx.machine.wake_preempting(self.thread, cpu)

    def maybe_wake(self) -> None:
        """After a write: the half-full policy wakes a sleeping reader."""
        if self.ctx.spec.reader != "half-full" or self.wake_pending:
            return
        if self.thread.state != SLEEPING:
            return
        capacity = self.profbuf.capacity_words or 0
        if self.profbuf.unread_words >= capacity // 2 or self.profbuf.overflow_pending:
            self._wake()

    def _wake(self) -> None:
        self.wake_pending = True
        if self.ctx.spec.reader_needs_gil and not self.ctx.machine.gil_acquire(self.thread):
            return
        if self.acquire_p is not None and not self.acquire_p(self.thread):
            return  # woken when a P is free
        self.ctx.machine.wake(self.thread)

    def run(self) -> None:
        """At the reader's return to user mode: read (or watch), then spend the cost."""
        if self.watching:
            self.watches += 1
            self.ctx.machine.start_work(self.thread, WATCH_COST_NS)
            return
        if not self.wake_pending:
            return
        self.wake_pending = False
        records = self.profbuf.read()
        self.reads += 1
        self._consume(records)
        self.ctx.machine.start_work(
            self.thread,
            READER_BASE_COST_NS + round(self.cost_us_per_sample * 1000 * len(records)),
        )

    def _done(self, thread: Thread) -> None:
        if self.watching:
            self.watching = False
            self.ctx.machine.block(thread, SLEEPING)
            if self.read_due and not self.stopped:
                self.read_due = False
                self._wake()
            return
        self.ctx.machine.gil_release(thread)
        if self.release_p is not None:
            self.release_p(thread)
        self.ctx.machine.block(thread, SLEEPING)
        if self.ctx.spec.reader == "half-full":
            self.maybe_wake()
        elif self.ctx.spec.reader == "periodic" and not self.stopped:
            self.next_wake_ns = self.sleeps.sleep(self.period_ns, self._slept)

    def drain(self) -> None:
        """At stop: what is left, then the read that reports EOF; the profile's duration."""
        left = self.profbuf.read()
        self._consume(left)
        self._consume(self.profbuf.read(eof=True))
        self.profile.duration_ns = self._writer_wall_ns(bool(left))

    def _writer_wall_ns(self, data_left: bool) -> int:
        """Go's duration_nanos: profileWriter's wall time, from its start to EOF.

        Up to Go 1.25 the writer sleeps a period before each read, and a read that
        returns data does not report EOF: after the stop it wakes at its next period,
        reads what is left and, if that was anything, sleeps once more before the EOF
        (0-100 ms: the wake-up its sleep has pending, which drifts off the period grid
        as the real one does; then 100 ms more). From Go 1.26 the reader blocks in the read, which
        the stop wakes at once. Other runtimes' profiles span the profiled interval.
        """
        stop_ns = int(self.ctx.env.now)
        if not self.ctx.spec.go_writer or self.ctx.spec.reader != "periodic":
            return stop_ns
        # The wake-up its sleep has pending; a writer caught reading sleeps a whole
        # period after this read before the next.
        pending = self.next_wake_ns
        wake_ns = (
            pending if pending is not None and pending >= stop_ns else stop_ns + self.period_ns
        )
        return wake_ns + (self.period_ns if data_left else 0)

    def _consume(self, records: list[Record]) -> None:
        for record in records:
            if record.kind == "sample":
                stack, thread_name = record.payload
                self.profile.add(stack, thread_name, record.count)
                self.records += record.count
            elif record.kind == "overflow":
                self.profile.add_lost("overflow", record.count)
            elif record.kind == "lost_extra":
                self.profile.add_lost("extra", record.count)
