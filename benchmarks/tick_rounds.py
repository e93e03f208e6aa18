"""How many process-timer signals each tick round delivers, measured with realprof.

    python benchmarks/tick_rounds.py                       # 250, 500, 1000 Hz, 5 runs each
    python benchmarks/tick_rounds.py --rates 200,250 --runs 3 --threads 2

Runs the validation grid's cell "2 busy native threads, process timer" (lab/grid_cells.py
`cell_scenario`) for real, keeps the CLOCK_MONOTONIC time the C handler stamped on every
record, and splits the run into the kernel's tick rounds (this machine's ticks are aligned:
every CPU ticks at multiples of 1/HZ of CLOCK_MONOTONIC, see lab/machine.py). A round
delivers 0, 1 or 2 signals. With two busy CPUs the process clock advances 2/HZ per round,
so the timer is due about 2·rate/HZ times a round and fires at most once per CPU check:
two generations in a fraction min(1, 2·rate/HZ − 1) of rounds (rate > HZ/2). The second
generation of a round survives only if the first signal was taken before it came; the
share of 2-delivery rounds over the share of 2-generation rounds is that survival, the
model's `same_round_survival` p (sim/signals.py). Per run, so its spread shows. The
count is `lab.calibrate.survival_from_rounds`, the estimator calibration uses.

This is a script, not a test: the numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one_run(rate_hz: int, threads: int, duration_s: float, hz: int) -> dict[str, float]:
    from lab.grid_cells import cell_scenario
    from lab.workload import run_scenario
    from realprof import sampler as sampler_mod

    stamps: list[int] = []
    original = sampler_mod._sampler.drain

    def drain():
        records = original()
        stamps.extend(record[1] for record in records or ())
        return records

    sampler_mod._sampler.drain = drain
    try:
        scenario = cell_scenario("native", threads, rate_hz, "process", duration_s, {})
        report = run_scenario(scenario).report
    finally:
        sampler_mod._sampler.drain = original
    from lab.calibrate import survival_from_rounds

    return {"capture": report.capture_ratio} | survival_from_rounds(stamps, rate_hz, hz, threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=float, default=2.0)
    args = parser.parse_args(argv)
    try:
        rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        print(f"error: --rates takes integers like 250,500 (got {args.rates!r})", file=sys.stderr)
        return 2
    if args.runs < 1 or args.threads < 2 or not rates:
        print("error: --runs >= 1, --threads >= 2 and at least one rate", file=sys.stderr)
        return 2
    from lab.machine import machine_facts

    facts = machine_facts()
    hz = int(facts.get("kernel_hz") or 250)
    print(
        f"{facts.get('cpu_model')}, {facts.get('cpus')} CPUs, HZ={hz}, ticks "
        f"{facts.get('tick_alignment')}; {args.threads} busy native threads, process timer, "
        f"{args.duration:g} s per run"
    )
    print(f"{'Hz':>6} {'run':>4} {'capture':>8} {'rounds':>7} {'0':>6} {'1':>6} {'2':>6} {'p':>6}")
    for rate in rates:
        ps = []
        for run in range(1, args.runs + 1):
            r = one_run(rate, args.threads, args.duration, hz)
            ps.append(r["p"])
            print(
                f"{rate:>6} {run:>4} {r['capture']:>8.3f} {r['rounds']:>7} {r['f0']:>6.3f} "
                f"{r['f1']:>6.3f} {r['f2']:>6.3f} {r['p']:>6.2f}"
            )
        valid = [p for p in ps if p == p]
        if valid:
            print(
                f"{rate:>6}  all: p median {statistics.median(valid):.2f}, range "
                f"{min(valid):.2f}-{max(valid):.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
