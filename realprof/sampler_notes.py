"""The sampler's words to its user: why the kernel refused a perf event, and what went
wrong with a run's sampling.

`realprof.sampler` raises `PerfEventUnavailable` with `perf_refusal_message`, and puts
`taken_over_reasons` in ``stats["sigprof_taken_over"]``; `integrity_notes` turns a
run's ``stats`` into the warnings `realprof record` prints and a real-world report
keeps. Pure functions of their arguments (and of ``/proc/sys/kernel/perf_event_paranoid``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["integrity_notes", "perf_refusal_message", "taken_over_reasons"]


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
