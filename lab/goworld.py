"""The Go world: a scenario's workload run by the real Go runtime, profiled by runtime/pprof.

The simulator predicts what Go's CPU profiler does; `realprof scenario` rebuilds the
profiler for Python on this kernel. This module asks the profiler itself: it writes the
scenario's workload as a small Go program (`go_source`), builds it with the installed
toolchain, runs it under `runtime/pprof`, and reads the profile Go wrote with
`contract.profile_files.read_profile`, so its report sits beside the other two worlds'.

The program
-----------
* GOMAXPROCS is the number of `go` threads. Each is a goroutine that calls
  `runtime.LockOSThread`, so goroutine and OS thread are one for the whole run (an M
  running one busy goroutine, as the model has it), and carries the pprof label
  `thread=<name>` (`runtime/pprof.SetGoroutineLabels`). A CPU sample's tag is the
  interrupted goroutine's label set (`sigprof` in src/runtime/proc.go; taken from
  `m.curg` since Go 1.18, golang/go #48577), so labels attribute samples to threads even
  when the 64-frame cut (`maxCPUProfStack`, src/runtime/cpuprof.go) removed the root,
  and `read_profile` reads the label `thread` as the sample's thread.
* A `run` step spins in a Go function named after the step (`main.compute` becomes
  `func compute` in package main, other names are sanitised and mapped back), marked
  `//go:noinline` and called under `depth - 2` generated callers `{group}_callerK` below
  the group's entry function, the shape `sim.workload.make_stack` gives the simulator.
  It spins until this thread's CPU time has advanced by `cpu_ms`, or the run's deadline
  has passed, checking every ~60 µs of arithmetic with `getrusage(RUSAGE_THREAD)`.
  The ground truth is the exact thread CPU clock (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`,
  a raw system call), read once per step boundary and never inside the spin: on this
  kernel (6.18, EEVDF, HZ=250, CPUs shared with other processes) reading one's own CPU
  clock every 10 µs-3 ms cost Go 15-40 % of its per-thread timer signals, and a C test
  of bare `timer_create` timers showed the same (capture 0.62-0.93, back to 0.94-0.99
  when `si_overrun` is counted), while `getrusage(RUSAGE_THREAD)`, `getppid` or
  `CLOCK_PROCESS_CPUTIME_ID` read as often cost nothing. [inference] Reading a running
  thread's own clock runs the scheduler's `update_curr()` (`task_sched_runtime`,
  kernel/sched/core.c), which can end a used-up slice between two ticks; CPU timers
  are checked only at ticks where their thread is current, so missed intervals fold
  into `si_overrun`, which Go ignores.
* A `native` step is a cgo call into a C function that spins the same way in C. Without
  `runtime.SetCgoTraceback` Go cannot unwind C frames, so its samples show the Go
  stack that made the call, with leaf `runtime.cgocall` (`sigprof`'s cgo branch starts
  at the goroutine's `syscallpc`); they are credited to the Go wrapper named after the
  step. `sleep_ms` is `time.Sleep`.
* A sample counts for the leaf-most frame on its stack that the program named after a
  step, so runtime frames above it count for the step: `runtime.cgocall` (native
  steps), the budget checks, and `runtime.asyncPreempt`, which tops 5-15 % of the
  samples of a busy goroutine on a loaded machine. [inference] sysmon's preemption
  signal (SIGURG, 23) and SIGPROF (27) are pending on the same return to user mode; the
  kernel delivers the lower number first, so the profiler sees the PC the preemption
  handler just set. Samples on no step (the runtime's own threads, the loop between
  steps) form one row, `(runtime and other code)`, whose truth is rusage minus the steps.
* An `external` group is made of threads C creates with `pthread_create`: Go has no M
  for them. They run each step in C (`run` steps too, as in the simulator, where an
  external thread's stack is always C), in one spin function per thread and step, so
  that the sampled PC alone tells thread and step apart. Such a thread has no
  per-thread timer (Go arms those in `execute()` and `cgocallbackg1`, which it never
  reaches), so only the process-wide setitimer samples it; `sigtrampgo` finds no g,
  `validSIGPROF` accepts the SI_KERNEL signal and `sigprofNonGoPC` puts
  `[pc, runtime._ExternalCode]` into the 1000-word `extra` buffer, flushed when a Go
  thread records a sample or at stop; what does not fit is counted in `lostExtra`
  and appears as `runtime._LostExternalCode` (src/runtime/proc.go, cpuprof.go). The
  PCs are mapped to the spin functions with `go tool nm -size`; a PC in libc (the
  spin's system calls, ~1-2 % of the samples) names no thread and joins the other rows.
* All threads wait behind a barrier. The program calls `runtime.SetCPUProfileRate(rate)`
  and then `pprof.StartCPUProfile` (the only way to choose a rate: StartCPUProfile
  hard-codes 100 Hz and only warns when a rate is already set, golang/go #40094,
  proposal #42502), reads `getrusage(RUSAGE_SELF)`, releases the threads, waits for
  them to pass the deadline, reads `getrusage` again and stops the profile. It prints
  one JSON line: the interval's wall time, rusage user + system CPU, each thread's
  thread-clock CPU and each step function's (the ground truth), and `runtime.Version()`.

Why Go 1.19 checks the go1.18 model
-----------------------------------
From Go 1.18 to 1.25 the Linux profiler is the same machine: `setThreadCPUProfiler`
(src/runtime/os_linux.go) gives every M a `timer_create(CLOCK_THREAD_CPUTIME_ID)` timer
aimed at its own thread, the process-wide `setitimer(ITIMER_PROF)` stays armed beside
them for threads Go did not create, `validSIGPROF` drops the process timer's signals on
Ms that have their own timer, and the reader goroutine sleeps 100 ms between drains
(src/runtime/pprof/pprof.go `profileWriter`). Go 1.19 changed none of that (it named
the buffer constants and added execution-trace CPU samples), so a Go 1.19 run is a
measurement of the scenario's `go1.18` model; 1.26's reader wake-up is the next model,
and Go 1.17 and older arm setitimer alone. `model_runtime` maps a version to its model.

What this world cannot observe
------------------------------
Signals are generated by the kernel and filtered inside the runtime; a Go program has
no counter for either, so the funnel's signal rows (generated, dropped while pending,
delivered, discarded by `validSIGPROF`) and the ring-buffer writes are null. What the
profile itself records is reported: its samples, the overflow count the builder turns
into `runtime/pprof.lostProfileEvent` samples, and the `lostExtra` count it writes as
`runtime._LostExternalCode` (both in `samples_lost_overflow`). Per-function truth is
measured around each step on the thread's own CPU clock; the CPU of the runtime's own
threads (GC workers, sysmon, the profile writer) is in rusage but in no step, so the
report gives it a row of its own. Scenario knobs that are constants in the real runtime
(buffer sizes, reader period, handler cost, stack depth) and the scenario's machine
section do not apply; the report notes each one the scenario changed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import tempfile
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.profile import Frame, Profile, ProfileFormatError
from contract.profile_files import read_profile
from contract.report import Report, build_report
from contract.scenario import NativeStep, RunStep, Scenario, SleepStep
from sim.workload import thread_names

__all__ = [
    "OTHER_CODE",
    "OTHER_THREADS",
    "GoWorldError",
    "go_source",
    "go_toolchain",
    "go_version",
    "model_runtime",
    "run_go_world",
]

INSTALL_HINT = "apt-get install golang-go"

# Rows for samples that belong to no step function / no workload thread.
OTHER_CODE = "(runtime and other code)"
OTHER_THREADS = "(runtime and other threads)"
UNSYMBOLIZED_CODE = "(unsymbolized code)"

# runtime.SetCPUProfileRate's warning when StartCPUProfile asks for 100 Hz after we set
# the rate (src/runtime/cpuprof.go); expected, so it is filtered from the program's stderr.
_RATE_WARNING = "runtime: cannot set cpu profile rate until previous profile has finished."

# Iterations of the spin arithmetic between two reads of the thread CPU clock (~60 µs).
_SPIN_CHUNK = 1 << 16

_BUILD_TIMEOUT_S = 600.0
_NS = 1_000_000_000


class GoWorldError(Exception):
    """The Go world cannot run this scenario here; the message is one line for the CLI."""


# --------------------------------------------------------------------------------------
# The toolchain
# --------------------------------------------------------------------------------------


def go_toolchain() -> str | None:
    """Path of the `go` command, or None when Go is not installed."""
    return shutil.which("go")


@functools.lru_cache(maxsize=8)
def _version_of(go: str) -> str | None:
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
        if out.startswith("go"):
            return out
        # `go env GOVERSION` needs Go 1.16; older toolchains only answer `go version`.
        words = subprocess.run(
            [go, "version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return words[2] if len(words) >= 3 and words[2].startswith("go") else None


def go_version() -> str | None:
    """The installed toolchain's version, e.g. "go1.19.8", or None without Go."""
    go = go_toolchain()
    return _version_of(go) if go else None


def _major_minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"go(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def model_runtime(version: str) -> tuple[str, str]:
    """(runtime model, timer) that a Go version's Linux profiler implements.

    go1.17 and older: setitimer only; 1.18-1.25: per-thread timers beside setitimer
    (src/runtime/os_linux.go); 1.26: the same timers, reader woken at half full
    (src/runtime/profbuf.go). An unparsable version (a devel build) is taken as current.
    """
    parsed = _major_minor(version)
    if parsed is None or parsed >= (1, 26):
        return "go1.26", "both"
    if parsed >= (1, 18):
        return "go1.18", "both"
    return "go1.17", "process"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "sigprof-lab" / "go"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / f"sigprof-lab-go-{os.getuid()}"
        path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------
# The plan: names of everything the program contains
# --------------------------------------------------------------------------------------

# Go keywords, predeclared identifiers, the packages the program imports, and names
# the language or cgo give a meaning: none may name a generated function.
_GO_RESERVED_WORDS = """
break case chan const continue default defer else fallthrough for func go goto if import
interface map package range return select struct switch type var
any bool byte comparable complex64 complex128 error float32 float64 int int8 int16 int32
int64 rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil append cap
clear close complex copy delete imag len make max min new panic print println real recover
C context flag fmt json os pprof runtime sync atomic syscall time unsafe main init _
"""
_GO_RESERVED = frozenset(_GO_RESERVED_WORDS.split())


class _Names:
    """Unique Go identifiers; the program's own helpers all start with `lab`."""

    def __init__(self) -> None:
        self.taken: set[str] = set(_GO_RESERVED)

    def take(self, wanted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", wanted) or "f"
        if base[0].isdigit() or base.startswith(("lab", "_C", "_cgo")):
            base = "u_" + base
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name


def _function_ident(function: str) -> str:
    """`main.compute` -> `compute`: the name Go will print as `main.compute`."""
    return function[len("main.") :] if function.startswith("main.") else function


@dataclass
class _Step:
    kind: str  # "spin" or "sleep"
    ns: int
    fid: int = -1  # index into _Plan.functions
    depth: int = 1
    leaf: str = ""  # Go identifier of the leaf (go threads)


@dataclass
class _Group:
    name: str
    kind: str
    threads: list[str]  # thread names, sim.workload.thread_names
    first: int  # index of the first thread among the go (or external) threads
    steps: list[_Step]
    entry: str = ""  # Go identifier of the goroutine's entry function (go groups)
    callers: list[str] = field(default_factory=list)  # caller1, caller2, ...


@dataclass
class _Plan:
    functions: list[str]  # scenario function names, by fid
    groups: list[_Group]
    run_leaves: dict[str, int]  # Go identifier -> fid, for `run` steps
    native_leaves: dict[str, tuple[int, str]]  # Go identifier -> (fid, C function)
    go_threads: list[str]
    ext_threads: list[str]

    @property
    def cgo(self) -> bool:
        return bool(self.native_leaves or self.ext_threads)

    def ext_spin_name(self, thread: int, step: int) -> str:
        return f"labx_{thread}_{step}"

    def ext_spins(self) -> dict[str, tuple[str, str]]:
        """C spin function of each external thread's step -> (thread, scenario function)."""
        spins = {}
        for group in self.groups:
            if group.kind != "external":
                continue
            for k, thread in enumerate(group.threads):
                for i, step in enumerate(group.steps):
                    if step.kind == "spin":
                        name = self.ext_spin_name(group.first + k, i)
                        spins[name] = (thread, self.functions[step.fid])
        return spins


def _plan(scenario: Scenario) -> _Plan:
    names = _Names()
    functions: list[str] = []
    fids: dict[str, int] = {}
    run_leaves: dict[str, int] = {}
    native_leaves: dict[str, tuple[int, str]] = {}
    leaf_of: dict[tuple[str, str], str] = {}
    groups: list[_Group] = []
    go_threads: list[str] = []
    ext_threads: list[str] = []

    # Leaves first: their names are what the learner looks for in the profile.
    for group in scenario.workload.threads:
        for step in group.program:
            if isinstance(step, SleepStep):
                continue
            work = step.run if isinstance(step, RunStep) else step.native
            fids.setdefault(work.function, len(functions))
            if work.function not in functions:
                functions.append(work.function)
            kind = "native" if isinstance(step, NativeStep) else "run"
            if group.kind == "go" and (kind, work.function) not in leaf_of:
                ident = names.take(_function_ident(work.function))
                leaf_of[(kind, work.function)] = ident
                fid = fids[work.function]
                if kind == "run":
                    run_leaves[ident] = fid
                else:
                    native_leaves[ident] = (fid, f"lab_c{len(native_leaves)}")

    for group in scenario.workload.threads:
        threads = thread_names(group.name, group.count)
        pool = go_threads if group.kind == "go" else ext_threads
        g = _Group(group.name, group.kind, threads, len(pool), [])
        pool.extend(threads)
        for step in group.program:
            if isinstance(step, SleepStep):
                g.steps.append(_Step("sleep", max(1, round(step.sleep_ms * 1e6))))
                continue
            work = step.run if isinstance(step, RunStep) else step.native
            kind = "native" if isinstance(step, NativeStep) else "run"
            g.steps.append(
                _Step(
                    "spin",
                    max(1, round(work.cpu_ms * 1e6)),
                    fids[work.function],
                    work.depth,
                    leaf_of.get((kind, work.function), ""),
                )
            )
        if group.kind == "go":
            g.entry = names.take(group.name)
            deepest = max((s.depth for s in g.steps if s.kind == "spin"), default=0)
            g.callers = [names.take(f"{g.entry}_caller{k}") for k in range(1, deepest - 1)]
        groups.append(g)
    return _Plan(functions, groups, run_leaves, native_leaves, go_threads, ext_threads)


# --------------------------------------------------------------------------------------
# Source generation
# --------------------------------------------------------------------------------------


def _go_quote(text: str) -> str:
    """A Go interpreted string literal for any Python string (ASCII source)."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate has no UTF-8 form
            out.append("\\uFFFD")
        else:
            out.append(f"\\U{code:08X}")
    return '"' + "".join(out) + '"'


_C_PREAMBLE = """\
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

static volatile uint64_t lab_c_sink;
static int64_t lab_deadline_ns;

static int64_t lab_clock_ns(clockid_t clock) {
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t lab_mono_ns(void) { return lab_clock_ns(CLOCK_MONOTONIC); }
static int64_t lab_thread_ns(void) { return lab_clock_ns(CLOCK_THREAD_CPUTIME_ID); }
static int lab_past(void) { return lab_mono_ns() >= lab_deadline_ns; }

// This thread's CPU time as of its last accounting update (tick or switch): unlike the
// CPU clock, reading it does not update the scheduler's accounting (see labBusyNs).
static int64_t lab_busy_ns(void) {
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
		+ ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}
static void lab_set_deadline(int64_t ns) { lab_deadline_ns = ns; }

// Burn `budget` ns of this thread's CPU clock, or stop at the deadline. Inlined into
// every spin function, so a sampled PC names the function, not this helper.
static inline __attribute__((always_inline)) void lab_spin(int64_t budget) {
	int64_t start = lab_busy_ns();
	uint64_t x = lab_c_sink | 1;
	for (;;) {
		for (int i = 0; i < LAB_SPIN_CHUNK; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		if (lab_busy_ns() - start >= budget || lab_past()) {
			break;
		}
	}
	lab_c_sink += x;
}
"""

_C_EXTERNAL = """\
static int64_t lab_ext_thread_cpu[LAB_EXT_THREADS];
static int64_t lab_ext_func_cpu[LAB_EXT_THREADS][LAB_FUNCTIONS];
static pthread_t lab_ext_tid[LAB_EXT_THREADS];
static pthread_mutex_t lab_ext_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lab_ext_cv = PTHREAD_COND_INITIALIZER;
static int lab_ext_go;

static void lab_sleep(int64_t ns) {
	int64_t until = lab_mono_ns() + ns;
	if (until > lab_deadline_ns) {
		until = lab_deadline_ns;
	}
	struct timespec ts = {until / 1000000000LL, until % 1000000000LL};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
	}
}

static void *lab_ext_thread(void *arg) {
	int t = (int)(intptr_t)arg;
	pthread_mutex_lock(&lab_ext_mu);
	while (!lab_ext_go) {
		pthread_cond_wait(&lab_ext_cv, &lab_ext_mu);
	}
	pthread_mutex_unlock(&lab_ext_mu);
	const lab_step_t *program = lab_ext_program[t];
	int steps = lab_ext_steps[t];
	int64_t t0 = lab_thread_ns(), s = t0;
	for (;;) {
		for (int i = 0; i < steps; i++) {
			if (lab_past()) {
				goto done;
			}
			if (program[i].spin) {
				lab_ext_spin[t][i](program[i].ns);
				int64_t e = lab_thread_ns();
				lab_ext_func_cpu[t][program[i].fid] += e - s;
				s = e;
			} else {
				lab_sleep(program[i].ns);
				s = lab_thread_ns();
			}
		}
	}
done:
	lab_ext_thread_cpu[t] = lab_thread_ns() - t0;
	return NULL;
}

static int lab_ext_create(void) {
	for (int t = 0; t < LAB_EXT_THREADS; t++) {
		int rc = pthread_create(&lab_ext_tid[t], NULL, lab_ext_thread, (void *)(intptr_t)t);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

static void lab_ext_start(void) {
	pthread_mutex_lock(&lab_ext_mu);
	lab_ext_go = 1;
	pthread_cond_broadcast(&lab_ext_cv);
	pthread_mutex_unlock(&lab_ext_mu);
}

static void lab_ext_join(void) {
	for (int t = 0; t < LAB_EXT_THREADS; t++) {
		pthread_join(lab_ext_tid[t], NULL);
	}
}

static int64_t lab_ext_thread_ns(int t) { return lab_ext_thread_cpu[t]; }
static int64_t lab_ext_func_ns(int t, int f) { return lab_ext_func_cpu[t][f]; }
"""


def _c_source(plan: _Plan) -> str:
    lines = [f"#define LAB_SPIN_CHUNK {_SPIN_CHUNK}", _C_PREAMBLE]
    for _ident, (_fid, cname) in plan.native_leaves.items():
        lines.append(
            f"static __attribute__((noinline)) void {cname}(int64_t budget) {{ lab_spin(budget); }}"
        )
    if plan.ext_threads:
        lines.append("")
        lines.append(f"#define LAB_EXT_THREADS {len(plan.ext_threads)}")
        lines.append(f"#define LAB_FUNCTIONS {max(len(plan.functions), 1)}")
        lines.append("typedef void (*lab_spin_fn)(int64_t);")
        lines.append("typedef struct { int spin; int fid; int64_t ns; } lab_step_t;")
        program_of: list[str] = []
        spins_of: list[str] = []
        steps_of: list[int] = []
        for group in plan.groups:
            if group.kind != "external":
                continue
            prog = f"lab_prog_{group.first}"
            items = ", ".join(
                f"{{{int(s.kind == 'spin')}, {max(s.fid, 0)}, {s.ns}LL}}" for s in group.steps
            )
            lines.append(f"static const lab_step_t {prog}[] = {{{items}}};")
            for k in range(len(group.threads)):
                t = group.first + k
                table = []
                for i, step in enumerate(group.steps):
                    if step.kind == "spin":
                        name = plan.ext_spin_name(t, i)
                        lines.append(
                            f"static __attribute__((noinline, used)) void {name}(int64_t b) "
                            "{ lab_spin(b); }"
                        )
                        table.append(name)
                    else:
                        table.append("0")
                lines.append(f"static const lab_spin_fn lab_spins_{t}[] = {{{', '.join(table)}}};")
                program_of.append(prog)
                spins_of.append(f"lab_spins_{t}")
                steps_of.append(len(group.steps))
        lines.append(
            f"static const lab_step_t *const lab_ext_program[] = {{{', '.join(program_of)}}};"
        )
        lines.append(f"static const lab_spin_fn *const lab_ext_spin[] = {{{', '.join(spins_of)}}};")
        lines.append(f"static const int lab_ext_steps[] = {{{', '.join(map(str, steps_of))}}};")
        lines.append(_C_EXTERNAL)
    return "\n".join(lines)


def go_source(scenario: Scenario) -> str:
    """The Go program that runs `scenario`'s workload (deterministic text).

    Rate, duration and the profile's path are command-line flags, so one build serves
    every rate and duration of the same workload.
    """
    plan = _plan(scenario)
    out: list[str] = []
    w = out.append
    w("// Code generated by sigprof-lab (lab/goworld.py) from a scenario's workload.")
    w("// DO NOT EDIT. Functions named after the scenario's:")
    for ident, fid in plan.run_leaves.items():
        w(f"//   {ident} <- run {_go_quote(plan.functions[fid])}")
    for ident, (fid, cname) in plan.native_leaves.items():
        w(f"//   {ident} <- native {_go_quote(plan.functions[fid])} (C {cname})")
    for group in plan.groups:
        label = group.entry or "C threads"
        w(f"//   {label} <- {group.kind} group {_go_quote(group.name)} x{len(group.threads)}")
    w("")
    w("package main")
    w("")
    if plan.cgo:
        w("/*")
        w(_c_source(plan))
        w("*/")
        w('import "C"')
        w("")
    w("import (")
    packages = ["encoding/json", "flag", "fmt", "os", "runtime", "runtime/pprof", "sync"]
    packages += ["syscall", "time", "unsafe"]
    if plan.go_threads:
        packages.append("context")  # goroutine labels
    if plan.run_leaves:
        packages.append("sync/atomic")  # the spin loops' sink
    for package in sorted(packages):
        w(f"\t{_go_quote(package)}")
    w(")")
    w("")
    n_go, n_ext, n_fn = len(plan.go_threads), len(plan.ext_threads), max(len(plan.functions), 1)
    w(f"const labSpinChunk = {_SPIN_CHUNK}")
    w("")
    w("var (")
    w("\tlabStart    = make(chan struct{})")
    w("\tlabReady    sync.WaitGroup")
    w("\tlabDone     sync.WaitGroup")
    w("\tlabT0       time.Time")
    w("\tlabDuration time.Duration")
    w("\tlabSink     uint64")
    w(f"\tlabThreadNs [{max(n_go, 1)}]int64")
    w(f"\tlabFuncNs   [{max(n_go, 1)}][{n_fn}]int64")
    names = ", ".join(_go_quote(name) for name in plan.go_threads)
    w(f"\tlabThreadNames = []string{{{names}}}")
    w(")")
    w("")
    w(_GO_HELPERS)
    for ident in plan.run_leaves:
        w(_GO_SPIN.replace("NAME", ident))
    for ident, (_fid, cname) in plan.native_leaves.items():
        w("//go:noinline")
        w(f"func {ident}(budgetNs int64) {{ C.{cname}(C.int64_t(budgetNs)) }}")
        w("")
    for group in plan.groups:
        if group.kind == "go":
            _go_group(group, w)
    _go_main(plan, n_go, n_ext, n_fn, w)
    return "\n".join(out) + "\n"


_GO_HELPERS = """\
// labThreadCPU reads this thread's CPU clock, CLOCK_THREAD_CPUTIME_ID (3): exact, a
// real system call (the vDSO serves only wall clocks), raw (no scheduler round trip).
// Read once per step boundary only: reading its own CPU clock makes the kernel update
// the thread's accounting, which can end its time slice between two ticks, and CPU
// timers are checked only at ticks (see the module docstring of lab/goworld.py).
func labThreadCPU() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// labCharge adds the thread CPU time since *mark to *slot and moves the mark.
func labCharge(slot, mark *int64) {
	now := labThreadCPU()
	*slot += now - *mark
	*mark = now
}

// labBusyNs is this thread's CPU time from getrusage(RUSAGE_THREAD = 1): as of the last
// accounting update (at most a tick old), and harmless to read often.
func labBusyNs() int64 {
	var ru syscall.Rusage
	syscall.RawSyscall(syscall.SYS_GETRUSAGE, 1, uintptr(unsafe.Pointer(&ru)), 0)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func labPast() bool { return time.Since(labT0) >= labDuration }

func labSleep(ns int64) {
	d := time.Duration(ns)
	if left := labDuration - time.Since(labT0); left < d {
		d = left
	}
	if d > 0 {
		time.Sleep(d)
	}
}
"""

# A run step's leaf: the spin loop lives in the function itself, so samples land in it.
_GO_SPIN = """\
//go:noinline
func NAME(budgetNs int64) {
	start := labBusyNs()
	x := atomic.LoadUint64(&labSink) | 1
	for {
		for i := 0; i < labSpinChunk; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		if labBusyNs()-start >= budgetNs || labPast() {
			break
		}
	}
	atomic.AddUint64(&labSink, x)
}
"""


def _go_group(group: _Group, w) -> None:
    spins = [(i, s) for i, s in enumerate(group.steps) if s.kind == "spin"]
    # caller1 dispatches to the leaf of the step it was called for; callerK calls K-1.
    for k, caller in enumerate(group.callers, start=1):
        w("//go:noinline")
        w(f"func {caller}(step int, budgetNs int64) {{")
        if k > 1:
            w(f"\t{group.callers[k - 2]}(step, budgetNs)")
        else:
            w("\tswitch step {")
            for i, step in spins:
                if step.depth >= 3:
                    w(f"\tcase {i}:")
                    w(f"\t\t{step.leaf}(budgetNs)")
            w("\t}")
        w("}")
        w("")
    w("//go:noinline")
    w(f"func {group.entry}(tid int) {{")
    w("\truntime.LockOSThread()")
    w('\tlabels := pprof.Labels("thread", labThreadNames[tid])')
    w("\tpprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), labels))")
    w("\tlabReady.Done()")
    w("\t<-labStart")
    w("\tt0 := labThreadCPU()")
    w("\ts := t0")
    w("\tcpu := &labFuncNs[tid]")
    w("\tfor {")
    for i, step in enumerate(group.steps):
        w("\t\tif labPast() {")
        w("\t\t\tbreak")
        w("\t\t}")
        if step.kind == "sleep":
            w(f"\t\tlabSleep({step.ns})")
            w("\t\ts = labThreadCPU()")
            continue
        call = (
            f"{group.callers[step.depth - 3]}({i}, {step.ns})"
            if step.depth >= 3
            else f"{step.leaf}({step.ns})"
        )
        w(f"\t\t{call}")
        w(f"\t\tlabCharge(&cpu[{step.fid}], &s)")
    w("\t}")
    w("\tlabThreadNs[tid] = labThreadCPU() - t0")
    w("\tlabDone.Done()")
    w("}")
    w("")


def _go_main(plan: _Plan, n_go: int, n_ext: int, n_fn: int, w) -> None:
    w("type labResult struct {")
    w('\tGoVersion  string    `json:"go_version"`')
    w('\tGoMaxProcs int       `json:"gomaxprocs"`')
    w('\tWallNs     int64     `json:"wall_ns"`')
    w('\tUserNs     int64     `json:"rusage_user_ns"`')
    w('\tSysNs      int64     `json:"rusage_sys_ns"`')
    w('\tThreadNs   []int64   `json:"thread_cpu_ns"`')
    w('\tFuncNs     [][]int64 `json:"function_cpu_ns"`')
    w("}")
    w("")
    w("func labRusage() (user, sys int64) {")
    w("\tvar ru syscall.Rusage")
    w("\tif err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {")
    w('\t\tlabFail("getrusage", err)')
    w("\t}")
    w("\treturn ru.Utime.Nano(), ru.Stime.Nano()")
    w("}")
    w("")
    w("func labFail(what string, err error) {")
    w('\tfmt.Fprintf(os.Stderr, "goworld: %s: %v\\n", what, err)')
    w("\tos.Exit(1)")
    w("}")
    w("")
    w("func main() {")
    w('\trate := flag.Int("rate", 100, "CPU profile rate (Hz)")')
    w('\tseconds := flag.Float64("duration", 1, "workload duration (s)")')
    w('\tout := flag.String("o", "cpu.pprof", "profile path")')
    w("\tflag.Parse()")
    w(f"\truntime.GOMAXPROCS({max(n_go, 1)})")
    w("\tlabDuration = time.Duration(*seconds * 1e9)")
    w(f"\tlabReady.Add({n_go})")
    w(f"\tlabDone.Add({n_go})")
    for group in plan.groups:
        if group.kind == "go":
            w(f"\tfor i := 0; i < {len(group.threads)}; i++ {{")
            w(f"\t\tgo {group.entry}({group.first} + i)")
            w("\t}")
    w("\tlabReady.Wait()")
    if n_ext:
        w("\tif rc := C.lab_ext_create(); rc != 0 {")
        w('\t\tlabFail("pthread_create", syscall.Errno(rc))')
        w("\t}")
    w("\tf, err := os.Create(*out)")
    w("\tif err != nil {")
    w('\t\tlabFail("create profile", err)')
    w("\t}")
    w("\t// StartCPUProfile always asks for 100 Hz; a rate set first wins (golang/go #40094).")
    w("\truntime.SetCPUProfileRate(*rate)")
    w("\tif err := pprof.StartCPUProfile(f); err != nil {")
    w('\t\tlabFail("StartCPUProfile", err)')
    w("\t}")
    w("\tu0, s0 := labRusage()")
    w("\tlabT0 = time.Now()")
    if plan.cgo:
        w("\tC.lab_set_deadline(C.lab_mono_ns() + C.int64_t(labDuration))")
    if n_ext:
        w("\tC.lab_ext_start()")
    w("\tclose(labStart)")
    w("\tlabDone.Wait()")
    if n_ext:
        w("\tC.lab_ext_join()")
    w("\twall := time.Since(labT0)")
    w("\tu1, s1 := labRusage()")
    w("\tpprof.StopCPUProfile()")
    w("\tif err := f.Close(); err != nil {")
    w('\t\tlabFail("write profile", err)')
    w("\t}")
    w("\tres := labResult{")
    w("\t\tGoVersion:  runtime.Version(),")
    w("\t\tGoMaxProcs: runtime.GOMAXPROCS(0),")
    w("\t\tWallNs:     wall.Nanoseconds(),")
    w("\t\tUserNs:     u1 - u0,")
    w("\t\tSysNs:      s1 - s0,")
    w("\t}")
    w(f"\tfor t := 0; t < {n_go}; t++ {{")
    w("\t\tres.ThreadNs = append(res.ThreadNs, labThreadNs[t])")
    w("\t\tres.FuncNs = append(res.FuncNs, labFuncNs[t][:])")
    w("\t}")
    if n_ext:
        w(f"\tfor t := 0; t < {n_ext}; t++ {{")
        w("\t\tres.ThreadNs = append(res.ThreadNs, int64(C.lab_ext_thread_ns(C.int(t))))")
        w(f"\t\trow := make([]int64, {n_fn})")
        w("\t\tfor f := range row {")
        w("\t\t\trow[f] = int64(C.lab_ext_func_ns(C.int(t), C.int(f)))")
        w("\t\t}")
        w("\t\tres.FuncNs = append(res.FuncNs, row)")
        w("\t}")
    w("\tline, err := json.Marshal(res)")
    w("\tif err != nil {")
    w('\t\tlabFail("json", err)')
    w("\t}")
    w("\tfmt.Println(string(line))")
    w("}")


# --------------------------------------------------------------------------------------
# Build and run
# --------------------------------------------------------------------------------------


def _go_env(cache: Path, cgo: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOCACHE=str(cache / "gocache"),
        GOPATH=str(cache / "gopath"),
        GO111MODULE="on",
        GOFLAGS="",
        GOWORK="off",
        GOPROXY="off",  # a single-file program with no requirements: nothing to download
        GOTOOLCHAIN="local",
        CGO_ENABLED="1" if cgo else "0",
    )
    return env


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return "no output"


def _build(go: str, version: str, source: str, cgo: bool) -> Path:
    """Build `source` once per (source, toolchain); later runs reuse the binary."""
    cache = _cache_dir()
    key = hashlib.sha256(f"{go}\0{version}\0{cgo}\0{source}".encode()).hexdigest()[:24]
    binary = cache / "bin" / key / "goworld"
    if binary.is_file():
        return binary
    (cache / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache / "build") as tmp:
        Path(tmp, "main.go").write_text(source, encoding="utf-8")
        # No requirements and a go line any toolchain since modules accepts.
        Path(tmp, "go.mod").write_text("module sigproflab/goworld\n\ngo 1.16\n", encoding="utf-8")
        try:
            done = subprocess.run(
                [go, "build", "-o", "goworld", "."],
                cwd=tmp,
                env=_go_env(cache, cgo),
                capture_output=True,
                text=True,
                timeout=_BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise GoWorldError(f"go build took more than {_BUILD_TIMEOUT_S:.0f} s") from None
        except OSError as error:
            raise GoWorldError(f"cannot run {go}: {error.strerror or error}") from None
        if done.returncode != 0:
            hint = " (cgo needs gcc: apt-get install gcc)" if cgo and "gcc" in done.stderr else ""
            raise GoWorldError(f"go build failed: {_first_error_line(done.stderr)}{hint}")
        binary.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp, "goworld"), binary)  # atomic: a concurrent build wins or loses whole
    return binary


@dataclass(frozen=True)
class _Symbol:
    start: int
    end: int
    name: str


def _c_symbols(go: str, binary: Path, wanted: Iterable[str]) -> list[_Symbol]:
    """Address ranges of the external threads' spin functions (`go tool nm -size`)."""
    wanted = set(wanted)
    cached = binary.with_name("nm.txt")
    if cached.is_file():
        text = cached.read_text(encoding="utf-8")
    else:
        done = subprocess.run(
            [go, "tool", "nm", "-size", "-sort", "address", str(binary)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise GoWorldError(f"go tool nm failed: {_first_error_line(done.stderr)}")
        text = done.stdout
        temp = cached.with_name(f"nm.{os.getpid()}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, cached)
    symbols = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in wanted:
            start, size = int(parts[0], 16), int(parts[1])
            symbols.append(_Symbol(start, start + size, parts[3]))
    symbols.sort(key=lambda s: s.start)
    return symbols


@functools.lru_cache(maxsize=1)
def _kernel_hz() -> int | None:
    """CONFIG_HZ of the running kernel, from its config file, if readable."""
    release = platform.release()
    for path in (Path(f"/boot/config-{release}"), Path("/proc/config.gz")):
        try:
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        match = re.search(rb"^CONFIG_HZ=(\d+)$", data, re.MULTILINE)
        if match:
            return int(match.group(1))
    return None


def _machine_facts(version: str) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {
        "name": "this machine",
        "cpus": usable,
        "kernel_hz": _kernel_hz(),
        "kernel": platform.release(),
        "go_version": version,
    }


# --------------------------------------------------------------------------------------
# Attribution: from Go's stacks back to the scenario's names
# --------------------------------------------------------------------------------------


class _Attributor:
    def __init__(self, plan: _Plan, ext_symbols: list[_Symbol]) -> None:
        self.leaves: dict[str, str] = {}
        for ident, fid in plan.run_leaves.items():
            self.leaves[f"main.{ident}"] = plan.functions[fid]
        for ident, (fid, _c) in plan.native_leaves.items():
            self.leaves[f"main.{ident}"] = plan.functions[fid]
        # Frames of the workload's own structure: a sample whose leaf-most workload
        # frame is one of these ran between steps (clock reads, sleeps, the loop).
        self.structure = {
            f"main.{name}" for g in plan.groups if g.kind == "go" for name in (g.entry, *g.callers)
        }
        self.go_threads = set(plan.go_threads)
        self.symbols = ext_symbols
        self.starts = [s.start for s in ext_symbols]
        self.ext = plan.ext_spins()

    def _external(self, frame: Frame) -> tuple[str, str] | None:
        if not frame.function.startswith("0x"):
            return None
        try:
            address = int(frame.function, 16)
        except ValueError:
            return None
        # The builder may store pc - 1 for an unsymbolised PC: accept either.
        for pc in (address, address + 1):
            i = bisect_right(self.starts, pc) - 1
            if i >= 0 and pc < self.symbols[i].end:
                return self.ext.get(self.symbols[i].name)
        return None

    def attribute(self, stack: tuple[Frame, ...], label: str) -> tuple[str, str]:
        """(function row, thread row) of one sample."""
        thread = label if label in self.go_threads else OTHER_THREADS
        for frame in stack:
            name = frame.function
            if name in self.leaves:
                return self.leaves[name], thread
            if name in self.structure:
                return OTHER_CODE, thread
        external = self._external(stack[0]) if stack else None
        if external is not None:
            return external[1], external[0]
        return OTHER_CODE, thread


def _add(counts: dict[str, int], key: str, value: int) -> None:
    counts[key] = counts.get(key, 0) + value


# --------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------


def _check(scenario: Scenario) -> None:
    if scenario.profiler.runtime == "go-windows":
        raise GoWorldError(
            "runtime go-windows models Windows' suspend-and-sample thread; the Go world runs "
            "Go on this Linux machine, where profiling is signal-based: use go1.18 or go1.26"
        )


def run_go_world(
    scenario: Scenario, workdir: Path | None = None, timeout_s: float | None = None
) -> tuple[Report, Profile]:
    """Run `scenario`'s workload under the installed Go's CPU profiler.

    Returns the report (world "go") and the profile Go wrote. With `workdir`, the
    program's source (main.go), its profile (cpu.pb.gz), its JSON result and stderr are
    kept there; otherwise they live in a temporary directory.
    """
    _check(scenario)
    go = go_toolchain()
    if go is None:
        raise GoWorldError(f"the Go world needs Go: {INSTALL_HINT}")
    version = _version_of(go)
    if version is None:
        raise GoWorldError(f"{go} does not report a version; is it a Go toolchain?")
    plan = _plan(scenario)
    source = go_source(scenario)
    binary = _build(go, version, source, plan.cgo)
    spins = plan.ext_spins()
    symbols = _c_symbols(go, binary, spins) if spins else []

    requested = scenario.profiler.rate_hz
    rate = min(max(round(requested), 1), 1_000_000)
    duration = scenario.workload.duration_s
    timeout = timeout_s if timeout_s is not None else duration + 60.0

    with tempfile.TemporaryDirectory(prefix="sigprof-goworld-") as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if workdir is not None:
            (where / "main.go").write_text(source, encoding="utf-8")
        profile_path = where / "cpu.pb.gz"
        command = [str(binary), "-rate", str(rate), "-duration", repr(duration)]
        command += ["-o", str(profile_path)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise GoWorldError(
                f"the Go program did not finish within {timeout:g} s "
                f"(workload {duration:g} s); see timeout_s"
            ) from None
        stderr = "\n".join(
            line for line in done.stderr.splitlines() if line.strip() != _RATE_WARNING
        )
        if workdir is not None:
            (where / "stderr.txt").write_text(stderr, encoding="utf-8")
            (where / "result.json").write_text(done.stdout, encoding="utf-8")
        if done.returncode != 0:
            raise GoWorldError(
                f"the Go program failed (exit {done.returncode}): {_first_error_line(stderr)}"
            )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise GoWorldError("the Go program printed no result line") from None
        try:
            profile = read_profile(profile_path)
        except ProfileFormatError as error:
            raise GoWorldError(f"cannot read Go's profile: {error}") from None

    report = _report(scenario, plan, symbols, result, profile, rate, stderr)
    return report, profile


def _scenario_notes(scenario: Scenario, model: str, timer: str, version: str) -> list[str]:
    """What the scenario asks for that the real runtime does not do here."""
    notes = []
    profiler, machine = scenario.profiler, scenario.machine
    if profiler.runtime != model:
        notes.append(
            f"the scenario models {profiler.runtime}; the installed {version} implements "
            f"the {model} profiler, so that is what this world measured"
        )
    elif profiler.effective_timer != timer:
        notes.append(
            f"the scenario asks for timer {profiler.effective_timer!r}; {version} always "
            f"uses {timer!r} on Linux when timer_create works"
        )
    fixed = {
        "buffer_words": (profiler.buffer_words, 131072),
        "extra_words": (profiler.extra_words, 1000),
        "reader_period_ms": (profiler.reader_period_ms, 100),
        "max_depth": (profiler.max_depth, 64),
    }
    for name, (asked, real) in fixed.items():
        if asked != real:
            notes.append(f"profiler.{name}={asked:g} does not apply: the runtime's is {real:g}")
    if profiler.handler_cost_us is not None:
        notes.append("profiler.handler_cost_us does not apply: the real handler's cost is real")
    here = _machine_facts(version)
    if (machine.cpus, machine.kernel_hz) != (here["cpus"], here["kernel_hz"]):
        notes.append(
            f"the scenario's machine ({machine.cpus} CPUs, HZ={machine.kernel_hz}) is not "
            f"this one ({here['cpus']} CPUs, HZ={here['kernel_hz'] or '?'}): the real "
            "worlds run on the machine at hand"
        )
    return notes


def _report(
    scenario: Scenario,
    plan: _Plan,
    symbols: list[_Symbol],
    result: Mapping[str, Any],
    profile: Profile,
    rate: int,
    stderr: str,
) -> Report:
    version = str(result.get("go_version", "go?"))
    model, timer = model_runtime(version)
    attributor = _Attributor(plan, symbols)
    function_samples: dict[str, int] = {}
    thread_samples: dict[str, int] = {}
    for (stack, label), count in profile.samples.items():
        function, thread = attributor.attribute(stack, label)
        _add(function_samples, function, count)
        _add(thread_samples, thread, count)

    cpu_s = (int(result["rusage_user_ns"]) + int(result["rusage_sys_ns"])) / _NS
    wall_s = int(result["wall_ns"]) / _NS
    thread_truth = {
        name: ns / _NS
        for name, ns in zip(
            plan.go_threads + plan.ext_threads, result["thread_cpu_ns"] or [], strict=True
        )
    }
    function_truth = dict.fromkeys(plan.functions, 0.0)
    for row in result["function_cpu_ns"] or []:
        for fid, name in enumerate(plan.functions):
            function_truth[name] += row[fid] / _NS
    # The runtime's own threads and the loops between steps are in rusage, not in a step.
    function_truth[OTHER_CODE] = max(cpu_s - sum(function_truth.values()), 0.0)
    thread_truth[OTHER_THREADS] = max(cpu_s - sum(thread_truth.values()), 0.0)

    lost_overflow = profile.lost.get("overflow", 0)
    lost_extra = profile.lost.get("extra", 0)
    profile_cpu_s = profile.total_samples * profile.period_ns / _NS
    notes = [
        f"{version} on Linux {platform.release()}: per-thread timer_create timers beside "
        f"setitimer, validSIGPROF filter (src/runtime/os_linux.go): compare with the "
        f"{model} model",
        f"profile CPU {profile_cpu_s:.3f} s (samples x period) vs rusage user+sys "
        f"{cpu_s:.3f} s: ratio {profile_cpu_s / cpu_s if cpu_s else math.nan:.3f} "
        "(runtime/pprof's TestCPUProfileMultithreadMagnitude accepts 0.9-1.1)",
        "signals generated, dropped, delivered and discarded happen inside the kernel and "
        "the runtime, which count none of them: those funnel rows are not observable",
        f"profile duration_nanos (the writer's wall time) {profile.duration_ns / _NS:.3f} s; "
        f"the workload's interval {wall_s:.3f} s",
    ]
    if lost_extra:
        notes.append(
            f"{lost_extra} samples of threads Go did not create were lost because the "
            "runtime's extra buffer was full (runtime._LostExternalCode)"
        )
    if rate != scenario.profiler.rate_hz:
        notes.append(
            f"rate {scenario.profiler.rate_hz:g} Hz rounded to {rate} Hz: "
            "runtime.SetCPUProfileRate takes whole hertz"
        )
    if plan.native_leaves:
        notes.append(
            "native steps: without runtime.SetCgoTraceback Go cannot unwind C, so their "
            "samples end in runtime.cgocall and are credited to the Go function named "
            "after the step"
        )
    if any(g.kind == "external" and any(s.kind == "spin" for s in g.steps) for g in plan.groups):
        notes.append(
            "external threads are C threads (pthread_create) spinning in C; only setitimer "
            "samples them, and each sample is [pc, runtime._ExternalCode]"
        )
    notes += _scenario_notes(scenario, model, timer, version)
    if stderr.strip():
        notes.append(f"the Go program wrote to stderr: {_first_error_line(stderr)}")
    return build_report(
        world="go",
        scenario=scenario.name,
        runtime=model,
        timer=timer,
        machine=_machine_facts(version),
        rate_hz=float(rate),
        wall_seconds=wall_s,
        cpu_seconds=cpu_s,
        counts={
            "samples_lost_overflow": lost_overflow + lost_extra,
        },
        function_samples=function_samples,
        thread_samples=thread_samples,
        true_function_cpu_s=function_truth,
        true_thread_cpu_s=thread_truth,
        notes=notes,
    )
