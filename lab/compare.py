"""compare: one scenario in every world, side by side.

`python -m realprof compare SCENARIO.yaml [--repeat N] [--worlds sim,real,go]
[--go-versions 1.19,1.26] [--emulate go1.17] [--out DIR]`

The point of the project is to hold the model's prediction against what the kernel did.
A fair comparison simulates *what really runs*, on *the machine it runs on*:

* The real world runs the scenario's workload under realprof (`lab.workload`), with
  the runtime mapped onto the real sampler (go1.17 → the process timer, go1.18 → both
  timers, cpython → the Python-level handler). Its simulated twin is the same scenario
  under the `realprof` (or `cpython`) runtime with that timer: the model of our own C
  sampler, GIL included.
* The Go world (`lab.go_world`) runs a generated Go program under the `go` on PATH, or
  under each release of `--go-versions` (`lab.go_toolchain.find_toolchain`), one column
  per release, named by it (`go1.23`). Each twin is the scenario under the model of its
  release (`lab.go_variant.GoVariant`): Go 1.18 to 1.25 arm per-thread timers beside the
  process timer, the `go1.18` model; 1.26 and later wake the reader at half full,
  `go1.26`. With `--emulate go1.17` each of those releases runs with `timer_create`
  denied (`lab.go_seccomp`), Go falls back to the process timer alone, the column is
  named by both (`go1.19-as-go1.17`) and its twin is the `go1.17` model with the process
  timer.
* Both twins run on this machine's calibrated profile (`machines/this-machine.yaml`,
  written by `python -m realprof calibrate`) when there is one, otherwise on the
  scenario's machine with this machine's CPU count and tick rate; the notes say which.

Real runs are noisy, so each world runs `--repeat` times and the table shows the median
with the range; the simulator runs the same number of seeds. The table labels every row
in words with its unit, and marks the rows where sim and reality differ most.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.cli import OneLineParser as _Parser
from contract.report import FUNNEL_LABELS, Report
from contract.scenario import (
    Scenario,
    ScenarioError,
    scenario_to_dict,
    validate_scenario,
)
from contract.scenario_file import load_scenario
from lab.go_seccomp import EMULATIONS, Emulation, emulation
from lab.go_toolchain import GoWorldError, find_toolchain
from lab.go_variant import GoVariant, go_variants, path_variant
from lab.go_world import run_go_world
from lab.machine import machine_here
from lab.real_settings import RealWorldError, real_settings
from lab.workload import run_scenario
from sim.model import simulate

WORLDS = ("sim", "real", "go")

# (field, label, unit, kind) where kind says how a gap is judged: "ratio" (absolute gap
# of a ratio), "pp" (percentage points), "count" (relative to the simulated value).
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("cpu_seconds", "workload CPU time", "s", "count"),
    ("expected_samples", FUNNEL_LABELS["expected_samples"], "samples", "count"),
    ("signals_delivered", FUNNEL_LABELS["signals_delivered"], "signals", "count"),
    ("timer_overruns", FUNNEL_LABELS["timer_overruns"], "intervals", "count"),
    ("signals_merged", FUNNEL_LABELS["signals_merged"], "signals", "count"),
    ("signals_discarded", FUNNEL_LABELS["signals_discarded"], "signals", "count"),
    ("samples_lost_overflow", FUNNEL_LABELS["samples_lost_overflow"], "samples", "count"),
    ("samples_in_profile", FUNNEL_LABELS["samples_in_profile"], "samples", "count"),
    ("capture_ratio", "capture ratio (profile ÷ expected)", "ratio", "ratio"),
    ("profile_cpu_percent", "CPU the profile shows (pprof's %)", "%", "percent"),
    ("attribution_error_pp", "largest attribution error", "pp", "pp"),
)


class CompareError(Exception):
    """A comparison that cannot run; one line for the user."""


@dataclass
class WorldRuns:
    """Every repeat of one world, with the twin scenario it was simulated against."""

    world: str
    label: str
    reports: list[Report] = field(default_factory=list)
    error: str | None = None


# -- the simulated twins ---------------------------------------------------------------


def twin(
    scenario: Scenario, world: str, machine: dict, variant: GoVariant | None = None
) -> Scenario:
    """The scenario as the simulator must run it to predict `world` (for "go", the model
    and timer of `variant`, its release's or its emulation's; without one, Go 1.19's)."""
    raw = scenario_to_dict(scenario)
    raw["machine"] = dict(machine)
    profiler = raw["profiler"]
    if world == "go":
        go = variant or GoVariant("1.19")
        profiler["runtime"], profiler["timer"] = go.model, go.timer
    elif world == "real":
        settings = real_settings(scenario)
        if settings.handler == "python":
            profiler["runtime"], profiler["timer"] = "cpython", "process"
        else:
            profiler["runtime"], profiler["timer"] = "realprof", settings.timer
        for group in raw["workload"]["threads"]:
            group["kind"] = "go"
    return validate_scenario(raw, f"{scenario.name} ({world} twin)")


# -- running ---------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def run_compare(
    scenario: Scenario,
    worlds: tuple[str, ...] = WORLDS,
    repeat: int = 3,
    scenario_path: Path | None = None,
    progress: bool = True,
    go: tuple[GoVariant, ...] | None = None,
    emulate: Emulation | None = None,
) -> dict[str, Any]:
    """Run every world `repeat` times; return the comparison as a JSON-ready mapping.

    `go`: the Go releases to run (None: the `go` on PATH), one world each; with
    `emulate`, each runs under that emulation (`lab.go_seccomp`) against its model.
    """
    machine, machine_note = machine_here(scenario, scenario_path)
    runs: dict[str, WorldRuns] = {}
    sim_runs: dict[str, WorldRuns] = {}
    jobs: list[tuple[str, Callable[[int], Report]]] = []

    if "real" in worlds:
        try:
            real_twin = twin(scenario, "real", machine)
        except RealWorldError as exc:
            runs["real"] = WorldRuns("real", "real (realprof)", error=str(exc))
        else:
            runs["real"] = WorldRuns("real", "real (realprof)")
            sim_runs["real"] = WorldRuns("sim", f"sim ({real_twin.profiler.model} model)")

            def real_job(i: int) -> Report:
                return run_scenario(scenario).report

            def sim_real_job(i: int, s=real_twin) -> Report:
                return simulate(dataclasses.replace(s, seed=s.seed + i)).report

            jobs.append(("real", real_job))
            jobs.append(("sim:real", sim_real_job))
    if "go" in worlds:
        try:
            releases = go if go is not None else (path_variant(),)
        except GoWorldError as exc:
            runs["go"] = WorldRuns("go", "go", error=str(exc))
            releases = ()
        for variant in (release.emulated(emulate) for release in releases):
            key = variant.world
            go_twin = twin(scenario, "go", machine, variant)
            try:
                version = find_toolchain(variant.release)[1]
            except GoWorldError as exc:
                runs[key] = WorldRuns(key, key, error=str(exc))
                continue
            runs[key] = WorldRuns(key, f"{key} (real {version})")
            sim_runs[key] = WorldRuns("sim", f"sim ({variant.model} model)")

            def go_job(i: int, v=variant) -> Report:
                try:
                    return run_go_world(scenario, variant=v)[0]
                except GoWorldError as exc:
                    raise CompareError(str(exc)) from None

            def sim_go_job(i: int, s=go_twin) -> Report:
                return simulate(dataclasses.replace(s, seed=s.seed + i)).report

            jobs.append((key, go_job))
            jobs.append((f"sim:{key}", sim_go_job))
    if "sim" in worlds and not sim_runs:
        sim_twin = twin(scenario, "sim", machine)
        sim_runs["sim"] = WorldRuns("sim", "sim")

        def sim_job(i: int, s=sim_twin) -> Report:
            return simulate(dataclasses.replace(s, seed=s.seed + i)).report

        jobs.append(("sim:sim", sim_job))

    from tqdm import tqdm

    total = len(jobs) * repeat
    with tqdm(
        total=total, desc="compare", unit="run", disable=not progress, file=sys.stderr
    ) as bar:
        for i in range(repeat):
            for key, job in jobs:
                bar.set_postfix_str(key)
                target = sim_runs[key.split(":")[1]] if key.startswith("sim:") else runs[key]
                if target.error:
                    bar.update(1)
                    continue
                try:
                    target.reports.append(job(i))
                except CompareError as exc:
                    target.error = str(exc)
                bar.update(1)
    return summarize(scenario, runs, sim_runs, repeat, machine_note)


def _stat(reports: list[Report], name: str) -> dict[str, float] | None:
    values = [getattr(r, name) for r in reports if getattr(r, name) is not None]
    if not values:
        return None
    return {"median": _median(values), "min": min(values), "max": max(values), "n": len(values)}


def _share_stats(reports: list[Report], kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    names = sorted({row.name for r in reports for row in getattr(r, kind)})
    for name in names:
        shares, truths = [], []
        for report in reports:
            rows = {row.name: row for row in getattr(report, kind)}
            row = rows.get(name)
            shares.append(row.share if row else 0.0)
            if row is not None and row.true_share is not None:
                truths.append(row.true_share)
        out[name] = {
            "median": _median(shares),
            "min": min(shares),
            "max": max(shares),
            "true": _median(truths) if truths else None,
        }
    return out


def summarize(
    scenario: Scenario,
    runs: dict[str, WorldRuns],
    sim_runs: dict[str, WorldRuns],
    repeat: int,
    machine_note: str,
) -> dict[str, Any]:
    columns = []
    # realprof's pair, each Go release's pair, then the simulator alone.
    for key in ["real", *(k for k in runs if k != "real"), "sim"]:
        if key in sim_runs:
            columns.append(("sim:" + key, sim_runs[key]))
        if key in runs:
            columns.append((key, runs[key]))
    result: dict[str, Any] = {
        "scenario": scenario.name,
        "repeat": repeat,
        "notes": [machine_note],
        "columns": [],
    }
    for key, world_runs in columns:
        entry = {
            "key": key,
            "label": world_runs.label,
            "error": world_runs.error,
            "fields": {name: _stat(world_runs.reports, name) for name, *_ in ROWS},
            "functions": _share_stats(world_runs.reports, "functions"),
            "threads": _share_stats(world_runs.reports, "threads"),
            "reports": [json.loads(r.to_json()) for r in world_runs.reports],
        }
        result["columns"].append(entry)
    result["pairs"] = [{"sim": f"sim:{key}", "world": key} for key in runs if key in sim_runs]
    # The version each Go world ran, as its reports name it.
    result["go_versions"] = {
        key: sorted({str(r.machine.get("go_version")) for r in world.reports})
        for key, world in runs.items()
        if key.startswith("go") and world.reports
    }
    return result


# -- rendering -------------------------------------------------------------------------


def _gap(kind: str, sim_value: float | None, world_value: float | None) -> float | None:
    if sim_value is None or world_value is None:
        return None
    return world_value - sim_value


def _severity(kind: str, gap: float | None, sim_value: float | None) -> float:
    """How bad a gap is, on one scale: 0.05 of capture ≈ 5 pp ≈ 10% of a count."""
    if gap is None:
        return 0.0
    if kind == "ratio":
        return abs(gap) / 0.05
    if kind in ("pp", "percent"):
        return abs(gap) / 5.0
    base = abs(sim_value) if sim_value else 1.0
    return abs(gap) / base / 0.10


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ratio",):
        return f"{value:.3f}"
    if unit in ("%", "pp", "share %"):
        return f"{value:.1f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per field and per function share, with values and gaps per pair."""
    columns = {c["key"]: c for c in result["columns"]}
    rows = []
    for name, label, unit, kind in ROWS:
        row = {"field": name, "label": label, "unit": unit, "values": {}, "gaps": {}}
        for key, column in columns.items():
            stat = column["fields"].get(name)
            row["values"][key] = stat
        for pair in result["pairs"]:
            sim_stat = row["values"].get(pair["sim"])
            world_stat = row["values"].get(pair["world"])
            sim_value = sim_stat["median"] if sim_stat else None
            world_value = world_stat["median"] if world_stat else None
            gap = _gap(kind, sim_value, world_value)
            row["gaps"][pair["world"]] = {"gap": gap, "severity": _severity(kind, gap, sim_value)}
        rows.append(row)
    functions = sorted({f for c in columns.values() for f in c["functions"]})
    for function in functions:
        row = {
            "field": f"functions.{function}",
            "label": f"share of {function}",
            "unit": "share %",
            "values": {},
            "gaps": {},
        }
        truth = None
        for key, column in columns.items():
            stat = column["functions"].get(function)
            if stat is not None:
                row["values"][key] = {
                    "median": stat["median"] * 100,
                    "min": stat["min"] * 100,
                    "max": stat["max"] * 100,
                }
                if stat.get("true") is not None and not key.startswith("sim"):
                    truth = stat["true"] * 100
        row["truth"] = truth
        for pair in result["pairs"]:
            sim_stat = row["values"].get(pair["sim"])
            world_stat = row["values"].get(pair["world"])
            gap = _gap(
                "pp",
                sim_stat["median"] if sim_stat else None,
                world_stat["median"] if world_stat else None,
            )
            row["gaps"][pair["world"]] = {"gap": gap, "severity": _severity("pp", gap, None)}
        rows.append(row)
    return rows


def render_table(result: dict[str, Any], highlight: int = 3) -> str:
    columns = [c for c in result["columns"]]
    rows = table_rows(result)
    severities = sorted(
        (g["severity"], r["field"], w)
        for r in rows
        for w, g in r["gaps"].items()
        if g["severity"] > 1.0
    )
    worst = {(field, world) for _, field, world in severities[-highlight:]}
    headers = ["", "unit"] + [c["label"] for c in columns]
    headers += [f"{p['world']} − sim" for p in result["pairs"]]
    body = []
    for row in rows:
        cells = [row["label"], row["unit"]]
        for column in columns:
            stat = row["values"].get(column["key"])
            if stat is None:
                cells.append("—")
                continue
            text = _fmt(stat["median"], row["unit"])
            if stat["max"] != stat["min"]:
                text += f" [{_fmt(stat['min'], row['unit'])}–{_fmt(stat['max'], row['unit'])}]"
            cells.append(text)
        for pair in result["pairs"]:
            gap = row["gaps"][pair["world"]]["gap"]
            mark = " ◀" if (row["field"], pair["world"]) in worst else ""
            sign = "+" if gap is not None and gap >= 0 else ""
            cells.append("—" if gap is None else f"{sign}{_fmt(gap, row['unit'])}{mark}")
        body.append(cells)
    widths = [max(len(str(r[i])) for r in [headers, *body]) for i in range(len(headers))]
    lines = [f"{result['scenario']}: median of {result['repeat']} run(s), [min–max]"]
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for cells in body:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]))
    if worst:
        lines.append("◀ the largest gaps between the model and a real world")
    for column in columns:
        if column["error"]:
            lines.append(f"{column['label']}: not run: {column['error']}")
    for note in result["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def plot_compare(result: dict[str, Any], path: Path) -> str:
    """Grouped bars: capture ratio and function shares per world, ranges as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    columns = [c for c in result["columns"] if not c["error"] and c["reports"]]
    functions = sorted({f for c in columns for f in c["functions"]})
    groups = ["capture ratio"] + [f"share: {f}" for f in functions]
    figure = Figure(figsize=(max(6.0, 1.6 * len(groups) + 2), 4.2), dpi=110)
    ax = figure.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(columns))
    palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9"]
    for index, column in enumerate(columns):
        medians, lows, highs = [], [], []
        capture = column["fields"]["capture_ratio"]
        stats = [capture] + [column["functions"].get(f) for f in functions]
        for stat in stats:
            if stat is None:
                medians.append(0.0)
                lows.append(0.0)
                highs.append(0.0)
                continue
            medians.append(stat["median"])
            lows.append(stat["median"] - stat["min"])
            highs.append(stat["max"] - stat["median"])
        xs = [g + (index - (len(columns) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(
            xs,
            medians,
            width,
            yerr=[lows, highs],
            capsize=3,
            label=column["label"],
            color=palette[index % len(palette)],
        )
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
    ax.set_ylabel("ratio / share (0–1)")
    ax.set_title(f"{result['scenario']}: model and reality (median, range of {result['repeat']})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    parts = [f"{c['label']} captures {c['fields']['capture_ratio']['median']:.2f}" for c in columns]
    return f"Capture ratio and per-function shares of {result['scenario']}: " + "; ".join(parts)


# -- command line ----------------------------------------------------------------------


def _worlds(text: str) -> tuple[str, ...]:
    worlds = tuple(w.strip() for w in text.split(",") if w.strip())
    unknown = [w for w in worlds if w not in WORLDS]
    if not worlds or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown world(s) {unknown or text!r}; allowed: {', '.join(WORLDS)}"
        )
    return worlds


def main(argv: list[str]) -> int:
    parser = _Parser(
        prog="python -m realprof compare",
        description="Run a scenario in the simulator and for real, and show them side by side.",
    )
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="runs per world (median, range)")
    parser.add_argument("--worlds", type=_worlds, default=WORLDS, help="sim,real,go")
    parser.add_argument(
        "--go-versions",
        default="",
        help="Go releases the go world runs, e.g. 1.19,1.26 (default: the go on PATH); "
        "fetch them with .ci/go-toolchains",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, help="directory for compare.json and compare.png")
    parser.add_argument(
        "--emulate",
        choices=sorted(EMULATIONS),
        help="run the Go world (each --go-versions release, or the go on PATH) as an older "
        "Go's profiler: go1.17 denies timer_create (lab/go_seccomp.c), so Go falls back to "
        "the process timer alone; the world is named by both, e.g. go1.19-as-go1.17",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.emulate and "go" not in args.worlds:
        parser.error("--emulate runs the Go world: --worlds must include go")
    try:
        go = None
        if args.go_versions:
            go = go_variants(args.go_versions)
            if "go" not in args.worlds:
                raise CompareError("--go-versions runs the Go world: --worlds must include go")
            for variant in go:
                find_toolchain(variant.release)
        scenario = load_scenario(args.scenario, args.overrides)
        result = run_compare(
            scenario,
            args.worlds,
            args.repeat,
            args.scenario,
            progress=not args.no_progress,
            go=go,
            emulate=emulation(args.emulate) if args.emulate else None,
        )
    except (ScenarioError, CompareError, GoWorldError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_table(result))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare.json").write_text(
            json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        alt = plot_compare(result, args.out / "compare.png")
        print(f"wrote compare.json, compare.png to {args.out} ({alt})", file=sys.stderr)
    return 0
