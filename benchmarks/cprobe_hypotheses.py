"""What realprof adds to the process timer: the C probe with one of realprof's traits at a time.

    python benchmarks/cprobe_hypotheses.py                  # 4 passes, 2 s per run
    python benchmarks/cprobe_hypotheses.py --passes 6 --rates 200,250 --threads 2,4

Each pass runs, for every (busy threads, rate): the C probe as it is (`lab/cprobe.c`: a
handler that only stamps the time), the probe with one trait of realprof added (a 5 µs
busy-wait in the handler; a getrusage system call per block of the busy loop, as
realprof's spin_native makes; a thread that wakes every 10 ms and burns 30 µs, as
realprof's reader does to watch for threads), and realprof itself on the grid's cell
(`lab.grid_cells.cell_scenario`). Runs are interleaved, so a drift of the VM touches
all alike; a run whose threads did not get their CPUs is retried (up to 3 times).

Per variant: the median capture ratio and its range, and the share of deliveries that
came more than 0.5 ms after a tick (this machine's ticks fall on multiples of 1/HZ of
CLOCK_MONOTONIC; lab/machine.py) and of tick rounds with three or more deliveries: a
check that ran between ticks, after a context switch.

This is a script, not a test: the numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LATE_NS = 500_000
ATTEMPTS = 3
# name: (handler_us, reader_ms, reader_us, rusage)
VARIANTS = {
    "probe": (0.0, 0, 0, False),
    "probe, handler 5 µs": (5.0, 0, 0, False),
    "probe, getrusage": (0.0, 0, 0, True),
    "probe, wake 10 ms": (0.0, 10, 30, False),
}


def realprof_run(threads: int, rate_hz: int, duration_s: float) -> dict:
    """The grid's cell under realprof, with the time the C handler stamped on each record."""
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
    return {
        "capture_ratio": report.capture_ratio,
        "cpu_seconds": report.cpu_seconds,
        "times_ns": stamps,
    }


def off_tick(times_ns: list[int], tick_ns: int) -> tuple[float, float]:
    """(share of deliveries > 0.5 ms after a tick, share of whole rounds with 3 or more)."""
    if not times_ns:
        return float("nan"), float("nan")
    late = sum(t % tick_ns > LATE_NS for t in times_ns) / len(times_ns)
    per_round = collections.Counter(t // tick_ns for t in times_ns)
    first, last = min(per_round), max(per_round)
    counts = [per_round.get(r, 0) for r in range(first + 1, last)]
    return late, (sum(c >= 3 for c in counts) / len(counts) if counts else float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--rates", default="200,250")
    parser.add_argument("--threads", default="2,4")
    parser.add_argument("--duration", type=float, default=2.0)
    args = parser.parse_args(argv)
    try:
        rates = [int(r) for r in args.rates.split(",") if r.strip()]
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        print("error: --rates and --threads take integers like 200,250", file=sys.stderr)
        return 2
    if args.passes < 1 or args.duration <= 0 or not rates or not threads:
        print(
            "error: --passes >= 1, --duration > 0, at least one rate and thread count",
            file=sys.stderr,
        )
        return 2
    from lab.cprobe import CProbeError, build, probe_run
    from lab.machine import cpus_wanted, got_its_cpus, machine_facts

    try:
        build()
    except CProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    facts = machine_facts()
    hz = int(facts.get("kernel_hz") or 250)
    tick_ns = 1_000_000_000 // hz
    print(
        f"{facts.get('cpu_model')}, {facts.get('cpus')} CPUs, HZ={hz}, ticks "
        f"{facts.get('tick_alignment')}; process timer, {args.duration:g} s per run, "
        f"{args.passes} interleaved passes"
    )
    runs: dict[tuple[int, int, str], list[dict]] = collections.defaultdict(list)
    for _ in range(args.passes):
        for n in threads:
            for rate in rates:
                jobs = [(name, v) for name, v in VARIANTS.items()] + [("realprof", None)]
                for name, variant in jobs:
                    for _attempt in range(ATTEMPTS):
                        if variant is None:
                            run = realprof_run(n, rate, args.duration)
                        else:
                            handler_us, reader_ms, reader_us, rusage = variant
                            run = probe_run(
                                n,
                                rate,
                                args.duration,
                                hz,
                                handler_us,
                                reader_ms,
                                reader_us,
                                rusage=rusage,
                                keep_times=True,
                            )
                        if got_its_cpus(
                            run["cpu_seconds"], cpus_wanted("native", n, 2), args.duration
                        ):
                            break
                    runs[(n, rate, name)].append(run)
    print(f"{'cell':>10} {'world':<22} {'capture':>7} {'range':>11} {'late':>6} {'3+':>6}")
    for n in threads:
        for rate in rates:
            for name in [*VARIANTS, "realprof"]:
                rs = runs[(n, rate, name)]
                captures = [r["capture_ratio"] for r in rs]
                shares = [off_tick(r["times_ns"], tick_ns) for r in rs]
                print(
                    f"{n}t/{rate}Hz".rjust(10) + f" {name:<22} {statistics.median(captures):>7.3f} "
                    f"{min(captures):.3f}-{max(captures):.3f} "
                    f"{statistics.median(s[0] for s in shares):>6.3f} "
                    f"{statistics.median(s[1] for s in shares):>6.3f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
