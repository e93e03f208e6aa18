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

`--cprobe` counts the rounds of the C probe (lab/cprobe.c: the same busy threads with a
trivial handler, no reader, no Python) instead. `--interleave` runs the rates in turn, one
run of each per cycle, the first rate rotating, so that a drift of p over minutes touches
every rate alike; it then also prints each rate's p against its cycle's mean (the median
of those differences, and how many cycles it was above), which is what shows whether p
depends on the rate.

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


def one_probe_run(rate_hz: int, threads: int, duration_s: float, hz: int) -> dict[str, float]:
    from lab import cprobe

    run = cprobe.probe_run(threads, rate_hz, duration_s, hz)
    p = run["p"] if run["p"] is not None else float("nan")
    return {"capture": run["capture_ratio"], "p": p} | {
        k: run[k] for k in ("rounds", "f0", "f1", "f2")
    }


def schedule(rates: list[int], runs: int, interleave: bool) -> list[tuple[int, int]]:
    """(cycle, rate) in the order they run: rate by rate, or one of each per cycle with the
    first rate rotating."""
    if not interleave:
        return [(run, rate) for rate in rates for run in range(runs)]
    order = []
    for cycle in range(runs):
        shift = cycle % len(rates)
        order += [(cycle, rate) for rate in rates[shift:] + rates[:shift]]
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--cprobe", action="store_true", help="the C probe's rounds")
    parser.add_argument("--interleave", action="store_true", help="rates in turn, run by run")
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
    measure = one_probe_run if args.cprobe else one_run
    print(
        f"{'the C probe' if args.cprobe else 'realprof'}, "
        f"{'interleaved' if args.interleave else 'rate by rate'}"
    )
    print(f"{'Hz':>6} {'run':>4} {'capture':>8} {'rounds':>7} {'0':>6} {'1':>6} {'2':>6} {'p':>6}")
    by_cycle: dict[int, dict[int, float]] = {}
    for cycle, rate in schedule(rates, args.runs, args.interleave):
        r = measure(rate, args.threads, args.duration, hz)
        by_cycle.setdefault(cycle, {})[rate] = r["p"]
        print(
            f"{rate:>6} {cycle + 1:>4} {r['capture']:>8.3f} {r['rounds']:>7} {r['f0']:>6.3f} "
            f"{r['f1']:>6.3f} {r['f2']:>6.3f} {r['p']:>6.2f}"
        )
    # Cycles where every rate counted a p: only they give each rate a cycle's mean.
    complete = [
        ps for ps in by_cycle.values() if len(ps) == len(rates) and all(p == p for p in ps.values())
    ]
    compare = args.interleave and len(rates) > 1
    for rate in rates:
        valid = [ps[rate] for ps in by_cycle.values() if ps.get(rate) == ps.get(rate)]
        if not valid:
            continue
        line = (
            f"{rate:>6}  all: p median {statistics.median(valid):.2f}, range "
            f"{min(valid):.2f}-{max(valid):.2f}"
        )
        diffs = [ps[rate] - statistics.fmean(ps.values()) for ps in complete]
        if compare and diffs:
            line += (
                f"; against its cycle's mean {statistics.median(diffs):+.3f} (median), "
                f"above in {sum(d > 0 for d in diffs)} of {len(diffs)} cycles"
            )
        print(line)
    spread = [p - statistics.fmean(ps.values()) for ps in complete for p in ps.values()]
    if compare and len(spread) > 2:
        sd = statistics.stdev(spread)
        se = 1.25 * sd / len(by_cycle) ** 0.5
        print(
            f"differences from the cycle's mean scatter by {sd:.3f}: a rate's median of "
            f"{len(by_cycle)} is uncertain by about {se:.3f} (1.25 sd / sqrt(cycles))"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
