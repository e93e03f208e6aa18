"""Thread programs built from a scenario's workload.

Each thread group becomes `count` threads that repeat the group's program until the run
ends. A `run` or `native` step burns CPU in a named function with `depth` frames on the
stack; a `sleep_ms` step leaves the CPU, and so does a `syscall_ms` step, a blocking
system call or a cgo call that waits (Go's M stays in it, not parked: `sim.suspend`).
The stack a sample captures is synthetic but shaped like a real one: the leaf is the
step's function, the root is the group's entry function, and the frames between are
numbered callers, so truncation at the runtime's maximum depth (Go: 64 frames,
`maxCPUProfStack` in src/runtime/cpuprof.go) keeps the leaf end exactly as a real
unwinder does.

In Go runtimes every `go` thread is an M running one goroutine, which its `run` steps
need a P for when `workload.gomaxprocs` caps the Ps (`sim.gosched`; without a cap the
kernel time-slices the goroutines as threads, which Go does not); `external` threads
are threads Go did not create (cgo-created), which Go samples through its extra buffer.
Go records such a sample as two PCs, the interrupted C function and `_ExternalCode`
(src/runtime/proc.go `sigprofNonGoPC`), so their stacks have two frames.

In the Python runtimes a `run` step executes bytecode and needs the GIL; a `native` step
is C code that released it. The first thread of the first group is the main thread: the
only one on which CPython runs Python-level signal handlers.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.profile import Frame
from contract.runtimes import RUNTIMES
from contract.scenario import PYTHON_RUNTIMES, NativeStep, RunStep, Scenario, SleepStep

EXTERNAL_CODE_FRAME = Frame("runtime._ExternalCode")
# The leaf a sample of an M blocked in a system call shows (Windows only: elsewhere no
# timer fires for a thread off the CPU). Go 1.19 on Windows makes its calls through
# syscall.SyscallN and runtime.cgocall, whose entersyscall saves its caller's pc and sp
# (reentersyscall(getcallerpc(), ...)); sigprof unwinds from those, so the leaf is
# runtime.cgocall with syscall.SyscallN below it (src/runtime/cgocall.go, proc.go).
SYSCALL_FUNCTION = "runtime.cgocall"
SYSCALL_CALLER = "syscall.SyscallN"


@dataclass(frozen=True, slots=True)
class Op:
    """One step of a thread program, in simulator units."""

    kind: str  # "cpu", "sleep" or "syscall" (off the CPU, the M not parked)
    duration_ns: int
    function: str = ""
    stack: tuple[Frame, ...] = ()  # leaf first, already truncated
    needs_gil: bool = False
    bytecode: bool = False  # Python code: where CPython runs its deferred signal handler
    native: bool = False
    needs_p: bool = False  # Go code of a goroutine: needs a P (sim.gosched)


def make_stack(group: str, function: str, depth: int, max_depth: int) -> tuple[Frame, ...]:
    """Leaf-first synthetic stack of `depth` frames, cut to `max_depth` at the root end."""
    frames = [Frame(function, f"{group}.py")]
    for level in range(depth - 2, 0, -1):
        frames.append(Frame(f"{group}.caller{level}", f"{group}.py"))
    if depth >= 2:
        frames.append(Frame(group, f"{group}.py"))
    return tuple(frames[:max_depth])


def thread_names(group: str, count: int) -> list[str]:
    return [group] if count == 1 else [f"{group}.{i}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class ThreadSpec:
    name: str
    group: str
    kind: str  # "go" or "external"
    program: tuple[Op, ...]
    is_main: bool


def build_threads(scenario: Scenario) -> list[ThreadSpec]:
    runtime = scenario.profiler.model
    python = runtime in PYTHON_RUNTIMES
    gil = python and not scenario.profiler.free_threaded
    go = RUNTIMES[runtime].go
    max_depth = scenario.profiler.max_depth
    specs: list[ThreadSpec] = []
    for group_index, group in enumerate(scenario.workload.threads):
        ops: list[Op] = []
        for step in group.program:
            if isinstance(step, RunStep | NativeStep):
                work = step.run if isinstance(step, RunStep) else step.native
                native = isinstance(step, NativeStep)
                if group.kind == "external":
                    stack = (Frame(work.function, f"{group.name}.c"), EXTERNAL_CODE_FRAME)[
                        :max_depth
                    ]
                else:
                    stack = make_stack(group.name, work.function, work.depth, max_depth)
                ops.append(
                    Op(
                        "cpu",
                        max(1, round(work.cpu_ms * 1e6)),
                        work.function,
                        stack,
                        needs_gil=gil and not native,
                        bytecode=python and not native,
                        native=native,
                        needs_p=go and group.kind == "go" and not native,
                    )
                )
            elif isinstance(step, SleepStep):
                ops.append(Op("sleep", max(1, round(step.sleep_ms * 1e6))))
            else:
                stack = (
                    Frame(SYSCALL_FUNCTION, "cgocall.go"),
                    Frame(SYSCALL_CALLER, "syscall_windows.go"),
                    Frame(group.name, f"{group.name}.py"),
                )[:max_depth]
                ops.append(
                    Op("syscall", max(1, round(step.syscall_ms * 1e6)), SYSCALL_FUNCTION, stack)
                )
        for index, name in enumerate(thread_names(group.name, group.count)):
            specs.append(
                ThreadSpec(
                    name=name,
                    group=group.name,
                    kind=group.kind,
                    program=tuple(ops),
                    is_main=group_index == 0 and index == 0,
                )
            )
    return specs
