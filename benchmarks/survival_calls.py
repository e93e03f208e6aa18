"""Four-thread survival runs with short and with long GIL-free calls, interleaved.

    python benchmarks/survival_calls.py [--passes 4] [--duration 2] [--rates 400,750]
                                        [--json OUT]
    python benchmarks/survival_calls.py --from-json FILE     # print a stored --json FILE

`realprof calibrate` and the grid's survival runs spin busy threads in C
(`realprof._sampler.spin_native`). Until 7 December each call was 2 ms of CPU, so a
thread came back to Python, and took the GIL, every 2 ms; four such threads on two CPUs
queue for the GIL and switch between ticks, which the grid's native cells (one long
call per step) never do. Each pass runs `lab.calibrate.survival_run` with four threads
at each rate twice, long calls first, then with every call cut into 2 ms calls, each
back in Python (close to the old runs, which called 2 ms at a time until a wall-clock
deadline; these stop at the CPU the long call asked for), so a drift of the host
touches both alike. It prints the median capture and the p counted in the tick rounds for each.

It is a script, not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
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


def _print(meta: dict, results: dict[str, list[dict]]) -> None:
    def median(values: list[float]) -> str:
        if not values:
            return "—"
        return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

    print(
        f"four busy threads, {meta['passes']} interleaved passes of {meta['duration_s']:g} s "
        f"runs, {meta['started']} to {meta['finished']}"
    )
    print("  rate  calls        capture (median, range)    p counted (median, range)")
    for key, runs in sorted(results.items(), key=lambda kv: (int(kv[0].split()[0]), kv[0])):
        rate, calls = key.split(" ", 1)
        captures = [r["capture_ratio"] for r in runs]
        ps = [r["p"] for r in runs if r.get("p") is not None]
        print(f"  {rate:>4}  {calls:<11}  {median(captures):<25}  {median(ps)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rates", default="400,750")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--from-json", type=Path)
    args = parser.parse_args(argv)
    if args.from_json is not None:
        try:
            stored = json.loads(args.from_json.read_text())
            _print(stored["meta"], stored["results"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            parser.error(f"--from-json {args.from_json}: not a file this script wrote ({exc})")
        return 0
    try:
        rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: {args.rates!r} is not a list of whole numbers, e.g. 400,750")
    if args.passes <= 0 or args.duration <= 0 or min(rates) <= 0:
        parser.error("--passes, --duration and --rates must be positive")
    if calibrate.spin_native is None:
        print("error: needs the C extension realprof._sampler: pip install -e .", file=sys.stderr)
        return 2
    hz, source = kernel_hz()
    if hz is None:
        print(f"error: this kernel's HZ is unknown ({source})", file=sys.stderr)
        return 2
    long_calls = calibrate.spin_native
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    results: dict[str, list[dict]] = {}
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
                results.setdefault(f"{rate} {calls}", []).append(run)
                print(f"pass {index + 1}/{args.passes} {rate} Hz {calls} done", file=sys.stderr)
    finished = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    meta = {
        "passes": args.passes,
        "duration_s": args.duration,
        "started": started,
        "finished": finished,
    }
    _print(meta, results)
    if args.json is not None:
        from lab.machine import machine_facts

        document = {"meta": meta, "machine": machine_facts(), "results": results}
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
