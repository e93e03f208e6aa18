"""go_seccomp: Go 1.17's profiler on a current Go, by denying `timer_create`.

No GODEBUG setting turns Go's per-thread profiling timers off, but the runtime has a
fallback. From Go 1.18, `setThreadCPUProfiler` gives each M a
`timer_create(CLOCK_THREAD_CPUTIME_ID)` timer and, when that call fails (any error: the
runtime's wrapper returns the negated errno and only a non-zero value is tested), leaves
`profileTimerValid` false, so the M falls back on the process-wide setitimer
([Go 1.19](https://github.com/golang/go/blob/go1.19.8/src/runtime/os_linux.go#L667-L672);
current Go, [1.27.3](https://github.com/golang/go/blob/go1.27.3/src/runtime/os_linux.go#L688-L693)).
The process-wide `setitimer(ITIMER_PROF)` is armed whatever happens
([setProcessCPUProfilerTimer, Go 1.19](https://github.com/golang/go/blob/go1.19.8/src/runtime/signal_unix.go#L279-L308)),
and `validSIGPROF` keeps an M's setitimer signals (si_code SI_KERNEL) exactly when the M
has no valid per-thread timer
([Go 1.19](https://github.com/golang/go/blob/go1.19.8/src/runtime/os_linux.go#L566-L607);
[current Go](https://github.com/golang/go/blob/go1.27.3/src/runtime/os_linux.go#L591-L632)).
So a Go whose `timer_create` fails samples with the process timer alone: Go 1.17's
profiler, the `go1.17` model. EPERM (what a container's seccomp policy answers) and
ENOSYS (a kernel without POSIX timers) take the same path; `tests/test_go_seccomp.py`
runs both.

The mechanism: `lab/go_seccomp.c`, a launcher compiled with gcc into the lab's cache
(`lab.machine.build_c`, keyed by the source's hash, like `lab.cprobe`), sets
`PR_SET_NO_NEW_PRIVS`, installs a seccomp filter that answers `timer_create` with the
chosen errno and lets every other call through, checks that the call now fails, and
execs the Go program. A filter is inherited by every thread and child and kept across
execve, and an unprivileged process must set no_new_privs first
([seccomp_filter.rst](https://github.com/torvalds/linux/blob/00ed905ab8e5622700535cd14258e447ef1e7ba9/Documentation/userspace-api/seccomp_filter.rst#L67-L75);
[seccomp(2)](https://man7.org/linux/man-pages/man2/seccomp.2.html)). A launcher and not
a `preexec_fn`: it runs in a process with one thread (Python's `preexec_fn` is unsafe
when the parent has threads, and the lab's progress bars start one), it can be run by
hand or under `strace -f -e trace=timer_create` to see the EPERM, and it refuses to exec
when the filter did not take.

Invariants: an emulated run is reported as the model it emulates (`go1.17`, timer
`process`) with the real Go version and the denied call in its notes; only the
emulations in `EMULATIONS` exist, and a name outside it is one clear error. The
emulation is a field of the Go run (`lab.go_variant.GoVariant`), so any release can run
under it, keyed by both ("go1.19-as-go1.17").
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from lab.go_toolchain import GoWorldError
from lab.machine import build_c

SOURCE = Path(__file__).with_name("go_seccomp.c")
# The errno the filter answers with: a seccomp policy's and a kernel without the call's.
ERRNOS = {"EPERM": errno.EPERM, "ENOSYS": errno.ENOSYS}


@dataclass(frozen=True)
class Emulation:
    """An older Go's profiler obtained from a current Go by denying one system call."""

    name: str  # the Go release whose profiler it gives, e.g. "go1.17"
    denied: str  # the system call the filter denies
    runtime: str  # the model runtime that predicts it
    timer: str  # the timer that model arms

    def note(self, version: str, errno_name: str) -> str:
        """The report's first note: what ran, and why it is the emulated model."""
        return (
            f"{version} with {self.denied} denied ({errno_name}) by a seccomp filter "
            "(lab/go_seccomp.c): setThreadCPUProfiler finds no per-thread timer and "
            "validSIGPROF keeps the process-wide setitimer's signals "
            f"(src/runtime/os_linux.go): compare with the {self.runtime} model"
        )


EMULATIONS = {"go1.17": Emulation("go1.17", "timer_create", "go1.17", "process")}


def emulation(name: str) -> Emulation:
    """The emulation called `name`; a GoWorldError naming the ones there are otherwise."""
    try:
        return EMULATIONS[name]
    except KeyError:
        raise GoWorldError(
            f"no emulation {name!r}; there is {', '.join(sorted(EMULATIONS))} "
            "(a current Go with timer_create denied)"
        ) from None


def emulates(cell: tuple[str, int, int, str]) -> bool:
    """Whether the grid runs the emulated Go in `cell`: native process-timer cells."""
    workload, _, _, timer = cell
    return workload == "native" and timer == "process"


def build() -> Path:
    """The compiled launcher, built once per version of its source."""
    return build_c(SOURCE, "go-seccomp", ("-O2", "-Wall"), GoWorldError, "the go1.17 emulation")


def launcher(which: Emulation, errno_name: str = "EPERM") -> list[str]:
    """The command prefix that runs a program under the emulation's filter."""
    if errno_name not in ERRNOS:
        raise GoWorldError(f"errno {errno_name!r}: the filter answers {' or '.join(ERRNOS)}")
    return [str(build()), which.denied, str(ERRNOS[errno_name])]
