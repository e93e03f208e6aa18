"""The plan of a Go world program: a Go name for everything the scenario names.

`make_plan` reads a scenario's workload once and decides every identifier the generated
program (`lab.go_program`) will contain and how each maps back to the scenario, so that
code generation and attribution (`lab.go_report`) agree on them:

* a leaf function per `run` or `native` step function of the `go` groups, named after
  the scenario's function (`main.compute` becomes `compute`, which Go prints as
  `main.compute`; other names are sanitised), taken first because those are the names
  the learner looks for in the profile;
* per `go` group, an entry function named after the group and `depth - 2` callers
  `{entry}_callerK`, the stack shape `sim.workload.make_stack` gives the simulator;
* per `native` leaf, the C function it calls (`lab_cN`), and per external thread and
  `run`/`native` step, a C spin function (`labx_{thread}_{step}`) whose address range
  tells thread and step apart in a sample.

Reserved words, predeclared identifiers, imported package names and the program's own
helpers (all starting with `lab`) never name a generated function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from contract.scenario import NativeStep, RunStep, Scenario, SleepStep, SyscallStep
from sim.workload import thread_names

# Go keywords, predeclared identifiers, the packages the program imports, and names
# the language or cgo give a meaning: none may name a generated function.
_GO_RESERVED_WORDS = """
break case chan const continue default defer else fallthrough for func go goto if import
interface map package range return select struct switch type var
any bool byte comparable complex64 complex128 error float32 float64 int int8 int16 int32
int64 rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil append cap
clear close complex copy delete imag len make max min new panic print println real recover
C context flag fmt json os pprof runtime sync atomic syscall time unsafe main init _
"""
_GO_RESERVED = frozenset(_GO_RESERVED_WORDS.split())


class _Names:
    """Unique Go identifiers; the program's own helpers all start with `lab`."""

    def __init__(self) -> None:
        self.taken: set[str] = set(_GO_RESERVED)

    def take(self, wanted: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", wanted) or "f"
        if base[0].isdigit() or base.startswith(("lab", "_C", "_cgo")):
            base = "u_" + base
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name


def _function_ident(function: str) -> str:
    """`main.compute` -> `compute`: the name Go will print as `main.compute`."""
    return function[len("main.") :] if function.startswith("main.") else function


@dataclass
class Step:
    """One step of a group's program: spin for `ns` of thread CPU time, or sleep `ns`."""

    kind: str  # "spin" or "sleep"
    ns: int
    fid: int = -1  # index into Plan.functions
    depth: int = 1
    leaf: str = ""  # Go identifier of the leaf (go threads)


@dataclass
class Group:
    """A thread group of the scenario and the Go names of its functions."""

    name: str
    kind: str
    threads: list[str]  # thread names, sim.workload.thread_names
    first: int  # index of the first thread among the go (or external) threads
    steps: list[Step]
    entry: str = ""  # Go identifier of the goroutine's entry function (go groups)
    callers: list[str] = field(default_factory=list)  # caller1, caller2, ...


@dataclass
class Plan:
    """Every name of the program, and the scenario function (by fid) each one stands for."""

    functions: list[str]  # scenario function names, by fid
    groups: list[Group]
    run_leaves: dict[str, int]  # Go identifier -> fid, for `run` steps
    native_leaves: dict[str, tuple[int, str]]  # Go identifier -> (fid, C function)
    go_threads: list[str]
    ext_threads: list[str]

    @property
    def cgo(self) -> bool:
        return bool(self.native_leaves or self.ext_threads)

    def ext_spin_name(self, thread: int, step: int) -> str:
        return f"labx_{thread}_{step}"

    def ext_spins(self) -> dict[str, tuple[str, str]]:
        """C spin function of each external thread's step -> (thread, scenario function)."""
        spins = {}
        for group in self.groups:
            if group.kind != "external":
                continue
            for k, thread in enumerate(group.threads):
                for i, step in enumerate(group.steps):
                    if step.kind == "spin":
                        name = self.ext_spin_name(group.first + k, i)
                        spins[name] = (thread, self.functions[step.fid])
        return spins


def make_plan(scenario: Scenario) -> Plan:
    """The names of the program that runs `scenario`'s workload (deterministic)."""
    names = _Names()
    functions: list[str] = []
    fids: dict[str, int] = {}
    run_leaves: dict[str, int] = {}
    native_leaves: dict[str, tuple[int, str]] = {}
    leaf_of: dict[tuple[str, str], str] = {}
    groups: list[Group] = []
    go_threads: list[str] = []
    ext_threads: list[str] = []

    # Leaves first: their names are what the learner looks for in the profile.
    for group in scenario.workload.threads:
        for step in group.program:
            if isinstance(step, SleepStep | SyscallStep):
                continue
            work = step.run if isinstance(step, RunStep) else step.native
            fids.setdefault(work.function, len(functions))
            if work.function not in functions:
                functions.append(work.function)
            kind = "native" if isinstance(step, NativeStep) else "run"
            if group.kind == "go" and (kind, work.function) not in leaf_of:
                ident = names.take(_function_ident(work.function))
                leaf_of[(kind, work.function)] = ident
                fid = fids[work.function]
                if kind == "run":
                    run_leaves[ident] = fid
                else:
                    native_leaves[ident] = (fid, f"lab_c{len(native_leaves)}")

    for group in scenario.workload.threads:
        threads = thread_names(group.name, group.count)
        pool = go_threads if group.kind == "go" else ext_threads
        g = Group(group.name, group.kind, threads, len(pool), [])
        pool.extend(threads)
        for step in group.program:
            if isinstance(step, SleepStep | SyscallStep):
                # On Linux a blocking call and a sleep are alike to the profiler: no
                # timer counts a thread off the CPU. Only Windows tells them apart.
                off_ms = step.sleep_ms if isinstance(step, SleepStep) else step.syscall_ms
                g.steps.append(Step("sleep", max(1, round(off_ms * 1e6))))
                continue
            work = step.run if isinstance(step, RunStep) else step.native
            kind = "native" if isinstance(step, NativeStep) else "run"
            g.steps.append(
                Step(
                    "spin",
                    max(1, round(work.cpu_ms * 1e6)),
                    fids[work.function],
                    work.depth,
                    leaf_of.get((kind, work.function), ""),
                )
            )
        if group.kind == "go":
            g.entry = names.take(group.name)
            deepest = max((s.depth for s in g.steps if s.kind == "spin"), default=0)
            g.callers = [names.take(f"{g.entry}_caller{k}") for k in range(1, deepest - 1)]
        groups.append(g)
    return Plan(functions, groups, run_leaves, native_leaves, go_threads, ext_threads)
