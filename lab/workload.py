"""Run a scenario's workload for real, under the real sampler, and report like the simulator.

`python -m realprof scenario SCENARIO.yaml` is the real-world twin of `python -m sim
SCENARIO.yaml`: it reads the same file, runs the same thread programs on this machine's
kernel with `realprof.sampler.Sampler` switched on, and writes the same `contract.report.Report`
(with ``world="real"``), so a prediction and a measurement can sit in one table.

Why in-process
--------------
The sampler under test is an in-process SIGPROF sampler: its timers, its signal handler
and its ring buffer live in the profiled process, and what it can see (which thread got
the signal, which Python frames were on that thread) depends on that. So the workload
runs in this very process, in real `threading.Thread`s, exactly as a profiled program
would.

How a scenario becomes real threads
-----------------------------------
- Each thread group becomes `count` threads named like the simulator's
  (`sim.workload.thread_names`: `py.0`, `py.1`, or just `native` for a single thread).
  The first thread of the first group runs on the main thread (renamed for the run), as
  in the simulator, because CPython runs Python-level signal handlers only there: the
  `cpython` runtime's samples are samples of that thread.
- A `run` step calls a Python function whose code object carries the step's name (built
  with `code.replace(co_name=..., co_qualname=...)`, since the sampler reads
  `co_qualname`), under `depth - 1` callers named like `sim.workload.make_stack`:
  root `{group}` (the thread's loop itself), then `{group}.caller1` ... down to the leaf.
  The leaf spins in Python bytecode, holding the GIL, until this thread's CPU clock has
  advanced by `cpu_ms` or the run's deadline passes.
- A `native` step is the same named Python function calling
  `realprof._sampler.spin_native(ns)`, which burns CPU in C with the GIL released,
  once per step when the deadline is far, in chunks no longer than the wall time left
  when it is near (so the deadline is honoured without re-taking the GIL every few ms,
  which would change the workload: see `_leaf_native`). Samples of GIL-free code carry
  the Python caller as leaf (like a Go profile of a cgo call without a C traceback), so
  they land on the step's name.
- `sleep_ms` is `time.sleep`, cut short at the deadline.
- Every thread waits at one barrier; the barrier's last arrival sets the deadline
  (`workload.duration_s` from then), so all threads start together, and the sampler is
  started before the barrier and stopped after the last thread is joined, so the profiled
  interval is the workload interval plus the few microseconds around it.
- `gil_switch_interval_ms` is applied with `sys.setswitchinterval` for the run.

Why thread CPU clocks are the truth
-----------------------------------
A sampling profiler estimates where CPU time went; to judge it we need where it really
went. `time.thread_time_ns()` reads `CLOCK_THREAD_CPUTIME_ID`, the same per-thread
CPU clock the kernel charges at every tick and context switch and that the per-thread
timers count down, so it is the exact quantity a perfect profiler would divide among
stacks. Each thread reads its clock before and after every step (truth per leaf
function) and at the start and end of its run (truth per thread). The handler runs on the
interrupted thread, so its cost is inside these clocks, as it is inside `cpu_seconds` of
the simulator (the report's definition). Not in them: the sampler's reader thread and
whatever the main thread does outside its workload program (starting and stopping the
sampler), which is why `cpu_seconds` is the workload threads' sum and not process CPU.

Runtimes in the real world
--------------------------
The real world has one sampler with two handlers, so a scenario's runtime is mapped:
`realprof` uses the scenario's timer; `cpython` uses the Python-level handler on the
process timer (the naive port); `go1.17` uses realprof's C handler with the process
timer (Go <= 1.17's setitimer); `go1.18`/`go1.26` use realprof with `both` timers and
the validSIGPROF-style duplicate filter (`go1.26`'s half-full reader is not modelled:
the reader drains every `reader_period_ms`). `go-windows` has no equivalent here (no
thread-suspending sampler), and `external` thread groups need threads that the runtime
did not create (cgo), which a pure-Python workload cannot make: both are refused.

Left out: the scenario's `machine` section (the real world runs on this machine and
reports its facts beside the scenario's), handler and reader costs (measured, not
modelled), Go's extra buffer, and the counts the kernel keeps to itself
(`signals_generated`, `signals_dropped_pending`, `signals_pending_at_stop` are null).
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contract.profile import Profile
from contract.report import Report, build_report
from contract.scenario import NativeStep, RunStep, Scenario
from lab.machine import machine_facts
from realprof.sampler import Sampler, c_handler_available, integrity_notes
from sim.workload import thread_names

try:
    from realprof._sampler import spin_native as _spin_native
except ImportError:  # pragma: no cover - the extension is missing on this Python
    _spin_native = None

# Bytecode iterations between two reads of the thread's CPU clock: about 10 us of work,
# so a step overshoots its budget by at most that, while the clock read (a syscall,
# ~0.3 us) stays a few percent of the step's CPU.
_SPIN_BATCH = 300
# Shortest GIL-free chunk of a native step, so that the last chunks before the
# deadline are not dominated by taking the GIL back.
_NATIVE_MIN_CHUNK_NS = 100_000
# The sampler keeps at most this many frames (realprof.sampler.Sampler).
_SAMPLER_MAX_DEPTH = 1024
_BARRIER_TIMEOUT_S = 60.0

_thread_time_ns = time.thread_time_ns


_monotonic_ns = time.monotonic_ns


class RealWorldError(Exception):
    """A scenario the real world cannot run; the message is one line for the user."""


# ---------------------------------------------------------------------------------------
# Runtime mapping


@dataclass(frozen=True)
class RealSettings:
    """How a scenario's profiler section is run by the real sampler."""

    runtime: str  # the report's runtime: what really ran
    handler: str  # "c" or "python"
    timer: str  # "process", "per-thread", "both" or "perf"
    notes: tuple[str, ...]


def real_settings(scenario: Scenario, source: str = "") -> RealSettings:
    """Map the scenario's runtime onto realprof, or raise RealWorldError."""
    where = f"{source}: " if source else ""
    profiler = scenario.profiler
    runtime = profiler.runtime
    if runtime == "go-windows":
        raise RealWorldError(
            f"{where}profiler.runtime: go-windows samples by suspending threads from a "
            "timer thread; that sampler exists only in the simulator (the real world here "
            "is SIGPROF on Linux)"
        )
    externals = [
        (index, group.name)
        for index, group in enumerate(scenario.workload.threads)
        if group.kind == "external"
    ]
    if externals:
        index, name = externals[0]
        raise RealWorldError(
            f"{where}workload.threads.{index}.kind: group {name!r} is external: external "
            "(cgo-created) threads exist only in the simulator"
        )
    if runtime == "realprof":
        timer = profiler.effective_timer
        return RealSettings(
            "realprof", "c", timer, (f"runtime realprof: the C handler with timer {timer}",)
        )
    if runtime == "cpython":
        first = scenario.workload.threads[0]
        main_name = thread_names(first.name, first.count)[0]
        return RealSettings(
            "cpython",
            "python",
            "process",
            (
                "runtime cpython: realprof's Python-level handler (signal.setitimer + "
                "signal.signal) on the process timer; it samples the main thread (here "
                f"{main_name}) whoever burned the CPU",
            ),
        )
    if runtime == "go1.17":
        return RealSettings(
            "realprof",
            "c",
            "process",
            ("runtime go1.17 → realprof's C handler with the process timer (setitimer)",),
        )
    # go1.18 / go1.26
    timer = profiler.effective_timer
    extra = (
        "; go1.26's half-full reader wakeup is not modelled (the reader drains every "
        f"{profiler.reader_period_ms:g} ms)"
        if runtime == "go1.26"
        else ""
    )
    return RealSettings(
        "realprof",
        "c",
        timer,
        (
            f"runtime {runtime} → realprof's C handler with timer {timer}"
            + (" and a validSIGPROF-style duplicate filter" if timer == "both" else "")
            + extra,
        ),
    )


# ---------------------------------------------------------------------------------------
# Functions that carry a step's name


def _leaf_python(chain: tuple, level: int, cpu_ns: int, stop_at: list[int]) -> int:
    # Spins in bytecode, holding the GIL, until this thread has used cpu_ns of CPU. The
    # budget is read with getrusage(RUSAGE_THREAD), not the thread CPU clock: reading
    # CLOCK_THREAD_CPUTIME_ID of the running thread makes the scheduler update its
    # accounting (update_curr), which on EEVDF kernels can end a used-up slice between
    # ticks; a thread switched out between ticks escapes the tick-time timer checks and
    # loses samples to overruns (measured here: 4 busy threads on 2 CPUs at 250 Hz lost a
    # fifth of their samples). getrusage lags by at most a tick, which only stretches the
    # step a little; the truth is still read from the exact clock at step boundaries.
    # getrusage is called here, not through a Python helper: a helper would be a frame of
    # its own, and the samples taken during the check (about 5 % of them) would name the
    # measuring apparatus instead of the step, whose CPU the truth counts them in.
    getrusage, who = resource.getrusage, resource.RUSAGE_THREAD
    mono = _monotonic_ns
    usage = getrusage(who)
    end_s = usage.ru_utime + usage.ru_stime + cpu_ns / 1e9
    x = 0
    while True:
        for i in range(_SPIN_BATCH):
            x ^= i * 2654435761
        usage = getrusage(who)
        if usage.ru_utime + usage.ru_stime >= end_s or mono() >= stop_at[0]:
            return x


def _leaf_native(chain: tuple, level: int, cpu_ns: int, stop_at: list[int]) -> int:
    # GIL-free C; the C side spins on the same thread CPU clock. A chunk never asks for
    # more CPU than there is wall time left before the deadline (one thread's CPU clock
    # cannot run faster than the wall clock), so the deadline holds up to the time the
    # thread spends descheduled. Fixed small chunks would not do: every chunk ends by
    # taking the GIL back, and behind busy Python threads that wait is up to a switch
    # interval per chunk (measured: 2 ms chunks cut this thread's CPU by more than half
    # in realprof-per-thread), which is not the workload the scenario describes.
    clock = _thread_time_ns
    mono = _monotonic_ns
    spin = _spin_native
    end = clock() + cpu_ns
    while True:
        left = end - clock()
        wall_left = stop_at[0] - mono()
        if left <= 0 or wall_left <= 0:
            return 0
        spin(max(min(left, wall_left), _NATIVE_MIN_CHUNK_NS))


def _caller(chain: tuple, level: int, cpu_ns: int, stop_at: list[int]) -> Any:
    # One synthetic caller frame. CPython has no tail calls, so this frame stays on the
    # stack under its callee for the whole call, as a real caller's would.
    return chain[level](chain, level + 1, cpu_ns, stop_at)


def _thread_loop(
    program: tuple[_Op, ...], stop_at: list[int], function_cpu: dict[str, int]
) -> None:
    # The thread's root frame, renamed to the group's name (make_stack's root). Each
    # step's CPU is measured around its whole call chain, on this thread's own clock.
    clock = _thread_time_ns
    mono = _monotonic_ns
    while mono() < stop_at[0]:
        for op in program:
            if mono() >= stop_at[0]:
                break
            if op.chain is None:
                left = stop_at[0] - mono()
                if left > 0:
                    time.sleep(min(op.ns, left) / 1e9)
                continue
            before = clock()
            op.chain[0](op.chain, 1, op.ns, stop_at)
            function_cpu[op.function] = function_cpu.get(op.function, 0) + clock() - before


_NAMED: dict[tuple[Callable, str], types.FunctionType] = {}


def named(template: Callable, name: str) -> types.FunctionType:
    """A copy of `template` whose code object is called `name` (co_name and co_qualname).

    The sampler labels frames with `co_qualname`, so the copy shows up in profiles under
    `name`. Copies are cached: one code object per name keeps profiles' function tables
    small and the sampler's code-pointer cache warm.
    """
    key = (template, name)
    function = _NAMED.get(key)
    if function is None:
        code = template.__code__.replace(co_name=name, co_qualname=name)
        function = types.FunctionType(code, template.__globals__, name)
        _NAMED[key] = function
    return function


@dataclass(frozen=True)
class _Op:
    function: str  # leaf name; "" for sleep
    ns: int  # CPU budget, or sleep length
    chain: tuple[Callable, ...] | None  # [first call, ..., leaf]; None for sleep


def _chain(group: str, function: str, depth: int, native: bool) -> tuple[Callable, ...]:
    """Callers below the root, then the leaf: with the root loop, `depth` frames.

    make_stack's order, root first: `{group}`, `{group}.caller1`, ...,
    `{group}.caller{depth-2}`, leaf. The root is the thread loop, so depth 1 has one frame
    more here than in the simulator (the loop under the leaf).
    """
    callers = [named(_caller, f"{group}.caller{level}") for level in range(1, depth - 1)]
    leaf = named(_leaf_native if native else _leaf_python, function)
    return (*callers, leaf)


# ---------------------------------------------------------------------------------------
# Running


@dataclass
class _ThreadRun:
    name: str
    group: str
    program: tuple[_Op, ...]
    root: Callable
    function_cpu_ns: dict[str, int] = field(default_factory=dict)
    cpu_ns: int = 0
    error: BaseException | None = None


@dataclass
class RealResult:
    """What `run_scenario` produced."""

    scenario: Scenario
    report: Report
    profile: Profile
    stats: dict[str, Any]


def _build_threads(scenario: Scenario) -> list[_ThreadRun]:
    runs = []
    for group in scenario.workload.threads:
        ops = []
        for step in group.program:
            if isinstance(step, RunStep | NativeStep):
                native = isinstance(step, NativeStep)
                work = step.native if native else step.run
                ops.append(
                    _Op(
                        work.function,
                        max(1, round(work.cpu_ms * 1e6)),
                        _chain(group.name, work.function, work.depth, native),
                    )
                )
            else:
                ops.append(_Op("", max(1, round(step.sleep_ms * 1e6)), None))
        root = named(_thread_loop, group.name)
        for name in thread_names(group.name, group.count):
            runs.append(_ThreadRun(name, group.name, tuple(ops), root))
    return runs


def _needed_recursion(scenario: Scenario) -> int:
    depths = [
        (step.native if isinstance(step, NativeStep) else step.run).depth
        for group in scenario.workload.threads
        for step in group.program
        if isinstance(step, RunStep | NativeStep)
    ]
    # The workload's frames sit on top of the thread's own (threading, the CLI, runpy).
    return max(depths, default=1) + 200


def run_scenario(
    scenario: Scenario, source: str = "", progress: Callable[[str], None] | None = None
) -> RealResult:
    """Run the scenario's workload under the real sampler; see the module docstring."""
    settings = real_settings(scenario, source)
    profiler = scenario.profiler
    notes = list(settings.notes)
    if settings.handler == "c":
        ok, why = c_handler_available()
        if not ok:
            raise RealWorldError(f"{source or 'scenario'}: the C sampler cannot run here: {why}")
    if _spin_native is None and any(
        isinstance(step, NativeStep) for g in scenario.workload.threads for step in g.program
    ):
        raise RealWorldError(
            f"{source or 'scenario'}: native steps need realprof._sampler.spin_native, "
            "and the extension did not import"
        )
    max_depth = profiler.max_depth
    if max_depth > _SAMPLER_MAX_DEPTH:
        notes.append(
            f"profiler.max_depth {max_depth} is above the real sampler's limit; "
            f"stacks were cut at {_SAMPLER_MAX_DEPTH} frames"
        )
        max_depth = _SAMPLER_MAX_DEPTH

    runs = _build_threads(scenario)
    duration_ns = round(scenario.workload.duration_s * 1e9)
    stop_at = [sys.maxsize]  # set by the barrier's action; lowered to stop early
    start_ns = [0]

    def release() -> None:
        # Runs once, in the last thread to arrive, before any thread is let through.
        start_ns[0] = _monotonic_ns()
        stop_at[0] = start_ns[0] + duration_ns

    barrier = threading.Barrier(len(runs), action=release, timeout=_BARRIER_TIMEOUT_S)

    def body(run: _ThreadRun) -> None:
        try:
            barrier.wait()
            cpu0 = _thread_time_ns()
            try:
                run.root(run.program, stop_at, run.function_cpu_ns)
            finally:
                run.cpu_ns = _thread_time_ns() - cpu0
        except BaseException as exc:  # reported by the main thread after the join
            run.error = exc
            stop_at[0] = 0  # let the other threads finish now
            barrier.abort()

    main_run, worker_runs = runs[0], runs[1:]
    workers = [
        threading.Thread(target=body, args=(run,), name=run.name, daemon=True)
        for run in worker_runs
    ]
    main_thread = threading.current_thread()
    old_name = main_thread.name
    old_switch = sys.getswitchinterval()
    old_limit = sys.getrecursionlimit()
    sampler = Sampler(
        rate_hz=profiler.rate_hz,
        timer=settings.timer,
        handler=settings.handler,
        buffer_words=profiler.buffer_words,
        max_depth=max_depth,
        reader_period_ms=profiler.reader_period_ms,
    )
    if progress:
        progress(
            f"running {scenario.name} for {scenario.workload.duration_s:g} s on this machine "
            f"({len(runs)} thread(s), {settings.runtime} handler={settings.handler} "
            f"timer={settings.timer}, {profiler.rate_hz:g} Hz)"
        )
    started = False
    try:
        sys.setswitchinterval(profiler.gil_switch_interval_ms / 1000)
        sys.setrecursionlimit(max(old_limit, _needed_recursion(scenario)))
        # Named before start: the sampler reads thread names when it drains (and the
        # Python handler once, at start).
        main_thread.name = main_run.name
        for worker in workers:
            worker.start()  # they wait at the barrier, using no CPU
        sampler.start()
        started = True
        try:
            body(main_run)  # the main thread runs the first thread's program
            for worker in workers:
                worker.join()
        except KeyboardInterrupt:
            # Ctrl-C outside the workload (e.g. in join): stop the workers, then report.
            main_run.error = KeyboardInterrupt()
            stop_at[0] = 0
            for worker in workers:
                worker.join()
        end_ns = _monotonic_ns()
        profile = sampler.stop()
    finally:
        # On the way out of a failure (the sampler refused to start, say): release any
        # thread still at the barrier or in its program before restoring the process.
        stop_at[0] = 0
        barrier.abort()
        for worker in workers:
            if worker.ident is not None:
                worker.join()
        if started:
            sampler.stop()  # idempotent; here for an exception between start and stop
        main_thread.name = old_name
        sys.setswitchinterval(old_switch)
        sys.setrecursionlimit(old_limit)
    errors = [run.error for run in runs if run.error is not None]
    if any(isinstance(error, KeyboardInterrupt) for error in errors):
        raise KeyboardInterrupt
    if errors:
        raise RuntimeError(f"a workload thread failed: {errors[0]!r}") from errors[0]

    wall_ns = max(1, end_ns - start_ns[0])
    # The written profile says how long the workload ran, so pprof's "Total samples =
    # ... (N%)" is the report's profile_cpu_percent.
    profile.duration_ns = wall_ns
    stats = dict(sampler.stats)
    report = _report(scenario, settings, runs, profile, stats, wall_ns, notes)
    return RealResult(scenario, report, profile, stats)


def _report(
    scenario: Scenario,
    settings: RealSettings,
    runs: list[_ThreadRun],
    profile: Profile,
    stats: dict[str, Any],
    wall_ns: int,
    notes: list[str],
) -> Report:
    profiler = scenario.profiler
    facts = machine_facts()
    facts["scenario_machine"] = dataclasses.asdict(scenario.machine)
    true_functions: dict[str, float] = {}
    for run in runs:
        for name, ns in run.function_cpu_ns.items():
            true_functions[name] = true_functions.get(name, 0.0) + ns / 1e9
    true_threads = {run.name: run.cpu_ns / 1e9 for run in runs}
    cpu_seconds = sum(true_threads.values())
    counts = {
        "signals_generated": None,
        "signals_dropped_pending": None,
        "signals_pending_at_stop": None,
        "timer_overruns": stats.get("timer_overruns"),
        "signals_delivered": stats.get("signals_delivered"),
        "signals_merged": stats.get("signals_merged"),
        "signals_discarded": stats.get("signals_discarded"),
        "samples_recorded": stats.get("samples_recorded"),
        "samples_lost_overflow": stats.get("samples_lost_overflow"),
    }
    notes = [*notes, *_notes(scenario, settings, profile, stats, facts, true_functions)]
    return build_report(
        world="real",
        scenario=scenario.name,
        runtime=settings.runtime,
        timer=settings.timer,
        seed=scenario.seed,
        machine=facts,
        rate_hz=profiler.rate_hz,
        wall_seconds=wall_ns / 1e9,
        cpu_seconds=cpu_seconds,
        counts=counts,
        function_samples=profile.by_function(),
        thread_samples=profile.by_thread(),
        true_function_cpu_s=true_functions,
        true_thread_cpu_s=true_threads,
        notes=notes,
    )


def _notes(
    scenario: Scenario,
    settings: RealSettings,
    profile: Profile,
    stats: dict[str, Any],
    facts: dict[str, Any],
    true_functions: dict[str, float],
) -> list[str]:
    notes = [
        "signals generated, dropped while pending and pending at stop are not observable "
        "in-process (the kernel does not count them): null",
        "truth: per-thread CPU clocks (CLOCK_THREAD_CPUTIME_ID) read at step boundaries; "
        "cpu_seconds is the workload threads' sum, signal handler time included",
    ]
    wanted = scenario.machine
    hz = facts.get("kernel_hz")
    differences = []
    if facts.get("cpus") != wanted.cpus:
        differences.append(f"{facts.get('cpus')} CPUs (scenario: {wanted.cpus})")
    if hz != wanted.kernel_hz:
        shown = hz if hz is not None else "unknown"
        differences.append(f"HZ={shown} (scenario: {wanted.kernel_hz})")
    skewed = facts.get("tick_alignment") == "skewed"
    if facts.get("tick_alignment") is not None and skewed != wanted.tick_skew:
        differences.append(
            f"ticks {facts['tick_alignment']} (scenario: "
            f"{'skewed' if wanted.tick_skew else 'aligned'})"
        )
    if differences:
        notes.append("this machine differs from the scenario's: " + ", ".join(differences))
    if hz is None:
        notes.append(f"kernel HZ is {facts.get('kernel_hz_source')}")
    elif scenario.profiler.rate_hz > hz:
        notes.append(
            f"rate {scenario.profiler.rate_hz:g} Hz is above the kernel tick ({hz} Hz): CPU "
            f"timers are checked at ticks, so a thread gets at most {hz} signals/s"
        )
    total = max(1, profile.total_samples)
    workload_threads = {
        name
        for group in scenario.workload.threads
        for name in thread_names(group.name, group.count)
    }
    others = {
        name: count for name, count in profile.by_thread().items() if name not in workload_threads
    }
    if others:
        listed = ", ".join(f"{name}: {count}" for name, count in sorted(others.items()))
        notes.append(
            f"{sum(others.values())} sample(s) landed on threads outside the workload "
            f"({listed}), whose CPU is not in cpu_seconds: a process-timer SIGPROF goes to "
            "another thread, even an idle one, when the running thread has it blocked"
        )
    outside = sum(
        count
        for (stack, thread), count in profile.samples.items()
        if thread in workload_threads and stack[0].function not in true_functions
    )
    if outside:
        notes.append(
            f"{outside} sample(s) ({outside / total:.1%}) of workload threads landed outside "
            "the steps' functions (thread loop, barrier, sleep); their true share is 0"
        )
    if stats.get("native_samples"):
        notes.append(
            f"{stats['native_samples']} sample(s) found their thread without the GIL (native "
            "code or a blocking wait); their leaf is the Python function that called it"
        )
    if scenario.profiler.runtime.startswith("go"):
        python_threads = sum(
            group.count
            for group in scenario.workload.threads
            if any(isinstance(step, RunStep) for step in group.program)
        )
        if python_threads > 1:
            notes.append(
                f"Go runs its {python_threads} threads' `run` steps in parallel; here they are "
                "Python bytecode and the GIL lets one run at a time (`native` steps run in "
                "parallel)"
            )
    if settings.handler == "python" and stats.get("signals_merged"):
        notes.append(
            f"{stats['signals_merged']} deliveries merged: CPython runs the Python handler "
            "once, on the main thread, for all signals since its last run"
        )
    if stats.get("signals_delivered_estimated"):
        notes.append("signals_delivered is estimated (process CPU / interval): no extension")
    if stats.get("signals_discarded"):
        notes.append(
            f"{stats['signals_discarded']} signal(s) discarded (duplicates filtered like "
            "validSIGPROF, stale timers, or profiling off)"
        )
    if stats.get("samples_lost_overflow"):
        notes.append(f"{stats['samples_lost_overflow']} sample(s) lost to a full ring buffer")
    if stats.get("timer_overruns"):
        notes.append(
            f"{stats['timer_overruns']} timer interval(s) folded into other signals as overruns "
            "(unweighted, missing from the profile)"
        )
    notes += integrity_notes(stats)
    if stats.get("reader_errors"):
        notes.append(f"reader errors: {'; '.join(stats['reader_errors'])}")
    notes.append(
        "the scenario's handler/reader costs and machine calibration are simulator inputs; "
        "here they are whatever this machine does"
    )
    return notes
