"""calibrate: measure what the kernel model cannot know, on this machine.

`python -m realprof calibrate [--out machines/this-machine.yaml] [--repeat N]`

The simulator's kernel model has two parameters that belong to the platform rather than
to the kernel's code (shared/reference/linux-sigprof.md §7):

* `same_round_survival` (p): the chance that a second process-timer SIGPROF generated in
  the same tick round survives because the first was already dequeued. It depends on how
  far apart the CPUs' tick interrupts really land against the µs-scale
  generate-to-dequeue latency: ≈ 0 on bare metal with aligned ticks, up to 1 with skewed
  ticks or virtual CPUs whose ticks drift.
* `cpu_check_bias`: which CPU tends to run its timer check first in a round and so wins
  the round's one signal (golang/go #14434 reported 80/20 for equal work).

and the profiler has one cost it needs: the handler's CPU time per sample.

Each is measured with a micro-experiment that is *not* a cell of the validation grid
(`realprof grid` uses rates 100–1000 Hz; these use 1500 and 2000 Hz, and 150 Hz with
threads pinned to CPUs), so the grid stays a held-out test of the fitted model:

1. Two busy native (GIL-free) threads under the process timer at 1500 and 2000 Hz: far
   above what the tick can deliver, so the capture ratio is set by p alone
   (≈ HZ·(1 + p·(C − 1))/(C·R)). p is fitted by running the simulator's twin of the same
   experiment over a grid of p values and keeping the closest (least squares).
2. Two busy native threads pinned one per CPU under the process timer at 150 Hz: every
   round is contested, and the share of the CPU-0 thread is the share of rounds CPU 0
   wins. The bias is fitted the same way, through the simulator.
3. The handler's cost: the C handler times itself (CLOCK_MONOTONIC at entry and exit);
   the mean per delivery becomes the realprof runtime's `handler_cost_us`.

The machine profile records the facts (CPUs, HZ, tick alignment), the raw measurements,
the fitted values and the residuals, so a reader can judge the fit.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from sim.scenario import validate_scenario

SURVIVAL_RATES_HZ = (1500, 2000)
BIAS_RATE_HZ = 150
P_GRID = tuple(round(i * 0.05, 2) for i in range(21))
DEFAULT_OUT = Path("machines") / "this-machine.yaml"


def _busy_native(rate_hz: float, duration_s: float, pin: bool) -> dict[str, Any]:
    """Two GIL-free spinning threads under realprof's process timer."""
    from realprof import _sampler
    from realprof.sampler import Sampler

    cpus = sorted(os.sched_getaffinity(0))
    barrier = threading.Barrier(3)
    cpu_ns: dict[str, int] = {}
    deadline = [0.0]

    def work(index: int) -> None:
        if pin:
            os.sched_setaffinity(0, {cpus[index % len(cpus)]})
        barrier.wait()
        start = time.thread_time_ns()
        while time.monotonic() < deadline[0]:
            _sampler.spin_native(2_000_000)
        cpu_ns[f"cpu{index}"] = time.thread_time_ns() - start

    threads = [
        threading.Thread(target=work, args=(i,), name=f"cpu{i}", daemon=True) for i in range(2)
    ]
    for thread in threads:
        thread.start()
    sampler = Sampler(rate_hz=rate_hz, timer="process")
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
        "cpu_seconds": cpu_s,
        "samples": worker_samples,
        "capture_ratio": worker_samples / (cpu_s * rate_hz) if cpu_s else 0.0,
        "share_cpu0": by_thread.get("cpu0", 0) / worker_samples if worker_samples else 0.5,
        "handler_ns_total": stats.get("handler_ns_total"),
        "signals_delivered": stats.get("signals_delivered"),
    }


def _twin(facts: dict[str, Any], rate_hz: float, duration_s: float, p: float, bias=None):
    return validate_scenario(
        {
            "name": "calibration",
            "machine": {
                "cpus": 2,
                "kernel_hz": facts["kernel_hz"],
                "tick_skew": facts.get("tick_alignment") == "skewed",
                "same_round_survival": p,
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
                    for i in range(2)
                ],
            },
        }
    )


def _sim_capture(facts, rate_hz, duration_s, p, bias=None) -> tuple[float, float]:
    from sim.model import simulate

    report = simulate(_twin(facts, rate_hz, duration_s, p, bias)).report
    rows = {row.name: row for row in report.threads}
    share = rows["cpu0"].share if "cpu0" in rows else 0.5
    return report.capture_ratio, share


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

    from realprof.machine import machine_facts

    facts = machine_facts()
    if facts.get("kernel_hz") not in (100, 250, 300, 1000):
        raise CalibrationError(
            "cannot read this kernel's CONFIG_HZ (needed to model its tick); "
            f"found {facts.get('kernel_hz')!r} from {facts.get('kernel_hz_source')}"
        )
    if (facts.get("cpus") or 0) < 2:
        raise CalibrationError("calibration needs at least 2 CPUs (it measures collisions)")
    experiments = [(rate, False) for rate in SURVIVAL_RATES_HZ] + [(BIAS_RATE_HZ, True)]
    runs: dict[tuple[float, bool], list[dict[str, Any]]] = {e: [] for e in experiments}
    with tqdm(
        total=len(experiments) * repeat,
        desc="calibrate",
        unit="run",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for _ in range(repeat):
            for rate, pin in experiments:
                bar.set_postfix_str(f"{rate} Hz{' pinned' if pin else ''}")
                runs[(rate, pin)].append(_busy_native(rate, duration_s, pin))
                bar.update(1)
    captures = {
        rate: statistics.median(r["capture_ratio"] for r in runs[(rate, False)])
        for rate in SURVIVAL_RATES_HZ
    }
    p, residuals = fit_survival(facts, captures, duration_s)
    share_cpu0 = statistics.median(r["share_cpu0"] for r in runs[(BIAS_RATE_HZ, True)])
    bias, bias_residual = fit_bias(facts, share_cpu0, p, duration_s)
    handler_ns = [
        r["handler_ns_total"] / r["signals_delivered"]
        for rs in runs.values()
        for r in rs
        if r.get("handler_ns_total") and r.get("signals_delivered")
    ]
    handler_cost_us = round(statistics.median(handler_ns) / 1000, 3) if handler_ns else None
    machine = {
        "cpus": facts["cpus"],
        "kernel_hz": facts["kernel_hz"],
        "tick_skew": facts.get("tick_alignment") == "skewed",
        "same_round_survival": p,
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
                f"{rate} Hz": {
                    "capture_ratio_median": round(captures[rate], 4),
                    "runs": [round(r["capture_ratio"], 4) for r in runs[(rate, False)]],
                    "simulated_minus_measured": round(residuals[rate], 4),
                }
                for rate in SURVIVAL_RATES_HZ
            },
            "bias": {
                "rate_hz": BIAS_RATE_HZ,
                "share_cpu0_median": round(share_cpu0, 4),
                "runs": [round(r["share_cpu0"], 4) for r in runs[(BIAS_RATE_HZ, True)]],
                "simulated_minus_measured": round(bias_residual, 4),
            },
            "handler_cost_us_runs": [round(ns / 1000, 3) for ns in handler_ns],
        },
        "repeat": repeat,
        "duration_s": duration_s,
    }


class CalibrationError(Exception):
    """Calibration cannot run here; one line for the user."""


def render(profile: dict[str, Any]) -> str:
    m = profile["machine"]
    meas = profile["measurements"]
    lines = [
        "Calibration of this machine",
        f"  facts: {m['cpus']} CPUs, HZ={m['kernel_hz']}, ticks "
        f"{profile['facts'].get('tick_alignment') or 'unknown'}, "
        f"kernel {profile['facts'].get('kernel')}",
        "  same-round survival p (process timer, 2 busy native threads):",
    ]
    for rate, row in meas["survival"].items():
        lines.append(
            f"    {rate:>8}: measured capture {row['capture_ratio_median']:.3f} "
            f"(runs {row['runs']}), model with p={m['same_round_survival']:.2f} is off by "
            f"{row['simulated_minus_measured']:+.3f}"
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
