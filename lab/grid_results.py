"""Grid data (`grid.json`) read back: the cells' gaps, share checks and the text table.

The grid (`lab.grid`) stores, per cell and world, the median of the runs with the runs
themselves. This module is what is computed from that data alone, so it serves a fresh
run, a `--plot-only` redraw and `--resimulate` alike: `median_of` (a world's entry from
its runs), `gaps` (measured − predicted capture per cell), `share_checks` (each thread's
share error against the model's, within binomial standard errors), `scatter_checks` (a
process-timer gap beside its runs' spread and its binomial standard error), `render` (the
table), `merge_grids` (a partial run merged into stored data) and `revalidate` (runs
recorded before busy runs were retried, flagged after the fact).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from lab.go_seccomp import EMULATIONS
from lab.grid_cells import as_cell, cell_key, grid_order


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A world's entry in a cell: the runs, and the median of each measured value."""
    out: dict[str, Any] = {"runs": runs}
    for name in ("capture_ratio", "cpu_seconds", "samples_in_profile", "attribution_error_pp"):
        values = [r[name] for r in runs if r.get(name) is not None]
        out[name] = statistics.median(values) if values else None
    return out


def revalidate(data: dict[str, Any], cpus: int = 2) -> dict[str, Any]:
    """Flag real runs that did not get their CPUs and take medians over clean runs only.

    For data recorded before `lab.grid` retried busy runs: a cell whose runs were all
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
            cell["real"] = median_of(clean) | {"runs": runs}
        else:
            cell["real_busy"] = cell.pop("real") | {"runs": runs}
            dropped.append(cell_key(*as_cell(cell)))
    if dropped:
        data.setdefault("notes", []).append(
            f"{len(dropped)} cell(s) without a run that got its CPUs (another job used a CPU)"
            f" are left out of the real world: {', '.join(dropped)}"
        )
    return data


def merge_grids(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new`'s cells replace or join `old`'s; the run settings of both are kept."""
    cells_by_key = {cell_key(*as_cell(c)): c for c in [*old["cells"], *new["cells"]]}
    merged = dict(old)
    merged["cells"] = sorted(cells_by_key.values(), key=lambda c: grid_order(as_cell(c)))
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
                    "cell": cell_key(*as_cell(cell)),
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
                    "cell": cell_key(*as_cell(cell)),
                    "thread": name,
                    "model": predicted,
                    "world": measured,
                    "se": se,
                    "ok": abs(measured - predicted) <= z * se,
                }
            )
    return out


BINOMIAL_BELOW = 0.95  # scatter_checks: a capture the collisions or the tick ceiling set


def scatter_checks(
    data: dict[str, Any], pair: tuple[str, str] = ("sim", "real"), timer: str = "process"
) -> list[dict[str, Any]]:
    """Per multi-thread cell of `timer`: the gap beside the two scales of noise it is read
    against. `span` is the spread (max − min) of the world's runs: on the process timer it
    follows *p*, which drifts from run to run far more than sampling noise. `se` is the
    binomial standard error of the gap, sqrt(c·(1 − c)·(1/n + 1/n)), with c the predicted
    capture and n the expected samples of one run (threads × rate × duration) in each
    world; one run's, so it overstates the noise of a median of several. Where the model
    predicts a capture above `BINOMIAL_BELOW` the few samples lost are not a binomial
    draw (a capture of 1.003 has no binomial variance), and `se` is None.
    """
    model, world = pair
    out = []
    for cell in data["cells"]:
        if cell["timer"] != timer or cell["threads"] < 2:
            continue
        if model not in cell or world not in cell:
            continue
        runs = [r["capture_ratio"] for r in cell[world].get("runs", [])]
        if not runs:
            continue
        predicted = cell[model]["capture_ratio"]
        expected = cell["threads"] * cell["rate_hz"] * data["duration_s"]
        binomial = predicted < BINOMIAL_BELOW
        se = math.sqrt(predicted * (1 - predicted) * 2 / expected) if binomial else None
        gap = cell[world]["capture_ratio"] - predicted
        out.append(
            {
                "cell": cell_key(*as_cell(cell)),
                "gap": gap,
                "span": max(runs) - min(runs),
                "se": se,
                "runs_above": sum(r > predicted for r in runs),
                "runs": len(runs),
            }
        )
    return out


def _scatter_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    for pair, name in ((("sim", "real"), "realprof"), (("sim-cprobe", "cprobe"), "C probe")):
        checks = scatter_checks(data, pair)
        if not checks:
            continue
        lines.append(
            f"  {name}, process timer: gap against the spread of the runs and the binomial "
            "standard error (SE) of one run"
        )
        lines.append(f"  {'cell':<32} {'gap':>7} {'span':>6} {'SE':>6} {'gap/SE':>6} runs above")
        for c in checks:
            se, z = (
                ("—", "—") if c["se"] is None else (f"{c['se']:.3f}", f"{c['gap'] / c['se']:+.1f}")
            )
            lines.append(
                f"  {c['cell']:<32} {c['gap']:+7.3f} {c['span']:6.3f} {se:>6} {z:>6} "
                f"{c['runs_above']}/{c['runs']}"
            )
    return lines


def render(data: dict[str, Any], tolerance: float = 0.05) -> str:
    """The grid as a table: capture per world and gap per cell, then the summary lines."""
    lines = [f"Validation grid ({data['command']}), median of {data['repeat']} run(s)"]
    header = (
        f"  {'cell':<32} {'sim':>6} {'real':>6} {'gap':>7}   {'go1.18':>6} {'go':>6} {'gap':>7}"
    )
    lines.append(header)
    for cell in data["cells"]:
        key = cell_key(*as_cell(cell))
        lines.append(
            f"  {key:<32} {_value(cell, 'sim'):>6} {_value(cell, 'real'):>6} "
            f"{_gap_text(cell, 'sim', 'real', tolerance):>7}   {_value(cell, 'sim-go'):>6} "
            f"{_value(cell, 'go'):>6} {_gap_text(cell, 'sim-go', 'go', tolerance):>7}"
        )
    probed = [cell for cell in data["cells"] if "cprobe" in cell]
    if probed:
        lines.append(
            "  C probe (lab/cprobe.c: a trivial handler, no reader, no Python) in the same "
            "passes, against its own model:"
        )
        lines.append(f"  {'cell':<32} {'cprobe':>6} {'probe':>6} {'gap':>7}")
        for cell in probed:
            gap = _gap_text(cell, "sim-cprobe", "cprobe", tolerance)
            lines.append(
                f"  {cell_key(*as_cell(cell)):<32} {_value(cell, 'sim-cprobe'):>6} "
                f"{_value(cell, 'cprobe'):>6} {gap:>7}"
            )
    emulated = [e for e in EMULATIONS.values() if any(e.world in c for c in data["cells"])]
    for e in emulated:
        lines.append(
            f"  {e.world} (the installed Go with {e.denied} denied, lab/go_seccomp.c), "
            f"against the {e.runtime} model:"
        )
        lines.append(f"  {'cell':<32} {e.runtime:>6} {'go':>6} {'gap':>7}")
        for cell in (c for c in data["cells"] if e.world in c):
            gap = _gap_text(cell, e.sim_world, e.world, tolerance)
            lines.append(
                f"  {cell_key(*as_cell(cell)):<32} {_value(cell, e.sim_world):>6} "
                f"{_value(cell, e.world):>6} {gap:>7}"
            )
    worlds = (
        (("sim", "real"), "realprof"),
        (("sim-cprobe", "cprobe"), "C probe"),
        (("sim-go", "go"), "Go"),
        *(((e.sim_world, e.world), e.world) for e in emulated),
    )
    for pair, name in worlds:
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
    lines.extend(_scatter_lines(data))
    lines.append("! = outside the tolerance")
    for note in data.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"
