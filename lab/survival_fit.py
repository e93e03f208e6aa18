"""The same-round survival values a model runs on, from survival runs: p counted, p after a
switch fitted through the model, with the fit's standard error.

The survival runs (`lab.calibrate.survival_run`) keep two or four busy native threads on
two CPUs under the process timer at rates that are not grid cells. p is counted in the
tick rounds of the two-thread runs, whose rounds hold two plain checks (the median over
the runs, `counted_p`). A four-thread run's rounds mix checks made right after a switch
at the tick with plain ones, in proportions only the scheduler decides, so its counted p
is a blend of the model's two parameters, and p after a switch is the value with which
the simulator's twin of those runs captures what they captured (`fit_after_switch`).

The fit's error (`AfterSwitchFit.se`) comes from the runs' scatter through the twin: with
b the twin's capture per unit of p after a switch at the fitted value and v the variance
of a rate's median capture (`lab.medians.median_variance`) plus that of the twin's mean
over its seeds, least squares over the rates gives var = Σ b²·v / (Σ b²)², to which the
grid's step adds step²/12. It is the error given p as counted: a p counted high is met
by a lower fitted value. The grid's tolerances use it for cells of more than two threads
(`lab.grid_results`).

Only the model's parameters go into a machine (`model_values`); the error stays with the
calibration it describes.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, NamedTuple

from lab.grid_cells import cell_scenario
from lab.medians import median_variance
from sim.model import simulate

# Busy threads for p (one per CPU) and for p after a switch (two per CPU).
SURVIVAL_THREADS = (2, 4)
P_STEP = 0.05
P_GRID = tuple(round(i * P_STEP, 2) for i in range(21))
MODEL_KEYS = ("same_round_survival", "same_round_survival_after_switch")
SE_KEY = "same_round_survival_after_switch_se"


class AfterSwitchFit(NamedTuple):
    value: float
    se: float | None  # None: a rate of one run, the grid's ends, or a flat twin


def model_values(medians: dict[str, Any]) -> dict[str, float]:
    """The model's parameters among survival values, those the runs could give."""
    return {k: medians[k] for k in MODEL_KEYS if medians.get(k) is not None}


def counted_p(runs: list[dict[str, Any]], threads_n: int) -> float | None:
    """The median p counted in the tick rounds of the survival runs of `threads_n` threads."""
    values = [r["p"] for r in runs if r["threads"] == threads_n and r["p"] is not None]
    return round(statistics.median(values), 3) if values else None


def survival_medians(
    runs: list[dict[str, Any]],
    machine: dict[str, Any],
    duration_s: float,
    runtime: str = "realprof",
) -> dict[str, float | None]:
    """p counted, p after a switch fitted for the model of `runtime` on `machine` (p as
    counted), and that fit's standard error; None for what the runs cannot give."""
    p = counted_p(runs, SURVIVAL_THREADS[0])
    if machine.get("cpus", 2) >= SURVIVAL_THREADS[1]:
        four = []  # a thread per CPU: nothing switches, nothing to fit
    else:
        four = [r for r in runs if r["threads"] == SURVIVAL_THREADS[1] and "capture_ratio" in r]
    by_rate = {
        rate: [r["capture_ratio"] for r in four if r["rate_hz"] == rate]
        for rate in sorted({r["rate_hz"] for r in four})
    }
    fit = None
    if p is not None and by_rate:
        on = machine | {"same_round_survival": p}
        captures = {rate: statistics.median(values) for rate, values in by_rate.items()}
        variances = {
            rate: median_variance(statistics.stdev(values), len(values))
            for rate, values in by_rate.items()
            if len(values) >= 2
        }
        fit = fit_after_switch(on, captures, duration_s, runtime, variances=variances)
    return {
        "same_round_survival": p,
        "same_round_survival_after_switch": fit.value if fit else None,
        SE_KEY: round(fit.se, 4) if fit and fit.se is not None else None,
    }


def fit_after_switch(
    machine: dict[str, Any],
    captures: dict[int, float],
    duration_s: float,
    runtime: str = "realprof",
    seeds: int = 3,
    variances: dict[int, float] | None = None,
) -> AfterSwitchFit:
    """Least-squares p after a switch over P_GRID: the twin of the four-thread survival runs
    (`runtime`'s model on `machine`, `seeds` runs per rate) against their median
    `captures`; its standard error from `variances`, those medians', and the twin's
    seeds. No error without a variance for every rate (a rate of one run), nor at the
    grid's ends, where the fit is censored."""
    seed_captures: dict[float, dict[int, list[float]]] = {}
    for p_after in P_GRID:
        on = machine | {"same_round_survival_after_switch": p_after}
        seed_captures[p_after] = {
            rate: [
                simulate(
                    dataclasses.replace(
                        cell_scenario(
                            "native", SURVIVAL_THREADS[1], rate, "process", duration_s, on, runtime
                        ),
                        seed=seed,
                    )
                ).report.capture_ratio
                for seed in range(1, seeds + 1)
            ]
            for rate in captures
        }
    curve = {v: {r: statistics.mean(c) for r, c in at.items()} for v, at in seed_captures.items()}
    error = {v: sum((curve[v][r] - captures[r]) ** 2 for r in captures) for v in P_GRID}
    best = min(P_GRID, key=lambda v: (error[v], v))
    i = P_GRID.index(best)
    if variances is None or set(variances) != set(captures) or i in (0, len(P_GRID) - 1):
        return AfterSwitchFit(best, None)
    low, high = curve[P_GRID[i - 1]], curve[P_GRID[i + 1]]
    slopes = {r: (high[r] - low[r]) / (2 * P_STEP) for r in captures}
    weight = sum(b**2 for b in slopes.values())
    if weight <= 0:
        return AfterSwitchFit(best, None)
    # The twin's mean over its seeds is noisy too: its variance joins the runs' median's.
    noise = {
        r: statistics.variance(seed_captures[best][r]) / seeds if seeds > 1 else 0.0
        for r in captures
    }
    spread = sum(slopes[r] ** 2 * (variances[r] + noise[r]) for r in captures)
    return AfterSwitchFit(best, math.sqrt(spread / weight**2 + P_STEP**2 / 12))
