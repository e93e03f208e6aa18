"""``timer="perf"``: a per-thread perf_event task-clock event samples above the tick.

Every timer Go uses on Linux is checked at the kernel tick, so a thread gets at most
CONFIG_HZ signals a second however high the rate (golang/go #42502). A software
task-clock perf event ends its periods with an hrtimer instead; its overflow reaches the
owning thread as SIGPROF (F_SETSIG, F_SETOWN_EX/F_OWNER_TID). These tests run the three
timers on the same workload in one process, check the funnel in perf mode, and force the
kernel to refuse the event (a seccomp filter in a child process) to check the message.

Tolerances: a perf sample is one period of thread CPU, counted by the kernel to the
nanosecond, so the capture is exact up to the samples still in flight at stop and the
CPU that is not the workers' (main thread, handler time outside the workers); the 0.97
floor of the issue leaves about 100 samples of room at 4,000 expected. The tick-limited
timers cannot exceed HZ per thread: 2 threads x HZ 250 / (2 x 1000) = 0.25 for
per-thread, less for the process timer (kernel/signal.c legacy_queue).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sampler_checks import signals_accounted

from realprof import sampler as sampler_mod
from realprof.sampler import PerfEventUnavailable, Sampler, c_handler_available

ROOT = Path(__file__).resolve().parent.parent
C_OK, C_WHY = c_handler_available()
_sampler = sampler_mod._sampler

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not C_OK, reason=f"C handler unavailable: {C_WHY}"),
]


def _perf_allowed() -> tuple[bool, str]:
    if not C_OK:
        return False, C_WHY
    err, _ = _sampler.perf_probe(1_000_000)
    if err:
        return False, sampler_mod.perf_refusal_message(err, False)
    return True, ""


PERF_OK, PERF_WHY = _perf_allowed()
needs_perf = pytest.mark.skipif(not PERF_OK, reason=f"perf events refused here: {PERF_WHY}")


def _native_threads(n: int, cpu_ns: int) -> dict[int, int]:
    cpu: dict[int, int] = {}

    def work(k: int) -> None:
        t0 = time.thread_time_ns()
        _sampler.spin_native(cpu_ns)
        cpu[k] = time.thread_time_ns() - t0

    threads = [threading.Thread(target=work, args=(k,), name=f"spin-{k}") for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return cpu


def _run(timer: str, rate_hz: float, n: int = 2, cpu_s: float = 2.0) -> dict:
    s = Sampler(rate_hz=rate_hz, timer=timer)
    s.start()
    cpu = _native_threads(n, int(cpu_s * 1e9))
    profile = s.stop()
    expected = sum(cpu.values()) / 1e9 * rate_hz
    return {
        "stats": s.stats,
        "expected": expected,
        "profile_samples": profile.total_samples,
        "capture": profile.total_samples / expected,
        "by_thread": profile.by_thread(),
    }


@needs_perf
def test_perf_samples_above_the_tick_where_the_tick_timers_cannot():
    # The acceptance: two busy native threads at 1000 Hz, the three timers in
    # the same run: perf >= 97 %, the process and per-thread timers <= 30 %.
    results = {timer: _run(timer, 1000) for timer in ("perf", "per-thread", "process")}
    perf = results["perf"]
    assert perf["capture"] >= 0.97, perf
    assert perf["capture"] <= 1.02, perf  # no sample without the CPU it stands for
    assert results["per-thread"]["capture"] <= 0.30, results["per-thread"]
    assert results["process"]["capture"] <= 0.30, results["process"]
    # Per thread as well: each spinning thread got about half (2 s each).
    shares = sorted(c for name, c in perf["by_thread"].items() if name.startswith("spin-"))
    assert len(shares) == 2
    assert shares[0] >= 0.45 * perf["profile_samples"]


@needs_perf
def test_perf_funnel_balances_and_counts_its_overflows():
    r = _run("perf", 2000, n=1, cpu_s=1.0)
    st = r["stats"]
    assert st["signals_delivered"] == signals_accounted(st)
    assert st["samples_recorded"] == st["reader_records"] == r["profile_samples"]
    # No POSIX timer, so no overruns; the kernel's own count of overflows (read from
    # each event at close) bounds what was delivered, and the two nearly agree: one
    # thread at 2000 Hz leaves each signal 500 us to be handled before the next. On the
    # quiet machine they differ by 0-6 of 2,000; with other jobs running, by up to ~1 %
    # (an overflow whose signal is still pending when the next comes is lost).
    assert st["timer_overruns"] == 0
    assert st["perf_overflows"] >= st["signals_delivered"] - 1
    assert st["perf_overflows"] - st["signals_delivered"] <= 0.03 * st["perf_overflows"]
    assert st["timers_created"] == st["timers_deleted"] >= 2  # main + worker at least
    assert _sampler.timers_armed() == 0
    assert _perf_fds() == 0


def _perf_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "perf_event" in os.readlink(f"/proc/self/fd/{fd}"):
                n += 1
        except OSError:
            pass
    return n


def _child(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def test_a_refused_perf_event_gets_a_clear_error():
    # seccomp makes the kernel itself answer perf_event_open with EACCES, as it does
    # under perf_event_paranoid=3 or in a container that forbids the call.
    proc = _child(
        """
        from realprof import sampler as sm
        from realprof.sampler import Sampler, PerfEventUnavailable
        sm._sampler.deny_perf_event_open()
        s = Sampler(rate_hz=1000, timer="perf")
        try:
            s.start()
        except PerfEventUnavailable as exc:
            print("REFUSED", exc)
            print("MODE", sm._sampler.mode(), "ARMED", sm._sampler.timers_armed())
        else:
            print("STARTED")
            s.stop()
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "REFUSED the kernel refused a perf_event task-clock event (EACCES)" in out
    assert "perf_event_paranoid" in out and "--timer per-thread" in out
    assert "MODE 0 ARMED 0" in out  # nothing left half-started


def test_the_record_command_reports_a_refused_perf_event_in_one_line(tmp_path):
    script = tmp_path / "work.py"
    script.write_text("sum(range(1000))\n")
    proc = _child(
        f"""
        import sys
        from realprof import _sampler
        _sampler.deny_perf_event_open()
        from realprof.__main__ import main
        sys.exit(main(["record", "--timer", "perf", "-o", {str(tmp_path / "p.pb.gz")!r},
                       {str(script)!r}]))
        """
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "perf_event" in lines[0] and "Traceback" not in proc.stderr


def test_timer_perf_is_a_listed_choice():
    assert "perf" in sampler_mod.TIMERS
    with pytest.raises(ValueError, match="perf"):
        Sampler(timer="perf-event")


def test_perf_refusal_messages_name_the_cause():
    import errno

    msg = sampler_mod.perf_refusal_message(errno.ENOENT, False)
    assert "CONFIG_PERF_EVENTS" in msg and "--timer per-thread" in msg
    msg = sampler_mod.perf_refusal_message(errno.EMFILE, False)
    assert "ulimit -n" in msg


@needs_perf
def test_perf_events_survive_fork_and_leave_none_in_the_child():
    proc = _child(
        """
        import os, threading
        from realprof import sampler as sm
        from realprof.sampler import Sampler
        s = Sampler(rate_hz=1000, timer="perf")
        s.start()
        sm._sampler.spin_native(200_000_000)
        pid = os.fork()
        if pid == 0:
            fds = 0
            for f in os.listdir("/proc/self/fd"):
                try:
                    fds += "perf_event" in os.readlink("/proc/self/fd/" + f)
                except OSError:
                    pass
            os._exit(10 + fds + (sm._sampler.timers_armed() > 0) * 50)
        _, status = os.waitpid(pid, 0)
        before = sm._sampler.stats()["handler_entries"]
        sm._sampler.spin_native(200_000_000)
        after = sm._sampler.stats()["handler_entries"]
        s.stop()
        print("CHILD", os.waitstatus_to_exitcode(status), "AFTER_FORK", after - before)
        """
    )
    assert proc.returncode == 0, proc.stderr
    fields = proc.stdout.split()
    assert fields[0] == "CHILD" and fields[1] == "10", proc.stdout  # no fd, no timer
    # The parent's events were re-enabled: 0.2 s at 1000 Hz is ~200 samples.
    assert int(fields[3]) >= 150, proc.stdout


def test_perf_exception_type_is_a_runtime_error():
    assert issubclass(PerfEventUnavailable, RuntimeError)
