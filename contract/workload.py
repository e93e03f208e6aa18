"""The workload section of a scenario: what the program does.

Groups of threads, each repeating a program of steps (CPU bursts in Go or Python code,
native calls, sleeps, blocking system calls), the Go runtime's Ps (`gomaxprocs`), and the
Go runtime's own threads that wake between ticks (`runtime_wakers`, `sim.gowakers`).
Each step names its kind by its one key. The records follow `contract.scenario`'s rules:
frozen, checked only through `contract.scenario.validate_scenario`, every number with its
unit in its name.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from contract.fields import Spec, record


@record
class StepWork:
    # No docstring: the schema has no description for it (the reference page has one).
    function: str = Spec("str", min_length=1, description="Name of the leaf function in stacks.")
    cpu_ms: float = Spec("float", ge=0.001, description="CPU time the step burns (at least 1 µs).")
    depth: int = Spec("int", 3, ge=1, le=4096, description="Frames on the stack, leaf included.")


@record
class RunStep:
    run: StepWork = Spec(
        "record",
        record=StepWork,
        description="CPU time in a named function (Python code: needs the GIL).",
    )


@record
class NativeStep:
    native: StepWork = Spec(
        "record",
        record=StepWork,
        description="CPU time in native code (C without the GIL; cgo in Go).",
    )


@record
class SleepStep:
    sleep_ms: float = Spec("float", ge=0.001, description="Time off the CPU (at least 1 µs).")


@record
class SyscallStep:
    syscall_ms: float = Spec(
        "float",
        ge=0.001,
        description=(
            "Time off the CPU blocked in a system call or a cgo call that waits (at least "
            "1 µs). Go: the M keeps the goroutine and gives up its P; unlike a sleep the M "
            "is not parked, so Windows' profileLoop still samples it."
        ),
    )


Step = RunStep | NativeStep | SleepStep | SyscallStep
STEP_KINDS = ("run", "native", "sleep_ms", "syscall_ms")


def _steps_are_mappings(steps: list[Any]) -> str | None:
    """Each step names its kind by its one key; say which step does not."""
    for index, step in enumerate(steps):
        if not isinstance(step, Mapping) or len(step) != 1:
            return f"step {index} must be a mapping with exactly one of {', '.join(STEP_KINDS)}"
        (key,) = step.keys()
        if key not in STEP_KINDS:
            return f"step {index} has unknown kind {key!r}; allowed: {', '.join(STEP_KINDS)}"
    return None


@record
class ThreadGroup:
    name: str = Spec("str", min_length=1)
    count: int = Spec("int", 1, ge=1, le=4096)
    kind: str = Spec(
        "choice",
        "go",
        choices=("go", "external"),
        description="go: a thread the runtime created; external: e.g. a cgo-created thread.",
    )
    program: list[Step] = Spec(
        "list",
        item=Spec("step", variants=(RunStep, NativeStep, SleepStep, SyscallStep)),
        min_length=1,
        list_check=_steps_are_mappings,
        description="Steps repeated until the run ends.",
    )


def _gap_points_ascend(points: list[Any]) -> str | None:
    """A waker's gap distribution is read as a quantile function: it must not fall."""
    numbers = [p for p in points if isinstance(p, int | float) and not isinstance(p, bool)]
    if len(numbers) == len(points) and any(b < a for a, b in itertools.pairwise(numbers)):
        return "gap_points_ms must not decrease (they are the gaps' quantiles, smallest first)"
    return None


@record
class RuntimeWaker:
    """A thread of the Go runtime that sleeps and wakes between ticks (sim.gowakers)."""

    name: str = Spec("str", min_length=1, description="Which thread (sysmon, an idle M).")
    gap_points_ms: list[float] = Spec(
        "list",
        item=Spec("float", gt=0, le=60_000),
        min_length=2,
        list_check=_gap_points_ascend,
        description=(
            "The gaps between its wake-ups, as equally spaced quantiles from the smallest "
            "to the largest (the minimum, the 99 percentiles and the maximum, as "
            "benchmarks/go_runtime_wakes.py measures them); each gap is drawn uniformly "
            "between two neighbouring points picked at random."
        ),
    )
    run_us: float = Spec(
        "float", gt=0, le=100_000, description="CPU it runs per wake-up before it sleeps again."
    )
    victim_resumes: float = Spec(
        "float",
        0.0,
        ge=0,
        le=1,
        description=(
            "Of the busy threads it takes a CPU from, the share that get the CPU back when "
            "it sleeps again; the others wait while a thread that was queued runs (EEVDF "
            "picks by deadline, and a thread preempted for a few µs usually still has the "
            "earliest). Measured by benchmarks/go_runtime_wakes.py."
        ),
    )


@record
class Workload:
    duration_s: float = Spec("float", gt=0, le=3600, description="Length of the profiled interval.")
    threads: list[ThreadGroup] = Spec("list", item=Spec("record", record=ThreadGroup), min_length=1)
    gomaxprocs: int | None = Spec(
        "int",
        None,
        nullable=True,
        ge=1,
        le=4096,
        description=(
            "Go runtimes: Ps, so at most this many goroutines run Go code at once; the others "
            "wait in Go's run queue, off the CPU and not on an M (a goroutine in a cgo call, a "
            "system call or a sleep holds no P). null: no cap, every goroutine is a thread the "
            "kernel time-slices (a simplification; Go's own default is the CPU count)."
        ),
    )
    runtime_wakers: list[RuntimeWaker] = Spec(
        "list",
        factory=list,
        item=Spec("record", record=RuntimeWaker),
        description=(
            "Go runtimes: the runtime's own threads that wake between ticks (sysmon, Ms "
            "woken to hand a P on, the profile writer) and take a CPU from a busy thread; "
            "each switch lets a thread run its deferred timer check, or its per-thread "
            "timer's expiries pile up, away from the tick. Empty: none (the model's "
            "default). Measured for a program by benchmarks/go_runtime_wakes.py; the "
            "validation grid measures them in its session (chapter 11)."
        ),
    )

    def check_rules(self) -> str | None:
        names = [group.name for group in self.threads]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            return f"thread group names must be unique; repeated: {duplicates}"
        return None
