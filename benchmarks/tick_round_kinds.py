"""Which second SIGPROF of a tick round survives: a tracefs record of process-timer runs.

    python benchmarks/tick_round_kinds.py [--worlds realprof,cprobe] [--threads 4]
                                          [--rates 100,200,400] [--runs 3] [--duration 3]
                                          [--json OUT]
    python benchmarks/tick_round_kinds.py --from-json FILE     # print a stored --json FILE

The process timer (ITIMER_PROF) is checked on each CPU's return to user mode after its
tick (`POSIX_CPU_TIMERS_TASK_WORK`). When both CPUs' checks fire in one tick round, the
second SIGPROF survives only if the first was already dequeued, µs later
(`legacy_queue` in kernel/signal.c); the model calls that chance p, and uses a second
value, p after a switch, for a check that ran after a context switch
(docs/walkthrough/03-signals-and-coalescing.md). This script records what the kernel
did, root only (it mounts tracefs if needed):

* it runs the grid's `native` process-timer cell (`threads` busy GIL-free threads) in
  realprof, in this process (`lab.workload.run_scenario`), or the C probe
  (`lab/cprobe.c`, no reader, no Python), while tracefs records the tick's hrtimer
  (`hrtimer_expire_entry` of `tick_nohz_handler`, `tick_sched_timer` before Linux 6.9,
  as `lab.go_wakers` tells ticks apart), `sched_switch`, and SIGPROF's
  `signal_generate` (whose `res` says 0 queued, 2 dropped as already pending) and
  `signal_deliver`;
* a generation is *switched* if a `sched_switch` ran on its CPU between its CPU's last
  tick and the check: the thread that checks was switched in at that tick, or between
  it and the check. Two generations less than 1 ms apart are one round's first and
  second;
* per run it prints the capture and, for the rounds' second generations, how many
  survived, by the kinds of the two checks (`plain/plain`, `plain/switched`,
  `switched/plain`, `switched/switched`), with the median gap between the two checks.

It is a script, not a test: the numbers depend on the machine, and tracing costs a few
µs per event, which is of the order of the gaps it measures.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import functools
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.go_wakers import FIELD, LINE, TICK_FUNCTIONS, trace_while, tracefs_ready

EVENTS = (
    "timer/hrtimer_expire_entry",
    "sched/sched_switch",
    "signal/signal_generate",
    "signal/signal_deliver",
)
SAME_ROUND_S = 1e-3
KINDS = ("plain/plain", "plain/switched", "switched/plain", "switched/switched")


def analyse(lines: list[str]) -> dict[str, Any]:
    """Second generations of each round by the kinds of its two checks, and their fate."""
    last_tick: dict[int, float] = {}
    last_switch: dict[int, float] = {}
    generations = []
    for line in lines:
        match = LINE.match(line)
        if match is None:
            continue
        cpu, ts, event = int(match["cpu"]), float(match["ts"]), match["event"]
        if event == "hrtimer_expire_entry":
            if any(name in match["rest"] for name in TICK_FUNCTIONS):
                last_tick[cpu] = ts
        elif event == "sched_switch":
            last_switch[cpu] = ts
        elif event == "signal_generate" and cpu in last_tick:
            fields = dict(FIELD.findall(match["rest"]))
            switched = last_switch.get(cpu, -1.0) > last_tick[cpu]
            generations.append((ts, switched, int(fields.get("res", "0"))))
    counts = {kind: {"survived": 0, "dropped": 0} for kind in KINDS}
    gaps: dict[str, list[float]] = collections.defaultdict(list)
    for first, second in itertools.pairwise(generations):
        if second[0] - first[0] >= SAME_ROUND_S:
            continue
        kind = f"{'switched' if first[1] else 'plain'}/{'switched' if second[1] else 'plain'}"
        counts[kind]["survived" if second[2] == 0 else "dropped"] += 1
        gaps[kind].append((second[0] - first[0]) * 1e6)
    return {
        "generations": len(generations),
        "dropped_pending": sum(1 for g in generations if g[2] == 2),
        "switched_checks": sum(1 for g in generations if g[1]),
        "second_in_round": counts,
        "median_gap_us": {k: round(statistics.median(v), 1) for k, v in gaps.items()},
    }


def _realprof_capture(threads: int, rate_hz: int, duration_s: float) -> float:
    from lab.grid_cells import cell_scenario
    from lab.workload import run_scenario

    scenario = cell_scenario("native", threads, rate_hz, "process", duration_s, {})
    return run_scenario(scenario).report.capture_ratio


def _cprobe_capture(threads: int, rate_hz: int, duration_s: float) -> float:
    from lab import cprobe
    from lab.machine import kernel_hz

    return cprobe.probe_run(threads, rate_hz, duration_s, kernel_hz()[0])["capture_ratio"]


MEASURES = {"realprof": _realprof_capture, "cprobe": _cprobe_capture}


def _print(runs: list[dict[str, Any]]) -> None:
    print("world     rate  capture  switched  " + "  ".join(f"{k:>19}" for k in KINDS))
    for run in runs:
        cells = []
        for kind in KINDS:
            c = run["second_in_round"][kind]
            total = c["survived"] + c["dropped"]
            gap = run["median_gap_us"].get(kind)
            cells.append(f"{c['survived']:>4}/{total:<4} {'' if gap is None else gap:>6} µs")
        share = run["switched_checks"] / max(1, run["generations"])
        print(
            f"{run['world']:<9} {run['rate_hz']:>4}  {run['capture']:.3f}    {share:5.0%}   "
            + "  ".join(f"{c:>19}" for c in cells)
        )
    print("columns: survived/second generations in a round, median gap to the first check")
    pooled: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for run in runs:
        for kind in KINDS:
            c = run["second_in_round"][kind]
            pooled[(run["world"], kind)][0] += c["survived"]
            pooled[(run["world"], kind)][1] += c["survived"] + c["dropped"]
    for (world, kind), (survived, total) in sorted(pooled.items()):
        if total:
            print(f"pooled {world:<9} {kind:<18} survival {survived / total:.2f} of {total}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="realprof,cprobe")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rates", default="100,200,400")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--from-json", type=Path)
    args = parser.parse_args(argv)
    if args.from_json is not None:
        try:
            _print(json.loads(args.from_json.read_text())["runs"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            parser.error(f"--from-json {args.from_json}: not a file this script wrote ({exc})")
        return 0
    worlds = args.worlds.split(",")
    unknown = [w for w in worlds if w not in MEASURES]
    if unknown:
        parser.error(f"--worlds: unknown {', '.join(unknown)}; allowed: {', '.join(MEASURES)}")
    try:
        rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: {args.rates!r} is not a list of whole numbers, e.g. 100,200")
    if min(rates) <= 0 or args.runs <= 0 or args.threads <= 0 or args.duration <= 0:
        parser.error("--rates, --runs, --threads and --duration must be positive")
    why = tracefs_ready()
    if why is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = []
    for index in range(args.runs):
        for rate in rates:
            for world in worlds:
                capture, lines = trace_while(
                    functools.partial(MEASURES[world], args.threads, rate, args.duration),
                    EVENTS,
                )
                run = {"world": world, "rate_hz": rate, "threads": args.threads, "run": index}
                runs.append(run | {"capture": round(capture, 4)} | analyse(lines))
                print(f"run {index + 1}/{args.runs} {world} {rate} Hz done", file=sys.stderr)
    _print(runs)
    if args.json is not None:
        from lab.machine import machine_facts

        args.json.write_text(
            json.dumps(
                {
                    "command": " ".join(sys.argv),
                    "started": started,
                    "machine": machine_facts(),
                    "runs": runs,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
