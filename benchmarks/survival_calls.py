"""Four-thread survival runs with short and with long GIL-free calls, interleaved.

    python benchmarks/survival_calls.py [--passes 4] [--duration 2] [--rates 400,750]

`realprof calibrate` and the grid's survival runs spin busy threads in C
(`realprof._sampler.spin_native`). Until 7 December each call was 2 ms of CPU, so a
thread came back to Python, and took the GIL, every 2 ms; four such threads on two CPUs
queue for the GIL and switch between ticks, which the grid's native cells (one long
call per step) never do. Each pass runs `lab.calibrate.survival_run` with four threads
at each rate twice: once as it is (long calls) and once with every call cut into 2 ms
calls, each back in Python (the old runs), alternating, so a drift of the host touches
both alike. It prints the median capture and the p counted in the tick rounds for each.

It is a script, not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import calibrate
from lab.machine import kernel_hz

SHORT_CALL_NS = 2_000_000


def _short_calls(spin):
    def spin_in_short_calls(ns: int) -> None:
        end = time.thread_time_ns() + ns
        while time.thread_time_ns() < end:
            spin(SHORT_CALL_NS)

    return spin_in_short_calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rates", default="400,750")
    args = parser.parse_args(argv)
    try:
        rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: {args.rates!r} is not a list of whole numbers, e.g. 400,750")
    if args.passes <= 0 or args.duration <= 0 or min(rates) <= 0:
        parser.error("--passes, --duration and --rates must be positive")
    if calibrate.spin_native is None:
        print("error: needs the C extension realprof._sampler: pip install -e .", file=sys.stderr)
        return 2
    hz = kernel_hz()[0] or 250
    long_calls = calibrate.spin_native
    results: dict[tuple[int, str], list[dict]] = {}
    for index in range(args.passes):
        for rate in rates:
            for calls, spin in (
                ("long calls", long_calls),
                ("2 ms calls", _short_calls(long_calls)),
            ):
                calibrate.spin_native = spin
                try:
                    run = calibrate.survival_run(rate, 4, args.duration, hz)
                finally:
                    calibrate.spin_native = long_calls
                results.setdefault((rate, calls), []).append(run)
                print(f"pass {index + 1}/{args.passes} {rate} Hz {calls} done", file=sys.stderr)
    print(f"four busy threads, {args.passes} interleaved passes of {args.duration:g} s runs")
    print("  rate  calls        capture (median, range)    p counted (median, range)")
    for (rate, calls), runs in sorted(results.items()):
        captures = [r["capture_ratio"] for r in runs]
        ps = [r["p"] for r in runs if r["p"] is not None]
        print(
            f"  {rate:>4}  {calls:<11}  {statistics.median(captures):.3f} "
            f"({min(captures):.3f}-{max(captures):.3f})      "
            f"{statistics.median(ps):.3f} ({min(ps):.3f}-{max(ps):.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
