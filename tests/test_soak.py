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
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
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
        f"{st['samples_lost_overflow']}, overruns {st['timer_overruns']}, deepest stack "
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
