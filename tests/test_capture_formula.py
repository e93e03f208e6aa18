"""Chapter 3's capture formula (`sim.capture_formula`) against the simulator.

The grid covers C, R, HZ and p inside the regime the module states: C busy threads on C
CPUs, aligned ticks, no handler or reader costs, and a reader that does not wake during
the run (its wake-ups preempt a busy thread whose later check escapes the round). The
comparison is on deliveries (`signals_delivered`), since a reader that never drains lets
profBuf fill. Tolerance per point: four binomial standard deviations of the same-round
survivors, plus one round's expiries and three more for the startup (the first expiry
is a tick late, so the first round raises fewer) and the stop.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from contract.scenario import validate_scenario
from sim.capture_formula import capture_ratio, dropped_pending_per_s, expiries_per_round
from sim.model import simulate

DURATION_S = 1.0
GRID = list(
    itertools.product((1, 4, 16, 32), (50, 250, 1000), (100, 250, 1000), (0.0, 0.1, 0.5, 1.0))
)


def busy_cpus(cpus: int, rate_hz: float, kernel_hz: int, survival: float):
    return validate_scenario(
        {
            "seed": 1,
            "machine": {"cpus": cpus, "kernel_hz": kernel_hz, "same_round_survival": survival},
            "profiler": {
                "runtime": "go1.17",
                "rate_hz": rate_hz,
                "handler_cost_us": 0,
                "reader_cost_us_per_sample": 0,
                "reader_period_ms": 1_000_000,
            },
            "workload": {
                "duration_s": DURATION_S,
                "threads": [
                    {
                        "name": "spin",
                        "count": cpus,
                        "program": [{"run": {"function": "main.spin", "cpu_ms": 1000}}],
                    }
                ],
            },
        }
    )


def test_formula_matches_the_simulator_on_the_grid() -> None:
    off = []
    for cpus, rate_hz, kernel_hz, survival in GRID:
        report = simulate(busy_cpus(cpus, rate_hz, kernel_hz, survival)).report
        expected = report.expected_samples
        simulated = report.signals_delivered / expected
        later = kernel_hz * DURATION_S * max(0.0, expiries_per_round(cpus, rate_hz, kernel_hz) - 1)
        sigma = math.sqrt(later * survival * (1 - survival))
        edge = expiries_per_round(cpus, rate_hz, kernel_hz) + 3
        tolerance = (4 * sigma + edge) / expected
        predicted = capture_ratio(cpus, rate_hz, kernel_hz, survival)
        if abs(simulated - predicted) > tolerance:
            off.append((cpus, rate_hz, kernel_hz, survival, round(simulated, 4), predicted))
    assert off == []


@pytest.mark.parametrize("survival", [0.0, 0.5])
def test_dropped_pending_rate_matches_the_simulator(survival: float) -> None:
    report = simulate(busy_cpus(16, 100, 250, survival)).report
    predicted = dropped_pending_per_s(16, 100, 250, survival) * DURATION_S
    later = 250 * DURATION_S * (expiries_per_round(16, 100, 250) - 1)
    assert (
        abs(report.signals_dropped_pending - predicted)
        <= 4 * math.sqrt(later * survival * (1 - survival)) + expiries_per_round(16, 100, 250) + 3
    )


def test_the_every_cpu_expression_is_the_saturated_case() -> None:
    # R >= HZ: every CPU finds the timer due each round, x = C.
    assert capture_ratio(32, 250, 250, 0.03) == min(1.0, 250 * (1 + 0.03 * 31) / (32 * 250))
    # Chapter 3's 4-CPU case is not saturated: 1.6 expiries a round, not 4.
    assert expiries_per_round(4, 100, 250) == 1.6
    assert capture_ratio(4, 100, 250, 0.5) == pytest.approx(0.8125)


def test_chapter_3_states_what_the_formula_gives() -> None:
    page = (
        Path(__file__).resolve().parent.parent / "docs/walkthrough/03-signals-and-coalescing.md"
    ).read_text(encoding="utf-8")
    four_cpus = [capture_ratio(4, 100, 250, p) for p in (0, 0.25, 0.5, 0.75, 1)]
    stated = "0.625, 0.719, 0.8125, 0.906 and 1 for *p* = 0, 0.25,"
    assert stated in page
    assert four_cpus == pytest.approx([0.625, 0.719, 0.8125, 0.906, 1.0], abs=5e-4)
    assert f"{3200 * capture_ratio(32, 100, 250, 0.03)}%" == "338.5%"
    assert "it gives 338.5%" in page
    survival_35057 = (1011 / 250 - 1) / (expiries_per_round(96, 100, 250) - 1)
    assert round(survival_35057, 2) == 0.08
    assert "gives *p* ≈ 0.08" in page
    assert "formula says 0.5," in page and capture_ratio(2, 100, 100, 0) == 0.5
