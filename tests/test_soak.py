"""Soak: realprof at 1000 Hz under every kind of churn a Python program produces.

The target (``TARGET`` below) runs in a subprocess, so a crash fails the test instead
of killing pytest, under a hard timeout. It profiles itself with
``Sampler(rate_hz=1000, timer=...)`` and ``max_depth=1024`` (so the handler walks the
whole 900-frame stack, not the default 64) while, all at once:

* a spawner starts and joins short threads continuously: ``threading.Thread`` (the
  registration hook) and ``_thread.start_new_thread`` (found only by the reader's
  scan), some raising, and keeps doing so while ``stop()`` runs;
* a thread recurses 900 frames deep (working at every level, so signals land on
  frames being pushed and popped) and unwinds an exception from the bottom;
* a thread drives generators: ``yield from`` chains, generators closed and thrown
  into early, generator expressions;
* a thread runs asyncio event loops with hundreds of tasks, some cancelled, some
  failing, and an async generator;
* a thread raises and catches exceptions: chained, in groups (``except*``), through
  ``finally``;
* a thread ``exec``s freshly compiled functions (and generators and lambdas) under
  unique file names, calls them and drops them, with ``gc.collect()``, so code
  objects die while their samples may still be in the ring;
* the main thread works and ``os.fork()``s every few seconds; each child works, checks
  that it inherited no armed timer, on odd forks profiles itself briefly with a new
  Sampler, and ``os._exit``s; the parent reaps it and checks the status.

Then it stops the sampler and prints JSON: the stats, the conservation checks, the
timers still listed in ``/proc/self/timers`` and ``getitimer(ITIMER_PROF)``, the
children's statuses, counts of what each ingredient did, and timings. The test asserts
all of it. ``SOAK_SECONDS`` (environment) overrides the chaos duration of every case,
for a longer soak by hand; the defaults keep the whole file under two minutes.

A second target (``PROMISES`` below, ``test_soak_promises``) holds the sampler to what it
promises ordinary programs (issue 10), with each timer mode, one ingredient after
another, in child processes wherever a crash or an exec is part of the ingredient:

* a program execs a shell (directly, and after a failed exec) that must run to its end;
* ``os.closerange(3, 100)`` then a pipe: the pipe's data must survive ``stop()``, and
  sampling go on; after ``os.closerange(3, SC_OPEN_MAX)`` (perf mode) the loss of the
  perf events must be counted;
* a function created per call (``code.replace``, and ``exec`` of fresh source) keeps
  at least 90 % of its samples named after it;
* a 9000-deep recursion with ``max_depth=64`` keeps its samples: 64 frames, leaf end,
  flagged truncated;
* at 100 Hz, a fork every 5 ms beside a busy thread: the busy thread's capture is
  within 3 binomial standard errors of the same run without forks, and the whole run
  keeps 80% of its timer periods;
* ``kill()`` and ``pthread_kill()`` of SIGSEGV still kill with signal 11;
* with faulthandler enabled after ``start()`` (as pytest does), forced walk faults are
  survived without a fatal-error report, and a genuine segfault reports once.

Both targets import realprof from ``sampler_checks.target_root()``: the first
``PYTHONPATH`` entry holding ``realprof``, so ``PYTHONPATH=/other/tree pytest ...`` runs
them against another tree (the code before a change), else this checkout.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sampler_checks import run_target, target_result, target_root

from realprof.sampler import c_handler_available

ROOT = Path(__file__).resolve().parent.parent
C_OK, C_WHY = c_handler_available()

pytestmark = [
    pytest.mark.real,
    pytest.mark.slow,
    pytest.mark.skipif(not C_OK, reason=f"C handler unavailable: {C_WHY}"),
]

# Seconds of chaos per timer kind: together about a minute, plus start-up and teardown.
# "perf" (a task-clock perf event per thread) samples at the full 1000 Hz, four times
# what the tick lets the others deliver, so its handler runs far more often.
DURATIONS = {"per-thread": 22.0, "both": 16.0, "process": 12.0, "perf": 16.0}
MARKER = "SOAK-RESULT "

TARGET = r'''
import _thread
import asyncio
import faulthandler
import gc
import json
import os
import re
import signal
import sys
import threading
import time
import warnings

from realprof import sampler as sampler_mod
from realprof.sampler import Sampler

TIMER = sys.argv[1]
DURATION = float(sys.argv[2])
DEEP = 900
faulthandler.enable()
faulthandler.dump_traceback_later(DURATION + 40, exit=True)  # a hang dumps every stack
sys.setrecursionlimit(10_000)
_sampler = sampler_mod._sampler
SIGPROF = int(signal.SIGPROF)

counts = {
    "threads_started": 0, "raw_threads_started": 0, "thread_errors_raised": 0,
    "deep_recursions": 0, "deep_unwinds": 0, "generator_rounds": 0, "asyncio_loops": 0,
    "asyncio_tasks": 0, "asyncio_cancelled": 0, "exceptions_caught": 0, "exec_functions": 0,
    "forks": 0,
}
errors = []
stop_chaos = threading.Event()
stop_spawner = threading.Event()


def spin(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x


def posix_timers():
    """(all POSIX timers of this process, those delivering SIGPROF) from /proc."""
    try:
        with open("/proc/self/timers", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return -1, -1
    ids = [line for line in lines if line.startswith("ID:")]
    prof = [
        line for line in lines
        if line.startswith("signal:") and line.split()[1].split("/")[0] == str(SIGPROF)
    ]
    return len(ids), len(prof)


def perf_fds():
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += "perf_event" in os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return n


def guarded(fn):
    def run():
        try:
            fn()
        except BaseException as error:  # report, never die silently
            errors.append(f"{fn.__name__}: {error!r}")
            stop_chaos.set()
    run.__name__ = fn.__name__
    return run


# ----- the ingredients -----------------------------------------------------------------

def short_task(i):
    kind = i % 4
    if kind == 0:
        spin(20_000)
    elif kind == 1:
        def down(n):
            return spin(2_000) if n == 0 else down(n - 1) + 1
        down(60)
    elif kind == 2:
        ns = {}
        exec(compile(f"def short_{i}(s):\n    return s(10_000)\n", f"<short-{i}>", "exec"), ns)
        ns[f"short_{i}"](spin)
    else:
        raise ValueError(f"thread {i} fails on purpose")


def short_thread_body(i):
    try:
        short_task(i)
    except ValueError:
        counts["thread_errors_raised"] += 1


def raw_thread_body(i, done):
    try:
        spin(10_000 + 1_000 * (i % 7))
    finally:
        done.release()


@guarded
def spawner():
    i = 0
    while not stop_spawner.is_set():
        batch = [
            threading.Thread(target=short_thread_body, args=(i + k,), name=f"short-{i + k}")
            for k in range(4)
        ]
        for t in batch:
            t.start()
        counts["threads_started"] += len(batch)
        done = _thread.allocate_lock()
        done.acquire()
        _thread.start_new_thread(raw_thread_body, (i, done))
        counts["raw_threads_started"] += 1
        for t in batch:
            t.join(30)
            if t.is_alive():
                raise RuntimeError(f"{t.name} did not end")
        if not done.acquire(timeout=30):
            raise RuntimeError("a _thread thread did not end")
        i += 4


class Bottom(Exception):
    pass


def deep(n, fail):
    x = spin(30)  # work on the way down...
    if n == 1:
        if fail:
            raise Bottom(x)
        return spin(40_000)
    r = deep(n - 1, fail)
    return r + spin(30)  # ...and on the way up


@guarded
def recursion():
    while not stop_chaos.is_set():
        try:
            deep(DEEP, fail=counts["deep_recursions"] % 3 == 2)
        except Bottom:
            counts["deep_unwinds"] += 1
        counts["deep_recursions"] += 1


def leaf_gen(n):
    for i in range(n):
        yield spin(50) + i


def chain_gen(depth, n):
    if depth == 0:
        yield from leaf_gen(n)
    else:
        total = yield from (x for x in chain_gen(depth - 1, n))
        yield total


def echo():
    received = 0
    try:
        while True:
            value = yield received
            received += 1 if value is None else value
    except GeneratorExit:
        pass


@guarded
def generators():
    while not stop_chaos.is_set():
        sum(x for x in chain_gen(20, 200) if x is not None)
        g = chain_gen(10, 10_000)
        for _ in range(50):
            next(g)
        g.close()  # GeneratorExit through a 10-deep yield-from chain
        e = echo()
        next(e)
        for k in range(200):
            e.send(k)
        e.close()
        t = leaf_gen(100)
        next(t)
        try:
            t.throw(KeyError("into the generator"))
        except KeyError:
            pass
        counts["generator_rounds"] += 1


async def ticker(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield spin(200) + i


async def job(i):
    total = 0
    for k in range(20):
        total += spin(300)
        await asyncio.sleep(0)
    if i % 10 == 3:
        raise ValueError(i)
    if i % 10 == 7:
        async for v in ticker(10):
            total += v
    return total


async def batch():
    tasks = [asyncio.create_task(job(i)) for i in range(300)]
    await asyncio.sleep(0)
    for t in tasks[::25]:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    counts["asyncio_tasks"] += len(tasks)
    counts["asyncio_cancelled"] += sum(isinstance(r, asyncio.CancelledError) for r in results)


@guarded
def asyncio_loops():
    while not stop_chaos.is_set():
        asyncio.run(batch())
        counts["asyncio_loops"] += 1


def raise_chain(n):
    try:
        if n == 0:
            {}["missing"]
        raise_chain(n - 1)
    except KeyError as error:
        raise LookupError(n) from error
    finally:
        spin(20)


@guarded
def exceptions():
    while not stop_chaos.is_set():
        try:
            raise_chain(30)
        except LookupError:
            counts["exceptions_caught"] += 1
        try:
            raise ExceptionGroup("group", [ValueError(1), TypeError(2), KeyError(3)])
        except* ValueError:
            counts["exceptions_caught"] += 1
        except* (TypeError, KeyError):
            counts["exceptions_caught"] += 1
        for k in range(200):
            try:
                int("x" * (k % 5 + 1))
            except ValueError:
                counts["exceptions_caught"] += 1


EXEC_SOURCE = """
def dyn_{i}(spin):
    f = lambda n: spin(n)
    def inner_{i}(n):
        return f(n) + 1
    return inner_{i}(15_000) + sum(gen_{i}(20))

def gen_{i}(n):
    for k in range(n):
        yield k
"""


@guarded
def exec_code():
    i = 0
    while not stop_chaos.is_set():
        ns = {}
        exec(compile(EXEC_SOURCE.format(i=i), f"<exec-{i}>", "exec"), ns)
        ns[f"dyn_{i}"](spin)
        del ns  # function <-> globals cycle: freed by the collector
        if i % 5 == 0:
            gc.collect()
        counts["exec_functions"] += 1
        i += 1


# ----- fork ----------------------------------------------------------------------------

def child(index):
    code = 10
    try:
        spin(200_000)
        deep(200, fail=False)
        if _sampler.mode() != 0 or _sampler.timers_armed() != 0:
            os._exit(11)
        if posix_timers() != (0, 0):
            os._exit(12)
        if perf_fds() != 0:  # the parent's perf events are not the child's
            os._exit(19)
        if signal.getitimer(signal.ITIMER_PROF) != (0.0, 0.0):
            os._exit(13)
        if index % 2 == 1:  # profile the child itself, briefly
            s = Sampler(rate_hz=1000, timer=TIMER)
            s.start()
            spin(300_000)
            s.stop()
            st = s.stats
            funnel = st["samples_recorded"] + st["samples_lost_overflow"]
            funnel += st["signals_discarded"] + st["signals_merged"]
            if st["signals_delivered"] != funnel:
                os._exit(14)
            if st["samples_recorded"] != st["reader_records"]:
                os._exit(15)
            if posix_timers() != (0, 0) or _sampler.timers_armed() != 0:
                os._exit(16)
            if signal.getitimer(signal.ITIMER_PROF) != (0.0, 0.0):
                os._exit(17)
            if st["timers_created"] != st["timers_deleted"]:
                os._exit(18)
        code = 0
    finally:
        os._exit(code)


def fork_once(index):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:
        child(index)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


# ----- the run -------------------------------------------------------------------------

def main():
    t_start = time.monotonic()
    s = Sampler(rate_hz=1000, timer=TIMER, max_depth=1024)
    s.start()
    spawner_thread = threading.Thread(target=spawner, name="spawner")
    workers = [
        threading.Thread(target=fn, name=fn.__name__)
        for fn in (recursion, generators, asyncio_loops, exceptions, exec_code)
    ]
    spawner_thread.start()
    for t in workers:
        t.start()
    child_status = []
    n_forks = 8
    chaos_end = time.monotonic() + DURATION
    next_fork = time.monotonic() + DURATION / (n_forks + 1)
    while time.monotonic() < chaos_end and not stop_chaos.is_set():
        spin(20_000)
        if time.monotonic() >= next_fork and len(child_status) < n_forks:
            child_status.append(fork_once(len(child_status)))
            counts["forks"] += 1
            next_fork += DURATION / (n_forks + 1)
    chaos_s = time.monotonic() - (chaos_end - DURATION)
    stop_chaos.set()
    for t in workers:
        t.join(60)
    hung = [t.name for t in workers if t.is_alive()]
    # Stop while the spawner is still starting and ending threads.
    t0 = time.monotonic()
    profile = s.stop()
    stop_s = time.monotonic() - t0
    started_at_stop = counts["threads_started"]
    time.sleep(0.2)  # threads that start now must not arm anything
    stop_spawner.set()
    spawner_thread.join(60)
    if spawner_thread.is_alive():
        hung.append("spawner")
    time.sleep(0.05)

    st = dict(s.stats)
    all_timers, prof_timers = posix_timers()
    with open("/proc/self/timers", encoding="ascii") as f:
        timers_text = f.read()
    funnel = (
        st["samples_recorded"] + st["samples_lost_overflow"]
        + st["signals_discarded"] + st["signals_merged"]
    )
    functions = {}
    max_depth_seen = 0
    for (stack, _thread), count in profile.samples.items():
        max_depth_seen = max(max_depth_seen, len(stack))
        for name in {f.function for f in stack}:
            key = re.sub(r"_\d+$", "", name.split(".")[-1])  # dyn_12 -> dyn
            functions[key] = functions.get(key, 0) + count
    result = {
        "python": sys.version.split()[0],
        "timer": TIMER,
        "duration_s": DURATION,
        "chaos_s": chaos_s,
        "stop_s": stop_s,
        "total_s": time.monotonic() - t_start,
        "stats": st,
        "profile": {
            "total_samples": profile.total_samples,
            "lost": profile.lost,
            "max_stack_depth": max_depth_seen,
            "threads": len(profile.by_thread()),
        },
        "conservation": {
            "delivered": st["signals_delivered"],
            "funnel": funnel,
            "funnel_ok": st["signals_delivered"] == funnel,
            "recorded_eq_reader_ok": st["samples_recorded"] == st["reader_records"],
            "profile_ok": st["reader_records"]
            == profile.total_samples + profile.lost.get("unknown_code", 0),
            "overflow_ok": profile.lost.get("overflow", 0) == st["samples_lost_overflow"],
        },
        "after_stop": {
            "posix_timers": all_timers,
            "posix_timers_sigprof": prof_timers,
            "proc_self_timers": timers_text,
            "itimer_prof": list(signal.getitimer(signal.ITIMER_PROF)),
            "timers_armed": _sampler.timers_armed(),
            "perf_fds": perf_fds(),
            "mode": _sampler.mode(),
        },
        "children": child_status,
        "counts": counts,
        "threads_started_at_stop": started_at_stop,
        "functions": {k: functions.get(k, 0) for k in (
            "deep", "spin", "leaf_gen", "chain_gen", "echo", "job", "ticker", "raise_chain",
            "exceptions", "dyn", "inner", "gen", "short", "short_thread_body",
            "raw_thread_body")},
        "errors": errors,
        "hung": hung,
        "handler_ns_per_signal": (
            st["handler_ns_total"] / st["signals_delivered"]
            if st.get("handler_ns_total") is not None and st["signals_delivered"] else None
        ),
    }
    print("SOAK-RESULT " + json.dumps(result), flush=True)


main()
faulthandler.cancel_dump_traceback_later()
'''


def run_soak(timer: str, duration: float, tmp_path: Path) -> tuple[dict, str, float]:
    script = tmp_path / "soak_target.py"
    script.write_text(TARGET)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(target_root()) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONFAULTHANDLER", None)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), timer, str(duration)],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            cwd=ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the soak target hung (killed after {error.timeout} s):\n{error.stderr}")
    elapsed = time.monotonic() - started
    stderr = proc.stderr
    if proc.returncode < 0:
        # A fault inside the SIGPROF handler (which blocks every signal while it runs)
        # kills the process outright: faulthandler gets no chance to print anything.
        name = signal.Signals(-proc.returncode).name
        pytest.fail(
            f"the soak target ({timer}) was killed by {name} after {elapsed:.1f} s; "
            f"stderr:\n{stderr[-4000:]}"
        )
    for bad in ("Fatal Python error", "Segmentation fault", "Aborted", "Traceback"):
        assert bad not in stderr, f"{bad!r} in the target's stderr:\n{stderr[-4000:]}"
    assert proc.returncode == 0, f"exit status {proc.returncode}; stderr:\n{stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    assert lines, f"no result line; stdout:\n{proc.stdout[-2000:]}\nstderr:\n{stderr[-2000:]}"
    return json.loads(lines[-1][len(MARKER) :]), stderr, elapsed


@pytest.mark.parametrize("timer", list(DURATIONS))
def test_soak_at_1000_hz(timer, tmp_path):
    duration = float(os.environ.get("SOAK_SECONDS", DURATIONS[timer]))
    r, _stderr, elapsed = run_soak(timer, duration, tmp_path)
    st, c, after = r["stats"], r["conservation"], r["after_stop"]
    summary = json.dumps({k: r[k] for k in r if k != "after_stop"}, indent=1)
    n = r["counts"]
    print(  # shown with -s, and on failure
        f"soak {timer} CPython {r['python']}: {elapsed:.1f} s ({r['chaos_s']:.1f} s chaos, "
        f"stop {r['stop_s'] * 1000:.1f} ms); signals {st['signals_delivered']}, samples "
        f"{r['profile']['total_samples']}, discarded {st['signals_discarded']}, overflow "
        f"{st['samples_lost_overflow']}, overruns {st['timer_overruns']}, untrusted "
        f"{st['stacks_untrusted']}, entry window {st['stacks_entry_window']}, deepest stack "
        f"{r['profile']['max_stack_depth']}, handler {r['handler_ns_per_signal'] or 0:.0f} "
        f"ns/signal; threads {n['threads_started']} + {n['raw_threads_started']} raw, "
        f"timers {st['timers_created']}/{st['timers_deleted']}, forks {r['children']}, "
        f"recursions {n['deep_recursions']}, asyncio tasks {n['asyncio_tasks']}, "
        f"exceptions {n['exceptions_caught']}, exec'd {n['exec_functions']}"
    )

    # nothing crashed, hung or failed inside the target
    assert r["errors"] == [], summary
    assert r["hung"] == [], summary
    assert elapsed < duration + 45, (elapsed, summary)
    assert r["stop_s"] < 5, summary

    # every ingredient ran, and concurrently with sampling
    assert n["threads_started"] >= 100 and n["raw_threads_started"] >= 25, summary
    assert n["deep_recursions"] >= 3 and n["deep_unwinds"] >= 1, summary
    assert n["generator_rounds"] >= 3 and n["asyncio_tasks"] >= 600, summary
    assert n["asyncio_cancelled"] > 0 and n["exceptions_caught"] > 100, summary
    assert n["exec_functions"] >= 20 and n["forks"] == 8, summary
    assert r["children"] == [0] * 8, summary

    # samples, from the ingredients, with the whole 900-deep stack walked
    assert r["profile"]["total_samples"] > 0, summary
    assert r["profile"]["max_stack_depth"] >= 900, summary
    seen = {k for k, v in r["functions"].items() if v > 0}
    assert {"deep", "chain_gen", "job", "raise_chain", "dyn", "short_thread_body"} <= seen, summary

    # the counts conserve
    assert c["funnel_ok"], summary
    assert c["recorded_eq_reader_ok"], summary
    assert c["profile_ok"], summary
    assert c["overflow_ok"], summary
    # A stack caught mid-push with a stale frame pointer is dropped and counted, never
    # read (see "Trusting the frame chain" in _sampler.c): a handful per run at most.
    unknown = r["profile"]["lost"].get("unknown_code", 0)
    assert unknown <= st["stacks_untrusted"] + st["stack_walk_faults"] + st["unknown_frames"]
    assert unknown <= 0.001 * st["samples_recorded"] + 3, summary
    assert st["reader_errors"] == [] and st["thread_hook_errors"] == 0, summary

    # no timer left armed
    assert after["posix_timers"] == 0, after["proc_self_timers"]
    assert after["itimer_prof"] == [0.0, 0.0], after
    assert after["timers_armed"] == 0 and after["mode"] == 0, after
    assert after["perf_fds"] == 0, after
    assert st["timers_created"] == st["timers_deleted"], summary
    if timer != "process":
        assert st["timers_created"] >= r["threads_started_at_stop"], summary


# ----- the promises soak (issue 10) -----------------------------------------------------

PROMISES_MARKER = "PROMISES-RESULT "

PROMISES = r'''import faulthandler
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import types
import warnings

from realprof import process_hooks
from realprof import sampler as sampler_mod
from realprof.sampler import Sampler

TIMER = sys.argv[1]
ONLY = sys.argv[2].split(",") if len(sys.argv) > 2 else None  # by hand: some ingredients
_sampler = sampler_mod._sampler
F_TRUNCATED = getattr(_sampler, "F_TRUNCATED", 8)
faulthandler.enable()
faulthandler.dump_traceback_later(150, exit=True)  # a hang dumps every stack
results = {"python": sys.version.split()[0], "timer": TIMER, "errors": {}, "seconds": {}}


def spin_for(seconds):
    """Burns `seconds` of this thread's CPU time in this frame (no calls below it)."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2_000):
            x = (x * 31 + i) % 1_000_003
    return x


def busy_until(stop, cpu=None):
    t0 = time.thread_time()
    x = 0
    while not stop.is_set():
        for i in range(2_000):
            x = (x * 31 + i) % 1_000_003
    if cpu is not None:
        cpu.append(time.thread_time() - t0)


def child(source, *args, timeout=60, argv=None):
    """Runs `python -c source TIMER args` (or `python argv`) with the same interpreter
    and PYTHONPATH, without faulthandler unless the child enables it:
    (exit status, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("PYTHONFAULTHANDLER", None)
    try:
        proc = subprocess.run(
            [sys.executable, *(argv or ["-c", source, TIMER, *args])],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
    except subprocess.TimeoutExpired as error:
        return "hung", "", str(error.stderr)[-2000:]
    # Whole: 3.15's faulthandler adds the C stack to its report, which put the "Fatal
    # Python error" line before the last 3,000 characters.
    return proc.returncode, proc.stdout, proc.stderr


# ----- 1. exec: the exec'd program must run to its end --------------------------------
# A child profiles itself at 1000 Hz with a busy thread beside it, then execs a shell
# that burns ~0.1 s of CPU and exits 7. Before the fix ITIMER_PROF (process, both) and
# the perf events (perf) outlived the exec and the shell died of SIGPROF (-27).

EXEC_CHILD = """
import os, sys, threading, time
from realprof import sampler as sampler_mod
from realprof.sampler import Sampler
timer, variant = sys.argv[1], sys.argv[2]
_sampler = sampler_mod._sampler
SHELL = 'i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done; echo shell-done $i; exit 7'

def spin_for(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) % 1000003

def busy():
    while True:
        spin_for(1.0)

s = Sampler(rate_hz=1000, timer=timer)
s.start()
threading.Thread(target=busy, daemon=True).start()
spin_for(0.1)
print("sampling", _sampler.stats()["handler_entries"], flush=True)
if variant == "fail-then-exec":
    try:
        os.execv("/nonexistent/realprof-soak-shell", ["sh"])
    except OSError:
        before = _sampler.stats()["handler_entries"]
        spin_for(0.1)
        print("resumed", _sampler.stats()["handler_entries"] - before, flush=True)
    os.execvp("sh", ["sh", "-c", SHELL])
else:
    os.execve("/bin/sh", ["sh", "-c", SHELL], dict(os.environ))
"""


def ingredient_exec():
    out = {}
    for variant in ("exec", "fail-then-exec"):
        status, stdout, stderr = child(EXEC_CHILD, variant)
        words = dict(
            (line.split()[0], int(line.split()[1])) for line in stdout.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()
        )
        out[variant] = {
            "status": status, "shell_done": words.get("shell-done"),
            "sampling": words.get("sampling"), "resumed": words.get("resumed"),
            "stderr": stderr[-500:],
        }
    return out


# ----- 2. closed fds (perf mode): the program's pipe is never read or closed ----------
# The child profiles itself, closes fds 3..99 (as daemonizing code does) and opens a
# pipe, which reuses the lowest numbers; before the fix the perf event fds were among
# them, and stop() read 8 bytes from the pipe and closed it. Then a second sampler and
# os.closerange(3, SC_OPEN_MAX), which closes the events wherever they are: sampling
# stops and the loss must be counted (stats["perf_events_closed"]).

CLOSE_CHILD = """
import json, os, stat, sys, time
from realprof import sampler as sampler_mod
from realprof.sampler import Sampler
timer = sys.argv[1]
_sampler = sampler_mod._sampler

def spin_for(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) % 1000003

out = {}
s = Sampler(rate_hz=1000, timer=timer)
s.start()
spin_for(0.1)
os.closerange(3, 100)
r, w = os.pipe()
payload = b"the program's own data " * 4
os.write(w, payload)
before = _sampler.stats()["handler_entries"]
spin_for(0.2)
out["signals_after_closerange"] = _sampler.stats()["handler_entries"] - before
s.stop()
out["pipe_fds"] = [r, w]
out["fds_open"] = []
for fd in (r, w):
    try:
        out["fds_open"].append(stat.S_ISFIFO(os.fstat(fd).st_mode))
    except OSError as error:
        out["fds_open"].append(repr(error))
try:
    os.set_blocking(r, False)
    data = os.read(r, 4096)
except OSError as error:
    data = repr(error).encode()
out["pipe_data_ok"] = data == payload
out["pipe_data"] = data.decode(errors="replace")[:200]
out["perf_events_closed_low"] = s.stats.get("perf_events_closed")

s2 = Sampler(rate_hz=1000, timer=timer)
s2.start()
spin_for(0.1)
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
spin_for(0.2)
s2.stop()
out["perf_events_closed_all"] = s2.stats.get("perf_events_closed")
out["samples_all"] = s2.profile.total_samples
try:
    from realprof.sampler import integrity_notes  # what record's summary and reports say
except ImportError:  # before issue 10
    integrity_notes = lambda stats: []
out["notes_all"] = integrity_notes(s2.stats)
print("RESULT " + json.dumps(out), flush=True)
"""


CLOSE_ALL_SCRIPT = """
import os, time
end = time.thread_time() + 0.1
while time.thread_time() < end:
    pass
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
end = time.thread_time() + 0.2
while time.thread_time() < end:
    pass
"""


def ingredient_closerange():
    status, stdout, stderr = child(CLOSE_CHILD)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    out = json.loads(lines[-1][len("RESULT "):]) if lines else {}
    out["status"] = status
    out["stderr"] = stderr[-500:]
    # The same closerange(3, SC_OPEN_MAX) under `realprof record`: its summary says so.
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "closes_everything.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(CLOSE_ALL_SCRIPT)
        argv = ["-m", "realprof", "record", "--hz", "1000", "--timer", TIMER,
                "-o", os.path.join(tmp, "out.folded"), script]
        status, _stdout, stderr = child(None, argv=argv)
    out["record_status"] = status
    out["record_warnings"] = [line.strip() for line in stderr.splitlines() if "warning" in line]
    out["record_stderr"] = stderr[-600:]
    return out


# ----- 3. a function created per call ----------------------------------------------
# Each call makes a new code object (code.replace, or exec of fresh source), runs it
# (~2-3 ms of work in that frame) and drops it; pymalloc hands the next code object the
# freed address. Before the fix the dealloc hook's stale "dying code" record made every
# later code object at that address look dead: ~all samples became [unknown] (lost).

def fresh_template(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x


FRESH_SOURCE = """
def fresh_src(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x
"""


def fresh_phase(kind, seconds):
    s = Sampler(rate_hz=1000, timer=TIMER)
    s.start()
    calls = 0
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        # The new function is referenced only by its own call's frame: its code object
        # dies while that frame is cleared, at the data-stack position where the next
        # call's frame (with the next code object, at the same address) will sit.
        if kind == "replace":
            types.FunctionType(
                fresh_template.__code__.replace(co_name="fresh_code", co_qualname="fresh_code"),
                globals(),
            )(40_000)
        else:
            ns = {}
            exec(compile(FRESH_SOURCE, "<fresh>", "exec"), ns)
            ns.pop("fresh_src")(40_000)
        calls += 1
    profile = s.stop()
    by_leaf = {}
    for (stack, _t), c in profile.samples.items():
        by_leaf[stack[0].function] = by_leaf.get(stack[0].function, 0) + c
    named = sum(c for name, c in by_leaf.items() if name.startswith("fresh_"))
    # Samples taken in the fresh function: named after it, or lost as unknown code (all
    # of this run's unknown samples: nothing else here makes code objects die). Samples
    # in the driver loop (compile, FunctionType) are not the function's.
    lost = profile.lost.get("unknown_code", 0)
    unknown_frames = sum(
        c for (stack, _t), c in profile.samples.items()
        if any(f.function == "[unknown code]" for f in stack)
    )
    return {
        "calls": calls, "by_leaf": by_leaf, "named": named, "lost_unknown": lost,
        "unknown_frames": unknown_frames,
        "share": named / (named + lost) if named + lost else None,
        "dead_code_frames": s.stats.get("dead_code_frames"),
    }


def ingredient_fresh():
    return {"replace": fresh_phase("replace", 1.0), "exec": fresh_phase("exec", 0.75)}


# ----- 4. 9000-deep recursion ------------------------------------------------------
# max_depth=64 with the leaf 9000 frames down: every sample must be kept as the 64
# frames at the leaf end, flagged truncated. Before the fix the walk had to reach a
# trust anchor at the far end and looked at 64 data-stack chunks only: every sample
# was dropped as untrusted.

DEEP_LEVELS = 9_000


def deep_bottom(seconds):
    return spin_for(seconds)


def deep9k(n, seconds):
    if n == 0:
        return deep_bottom(seconds)
    return deep9k(n - 1, seconds)


def ingredient_deep(seconds=1.5):
    sys.setrecursionlimit(DEEP_LEVELS + 1_000)
    records = {"n": 0, "truncated": 0}
    original = _sampler.drain

    def drain():
        got = original()
        for record in got or ():
            records["n"] += 1
            records["truncated"] += bool(record[4] & F_TRUNCATED)
        return got

    _sampler.drain = drain
    try:
        s = Sampler(rate_hz=1000, timer=TIMER, max_depth=64)
        s.start()
        deep9k(DEEP_LEVELS, seconds)
        profile = s.stop()
    finally:
        _sampler.drain = original
    st = s.stats
    shapes = {}  # the stacks of the samples taken at the bottom, by shape
    for (stack, _t), c in profile.samples.items():
        names = [f.function for f in stack]
        if names[0] != "spin_for":
            continue
        whole = len(names) == 64 and names[1] == "deep_bottom" and set(names[2:]) == {"deep9k"}
        shape = "leaf end, 64 frames" if whole else f"{len(names)} frames: {names[:3]}"
        shapes[shape] = shapes.get(shape, 0) + c
    return {
        "samples": profile.total_samples, "at_bottom": sum(shapes.values()), "shapes": shapes,
        "lost_unknown": profile.lost.get("unknown_code", 0),
        "records": records["n"], "records_truncated": records["truncated"],
        "stacks_untrusted": st["stacks_untrusted"], "stack_walk_faults": st["stack_walk_faults"],
        "signals_delivered": st["signals_delivered"], "samples_recorded": st["samples_recorded"],
    }


# ----- 5. fork every 5 ms at 100 Hz beside a busy thread -----------------------------
# A busy thread spins; the main thread wakes every 5 ms and forks a child that exits at
# once (reaped without blocking). Then the same run without forks: the main thread wakes
# on the same schedule and, instead of forking, burns as much CPU per wake-up as the
# forks did (fork, reap), so both runs have the same threads with the same CPU bursts
# and only fork() differs. (A thread on the CPU in short bursts gets overruns from its
# tick-checked CPU timer, fork or not: the reference must have the bursts too.) Before
# the fix every timer was disarmed across fork() and re-armed with a full period
# (ITIMER_PROF) or a random first expiry (per-thread), so a 10 ms timer restarted every
# 5 ms seldom fired: capture fell to 0.01-0.05 (process), 0.56-0.69 (per-thread, both)
# and 0.81-0.87 (perf), against 0.92-1.0 without forks.

def fork_run(cpu_seconds, burst=None):
    """burst None: fork at every wake-up; else spin `burst` s of CPU instead."""
    stop = threading.Event()
    s = Sampler(rate_hz=100, timer=TIMER)
    s.start()
    busy_cpu = []
    busy = threading.Thread(target=busy_until, args=(stop, busy_cpu), name="busy")
    busy.start()
    busy_clock = time.pthread_getcpuclockid(busy.ident)
    pids, statuses, forks, wakeups, work_cpu = set(), [], 0, 0, 0.0
    t0 = time.monotonic()
    next_at = t0
    while True:
        next_at += 0.005
        now = time.monotonic()
        # Until the busy thread has had `cpu_seconds` (the runs' sizes n, for the check's
        # power), whatever else this machine runs; twice as long at most.
        if time.clock_gettime(busy_clock) >= cpu_seconds or next_at >= t0 + 2 * cpu_seconds:
            break
        if next_at > now:
            time.sleep(next_at - now)
        wakeups += 1
        c0 = time.thread_time()
        if burst is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # threads, 3.12+
                pid = os.fork()
            if pid == 0:
                os._exit(0)
            pids.add(pid)
            forks += 1
        else:
            while time.thread_time() - c0 < burst:
                pass
        while pids:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            pids.discard(pid)
            statuses.append(os.waitstatus_to_exitcode(status))
        work_cpu += time.thread_time() - c0
    for pid in pids:
        statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    stop.set()
    busy.join()
    profile = s.stop()
    st = s.stats
    busy_samples = sum(c for (_stack, name), c in profile.samples.items() if name == "busy")
    return {
        "forks": forks, "wakeups": wakeups, "wall_s": time.monotonic() - t0,
        "burst_cpu_s": work_cpu / wakeups if wakeups else 0.0,
        "children_ok": statuses.count(0), "children_bad": [x for x in statuses if x != 0],
        "samples": st["samples_recorded"], "cpu_s": st["cpu_seconds"],
        "expected": st["cpu_seconds"] * 100,
        "capture": st["samples_recorded"] / (st["cpu_seconds"] * 100),
        # for the record: the busy thread alone (its samples over its own CPU time), and
        # where else signals went
        "busy_samples": busy_samples, "busy_cpu_s": busy_cpu[0],
        "busy_capture": busy_samples / (busy_cpu[0] * 100) if busy_cpu[0] else None,
        "delivered": st["signals_delivered"], "discarded": st["signals_discarded"],
        "overruns": st["timer_overruns"],
    }


def ingredient_fork(cpu_seconds=2.4):
    forking = fork_run(cpu_seconds)
    return {"with": forking, "without": fork_run(cpu_seconds, burst=forking["burst_cpu_s"])}


# ----- 6. kill(SIGSEGV) still kills ----------------------------------------------------
# A SIGSEGV sent by kill() or pthread_kill() while profiling must kill the program with
# signal 11. Before the fix the guard "restored the previous disposition and returned"
# for the instruction to fault again; nothing does for a sent signal, so it survived.

SEGV_CHILD = """
import os, signal, sys, threading, time
from realprof.sampler import Sampler
timer, how = sys.argv[1], sys.argv[2]

def spin_for(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) % 1000003

s = Sampler(rate_hz=1000, timer=timer)
s.start()
threading.Thread(target=lambda: spin_for(5), daemon=True).start()
spin_for(0.1)
if how == "kill":
    os.kill(os.getpid(), signal.SIGSEGV)
else:
    signal.pthread_kill(threading.get_ident(), signal.SIGSEGV)
spin_for(0.3)
print("survived", flush=True)
"""


def ingredient_kill_segv():
    out = {}
    for how in ("kill", "pthread_kill"):
        status, stdout, stderr = child(SEGV_CHILD, how)
        out[how] = {"status": status, "survived": "survived" in stdout, "stderr": stderr[-300:]}
    return out


# ----- 7. faulthandler enabled after start() (what pytest does) ----------------------
# (a) walk_selftest("unreadable", True) makes the walk fault on a PROT_NONE page, 20 times:
# the program must survive without a fatal-error report; before the fix faulthandler,
# installed over the guard, took the fault first and printed one.
# (b) a genuine NULL dereference (ctypes.string_at(0)) must print faulthandler's report
# exactly once and die of SIGSEGV; before the fix the guard and faulthandler chained
# each other and the report came several times.

FAULTHANDLER_CHILD = """
import ctypes, faulthandler, json, os, sys, threading, time
from realprof import sampler as sampler_mod
from realprof.sampler import Sampler
timer, part = sys.argv[1], sys.argv[2]
_sampler = sampler_mod._sampler

def spin_for(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) % 1000003

s = Sampler(rate_hz=1000, timer=timer)
s.start()
faulthandler.enable(file=os.dup(sys.stderr.fileno()))  # as pytest's faulthandler plugin
threading.Thread(target=lambda: spin_for(5), daemon=True).start()
if part == "walk":
    keys = ("handler_entries", "stacks_untrusted", "stack_walk_faults", "stacks_unguarded")
    before = _sampler.stats()

    def nested(n):
        if n == 0:
            for _ in range(10):
                _sampler.walk_selftest("unreadable", True)  # in place: no entry window
            return
        nested(n - 1)

    nested(5)  # at once: faulthandler sits in front of the guard
    spin_for(0.3)  # the reader drains (and, before the fix, re-installed its guard)
    nested(5)  # and again
    spin_for(0.1)
    after = _sampler.stats()
    s.stop()
    print("RESULT " + json.dumps({k: after.get(k, 0) - before.get(k, 0) for k in keys}), flush=True)
else:
    spin_for(0.3)  # the reader drains (and, before the fix, re-installed its guard)
    sys.stderr.write("--- genuine segfault next ---\\n")
    sys.stderr.flush()
    ctypes.string_at(0)
    print("survived", flush=True)
"""

FATAL = "Fatal Python error: Segmentation fault"


def ingredient_faulthandler():
    status, stdout, stderr = child(FAULTHANDLER_CHILD, "walk")
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    walk = {
        "status": status, "fatal_reports": stderr.count(FATAL),
        "delta": json.loads(lines[-1][len("RESULT "):]) if lines else None,
        "stderr": stderr[-800:],
    }
    status, stdout, stderr = child(FAULTHANDLER_CHILD, "segfault")
    genuine = {
        "status": status, "survived": "survived" in stdout,
        "fatal_reports": stderr.count(FATAL), "stderr": stderr[-800:],
    }
    return {"walk": walk, "segfault": genuine}


# ----- the run -------------------------------------------------------------------------

def main():
    if TIMER == "perf":
        err, exclude_kernel = _sampler.perf_probe(1_000_000)
        if err:
            print("SKIP " + sampler_mod.perf_refusal_message(err, bool(exclude_kernel)), flush=True)
            return
    t_all = time.monotonic()
    for name, fn in (
        ("exec", ingredient_exec),
        ("closerange", ingredient_closerange),
        ("fresh", ingredient_fresh),
        ("deep", ingredient_deep),
        ("fork", ingredient_fork),
        ("kill_segv", ingredient_kill_segv),
        ("faulthandler", ingredient_faulthandler),
    ):
        if ONLY and name not in ONLY:
            continue
        t0 = time.monotonic()
        try:
            results[name] = fn()
        except BaseException as error:  # one ingredient's failure hides no other
            results["errors"][name] = repr(error)
            if process_hooks.active is not None:  # leave no sampler running for the next
                try:
                    process_hooks.active.stop()
                except BaseException as stop_error:
                    results["errors"][name + ".stop"] = repr(stop_error)
        results["seconds"][name] = round(time.monotonic() - t0, 2)
    results["seconds"]["total"] = round(time.monotonic() - t_all, 2)
    print("PROMISES-RESULT " + json.dumps(results), flush=True)


main()
faulthandler.cancel_dump_traceback_later()
'''


def _short(d: dict) -> str:
    return json.dumps(d)[:1500]


def capture_tolerance(k0: int, n0: float, k1: int, n1: float) -> tuple[float, float]:
    """(capture with forks - capture without, how far apart they may be).

    A run's capture is c = k / n: k timer expiries seen (samples recorded plus the
    overruns the kernel folded into them, below) over n = cpu_seconds * rate timer
    periods of the profiled threads' CPU. If each period yields its expiry independently
    with probability p, k ~ Binomial(n, p) and Var(c) = p (1 - p) / n. If forks change
    nothing, the run with forks (k1, n1) has the p of the run without (k0, n0), whose
    capture c0 estimates it; the standard error of c1 - c0 is then
    sqrt(c0 (1 - c0) (1/n0 + 1/n1)) (c0 clamped to [0, 1]; taken from the reference run
    only, so a broken run with forks cannot widen its own tolerance). The tolerance is 3
    of those, plus 2/n0 + 2/n1 for the ends of each run, which the binomial model leaves
    out and which dominate as p nears 1 (its variance vanishes there): the first expiry
    is random, the last period is cut by stop(), and cpu_seconds is read a moment after
    the last signal, so k falls a few short of n * p (measured: 10 pairs of runs
    without forks, every timer mode, k = n - 0.2 to n - 4.6, n = 158-252). With
    n0 = n1 = 250 and c0 = 0.99 the tolerance is 0.027 + 0.016 = 0.043.

    Why overruns count: the forking thread runs in bursts of ~0.6 ms every 5 ms (in both
    runs), and a per-thread CPU timer is checked at the tick, so several of its periods
    often expire between two checks that find it on the CPU: one signal, the rest
    overruns (3-20 per run here, clumped, far from binomial: it made plain captures of
    the same two runs differ by up to 0.07). Counted as expiries they leave the timer's
    progress, which is what a fork must not stop. (ITIMER_PROF reports no overruns:
    process-mode k is the samples alone.)
    """
    c0, c1 = k0 / n0, k1 / n1
    p = min(max(c0, 0.0), 1.0)
    se = math.sqrt(p * (1 - p) * (1 / n0 + 1 / n1))
    return c1 - c0, 3 * se + 2 / n0 + 2 / n1


class Checks:
    """Named checks of one target run, all evaluated: a failure lists every broken
    promise, not just the first."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, name: str, ok: object, detail: object) -> None:
        if not ok:
            self.failed.append(f"{name}: {_short(detail) if isinstance(detail, dict) else detail}")


@pytest.mark.parametrize("timer", ["process", "per-thread", "both", "perf"])
def test_soak_promises(timer):
    started = time.monotonic()
    proc = run_target(PROMISES, timer, timeout=200)
    elapsed = time.monotonic() - started
    r = target_result(proc, PROMISES_MARKER)  # skips when the kernel refuses perf events
    print(f"soak promises {timer} CPython {r['python']}: {elapsed:.1f} s, {r['seconds']}")
    check = Checks()
    for bad in ("Fatal Python error", "Segmentation fault", "Traceback"):
        check(f"no {bad!r} in the target's stderr", bad not in proc.stderr, proc.stderr[-3000:])
    check("every ingredient ran to its end", r["errors"] == {}, r["errors"])
    check("elapsed < 120 s", elapsed < 120, elapsed)

    # exec: the shell runs to its end (exit 7 after counting to 60000), also after a
    # failed exec, which leaves the sampler sampling. Old code: the shell died of
    # SIGPROF (-27) with the process, both and perf timers.
    if "exec" in r:
        for variant, v in r["exec"].items():
            check(f"exec ({variant}): sampling before it", (v["sampling"] or 0) > 0, v)
            check(
                f"exec ({variant}): the shell ran to its end",
                v["status"] == 7 and v["shell_done"] == 60000,
                v,
            )
        v = r["exec"]["fail-then-exec"]
        check("exec: sampling resumed after a failed exec", (v["resumed"] or 0) > 0, v)

    # closed fds: the program's pipe keeps its data and stays open, and sampling goes on,
    # after closerange(3, 100); in perf mode the events closed by closerange(3,
    # SC_OPEN_MAX) are counted. Old code (perf): stop() read the pipe and closed it, and
    # sampling had stopped at the closerange.
    if "closerange" in r:
        cr = r["closerange"]
        check("closerange: the child exited 0", cr["status"] == 0, cr)
        check("closerange: the pipe's data survived", cr.get("pipe_data_ok"), cr)
        check("closerange: the pipe is still open", cr.get("fds_open") == [True, True], cr)
        check(
            "closerange(3, 100): sampling went on",
            (cr.get("signals_after_closerange") or 0) > 0,
            cr,
        )
        closed = cr.get("perf_events_closed_all")
        if timer == "perf":
            check(
                "closerange(3, SC_OPEN_MAX): closed perf events counted",
                isinstance(closed, int) and closed > 0,
                cr,
            )
            check(
                "closerange(3, SC_OPEN_MAX): reported in the notes",
                any("perf event" in note for note in cr.get("notes_all", [])),
                cr,
            )
            check(
                "closerange(3, SC_OPEN_MAX): reported in record's summary",
                any("perf event" in line for line in cr["record_warnings"]),
                cr,
            )
        else:
            check("closerange: no perf events to close", not closed, cr)
        check("closerange: record exited 0", cr["record_status"] == 0, cr)

    # a function created per call: >= 90 % of the samples taken in it are named after
    # it (the rest are lost as unknown code). Old code: about 1 % with code.replace.
    for kind, phase in r.get("fresh", {}).items():
        taken = phase["named"] + phase["lost_unknown"]
        check(f"fresh code ({kind}): >= 100 samples in it", taken >= 100, phase)
        check(f"fresh code ({kind}): >= 90 % named", (phase["share"] or 0) >= 0.90, phase)

    # 9000-deep recursion, max_depth=64: the samples are kept, each the 64 frames at the
    # leaf end, flagged truncated. Old code: every one dropped as untrusted.
    if "deep" in r:
        d = r["deep"]
        check("deep: >= 100 records", d["records"] >= 100, d)
        check("deep: >= 95 % of the samples kept", d["at_bottom"] >= 0.95 * d["records"], d)
        check(
            "deep: each the 64 frames at the leaf end",
            d["shapes"] == {"leaf end, 64 frames": d["at_bottom"]},
            d,
        )
        check("deep: flagged truncated", d["records_truncated"] >= d["at_bottom"], d)
        check(
            "deep: at most 2 % refused",
            d["stacks_untrusted"] + d["stack_walk_faults"] <= 0.02 * d["records"] + 3,
            d,
        )

    # fork every 5 ms at 100 Hz beside a busy thread: the busy thread's capture is within
    # 3 binomial standard errors (and the end effects) of the same run without forks (the
    # same CPU bursts in the main thread, spent spinning), and the run keeps 80%. Old
    # code: 0.01-0.87 with forks against 0.92-1.0 without.
    if "fork" in r:
        f = r["fork"]
        without, forking = f["without"], f["with"]
        check(
            "fork: a fork every 5 ms (>= 80 % of the wake-ups)",
            forking["forks"] >= 400 and forking["forks"] >= 0.8 * forking["wall_s"] / 0.005,
            f,
        )
        check(
            "fork: every child exited 0",
            forking["children_ok"] == forking["forks"] and forking["children_bad"] == [],
            f,
        )
        check(
            ">= 100 timer periods per run", min(without["expected"], forking["expected"]) >= 100, f
        )
        if timer == "process":
            # ITIMER_PROF is one timer for the process, and the kernel drops an expiry
            # whose SIGPROF finds the previous one still pending, without an overrun
            # count (kernel/signal.c legacy_queue, kernel/time/itimer.c). Here the
            # children, reaped late to keep the 5 ms pace, compete with the busy thread
            # for the 2 CPUs; its SIGPROF then waits for a CPU and the next is dropped,
            # unseen (measured: captures 0.04-0.08 below the run without forks, where
            # there are no children). That is the process timer's loss under CPU load
            # (golang/go #35057), not the fork's, and no binomial bound describes it, so
            # here the check is the one the fix is about: no starvation. Before the fix
            # the capture was 0.01-0.05, with the fix 0.9-1.0: 0.8 parts them. The
            # 3-standard-error comparison for this timer is made where children cannot
            # pile up (tests/test_sampler_promises.py::
            # test_forking_every_5ms_does_not_starve_the_timers[process]).
            capture = (forking["samples"] + forking["overruns"]) / forking["expected"]
            check(f"fork: capture with forks {capture:.3f} >= 0.8", capture >= 0.8, f)
        else:
            # The busy thread runs without a break in both runs, so its expiries are the
            # binomial trials capture_tolerance describes. The forking thread's own
            # bursts (0.6-0.8 ms every 5 ms) are not: its timer is checked only at a tick
            # that lands in a burst, and in the run without forks its CPU idles between
            # bursts; one CI run (2026-12-07, CPython 3.15) saw it keep 9 of its 45
            # expected expiries there against 54 of 54 with forks, which failed the
            # whole-run comparison by 0.126 with the busy thread's captures 0.9998 and
            # 0.9994. So the 3-SE comparison is the busy thread's, and the whole run with
            # forks must still keep 80% (starved timers kept 0.01-0.87).
            busy_diff, busy_tol = capture_tolerance(
                without["busy_samples"],
                without["busy_cpu_s"] * 100,
                forking["busy_samples"],
                forking["busy_cpu_s"] * 100,
            )
            check(
                f"fork: busy thread's capture with forks - without = {busy_diff:+.3f}, "
                f"allowed +-{busy_tol:.3f}",
                abs(busy_diff) <= busy_tol,
                f,
            )
            capture = (forking["samples"] + forking["overruns"]) / forking["expected"]
            check(
                f"fork: capture (with overruns) with forks {capture:.3f} >= 0.8", capture >= 0.8, f
            )

    # kill(SIGSEGV) and pthread_kill(SIGSEGV) kill with signal 11. Old code: survived.
    for how, v in r.get("kill_segv", {}).items():
        check(f"{how}(SIGSEGV) kills with signal 11", v["status"] == -signal.SIGSEGV, v)
        check(f"{how}(SIGSEGV): nothing ran after it", not v["survived"], v)

    # faulthandler enabled after start() (as pytest does): 20 forced walk faults are
    # survived, each stack refused, with no fatal-error report; a genuine segfault
    # reports once and dies of SIGSEGV. Old code: one report for the walk faults (which
    # faulthandler took first), two for the segfault.
    if "faulthandler" in r:
        walk, genuine = r["faulthandler"]["walk"], r["faulthandler"]["segfault"]
        check("faulthandler: walk faults survived", walk["status"] == 0, walk)
        check("faulthandler: no report for walk faults", walk["fatal_reports"] == 0, walk)
        # Refused: walked and found untrusted, walked and faulted (the guard caught it), or
        # not walked because another SIGSEGV handler sat in front of the guard (unguarded).
        # (>= : a timer signal can land while walk_selftest's garbage frame is in place)
        delta = walk["delta"] or {}
        refused = sum(
            delta.get(k, 0) for k in ("stacks_untrusted", "stack_walk_faults", "stacks_unguarded")
        )
        check("faulthandler: each faulting walk refused", refused >= 20, walk)
        check(
            "faulthandler: a genuine segfault dies of SIGSEGV",
            genuine["status"] == -signal.SIGSEGV and not genuine["survived"],
            genuine,
        )
        check(
            "faulthandler: a genuine segfault reports once", genuine["fatal_reports"] == 1, genuine
        )

    assert not check.failed, f"{len(check.failed)} broken promise(s) ({timer}):\n" + "\n".join(
        check.failed
    )
