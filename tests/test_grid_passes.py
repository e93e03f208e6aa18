"""The grid's passes: survival runs spread among the cells they calibrate.

p drifts over minutes on a VM, and the twins of a session's cells are simulated with the
median p of its survival runs; so those runs must sample the minutes the cells ran in,
not only the first minute of each pass.
"""

from __future__ import annotations

import collections
import itertools

import pytest

from lab import calibrate, grid
from sim.model import simulate

CELLS = tuple(
    f"native/{threads}t/{rate}Hz/process"
    for threads in (1, 2, 4)
    for rate in (100, 200, 250, 500, 1000)
)


@pytest.fixture
def recorded_order(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the grid's real world on the simulator, recording what ran in which order."""
    order: list[str] = []

    def fake_survival(rate: int, threads_n: int, duration_s: float, hz: int) -> dict:
        order.append(f"survival {rate}/{threads_n}")
        return {"rate_hz": rate, "threads": threads_n, "p": 0.6, "p_se": 0.02, "rounds": 500}

    def fake_run(scenario):
        order.append("cell")
        return simulate(scenario)

    monkeypatch.setattr(calibrate, "survival_run", fake_survival)
    monkeypatch.setattr(grid, "run_scenario", fake_run)
    return order


def passes(order: list[str], repeat: int) -> list[list[str]]:
    per_pass = len(order) // repeat
    return [order[i * per_pass : (i + 1) * per_pass] for i in range(repeat)]


def test_each_pass_spreads_its_survival_runs_among_its_cells(recorded_order) -> None:
    data = grid.run_grid(
        ("sim", "real"), repeat=2, duration_s=0.2, progress=False, timers=("process",), only=CELLS
    )
    if "session_calibration" not in data:
        pytest.skip("the grid calibrates only on a machine of 2 or more CPUs")
    experiments = calibrate.survival_experiments()
    for one_pass in passes(recorded_order, 2):
        cells_at = [i for i, job in enumerate(one_pass) if job == "cell"]
        survival_at = [i for i, job in enumerate(one_pass) if job != "cell"]
        assert len(CELLS) == len(cells_at)
        # Every experiment twice a pass ...
        counts = collections.Counter(job for job in one_pass if job != "cell")
        assert {f"survival {r}/{n}": 2 for r, n in experiments} == counts
        # ... each alone between cells, with cells before the first and after the last,
        # the i-th after about (i + 1/2) of the pass's cells over the number of slots.
        assert cells_at[0] < survival_at[0] and survival_at[-1] < cells_at[-1]
        assert all(b - a > 1 for a, b in itertools.pairwise(survival_at))
        slots = len(survival_at)
        cells_before = [sum(c < at for c in cells_at) for at in survival_at]
        for i, before in enumerate(cells_before):
            assert abs(before - (i + 0.5) * len(CELLS) / slots) <= 1


def test_passes_rotate_which_experiment_comes_first() -> None:
    experiments = calibrate.survival_experiments()
    firsts = {grid.survival_slots(k, with_cprobe=False)[0][0][1] for k in range(len(experiments))}
    assert set(experiments) == firsts


def test_the_probe_runs_each_experiment_beside_realprof() -> None:
    for slot in grid.survival_slots(0, with_cprobe=True):
        assert [world for world, _ in slot] == ["calibrate", "cprobe-calibrate"]
        assert slot[0][1] == slot[1][1]


@pytest.mark.parametrize(("jobs", "slots"), [(24, 8), (3, 8), (10, 1), (0, 2)])
def test_spreading_keeps_every_job_in_order(jobs: int, slots: int) -> None:
    cells = [f"cell {i}" for i in range(jobs)]
    survival = [[f"survival {i}"] for i in range(slots)]
    out = grid.spread(cells, survival)
    assert cells == [job for job in out if job.startswith("cell")]
    assert [s[0] for s in survival] == [job for job in out if job.startswith("survival")]
