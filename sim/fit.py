"""Fit the machine from what the user saw: `python -m sim fit`.

A Go user sees two numbers: the CPU the process used (as `top` shows it) and the CPU
the profile shows (pprof's "Total samples = ... (400%)"). Under a runtime whose samples
come from the process timer alone (Go 1.17 and older), their ratio, the capture, is set
by how many of the SIGPROFs generated in one tick round survive: the machine's
`same_round_survival` p (chapter 3 of the walkthrough). This module finds the p that
explains an observation and what that p predicts elsewhere.

Mechanism and invariants:

* The observation is turned into a scenario: the user's CPUs, HZ, Go release and rate,
  and ceil(top% / 100) threads (or `--threads`) that share the process's CPU equally,
  each busy all the time or, below one CPU each, in 20 ms cycles of run then sleep.
* The capture is monotone in p for a process-timer runtime (each surviving same-round
  expiry is one more sample), so p is found by bisection on [0, 1], to
  `P_TOLERANCE`. A runtime that arms per-thread timers is refused: p hardly moves it.
* The range is the set of p whose predicted capture lies within `Z_RANGE` standard
  errors of the observed one. The standard error is binomial, sqrt(c(1 - c)/n), over
  the user's expected samples and the simulation's, added in quadrature; it is the
  sampling noise of that many samples, not the model's error.
* Several profiles of the same program and machine (`pool`) are fitted as one: their
  samples and CPU add up. A machine's p drifts from run to run more than one profile's
  samples say (on this project's VM, on an AMD EPYC host, five 4 s Go runs in one
  sitting fit 0.49 to 0.75, each range 0.09 to 0.11 wide: docs/data/go-fit.json), so
  when the profiles' captures scatter more than binomially, the standard error of their
  mean, s/sqrt(k), replaces the binomial one and the range takes Student's t with k - 1
  degrees of freedom at `Z_RANGE`'s coverage (`t_quantile`): a range that holds the
  run-to-run drift as well as the counting noise. One profile cannot show its drift; the
  answer says so.
* Each simulation runs at most `SIMULATED_CPU_TICKS` CPU-ticks (CPUs × HZ × seconds;
  5 s on 32 CPUs at HZ=250), fewer seconds than the user's profile when that is longer:
  the capture of steady busy threads is stationary. Every run uses the scenario's seed,
  so a fit is deterministic; nothing is cached between runs of the command.
* A preset fixes the machine's shape (tick skew, per-CPU bias) that p is fitted on, and
  the p it would have on its own, which the answer compares with the fitted one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.runtimes import (
    RUNTIMES,
    is_go_release,
    release_span,
    runtime_model,
)
from contract.scenario import (
    Scenario,
    ScenarioError,
    machine_profile_dirs,
    machine_section,
    validate_scenario,
)
from contract.scenario_file import read_yaml

P_TOLERANCE = 0.002
Z_RANGE = 2.0
SIMULATED_CPU_TICKS = 40_000
_MIN_SIMULATED_S = 0.5
_CYCLE_MS = 20.0  # a part-busy thread's run + sleep period

THIS_MACHINE = "this-machine"


@dataclass(frozen=True)
class Preset:
    """A machine shape: the fields p is fitted beside, and the p the shape has alone."""

    name: str
    source: str
    machine: dict[str, Any]
    own_p: float


def _this_vm() -> Preset:
    for directory in machine_profile_dirs():
        path = directory / f"{THIS_MACHINE}.yaml"
        if path.is_file():
            section = machine_section(read_yaml(path), path)
            shape = {k: section[k] for k in ("tick_skew", "cpu_check_bias") if k in section}
            return Preset(
                "this-vm",
                f"{path}, written by `python -m realprof calibrate` on this machine",
                shape,
                float(section.get("same_round_survival", 0.0)),
            )
    raise ScenarioError(
        f"preset this-vm: no {THIS_MACHINE}.yaml in {', '.join(map(str, machine_profile_dirs()))}"
        "; run `python -m realprof calibrate` first"
    )


def presets() -> dict[str, Callable[[], Preset]]:
    """The presets by name; this-vm reads the calibrated profile when it is asked for."""
    return {
        "aligned": lambda: Preset(
            "aligned",
            "all CPUs ticking at once, and a preset p of 0: the limit behind the "
            "HZ/100-core ceiling of Go 1.17 and older (the 96-vCPU machine of golang/go "
            "#35057, https://github.com/golang/go/issues/35057, fits p of about 0.08)",
            {"tick_skew": False},
            0.0,
        ),
        "skew-tick": lambda: Preset(
            "skew-tick",
            "booted with skew_tick=1: the model's machine.tick_skew spreads the CPUs' "
            "ticks over half a tick (kernel/time/tick-sched.c)",
            {"tick_skew": True},
            0.0,
        ),
        "this-vm": _this_vm,
    }


@dataclass(frozen=True)
class Observation:
    """What the user saw, in the units they saw it."""

    cpus: int
    kernel_hz: int
    go: str  # a Go release (go1.17) or a model name
    rate_hz: float
    duration_s: float
    process_cpu_s: float  # CPU the process used during the profile (top% × duration)
    profile_samples: int  # samples in the profile (pprof's CPU ÷ the period)
    threads: int | None = None
    # (process CPU s, samples) of each profile pooled into this one, when there are several
    runs: tuple[tuple[float, int], ...] = ()

    @property
    def run_captures(self) -> list[float]:
        return [samples / (cpu_s * self.rate_hz) for cpu_s, samples in self.runs]

    @property
    def expected_samples(self) -> float:
        return self.process_cpu_s * self.rate_hz

    @property
    def capture(self) -> float:
        return self.profile_samples / self.expected_samples

    @property
    def top_percent(self) -> float:
        return 100.0 * self.process_cpu_s / self.duration_s

    @property
    def profile_percent(self) -> float:
        return 100.0 * self.profile_samples / self.rate_hz / self.duration_s


def pool(observations: list[Observation]) -> Observation:
    """Several profiles of one program on one machine as one observation: durations, CPU
    and samples added, each profile's CPU and samples kept for the scatter."""
    first = observations[0]
    if len(observations) == 1:
        return first
    for other in observations[1:]:
        same = (other.cpus, other.kernel_hz, other.go, other.threads)
        if same != (first.cpus, first.kernel_hz, first.go, first.threads):
            raise ScenarioError("profiles pooled in one fit must share CPUs, HZ, Go and threads")
        if abs(other.rate_hz - first.rate_hz) > 1e-6 * first.rate_hz:
            raise ScenarioError(
                f"profiles pooled in one fit must share a rate: {first.rate_hz:g} Hz and "
                f"{other.rate_hz:g} Hz"
            )
    return Observation(
        first.cpus,
        first.kernel_hz,
        first.go,
        first.rate_hz,
        sum(o.duration_s for o in observations),
        sum(o.process_cpu_s for o in observations),
        sum(o.profile_samples for o in observations),
        first.threads,
        tuple((o.process_cpu_s, o.profile_samples) for o in observations),
    )


def _two_sided_t_coverage(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with df degrees of freedom (Simpson's rule on the
    density; the densities here are smooth and t is at most a few tens)."""
    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    steps = 4000
    h = t / steps
    total = 0.0
    for i in range(steps + 1):
        x = i * h
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * (1 + x * x / df) ** (-(df + 1) / 2)
    return 2 * scale * total * h / 3


def t_quantile(df: int, z: float = Z_RANGE) -> float:
    """The t with df degrees of freedom whose two-sided coverage is the normal's at z."""
    coverage = math.erf(z / math.sqrt(2))
    low, high = z, z
    while _two_sided_t_coverage(high, df) < coverage:
        high *= 2
    while high - low > 1e-4:
        mid = (low + high) / 2
        if _two_sided_t_coverage(mid, df) < coverage:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def check_observation(obs: Observation) -> None:
    """One ScenarioError for an observation the fit cannot take."""
    if obs.duration_s <= 0 or obs.process_cpu_s <= 0 or obs.rate_hz <= 0:
        raise ScenarioError("duration, process CPU and rate must be positive")
    if obs.top_percent > 100.0 * obs.cpus * 1.001:
        raise ScenarioError(
            f"the process used {obs.top_percent:.0f}% CPU, more than {obs.cpus} CPUs "
            f"({100 * obs.cpus}%) can give"
        )
    if obs.profile_samples < 1:
        raise ScenarioError("the profile holds no samples: there is nothing to fit")
    if obs.capture > 1.05:
        raise ScenarioError(
            f"the profile shows more CPU ({obs.profile_percent:.0f}%) than the process used "
            f"({obs.top_percent:.0f}%): check the two numbers and the duration"
        )
    if obs.threads is not None and obs.threads * 100 < obs.top_percent * 0.999:
        raise ScenarioError(
            f"{obs.threads} threads cannot use {obs.top_percent:.0f}% CPU; "
            f"give --threads at least {math.ceil(obs.top_percent / 100 - 1e-9)}"
        )
    model = obs.go if obs.go in RUNTIMES else runtime_model(obs.go)
    if not (obs.go in RUNTIMES or is_go_release(obs.go)) or not RUNTIMES[model].go:
        raise ScenarioError(f"--go must be a Go release such as go1.17, got {obs.go!r}")
    timer = RUNTIMES[model].default_timer
    if timer != "process":
        raise ScenarioError(
            f"{obs.go} runs the {model} model, which arms per-thread timers ({timer}): its "
            "capture hardly depends on p, so a fit needs a process-timer release (go1.17 "
            "and older)"
        )


def _thread_groups(obs: Observation, seconds: float) -> list[dict[str, Any]]:
    cpus_used = obs.top_percent / 100.0
    count = obs.threads or max(1, math.ceil(cpus_used - 1e-9))
    share = min(1.0, cpus_used / count)
    if share >= 0.999:
        program = [{"run": {"function": "main.work", "cpu_ms": seconds * 1000, "depth": 5}}]
    else:
        program = [
            {"run": {"function": "main.work", "cpu_ms": _CYCLE_MS * share, "depth": 5}},
            {"sleep_ms": _CYCLE_MS * (1 - share)},
        ]
    return [{"name": "work", "count": count, "program": program}]


def scenario_dict(
    obs: Observation,
    preset: Preset,
    p: float,
    seconds: float,
    runtime: str | None = None,
    timer: str | None = None,
) -> dict[str, Any]:
    """The scenario of an observation at survival p (the user's runtime unless given)."""
    machine = {"cpus": obs.cpus, "kernel_hz": obs.kernel_hz, **preset.machine}
    if machine.get("cpu_check_bias") is not None and len(machine["cpu_check_bias"]) != obs.cpus:
        machine["cpu_check_bias"] = None  # measured per CPU of another machine: not this one
    machine["same_round_survival"] = round(p, 4)
    profiler: dict[str, Any] = {"runtime": runtime or obs.go, "rate_hz": obs.rate_hz}
    if timer is not None:
        profiler["timer"] = timer
    return {
        "name": "fit",
        "seed": 1,
        "machine": machine,
        "profiler": profiler,
        "workload": {"duration_s": seconds, "threads": _thread_groups(obs, seconds)},
    }


def simulated_seconds(obs: Observation) -> float:
    budget_s = SIMULATED_CPU_TICKS / (obs.cpus * obs.kernel_hz)
    return min(obs.duration_s, max(_MIN_SIMULATED_S, budget_s))


@dataclass
class Fit:
    obs: Observation
    preset: Preset
    seconds: float
    p: float
    p_low: float
    p_high: float
    capture_se: float
    range_multiplier: float  # Z_RANGE, or Student's t when the profiles' scatter sets the SE
    scatter_se: float | None  # s/sqrt(k) of several profiles' captures (None: one profile)
    fitted_capture: float
    capture_at_0: float
    capture_at_1: float
    predictions: list[tuple[str, str, str, list[float]]] = field(default_factory=list)
    own_p_percent: float = 0.0
    runs: int = 0

    @property
    def edge_note(self) -> str | None:
        c = self.obs.capture
        if c < self.capture_at_0:
            return (
                f"the observed capture {c:.3f} is below what p = 0 gives ({self.capture_at_0:.3f}):"
                " p cannot explain it; fewer samples than ticks allow point at a busy machine "
                "(other processes' ticks) or a per-CPU bias (machine.cpu_check_bias)"
            )
        if c > self.capture_at_1:
            return (
                f"the observed capture {c:.3f} is above what p = 1 gives ({self.capture_at_1:.3f}):"
                " p cannot explain it; ticks spread over the round (skew_tick=1: --preset "
                "skew-tick) or a timer that is not the process timer could"
            )
        return None


def _capture(scenario: Scenario) -> float:
    from sim.model import simulate

    return simulate(scenario).report.capture_ratio


def fit(obs: Observation, preset: Preset) -> Fit:
    """Find p and its range for an observation on a preset's machine shape."""
    check_observation(obs)
    seconds = simulated_seconds(obs)
    runs = 0

    def capture_at(p: float, runtime: str | None = None, timer: str | None = None) -> float:
        nonlocal runs
        runs += 1
        raw = scenario_dict(obs, preset, p, seconds, runtime, timer)
        return _capture(validate_scenario(raw, "fit"))

    def solve(
        target: float, low_capture: float, high_capture: float, low: float = 0.0, high: float = 1.0
    ) -> float:
        if target <= low_capture:
            return 0.0
        if target >= high_capture:
            return 1.0
        while high - low > P_TOLERANCE:
            mid = (low + high) / 2
            if capture_at(mid) < target:
                low = mid
            else:
                high = mid
        return (low + high) / 2

    c = min(obs.capture, 1.0)
    simulated_expected = obs.top_percent / 100 * seconds * obs.rate_hz
    variance = max(c * (1 - c), 1e-6)
    observed_var = variance / obs.expected_samples
    multiplier, scatter_se = Z_RANGE, None
    if len(obs.runs) >= 2:
        k = len(obs.runs)
        scatter_se = statistics.stdev(obs.run_captures) / math.sqrt(k)
        if scatter_se**2 > observed_var:
            observed_var = scatter_se**2
            multiplier = t_quantile(k - 1)
    se = math.sqrt(observed_var + variance / simulated_expected)
    at_0, at_1 = capture_at(0.0), capture_at(1.0)
    p = solve(c, at_0, at_1)
    result = Fit(
        obs,
        preset,
        seconds,
        p,
        solve(c - multiplier * se, at_0, at_1, high=p),
        solve(c + multiplier * se, at_0, at_1, low=p),
        se,
        multiplier,
        scatter_se,
        capture_at(p),
        at_0,
        at_1,
    )
    to_percent = obs.top_percent
    for label, runtime, timer in (
        (f"go1.17 (Go {release_span(RUNTIMES['go1.17'])})", "go1.17", None),
        (f"go1.18 (Go {release_span(RUNTIMES['go1.18'])})", "go1.18", None),
        (f"go1.26 (Go {release_span(RUNTIMES['go1.26'])})", "go1.26", None),
        ("perf timer (realprof --timer perf; Go does not do this)", "go1.26", "perf"),
    ):
        timer_name = timer or RUNTIMES[runtime].default_timer
        percents = [
            to_percent * capture_at(q, runtime, timer)
            for q in (result.p_low, result.p, result.p_high)
        ]
        result.predictions.append((label, runtime, timer_name, percents))
    result.own_p_percent = to_percent * capture_at(preset.own_p)
    result.runs = runs
    return result


def to_text(result: Fit) -> str:
    obs = result.obs
    what = (
        f"the {obs.duration_s:g} s profile shows"
        if len(obs.runs) < 2
        else f"{len(obs.runs)} profiles, {obs.duration_s:g} s in all, show"
    )
    lines = [
        f"observed: the process used {obs.top_percent:.0f}% CPU; {what} "
        f"{obs.profile_percent:.0f}% ({obs.profile_samples:,} samples at "
        f"{obs.rate_hz:g} Hz of {obs.expected_samples:,.0f} expected): capture {obs.capture:.3f}",
        f"machine: {obs.cpus} CPUs, HZ={obs.kernel_hz}, {obs.go} ({runtime_model(obs.go)} "
        f"model), preset {result.preset.name}: {result.preset.source}",
        f"simulated {result.seconds:g} s per run ({result.runs} runs): the capture of steady "
        "busy threads is stationary, so fewer seconds than the profile's suffice",
        "",
        f"p (machine.same_round_survival) = {result.p:.3f}, range {result.p_low:.3f} to "
        f"{result.p_high:.3f}: {_range_reason(result)}",
        f"capture: observed {obs.capture:.3f}, fitted {result.fitted_capture:.3f} "
        f"(p = 0 gives {result.capture_at_0:.3f}, p = 1 gives {result.capture_at_1:.3f})",
    ]
    if note := result.edge_note:
        lines.append(f"note: {note}")
    lines += ["", f"predicted profile CPU % at p = {result.p:.3f} (range):"]
    width = max(len(label) for label, *_ in result.predictions)
    for label, _runtime, timer, (low, mid, high) in result.predictions:
        lines.append(f"  {label:<{width}}  timer {timer:<8} {mid:7.0f}%  ({low:.0f} to {high:.0f})")
    lines.append(
        f"preset {result.preset.name} alone (p = {result.preset.own_p:g}) would show "
        f"{result.own_p_percent:.0f}% under {obs.go}"
    )
    return "\n".join(lines) + "\n"


def _range_reason(result: Fit) -> str:
    """What the range stands for, in words."""
    obs = result.obs
    if result.scatter_se is None:
        return (
            f"the p whose capture is within ±{Z_RANGE:g} SE (SE {result.capture_se:.4f}, "
            "binomial noise of the profile's and the simulation's samples; one profile "
            "cannot show how p drifts between runs: give several --profile to include that)"
        )
    captures = ", ".join(f"{c:.3f}" for c in obs.run_captures)
    k = len(obs.runs)
    if result.range_multiplier == Z_RANGE:
        return (
            f"the p whose capture is within ±{Z_RANGE:g} SE (SE {result.capture_se:.4f}, "
            f"binomial: the {k} profiles' captures {captures} scatter no more than their "
            f"samples explain, s/sqrt(k) = {result.scatter_se:.4f})"
        )
    return (
        f"the p whose capture is within ±{result.range_multiplier:.2f} SE (SE "
        f"{result.capture_se:.4f}: the {k} profiles' captures {captures} scatter more than "
        f"their samples explain, so the SE is their s/sqrt(k) = {result.scatter_se:.4f}, "
        f"with Student's t at {k - 1} degrees of freedom)"
    )


def fitted_scenario(result: Fit) -> dict[str, Any]:
    """The scenario that reproduces the observation: the user's duration, the fitted p."""
    obs = result.obs
    raw = scenario_dict(obs, result.preset, result.p, obs.duration_s)
    description = (
        f"Written by `python -m sim fit`: {obs.cpus} CPUs, HZ={obs.kernel_hz}, {obs.go}; "
        f"top {obs.top_percent:.0f}%, profile {obs.profile_percent:.0f}% over "
        f"{obs.duration_s:g} s; p = {result.p:.3f} ({result.p_low:.3f} to {result.p_high:.3f}) "
        f"on preset {result.preset.name}."
    )
    return {
        "name": "fitted",
        "description": description,
        **{k: v for k, v in raw.items() if k != "name"},
    }


def write_scenario(raw: dict[str, Any], path: Path | None) -> str:
    """The scenario's YAML text, written to path when one is given."""
    import yaml

    text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    if path is not None:
        path.write_text(text, encoding="utf-8")
    return text
