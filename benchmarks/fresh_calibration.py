"""How far a fresh calibration's prediction lands from a process-timer cell, trial by trial.

    python benchmarks/fresh_calibration.py                    # 6 trials of 7 pairs
    python benchmarks/fresh_calibration.py --trials 6 --pairs 3

Each trial is `lab.calibrate.fresh_prediction` on the grid cell native/2t/500Hz/
process: survival runs at 400 Hz alternating with the cell's real runs, the cell
simulated with their median p, the gap between the measured median and the prediction.
`tests/test_compare.py` runs one such trial against a tolerance of 0.05; this script shows
the spread of the gap that tolerance has to cover on this machine.

This is a script, not a test: the numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per run")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.pairs < 1 or args.duration <= 0:
        print("error: --trials and --pairs >= 1, --duration > 0", file=sys.stderr)
        return 2
    from lab import calibrate
    from lab.grid_cells import cell_scenario
    from lab.machine import machine_facts, machine_here

    facts = machine_facts()
    if facts.get("tick_alignment") != "aligned" or (facts.get("cpus") or 0) < 2:
        print("error: counting tick rounds needs aligned ticks and two CPUs", file=sys.stderr)
        return 2
    hz = int(facts["kernel_hz"])
    machine, _ = machine_here(cell_scenario("native", 1, 100, "process", 1, {}), None)
    print(
        f"{facts.get('cpu_model')}, {facts.get('cpus')} CPUs, HZ={hz}; cell "
        f"native/2t/500Hz/process, {args.pairs} pairs of {args.duration:g} s per trial"
    )
    print(f"{'trial':>5} {'p':>6} {'predicted':>9} {'measured':>8} {'gap':>7}")
    gaps = []
    for trial in range(1, args.trials + 1):
        r = calibrate.fresh_prediction(
            ("native", 2, 500, "process"), machine, args.pairs, args.duration, hz=hz
        )
        if r["gap"] is None:
            print(f"{trial:>5} every pair busy (another job had the CPUs)")
            continue
        gaps.append(r["gap"])
        busy = f"  ({r['busy_pairs']} busy pairs left out)" if r["busy_pairs"] else ""
        print(
            f"{trial:>5} {r['p']:>6.3f} {r['predicted']:>9.3f} "
            f"{statistics.median(r['measured']):>8.3f} {r['gap']:>+7.3f}{busy}"
        )
    if gaps:
        print(
            f"gaps from {min(gaps):+.3f} to {max(gaps):+.3f}, median {statistics.median(gaps):+.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
