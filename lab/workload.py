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
- `sleep_ms` is `time.sleep`, cut short at the deadline, and so is `syscall_ms` (a
  blocking call: no timer counts a thread off the CPU on Linux).
- Every thread waits at one barrier; the barrier's last arrival sets the deadline
  (`workload.duration_s` from then), so all threads start together, and the sampler is
  started before the barrier and stopped after the last thread is joined, so the profiled
  interval is the workload interval plus the few microseconds around it.
- `gil_switch_interval_ms` is applied with `sys.setswitchinterval` for the run.
- `free_threaded: true` needs a free-threaded CPython with the GIL off (`lab.real_settings`
  refuses any other before the run). An extension module that does not declare
  free-threading support turns the GIL back on when it is imported, with only a warning,
  so each thread reads `sys._is_gil_enabled()` after the barrier and after its program;
  a run in which any thread saw the GIL on is refused (`RealWorldError`): it measured the
  wrong world.

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

The runtime's mapping onto the real sampler is `lab.real_settings`; the report of a run
(counts, truth, notes) is `lab.real_report`.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contract.profile import Profile
from contract.report import Report
from contract.scenario import NativeStep, RunStep, Scenario, SleepStep
from lab.interpreters import gil_enabled
from lab.real_report import real_report
from lab.real_settings import RealWorldError, real_settings
from realprof.sampler import Sampler, c_handler_available
from sim.workload import thread_names

try:
    # GIL-free CPU burn in C: native steps, and calibration's busy threads.
    from realprof._sampler import spin_native
except ImportError:  # pragma: no cover - the extension is missing on this Python
    spin_native = None

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
    spin = spin_native
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

    The sampler labels frames with `co_qualname`, qualified by the module of
    `co_filename` (realprof/frame_names.py); the copy has no file (`co_filename` ""),
    hence no module, so it shows up in profiles under `name` exactly, the scenario's
    own (already qualified) name, as in the simulator's profiles. Copies are cached:
    one code object per name keeps profiles' function tables small and the sampler's
    code-pointer cache warm.
    """
    key = (template, name)
    function = _NAMED.get(key)
    if function is None:
        code = template.__code__.replace(co_name=name, co_qualname=name, co_filename="")
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
                off_ms = step.sleep_ms if isinstance(step, SleepStep) else step.syscall_ms
                ops.append(_Op("", max(1, round(off_ms * 1e6)), None))
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
    if spin_native is None and any(
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
    # Threads that saw the GIL on in a free-threaded run (see the module docstring).
    gil_seen_on: list[str] = []
    check_gil = profiler.free_threaded

    def body(run: _ThreadRun) -> None:
        try:
            barrier.wait()
            if check_gil and gil_enabled():
                gil_seen_on.append(run.name)
            cpu0 = _thread_time_ns()
            try:
                run.root(run.program, stop_at, run.function_cpu_ns)
            finally:
                run.cpu_ns = _thread_time_ns() - cpu0
            if check_gil and gil_enabled():
                gil_seen_on.append(run.name)
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
    if gil_seen_on:
        raise RealWorldError(
            f"{source or 'scenario'}: profiler.free_threaded: the GIL was on during the run "
            f"(seen by {', '.join(sorted(set(gil_seen_on)))}): an extension module without "
            "free-threading support was imported? The run is not reported"
        )

    wall_ns = max(1, end_ns - start_ns[0])
    # The written profile says how long the workload ran, so pprof's "Total samples =
    # ... (N%)" is the report's profile_cpu_percent.
    profile.duration_ns = wall_ns
    stats = dict(sampler.stats)
    true_functions: dict[str, float] = {}
    for run in runs:
        for name, ns in run.function_cpu_ns.items():
            true_functions[name] = true_functions.get(name, 0.0) + ns / 1e9
    true_threads = {run.name: run.cpu_ns / 1e9 for run in runs}
    report = real_report(
        scenario, settings, profile, stats, wall_ns, notes, true_functions, true_threads
    )
    return RealResult(scenario, report, profile, stats)
