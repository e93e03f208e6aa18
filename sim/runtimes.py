"""Runtimes: what each profiler does with a delivered SIGPROF.

Every runtime answers the same questions: which timers it arms, what its handler costs,
whether it keeps or discards a delivered signal, where the sample goes, and how its reader
drains. The outcomes are the funnel's last stages: *recorded*, *lost* (buffer full),
*discarded* (the runtime ignored the signal) or *merged* (folded into a later handler run).
The per-runtime facts (timers, handler cost, buffer, reader, filter) are read from the
runtime table, `contract.runtimes.RUNTIMES`; `runtime_spec` joins a row with the
scenario's settings.

`go1.17` (src/runtime/signal_unix.go, proc.go `sigprof`, Go ≤ 1.17): only the process
timer. A delivered signal is a sample of the interrupted thread once its M has switched.

The lazy switch (every Go-on-Linux line): `setcpuprofilerate` sets `sched.profilehz`, and
an M copies it into its own `mp.profilehz` by `setThreadCPUProfiler` only when it next runs
`execute()` (or `cgocallbackg1`, for a C thread entering Go). `sigprof` returns at once
while `mp.profilehz == 0` (src/runtime/proc.go), so a process-timer signal that reaches an
M not yet switched passes `validSIGPROF` and is then dropped: discarded, reason
*unswitched*. Threads Go did not create have no M and no such check (`sigprofNonGo`).

`go1.18` (Go 1.18–1.25 on Linux, src/runtime/os_linux.go): a per-thread timer on every M
*beside* the still-armed process timer, and `validSIGPROF` to avoid double counting: on an
M with its own timer a process signal (SI_KERNEL) is discarded; on an M without one yet a
timer signal (SI_TIMER) is discarded; threads Go did not create keep process signals. An
M gets its timer at the lazy switch, its next `execute()`: for a busy goroutine that is
its next scheduling point or sysmon's async preemption after 10 ms of running
(`forcePreemptNS`, src/runtime/proc.go). Samples of non-Go threads go through the
1000-word `cpuprof.extra` buffer; what does not fit is counted in `lostExtra` and
reported on `_LostExternalCode`. The extra buffer is flushed into profBuf by the next Go
thread's sample or at stop (`cpuprof.add`, `addExtra`).

`go1.26`: as go1.18, but the reader blocks until profBuf is half full (or EOF, or an
overflow) instead of sleeping 100 ms between reads (121bc3e464, golang/go #63043).

`go-windows` (src/runtime/os_windows.go `profileLoop`): no signals. A highest-priority
thread wakes on a wall-clock timer of `1000/hz` ms (at least 1 ms) and suspends, samples
and resumes every M that is not parked on a note: on a CPU, merely runnable, or blocked
in a system call or a cgo call (`sim.suspend`).

`cpython` (Modules/signalmodule.c): the naive port with `signal.setitimer`. The C-level
handler only marks the signal as tripped; the Python handler runs on the main thread the
next time it executes bytecode, and every delivery since the previous run merges into one
sample of the *main thread's* stack.

`realprof` (this project's `realprof/_sampler.c`): a C handler on the interrupted thread
writes its Python stack into a ring buffer that frees space as soon as the reader (a
Python thread, so it needs the GIL) has copied it.

`profiler.free_threaded` (PEP 703's `t` builds, for `cpython` and `realprof`): no GIL, so
`run` steps and realprof's reader run in parallel (`sim.model` builds no GIL for them);
CPython still runs Python-level signal handlers on the main thread only.

With `timer: perf` (`sim.perfevents`) no process or per-thread timer is armed: every thread
the runtime created gets a perf_event task-clock event, armed when profiling starts, and
every delivered signal is a sample (no validSIGPROF filter is needed). For `realprof` this
is `--timer perf`; for `go1.18`/`go1.26` it is a hypothetical of what Go could do (Go does
not, golang/go #42502 and #53286), in which threads Go did not create get no event.

Left out: labels, the `prof.signalLock` spin between handlers, TSAN delayed signals, VDSO
and `_GC`/`_System` fallback stacks, and 32-bit atomics on mips/arm (`lostAtomic`).
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.runtimes import RUNTIMES
from contract.scenario import Profiler
from sim.signals import SI_KERNEL, SI_TIMER

GO_TAG_CAPACITY = 1 << 14  # profBufTagCount, src/runtime/cpuprof.go
GO_FORCE_PREEMPT_NS = 10_000_000  # sysmon's forcePreemptNS, src/runtime/proc.go
PYTHON_HANDLER_COST_NS = 20_000  # sys._current_frames() walk (Python/pystate.c)


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    timer: str
    process_timer: bool
    thread_timers: bool
    perf_events: bool  # a perf_event task-clock event per thread (sim.perfevents)
    lazy_switch: bool  # Go: an M takes profilehz (and its timer) at its next execute()
    valid_sigprof: bool  # Go 1.18+ duplicate filter
    handler_cost_ns: int
    buffer_words: int | None  # None: unbounded (the naive port appends to a dict)
    tag_capacity: int | None
    free_on_read: bool
    reader: str  # "periodic", "half-full" or "at-stop"
    go_writer: bool  # runtime/pprof's profileWriter: duration_nanos is its wall time
    reader_needs_gil: bool
    reader_watch_ns: int | None  # the reader's wake-ups between reads (realprof's watch)
    extra_words: int | None  # Go's buffer for non-Go threads
    python_handler: bool  # CPython: deferred handler on the main thread
    suspend_sampler: bool  # Windows
    suspend_period_ns: int
    # Resolution of the waitable timer that wakes profileLoop; None: high resolution.
    suspend_timer_resolution_ns: int | None = None

    def accepts(self, si_code: int, has_own_timer: bool, go_thread: bool) -> bool:
        """validSIGPROF (src/runtime/os_linux.go) or "accept everything"."""
        if not self.valid_sigprof:
            return True
        if si_code == SI_TIMER:
            return go_thread and has_own_timer
        if si_code == SI_KERNEL:
            return not (go_thread and has_own_timer)
        return True


def runtime_spec(profiler: Profiler) -> RuntimeSpec:
    """The runtime's row of `contract.runtimes.RUNTIMES`, with the scenario's settings."""
    row = RUNTIMES[profiler.model]
    timer = profiler.effective_timer
    return RuntimeSpec(
        name=row.name,
        timer=timer,
        process_timer=timer in ("process", "both"),
        thread_timers=timer in ("per-thread", "both"),
        perf_events=timer == "perf",
        # With timer perf (a hypothetical for Go) every thread's event is armed at start.
        lazy_switch=row.lazy_switch and timer != "perf",
        # Only perf signals are armed with timer perf: nothing to filter.
        valid_sigprof=timer in row.dedup_timers,
        handler_cost_ns=round(profiler.effective_handler_cost_us * 1000),
        buffer_words=profiler.buffer_words if row.bounded_buffer else None,
        tag_capacity=GO_TAG_CAPACITY if row.go else None,
        free_on_read=row.free_on_read,
        reader=row.reader,
        go_writer=row.go,
        # A free-threaded interpreter's reader thread runs beside the others, GIL or not.
        reader_needs_gil=row.reader_needs_gil and not profiler.free_threaded,
        reader_watch_ns=(
            None if row.reader_watch_ms is None else round(row.reader_watch_ms * 1_000_000)
        ),
        extra_words=profiler.extra_words if row.extra_buffer else None,
        python_handler=row.python_handler,
        suspend_sampler=row.suspend_sampler,
        suspend_period_ns=max(1, int(1000 // profiler.rate_hz)) * 1_000_000,
        suspend_timer_resolution_ns=(
            None
            if profiler.suspend_timer_resolution_ms is None
            else round(profiler.suspend_timer_resolution_ms * 1e6)
        ),
    )
