"""The grid's tolerance: 0.05, or what the run-to-run scatter of p makes reachable.

On the process timer the capture follows the same-round survival p, and p scatters from
one run to the next; a cell's tolerance widens by that scatter through the cell's
capture-per-p slope, which the grid measures on the model. Elsewhere it stays 0.05.
"""

from __future__ import annotations

import math
import statistics

import pytest

from lab.grid import resimulate
from lab.grid_results import gaps, p_offset_check, render, tolerance
from lab.medians import median_variance

TWO_THREADS = {"workload": "native", "threads": 2, "rate_hz": 250}


def survival_runs(ps: list[float], threads: int = 2) -> dict:
    return {"runs": [{"p": p, "threads": threads, "rate_hz": 400} for p in ps]}


def cell(
    timer: str,
    slope: float | None,
    measured: float,
    predicted: float,
    runs: int = 3,
    spread: float = 0.0,
):
    """A cell whose world's runs lie evenly over measured ± spread."""
    twin = {"capture_ratio": predicted} | ({"capture_per_p": slope} if slope is not None else {})
    offsets = [spread * (2 * i / (runs - 1) - 1) for i in range(runs)] if runs > 1 else [0.0]
    world = {"capture_ratio": measured, "runs": [{"capture_ratio": measured + o} for o in offsets]}
    return TWO_THREADS | {"timer": timer, "sim": twin, "real": world}


def grid(cells: list[dict], ps: list[float]) -> dict:
    return {
        "command": "python -m realprof grid",
        "repeat": 3,
        "duration_s": 2.0,
        "cells": cells,
        "session_calibration": survival_runs(ps),
    }


SCATTERED = [0.3, 0.45, 0.6, 0.75, 0.5, 0.65]


def test_a_cell_that_does_not_follow_p_keeps_0_05():
    data = grid([cell("per-thread", None, 0.99, 0.99)], SCATTERED)
    assert tolerance(data, data["cells"][0], ("sim", "real")) == 0.05


def test_without_scatter_in_p_the_tolerance_stays_0_05():
    data = grid([cell("process", 0.5, 0.8, 0.8)], [0.6] * 6)
    assert tolerance(data, data["cells"][0], ("sim", "real")) == 0.05


def test_the_tolerance_widens_with_the_scatter_and_the_slope():
    narrow = grid([cell("process", 0.5, 0.8, 0.8)], [0.55, 0.6, 0.65, 0.6, 0.58, 0.62])
    wide = grid([cell("process", 0.5, 0.8, 0.8)], SCATTERED)
    steep = grid([cell("process", 1.0, 0.8, 0.8)], SCATTERED)
    t_narrow, t_wide, t_steep = (
        tolerance(d, d["cells"][0], ("sim", "real")) for d in (narrow, wide, steep)
    )
    assert t_narrow == 0.05 < t_wide < t_steep


def with_siblings(judged: dict, spread: float) -> list[dict]:
    """The judged cell and two process-timer cells of as many threads at other rates,
    whose runs scatter by `spread`: the world's scatter comes from those."""
    siblings = [
        cell("process", 0.4, 0.85, 0.85, runs=5, spread=spread) | {"rate_hz": rate}
        for rate in (200, 500)
    ]
    return [judged, *siblings]


def test_the_worlds_own_scatter_widens_it_and_more_runs_narrow_it():
    calm = grid(with_siblings(cell("process", 0.5, 0.8, 0.8), 0.01), SCATTERED)
    restless = grid(with_siblings(cell("process", 0.5, 0.8, 0.8), 0.1), SCATTERED)
    many = grid(with_siblings(cell("process", 0.5, 0.8, 0.8, runs=30), 0.1), SCATTERED)
    t_calm, t_restless, t_many = (
        tolerance(d, d["cells"][0], ("sim", "real")) for d in (calm, restless, many)
    )
    assert t_calm < t_restless
    # More runs per cell leave less of the scatter in its median.
    assert t_many < t_restless


def test_a_cell_that_misses_does_not_widen_its_own_tolerance():
    steady = grid(with_siblings(cell("process", 0.5, 0.8, 0.8, spread=0.01), 0.01), [0.6] * 6)
    wild = grid(with_siblings(cell("process", 0.5, 0.8, 0.8, spread=0.3), 0.01), [0.6] * 6)
    assert tolerance(steady, steady["cells"][0], ("sim", "real")) == tolerance(
        wild, wild["cells"][0], ("sim", "real")
    )


def leaning_cells() -> list[dict]:
    """Six process-timer cells, every one above the model by 0.03-0.13 (p 0.075-0.325 at
    a slope of 0.4), each within its tolerance."""
    return [
        cell("process", 0.4, 0.78 + 0.02 * i, 0.75, spread=0.1) | {"rate_hz": rate}
        for i, rate in enumerate((200, 250, 500, 1000, 300, 400))
    ]


def test_a_bias_shared_by_the_cells_shows_in_the_offset_check():
    data = grid(leaning_cells(), [0.55, 0.6, 0.65, 0.6, 0.58, 0.62])
    assert all(abs(g["gap"]) <= g["tolerance"] for g in gaps(data))  # each cell passes
    lean = p_offset_check(data, ("sim", "real"), threads=2)
    assert (lean["above"], lean["below"]) == (6, 0)
    assert math.isclose(lean["offset_p"], statistics.fmean(0.075 + 0.05 * i for i in range(6)))
    assert lean["p_value"] < 0.01
    assert "6 above the model, 0 below; they behave as if p were +0.200" in render(data)


def test_a_lean_the_sessions_own_error_explains_is_no_bias():
    # The same gaps, but the session counted p in a few widely scattered runs: its median
    # may be off by as much, and every cell's twin used it. Six signs alike would be
    # 1 in 32 for independent cells; they are not independent.
    survival = [0.2, 0.8, 0.35]
    data = grid(leaning_cells(), survival)
    lean = p_offset_check(data, ("sim", "real"), threads=2)
    assert (lean["above"], lean["below"]) == (6, 0)
    assert lean["p_value"] > 0.05
    # Each cell's three runs lie at -0.1, 0 and +0.1 from its median (variance 0.01) on
    # a slope of 0.4, so p scatters by sqrt(0.01 / 0.4²) a run; a median of three is
    # 1.160 times a mean's error; the session's median of three shares its error with
    # every cell.
    median_of_3 = 1.160
    s_w = math.sqrt(0.01 / 0.4**2)
    own = 6 * (median_of_3 * s_w) ** 2 / 3 / 6**2
    shared = (median_of_3 * statistics.stdev(survival)) ** 2 / 3
    assert math.isclose(math.sqrt(own + shared), lean["se"])


def test_without_any_scatter_any_offset_is_a_lean():
    steady = [cell("process", 0.4, 0.77, 0.75, spread=0.0) | {"rate_hz": r} for r in (200, 500)]
    lean = p_offset_check(grid(steady, [0.6] * 4), ("sim", "real"), threads=2)
    assert (0.0, math.inf, 0.0) == (lean["se"], lean["z"], lean["p_value"])


def test_four_thread_cells_take_the_four_thread_runs():
    data = grid([cell("process", 0.5, 0.8, 0.8) | {"threads": 4}], [0.6] * 6)
    data["session_calibration"]["runs"] += survival_runs(SCATTERED, threads=4)["runs"]
    assert tolerance(data, data["cells"][0], ("sim", "real")) > 0.05


def test_the_table_marks_a_gap_by_its_own_cells_tolerance():
    data = grid([cell("process", 0.5, 0.88, 0.80), cell("per-thread", None, 0.88, 0.80)], SCATTERED)
    data["cells"][1]["rate_hz"] = 200
    text = render(data)
    process_line = next(line for line in text.splitlines() if "250Hz/process" in line)
    thread_line = next(line for line in text.splitlines() if "200Hz/per-thread" in line)
    assert "+0.080 " in process_line + " " and "!" not in process_line
    assert "+0.080!" in thread_line
    assert "realprof: 1/2 cells within their tolerance (0.05, up to" in text


@pytest.mark.parametrize(("timer", "expected"), [("process", 0.5), ("per-thread", None)])
def test_the_grid_measures_how_far_a_cell_follows_p(timer, expected):
    data = {
        "duration_s": 2.0,
        "repeat": 1,
        "model_machine": {"cpus": 2, "kernel_hz": 250, "same_round_survival": 0.6},
        "cells": [TWO_THREADS | {"timer": timer, "sim": {}}],
    }
    entry = resimulate(data, progress=False)["cells"][0]["sim"]
    if expected is None:
        assert "capture_per_p" not in entry
    else:
        # Two busy CPUs at 250 Hz: the timer is due twice a round and a round delivers
        # 1 + p, so the capture is (1 + p) / 2 (chapter 3): half a unit per unit of p.
        assert math.isclose(entry["capture_per_p"], expected, abs_tol=0.03)


def four_thread_grid(fit_se: float | None) -> dict:
    """A four-thread process-timer cell whose survival runs counted p alike (no scatter),
    with the error of the fitted p after a switch stored, or not."""
    data = grid([cell("process", 0.5, 0.8, 0.8) | {"threads": 4}], [0.6] * 6)
    data["session_calibration"] = survival_runs([0.6] * 6, threads=4)
    if fit_se is not None:
        data["session_calibration"]["same_round_survival_after_switch_se"] = fit_se
    return data


def test_the_fitted_p_after_a_switch_widens_four_thread_cells_by_its_own_error():
    unknown, fitted = four_thread_grid(None), four_thread_grid(0.1)
    assert tolerance(unknown, unknown["cells"][0], ("sim", "real")) == 0.05
    # 3 SE at a slope of 0.5: 3 × 0.5 × 0.1.
    assert tolerance(fitted, fitted["cells"][0], ("sim", "real")) == pytest.approx(0.15)


def test_the_fits_error_leaves_two_thread_cells_alone():
    data = grid([cell("process", 0.5, 0.8, 0.8)], [0.6] * 6)
    data["session_calibration"]["same_round_survival_after_switch_se"] = 0.1
    assert tolerance(data, data["cells"][0], ("sim", "real")) == 0.05


def test_a_fit_more_precise_than_the_counted_p_leaves_the_counted_ps_error():
    # The twin of a four-thread cell runs on p (two-thread runs) and p after a switch
    # (fitted): its error is the larger of the two, so a tight fit does not narrow it
    # below what the two-thread runs' scatter leaves.
    data = four_thread_grid(0.001)
    data["session_calibration"]["runs"] += survival_runs(SCATTERED)["runs"]
    expected = round(3 * 0.5 * math.sqrt(median_variance(statistics.stdev(SCATTERED), 6)), 3)
    assert expected == tolerance(data, data["cells"][0], ("sim", "real"))


def test_the_fits_error_is_shared_by_the_four_thread_offset_check():
    cells = [
        cell("process", 0.4, 0.8, 0.78, spread=0.01) | {"threads": 4, "rate_hz": rate}
        for rate in (200, 250, 500)
    ]
    plain, fitted = (four_thread_grid(se) for se in (None, 0.1))
    plain["cells"], fitted["cells"] = cells, [dict(c) for c in cells]
    se_plain = p_offset_check(plain, ("sim", "real"), 4)["se"]
    se_fitted = p_offset_check(fitted, ("sim", "real"), 4)["se"]
    # The counted four-thread p does not scatter, so the shared term is the fit's 0.1².
    assert se_fitted**2 - se_plain**2 == pytest.approx(0.01)
