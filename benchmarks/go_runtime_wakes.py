"""Who switches a busy Go thread out between ticks: a tracefs record of one Go world run.

    python benchmarks/go_runtime_wakes.py [--threads 4] [--rate-hz 250] [--duration 3]
                                          [--repeat 3] [--go 1.19] [--json OUT]
    python benchmarks/go_runtime_wakes.py --from-json FILE     # a stored --json FILE's predictions

The go1.18 model over-predicts the Go world's cells with more busy goroutines than CPUs
under per-thread timers (four on two CPUs at 250 Hz: 0.98 against 0.90-0.92 measured on
Go 1.19 to 1.27). A per-thread timer is checked only at a tick that finds its thread
current, so a thread switched out between ticks lets its expiries pile up into one
signal and an overrun (docs/walkthrough/11-sim-versus-reality.md). The model switches
threads between ticks only when realprof's reader wakes; Go has threads of its own that
wake (sysmon, idle Ms woken to run timers, the profile reader every 100 ms). This script
counts them, root only (it mounts tracefs if needed):

* it runs the Go world's program for `threads` busy goroutines (cgo spin loops, as the
  grid's `native` cells) under Go's default timers, the grid's way (`lab.go_world`),
  while tracefs records `sched_switch`, `sched_wakeup`, the tick's hrtimer
  (`tick_nohz_handler`, `tick_sched_timer` before Linux 6.9) and SIGPROF's
  `signal_generate` and `signal_deliver`;
* a busy thread is one of the program's four (or `threads`) threads with the most CPU;
  the others are the runtime's. A busy thread switched out while runnable within 100 µs
  after a tick on its CPU was preempted *at the tick*; otherwise *between ticks*, and the
  thread switched in says by whom;
* per run it prints the capture, the thread-directed SIGPROFs generated against the
  busy CPU × rate (the timers' own loss: an overrun generates nothing), the runtime
  threads' wake-ups per second with each one's median gap, and the busy threads'
  preemptions per second at ticks and between them, split by who took the CPU;
* and the go1.18 model's prediction for the cell on this machine's calibrated profile,
  without the runtime's wakers and replaying the run's own (`lab.go_wakers.wakers_from`,
  `sim.gowakers`): `predicted_without_wakers`, `predicted_with_wakers`.
  `--from-json FILE` recomputes those from stored runs, without root or Go.

It is a script, not a test: the numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.go_toolchain import GoWorldError
from lab.go_variant import go_variants, path_variant
from lab.go_wakers import analyse, traced_run, tracefs_ready, wakers_from


def predictions(threads: int, rate_hz: int, duration_s: float, counts: dict) -> dict:
    """The go1.18 model's capture for the cell, without and with the run's wakers."""
    import dataclasses

    from lab.grid_cells import cell_scenario
    from lab.machine import machine_here
    from sim.model import simulate

    base = cell_scenario("native", threads, rate_hz, "per-thread", duration_s, {})
    machine, _note = machine_here(base, None)
    out = {}
    for key, wakers in (("without", None), ("with", wakers_from(counts))):
        captures = []
        for seed in (1, 2, 3):
            scenario = cell_scenario(
                "native", threads, rate_hz, "per-thread", duration_s, machine, "go1.18", wakers
            )
            captures.append(simulate(dataclasses.replace(scenario, seed=seed)).report.capture_ratio)
        out[f"predicted_{key}_wakers"] = round(sorted(captures)[1], 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate-hz", type=int, default=250)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--go", help="a Go release with a cached toolchain (1.23); default: PATH")
    parser.add_argument("--json", type=Path, help="write the runs here")
    parser.add_argument(
        "--from-json", type=Path, help="recompute the predictions of stored runs (no tracing)"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        stored = json.loads(args.from_json.read_text(encoding="utf-8"))
        a = stored["args"]
        for counts in stored["runs"]:
            got = predictions(a["threads"], a["rate_hz"], a["duration"], counts)
            print(json.dumps({"capture_ratio": counts.get("capture_ratio"), **got}))
        return 0
    if args.threads < 1 or args.rate_hz < 1 or args.duration <= 0 or args.repeat < 1:
        print("error: --threads, --rate-hz, --repeat >= 1 and --duration > 0", file=sys.stderr)
        return 2
    why = tracefs_ready()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    variant = go_variants(args.go)[0] if args.go else path_variant()
    runs = []
    for _ in range(args.repeat):
        try:
            report, lines = traced_run(args.threads, args.rate_hz, args.duration, variant)
        except GoWorldError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        counts = analyse(lines, args.threads, args.rate_hz)
        counts["capture_ratio"] = round(report.capture_ratio, 4)
        counts["go_version"] = report.machine.get("go_version")
        counts |= predictions(args.threads, args.rate_hz, args.duration, counts)
        runs.append(counts)
        print(json.dumps(counts))
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "runs": runs}, indent=1)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
