"""calibrate: measure what the kernel model cannot know, on this machine.

`python -m realprof calibrate [--out machines/this-machine.yaml] [--repeat N]`

The simulator's kernel model has parameters that belong to the platform rather than to
the kernel's code (docs/walkthrough/03-signals-and-coalescing.md):

* `same_round_survival` (p): the chance that a second process-timer SIGPROF generated in
  the same tick round survives because the first was already dequeued. It depends on how
  far apart the CPUs' timer checks really land against the µs-scale generate-to-dequeue
  latency: ≈ 0 on bare metal with aligned ticks, up to 1 with skewed ticks or virtual
  CPUs whose ticks drift.
* `same_round_survival_after_switch`: the same when the check ran after a context switch
  (more busy threads than CPUs: the thread switched in at the tick checks on its first
  return to user mode, the one preempted when it runs again). Whether that spreads a
  round's checks depends on the other check of the round (tracefs:
  benchmarks/README.md, "Which second SIGPROF of a round survives"), so it is fitted.
* `cpu_check_bias`: which CPU tends to run its timer check first in a round and so wins
  the round's one signal (golang/go #14434 reported 80/20 for equal work).

and the profiler has one cost it needs: the handler's CPU time per sample.

Each is measured with a micro-experiment that is *not* a cell of the validation grid
(`realprof grid` uses rates 100, 200, 250, 500 and 1000 Hz, and 2000 and 5000 Hz for the
perf timer; these use 400 and 750 Hz, and 150 Hz with threads pinned to CPUs), so the
grid stays a held-out test of the model:

1. Busy native (GIL-free) threads under the process timer at 400 and 750 Hz, two of them
   for p and four for the after-switch p. Two busy CPUs advance the process clock by two
   ticks a round, more than the 400 Hz interval, so every round generates two signals
   (one per CPU check) and delivers one or two. p is *counted*: the C handler stamps
   every sample with CLOCK_MONOTONIC, this machine's ticks fall on multiples of 1/HZ of
   that clock (lab/machine.py reads the alignment), the samples split into tick
   rounds, and p is the share of whole rounds that delivered two (`survival_from_rounds`;
   about 500 rounds per 2 s run, binomial standard error ≈ 0.02). The median over the
   two-thread runs is the calibrated p. The after-switch p is *fitted*: a four-thread
   run's rounds mix checks made right after a switch at the tick with plain ones, in
   proportions only the scheduler decides, so the value is the one with which the
   simulator's twin of those runs captures what they captured (`lab.survival_fit`, which
   also gives the fit's standard error). The busy threads stay in C for long calls, as in the grid's
   native cells: threads back in Python every 2 ms (until 7 December) queued for the
   GIL four on two CPUs, switched between ticks, and counted a survival the cells never
   see (benchmarks/README.md, "Which second SIGPROF of a round survives"). As a check,
   the simulator's twin of each experiment is run with the values, and its capture
   ratio is compared with the measured one: a check of the model for the two-thread
   runs, of the fit only for the four-thread runs. A machine with a CPU per busy
   thread has nothing to switch, and its after-switch p stays unset.

   On a VM, p drifts from one quarter hour to the next with how the host schedules the
   vCPUs, and scatters from one 2 s run to the next; rates far above the grid's gave a
   lower p than the grid's own in interleaved runs (measured with
   `benchmarks/tick_rounds.py`: benchmarks/README.md, "Tick rounds of the process
   timer"). So `realprof grid` repeats these runs among the cells of each of its
   passes and simulates with its session's values (`survival_run`,
   `lab.survival_fit.survival_medians`: p the two-thread runs' median, p after a switch
   fitted to the four-thread runs; stored as `session_calibration` in grid.json), and
   400 and 750 Hz stay in the grid's range without being its cells.
2. Two busy native threads pinned one per CPU under the process timer at 150 Hz: every
   round is contested, and the share of the CPU-0 thread is the share of rounds CPU 0
   wins. The bias is fitted through the simulator (bisection on CPU 0's weight).
3. The handler's cost: the C handler times itself (CLOCK_MONOTONIC at entry and exit);
   the median per delivery becomes the realprof runtime's `handler_cost_us`.

The machine profile records the facts (CPUs, HZ, tick alignment), the raw measurements,
the fitted values and the residuals, so a reader can judge the fit.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from contract.scenario import Scenario, validate_scenario
from lab.grid_cells import cell_scenario
from lab.machine import cpus_wanted, got_its_cpus, machine_facts
from lab.survival_fit import P_GRID, SURVIVAL_THREADS, counted_p, survival_medians
from lab.workload import run_scenario, spin_native
from realprof.sampler import Sampler
from sim.model import simulate

SURVIVAL_RATES_HZ = (400, 750)
BIAS_RATE_HZ = 150
# Shortest GIL-free call of a survival run's busy thread near its deadline.
MIN_CHUNK_NS = 100_000
DEFAULT_OUT = Path("machines") / "this-machine.yaml"


def survival_from_rounds(
    times_ns: list[int], rate_hz: float, hz: int, busy_cpus: int = 2
) -> dict[str, float]:
    """Same-round survival counted from sample times, for busy CPUs under the process timer.

    The tick-charged process clock gains `busy_cpus` ticks per round, so the timer is due
    `busy_cpus·rate/HZ` times a round and fires at most once per CPU check: a second
    generation happens in a share `min(1, busy_cpus·rate/HZ − 1)` of rounds (for two
    CPUs). A round that delivered two signals is one whose second generation survived,
    so p = (share of two-delivery rounds) / (share of two-generation rounds). The first
    and last (partial) rounds are left out. Needs aligned ticks: with skewed ticks a
    round's two checks fall into different windows of 1/HZ.
    """
    tick_ns = 1_000_000_000 // hz
    per_round: dict[int, int] = {}
    for t in times_ns:
        per_round[t // tick_ns] = per_round.get(t // tick_ns, 0) + 1
    if len(per_round) < 3:
        return {"rounds": 0, "f0": 0.0, "f1": 0.0, "f2": 0.0, "p": math.nan, "p_se": math.nan}
    first, last = min(per_round), max(per_round)
    counts = [per_round.get(r, 0) for r in range(first + 1, last)]
    n = len(counts)
    f0, f1 = counts.count(0) / n, counts.count(1) / n
    f2 = sum(c >= 2 for c in counts) / n
    doubles = min(1.0, max(0.0, min(busy_cpus, 2) * rate_hz / hz - 1))
    if not doubles:
        return {"rounds": n, "f0": f0, "f1": f1, "f2": f2, "p": math.nan, "p_se": math.nan}
    return {
        "rounds": n,
        "f0": f0,
        "f1": f1,
        "f2": f2,
        "p": f2 / doubles,
        "p_se": math.sqrt(f2 * (1 - f2) / n) / doubles,
    }


def _busy_native(
    rate_hz: float, duration_s: float, pin: bool, threads_n: int = 2
) -> dict[str, Any]:
    """`threads_n` GIL-free spinning threads under realprof's process timer."""
    if spin_native is None:
        raise CalibrationError("calibration needs the C extension realprof._sampler")
    cpus = sorted(os.sched_getaffinity(0))
    barrier = threading.Barrier(threads_n + 1)
    cpu_ns: dict[str, int] = {}
    deadline = [0.0]

    # Each thread's CPU share while all spin: what one GIL-free call asks for per second
    # of wall time left, so a call ends near the deadline (tens of ms past it at worst,
    # as in the grid's cells). Pinned, one long call each.
    share = min(1.0, len(cpus) / threads_n) if not pin else 1.0

    def work(index: int) -> None:
        if pin:
            os.sched_setaffinity(0, {cpus[index % len(cpus)]})
        barrier.wait()
        start = time.thread_time_ns()
        # Long GIL-free calls, as the grid's native cells make (lab.workload): a thread
        # back in Python every few ms takes the GIL, and with more threads than CPUs
        # they queue for it and switch between ticks, which moves their timer checks
        # apart and measures a survival the cells never see (benchmarks/README.md,
        # "Which second SIGPROF of a round survives").
        while (wall_left_ns := (deadline[0] - time.monotonic()) * 1e9) > 0:
            spin_native(max(int(wall_left_ns * share), MIN_CHUNK_NS))
        cpu_ns[f"cpu{index}"] = time.thread_time_ns() - start

    threads = [
        threading.Thread(target=work, args=(i,), name=f"cpu{i}", daemon=True)
        for i in range(threads_n)
    ]
    for thread in threads:
        thread.start()
    sampler = Sampler(rate_hz=rate_hz, timer="process", keep_times=True)
    sampler.start()
    deadline[0] = time.monotonic() + duration_s
    barrier.wait()
    for thread in threads:
        thread.join()
    profile = sampler.stop()
    stats = sampler.stats
    by_thread = profile.by_thread()
    worker_samples = sum(by_thread.get(name, 0) for name in cpu_ns)
    cpu_s = sum(cpu_ns.values()) / 1e9
    return {
        "rate_hz": rate_hz,
        "threads": threads_n,
        "cpu_seconds": cpu_s,
        "samples": worker_samples,
        "capture_ratio": worker_samples / (cpu_s * rate_hz) if cpu_s else 0.0,
        "share_cpu0": by_thread.get("cpu0", 0) / worker_samples if worker_samples else 0.5,
        "handler_ns_total": stats.get("handler_ns_total"),
        "signals_delivered": stats.get("signals_delivered"),
        "sample_times_ns": sampler.sample_times_ns or [],
    }


def _twin(
    facts: dict[str, Any],
    rate_hz: float,
    duration_s: float,
    p: float,
    bias=None,
    threads_n: int = 2,
    p_after_switch: float | None = None,
) -> Scenario:
    return validate_scenario(
        {
            "name": "calibration",
            "machine": {
                "cpus": 2,
                "kernel_hz": facts["kernel_hz"],
                "tick_skew": facts.get("tick_alignment") == "skewed",
                "same_round_survival": p,
                "same_round_survival_after_switch": p_after_switch,
                "cpu_check_bias": bias,
            },
            "profiler": {"runtime": "realprof", "timer": "process", "rate_hz": rate_hz},
            "workload": {
                "duration_s": duration_s,
                "threads": [
                    {
                        "name": f"cpu{i}",
                        "program": [{"native": {"function": "spin", "cpu_ms": 1000}}],
                    }
                    for i in range(threads_n)
                ],
            },
        }
    )


def _sim_capture(
    facts, rate_hz, duration_s, p, bias=None, threads_n: int = 2, p_after_switch=None
) -> tuple[float, float]:
    scenario = _twin(facts, rate_hz, duration_s, p, bias, threads_n, p_after_switch)
    report = simulate(scenario).report
    rows = {row.name: row for row in report.threads}
    share = rows["cpu0"].share if "cpu0" in rows else 0.5
    return report.capture_ratio, share


def survival_experiments() -> list[tuple[int, int]]:
    """(rate_hz, busy threads) of the survival runs, in the order one pass runs them."""
    return [(rate, n) for n in SURVIVAL_THREADS for rate in SURVIVAL_RATES_HZ]


def survival_run(rate_hz: int, threads_n: int, duration_s: float, hz: int) -> dict[str, Any]:
    """One survival run: capture ratio and p counted in its tick rounds (no raw times)."""
    run = _busy_native(rate_hz, duration_s, False, threads_n)
    counted = survival_from_rounds(run.pop("sample_times_ns"), rate_hz, hz)
    return run | {
        "p": None if counted["p"] != counted["p"] else round(counted["p"], 4),
        "p_se": None if counted["p_se"] != counted["p_se"] else round(counted["p_se"], 4),
        "rounds": counted["rounds"],
    }


def fresh_prediction(
    cell: tuple[str, int, int, str],
    machine: dict[str, Any],
    pairs: int = 7,
    duration_s: float = 1.5,
    rate_hz: int = SURVIVAL_RATES_HZ[0],
    hz: int = 250,
) -> dict[str, Any]:
    """Predict a grid cell from survival runs taken in alternation with its real runs.

    `pairs` times: one two-thread survival run at `rate_hz`, then one real run of `cell`.
    The cell is simulated with the median p of those survival runs (the rest of `machine`
    as given) and compared with the median of its real runs: the protocol of the grid's
    session calibration, on one cell. Returns p, the prediction, the runs and the gap
    (measured − predicted).

    A pair whose threads got less than 90% of the CPU they asked for (another job on the
    machine: the grid's `machine_busy`) is left out of both medians: with fewer CPUs free
    than busy threads, a tick round holds fewer of the process's ticks and the cell is
    not the one the model simulates. `busy_pairs` counts them; `gap` is None if none
    was clean.
    """
    scenario = cell_scenario(*cell, duration_s, machine)
    wanted = cpus_wanted(cell[0], cell[1])
    counted, measured, busy = [], [], 0
    for _ in range(pairs):
        survival = survival_run(rate_hz, 2, duration_s, hz)
        report = run_scenario(scenario).report
        if not got_its_cpus(
            survival["cpu_seconds"], cpus_wanted("native", 2), duration_s
        ) or not got_its_cpus(report.cpu_seconds, wanted, duration_s):
            busy += 1
            continue
        counted.append(survival)
        measured.append(report.capture_ratio)
    result: dict[str, Any] = {"busy_pairs": busy, "p_runs": [r["p"] for r in counted]}
    if not counted:
        return result | {"p": None, "predicted": None, "measured": [], "gap": None}
    p = counted_p(counted, 2)
    if p is None:
        raise CalibrationError(f"no tick round at {rate_hz} Hz generated two signals")
    twin = cell_scenario(*cell, duration_s, machine | {"same_round_survival": p})
    predicted = simulate(twin).report.capture_ratio
    return result | {
        "p": p,
        "predicted": predicted,
        "measured": measured,
        "gap": statistics.median(measured) - predicted,
    }


def fit_survival(facts, measured: dict[float, float], duration_s: float):
    """Least-squares p over P_GRID; returns (p, residual per rate)."""
    best = None
    for p in P_GRID:
        predicted = {r: _sim_capture(facts, r, duration_s, p)[0] for r in measured}
        error = sum((predicted[r] - measured[r]) ** 2 for r in measured)
        if best is None or error < best[0]:
            best = (error, p, predicted)
    assert best is not None
    _, p, predicted = best
    return p, {r: predicted[r] - measured[r] for r in measured}


def fit_bias(facts, share_cpu0: float, p: float, duration_s: float):
    """Bisection on CPU 0's weight so the simulated pinned share matches the measured."""
    low, high = 0.05, 0.95
    for _ in range(12):
        mid = (low + high) / 2
        _, share = _sim_capture(facts, BIAS_RATE_HZ, duration_s, p, [mid, 1 - mid])
        if share < share_cpu0:
            low = mid
        else:
            high = mid
    weight = round((low + high) / 2, 3)
    _, share = _sim_capture(facts, BIAS_RATE_HZ, duration_s, p, [weight, 1 - weight])
    return [weight, round(1 - weight, 3)], share - share_cpu0


def calibrate(repeat: int = 3, duration_s: float = 3.0, progress: bool = True) -> dict[str, Any]:
    from tqdm import tqdm

    facts = machine_facts()
    if facts.get("kernel_hz") not in (100, 250, 300, 1000):
        raise CalibrationError(
            "cannot read this kernel's CONFIG_HZ (needed to model its tick); "
            f"found {facts.get('kernel_hz')!r} from {facts.get('kernel_hz_source')}"
        )
    if (facts.get("cpus") or 0) < 2:
        raise CalibrationError("calibration needs at least 2 CPUs (it measures collisions)")
    hz = int(facts["kernel_hz"])
    survival = survival_experiments()
    survival_runs: list[dict[str, Any]] = []
    bias_runs: list[dict[str, Any]] = []
    with tqdm(
        total=(len(survival) + 1) * repeat,
        desc="calibrate",
        unit="run",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for _ in range(repeat):
            for rate, threads_n in survival:
                bar.set_postfix_str(f"{rate} Hz, {threads_n} threads")
                survival_runs.append(survival_run(rate, threads_n, duration_s, hz))
                bar.update(1)
            bar.set_postfix_str(f"{BIAS_RATE_HZ} Hz pinned")
            run = _busy_native(BIAS_RATE_HZ, duration_s, True)
            run.pop("sample_times_ns")
            bias_runs.append(run)
            bar.update(1)

    by_experiment = {
        (rate, n): [r for r in survival_runs if r["rate_hz"] == rate and r["threads"] == n]
        for rate, n in survival
    }
    captures = {
        exp: statistics.median(r["capture_ratio"] for r in runs)
        for exp, runs in by_experiment.items()
    }
    p_by_capture, _ = fit_survival(
        facts, {rate: captures[(rate, 2)] for rate in SURVIVAL_RATES_HZ}, duration_s
    )
    twin_machine = {
        "cpus": facts["cpus"],
        "kernel_hz": facts["kernel_hz"],
        "tick_skew": facts.get("tick_alignment") == "skewed",
    }
    medians: dict[str, float | None] = {"same_round_survival": None}
    if facts.get("tick_alignment") == "aligned":
        medians = survival_medians(survival_runs, twin_machine, duration_s)
    if medians["same_round_survival"] is not None:
        p, p_after_switch = (
            medians["same_round_survival"],
            medians["same_round_survival_after_switch"],
        )
        # The four-thread rows' residuals are the fit's own: they check the fit, not the
        # model.
        p_method = "p counted in tick rounds" + (
            ", after a switch fitted to the captures" if p_after_switch is not None else ""
        )
    else:
        # Rounds cannot be told apart without aligned ticks (or none were counted): fall
        # back to the capture fit.
        p, p_after_switch, p_method = p_by_capture, None, "fitted to the capture ratio"
    residuals = {
        (rate, n): _sim_capture(facts, rate, duration_s, p, None, n, p_after_switch)[0]
        - captures[(rate, n)]
        for rate, n in survival
    }
    share_cpu0 = statistics.median(r["share_cpu0"] for r in bias_runs)
    bias, bias_residual = fit_bias(facts, share_cpu0, p, duration_s)
    handler_ns = [
        r["handler_ns_total"] / r["signals_delivered"]
        for r in [*survival_runs, *bias_runs]
        if r.get("handler_ns_total") and r.get("signals_delivered")
    ]
    handler_cost_us = round(statistics.median(handler_ns) / 1000, 3) if handler_ns else None
    machine = twin_machine | {
        "same_round_survival": p,
        "same_round_survival_after_switch": p_after_switch,
        "cpu_check_bias": bias if facts["cpus"] == 2 else None,
    }
    return {
        "machine": machine,
        "profiler_defaults": {"handler_cost_us": handler_cost_us},
        "calibrated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m realprof calibrate",
        "facts": facts,
        "measurements": {
            "survival": {
                f"{rate} Hz, {n} threads": {
                    "capture_ratio_median": round(captures[(rate, n)], 4),
                    "runs": [round(r["capture_ratio"], 4) for r in by_experiment[(rate, n)]],
                    "p_counted_runs": [r["p"] for r in by_experiment[(rate, n)]],
                    "p_counted_se": [r["p_se"] for r in by_experiment[(rate, n)]],
                    "simulated_minus_measured": round(residuals[(rate, n)], 4),
                }
                for rate, n in survival
            },
            "survival_method": p_method,
            "survival_after_switch_se": medians.get("same_round_survival_after_switch_se"),
            "survival_fitted_to_capture": p_by_capture,
            "bias": {
                "rate_hz": BIAS_RATE_HZ,
                "share_cpu0_median": round(share_cpu0, 4),
                "runs": [round(r["share_cpu0"], 4) for r in bias_runs],
                "simulated_minus_measured": round(bias_residual, 4),
            },
            "handler_cost_us_runs": [round(ns / 1000, 3) for ns in handler_ns],
        },
        "repeat": repeat,
        "duration_s": duration_s,
    }


class CalibrationError(Exception):
    """Calibration cannot run here; one line for the user."""


def _fmt_p(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.2f}"


def render(profile: dict[str, Any]) -> str:
    m = profile["machine"]
    meas = profile["measurements"]
    se = meas.get("survival_after_switch_se")
    lines = [
        "Calibration of this machine",
        f"  facts: {m['cpus']} CPUs, HZ={m['kernel_hz']}, ticks "
        f"{profile['facts'].get('tick_alignment') or 'unknown'}, "
        f"kernel {profile['facts'].get('kernel')}",
        f"  same-round survival p = {m['same_round_survival']:.2f}, after a context switch "
        f"{_fmt_p(m.get('same_round_survival_after_switch'))}"
        f"{f' (SE {se:.3f})' if se else ''} "
        f"({meas.get('survival_method', 'fitted to the capture ratio')}; process timer, "
        "busy native threads):",
    ]
    for rate, row in meas["survival"].items():
        counted = [x for x in row.get("p_counted_runs", []) if x is not None]
        per_run = f"p per run {counted}, " if counted else ""
        lines.append(
            f"    {rate:>18}: {per_run}measured capture {row['capture_ratio_median']:.3f} "
            f"(runs {row['runs']}), the model is off by {row['simulated_minus_measured']:+.3f}"
        )
    if "survival_fitted_to_capture" in meas:
        lines.append(
            f"    (fitting p to the two-thread capture ratios instead gives "
            f"{meas['survival_fitted_to_capture']:.2f})"
        )
    bias = meas["bias"]
    lines.append(
        f"  CPU check bias (pinned, {bias['rate_hz']} Hz): CPU 0's thread got "
        f"{bias['share_cpu0_median']:.1%} of samples → weights {m['cpu_check_bias']} "
        f"(model off by {bias['simulated_minus_measured']:+.3f})"
    )
    cost = profile["profiler_defaults"]["handler_cost_us"]
    lines.append(
        "  handler cost per sample: "
        + (f"{cost:.2f} µs" if cost is not None else "not measured (the extension has no timer)")
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m realprof calibrate",
        description="Measure this machine's kernel parameters and write a machine profile.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.duration <= 0:
        print("error: --repeat must be >= 1 and --duration > 0", file=sys.stderr)
        return 2
    try:
        profile = calibrate(args.repeat, args.duration, progress=not args.no_progress)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(profile))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Written by `python -m realprof calibrate`; scenarios use it with "
        f"`machine: {args.out.stem}`.\n"
    )
    args.out.write_text(header + yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
