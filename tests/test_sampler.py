"""realprof.sampler on the real kernel: capture, attribution, the funnel, lifetimes.

These tests burn real CPU (two CPUs at most) and read real thread CPU clocks. Each
count in a conservation check comes from a different place: the C handler's entry
counter, the reader's count of records it processed, and the written profile.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from sampler_checks import signals_accounted

from contract.profile_files import read_profile
from realprof import process_hooks
from realprof import sampler as sampler_mod
from realprof.frame_names import module_of
from realprof.sampler import Sampler, c_handler_available

pytestmark = pytest.mark.real

SUPPORTED = (3, 11) <= sys.version_info[:2] <= (3, 15) and sys.platform == "linux"
C_OK, C_WHY = c_handler_available()
needs_c = pytest.mark.skipif(not C_OK, reason=f"C handler unavailable: {C_WHY}")
_sampler = sampler_mod._sampler


# ----- helpers -----------------------------------------------------------------------


def python_spin(cpu_ns: int) -> None:
    end = time.thread_time_ns() + cpu_ns
    while time.thread_time_ns() < end:
        pass


def native_worker(cpu_ns: int, out: dict, key: str) -> None:
    t0 = time.thread_time_ns()
    _sampler.spin_native(cpu_ns)
    out[key] = time.thread_time_ns() - t0


def run_threads(target, names: list[str], *args) -> dict[str, int]:
    """Run target(*args, cpu_out, name) on one thread per name; returns CPU ns by name."""
    cpu: dict[str, int] = {}
    threads = [
        threading.Thread(target=target, args=(*args, cpu, name), name=name) for name in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return cpu


def assert_funnel(s: Sampler) -> None:
    st, p = s.stats, s.profile
    assert st["signals_delivered"] == signals_accounted(st), st
    # A stack caught mid-push with a stale frame pointer is dropped and counted ("Trusting
    # the frame chain" in _sampler.c): each one accounted, a handful a run at most (the
    # soak's bound). The CI run at e5c7248 saw one of 171 on CPython 3.13.
    unknown = p.lost.get("unknown_code", 0)
    assert unknown <= st["stacks_untrusted"] + st["stack_walk_faults"] + st["unknown_frames"]
    assert unknown <= 0.001 * st["samples_recorded"] + 3, (st, p.lost)
    assert st["samples_recorded"] == st["reader_records"] == p.total_samples + unknown, (st, p)
    assert p.lost.get("overflow", 0) == st["samples_lost_overflow"]


def seen(s: Sampler, names) -> tuple[int, int]:
    """(samples, samples + folded expiries) on the named threads.

    Per-thread timers deliver at most one signal per tick at which the thread is
    current; expiries that pile up in between arrive as si_overrun on the next
    signal (si_overrun, posix-timers.c). On a quiet machine overruns are ~0 at 100 Hz; on a
    contended or virtualised one (missed ticks, steal) they are not, and the profile
    (one sample per signal, like Go's) is short by exactly that much. So capture is
    asserted on samples + overruns: everything the kernel generated reached the
    profile. The samples-only ratio is what `realprof` reports as capture.
    """
    by_thread = s.profile.by_thread()
    samples = sum(by_thread.get(n, 0) for n in names)
    return samples, samples + sum(s.overruns_by_thread.get(n, 0) for n in names)


def sigprof_posix_timers() -> int:
    """POSIX timers of this process that deliver SIGPROF (27 on Linux)."""
    path = Path("/proc/self/timers")
    if not path.exists():
        return 0
    return sum(
        1
        for line in path.read_text().splitlines()
        if line.startswith("signal:") and line.split()[1].split("/")[0] == str(int(signal.SIGPROF))
    )


# ----- the build ------------------------------------------------------------------------


@pytest.mark.skipif(not SUPPORTED, reason="the C handler targets CPython 3.11-3.15 on Linux")
def test_extension_is_built_on_supported_versions():
    assert C_OK, C_WHY
    layout = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert layout == _sampler.FRAME_LAYOUT


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="timer must be one of"):
        Sampler(timer="hrtimer")
    with pytest.raises(ValueError, match="handler must be one of"):
        Sampler(handler="go")
    with pytest.raises(ValueError, match="only with timer='process'"):
        Sampler(handler="python", timer="per-thread")
    with pytest.raises(ValueError, match="rate_hz"):
        Sampler(rate_hz=0)
    with pytest.raises(ValueError, match="buffer_words"):
        Sampler(buffer_words=4)
    with pytest.raises(ValueError, match="max_depth"):
        Sampler(max_depth=0)


# ----- capture and conservation --------------------------------------------------------


@needs_c
@pytest.mark.slow
def test_native_threads_per_thread_timers_capture_and_conserve():
    """Two GIL-free spinning threads, 5 s at 100 Hz: >= 97 % captured, funnel exact.

    ">= 97 %" is the issue's criterion for the capture probability, tested on one run:
    if each of the n expected samples (CPU / period, 1,000 here) is kept with
    probability 0.97, the count kept is binomial with SE sqrt(0.97 * 0.03 / n) = 0.0054
    of n, so a run that keeps fewer than 0.97 - 3 SE = 95.4 % is the one that shows the
    capture below 97 % (one such run in 740 would come from a true 97 %).
    """
    names = ["native-0", "native-1"]
    with Sampler(rate_hz=100, timer="per-thread") as s:
        cpu = run_threads(native_worker, names, 5_000_000_000)
    p, st = s.profile, s.stats
    expected = sum(cpu.values()) / 1e9 * 100
    captured, generated = seen(s, names)
    # The criterion, on samples alone: spin_native reads getrusage, not its own
    # CPU clock, so the kernel has no reason to switch it out between ticks.
    floor = 0.97 - 3 * math.sqrt(0.97 * 0.03 / expected)
    assert captured >= floor * expected, (captured, generated, expected, floor, st)
    assert generated >= floor * expected, (captured, generated, expected, floor, st)
    assert generated <= 1.01 * expected + 2, (generated, expected)  # no double counting
    assert_funnel(s)
    # No setitimer here, so nothing is a duplicate (a straggler of a deleted timer
    # would be discarded as stale, and counted).
    assert st["signals_discarded_duplicate"] == 0
    # The workers ran native code: flagged native, leaf = the Python caller. Not all:
    # a few land on the Python lines around the call, or are delivered just after it
    # returned (the kernel delivers at the next return to user mode,
    # kernel/entry/common.c), when the thread holds the GIL again.
    assert st["native_samples"] >= 0.95 * captured, (st["native_samples"], captured)
    for (stack, thread), _count in p.samples.items():
        if thread in names:
            assert stack[0].function == "native_worker"
            assert stack[0].file == __file__
    assert st["cpu_seconds"] >= sum(cpu.values()) / 1e9 * 0.99


@needs_c
@pytest.mark.slow
def test_python_function_shares_match_thread_cpu_clocks():
    """Four functions on two threads, 10 s at 100 Hz: each share within 3 binomial SE."""
    plan = {
        "worker-a": [("alpha", 1_300_000), ("beta", 2_900_000)],
        "worker-b": [("gamma", 2_100_000), ("delta", 4_700_000)],
    }
    truth: dict[str, int] = {}
    lock = threading.Lock()

    def alpha(ns):  # the spin loop is inlined so that alpha is the leaf frame
        end = time.thread_time_ns() + ns
        while time.thread_time_ns() < end:
            pass

    def beta(ns):  # the spin loop is inlined so that beta is the leaf frame
        end = time.thread_time_ns() + ns
        while time.thread_time_ns() < end:
            pass

    def gamma(ns):  # the spin loop is inlined so that gamma is the leaf frame
        end = time.thread_time_ns() + ns
        while time.thread_time_ns() < end:
            pass

    def delta(ns):  # the spin loop is inlined so that delta is the leaf frame
        end = time.thread_time_ns() + ns
        while time.thread_time_ns() < end:
            pass

    funcs = {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta}

    def worker(steps, deadline):
        local = {name: 0 for name, _ns in steps}
        while time.monotonic() < deadline:
            for name, ns in steps:
                t0 = time.thread_time_ns()
                funcs[name](ns)
                local[name] += time.thread_time_ns() - t0
        with lock:
            truth.update(local)

    with Sampler(rate_hz=100, timer="per-thread") as s:
        deadline = time.monotonic() + 10.0
        threads = [
            threading.Thread(target=worker, args=(steps, deadline), name=name)
            for name, steps in plan.items()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert_funnel(s)
    # qualnames: "test_python_function_shares_match_thread_cpu_clocks.<locals>.alpha"
    flat: dict[str, int] = {}
    for qualname, count in s.profile.by_function().items():
        short = qualname.rpartition(".")[2]
        flat[short] = flat.get(short, 0) + count
    n = sum(flat.get(name, 0) for name in funcs)
    total = sum(truth.values())
    assert n >= 0.5 * total / 1e9 * 100, (n, total)  # enough samples for the test
    for name in funcs:
        p_true = truth[name] / total
        p_seen = flat.get(name, 0) / n
        se = math.sqrt(p_true * (1 - p_true) / n)
        assert abs(p_seen - p_true) <= 3 * se, (name, p_seen, p_true, se, flat, truth)
    # Mostly "python" (GIL held). A few are "native": delivered while the thread waits
    # for the GIL in take_gil (detached, its Python frames still on top) - GIL
    # handoffs between the two workers.
    assert s.stats["python_samples"] >= 0.95 * n, (s.stats["python_samples"], n)


def test_python_handler_misses_workers_while_main_waits_in_join():
    """The naive port: two busy workers, main thread in join(): < 10 % captured."""

    def busy(cpu_ns, out, key):
        t0 = time.thread_time_ns()
        python_spin(cpu_ns)
        out[key] = time.thread_time_ns() - t0

    with Sampler(rate_hz=100, timer="process", handler="python") as s:
        cpu = run_threads(busy, ["busy-0", "busy-1"], 1_500_000_000)
    st, p = s.stats, s.profile
    expected = sum(cpu.values()) / 1e9 * 100
    assert p.total_samples < 0.10 * expected, (p.total_samples, expected, st)
    assert set(p.by_thread()) <= {threading.main_thread().name}
    assert st["signals_delivered"] == st["samples_recorded"] + st["signals_merged"]
    assert st["samples_recorded"] == st["reader_records"] == p.total_samples
    if not st["signals_delivered_estimated"]:
        # The C counter saw the deliveries the Python handler folded together (how
        # many ITIMER_PROF delivers depends on the machine's load, so a loose bound).
        assert st["signals_delivered"] >= 0.2 * expected, st
        assert st["signals_merged"] > 10 * st["samples_recorded"], st


@needs_c
def test_tiny_buffer_overflows_and_still_conserves():
    names = ["native-0", "native-1"]
    with Sampler(rate_hz=100, timer="per-thread", buffer_words=256, reader_period_ms=1000) as s:
        run_threads(native_worker, names, 2_000_000_000)
    st = s.stats
    assert st["samples_lost_overflow"] > 0, st
    assert st["samples_recorded"] > 0, st
    assert_funnel(s)


@needs_c
def test_both_timers_discard_duplicates_without_double_counting():
    names = ["native-0", "native-1"]
    with Sampler(rate_hz=100, timer="both") as s:
        cpu = run_threads(native_worker, names, 2_000_000_000)
    st = s.stats
    assert st["signals_discarded"] > 0, st
    # Duplicates, plus process signals that landed on the profiler's own reader thread
    # (dropped like Go drops them on an M with profilehz 0).
    assert (
        st["signals_discarded_duplicate"] + st["signals_discarded_unprofiled"]
        == st["signals_discarded"]
    )
    assert_funnel(s)
    expected = sum(cpu.values()) / 1e9 * 100
    captured, generated = seen(s, names)
    assert captured <= 1.02 * expected + 2, (captured, expected, st)
    assert 0.95 * expected <= generated <= 1.02 * expected + 2, (generated, expected, st)


@needs_c
def test_process_timer_samples_the_receiving_thread():
    names = ["native-0", "native-1"]
    with Sampler(rate_hz=100, timer="process") as s:
        cpu = run_threads(native_worker, names, 1_000_000_000)
    st = s.stats
    assert_funnel(s)
    assert st["timers_created"] == 0  # setitimer only
    # The only discards: signals the kernel handed to the profiler's own reader thread.
    assert st["signals_discarded"] == st["signals_discarded_unprofiled"]
    # How much ITIMER_PROF delivers is the kernel's business (one process timer,
    # tick-charged clock, a pending signal swallows the next: kernel/signal.c legacy_queue;
    # ~100 % on a quiet 2-CPU machine at 100 Hz, far less under contention), so no
    # capture bound here: the signals that came sampled the threads burning the CPU.
    captured, _ = seen(s, names)
    assert cpu and captured > 0, st
    assert captured >= 0.8 * s.profile.total_samples, (captured, s.profile.by_thread())


# ----- lifetimes: threads, code objects, fork, stop ------------------------------------


@needs_c
def test_short_lived_threads_are_sampled_and_leave_no_timer():
    def short(cpu_ns, out, key):
        python_spin(cpu_ns)
        out[key] = 1

    with Sampler(rate_hz=100, timer="per-thread") as s:
        for batch in range(15):
            run_threads(short, [f"short-{batch}-0", f"short-{batch}-1"], 30_000_000)
    st, p = s.stats, s.profile
    assert_funnel(s)
    short = [t for t in p.by_thread() if t.startswith("short-")]
    _on_short, generated = seen(s, short)
    # 30 threads x 30 ms = 0.9 CPU-s -> ~90 samples; random first expiry (#40435).
    assert generated >= 45, (generated, st)
    assert st["threads_unregistered"] >= 30
    assert st["timers_created"] == st["timers_deleted"], st
    assert _sampler.timers_armed() == 0
    assert sigprof_posix_timers() == 0


@needs_c
def test_code_objects_freed_before_the_drain_keep_their_names():
    """exec'd functions die right after running; the dealloc hook keeps them named."""
    source = "def dyn_{i}(spin):\n    x = 0\n    spin(12_000_000)\n    return x\n"
    with Sampler(rate_hz=100, timer="per-thread", reader_period_ms=500) as s:
        for i in range(60):
            ns: dict = {}
            exec(compile(source.format(i=i), f"<dyn-{i}>", "exec"), ns)
            ns[f"dyn_{i}"](python_spin)
            del ns  # function <-> globals cycle: the collector frees the code object
            gc.collect()  # now, before any drain
    st, p = s.stats, s.profile
    assert_funnel(s)
    assert st["unknown_frames"] == 0
    assert st["dead_code_frames"] > 0, st
    dyn = [
        stack[1]
        for (stack, _t), _c in p.samples.items()
        if len(stack) > 1 and stack[1].function.startswith("dyn_")
    ]
    assert len(dyn) > 20
    for frame in dyn:
        assert frame.file == f"<{frame.function.replace('_', '-')}>"
        assert frame.line == 3 and frame.start_line == 1


@needs_c
def test_fork_while_profiling():
    names = ["native-0"]
    cpu: dict[str, int] = {}
    with Sampler(rate_hz=100, timer="per-thread") as s:
        t = threading.Thread(
            target=native_worker, args=(1_500_000_000, cpu, names[0]), name=names[0]
        )
        t.start()
        python_spin(200_000_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
            pid = os.fork()
        if pid == 0:  # child: no timers, sampling off, stop() is harmless
            code = 1
            try:
                python_spin(50_000_000)
                ok = _sampler.mode() == 0 and _sampler.timers_armed() == 0
                s.stop()
                code = 0 if ok and sigprof_posix_timers() == 0 else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        t.join()
    assert os.waitstatus_to_exitcode(status) == 0
    st = s.stats
    assert_funnel(s)
    assert _sampler.timers_armed() == 0
    assert st["timers_created"] == st["timers_deleted"]
    assert sigprof_posix_timers() == 0
    # the parent's timers were re-armed after the fork
    _captured, generated = seen(s, names)
    assert generated >= 0.9 * cpu[names[0]] / 1e9 * 100, (generated, cpu, st)


def test_fork_while_the_python_handler_profiles():
    with Sampler(rate_hz=100, timer="process", handler="python") as s:
        t0 = time.thread_time_ns()
        python_spin(200_000_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # setitimer(2): the child inherits no interval timer
            os._exit(0 if signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0) else 3)
        _, status = os.waitpid(pid, 0)
        assert signal.getitimer(signal.ITIMER_PROF)[1] > 0  # re-armed in the parent
        python_spin(300_000_000)
        cpu = time.thread_time_ns() - t0
    assert os.waitstatus_to_exitcode(status) == 0
    assert s.profile.total_samples >= 0.5 * cpu / 1e9 * 100, (s.profile, s.stats)
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


@needs_c
def test_stop_is_idempotent_and_late_signals_are_harmless():
    s = Sampler(rate_hz=100)
    s.start()
    python_spin(100_000_000)
    first = s.stop()
    assert s.stop() is first
    before = _sampler.stats()["late_signals"]
    os.kill(os.getpid(), signal.SIGPROF)  # SIG_DFL would terminate the process
    time.sleep(0.05)
    assert _sampler.stats()["late_signals"] == before + 1
    assert _sampler.sigprof_disposition() == "ours"
    with pytest.raises(RuntimeError, match="started once"):
        s.start()


@needs_c
def test_depth_limit_keeps_the_leaf_end():
    def recurse(n):
        if n == 0:
            python_spin(300_000_000)
        else:
            recurse(n - 1)

    with Sampler(rate_hz=100, max_depth=8) as s:
        recurse(40)
    p = s.profile
    assert_funnel(s)
    main = [stack for (stack, t), _c in p.samples.items() if t == threading.main_thread().name]
    assert main
    for stack in main:
        assert len(stack) <= 8
        if stack[0].function == "python_spin":
            assert [f.function.rpartition(".")[2] for f in stack[1:]] == ["recurse"] * 7


def test_refuses_to_share_sigprof():
    previous = signal.signal(signal.SIGPROF, lambda *_: None)
    try:
        for handler in ("c", "python"):
            s = Sampler(handler=handler, timer="process")
            with pytest.raises(RuntimeError, match="SIGPROF"):
                s.start()
    finally:
        signal.signal(signal.SIGPROF, signal.SIG_IGN if previous is None else previous)
    assert process_hooks.active is None


@needs_c
def test_profile_context_manager_writes_even_on_exception(tmp_path):
    out = tmp_path / "cpu.pb.gz"
    with contextlib.suppress(ZeroDivisionError), sampler_mod.profile(out, hz=100) as s:
        python_spin(200_000_000)
        1 / 0  # noqa: B018
    loaded = read_profile(out)
    assert loaded.total_samples == s.profile.total_samples > 0
    assert f"{module_of(__file__)}.python_spin" in loaded.by_function()
