"""The sampler's words to its user: why the kernel refused a perf event, and what went
wrong with a run's sampling.

`realprof.sampler` raises `PerfEventUnavailable` with `perf_refusal_message`, and puts
`taken_over_reasons` in ``stats["sigprof_taken_over"]``; `integrity_notes` turns a
run's ``stats`` into the warnings `realprof record` prints and a real-world report
keeps; `record_hints` says, one line each with the option that helps, why a run's
profile holds less than the program did (rate above the tick, threads never timed, a
full ring buffer, a busy machine, child processes); `capture_comment` is the line a
written profile keeps about the CPU its samples stand for, and `open_hint` says what
opens a written file. Pure functions of their arguments (and of
``/proc/sys/kernel/perf_event_paranoid``); `run_delay_seconds` reads ``/proc``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "capture_comment",
    "integrity_notes",
    "mean_depth",
    "open_hint",
    "perf_refusal_message",
    "record_hints",
    "run_delay_seconds",
    "taken_over_reasons",
]


def perf_refusal_message(err: int, exclude_kernel: bool) -> str:
    """One line: why the kernel refused a task-clock perf event, and what to do."""
    name = errno.errorcode.get(err, str(err))
    try:
        paranoid = Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip()
    except OSError:
        paranoid = "unknown"
    if err in (errno.EACCES, errno.EPERM):
        why = (
            f"the kernel refused a perf_event task-clock event ({name}): "
            f"kernel.perf_event_paranoid is {paranoid}, and a seccomp policy or a container "
            "may forbid perf_event_open too; sampling your own threads needs "
            "perf_event_paranoid <= 2 (or CAP_PERFMON)"
        )
    elif err in (errno.ENOENT, errno.ENODEV, errno.ENOSYS, errno.EOPNOTSUPP):
        why = f"this kernel has no perf_event task clock ({name}: CONFIG_PERF_EVENTS off?)"
    elif err in (errno.EMFILE, errno.ENFILE):
        why = f"no file descriptor left for a perf event ({name}; raise `ulimit -n`)"
    else:
        why = f"perf_event_open failed: {name} ({os.strerror(err)})"
    return f"{why}; use --timer per-thread (tick-limited) instead"


def taken_over_reasons(bits: int) -> list[str]:
    """The C side's ``sigprof_taken_over`` bits, in words."""
    reasons = []
    if bits & 1:
        reasons.append("the program installed its own SIGPROF handler")
    if bits & 2:
        reasons.append("the program armed ITIMER_PROF")
    return reasons


# (stats key, the sentence when that count is nonzero), in the order they are told.
_INTEGRITY_NOTES: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    (
        "sigprof_taken_over",
        lambda stats: (
            "sampling stopped early: "
            + " and ".join(stats["sigprof_taken_over"])
            + "; SIGPROF and ITIMER_PROF are one per process, so the profile covers only "
            "the time before that"
        ),
    ),
    (
        "perf_events_closed",
        lambda stats: (
            f"the program closed the perf events of {stats['perf_events_closed']} "
            "thread(s) (os.closerange or similar): those threads were not sampled from then on"
        ),
    ),
    (
        "stacks_unguarded",
        lambda stats: (
            f"{stats['stacks_unguarded']} sample(s) lost their stack while another "
            "SIGSEGV handler stood in front of the sampler's fault guard (faulthandler.enable() "
            "after start: the guard is put back at the next drain)"
        ),
    ),
    (
        "quiesce_abandoned",
        lambda stats: (
            f"{stats['quiesce_abandoned']} time(s) a signal handler on a stalled "
            "thread did not finish within 2 s of stop or exec: its sample, if any, is not counted"
        ),
    ),
    (
        "reader_stalls",
        lambda stats: (
            f"the reader waited in vain {stats['reader_stalls']} time(s) for a "
            "record a stalled thread had reserved; code objects freed meanwhile were named from "
            f"copies ({stats.get('dead_code_after_stall', 0)} frame(s))"
        ),
    ),
)


def integrity_notes(stats: dict[str, Any]) -> list[str]:
    """What went wrong with the sampling itself, one sentence each (empty when nothing):
    losses a user must hear about, for `record`'s summary and a report's notes."""
    return [sentence(stats) for key, sentence in _INTEGRITY_NOTES if stats.get(key)]


def run_delay_seconds() -> float:
    """Time this process's live threads spent runnable but waiting for a CPU (the
    scheduler's run_delay, second field of ``/proc/self/task/*/schedstat``); 0.0 where
    the kernel keeps no schedstats."""
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            fields = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
            total += int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def mean_depth(profile: Any) -> float:
    """Frames per sample in ``profile`` (a ``contract.profile.Profile``), 0.0 if empty."""
    total = profile.total_samples
    if not total:
        return 0.0
    return sum(len(stack) * count for (stack, _), count in profile.samples.items()) / total


def record_hints(
    stats: dict[str, Any],
    *,
    hz: float,
    timer: str,
    samples: int,
    process_cpu: float,
    run_delay: float = 0.0,
    children_cpu: float = 0.0,
    followed_children: bool = False,
    buffer_words: int = 0,
    mean_depth: float = 0.0,
) -> list[str]:
    """Why the profile may hold less than the program did, one line each with the option
    that helps. ``process_cpu`` is the run's process CPU (all threads), ``run_delay`` the
    seconds its threads waited for a CPU, ``children_cpu`` the CPU of reaped children,
    ``buffer_words`` the ring's capacity and ``mean_depth`` the profile's mean stack
    depth (for the size to suggest)."""
    hints = []
    lost_overflow = stats.get("samples_lost_overflow") or 0
    if lost_overflow and buffer_words:
        # A record is 4 header words and 2 per frame (realprof/_sampler.c). The ring
        # overflows while the reader waits for the GIL, so it needs room for the samples
        # of the longest wait: the ones it held plus the ones lost, rounded up.
        record_words = 4 + 2 * max(mean_depth, 1.0)
        suggested = buffer_words + int(lost_overflow * record_words)
        suggested = -(-suggested // 65536) * 65536
        hints.append(
            f"{lost_overflow:,} samples lost to a full ring buffer ({buffer_words:,} words): "
            "the reader thread drains it only when it gets the GIL, and C code that holds "
            "the GIL (a long parse, regex or extension call) kept it waiting; use "
            f"--buffer-words {suggested} (or a lower --hz)"
        )
    expected = process_cpu * hz
    capture = samples / expected if expected else 1.0
    overruns = stats.get("timer_overruns") or 0
    if timer != "perf" and expected >= 20 and capture < 0.9 and (overruns or hz > 250):
        hints.append(
            f"asked {hz:g} Hz, got {capture:.0%} of the samples ({overruns:,} timer "
            "overruns): per-thread and process timers fire on the kernel's tick (CONFIG_HZ, "
            "often 250 Hz), and the profile's CPU total is short by as much; use --timer perf "
            "(an hrtimer, above the tick) or a lower --hz"
        )
    reader = stats.get("reader_cpu_seconds") or 0.0
    untimed = process_cpu - (stats.get("cpu_seconds") or 0.0) - reader
    if timer in ("per-thread", "perf") and untimed > max(0.1 * process_cpu, 0.05):
        hints.append(
            f"{untimed:.2f} s of the process's CPU ({untimed / process_cpu:.0%}) ran on "
            "threads no timer covered (threads too short-lived for the reader to find: it "
            "looks every 10 ms): use --timer both (the process timer samples any thread)"
        )
    if run_delay > max(0.2 * process_cpu, 0.1):
        hints.append(
            f"the machine was busy: the program's threads waited {run_delay:.2f} s for a CPU "
            f"(run queue) besides the {process_cpu:.2f} s they ran; samples still follow CPU "
            "time, but wall times stretch and tick timers overrun: profile on a quieter "
            "machine, or give the program its own CPUs (taskset -c)"
        )
    if children_cpu > 0.01 and not followed_children:
        hints.append(
            f"child processes ran unprofiled ({children_cpu:.2f} s of CPU not in this "
            "profile): --follow-children profiles Python children"
        )
    return hints


def capture_comment(profile: Any, process_cpu_s: float) -> str:
    """One line for the profile's comments: the CPU this process used while sampled,
    the CPU its samples account for (samples × period), and the ratio."""
    sampled_s = profile.total_samples / profile.rate_hz if profile.rate_hz else 0.0
    ratio = f"{sampled_s / process_cpu_s:.1%}" if process_cpu_s > 0 else "—"
    return (
        f"realprof: process CPU {process_cpu_s:.3f} s while sampled; the samples account "
        f"for {sampled_s:.3f} s ({ratio})"
    )


def open_hint(path: str, fmt: str) -> str:
    # `realprof flame` needs nothing installed; the others are named only as options.
    flame = f"python -m realprof flame {path} -o flame.html"
    if fmt == "pprof":
        return f"open with: {flame} / go tool pprof -top {path}"
    if fmt == "folded":
        return f"open with: {flame} / flamegraph.pl {path} > flame.svg"
    return f"open with: {flame} (or drop it on https://www.speedscope.app)"
