"""Scenario files: one experiment, described once, run in every world.

A scenario says what machine the profiler runs on (CPUs, the kernel's tick rate and the
calibration parameters of the kernel model), which profiler runs (a Go runtime version,
CPython's own signal module, or this project's C sampler), and what the program does
(groups of threads, each repeating a program of CPU bursts, native calls and sleeps).

The schema is strict on purpose: unknown keys are rejected, every number carries its
unit in its name, and every value the kernel model cannot know by itself (how often a
second SIGPROF in one tick round survives, which CPU tends to win a round) is a named,
documented field rather than a constant hidden in the code.

Loading never raises a traceback at a user: `load_scenario` turns every problem (a
missing file, a YAML syntax error, a wrong type, a timer the runtime cannot use) into a
`ScenarioError` whose message is one line naming the file, the field and what is
allowed. Command-line tools print it and exit with status 2.

Overrides use dotted paths (`profiler.rate_hz=250`, `workload.threads.0.count=4`) and are
applied to the raw mapping before validation, so an override is checked exactly like a
value written in the file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

RUNTIMES = ("go1.17", "go1.18", "go1.26", "go-windows", "cpython", "realprof")
TIMERS = ("process", "per-thread", "both", "suspend", "perf")

# Which timers each runtime can use, default first. Go 1.18+ on Linux always arms the
# process timer beside the per-thread ones (src/runtime/os_linux.go setThreadCPUProfiler
# keeps setitimer for threads Go did not create); "process" models a kernel where
# timer_create failed, which Go handles by quietly keeping setitimer alone. "perf" (a
# perf_event task-clock event per thread, sim/perfevents.py) is what realprof's
# `--timer perf` does; for go1.18 and go1.26 it is a hypothetical: Go does not do this
# (golang/go #42502, #53286).
RUNTIME_TIMERS: dict[str, tuple[str, ...]] = {
    "go1.17": ("process",),
    "go1.18": ("both", "process", "perf"),
    "go1.26": ("both", "process", "perf"),
    "go-windows": ("suspend",),
    "cpython": ("process",),
    "realprof": ("per-thread", "process", "both", "perf"),
}

# Runtimes whose `run` steps execute Python bytecode and therefore need the GIL.
PYTHON_RUNTIMES = ("cpython", "realprof")


class ScenarioError(Exception):
    """A scenario that cannot be used; the message is one line for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Machine(_Strict):
    """The simulated machine and the kernel model's calibration parameters."""

    cpus: int = Field(2, ge=1, le=1024, description="Number of CPUs.")
    kernel_hz: Literal[100, 250, 300, 1000] = Field(
        250, description="CONFIG_HZ: scheduler ticks per second on every CPU."
    )
    tick_skew: bool = Field(
        False,
        description=(
            "Boot option skew_tick=1: CPU n ticks n*T/(2*cpus) after CPU 0 instead of all "
            "CPUs ticking at the same instant (kernel/time/tick-sched.c)."
        ),
    )
    same_round_survival: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Chance that a second process-timer SIGPROF generated in the same tick round "
            "survives because the first was already dequeued (p in linux-sigprof.md §7). "
            "0 on bare-metal machines with aligned ticks (golang/go #35057); fit it with "
            "`realprof calibrate`."
        ),
    )
    cpu_check_bias: list[Annotated[float, Field(gt=0)]] | None = Field(
        None,
        description=(
            "Per-CPU weights for the order in which CPUs run their timer checks in a tick "
            "round: the first check of a round wins the signal. Equal weights (null) mean a "
            "fair kernel; golang/go #14434 reports 80/20 for equal work, i.e. [4, 1]."
        ),
    )
    base_slice_ms: float | None = Field(
        None,
        gt=0,
        description=(
            "Scheduler time slice. Null uses EEVDF's default 0.75 ms x (1 + ilog2(min(cpus, "
            "8))), 1.5 ms on 2 CPUs (kernel/sched/fair.c sysctl_sched_base_slice)."
        ),
    )
    perf_delivery_us: float = Field(
        3.0,
        ge=0,
        le=10_000,
        description=(
            "Timer perf: time from a perf_event overflow (its hrtimer interrupt) to the "
            "SIGPROF handler's entry on the running thread: irq_work (perf_pending_irq), "
            "send_sigio_to_task, then the return to user mode. A few µs on x86; an overflow "
            "in this window finds SIGPROF still pending and is dropped."
        ),
    )

    @model_validator(mode="after")
    def _bias_matches_cpus(self) -> Machine:
        if self.cpu_check_bias is not None and len(self.cpu_check_bias) != self.cpus:
            raise ValueError(
                f"cpu_check_bias has {len(self.cpu_check_bias)} weights; "
                f"it needs one per CPU ({self.cpus})"
            )
        return self

    @property
    def tick_ns(self) -> int:
        # TICK_NSEC = (NSEC_PER_SEC + HZ/2) / HZ  (include/linux/jiffies.h)
        return (1_000_000_000 + self.kernel_hz // 2) // self.kernel_hz

    @property
    def slice_ns(self) -> int:
        if self.base_slice_ms is not None:
            return round(self.base_slice_ms * 1e6)
        return int(750_000 * (1 + int(math.log2(min(self.cpus, 8)))))


class Profiler(_Strict):
    """Which profiler runs, and its knobs."""

    runtime: Literal["go1.17", "go1.18", "go1.26", "go-windows", "cpython", "realprof"] = Field(
        "go1.18", description="Profiler implementation; see the docs' runtime table."
    )
    timer: Literal["process", "per-thread", "both", "suspend", "perf"] | None = Field(
        None,
        description=(
            "Timer source; null picks the runtime's default. process: setitimer(ITIMER_PROF); "
            "per-thread: timer_create(CLOCK_THREAD_CPUTIME_ID) per thread; both: per-thread "
            "beside process, duplicates filtered (Go's validSIGPROF); suspend: Windows' "
            "sampling thread; perf: a perf_event task-clock event per thread whose overflow "
            "signals its thread, not checked at ticks, so it can sample above kernel_hz "
            "(realprof --timer perf; with go1.18/go1.26 a hypothetical of what Go could do: "
            "Go does not do this, golang/go #42502)."
        ),
    )
    rate_hz: float = Field(
        100, ge=0.01, le=1_000_000, description="Requested samples per CPU-second."
    )
    buffer_words: int = Field(
        131072,
        ge=16,
        description="Ring buffer capacity in 8-byte words (Go: profBufWordCount = 1<<17).",
    )
    extra_words: int = Field(
        1000,
        ge=0,
        description="Go's buffer for samples of threads it did not create (cpuprof.extra).",
    )
    reader_period_ms: float = Field(
        100, gt=0, description="Reader sleep between drains (runtime/pprof profileWriter)."
    )
    reader_cost_us_per_sample: float = Field(
        0.5, ge=0, description="CPU the reader spends per record it drains."
    )
    handler_cost_us: float | None = Field(
        None,
        ge=0,
        description="CPU spent in the signal handler per delivery; null = runtime default.",
    )
    max_depth: int = Field(64, ge=1, le=4096, description="Frames kept per stack (Go: 64).")
    gil_switch_interval_ms: float = Field(
        5.0, gt=0, description="sys.getswitchinterval(): GIL hand-over period (Python runtimes)."
    )

    @property
    def effective_timer(self) -> str:
        return self.timer or RUNTIME_TIMERS[self.runtime][0]

    @property
    def effective_handler_cost_us(self) -> float:
        if self.handler_cost_us is not None:
            return self.handler_cost_us
        # Go: ~1 us per unwind (DataDog/go-profiler-notes stack-traces.md). CPython's own C
        # handler only sets a flag; realprof's walk of the frame chain is a few us.
        return {"cpython": 0.3, "realprof": 2.0, "go-windows": 10.0}.get(self.runtime, 1.5)

    @model_validator(mode="after")
    def _timer_fits_runtime(self) -> Profiler:
        allowed = RUNTIME_TIMERS[self.runtime]
        if self.timer is not None and self.timer not in allowed:
            raise ValueError(
                f"runtime {self.runtime} cannot use timer {self.timer!r}; "
                f"allowed: {', '.join(allowed)}"
            )
        return self


class StepWork(_Strict):
    function: str = Field(min_length=1, description="Name of the leaf function in stacks.")
    cpu_ms: float = Field(ge=0.001, description="CPU time the step burns (at least 1 µs).")
    depth: int = Field(3, ge=1, le=4096, description="Frames on the stack, leaf included.")


class RunStep(_Strict):
    run: StepWork = Field(description="CPU time in a named function (Python code: needs the GIL).")


class NativeStep(_Strict):
    native: StepWork = Field(description="CPU time in native code (C without the GIL; cgo in Go).")


class SleepStep(_Strict):
    sleep_ms: float = Field(ge=0.001, description="Time off the CPU (at least 1 µs).")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        keys = [k for k in ("run", "native", "sleep_ms") if k in value]
        return keys[0] if len(keys) == 1 else None
    return next(
        (k for k, cls in _STEP_CLASSES.items() if isinstance(value, cls)),
        None,
    )


Step = Annotated[
    Annotated[RunStep, Tag("run")]
    | Annotated[NativeStep, Tag("native")]
    | Annotated[SleepStep, Tag("sleep_ms")],
    Discriminator(_step_kind),
]
_STEP_CLASSES = {"run": RunStep, "native": NativeStep, "sleep_ms": SleepStep}


class ThreadGroup(_Strict):
    name: str = Field(min_length=1)
    count: int = Field(1, ge=1, le=4096)
    kind: Literal["go", "external"] = Field(
        "go", description="go: a thread the runtime created; external: e.g. a cgo-created thread."
    )
    program: list[Step] = Field(min_length=1, description="Steps repeated until the run ends.")

    @field_validator("program", mode="before")
    @classmethod
    def _steps_are_mappings(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, step in enumerate(value):
                if not isinstance(step, Mapping) or len(step) != 1:
                    raise ValueError(
                        f"step {index} must be a mapping with exactly one of run, native, sleep_ms"
                    )
                (key,) = step.keys()
                if key not in ("run", "native", "sleep_ms"):
                    raise ValueError(
                        f"step {index} has unknown kind {key!r}; allowed: run, native, sleep_ms"
                    )
        return value


class Workload(_Strict):
    duration_s: float = Field(gt=0, le=3600, description="Length of the profiled interval.")
    threads: list[ThreadGroup] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Workload:
        names = [group.name for group in self.threads]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"thread group names must be unique; repeated: {duplicates}")
        return self


class Scenario(_Strict):
    """A whole experiment. `machine` may also be the name of a calibrated machine profile."""

    name: str = Field("scenario", description="Short name used in reports and figures.")
    description: str = Field("", description="What the scenario teaches.")
    seed: int = Field(1, ge=0, description="Seed of the simulator's random choices.")
    machine: Machine = Field(default_factory=Machine)
    profiler: Profiler = Field(default_factory=Profiler)
    workload: Workload

    @model_validator(mode="after")
    def _runtime_fits_workload(self) -> Scenario:
        runtime = self.profiler.runtime
        if runtime in PYTHON_RUNTIMES or runtime == "go-windows":
            externals = [g.name for g in self.workload.threads if g.kind == "external"]
            if externals:
                raise ValueError(
                    f"runtime {runtime} has no external (cgo) threads; "
                    f"group(s) {externals} must use kind: go"
                )
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files, for editors (yaml-language-server)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sigprof-lab scenario"
    # A scenario may name a calibrated machine profile instead of describing the machine.
    machine_ref = schema["properties"]["machine"]
    schema["properties"]["machine"] = {
        "anyOf": [machine_ref, {"type": "string", "description": "Machine profile name."}],
        "description": "The machine, or the name of a profile written by realprof calibrate.",
    }
    return schema


# ---------------------------------------------------------------------------------------
# Loading, overrides and error messages


def machine_profile_dirs(scenario_path: Path | None = None) -> list[Path]:
    """Where `machine: NAME` is looked up, first match wins."""
    dirs = []
    if env := os.environ.get("SIGPROF_LAB_MACHINES"):
        dirs.append(Path(env))
    if scenario_path is not None:
        dirs.append(scenario_path.resolve().parent.parent / "machines")
    dirs.append(Path.cwd() / "machines")
    dirs.append(Path(__file__).resolve().parent.parent / "machines")
    dirs.append(Path.home() / ".config" / "sigprof-lab" / "machines")
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _resolve_machine(raw: dict[str, Any], source: str, scenario_path: Path | None) -> None:
    name = raw.get("machine")
    if not isinstance(name, str):
        return
    dirs = machine_profile_dirs(scenario_path)
    for d in dirs:
        candidate = d / f"{name}.yaml"
        if candidate.is_file():
            data = _read_yaml(candidate)
            machine = data.get("machine", data) if isinstance(data, dict) else data
            if not isinstance(machine, dict):
                raise ScenarioError(f"{candidate}: machine profile must be a mapping")
            # Measured facts beside the fitted parameters are kept out of the model.
            raw["machine"] = {k: v for k, v in machine.items() if k in Machine.model_fields}
            return
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    hint = f"known: {', '.join(known)}" if known else "run `python -m realprof calibrate` first"
    raise ScenarioError(f"{source}: machine: no machine profile named {name!r} ({hint})")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{path}: YAML syntax error at {where}{problem}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.0.c=value` -> (["a", "b", "0", "c"], parsed value)."""
    if "=" not in text:
        raise ScenarioError(f"--set {text!r}: expected dotted.path=value")
    path, _, value = text.partition("=")
    keys = [k for k in path.strip().split(".")]
    if not path.strip() or any(not k for k in keys):
        raise ScenarioError(f"--set {text!r}: empty field name in the dotted path")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return keys, parsed


def apply_override(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    """Set one dotted path in the raw mapping, creating mappings on the way."""
    node: Any = raw
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        where = ".".join(keys[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ScenarioError(
                    f"--set {'.'.join(keys)}: {where}: list index out of range "
                    f"(the list has {len(node)} items)"
                )
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if key == "machine" and isinstance(node.get(key), str):
                    raise ScenarioError(
                        f"--set {'.'.join(keys)}: machine is the profile name "
                        f"{node[key]!r}; set machine=NAME or give the whole machine"
                    )
                node = node.setdefault(key, {})
        else:
            raise ScenarioError(f"--set {'.'.join(keys)}: {where} is not a mapping or a list")


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in _without_tags(error["loc"]))
    msg = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    kind = error["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
        allowed = _allowed_keys(error["loc"])
        if allowed:
            msg += f" (allowed: {', '.join(allowed)})"
    elif kind == "missing":
        msg = "required field is missing"
    elif "input" in error and kind not in ("model_type",):
        shown = error["input"]
        if not isinstance(shown, dict | list):
            msg += f" (got {shown!r})"
    return f"{loc}: {msg}" if loc else msg


def _without_tags(loc: Iterable[Any]) -> list[Any]:
    """Drop the discriminator tag pydantic puts before a step's own key (`run.run`)."""
    parts = list(loc)
    return [
        part
        for i, part in enumerate(parts)
        if not (part in _STEP_CLASSES and i + 1 < len(parts) and parts[i + 1] == part)
    ]


def _allowed_keys(loc: Iterable[Any]) -> list[str]:
    """Field names allowed at the parent of `loc`, for unknown-key messages."""
    model: Any = Scenario
    parts = _without_tags(loc)[:-1]
    for part in parts:
        if isinstance(part, int):
            continue
        if model is Step and part in _STEP_CLASSES:
            model = _model_in(_STEP_CLASSES[part].model_fields[part].annotation)
            if model is None:
                return []
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        model = _model_in(annotation)
        if model is None:
            return []
    if not hasattr(model, "model_fields"):
        return ["run", "native", "sleep_ms"]
    return list(model.model_fields)


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if annotation is Step:
        return Step
    for arg in getattr(annotation, "__args__", ()):
        if arg is Step:
            return Step
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def validate_scenario(raw: Any, source: str = "<scenario>", path: Path | None = None) -> Scenario:
    """Validate a raw mapping; raise ScenarioError with one line on failure."""
    if raw is None:
        raise ScenarioError(f"{source}: the file is empty; a scenario needs at least `workload`")
    if not isinstance(raw, dict):
        raise ScenarioError(
            f"{source}: a scenario must be a mapping of sections "
            f"(name, machine, profiler, workload, seed), got {type(raw).__name__}"
        )
    _resolve_machine(raw, source, path)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = _describe(errors[0])
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ScenarioError(f"{source}: {first}{more}") from None


def load_scenario(
    path: str | os.PathLike[str], overrides: Iterable[str] = (), seed: int | None = None
) -> Scenario:
    """Read, override and validate a scenario file."""
    path = Path(path)
    raw = _read_yaml(path)
    if isinstance(raw, dict):
        for text in overrides:
            keys, value = parse_override(text)
            apply_override(raw, keys, value)
        if seed is not None:
            raw["seed"] = seed
    return validate_scenario(raw, str(path), path)


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    return json.loads(scenario.model_dump_json(exclude_none=False))


def with_overrides(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """A copy of `scenario` with dotted-path overrides applied, validated again."""
    raw = scenario_to_dict(scenario)
    for dotted, value in overrides.items():
        apply_override(raw, dotted.split("."), value)
    return validate_scenario(raw, f"{scenario.name} with {dict(overrides)}")
