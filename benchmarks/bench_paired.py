"""realprof's slowdown measured in pairs, in one process, so machine drift cancels.

    python benchmarks/bench_paired.py                 # 40 pairs per configuration
    python benchmarks/bench_paired.py --pairs 80 --json

`bench_overhead.py` runs each configuration in a fresh process; on a shared VM the CPU
time of the same unprofiled run then varies by ±15 % between processes, ten times the
1 % target, so its medians cannot say whether the target is met. Here one process runs
short chunks of the same workload (`bench_overhead.workload`, 10,000 iterations, about
0.35 s; `--chunk`) alternately without and with the sampler, in ABBA order (pair i runs unprofiled
first when i is even, profiled first when it is odd), and compares each chunk with its
neighbour. The sampler is started before a profiled chunk's clock starts and stopped
after it ends, so start and stop are not counted; the reader thread's CPU is (process
CPU time, `time.process_time`).

Per configuration: the median of the per-pair ratios (profiled / unprofiled CPU time)
with a 95 % confidence interval for that median from the binomial order statistics of
the pairs (distribution-free: the interval is between the k-th smallest and k-th largest
ratio, k from Binomial(n, 1/2)), the samples delivered per CPU-second, and the handler's
own share of the CPU. Targets (benchmarks/README.md): 1 % at 100 Hz, 3 % at 250 Hz; a
target is "met" when the upper end of the interval is under it, "not met" when the lower
end is over it, and "undecided" otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS: tuple[tuple[str, dict[str, Any], float | None], ...] = (
    ("per-thread 100 Hz", {"rate_hz": 100, "timer": "per-thread"}, 1.01),
    ("per-thread 250 Hz", {"rate_hz": 250, "timer": "per-thread"}, 1.03),
    ("perf 1000 Hz", {"rate_hz": 1000, "timer": "perf"}, None),
    ("perf 5000 Hz", {"rate_hz": 5000, "timer": "perf"}, None),
)
CHUNK_ITERATIONS = 10_000  # about 0.35 s on this machine


def _workload_module():
    spec = importlib.util.spec_from_file_location(
        "bench_overhead", Path(__file__).with_name("bench_overhead.py")
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median: order statistics k and n-k+1."""
    xs = sorted(values)
    n = len(xs)
    # largest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2
    tail = (1 - level) / 2
    cumulative, k = 0.0, 0
    for j in range(n + 1):
        p = math.comb(n, j) / 2**n
        if cumulative + p > tail:
            break
        cumulative += p
        k = j + 1
    k = max(k, 1)
    return xs[k - 1], xs[n - k]


def run_config(options: dict[str, Any], pairs: int, work, iterations: int) -> dict[str, Any]:
    from realprof.sampler import Sampler

    def chunk(profiled: bool) -> tuple[float, dict[str, Any] | None]:
        sampler = Sampler(**options) if profiled else None
        if sampler is not None:
            sampler.start()
        t0 = time.process_time()
        work(iterations)
        cpu = time.process_time() - t0
        stats = None
        if sampler is not None:
            sampler.stop()
            stats = sampler.stats
        return cpu, stats

    ratios, signals, cpu_profiled, handler_ns = [], 0, 0.0, 0
    for i in range(pairs):
        if i % 2 == 0:
            base, _ = chunk(False)
            prof, st = chunk(True)
        else:
            prof, st = chunk(True)
            base, _ = chunk(False)
        ratios.append(prof / base)
        assert st is not None
        signals += st["signals_delivered"]
        handler_ns += st.get("handler_ns_total") or 0
        cpu_profiled += prof
    low, high = median_interval(ratios)
    return {
        "options": options,
        "pairs": pairs,
        "median_ratio": statistics.median(ratios),
        "ci95": [low, high],
        "signals_per_cpu_s": signals / cpu_profiled,
        "handler_share": handler_ns / 1e9 / cpu_profiled,
        "ratios": ratios,
    }


def verdict(result: dict[str, Any], target: float | None) -> str:
    if target is None:
        return ""
    low, high = result["ci95"]
    if high <= target:
        return f"<= {target:.2f} met"
    if low > target:
        return f"<= {target:.2f} NOT met"
    return f"<= {target:.2f} undecided"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument(
        "--chunk", type=int, default=CHUNK_ITERATIONS, help="workload iterations per chunk"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.pairs < 6:
        print("error: --pairs must be at least 6", file=sys.stderr)
        return 2
    chunk_iterations = args.chunk
    work = _workload_module().workload
    work(chunk_iterations)  # warm-up
    from lab.machine import machine_facts

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with open("/proc/loadavg", encoding="ascii") as f:
        load_before = " ".join(f.read().split()[:3])
    results = []
    for label, options, target in CONFIGS:
        print(f"  {label}: {args.pairs} pairs", file=sys.stderr)
        result = run_config(options, args.pairs, work, chunk_iterations)
        result["label"] = label
        result["verdict"] = verdict(result, target)
        results.append(result)
    with open("/proc/loadavg", encoding="ascii") as f:
        load_after = " ".join(f.read().split()[:3])
    facts = machine_facts()
    if args.json:
        json.dump(
            {
                "started": started,
                "machine": facts,
                "python": platform.python_version(),
                "load_before": load_before,
                "load_after": load_after,
                "chunk_iterations": chunk_iterations,
                "results": results,
            },
            sys.stdout,
            indent=1,
        )
        print()
        return 0
    print(
        f"{started}: {facts.get('cpu_model')}, {facts.get('cpus')} CPUs, CPython "
        f"{platform.python_version()}, Linux {platform.release()}, HZ={facts.get('kernel_hz')}"
    )
    print(f"load average (1/5/15 min): {load_before} before, {load_after} after")
    print(
        f"{args.pairs} ABBA pairs of {chunk_iterations:,}-iteration chunks per configuration, "
        "one process; ratio: profiled / unprofiled process CPU time of neighbouring chunks"
    )
    print()
    print(
        f"{'configuration':<20} {'median ratio':>12} {'95% CI of median':>18} "
        f"{'sig/CPU-s':>10} {'in handler':>10}  target"
    )
    print("-" * 90)
    for r in results:
        low, high = r["ci95"]
        print(
            f"{r['label']:<20} {r['median_ratio']:>12.4f} {f'{low:.4f}-{high:.4f}':>18} "
            f"{r['signals_per_cpu_s']:>10.1f} {r['handler_share'] * 100:>9.2f}%  {r['verdict']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
