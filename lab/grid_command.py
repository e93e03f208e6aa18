"""The validation grid's command line: `python -m realprof grid` (`lab.grid` runs it).

Parses the options, runs the grid or reads stored data (`--plot-only`, `--resimulate`),
prints the table (`lab.grid_results.render`), writes grid.json and draws the figure
(`lab.grid_figure`). Bad options get one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import lab.grid
from lab import cprobe
from lab.go_seccomp import EMULATIONS, emulation
from lab.go_toolchain import GoWorldError, find_toolchain
from lab.go_variant import go_variants
from lab.grid import resimulate, run_grid
from lab.grid_cells import TIMERS, cell_key, cells
from lab.grid_results import merge_grids, read_grid, render


def _median_text(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "—"


def survival_lines(data: dict[str, Any]) -> list[str]:
    """What each process's survival runs counted and captured (medians per rate), and the
    values its model ran on (p counted in the two-thread runs, p after a switch fitted,
    with the fit's standard error where stored: `lab.survival_fit`; the probe's model
    takes realprof's where its own runs gave none)."""
    probe = data.get("cprobe_calibration") or {}
    machine = data.get("model_machine") or {}
    lines = []
    for key, who, world in (
        ("session_calibration", "realprof", "sim"),
        ("cprobe_calibration", "C probe", "sim-cprobe"),
    ):
        calibration = data.get(key) or {}
        runs = calibration.get("runs", [])
        for n in sorted({r["threads"] for r in runs}):
            mine = [r for r in runs if r["threads"] == n]
            per_rate = []
            for rate in sorted({r["rate_hz"] for r in mine}):
                at = [r for r in mine if r["rate_hz"] == rate]
                captures = [r["capture_ratio"] for r in at if "capture_ratio" in r]
                counted = [r["p"] for r in at if r.get("p") is not None]
                per_rate.append(
                    f"{rate} Hz capture {_median_text(captures)} p {_median_text(counted)}"
                )
            counted = [r["p"] for r in mine if r.get("p") is not None]
            lines.append(
                f"{who} survival runs, {n} threads (medians): {', '.join(per_rate)}; "
                f"p counted {_median_text(counted)}"
            )
        if runs:
            on = lab.grid.world_machine(machine, world, probe)
            se = calibration.get("same_round_survival_after_switch_se")
            lines.append(
                f"{who} model ran on: p {on.get('same_round_survival')}, "
                f"after a switch {on.get('same_round_survival_after_switch')}"
                + (f" (the fit's standard error {se})" if se is not None else "")
            )
    return lines


def table(data: dict[str, Any]) -> str:
    """The printed grid: the verdicts (`lab.grid_results.render`), then the survival runs."""
    return render(data) + "".join(f"{line}\n" for line in survival_lines(data))


def plot_grid(data: dict[str, Any], path: Path) -> str:
    """The grid's figure (`lab.grid_figure`), drawn from the data alone."""
    # Imported here: the figure loads matplotlib, which only --figure needs.
    from lab.grid_figure import plot_validation_grid

    return plot_validation_grid(data, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m realprof grid", description=lab.grid.__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/data"), help="directory for grid.json"
    )
    parser.add_argument("--figure", type=Path, help="also draw the figure here (PNG or SVG)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per real run")
    parser.add_argument("--worlds", default="sim,real,go")
    parser.add_argument(
        "--go-versions",
        default="",
        help="Go releases to run the Go cells on, e.g. 1.19,1.23,1.26,1.27 (default: the go "
        "on PATH); fetch them with .ci/go-toolchains",
    )
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
    parser.add_argument(
        "--cprobe",
        action="store_true",
        help="also run the C probe (lab/cprobe.c, needs gcc) beside realprof in the native "
        "process-timer cells, and its own survival runs, in the same passes",
    )
    parser.add_argument(
        "--go-emulate",
        choices=sorted(EMULATIONS),
        help="also run each Go release with timer_create denied (lab/go_seccomp.c) in the "
        "native process-timer cells: world go1.19-as-go1.17, against the go1.17 model",
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
            data = read_grid(args.resimulate.read_text(encoding="utf-8"))
            data["cells"], data["model_machine"]
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {args.resimulate}: cannot read grid data: {exc}", file=sys.stderr)
            return 2
        data = resimulate(data, not args.no_progress)
        args.resimulate.write_text(
            json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        print(f"wrote {args.resimulate}", file=sys.stderr)
        sys.stdout.write(table(data))
        if args.figure:
            print(plot_grid(data, args.figure), file=sys.stderr)
        return 0
    if args.plot_only:
        try:
            data = read_grid(args.plot_only.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: {args.plot_only}: cannot read grid data: {exc}", file=sys.stderr)
            return 2
        sys.stdout.write(table(data))
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
    if args.go_emulate and "go" not in worlds:
        print("error: --go-emulate runs the Go world: --worlds must include go", file=sys.stderr)
        return 2
    go = None
    if args.go_versions:
        try:
            go = go_variants(args.go_versions)
            if "go" not in worlds:
                raise GoWorldError("--go-versions runs the Go world: --worlds must include go")
            for variant in go:
                find_toolchain(variant.release)
        except GoWorldError as exc:
            print(f"error: {exc}", file=sys.stderr)
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
    if args.cprobe:
        if "real" not in worlds:
            print(
                "error: --cprobe runs beside realprof: --worlds must include real", file=sys.stderr
            )
            return 2
        try:
            cprobe.build()
        except cprobe.CProbeError as exc:
            print(f"error: --cprobe: {exc}", file=sys.stderr)
            return 2
    name = "grid-quick.json" if args.quick else "grid.json"
    old = None
    if args.merge:
        try:
            old = read_grid((args.out / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: --merge: cannot read {args.out / name}: {exc}", file=sys.stderr)
            return 2
    data = run_grid(
        worlds,
        args.repeat,
        args.duration,
        args.quick,
        not args.no_progress,
        timers,
        only,
        with_cprobe=args.cprobe,
        go=go,
        go_emulate=emulation(args.go_emulate) if args.go_emulate else None,
    )
    if old is not None:
        data = merge_grids(old, data)
    # Written before it is printed: a session of real runs must not be lost to the table.
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / name).write_text(
        json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out / name}", file=sys.stderr)
    sys.stdout.write(table(data))
    if args.figure:
        print(plot_grid(data, args.figure), file=sys.stderr)
    return 0
