"""grid: the validation grid, the model held against every real world, cell by cell.

`python -m realprof grid [--out docs/data] [--repeat 3] [--worlds sim,real,go]
[--timers process,per-thread,perf] [--merge]`, or `python -m realprof grid --resimulate
docs/data/grid.json` to recompute only the predictions after a change of the model.

Cells: busy threads {1, 2, 4} × rate {100, 200, 250, 500, 1000} Hz × timer {process,
per-thread}, and × rate {100, 250, 1000, 2000, 5000} Hz for the perf_event timer (which
the tick does not cap), once with busy native (GIL-free) threads and once with busy Python
threads. `--timers` runs some timers only; `--merge` puts the cells run into the existing
grid.json instead of replacing it.
Each cell runs in the simulator (the realprof model on this machine's calibrated profile,
`machines/this-machine.yaml`) and for real under realprof (median of `--repeat` runs); the
per-thread cells with native threads also run under the real Go runtime (Go 1.19 arms
per-thread timers beside the process timer, so its twin is the go1.18 model), where Go is
installed.

None of these cells is used by `realprof calibrate` (it measures at 150, 400 and 750 Hz),
so the grid is a held-out test of the calibrated model. Real runs are interleaved: pass k
runs every cell once, so a drift of the host (on a VM, the process timer's same-round
survival changes over minutes) affects all cells alike. Each pass also repeats
calibration's survival runs, and the simulated worlds run last with this session's
medians of p and p-after-switch; the other calibrated values (CPU check bias, handler
cost) come from the machine profile. The survival runs, the medians and the model's
machine are stored with the cells in `grid.json`; `plot_grid` redraws the figure from
that file alone, so the committed figure is reproducible from the committed data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from contract.scenario import Scenario, validate_scenario

THREADS = (1, 2, 4)
RATES_HZ = (100, 200, 250, 500, 1000)
TIMERS = ("process", "per-thread", "perf")
PERF_RATES_HZ = (100, 250, 1000, 2000, 5000)
WORKLOADS = ("native", "python")
QUICK_CELLS = (
    # One cell per regime: unsaturated, tick-capped per thread, process-timer collisions,
    # the GIL, oversubscription.
    ("native", 2, 100, "per-thread"),
    ("native", 2, 1000, "per-thread"),
    ("native", 2, 500, "process"),
    ("native", 1, 1000, "process"),
    ("python", 2, 100, "per-thread"),
    ("python", 2, 500, "process"),
    ("native", 4, 250, "per-thread"),
    ("native", 2, 1000, "perf"),
    ("native", 2, 5000, "perf"),
)


def cell_key(workload: str, threads: int, rate_hz: int, timer: str) -> str:
    return f"{workload}/{threads}t/{rate_hz}Hz/{timer}"


def cell_scenario(
    workload: str,
    threads: int,
    rate_hz: int,
    timer: str,
    duration_s: float,
    machine: dict[str, Any],
    runtime: str = "realprof",
) -> Scenario:
    step = "native" if workload == "native" else "run"
    function = "spin_native" if workload == "native" else "spin_python"
    return validate_scenario(
        {
            "name": cell_key(workload, threads, rate_hz, timer),
            "machine": machine,
            "profiler": {
                "runtime": runtime,
                "timer": "both" if runtime == "go1.18" else timer,
                "rate_hz": rate_hz,
            },
            "workload": {
                "duration_s": duration_s,
                "threads": [
                    {
                        "name": "busy",
                        "count": threads,
                        "program": [{step: {"function": function, "cpu_ms": 1000, "depth": 4}}],
                    }
                ],
            },
        }
    )


def _summary(report) -> dict[str, Any]:
    return {
        "capture_ratio": report.capture_ratio,
        "samples_in_profile": report.samples_in_profile,
        "expected_samples": report.expected_samples,
        "cpu_seconds": report.cpu_seconds,
        "timer_overruns": report.timer_overruns,
        "attribution_error_pp": report.attribution_error_pp,
        "thread_shares": {row.name: row.share for row in report.threads},
        "thread_true_shares": {row.name: row.true_share for row in report.threads},
    }


BUSY_ATTEMPTS = 3


def _real_run(scenario: Scenario, cell: tuple, duration_s: float) -> dict[str, Any]:
    """One real run that got the CPUs it asked for, or the last try, flagged.

    Busy native threads should get min(threads, CPUs) CPUs for the whole run. If another
    process takes a CPU, two threads may take turns on one CPU, and the cell measures a
    different machine (no same-round collisions, for one). Such a run is retried.
    """
    import os

    from lab.workload import run_scenario

    workload, threads, _, _ = cell
    cpus = len(os.sched_getaffinity(0))
    wanted = (min(threads, cpus) if workload == "native" else 1) * duration_s * 0.9
    summary: dict[str, Any] = {}
    for _ in range(BUSY_ATTEMPTS):
        summary = _summary(run_scenario(scenario).report)
        summary["machine_busy"] = summary["cpu_seconds"] < wanted
        if not summary["machine_busy"]:
            break
    return summary


def _simulated(
    cell: tuple[str, int, int, str], world: str, duration_s: float, machine: dict, repeat: int
) -> dict[str, Any]:
    """A cell's simulated world ("sim": the realprof model, "sim-go": go1.18), seeds 1..N."""
    from sim.model import simulate

    runtime = "go1.18" if world == "sim-go" else "realprof"
    scenario = cell_scenario(*cell, duration_s, machine, runtime)
    return _median_of(
        [
            _summary(simulate(dataclasses.replace(scenario, seed=1 + i)).report)
            for i in range(repeat)
        ]
    )


def revalidate(data: dict[str, Any], cpus: int = 2) -> dict[str, Any]:
    """Flag real runs that did not get their CPUs and take medians over clean runs only.

    For data recorded before `_real_run` retried busy runs: a cell whose runs were all
    busy loses its real-world entry (it measured a different machine).
    """
    duration = data["duration_s"]
    dropped = []
    for cell in data["cells"]:
        if "real" not in cell:
            continue
        threads = cell["threads"]
        wanted = (min(threads, cpus) if cell["workload"] == "native" else 1) * duration * 0.9
        runs = cell["real"]["runs"]
        for run in runs:
            run["machine_busy"] = run["cpu_seconds"] < wanted
        clean = [run for run in runs if not run["machine_busy"]]
        if clean:
            cell["real"] = _median_of(clean) | {"runs": runs}
        else:
            cell["real_busy"] = cell.pop("real") | {"runs": runs}
            dropped.append(cell_key(*_as_cell(cell)))
    if dropped:
        data.setdefault("notes", []).append(
            f"{len(dropped)} cell(s) without a run that got its CPUs (another job used a CPU)"
            f" are left out of the real world: {', '.join(dropped)}"
        )
    return data


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs}
    for name in ("capture_ratio", "cpu_seconds", "samples_in_profile", "attribution_error_pp"):
        values = [r[name] for r in runs if r.get(name) is not None]
        out[name] = statistics.median(values) if values else None
    return out


def _as_cell(entry: dict[str, Any]) -> tuple[str, int, int, str]:
    """A grid.json cell entry as the (workload, threads, rate_hz, timer) it measured."""
    return entry["workload"], entry["threads"], entry["rate_hz"], entry["timer"]


def _grid_order(cell: tuple[str, int, int, str]) -> tuple[int, int, int, int]:
    """The grid's order: workload, threads, rate, timer."""
    workload, threads, rate_hz, timer = cell
    return WORKLOADS.index(workload), threads, rate_hz, TIMERS.index(timer)


def cells(quick: bool, timers: tuple[str, ...] = TIMERS) -> list[tuple[str, int, int, str]]:
    if quick:
        return [cell for cell in QUICK_CELLS if cell[3] in timers]
    out = []
    for w in WORKLOADS:
        for n in THREADS:
            for t in timers:
                for r in PERF_RATES_HZ if t == "perf" else RATES_HZ:
                    out.append((w, n, r, t))
    return sorted(out, key=_grid_order)


def merge_grids(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new`'s cells replace or join `old`'s; the run settings of both are kept."""
    cells_by_key = {cell_key(*_as_cell(c)): c for c in [*old["cells"], *new["cells"]]}
    merged = dict(old)
    merged["cells"] = sorted(cells_by_key.values(), key=lambda c: _grid_order(_as_cell(c)))
    notes = []
    for note in dict.fromkeys([*old.get("notes", []), *new.get("notes", [])]):
        # "... left out of the real world: a, b": keep only the cells still without a run
        _head, sep, tail = note.partition("are left out of the real world: ")
        if sep:
            still = [k for k in tail.split(", ") if "real" not in cells_by_key.get(k, {})]
            if not still:
                continue
            note = (
                f"{len(still)} cell(s) without a run that got its CPUs (another job used a "
                f"CPU) {sep}{', '.join(still)}"
            )
        notes.append(note)
    merged["notes"] = notes
    merged.setdefault("runs", [{"command": old.get("command"), "machine": old.get("machine")}])
    merged["runs"] = [
        *merged["runs"],
        {
            "command": new["command"],
            "machine": new["machine"],
            "repeat": new["repeat"],
            "model_machine": new.get("model_machine"),
            "session_calibration": new.get("session_calibration"),
        },
    ]
    return merged


def run_grid(
    worlds: tuple[str, ...] = ("sim", "real", "go"),
    repeat: int = 3,
    duration_s: float = 2.0,
    quick: bool = False,
    progress: bool = True,
    timers: tuple[str, ...] = TIMERS,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    from tqdm import tqdm

    from lab.compare import machine_here

    base = cell_scenario("native", 1, 100, "process", duration_s, {})
    machine, machine_note = machine_here(base, None)
    go_ok = False
    if "go" in worlds:
        from lab.goworld import go_toolchain

        go_ok = go_toolchain() is not None
    grid = cells(quick, timers)
    if only:
        grid = [cell for cell in grid if cell_key(*cell) in only]
    # Real worlds drift (the process timer's same-round survival changes over minutes on
    # a VM), so their repeats are interleaved: pass k runs every cell once, and a drift
    # affects all cells alike instead of whichever cell ran at the wrong minute. Each pass
    # also repeats calibration's survival runs (400 and 750 Hz: not grid cells), and the
    # simulated worlds, deterministic per seed, run last on this session's medians.
    from lab import calibrate

    hz = int(machine.get("kernel_hz") or 250)
    calibrating = (
        "real" in worlds
        and (machine.get("cpus") or 0) >= 2
        and (any(cell[3] == "process" for cell in grid))
    )
    real_jobs: list[tuple[str, Any]] = []
    for _ in range(repeat):
        if calibrating:
            real_jobs += [("calibrate", exp) for exp in calibrate.survival_experiments()]
        for cell in grid:
            if "real" in worlds:
                real_jobs.append(("real", cell))
            if go_ok and cell[0] == "native" and cell[3] == "per-thread":
                real_jobs.append(("go", cell))
    sim_jobs = []
    for cell in grid:
        sim_jobs.append(("sim", cell))
        if go_ok and cell[0] == "native" and cell[3] == "per-thread":
            sim_jobs.append(("sim-go", cell))
    results: dict[str, dict[str, Any]] = {
        cell_key(*cell): {
            "workload": cell[0],
            "threads": cell[1],
            "rate_hz": cell[2],
            "timer": cell[3],
        }
        for cell in grid
    }
    real_runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    survival_runs: list[dict[str, Any]] = []
    with tqdm(
        total=len(sim_jobs) + len(real_jobs),
        desc="grid",
        unit="run",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for world, job in real_jobs:
            if world == "calibrate":
                rate, threads_n = job
                bar.set_postfix_str(f"calibrate {rate} Hz, {threads_n} threads")
                survival_runs.append(calibrate.survival_run(rate, threads_n, duration_s, hz))
            elif world == "real":
                bar.set_postfix_str(f"real {cell_key(*job)}")
                scenario = cell_scenario(*job, duration_s, machine)
                real_runs.setdefault((cell_key(*job), world), []).append(
                    _real_run(scenario, job, duration_s)
                )
            else:
                from lab.goworld import run_go_world

                bar.set_postfix_str(f"go {cell_key(*job)}")
                scenario = cell_scenario(*job, duration_s, machine, "go1.18")
                real_runs.setdefault((cell_key(*job), world), []).append(
                    _summary(run_go_world(scenario)[0])
                )
            bar.update(1)
        session: dict[str, Any] | None = None
        if survival_runs:
            medians = calibrate.survival_medians(survival_runs)
            session = {"runs": survival_runs} | medians
            machine = machine | {k: v for k, v in medians.items() if v is not None}
        for world, cell in sim_jobs:
            bar.set_postfix_str(f"{world} {cell_key(*cell)}")
            results[cell_key(*cell)][world] = _simulated(cell, world, duration_s, machine, repeat)
            bar.update(1)
    for (key, world), runs in real_runs.items():
        results[key][world] = _median_of(runs)
    from lab.machine import machine_facts

    command = "python -m realprof grid" + (" --quick" if quick else "")
    if tuple(timers) != TIMERS:
        command += " --timers " + ",".join(timers)
    if only:
        command += " --cells " + ",".join(only)
    return {
        "command": command,
        "machine": machine_facts(),
        "model_machine": machine,
        "notes": [machine_note]
        + (
            [
                "same-round survival measured in this session, between the grid's passes: "
                f"p = {session['same_round_survival']}, after a context switch "
                f"{session['same_round_survival_after_switch']} (medians of "
                f"{len(session['runs'])} runs at "
                f"{', '.join(str(r) for r in calibrate.SURVIVAL_RATES_HZ)} Hz)"
            ]
            if session
            else []
        ),
        "session_calibration": session,
        "repeat": repeat,
        "duration_s": duration_s,
        "cells": [results[cell_key(*cell)] for cell in grid],
    }


def resimulate(data: dict[str, Any], progress: bool = True) -> dict[str, Any]:
    """Run the simulated worlds of stored grid data again, on the machine stored with it.

    For a change of the model: the real measurements and the session's calibration stay
    as they were measured, only the predictions are recomputed (same seeds, same repeat).
    """
    from tqdm import tqdm

    jobs = [(cell, world) for cell in data["cells"] for world in ("sim", "sim-go") if world in cell]
    with tqdm(
        total=len(jobs), desc="resimulate", unit="cell", disable=not progress, file=sys.stderr
    ) as bar:
        for cell, world in jobs:
            cell[world] = _simulated(
                _as_cell(cell), world, data["duration_s"], data["model_machine"], data["repeat"]
            )
            bar.update(1)
    import datetime

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [n for n in data.get("notes", []) if not n.startswith("predictions recomputed")]
    data["notes"] = [
        *notes,
        f"predictions recomputed on the stored machine by `--resimulate` ({when}); "
        "the real runs are as measured",
    ]
    return data


def gaps(data: dict[str, Any], pair: tuple[str, str] = ("sim", "real")) -> list[dict[str, Any]]:
    """Per cell: predicted and measured capture and their gap (measured − predicted)."""
    model, world = pair
    out = []
    for cell in data["cells"]:
        if model in cell and world in cell:
            predicted = cell[model]["capture_ratio"]
            measured = cell[world]["capture_ratio"]
            out.append(
                {
                    "cell": cell_key(*_as_cell(cell)),
                    "predicted": predicted,
                    "measured": measured,
                    "gap": measured - predicted,
                }
            )
    return out


def _value(cell: dict[str, Any], world: str) -> str:
    return f"{cell[world]['capture_ratio']:.3f}" if world in cell else "—"


def _gap_text(cell: dict[str, Any], model: str, world: str, tolerance: float) -> str:
    if model not in cell or world not in cell:
        return "—"
    gap = cell[world]["capture_ratio"] - cell[model]["capture_ratio"]
    return f"{gap:+.3f}{'!' if abs(gap) > tolerance else ' '}"


def share_checks(
    data: dict[str, Any], pair: tuple[str, str] = ("sim", "real"), z: float = 3.0
) -> list[dict[str, Any]]:
    """Per thread of every multi-thread cell: the profile's share error in each world.

    What is compared is the share's *error*, the profile's share of a thread minus the
    share of the CPU it really used: a real run's threads do not split the CPU exactly as
    the scenario says (another task, an interrupt), and the profile follows the real
    split. The model predicts the error; medians over the runs. The allowed gap is `z`
    standard errors of the difference of two binomial proportions,
    sqrt(s·(1 − s)·(1/n_model + 1/n_world)), with s the predicted share and n each
    world's median samples per run (one run's count, which overstates the noise of a
    median of several). Only the scenario's threads count: a thread of the harness (a
    progress bar's monitor) has no twin in the model.
    """
    model, world = pair
    out = []
    for cell in data["cells"]:
        if cell["threads"] < 2 or model not in cell or world not in cell:
            continue
        n_model = cell[model].get("samples_in_profile") or 0
        n_world = cell[world].get("samples_in_profile") or 0
        if n_model <= 0 or n_world <= 0:
            continue
        names = sorted({n for run in cell[model]["runs"] for n in run.get("thread_shares", {})})

        def median_error(runs: list[dict[str, Any]], name: str) -> float:
            return statistics.median(
                run.get("thread_shares", {}).get(name, 0.0)
                - run.get("thread_true_shares", {}).get(name, 0.0)
                for run in runs
            )

        for name in names:
            share = statistics.median(
                run.get("thread_shares", {}).get(name, 0.0) for run in cell[model]["runs"]
            )
            predicted = median_error(cell[model]["runs"], name)
            measured = median_error(cell[world]["runs"], name)
            se = math.sqrt(max(share * (1 - share), 1e-9) * (1 / n_model + 1 / n_world))
            out.append(
                {
                    "cell": cell_key(*_as_cell(cell)),
                    "thread": name,
                    "model": predicted,
                    "world": measured,
                    "se": se,
                    "ok": abs(measured - predicted) <= z * se,
                }
            )
    return out


def render(data: dict[str, Any], tolerance: float = 0.05) -> str:
    lines = [f"Validation grid ({data['command']}), median of {data['repeat']} run(s)"]
    header = (
        f"  {'cell':<32} {'sim':>6} {'real':>6} {'gap':>7}   {'go1.18':>6} {'go':>6} {'gap':>7}"
    )
    lines.append(header)
    for cell in data["cells"]:
        key = cell_key(*_as_cell(cell))
        lines.append(
            f"  {key:<32} {_value(cell, 'sim'):>6} {_value(cell, 'real'):>6} "
            f"{_gap_text(cell, 'sim', 'real', tolerance):>7}   {_value(cell, 'sim-go'):>6} "
            f"{_value(cell, 'go'):>6} {_gap_text(cell, 'sim-go', 'go', tolerance):>7}"
        )
    for pair, name in ((("sim", "real"), "realprof"), (("sim-go", "go"), "Go")):
        g = gaps(data, pair)
        if g:
            within = sum(abs(x["gap"]) <= tolerance for x in g)
            worst = max(g, key=lambda x: abs(x["gap"]))
            lines.append(
                f"{name}: {within}/{len(g)} cells within {tolerance} of the model; "
                f"largest gap {worst['gap']:+.3f} at {worst['cell']}"
            )
    for pair, name in ((("sim", "real"), "realprof"), (("sim-go", "go"), "Go")):
        checks = share_checks(data, pair)
        if checks:
            bad = [c for c in checks if not c["ok"]]
            cells_with = len({c["cell"] for c in checks})
            lines.append(
                f"{name}: {len(checks) - len(bad)}/{len(checks)} thread share errors in "
                f"{cells_with} multi-thread cells within 3 binomial standard errors"
                + (
                    "; outside: "
                    + ", ".join(
                        f"{c['cell']} {c['thread']} {c['world']:+.3f} vs {c['model']:+.3f} "
                        f"(SE {c['se']:.3f})"
                        for c in bad
                    )
                    if bad
                    else ""
                )
            )
    lines.append("! = outside the tolerance")
    for note in data.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def plot_grid(data: dict[str, Any], path: Path) -> str:
    """The grid's figure; drawn by `figures.plots` so the docs generator can redraw it."""
    from figures.plots import plot_validation_grid

    return plot_validation_grid(data, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m realprof grid", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/data"), help="directory for grid.json"
    )
    parser.add_argument("--figure", type=Path, help="also draw the figure here (PNG or SVG)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per real run")
    parser.add_argument("--worlds", default="sim,real,go")
    parser.add_argument("--quick", action="store_true", help="the reduced grid (9 cells)")
    parser.add_argument(
        "--timers", default=",".join(TIMERS), help="timers to run (default: all three)"
    )
    parser.add_argument(
        "--merge", action="store_true", help="merge the cells run into the existing grid.json"
    )
    parser.add_argument(
        "--cells",
        default="",
        help="run only these cells, e.g. python/2t/100Hz/perf,native/4t/250Hz/process",
    )
    parser.add_argument("--plot-only", type=Path, metavar="GRID_JSON", help="redraw from data")
    parser.add_argument(
        "--resimulate",
        type=Path,
        metavar="GRID_JSON",
        help="recompute the simulated worlds of stored data (after a model change) in place",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.resimulate:
        try:
            data = json.loads(args.resimulate.read_text(encoding="utf-8"))
            data["cells"], data["model_machine"]
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {args.resimulate}: cannot read grid data: {exc}", file=sys.stderr)
            return 2
        data = resimulate(data, not args.no_progress)
        sys.stdout.write(render(data))
        args.resimulate.write_text(
            json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        print(f"wrote {args.resimulate}", file=sys.stderr)
        if args.figure:
            print(plot_grid(data, args.figure), file=sys.stderr)
        return 0
    if args.plot_only:
        try:
            data = json.loads(args.plot_only.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: {args.plot_only}: cannot read grid data: {exc}", file=sys.stderr)
            return 2
        sys.stdout.write(render(data))
        if args.figure:
            print(plot_grid(data, args.figure), file=sys.stderr)
        return 0
    worlds = tuple(w.strip() for w in args.worlds.split(",") if w.strip())
    unknown = set(worlds) - {"sim", "real", "go"}
    if unknown or args.repeat < 1:
        print(
            f"error: --worlds takes sim,real,go (got {sorted(unknown)}); --repeat >= 1",
            file=sys.stderr,
        )
        return 2
    timers = tuple(t.strip() for t in args.timers.split(",") if t.strip())
    bad = [t for t in timers if t not in TIMERS]
    if bad or not timers:
        print(
            f"error: --timers takes {','.join(TIMERS)} (got {','.join(bad) or 'nothing'})",
            file=sys.stderr,
        )
        return 2
    only = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    known = {cell_key(*cell) for cell in cells(args.quick, timers)}
    if set(only) - known:
        print(
            f"error: --cells: unknown cell(s) {', '.join(sorted(set(only) - known))}; cells "
            "look like python/2t/100Hz/perf (workload/threads t/rate Hz/timer)",
            file=sys.stderr,
        )
        return 2
    name = "grid-quick.json" if args.quick else "grid.json"
    old = None
    if args.merge:
        try:
            old = json.loads((args.out / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: --merge: cannot read {args.out / name}: {exc}", file=sys.stderr)
            return 2
    data = run_grid(
        worlds, args.repeat, args.duration, args.quick, not args.no_progress, timers, only
    )
    if old is not None:
        data = merge_grids(old, data)
    sys.stdout.write(render(data))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / name).write_text(
        json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out / name}", file=sys.stderr)
    if args.figure:
        print(plot_grid(data, args.figure), file=sys.stderr)
    return 0
