"""Grid data (`grid.json`) read back: the cells' gaps, share checks and the text table.

The grid (`lab.grid`) stores, per cell and world, the median of the runs with the runs
themselves. This module is what is computed from that data alone, so it serves a fresh
run, a `--plot-only` redraw and `--resimulate` alike: `median_of` (a world's entry from
its runs), `gaps` (measured − predicted capture per cell), `scatter_checks` (a
process-timer gap beside its runs' spread and its binomial standard error), `tolerance`
(how far a cell's gap may go: 0.05, or three standard errors where the run-to-run
scatter of p sets more), `p_offset_check` (whether a group of cells leans beyond what
the session's own estimate of p explains), `render` (the table), `merge_grids` (a
partial run merged into stored data) and `revalidate` (runs recorded before busy runs
were retried, flagged after the fact), and `read_grid` (the data from its file, older
data's Go worlds keyed by release). `go_pairs` lists the Go worlds (one per release,
`go1.23`, and one per emulated release, `go1.19-as-go1.17`) with the twin each is held
against (`sim-go1.18`, `sim-go1.17`), from the `go_versions` the grid stored or, where
it stored none, from the world's key (`lab.go_variant`). The table's share checks are
`lab.grid_shares`; the error of a median of runs, `lab.medians`.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

from lab.go_variant import variant_of_world
from lab.grid_cells import as_cell, cell_key, grid_order
from lab.grid_shares import share_checks
from lab.machine import cpus_wanted, got_its_cpus
from lab.medians import median_variance

# Grid data written before the Go world took a release ran the go on PATH, Go 1.19
# (Debian bookworm's golang-go), as world "go" beside its twin "sim-go", the go1.18 model,
# and its go1.17 emulation as "go(go1.17 emulated)" beside "sim-go(go1.17 emulated)".
_UNVERSIONED_GO = {
    "go": "go1.19",
    "sim-go": "sim-go1.18",
    "go(go1.17 emulated)": "go1.19-as-go1.17",
    "sim-go(go1.17 emulated)": "sim-go1.17",
}
_UNVERSIONED_MODELS = {"go1.19": {"model": "go1.18"}, "go1.19-as-go1.17": {"model": "go1.17"}}


def read_grid(text: str) -> dict[str, Any]:
    """Grid data from its JSON text, with the Go worlds of older data keyed by release."""
    data = json.loads(text)
    renamed = set()
    for cell in data.get("cells", []):
        for old, new in _UNVERSIONED_GO.items():
            if old in cell:
                cell[new] = cell.pop(old)
                renamed.add(new)
    for world, described in _UNVERSIONED_MODELS.items():
        if world in renamed:
            data.setdefault("go_versions", {}).setdefault(world, described)
    return data


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A world's entry in a cell: the runs, and the median of each measured value."""
    out: dict[str, Any] = {"runs": runs}
    names = ("capture_ratio", "cpu_seconds", "samples_in_profile", "attribution_error_pp")
    for name in (*names, "profile_overhang_s"):
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
        wanted = cpus_wanted(cell["workload"], cell["threads"], cpus)
        runs = cell["real"]["runs"]
        for run in runs:
            run["machine_busy"] = not got_its_cpus(run["cpu_seconds"], wanted, duration)
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
    merged["go_versions"] = old.get("go_versions", {}) | new.get("go_versions", {})
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
                    "tolerance": tolerance(data, cell, pair),
                }
            )
    return out


def go_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(twin, Go world) of every Go world in the grid, in the order the grid ran them.

    The twin's model is the one stored in `go_versions`; a world the grid did not
    describe there is held against the model its key names (`lab.go_variant`: its
    release's, or its emulation's).
    """
    described = data.get("go_versions", {})
    found = {w: v for cell in data["cells"] for w in cell if (v := variant_of_world(w))}
    worlds = [w for w in described if w in found] + sorted(set(found) - set(described))
    return [
        (f"sim-{described[w]['model']}" if w in described else found[w].twin, w) for w in worlds
    ]


def _median_ms(data: dict[str, Any], world: str) -> float | None:
    """A world's median `profile_overhang_s` over the cells, in ms (None if unrecorded)."""
    values = [
        cell[world]["profile_overhang_s"]
        for cell in data["cells"]
        if cell.get(world, {}).get("profile_overhang_s") is not None
    ]
    return statistics.median(values) * 1000 if values else None


def go_world_summary(data: dict[str, Any], world: str) -> dict[str, Any] | None:
    """One Go world over the grid's cells, or None if it did not run: its twin, the median
    capture measured and predicted, and how long the profile ran past the stop (ms)."""
    twin = dict((w, t) for t, w in go_pairs(data)).get(world)
    both = [c for c in data["cells"] if world in c and twin in c]
    if twin is None or not both:
        return None
    return {
        "twin": twin,
        "cells": len(both),
        "capture": statistics.median(c[world]["capture_ratio"] for c in both),
        "model_capture": statistics.median(c[twin]["capture_ratio"] for c in both),
        "overhang_ms": _median_ms(data, world),
        "model_overhang_ms": _median_ms(data, twin),
    }


def go_title(data: dict[str, Any], world: str) -> str:
    """A Go world in words: `Go 1.23 (go1.23.5)`, `Go 1.19 as go1.17 (timer_create
    denied) (go1.19.8)`."""
    version = data.get("go_versions", {}).get(world, {}).get("version")
    variant = variant_of_world(world)
    name = variant.title if variant else f"Go {world.removeprefix('go')}"
    return f"{name} ({version})" if version else name


def _value(cell: dict[str, Any], world: str) -> str:
    return f"{cell[world]['capture_ratio']:.3f}" if world in cell else "—"


def _gap_text(data: dict[str, Any], cell: dict[str, Any], model: str, world: str) -> str:
    if model not in cell or world not in cell:
        return "—"
    gap = cell[world]["capture_ratio"] - cell[model]["capture_ratio"]
    return f"{gap:+.3f}{'!' if abs(gap) > tolerance(data, cell, (model, world)) else ' '}"


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


FIXED_TOLERANCE = 0.05
# Standard errors a gap may reach before a cell is outside: 3, as the share checks.
TOLERANCE_SE = 3.0
# Cells whose capture moves less than this per unit of p do not follow p.
MIN_SLOPE = 0.05


def _follows_p(cell: dict[str, Any], model: str, threads: int) -> bool:
    """A process-timer cell of `threads` busy threads whose twin's capture moves with p."""
    slope = cell.get(model, {}).get("capture_per_p")
    return (
        cell["timer"] == "process"
        and cell["threads"] == threads
        and bool(slope)
        and abs(slope) >= MIN_SLOPE
    )


def _p_scatter(
    data: dict[str, Any], pair: tuple[str, str], threads: int, leave_out: dict[str, Any] | None
) -> tuple[float, float] | None:
    """(s_w, twin variance): how far p scatters from run to run in the world's runs, and
    the variance of the p its twin used; None with fewer than three survival runs.

    s_w comes from the world's cells of `threads` busy threads whose capture follows p,
    but the one judged (`leave_out`, so that a miss cannot widen its own tolerance): each
    cell's runs scatter by slope × p's scatter, so s_w² = Σ(n − 1)·var / Σ(n − 1)·slope²,
    which weighs a cell by how much p moves it. Where no such cell has two runs, s_w is
    the survival runs' scatter s_k.

    The twin's p is the median of the session's k survival runs (`_session_ps`), with
    variance `median_variance(s_k, k)`. A twin of more than two threads runs on two
    values, p from the two-thread runs and p after a switch, and its slope moves both
    together, so its variance is the larger of theirs: p after a switch's is the fit's
    standard error where the calibration stored one (`lab.survival_fit`), else that of
    the four-thread runs' counted median, which older data's twins ran on."""
    model, world = pair
    ps = _session_ps(data, model, threads)
    if len(ps) < 3:
        return None
    s_k = statistics.stdev(ps)
    twin = median_variance(s_k, len(ps))
    if threads > 2:
        fit_se = _calibration(data, model).get("same_round_survival_after_switch_se")
        if fit_se:
            twin = fit_se**2
        two = _session_ps(data, model, 2)
        if len(two) >= 3:
            twin = max(twin, median_variance(statistics.stdev(two), len(two)))
    squares = weights = 0.0
    for cell in data["cells"]:
        runs = [r["capture_ratio"] for r in cell.get(world, {}).get("runs", [])]
        if cell is leave_out or not _follows_p(cell, model, threads) or len(runs) < 2:
            continue
        squares += (len(runs) - 1) * statistics.variance(runs)
        weights += (len(runs) - 1) * cell[model]["capture_per_p"] ** 2
    s_w = math.sqrt(squares / weights) if weights else s_k
    return s_w, twin


def tolerance(data: dict[str, Any], cell: dict[str, Any], pair: tuple[str, str]) -> float:
    """The gap a cell's world may show against its twin: 0.05, or more where the run-to-run
    scatter of the same-round survival p makes 0.05 unreachable.

    On the process timer the capture follows p (chapter 3), and p scatters from one 2 s
    run to the next far more than its counting error (single runs 0.2-0.8 on this VM).
    Both sides of the gap carry that scatter, each measured where it happens: the world's
    median of its r runs (s_w: `_p_scatter`, the world's other cells with as many
    busy threads), and the p its twin used, the median of the session's k survival runs
    (s_k: their standard deviation; the probe's own runs for the probe; for cells with
    more threads than two, the larger error of the two values their twin runs on:
    `_p_scatter`). With the twin's capture per unit of p (`capture_per_p`, the model at
    p = 1 minus at p = 0, both values moved together) the standard error of the gap is
    |slope|·sqrt(f_r²·s_w²/r + f_k²·s_k²/k), f
    the median's factor (`lab.medians.MEDIAN_FACTOR`), and the tolerance is
    `TOLERANCE_SE` of those where that exceeds 0.05. The two terms add
    as if independent, but the passes interleave the cell's runs with the survival runs,
    so a drift over minutes moves both sides alike and partly cancels in the gap: the
    tolerance is an upper bound, generous to the model. Cells whose capture does not
    follow p (per-thread timers, one busy thread) keep 0.05. A bias that many cells share
    hides in wide tolerances: `p_offset_check` looks for it."""
    model, world = pair
    scatter = _p_scatter(data, pair, cell["threads"], cell)
    if not _follows_p(cell, model, cell["threads"]) or scatter is None:
        return FIXED_TOLERANCE
    s_w, twin = scatter
    r = len(cell.get(world, {}).get("runs", [])) or 1
    se = abs(cell[model]["capture_per_p"]) * math.sqrt(median_variance(s_w, r) + twin)
    return max(FIXED_TOLERANCE, round(TOLERANCE_SE * se, 3))


def _calibration(data: dict[str, Any], model: str) -> dict[str, Any]:
    """The session's survival values and runs a twin used: the probe's for the probe."""
    key = "cprobe_calibration" if model == "sim-cprobe" else "session_calibration"
    return data.get(key) or {}


def _session_ps(data: dict[str, Any], model: str, threads: int) -> list[float]:
    """The p the session's survival runs counted for a twin's cells of `threads` threads:
    the probe's own runs for the probe, four-thread runs for cells with more than two."""
    wanted = 4 if threads > 2 else 2
    return [
        r["p"]
        for r in _calibration(data, model).get("runs", [])
        if r.get("p") is not None and r.get("threads") == wanted
    ]


def p_offset_check(
    data: dict[str, Any], pair: tuple[str, str], threads: int
) -> dict[str, Any] | None:
    """Do a world's cells lean one way where their capture follows p, beyond what the
    session's own estimate of p explains?

    Over its process-timer cells with `threads` busy threads whose capture moves with p,
    each gap divided by the cell's slope (`capture_per_p`) is the p the cell behaves as
    if it had, minus the p its twin used. Their mean d would be zero for a model without
    bias but for two errors: each cell's median of its r runs (taken as independent from
    cell to cell, with s_w pooled as in `tolerance` but over all the group's cells; where
    no cell has two runs, the survival runs' scatter) and the session's median of its k
    survival runs, which every cell's twin used alike. That second error is shared: a
    session that counted p low puts every gap above the model, so a count of signs would
    take bad luck in k runs for a bias. The standard error is sqrt(Σ f_r²·s_w²/r / n² +
    f_k²·s_k²/k) (for more than two threads, the larger of its two values': `_p_scatter`);
    `p_value` is the two-sided normal probability of a mean offset at least as large
    from an unbiased model.

    An approximation, on two counts: the passes interleave the cells' runs with the
    survival runs, so drift within a pass is shared by both and the split into an
    independent and a shared part is not exact; and a cell with more threads than CPUs
    follows both p and p after a switch (its slope moves them together), while the
    shared term takes the larger of their errors, not their sum: the fit of p after a
    switch is made given the counted p, so their errors partly cancel."""
    model, world = pair
    offsets, runs_per_cell, above, below = [], [], 0, 0
    for cell in data["cells"]:
        if world not in cell or not _follows_p(cell, model, threads):
            continue
        gap = cell[world]["capture_ratio"] - cell[model]["capture_ratio"]
        offsets.append(gap / cell[model]["capture_per_p"])
        above += gap > 0
        below += gap < 0
        runs_per_cell.append(len(cell[world].get("runs", [])) or 1)
    scatter = _p_scatter(data, pair, threads, leave_out=None)
    if len(offsets) < 2 or scatter is None:
        return None
    s_w, twin = scatter
    n = len(offsets)
    own = sum(median_variance(s_w, r) for r in runs_per_cell) / n**2
    se = math.sqrt(own + twin)
    mean = statistics.fmean(offsets)
    # With no scatter anywhere, any offset at all is a lean.
    lean_without_scatter = math.copysign(math.inf, mean) if mean else 0.0
    z = mean / se if se else lean_without_scatter
    return {
        "cells": n,
        "above": above,
        "below": below,
        "offset_p": mean,
        "se": se,
        "z": z,
        "p_value": math.erfc(abs(z) / math.sqrt(2)),
    }


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


def render(data: dict[str, Any]) -> str:
    """The grid as a table: capture per world and gap per cell, then the summary lines."""
    lines = [f"Validation grid ({data['command']}), median of {data['repeat']} run(s)"]
    realprof = [cell for cell in data["cells"] if "sim" in cell or "real" in cell]
    if realprof:
        lines.append(f"  {'cell':<32} {'sim':>6} {'real':>6} {'gap':>7}")
    for cell in realprof:
        lines.append(
            f"  {cell_key(*as_cell(cell)):<32} {_value(cell, 'sim'):>6} "
            f"{_value(cell, 'real'):>6} {_gap_text(data, cell, 'sim', 'real'):>7}"
        )
    pairs = go_pairs(data)
    go_cells = [cell for cell in data["cells"] if any(w in cell for _, w in pairs)]
    if go_cells:
        lines.append(
            "  The real Go runtime, each release (or emulated release) against its model "
            "(model, measured, gap):"
        )
        lines.append(
            f"  {'cell':<32}"
            + "".join(f" {twin[4:]:>10} {world:>8} {'gap':>7}  " for twin, world in pairs)
        )
    for cell in go_cells:
        lines.append(
            f"  {cell_key(*as_cell(cell)):<32}"
            + "".join(
                f" {_value(cell, twin):>10} {_value(cell, world):>8} "
                f"{_gap_text(data, cell, twin, world):>7}  "
                for twin, world in pairs
            )
        )
    probed = [cell for cell in data["cells"] if "cprobe" in cell]
    if probed:
        lines.append(
            "  C probe (lab/cprobe.c: a trivial handler, no reader, no Python) in the same "
            "passes, against its own model:"
        )
        lines.append(f"  {'cell':<32} {'cprobe':>6} {'probe':>6} {'gap':>7}")
        for cell in probed:
            gap = _gap_text(data, cell, "sim-cprobe", "cprobe")
            lines.append(
                f"  {cell_key(*as_cell(cell)):<32} {_value(cell, 'sim-cprobe'):>6} "
                f"{_value(cell, 'cprobe'):>6} {gap:>7}"
            )
    go_named = [(pair, f"{go_title(data, pair[1])}, {pair[0][4:]} model") for pair in pairs]
    worlds = [
        (("sim", "real"), "realprof"),
        (("sim-cprobe", "cprobe"), "C probe"),
        *go_named,
    ]
    for pair, name in worlds:
        g = gaps(data, pair)
        if g:
            within = sum(abs(x["gap"]) <= x["tolerance"] for x in g)
            worst = max(g, key=lambda x: abs(x["gap"]))
            widest = max(x["tolerance"] for x in g)
            stated = (
                f"{FIXED_TOLERANCE}"
                if widest <= FIXED_TOLERANCE
                else f"their tolerance (0.05, up to {widest:.3f} where p's scatter sets it)"
            )
            lines.append(
                f"{name}: {within}/{len(g)} cells within {stated} of the model; "
                f"largest gap {worst['gap']:+.3f} at {worst['cell']}"
            )
    for pair, name in worlds:
        for threads in sorted({c["threads"] for c in data["cells"]}):
            lean = p_offset_check(data, pair, threads)
            if lean:
                lines.append(
                    f"{name}: {threads} threads, process-timer cells where the capture "
                    f"follows p: {lean['above']} above the model, {lean['below']} below; "
                    f"they behave as if p were {lean['offset_p']:+.3f} from the session's "
                    f"(SE {lean['se']:.3f}, the session's own error included: "
                    f"{lean['z']:+.1f} SE, probability {lean['p_value']:.2g} for an "
                    "unbiased model)"
                )
    for pair, name in [(("sim", "real"), "realprof"), *go_named]:
        checks = share_checks(data, pair)
        if checks:
            bad = [c for c in checks if not c["ok"]]
            cells_with = len({c["cell"] for c in checks})
            lines.append(
                f"{name}: {len(checks) - len(bad)}/{len(checks)} thread share errors in "
                f"{cells_with} multi-thread cells within 3 standard errors (binomial, or the "
                "runs' own scatter at Student's t where wider)"
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
    for (twin, world), (_pair, name) in zip(pairs, go_named, strict=True):
        model_ms, measured_ms = (_median_ms(data, w) for w in (twin, world))
        if measured_ms is not None and model_ms is not None:
            lines.append(
                f"{name}: the profile ends {round(measured_ms)} ms after the stop (median of "
                f"the cells; the model: {round(model_ms)} ms): the reader's wake rule"
            )
    lines.append("! = outside the tolerance")
    for note in data.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"
