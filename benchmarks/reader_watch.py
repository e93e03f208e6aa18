"""How often realprof's reader wakes, and the CPU each wake-up costs.

    python benchmarks/reader_watch.py [--seconds 2] [--runs 3]

Starts realprof's sampler (process timer, 100 Hz) in an otherwise idle process and
reads, from /proc/self/task/TID/schedstat (run time in ns) and status (voluntary context
switches), what its reader thread did over `--seconds`: its wake-ups and its CPU time,
drains included. The model's `sim.reader.WATCH_COST_NS` is the CPU per wake-up measured
here. This is a script, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _threads() -> dict[int, tuple[int, int]]:
    """(run time ns, voluntary switches) of every thread of this process."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            run_ns = int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text()
        except OSError:
            continue
        switches = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
        out[int(task.name)] = (run_ns, switches)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.runs < 1:
        print("error: --seconds > 0 and --runs >= 1", file=sys.stderr)
        return 2
    from realprof.sampler import Sampler

    me = threading.get_native_id()
    for run in range(1, args.runs + 1):
        sampler = Sampler(rate_hz=100, timer="process")
        sampler.start()
        time.sleep(0.3)
        before = _threads()
        time.sleep(args.seconds)
        after = _threads()
        sampler.stop()
        for tid, (run_ns, switches) in after.items():
            if tid == me or tid not in before:
                continue
            wakes = switches - before[tid][1]
            cpu_us = (run_ns - before[tid][0]) / 1000
            print(
                f"run {run}: reader thread {tid}: {wakes} wake-ups in {args.seconds:g} s "
                f"({wakes / args.seconds:.0f}/s), {cpu_us:.0f} µs CPU, "
                f"{cpu_us / max(wakes, 1):.0f} µs per wake-up"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
