"""The Go runtime's wake-ups between ticks, traced: what `sim.gowakers` replays.

A Go program's own threads (sysmon, Ms woken to take over a P or run timers, the profile
writer) wake between ticks and switch busy threads out there, which moves timer checks
off the tick (`sim.gowakers` says why that matters). This module records them with
tracefs (root only; it mounts tracefs if needed) while the Go world runs one grid cell
(`lab.grid_cells.cell_scenario`, busy goroutines in cgo spin loops, `lab.go_world`):
`sched_switch`, `sched_wakeup`, the tick's hrtimer (`tick_nohz_handler`, or
`tick_sched_timer` before Linux 6.9) and SIGPROF's `signal_generate` and
`signal_deliver`.

`analyse` counts, per run: the busy threads (the program's `threads` threads with the
most CPU; the others are the runtime's), the thread-directed SIGPROFs generated against
busy CPU × rate (an overrun generates nothing), and per runtime thread its wake-ups per
second (its sleeps) and their gaps, its switch-ins between ticks, its median run, and its
*takings*: the times it was switched in
between ticks (more than 100 µs after its CPU's last tick) in place of a busy thread
that was still runnable. A busy thread switched out while runnable within 100 µs after
a tick was preempted *at the tick*; otherwise *between ticks*. After a taking, when the
runtime thread sleeps again (not when it is preempted in turn), either the busy thread
gets its CPU back or another thread runs first: `victim_resumes` is the share of the
first.

`measure_wakers` turns one run into `workload.runtime_wakers` for the simulator: each
runtime thread with enough takings for a distribution of their gaps (`MIN_GAPS`), and
its `victim_resumes`; the model replays the takings, each one a preemption. The profile
writer (its goroutine sleeps 100 ms between reads up to Go 1.25, so it and the M that
runs its timer wake about every 100 ms) is left out: the model's reader is it
(`sim.reader`). `python benchmarks/go_runtime_wakes.py` prints the counts; `realprof
grid` measures the wakers in its session for its Go twins.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from contract.report import Report
from lab.go_variant import GoVariant
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
T = TypeVar("T")
LINE = re.compile(
    r"^\s*(?P<task>.+?)-(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S+\s+(?P<ts>[\d.]+): "
    r"(?P<event>\w+): (?P<rest>.*)$"
)
FIELD = re.compile(r"(\w+)=(\S+)")


def _write(name: str, text: str) -> None:
    (TRACEFS / name).write_text(text, encoding="ascii")


def tracefs_ready() -> str | None:
    """None if tracefs can be used, else why not."""
    if os.geteuid() != 0:
        return "tracing the Go runtime needs root (tracefs)"
    if not (TRACEFS / "trace").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=False)
    if not (TRACEFS / "trace").exists():
        return f"no tracefs at {TRACEFS} (needs root: mount -t tracefs nodev {TRACEFS})"
    return None


def trace_while(run: Callable[[], T], events: tuple[str, ...] = EVENTS) -> tuple[T, list[str]]:
    """`run()` under tracefs recording `events` (SIGPROF only, for the signal events):
    (its result, the trace lines). Root only: see `tracefs_ready`."""
    _write("tracing_on", "0")
    _write("trace", "")
    _write("buffer_size_kb", "65536")
    for event in events:
        _write(f"events/{event}/enable", "1")
    for event in ("signal_generate", "signal_deliver"):
        _write(f"events/signal/{event}/filter", f"sig == {SIGPROF}")
    _write("tracing_on", "1")
    try:
        result = run()
    finally:
        _write("tracing_on", "0")
        for event in events:
            _write(f"events/{event}/enable", "0")
    lines = (TRACEFS / "trace").read_text(encoding="utf-8", errors="replace").splitlines()
    _write("trace", "")
    return result, lines


def traced_run(
    threads: int, rate_hz: int, duration_s: float, variant: GoVariant | None
) -> tuple[Report, list[str]]:
    """One Go world run under tracefs: (report, trace lines)."""
    scenario = cell_scenario("native", threads, rate_hz, "per-thread", duration_s, {}, "go1.18")
    (report, _profile), lines = trace_while(lambda: run_go_world(scenario, variant=variant))
    return report, lines


def analyse(
    lines: list[str], threads: int, rate_hz: int, program: str = "goworld"
) -> dict[str, Any]:
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
    # Switch-ins more than AT_TICK_S after the CPU's last tick: wake-ups between ticks.
    woke_between: dict[int, list[float]] = collections.defaultdict(list)
    # A thread switched out while runnable by one of the program's: (cpu) -> (victim,
    # waker); when the waker leaves that CPU, who comes back: (victim, waker, next).
    taken_from: dict[int, tuple[int, int]] = {}
    handed_back: list[tuple[int, int, int]] = []
    # Per thread: (time, victim) of each switch-in that took a runnable thread's CPU
    # between ticks.
    took_cpu: dict[int, list[tuple[float, int]]] = collections.defaultdict(list)
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
            at_tick_now = cpu in last_tick and ts - last_tick[cpu] < AT_TICK_S
            if cpu in taken_from and taken_from[cpu][1] == prev:
                # The waker leaves the CPU: asleep again (not preempted in turn), who runs?
                victim, waker = taken_from.pop(cpu)
                if not f["prev_state"].startswith("R"):
                    handed_back.append((victim, waker, nxt))
            if (
                f["prev_state"].startswith("R")
                and f["prev_comm"].startswith(program)
                and f["next_comm"].startswith(program)
                and not at_tick_now
            ):
                # One of the program's threads took a runnable one's CPU between ticks.
                taken_from[cpu] = (prev, nxt)
                took_cpu[nxt].append((ts, prev))
            if f["next_comm"].startswith(program) and not at_tick_now:
                woke_between[nxt].append(ts)
            if f["prev_comm"].startswith(program):
                switched_out.append((prev, at_tick_now, f["prev_state"], f["next_comm"], nxt))
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
    # After a runtime thread's run on a busy thread's CPU: does the victim come back?
    back = [(v, w, n) for v, w, n in handed_back if v in busy and w not in busy]
    back_by_waker: dict[int, list[bool]] = collections.defaultdict(list)
    for v, w, n in back:
        back_by_waker[w].append(v == n)
    wakes = {}
    for tid in sorted(runtime_threads, key=lambda t: -len(blocked_at[t])):
        stamps = blocked_at[tid]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        runs = segments.get(tid, [])
        between_gaps = [b - a for a, b in itertools.pairwise(woke_between.get(tid, []))]
        # What the model replays: the gaps between this thread's takings of a busy
        # thread's CPU between ticks.
        takings = [t for t, victim in took_cpu.get(tid, []) if victim in busy]
        taking_gaps = [b - a for a, b in itertools.pairwise(takings)]
        wakes[str(tid)] = {
            "wakes_per_s": round(len(stamps) / span_s, 1),
            "median_gap_ms": round(1000 * statistics.median(gaps), 3) if gaps else None,
            "gap_deciles_ms": [round(1000 * q, 3) for q in statistics.quantiles(gaps, n=10)]
            if len(gaps) >= 10
            else None,
            "median_run_us": round(1e6 * statistics.median(runs), 1) if runs else None,
            "between_ticks_wakes_per_s": round(len(woke_between.get(tid, [])) / span_s, 1),
            "between_ticks_gap_deciles_ms": [
                round(1000 * q, 3) for q in statistics.quantiles(between_gaps, n=10)
            ]
            if len(between_gaps) >= 10
            else None,
            "takes_busy_cpu_per_s": round(len(takings) / span_s, 1),
            # The whole distribution of the gaps between those, for the model's wakers
            # (sim.gowakers): minimum, the 99 percentiles and maximum.
            "takes_busy_cpu_gap_points_ms": [
                round(1000 * q, 4)
                for q in [
                    min(taking_gaps),
                    *statistics.quantiles(taking_gaps, n=100, method="inclusive"),
                    max(taking_gaps),
                ]
            ]
            if len(taking_gaps) >= MIN_GAPS
            else None,
            "preempts_between_ticks_per_s": round(preempts_by_tid[tid] / span_s, 1),
            # Of the busy threads it took a CPU from, the share that got it back when it
            # left (the others waited while another busy thread ran).
            "victim_resumes": round(statistics.mean(back_by_waker[tid]), 3)
            if back_by_waker.get(tid)
            else None,
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
        "victim_resumes": round(sum(v == n for v, _, n in back) / len(back), 3) if back else None,
        "another_busy_thread_resumes": round(
            sum(n in busy and n != v for v, _, n in back) / len(back), 3
        )
        if back
        else None,
    }


# Fewer gaps than this give no distribution worth replaying.
MIN_GAPS = 20
# The grid measures wakers at this rate: not one of its cells' rates (lab.grid_cells), so
# the twins' wakers are not fitted on the cells they predict.
WAKERS_RATE_HZ = 150


def wakers_from(counts: dict[str, Any]) -> list[dict[str, Any]]:
    """`workload.runtime_wakers` from one run's `analyse` counts."""
    out = []
    for tid, thread in counts["runtime_threads"].items():
        points = thread.get("takes_busy_cpu_gap_points_ms")
        # The profile writer (a ~100 ms sleep up to Go 1.25, and the M that runs its
        # timer) is the model's reader already (sim.reader); from Go 1.26 it has no
        # such wake-ups.
        writer = 95 <= (thread.get("median_gap_ms") or 0) <= 105
        if points and not writer:
            out.append(
                {
                    "name": f"thread {tid}",
                    "gap_points_ms": points,
                    "run_us": max(1.0, thread.get("median_run_us") or 1.0),
                    "victim_resumes": thread.get("victim_resumes") or 0.0,
                }
            )
    return out


def measure_wakers(
    threads: int, variant: GoVariant | None, duration_s: float = 3.0, rate_hz: int = WAKERS_RATE_HZ
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One traced Go world run: its wakers for the simulator, and the counts they came from."""
    report, lines = traced_run(threads, rate_hz, duration_s, variant)
    counts = analyse(lines, threads, rate_hz)
    counts["capture_ratio"] = round(report.capture_ratio, 4)
    counts["go_version"] = report.machine.get("go_version")
    return wakers_from(counts), counts
