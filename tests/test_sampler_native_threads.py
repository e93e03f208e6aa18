"""Threads the interpreter did not create, and the record summary's hints.

A C library's threads (tests/native/spin_threads.c, built with the C compiler; and
OpenBLAS's pool, when numpy is installed) have no Python thread state: the sampler finds
them in /proc/self/task, gives each its own timer, counts their CPU, and labels their
samples ``[native code: NAME]`` on thread ``NAME (tid N)``. Bounds are binomial: n
expected ticks, each caught or not; a per-thread timer may add one sample per thread
(its random first expiry), never more.

The hints of `realprof record` (realprof/sampler_notes.py record_hints) each have a test
that triggers them on a real run, and a pure one on made-up numbers.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from contract.profile_files import read_profile
from realprof.sampler import PerfEventUnavailable, Sampler, c_handler_available
from realprof.sampler_notes import record_hints

REPO = Path(__file__).resolve().parent.parent
C_OK, C_WHY = c_handler_available()
needs_c = pytest.mark.skipif(not C_OK, reason=f"C handler unavailable: {C_WHY}")
NATIVE = "[native code: spinner]"


@pytest.fixture(scope="module")
def spin_threads(tmp_path_factory) -> Path:
    import shutil

    cc = shutil.which("cc")
    if cc is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("'cc' is not on PATH (CI is set, so this is a failure, not a skip)")
        pytest.skip("'cc' is not on PATH; install it with `apt-get install -y gcc`")
    out = tmp_path_factory.mktemp("native") / "spin_threads.so"
    source = REPO / "tests" / "native" / "spin_threads.c"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", "-pthread", "-o", str(out), str(source)], check=True
    )
    return out


def load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.start_spinners.argtypes = [ctypes.c_int, ctypes.c_longlong]
    lib.join_spinners.restype = ctypes.c_longlong
    lib.spin_short.argtypes = [ctypes.c_int, ctypes.c_longlong]
    lib.spin_short.restype = ctypes.c_longlong
    return lib


def within_three_se_of_one(captured: float, n: float) -> bool:
    """captured/n within 3 binomial standard errors of 1 (SE at the observed share, at
    least that of one miss in n)."""
    p = min(captured / n, 1.0)
    se = math.sqrt(max(p * (1 - p), 1 / n) / n)
    return 1 - p <= 3 * se


def run_realprof(*args: str, cwd: Path, env_extra: dict | None = None, preexec=None):
    """`python -m realprof ARGS` in cwd, with this checkout first on the path."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, **(env_extra or {})}
    cmd = [sys.executable, "-m", "realprof", *args]
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, preexec_fn=preexec
    )


def capture_of(stderr: str) -> tuple[float, float]:
    """(in profile, expected) from the record summary."""
    m = re.search(r"expected ([\d,.]+),.* in profile ([\d,]+); capture", stderr)
    assert m, stderr
    return float(m.group(2).replace(",", "")), float(m.group(1).replace(",", ""))


def hints_of(stderr: str) -> list[str]:
    return [line.strip()[len("hint: ") :] for line in stderr.splitlines() if "hint: " in line]


# ----- native threads, in process ---------------------------------------------------------


@needs_c
@pytest.mark.real
@pytest.mark.parametrize("timer", ["per-thread", "both", "perf"])
def test_c_library_threads_are_timed_named_and_counted(spin_threads, timer):
    lib = load(spin_threads)
    try:
        s = Sampler(rate_hz=100, timer=timer)
        s.start()
    except PerfEventUnavailable as exc:
        pytest.skip(str(exc))
    try:
        assert lib.start_spinners(2, 1_500_000_000) == 0
        time.sleep(0.3)  # the reader's scan (every 100 ms) finds them, waiting
        found = s._ext.native_threads()
        lib.go_spinners()
        cpu_ns = lib.join_spinners()  # ctypes drops the GIL: only the spinners burn CPU
        time.sleep(0.3)  # exited: the next scan deletes their timers
        left = s._ext.native_threads()
    finally:
        s.stop()
    assert sorted(found.values()).count("spinner") == 2, found
    # Cleaned up on exit. (Other native threads of this process, e.g. an OpenBLAS pool
    # that an earlier test's import started, are found too and stay.)
    spinners = {tid for tid, name in found.items() if name == "spinner"}
    assert not spinners & set(left), (found, left)
    threads = {f"spinner (tid {tid})" for tid, name in found.items() if name == "spinner"}
    by_thread = s.profile.by_thread()
    captured = sum(by_thread.get(t, 0) for t in threads)
    generated = captured + sum(s.overruns_by_thread.get(t, 0) for t in threads)
    n = cpu_ns / 1e9 * 100
    assert within_three_se_of_one(generated, n), (captured, generated, n, s.stats)
    if timer != "perf":
        # Never above (phase: +1 a thread). The per-thread timer counts the thread's own
        # CPU clock, the one cpu_ns reads; perf's task-clock is another clock (its
        # hrtimer, restarted at each switch-in), which one CI run found 1.2 % above the
        # thread clock: perf is held to the 3-SE check only, until that is understood.
        assert captured <= n + len(threads), (captured, n)
    for (stack, thread), _count in s.profile.samples.items():
        if thread in threads:
            assert [f.function for f in stack] == [NATIVE], stack
    assert s.stats["native_threads"] >= 2
    assert s.stats["native_thread_samples"] >= captured
    assert s.stats["timers_created"] == s.stats["timers_deleted"]
    # their CPU is counted (up to the last scan that saw each alive)
    assert s.stats["cpu_seconds"] >= 0.8 * cpu_ns / 1e9, (s.stats["cpu_seconds"], cpu_ns)


@needs_c
@pytest.mark.real
def test_a_new_native_thread_gets_its_timer_within_the_watch_period(spin_threads):
    # A thread is unsampled until it is registered. The reader used to find native
    # threads only at its scan, once a period (100 ms): up to 100 ms per thread (each
    # trial here starts just after a scan, and measured 98-101 ms). Now it watches
    # /proc/self/task every 10 ms, without the GIL, between drains.
    from realprof.reader import WATCH_PERIOD_S

    lib = load(spin_threads)
    latencies = []
    with Sampler(rate_hz=100, timer="per-thread") as s:
        for _ in range(8):
            before = set(s._ext.native_threads())
            assert lib.start_spinners(1, 1) == 0  # created, waiting for go_spinners
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.0:
                if set(s._ext.native_threads()) - before:
                    break
                time.sleep(0.001)  # the GIL is free for the reader meanwhile
            latencies.append(time.monotonic() - t0)
            lib.go_spinners()
            lib.join_spinners()
    assert max(latencies) < 4 * WATCH_PERIOD_S, latencies


@needs_c
def test_native_threads_are_registered_with_the_process_timer_too(spin_threads):
    lib = load(spin_threads)
    with Sampler(rate_hz=100, timer="process") as s:
        assert lib.start_spinners(1, 1) == 0
        time.sleep(0.3)
        found = dict(s._ext.native_threads())
        lib.go_spinners()
        lib.join_spinners()
    assert [name for name in found.values() if name == "spinner"] == ["spinner"], found
    assert s.stats["timers_created"] == 0  # the process timer only


# ----- record: --timer both, numpy -----------------------------------------------------

SPIN_TARGET = textwrap.dedent(
    """
    import ctypes, sys, time
    lib = ctypes.CDLL(sys.argv[1])
    lib.start_spinners.argtypes = [ctypes.c_int, ctypes.c_longlong]
    lib.spin_short.argtypes = [ctypes.c_int, ctypes.c_longlong]
    if sys.argv[2] == "pool":
        lib.start_spinners(2, 1_000_000_000)
        time.sleep(0.3)
        lib.go_spinners()
        lib.join_spinners()
    else:
        lib.spin_short(int(sys.argv[3]), 30_000_000)
    """
)


@needs_c
@pytest.mark.real
def test_both_timers_capture_is_not_above_one_with_native_threads(spin_threads, tmp_path):
    """Was 107 % on a numpy program: process-timer samples on native threads counted,
    their CPU not; now they have their own timers and SI_KERNEL there is a duplicate."""
    (tmp_path / "target.py").write_text(SPIN_TARGET)
    result = run_realprof(
        "record", "--timer", "both", "target.py", str(spin_threads), "pool", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    in_profile, expected = capture_of(result.stderr)
    assert in_profile <= expected + 2, result.stderr
    assert within_three_se_of_one(in_profile, expected), result.stderr


NUMPY_TARGET = textwrap.dedent(
    """
    import time
    import numpy as np
    a = np.random.default_rng(1).random((600, 600))
    end = time.process_time() + 3.0
    while time.process_time() < end:
        a = (a @ a) / 600.0
    """
)


@needs_c
@pytest.mark.real
@pytest.mark.slow
@pytest.mark.parametrize("timer", ["per-thread", "both"])
def test_numpy_openblas_threads_are_sampled(tmp_path, timer):
    try:
        import numpy  # noqa: F401
    except ImportError:
        pytest.skip("numpy is not installed: pip install numpy (for the OpenBLAS pool test)")
    (tmp_path / "target.py").write_text(NUMPY_TARGET)
    result = run_realprof(
        "record",
        "--timer",
        timer,
        "-o",
        "out.folded",
        "target.py",
        cwd=tmp_path,
        env_extra={"OPENBLAS_NUM_THREADS": "2"},
    )
    assert result.returncode == 0, result.stderr
    in_profile, expected = capture_of(result.stderr)
    # The pool's threads are found within the reader's watch period (10 ms) of their
    # start, so their CPU is sampled (before the watch, only the scan every 100 ms found
    # them: per-thread 97.5 %, and `both` could count a sample twice in that window).
    # Never above: a per-thread timer's random first expiry adds at most one sample per
    # thread (the main thread and OpenBLAS's worker: OPENBLAS_NUM_THREADS=2 counts the
    # caller as one of the two).
    assert in_profile <= expected + 2, result.stderr
    assert within_three_se_of_one(in_profile, expected), result.stderr
    folded = (tmp_path / "out.folded").read_text()
    assert "[native code: " in folded, folded[:2000]


# ----- the hints -----------------------------------------------------------------------


def test_record_hints_each_on_made_up_numbers():
    quiet = dict(hz=100, timer="per-thread", samples=1000, process_cpu=10.0)
    stats = {"timer_overruns": 0, "cpu_seconds": 9.9, "reader_cpu_seconds": 0.05}
    assert record_hints(stats, **quiet) == []
    rate = record_hints({**stats, "timer_overruns": 3522}, **{**quiet, "hz": 1000})
    assert len(rate) == 1 and "--timer perf" in rate[0], rate
    assert record_hints(stats, **{**quiet, "hz": 1000, "timer": "perf", "samples": 10_000}) == []
    untimed = record_hints({**stats, "cpu_seconds": 6.0}, **quiet)
    assert len(untimed) == 1 and "--timer both" in untimed[0], untimed
    assert record_hints({**stats, "cpu_seconds": 6.0}, **{**quiet, "timer": "both"}) == []
    busy = record_hints(stats, **quiet, run_delay=5.0)
    assert len(busy) == 1 and "busy" in busy[0], busy
    children = record_hints(stats, **quiet, children_cpu=1.5)
    assert len(children) == 1 and "--follow-children" in children[0], children
    assert record_hints(stats, **quiet, children_cpu=1.5, followed_children=True) == []
    full = record_hints(
        {**stats, "samples_lost_overflow": 500}, **quiet, buffer_words=4096, mean_depth=10.0
    )
    assert len(full) == 1 and "--buffer-words 65536" in full[0], full
    # 4096 words + 500 lost records of 24 words = 16,096 words: one 64 Ki-word step.
    bigger = record_hints(
        {**stats, "samples_lost_overflow": 5000}, **quiet, buffer_words=131072, mean_depth=30.0
    )
    assert len(bigger) == 1 and "--buffer-words 458752" in bigger[0], bigger
    assert record_hints(stats, **quiet, buffer_words=4096, mean_depth=10.0) == []


# A C call that holds the GIL (builtin sum over a range never checks the eval breaker)
# under `depth` Python frames: the reader thread cannot drain the ring meanwhile.
GIL_HOLD_TARGET = textwrap.dedent(
    """
    import sys, time
    def down(n, count):
        if n == 0:
            return sum(range(count))
        return down(n - 1, count)
    # Sized on this machine: the fastest of five sums over 10**6 ints, then as many as
    # `seconds` of CPU take. One timing can run slow (a CI run's took 1.7 times the steady
    # rate and held the GIL 1.4 s of 2.5); the fastest errs, if at all, toward a longer hold.
    def one_million():
        t0 = time.thread_time()
        sum(range(10**6))
        return time.thread_time() - t0
    per_million = max(min(one_million() for _ in range(5)), 1e-4)
    down(int(sys.argv[1]), int(float(sys.argv[2]) / per_million * 10**6))
    """
)


def lost_overflow_of(stderr: str) -> int:
    """Samples the record summary says a full ring lost (its `lost N (...)` part)."""
    assert re.search(r", lost [\d,]+(?: \([^)]*\))?, in profile", stderr), stderr
    m = re.search(r"([\d,]+) ring buffer full", stderr)
    return int(m.group(1).replace(",", "")) if m else 0


@needs_c
@pytest.mark.real
def test_a_full_ring_is_named_and_the_size_it_suggests_is_enough(tmp_path):
    (tmp_path / "target.py").write_text(GIL_HOLD_TARGET)
    # 26 target frames and realprof's 10 below them make 76-word records (4 + 2 per
    # frame): 1,024 words hold 13 of them, 0.05 s at 250 Hz, against 0.4 s held.
    args = ("--hz", "250", "--timer", "per-thread", "target.py", "24", "0.4")
    small = run_realprof("record", "--buffer-words", "1024", *args, cwd=tmp_path)
    assert small.returncode == 0, small.stderr
    assert lost_overflow_of(small.stderr) > 0, small.stderr
    hint = [h for h in hints_of(small.stderr) if "full ring buffer" in h]
    assert len(hint) == 1, small.stderr
    suggested = re.search(r"--buffer-words (\d+)", hint[0])
    assert suggested, hint
    again = run_realprof("record", "--buffer-words", suggested.group(1), *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert lost_overflow_of(again.stderr) == 0, again.stderr
    assert not any("full ring buffer" in h for h in hints_of(again.stderr)), again.stderr


def perf_refused() -> str:
    if not C_OK:
        return C_WHY
    from realprof import sampler as sampler_mod

    err, _ = sampler_mod._sampler.perf_probe(1_000_000)
    return sampler_mod.perf_refusal_message(err, False) if err else ""


@needs_c
@pytest.mark.real
def test_the_default_ring_outlasts_a_long_gil_hold_at_1000_hz(tmp_path):
    # 60 target frames and realprof's 10 are cut at --max-depth 64: 132-word records, of
    # which Go's 131,072 words hold 992, 1 s at 1000 Hz. This call holds the GIL for 2.5 s
    # (lost ~1,500 samples before the default grew with the rate); the rate-scaled
    # default holds 10 s.
    why = perf_refused()
    if why:
        pytest.skip(f"perf events refused here: {why}")
    (tmp_path / "target.py").write_text(GIL_HOLD_TARGET)
    result = run_realprof(
        "record",
        "--hz",
        "1000",
        "--timer",
        "perf",
        "target.py",
        "58",
        "2.5",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert lost_overflow_of(result.stderr) == 0, result.stderr
    # The samples taken inside the hold (`down` on top), all kept, are more than Go's
    # ring holds. Counting them does not ask the hold to reach its 2.5 s, which rests on
    # the target's sizing, nor counts start-up CPU as `expected` and the profile do.
    held = read_profile(tmp_path / "realprof.pb.gz").by_function().get("target.down", 0)
    assert held > 131_072 // (4 + 2 * 64), (held, result.stderr)


HOT_TARGET = textwrap.dedent(
    """
    import subprocess, sys, time
    def hot(seconds):
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
    if sys.argv[1:] == ["child"]:
        subprocess.run([sys.executable, "-c",
                        "import time\\nend = time.process_time() + 0.3\\n"
                        "while time.process_time() < end: pass"], check=True)
    hot(1.0)
    """
)


@needs_c
@pytest.mark.real
def test_rate_above_the_tick_hints_at_the_perf_timer(tmp_path):
    (tmp_path / "target.py").write_text(HOT_TARGET)
    result = run_realprof("record", "--hz", "5000", "target.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hints = hints_of(result.stderr)
    assert any("--timer perf" in h for h in hints), result.stderr


@needs_c
@pytest.mark.real
def test_short_lived_native_threads_hint_at_the_process_timer(spin_threads, tmp_path):
    (tmp_path / "target.py").write_text(SPIN_TARGET)
    args = ("target.py", str(spin_threads), "short", "20")
    result = run_realprof("record", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert any("--timer both" in h for h in hints_of(result.stderr)), result.stderr
    both = run_realprof("record", "--timer", "both", *args, cwd=tmp_path)
    assert not any("--timer both" in h for h in hints_of(both.stderr)), both.stderr


@needs_c
@pytest.mark.real
def test_a_busy_machine_is_named(tmp_path):
    if not hasattr(os, "sched_setaffinity") or not Path("/proc/self/schedstat").exists():
        pytest.skip("needs sched_setaffinity and schedstats")
    cpu = min(os.sched_getaffinity(0))
    (tmp_path / "target.py").write_text(HOT_TARGET)
    rival = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    try:
        result = run_realprof(
            "record", "target.py", cwd=tmp_path, preexec=lambda: os.sched_setaffinity(0, {cpu})
        )
    finally:
        rival.kill()
        rival.wait()
    assert result.returncode == 0, result.stderr
    assert any("machine was busy" in h for h in hints_of(result.stderr)), result.stderr


@needs_c
@pytest.mark.real
def test_children_not_followed_are_named(tmp_path):
    (tmp_path / "target.py").write_text(HOT_TARGET)
    result = run_realprof("record", "target.py", "child", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert any("--follow-children" in h for h in hints_of(result.stderr)), result.stderr
    alone = run_realprof("record", "target.py", cwd=tmp_path)
    assert not any("--follow-children" in h for h in hints_of(alone.stderr)), alone.stderr
