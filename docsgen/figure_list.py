"""The documentation's figures: which plot, of which shipped scenario, with which overrides.

`FIGURES` lists every figure of `docs/figures/` (the pipeline diagram, the validation
grid redrawn from the committed `docs/data/grid.json`, timelines, funnels and sweeps of
named, shipped scenarios with their own fixed seeds); `FigureSpec.command()` is the
command line that reproduces a figure's run, for the manifest. `draw_figure` runs one
through `sim.model.simulate` or `sim.sweep.run_sweep` (jobs=1) and draws it with
`figures` (funnel, timeline, sweep), `lab.grid_figure` or `docsgen.pipeline`, returning
its alt text. Durations are shortened where the picture does not need the full run.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.report import Report
from contract.scenario_file import load_scenario
from docsgen.common import GO_RELEASES_DATA, GRID_DATA, REGENERATE, ROOT, SCENARIOS
from docsgen.layer_map import draw_layer_map
from docsgen.pipeline import draw_pipeline
from figures.funnel import plot_funnel
from figures.sweep import plot_sweep
from figures.timeline import plot_timeline
from lab.go_samples_figure import plot_go_cgo_phases, plot_go_labels, plot_go_trace_samples
from lab.grid import GO_VERSIONS_COMMAND
from lab.grid_figure import plot_validation_grid
from lab.grid_results import read_grid


@dataclass(frozen=True)
class FigureSpec:
    """One figure: which plot, of which scenario, with which overrides."""

    name: str  # file stem in docs/figures
    kind: str  # "timeline", "funnel", "sweep", "diagram", "grid" or "go-samples" (measured)
    scenario: str = ""  # stem of scenarios/<scenario>.yaml
    overrides: tuple[str, ...] = ()
    window_ms: tuple[float, float] = (0.0, 40.0)  # timelines
    title: str = ""
    vary: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # sweeps: (field, values), x first
    metrics: tuple[str, ...] = ("capture_ratio",)  # sweeps

    def command(self) -> str:
        """The command line that reproduces this figure's run (its numbers, not its bytes)."""
        if self.kind == "diagram":
            return REGENERATE
        if self.kind == "grid":
            # Measured on a real machine: the data are committed, the figure is redrawn.
            if self.name == "go-release-grid":
                return GO_VERSIONS_COMMAND
            return "python -m realprof grid --repeat 5 --cprobe --out docs/data"
        if self.kind == "go-samples":
            # A real Go run, committed as docs/data/go-samples.json; the figure is redrawn.
            return "python -m realprof go-samples --out docs/data"
        sets = " ".join(f"--set {shlex.quote(o)}" for o in self.overrides)
        path = f"scenarios/{self.scenario}.yaml"
        if self.kind == "sweep":
            varies = " ".join(
                f"--vary {name}=" + ",".join(_cli_value(v) for v in values)
                for name, values in self.vary
            )
            return " ".join(p for p in ("python -m sim sweep", path, sets, varies) if p)
        parts = ["python -m sim", path, sets]
        if self.kind == "timeline":
            parts.append(f"--timeline-ms {self.window_ms[0]:g}:{self.window_ms[1]:g} --out out")
        return " ".join(p for p in parts if p)


def _cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


# Short runs for pictures of a few tick rounds; full runs where a page quotes the numbers.
_FOUR = ("machine.cpus=4", "workload.threads.0.count=4", "workload.duration_s=0.2")

FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("pipeline", "diagram"),
    FigureSpec("layer-map", "diagram"),  # docsgen/layer_map.py
    FigureSpec("validation-grid", "grid"),
    FigureSpec("go-release-grid", "grid"),  # docs/data/go-releases/grid.json
    FigureSpec("go-labels", "go-samples"),  # docs/data/go-samples.json, lab.go_samples
    FigureSpec("go-trace-samples", "go-samples"),
    FigureSpec("go-cgo-phases", "go-samples"),
    # Timelines: a 40 ms window in the middle of a short run.
    FigureSpec(
        "go117-timeline",
        "timeline",
        "go117-many-threads",
        _FOUR,
        (100.0, 140.0),
        "Go 1.17, 4 busy threads on 4 CPUs: one process timer",
    ),
    FigureSpec(
        "go118-timeline",
        "timeline",
        "go118-many-threads",
        _FOUR,
        (100.0, 140.0),
        "Go 1.18, the same threads: a timer per thread beside the process timer",
    ),
    FigureSpec(
        "tick-timeline",
        "timeline",
        "tick-granularity",
        ("workload.duration_s=0.2",),
        (100.0, 140.0),
        "1000 Hz requested, HZ=250: timers are checked only at ticks",
    ),
    FigureSpec(
        "skewed-timeline",
        "timeline",
        "skewed-attribution",
        ("workload.duration_s=0.2",),
        (100.0, 140.0),
        "Go 1.17, two equal threads: CPU 0 usually checks first and wins the signal",
    ),
    FigureSpec(
        "windows-timeline",
        "timeline",
        "windows-suspend",
        ("workload.duration_s=0.2",),
        (100.0, 140.0),
        "Go on Windows, GOMAXPROCS=2: Ms in cgo calls and system calls are sampled too",
    ),
    # Funnels: full scenario runs, the numbers the pages quote.
    FigureSpec("quickstart-funnel", "funnel", "quickstart"),
    FigureSpec("go117-funnel", "funnel", "go117-many-threads"),
    FigureSpec("go118-funnel", "funnel", "go118-many-threads"),
    FigureSpec("tick-funnel", "funnel", "tick-granularity"),
    FigureSpec("starved-reader-funnel", "funnel", "starved-reader"),
    FigureSpec("go126-reader-funnel", "funnel", "go126-reader"),
    FigureSpec("cgo-funnel", "funnel", "cgo-external-threads"),
    FigureSpec("windows-funnel", "funnel", "windows-suspend"),
    FigureSpec("cpython-funnel", "funnel", "cpython-main-thread"),
    FigureSpec("realprof-funnel", "funnel", "realprof-per-thread"),
    FigureSpec("perf-funnel", "funnel", "beyond-the-tick"),
    FigureSpec(
        "perf-timeline",
        "timeline",
        "beyond-the-tick",
        ("workload.duration_s=0.2",),
        (100.0, 120.0),
        "perf task clock at 1000 Hz, HZ=250: overflows between the ticks",
    ),
    FigureSpec(
        "sweep-perf-rate",
        "sweep",
        "beyond-the-tick",
        ("workload.duration_s=1",),
        title="Capture against the rate, three timers (2 busy threads on 2 CPUs, HZ=250)",
        vary=(
            ("profiler.rate_hz", (100, 250, 500, 1000, 2000, 5000)),
            ("profiler.timer", ("process", "per-thread", "perf")),
        ),
        metrics=("capture_ratio", "samples_in_profile"),
    ),
    # Sweeps: one-second runs are enough for ratios.
    FigureSpec(
        "sweep-threads",
        "sweep",
        "go117-many-threads",
        ("workload.duration_s=1",),
        title="Capture against busy threads (16 CPUs, 100 Hz, HZ=250)",
        vary=(
            ("workload.threads.0.count", (1, 2, 4, 8, 16)),
            ("profiler.runtime", ("go1.17", "go1.18")),
        ),
        metrics=("capture_ratio", "profile_cpu_percent"),
    ),
    FigureSpec(
        "sweep-rate",
        "sweep",
        "go117-many-threads",
        ("workload.duration_s=1", "machine.cpus=4", "workload.threads.0.count=4"),
        title="Capture against the requested rate (4 busy threads on 4 CPUs, HZ=250)",
        vary=(
            ("profiler.rate_hz", (50, 100, 250, 500, 1000)),
            ("profiler.runtime", ("go1.17", "go1.18")),
        ),
        metrics=("capture_ratio", "timer_overruns"),
    ),
    FigureSpec(
        "sweep-survival",
        "sweep",
        "go117-many-threads",
        ("workload.duration_s=1", "machine.cpus=4", "workload.threads.0.count=4"),
        title="Go 1.17 on 4 CPUs: how often a second same-round SIGPROF survives",
        vary=(
            ("machine.same_round_survival", (0.0, 0.25, 0.5, 0.75, 1.0)),
            ("machine.tick_skew", (False, True)),
        ),
        metrics=("capture_ratio", "attribution_error_pp"),
    ),
)


def _scenario(spec: FigureSpec):
    return load_scenario(SCENARIOS / f"{spec.scenario}.yaml", list(spec.overrides))


def draw_figure(spec: FigureSpec, out_dir: Path, reports: dict[str, Report]) -> str:
    """Draw one figure into out_dir; return its alt text. Full runs land in `reports`."""
    from sim.model import simulate
    from sim.sweep import run_sweep

    path = out_dir / f"{spec.name}.png"
    if spec.name == "layer-map":
        return draw_layer_map(path)
    if spec.kind == "diagram":
        return draw_pipeline(path)
    if spec.kind == "grid":
        source = GO_RELEASES_DATA if spec.name == "go-release-grid" else GRID_DATA
        data = read_grid(source.read_text(encoding="utf-8"))
        return plot_validation_grid(data, path)
    if spec.kind == "go-samples":
        data = json.loads((ROOT / "docs" / "data" / "go-samples.json").read_text(encoding="utf-8"))
        plot = {
            "go-labels": plot_go_labels,
            "go-trace-samples": plot_go_trace_samples,
            "go-cgo-phases": plot_go_cgo_phases,
        }[spec.name]
        return plot(data, path)
    scenario = _scenario(spec)
    if spec.kind == "timeline":
        result = simulate(scenario, trace_window_ms=spec.window_ms)
        assert result.trace is not None
        return plot_timeline(result.trace, path, title=spec.title)
    if spec.kind == "funnel":
        report = simulate(scenario).report
        if not spec.overrides:
            reports[spec.scenario] = report
        return plot_funnel(report, path)
    if spec.kind == "sweep":
        vary = {name: list(values) for name, values in spec.vary}
        result = run_sweep(scenario, vary, jobs=1, progress=False)
        names = [name for name, _ in spec.vary]
        return plot_sweep(
            result.rows,
            x=names[0],
            path=path,
            series=names[1] if len(names) > 1 else None,
            metrics=spec.metrics,
            title=spec.title,
        )
    raise ValueError(f"unknown figure kind {spec.kind!r}")
