"""The runtime table: every profiler the project models, described once.

A runtime is a profiler implementation: a Go release line, Go on Windows, CPython's own
`signal` module, or this project's C sampler. Each row says which timers it can arm
(default first), whether its `run` steps are Python bytecode (and so need the GIL),
whether it can have threads it did not create (cgo), what its signal handler costs by
default, how its buffer and reader behave, and which Go releases it stands for.

Everything else is built from this table: the scenario schema's literals and timer rules
(`contract.scenario`), the simulator's runtime specs (`sim.runtimes`), the Go world's
version mapping (`model_for_go_release`, used by `lab.go_toolchain.model_runtime`), a
scenario that names a Go release instead of a model (`runtime: go1.21`, from
OLDEST_GO_RELEASE on: `runtime_model` picks its line, `release_note` says so in the
report; past NEWEST_KNOWN_GO_RELEASE the newest line stands in, and the note says that too)
and the runtime table page, `docs/reference/runtimes.md` (`docsgen.reference_pages`, from
each row's notes and `sources`). Adding a runtime or a Go release is one row here. Standard
library only: the browser build of the simulator imports it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

# Every timer source, in the order the schema lists them. process: setitimer(ITIMER_PROF);
# per-thread: timer_create(CLOCK_THREAD_CPUTIME_ID) per thread; both: the two together;
# suspend: Windows' sampling thread; perf: a perf_event task-clock event per thread.
TIMERS = ("process", "per-thread", "both", "suspend", "perf")

# Go releases are (major, minor); a release line's last one is None when it is current.
GoRelease = tuple[int, int]


@dataclass(frozen=True)
class Runtime:
    """One profiler implementation and the facts the contract, model and lab share.

    A field left out has the plain value: no GIL, no external threads, not Go, a bounded
    buffer read periodically by a thread that needs nothing, signals handled where they
    land.
    """

    name: str
    timers: tuple[str, ...]  # the timers it can use, default first
    handler_cost_us: float  # CPU per delivered signal, when the scenario gives none
    python: bool = False  # `run` steps execute Python bytecode: they need the GIL
    external_threads: bool = False  # may run threads it did not create (cgo)
    go: bool = False  # a Go runtime: profBuf tags (profBufTagCount)
    extra_buffer: bool = False  # Go's cpuprof.extra for samples of threads Go did not create
    # Go on Linux: an M takes the profiling rate (its profilehz and, from 1.18, its own
    # timer) at its next execute(); until then sigprof drops its signals.
    lazy_switch: bool = False
    dedup_timers: tuple[str, ...] = ()  # timers under which duplicates are dropped (validSIGPROF)
    bounded_buffer: bool = True  # False: the naive port appends to a dict
    free_on_read: bool = False  # the reader frees buffer space as soon as it copies a record
    reader: str = "periodic"  # "periodic", "half-full" or "at-stop"
    reader_needs_gil: bool = False  # the reader is a Python thread
    # Between reads the reader also wakes every this many ms to watch for new threads
    # (None: it sleeps from read to read).
    reader_watch_ms: float | None = None
    python_handler: bool = False  # CPython: a deferred handler on the main thread
    suspend_sampler: bool = False  # Windows: a thread suspends and samples the others
    go_releases: tuple[GoRelease, GoRelease | None] | None = None  # (first, last) release
    go_note: str = ""  # what the Go releases it stands for do, with the source to read
    summary: str = ""  # what a runtime that stands for no Go release is (the runtime page)
    # (label, pinned link) pairs the runtime page cites for this row: Go files at
    # go1.19.8 with line anchors, release notes and issues for other releases.
    sources: tuple[tuple[str, str], ...] = ()

    @property
    def default_timer(self) -> str:
        return self.timers[0]


def _go_linux(
    name: str, releases: tuple[GoRelease, GoRelease | None], note: str, **changes
) -> Runtime:
    """A Go-on-Linux release line: Go 1.18's profiler, then what this line changes."""
    settings: dict[str, Any] = {
        "timers": ("both", "process", "perf"),
        # ~1 µs per unwind, plus the handler:
        # https://github.com/DataDog/go-profiler-notes/blob/main/stack-traces.md
        "handler_cost_us": 1.5,
        "external_threads": True,
        "go": True,
        "extra_buffer": True,
        "lazy_switch": True,
        "dedup_timers": ("both", "process"),
    }
    settings.update(changes)
    return Runtime(name=name, go_releases=releases, go_note=note, **settings)


# Go 1.18+ on Linux always arms the process timer beside the per-thread ones
# (src/runtime/os_linux.go setThreadCPUProfiler keeps setitimer for threads Go did not
# create); "process" models a kernel where timer_create failed, which Go handles by
# quietly keeping setitimer alone. "perf" is what realprof's `--timer perf` does; for
# go1.18 and go1.26 it is a hypothetical: Go does not do this (golang/go #42502, #53286).
_ROWS = (
    _go_linux(
        "go1.17",
        ((1, 0), (1, 17)),
        "setitimer only (src/runtime/signal_unix.go)",
        timers=("process",),
        dedup_timers=(),
        sources=(
            (
                "setProcessCPUProfilerTimer",
                "https://github.com/golang/go/blob/go1.19.8/src/runtime/signal_unix.go#L279",
            ),
            ("golang/go #35057", "https://github.com/golang/go/issues/35057"),
        ),
    ),
    _go_linux(
        "go1.18",
        ((1, 18), (1, 25)),
        "per-thread timers beside setitimer (src/runtime/os_linux.go)",
        sources=(
            ("Go 1.18 release notes", "https://go.dev/doc/go1.18"),
            (
                "setThreadCPUProfiler",
                "https://github.com/golang/go/blob/go1.19.8/src/runtime/os_linux.go#L613",
            ),
            (
                "validSIGPROF",
                "https://github.com/golang/go/blob/go1.19.8/src/runtime/os_linux.go#L566",
            ),
        ),
    ),
    _go_linux(
        "go1.26",
        ((1, 26), None),
        "per-thread timers beside setitimer, reader woken at half full (src/runtime/profbuf.go)",
        reader="half-full",
        sources=(
            ("golang/go #63043", "https://github.com/golang/go/issues/63043"),
            (
                "profBuf.write wakes the reader at half full",
                "https://github.com/golang/go/blob/go1.26.10/src/runtime/profbuf.go#L404",
            ),
            (
                "profileWriter sleeps only on darwin/ios",
                "https://github.com/golang/go/blob/go1.26.10/src/runtime/pprof/pprof.go#L926",
            ),
        ),
    ),
    # src/runtime/os_windows.go profileLoop: no signals, a thread suspends the others.
    Runtime(
        name="go-windows",
        timers=("suspend",),
        handler_cost_us=10.0,
        go=True,
        suspend_sampler=True,
        summary="Go on Windows: no signals; a thread suspends each running thread and samples it",
        sources=(
            (
                "profileLoop",
                "https://github.com/golang/go/blob/go1.19.8/src/runtime/os_windows.go#L1244",
            ),
        ),
    ),
    # CPython's own C handler only sets a flag (Modules/signalmodule.c); its Python
    # handler runs later on the main thread, and samples pile up in a dict until stop.
    Runtime(
        name="cpython",
        timers=("process",),
        handler_cost_us=0.3,
        python=True,
        bounded_buffer=False,
        reader="at-stop",
        python_handler=True,
        summary=(
            "CPython's own signal module: the C handler sets a flag, the Python handler "
            "runs later on the main thread"
        ),
        sources=(
            (
                "Execution of Python signal handlers",
                "https://docs.python.org/3.11/library/signal.html#execution-of-python-signal-handlers",
            ),
        ),
    ),
    # lab/cprobe.c, the independent check of the process timer: busy C threads whose
    # handler only stamps the time and thread into a preallocated array (a clock read and
    # a gettid call, like CPython's flag a fraction of a µs), read by nobody until the
    # end: no reader thread runs beside them.
    Runtime(
        name="cprobe",
        timers=("process",),
        handler_cost_us=0.3,
        bounded_buffer=False,
        reader="at-stop",
        summary=(
            "this project's trivial-handler C program (lab/cprobe.c), the independent "
            "check of the process timer: no reader thread, no Python"
        ),
    ),
    # realprof's walk of the frame chain is a few µs (realprof/_sampler.c); its reader
    # is a Python thread that frees each record as it copies it.
    Runtime(
        name="realprof",
        timers=("per-thread", "process", "both", "perf"),
        handler_cost_us=2.0,
        python=True,
        dedup_timers=("both",),
        free_on_read=True,
        reader_needs_gil=True,
        # realprof/reader.py WATCH_PERIOD_S: between drains its reader wakes every 10 ms
        # (in C, without the GIL) to look for threads it has no entry for.
        reader_watch_ms=10.0,
        summary="this project's C sampler for Python (realprof/_sampler.c)",
    ),
)

RUNTIMES: dict[str, Runtime] = {row.name: row for row in _ROWS}

# Derived views, for the schema and the rules that read them.
RUNTIME_NAMES = tuple(RUNTIMES)
RUNTIME_TIMERS: dict[str, tuple[str, ...]] = {r.name: r.timers for r in _ROWS}
PYTHON_RUNTIMES = tuple(r.name for r in _ROWS if r.python)

_GO_LINES = sorted(
    (r for r in _ROWS if r.go_releases is not None),
    key=lambda r: r.go_releases[0],  # type: ignore[index]
)


# The Go releases a scenario may name (`runtime: go1.21`, `go1.21.5`): Go 1.5 and newer.
# A release past NEWEST_KNOWN_GO_RELEASE, the newest whose profiler was read for this
# table, is taken as the newest line, and the note says so. Go 1.27 (1.27.3, Debian's
# golang-1.27-src) against 1.26.10: runtime/cpuprof.go, profbuf.go and os_linux.go are
# identical, and so is proc.go's sigprof; signal_unix.go changes only how the signal
# handler marks a secret-holding M and the exit status of a signal death; pprof.go only
# the goroutine-leak and heap profiles. Nothing the go1.26 model follows changed.
OLDEST_GO_RELEASE: GoRelease = (1, 5)
NEWEST_KNOWN_GO_RELEASE: GoRelease = (1, 27)


@dataclass(frozen=True)
class ProfilerChange:
    """What one Go release changed in the Linux CPU profiler, with its sources; `world`
    names the grid's Go world that measures it ("go1.26"), if a grid cell can show it."""

    release: str
    change: str
    sources: tuple[tuple[str, str], ...]
    world: str | None = None


# The runtime page's table "what changed in the profiler, release by release": each
# change read in the source of the release named (Go 1.19.8, and Debian's golang-X.Y-src
# packages of 1.23.5, 1.26.10 and 1.27.3, compared function by function).
PROFILER_CHANGES = (
    ProfilerChange(
        "1.18",
        "every M gets its own timer_create(CLOCK_THREAD_CPUTIME_ID) timer beside the process "
        "timer; validSIGPROF drops the process timer's signals on Ms that have one",
        (
            ("golang/go #35057", "https://github.com/golang/go/issues/35057"),
            ("Go 1.18 release notes", "https://go.dev/doc/go1.18"),
            (
                "setThreadCPUProfiler",
                "https://github.com/golang/go/blob/go1.19.8/src/runtime/os_linux.go#L613",
            ),
        ),
        "go1.19",
    ),
    ProfilerChange(
        "1.22",
        "on darwin and ios only, the reader reads without blocking (not on Linux)",
        (
            ("golang/go #61768", "https://github.com/golang/go/issues/61768"),
            (
                "runtime_pprof_readProfile",
                "https://github.com/golang/go/blob/go1.23.5/src/runtime/cpuprof.go#L249",
            ),
        ),
    ),
    ProfilerChange(
        "1.23",
        "nothing the model follows: the timers, validSIGPROF and the reader are those of "
        "1.19 (atomic types; sigprof walks the stack with the newer unwinder)",
        (("sigprof", "https://github.com/golang/go/blob/go1.23.5/src/runtime/proc.go#L5408"),),
        "go1.23",
    ),
    ProfilerChange(
        "1.26",
        "the reader no longer sleeps 100 ms between reads: it blocks until the writer wakes "
        "it, when half the buffer is unread, on overflow and at the end",
        (
            ("golang/go #63043", "https://github.com/golang/go/issues/63043"),
            (
                "profBuf.write",
                "https://github.com/golang/go/blob/go1.26.10/src/runtime/profbuf.go#L404",
            ),
        ),
        "go1.26",
    ),
    ProfilerChange(
        "1.27",
        "nothing: cpuprof.go, profbuf.go, os_linux.go and sigprof are those of 1.26",
        (
            (
                "profBuf.write",
                "https://github.com/golang/go/blob/go1.27.3/src/runtime/profbuf.go#L404",
            ),
        ),
        "go1.27",
    ),
)
GO_RELEASE_PATTERN = r"go1\.(?:[5-9]|[1-9][0-9]+)(?:\.(?:0|[1-9][0-9]*))?"
GO_RELEASE_FORMS = "a Go release from go1.5 on (go1.21, go1.21.5)"


def _check_table() -> None:
    """Fail at import on a table that contradicts itself: each later issue edits it."""
    for row in _ROWS:
        unknown = set(row.timers) - set(TIMERS)
        if unknown or not row.timers or not set(row.dedup_timers) <= set(row.timers):
            raise ValueError(f"runtime {row.name}: bad timers {row.timers}/{row.dedup_timers}")
    for older, newer in itertools.pairwise(_GO_LINES):
        last = older.go_releases[1]  # type: ignore[index]
        first = newer.go_releases[0]  # type: ignore[index]
        if last is None or (last[0], last[1] + 1) != first:
            raise ValueError(f"Go release lines {older.name} and {newer.name} do not meet")
    if _GO_LINES and _GO_LINES[-1].go_releases[1] is not None:  # type: ignore[index]
        raise ValueError("the newest Go release line must be open-ended (last: None)")
    if _GO_LINES[-1].go_releases[0] > NEWEST_KNOWN_GO_RELEASE:  # type: ignore[index]
        raise ValueError("NEWEST_KNOWN_GO_RELEASE is older than the newest Go release line")


_check_table()


def _release(version: str) -> GoRelease | None:
    match = re.match(r"go(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _line_of(release: GoRelease) -> Runtime:
    """The Go release line a release belongs to (the oldest line for older releases)."""
    row = _GO_LINES[0]
    for line in _GO_LINES:
        if release >= line.go_releases[0]:  # type: ignore[index]
            row = line
    return row


def model_for_go_release(version: str) -> tuple[str, str]:
    """(runtime, note): the model of the profiler a Go version (`go1.21.5`) ships on Linux.

    Releases older than the oldest line belong to it; a version that is not a release
    number (a devel build) is taken as the current release.
    """
    release = _release(version)
    if release is None:
        row = _GO_LINES[-1]
        return row.name, f"{version!r} is not a Go release number; taken as current: {row.go_note}"
    row = _line_of(release)
    return row.name, f"Go {release[0]}.{release[1]}: {row.go_note}"


def model_and_timer_for_go_release(version: str) -> tuple[str, str]:
    """(runtime, timer): the model of a Go version and the timer that release arms."""
    name, _note = model_for_go_release(version)
    return name, RUNTIMES[name].default_timer


def release_span(row: Runtime) -> str:
    """The Go releases a line stands for, in words: `1.18 to 1.25`, `1.26 and later`."""
    first, last = row.go_releases  # type: ignore[misc]
    if row is _GO_LINES[0]:
        first = OLDEST_GO_RELEASE  # the oldest a scenario may name
    if last is None:
        return f"{first[0]}.{first[1]} and later"
    return f"{first[0]}.{first[1]} to {last[0]}.{last[1]}"


def go_lines_in_words() -> str:
    """Which model each Go release runs: `go1.17 for Go 1.5 to 1.17, ...`."""
    return ", ".join(f"{row.name} for Go {release_span(row)}" for row in _GO_LINES)


def is_go_release(runtime: str) -> bool:
    """Whether a scenario's `runtime` names a Go release (`go1.21`) rather than a model."""
    return runtime not in RUNTIMES and re.fullmatch(GO_RELEASE_PATTERN, runtime) is not None


def runtime_model(runtime: str) -> str:
    """The model that runs for a scenario's `runtime`: itself, or its Go release's line."""
    if runtime in RUNTIMES:
        return runtime
    return _line_of(_release(runtime) or NEWEST_KNOWN_GO_RELEASE).name


def release_note(runtime: str) -> str | None:
    """One line for a `runtime` that names a Go release: the release, its model, what it does.

    None for a model's own name (the report's title names it already).
    """
    if not is_go_release(runtime):
        return None
    release = _release(runtime)
    row = _line_of(release)  # type: ignore[arg-type]
    newest = NEWEST_KNOWN_GO_RELEASE
    if release > newest:  # type: ignore[operator]
        return (
            f"{runtime} is newer than Go {newest[0]}.{newest[1]}, the newest release this "
            f"table knows, so it runs the newest line's model, {row.name}: {row.go_note}"
        )
    return f"{runtime} runs the {row.name} model: {row.go_note}"
