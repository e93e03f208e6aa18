"""The model's capture in one grid cell, window by window of the run.

    python benchmarks/cell_windows.py GRID_JSON [--cell native/4t/200Hz/process]
                                      [--until 4] [--step 0.5] [--seeds 10]
                                      [--runtime realprof] [--watch-after-scan]

A grid cell is a 2 s run, and the model's capture need not be the same in every part of
a run. This simulates the cell on the machine a stored grid was predicted on (its
`model_machine`, with the session's survival values; with `--runtime cprobe`, the
probe's own, as the grid gives them to its model) for durations `step`, `2·step`,
... `until`, with `seeds` seeds each, and prints the capture of each window between two
durations: (samples(d₂) − samples(d₁)) / ((CPU(d₂) − CPU(d₁)) · rate). The runs of one
seed share their history up to the shorter one's end, so a window's capture is what
the longer runs added.

`--watch-after-scan` runs the model with realprof's watch timed as its C code times it
(`watch_threads` in `realprof/_sampler.c` naps 10 ms after each scan, and the reader
calls it again after each drain), where `sim.reader` arms each watch sleep at the
instant the last one fell due: an experiment, patched in here, not the model's default
(benchmarks/README.md, "The model's capture window by window").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.grid import world_machine
from lab.grid_cells import TIMERS, WORKLOADS, cell_scenario
from sim import reader as sim_reader
from sim.machine import SLEEPING
from sim.model import simulate


def watch_after_scan() -> None:
    """Patch `sim.reader.Reader` so its watch naps a period after each watch and read."""
    cls = sim_reader.Reader
    original_start, original_done = cls.start, cls._done

    def arm(self) -> None:
        watch_ns = self.ctx.spec.reader_watch_ns
        if self.stopped or watch_ns is None or self.watch_sleeps is None:
            return
        self.watch_armed = getattr(self, "watch_armed", 0) + 1
        self.watch_sleeps.sleep(watch_ns, due, self, self.watch_armed)

    def due(self, armed: int) -> None:
        if self.stopped or armed != self.watch_armed:
            return
        if self.thread.state != SLEEPING or self.wake_pending or self.watching:
            return  # up for a read: it naps again when that is done
        self.watching = True
        cpu = self.watch_sleeps.rng.randrange(len(self.ctx.machine.cpus))
        self.ctx.machine.wake_preempting(self.thread, cpu)

    def start(self) -> None:
        watch_sleeps, self.watch_sleeps = self.watch_sleeps, None
        original_start(self)  # the periodic reads only
        self.watch_sleeps = watch_sleeps
        arm(self)

    def done(self, thread) -> None:
        original_done(self, thread)
        if thread.state == SLEEPING and not self.watching and not self.wake_pending:
            arm(self)

    cls.start, cls._done = start, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid_json", type=Path)
    parser.add_argument("--cell", default="native/4t/200Hz/process")
    parser.add_argument("--until", type=float, default=4.0)
    parser.add_argument("--step", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--runtime", default="realprof", help="the model: realprof, cprobe")
    parser.add_argument("--watch-after-scan", action="store_true")
    args = parser.parse_args(argv)
    if args.runtime not in ("realprof", "cprobe"):
        parser.error(f"--runtime: {args.runtime!r}; allowed: realprof, cprobe")
    if args.step <= 0 or args.until < args.step or args.seeds <= 0:
        parser.error("--step and --seeds must be positive and --until at least --step")
    try:
        data = json.loads(args.grid_json.read_text())
        machine = world_machine(
            data["model_machine"],
            "sim-cprobe" if args.runtime == "cprobe" else "sim",
            data.get("cprobe_calibration") or {},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"{args.grid_json}: not a grid.json of `python -m realprof grid` ({exc})")
    try:
        workload, threads, rate, timer = args.cell.split("/")
        threads_n, rate_hz = int(threads.removesuffix("t")), int(rate.removesuffix("Hz"))
    except ValueError:
        parser.error(f"--cell: {args.cell!r}; the form is native/4t/200Hz/process")
    if workload not in WORKLOADS or timer not in TIMERS:
        parser.error(
            f"--cell: {args.cell!r}; workloads {', '.join(WORKLOADS)}, timers {', '.join(TIMERS)}"
        )
    if args.watch_after_scan:
        watch_after_scan()
    print(f"{args.cell}, {args.runtime} model on {args.grid_json}'s machine, {args.seeds} seeds")
    previous = (0.0, 0.0, 0.0)
    steps = round(args.until / args.step)
    for index in range(1, steps + 1):
        duration = index * args.step
        scenario = cell_scenario(
            workload, threads_n, rate_hz, timer, duration, machine, args.runtime
        )
        reports = [
            simulate(dataclasses.replace(scenario, seed=seed)).report
            for seed in range(1, args.seeds + 1)
        ]
        samples = statistics.mean(r.capture_ratio * r.cpu_seconds * rate_hz for r in reports)
        cpu = statistics.mean(r.cpu_seconds for r in reports)
        window = (samples - previous[1]) / ((cpu - previous[2]) * rate_hz)
        whole = statistics.mean(r.capture_ratio for r in reports)
        print(
            f"  {previous[0]:4.1f}-{duration:4.1f} s  window {window:.3f}  "
            f"whole run of {duration:.1f} s {whole:.3f}"
        )
        previous = (duration, samples, cpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
