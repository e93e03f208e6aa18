"""Who switches a busy Go thread out between ticks: a tracefs record of one Go world run.

    python benchmarks/go_runtime_wakes.py [--threads 4] [--rate-hz 250] [--duration 3]
                                          [--repeat 3] [--go 1.19] [--json OUT]

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
  preemptions per second at ticks and between them, split by who took the CPU.

It is a script, not a test: the numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import re
import statistics
import sys
from pathlib import Path

from lab.go_toolchain import GoWorldError
from lab.go_variant import GoVariant, go_variants, path_variant
from lab.go_world import run_go_world
from lab.grid_cells import cell_scenario

TRACEFS = Path("/sys/kernel/tracing")
EVENTS = (
    "sched/sched_switch",
    "sched/sched_wakeup",
    "signal/signal_generate",
    "signal/signal_deliver",
    "timer/hrtimer_expire_entry",
)
TICK_FUNCTIONS = ("tick_nohz_handler", "tick_sched_timer")
AT_TICK_S = 100e-6
SIGPROF = 27
SI_TIMER = -2
LINE = re.compile(
    r"^\s*(?P<task>.+?)-(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S+\s+(?P<ts>[\d.]+): "
    r"(?P<event>\w+): (?P<rest>.*)$"
)
FIELD = re.compile(r"(\w+)=(\S+)")


def _write(name: str, text: str) -> None:
    (TRACEFS / name).write_text(text, encoding="ascii")


def tracefs_ready() -> str | None:
    """None if tracefs can be used, else why not."""
    if not (TRACEFS / "trace").exists():
        import subprocess

        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=False)
    if not (TRACEFS / "trace").exists():
        return f"no tracefs at {TRACEFS} (needs root: mount -t tracefs nodev {TRACEFS})"
    return None


def traced_run(threads: int, rate_hz: int, duration_s: float, variant: GoVariant | None):
    """One Go world run under tracefs: (report, trace lines)."""
    scenario = cell_scenario("native", threads, rate_hz, "per-thread", duration_s, {}, "go1.18")
    _write("tracing_on", "0")
    _write("trace", "")
    _write("buffer_size_kb", "65536")
    for event in EVENTS:
        _write(f"events/{event}/enable", "1")
    for event in ("signal_generate", "signal_deliver"):
        _write(f"events/signal/{event}/filter", f"sig == {SIGPROF}")
    _write("tracing_on", "1")
    try:
        report, _profile = run_go_world(scenario, variant=variant)
    finally:
        _write("tracing_on", "0")
        for event in EVENTS:
            _write(f"events/{event}/enable", "0")
    lines = (TRACEFS / "trace").read_text(encoding="utf-8", errors="replace").splitlines()
    _write("trace", "")
    return report, lines


def analyse(lines: list[str], threads: int, rate_hz: int, program: str = "goworld") -> dict:
    """The counts described in the module docstring, from one run's trace lines."""
    events = []
    for line in lines:
        m = LINE.match(line)
        if m:
            rest = m["rest"].replace(" ==> ", " ")
            fields = dict(FIELD.findall(rest))
            events.append((float(m["ts"]), int(m["cpu"]), m["event"], fields, m["rest"]))
    events.sort(key=lambda e: e[0])
    if not events:
        raise ValueError("the trace holds no events")
    last_tick: dict[int, float] = {}
    on_cpu: dict[int, tuple[int, float]] = {}
    run_s: collections.Counter[int] = collections.Counter()
    comm: dict[int, str] = {}
    # (tid, at tick, state, next comm, next tid)
    switched_out: list[tuple[int, bool, str, str, int]] = []
    segments: dict[int, list[float]] = collections.defaultdict(list)  # run lengths
    blocked_at: dict[int, list[float]] = collections.defaultdict(list)
    generated = delivered = 0
    for ts, cpu, event, f, rest in events:
        if event == "hrtimer_expire_entry":
            if any(name in rest for name in TICK_FUNCTIONS):
                last_tick[cpu] = ts
        elif event == "sched_switch":
            prev, nxt = int(f["prev_pid"]), int(f["next_pid"])
            comm[prev], comm[nxt] = f["prev_comm"], f["next_comm"]
            if cpu in on_cpu and on_cpu[cpu][0] == prev:
                run_s[prev] += ts - on_cpu[cpu][1]
                segments[prev].append(ts - on_cpu[cpu][1])
            on_cpu[cpu] = (nxt, ts)
            if f["prev_comm"].startswith(program):
                at_tick = cpu in last_tick and ts - last_tick[cpu] < AT_TICK_S
                switched_out.append((prev, at_tick, f["prev_state"], f["next_comm"], nxt))
                if not f["prev_state"].startswith("R"):
                    blocked_at[prev].append(ts)
        elif event == "signal_generate" and int(f.get("code", 0)) == SI_TIMER:
            generated += 1
        elif event == "signal_deliver" and int(f.get("code", 0)) == SI_TIMER:
            delivered += 1
    span_s = events[-1][0] - events[0][0]
    ours = [t for t, _ in run_s.most_common() if comm.get(t, "").startswith(program)]
    busy = set(ours[:threads])
    busy_cpu_s = sum(run_s[t] for t in busy)
    runtime_threads = [t for t in blocked_at if t not in busy]
    preempted = [s for s in switched_out if s[0] in busy and s[2].startswith("R")]
    between = [s for s in preempted if not s[1]]
    by_whom = collections.Counter(
        "the Go runtime" if s[3].startswith(program) else "other processes" for s in between
    )
    preempts_by_tid = collections.Counter(s[4] for s in between)
    wakes = {}
    for tid in sorted(runtime_threads, key=lambda t: -len(blocked_at[t])):
        stamps = blocked_at[tid]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        runs = segments.get(tid, [])
        wakes[str(tid)] = {
            "wakes_per_s": round(len(stamps) / span_s, 1),
            "median_gap_ms": round(1000 * statistics.median(gaps), 3) if gaps else None,
            "gap_deciles_ms": [round(1000 * q, 3) for q in statistics.quantiles(gaps, n=10)]
            if len(gaps) >= 10
            else None,
            "median_run_us": round(1e6 * statistics.median(runs), 1) if runs else None,
            "preempts_between_ticks_per_s": round(preempts_by_tid[tid] / span_s, 1),
        }
    return {
        "span_s": round(span_s, 3),
        "busy_cpu_s": round(busy_cpu_s, 3),
        "thread_timer_signals_generated": generated,
        "thread_timer_signals_delivered": delivered,
        "generated_per_expected": round(generated / (busy_cpu_s * rate_hz), 4),
        "runtime_thread_wakes_per_s": round(
            sum(len(blocked_at[t]) for t in runtime_threads) / span_s, 1
        ),
        "runtime_threads": wakes,
        "busy_preempted_at_tick_per_s": round(sum(1 for s in preempted if s[1]) / span_s, 1),
        "busy_preempted_between_ticks_per_s": round(len(between) / span_s, 1),
        "between_ticks_by": {k: round(v / span_s, 1) for k, v in by_whom.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rate-hz", type=int, default=250)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--go", help="a Go release with a cached toolchain (1.23); default: PATH")
    parser.add_argument("--json", type=Path, help="write the runs here")
    args = parser.parse_args(argv)
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
