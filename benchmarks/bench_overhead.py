"""What profiling costs: realprof's slowdown beside cProfile, pyinstrument and yappi.

    python benchmarks/bench_overhead.py                # table
    python benchmarks/bench_overhead.py --repeat 9     # median of 9 runs per profiler
    python benchmarks/bench_overhead.py --json         # machine-readable, with the date
    python benchmarks/bench_overhead.py --save out.json   # table, and the JSON to a file

Two measurements, in one run:

1. Slowdown. A fixed amount of CPU-bound pure-Python work (function calls, a small
   recursion, loops, dict and list operations, method calls on small objects; about
   1.5 s unprofiled) runs once per profiler configuration, each run in a fresh
   subprocess (no profiler leaks state into the next), in interleaved order (round r
   starts the rotation at configuration r), ``--repeat`` rounds. Each run reports the
   CPU time of its whole process (``time.process_time``: every thread, so realprof's
   reader thread counts) and the wall time of the workload, with the profiler already
   started; the profiler's stop (and any post-processing) is reported apart. Ratios
   are to the no-profiler median of the same invocation; the spread is the range of
   the per-round ratios (each run against the no-profiler run of its own round), and
   "min" is the fastest run over the fastest no-profiler run. realprof rows also give
   the handler's own time as a share of the CPU time (``handler_ns_total``), the part
   of the slowdown that does not depend on noise. A run that crashes is listed under
   FAILED RUNS with its signal and left out of the medians.
   Configurations: realprof at 100, 250 and 1000 Hz (per-thread timers, C handler),
   realprof with the perf_event timer at 1000 and 5000 Hz (rates the tick cannot give),
   realprof's pure-Python handler at 100 Hz (process timer), cProfile, pyinstrument
   (its default 1 ms interval) and yappi (its default CPU clock).

2. The handler's cost per sample, at stack depth 10 and 100 (the leaf frame is that
   many Python frames deep, counting ``<module>``): realprof at 1000 Hz with
   ``max_depth=128`` so the whole stack is recorded, and once more at depth 100 with the
   default ``max_depth=64`` (the walk stops at 64). The cost is the handler's own
   time, summed in the handler (``stats["handler_ns_total"]``, CLOCK_MONOTONIC from
   entry to return), divided by ``signals_delivered``. It leaves out the kernel's
   signal delivery and ``sigreturn``; the slowdown of the same run against an
   unprofiled run at the same depth, divided by the samples, includes them but is at
   the noise level here (a few microseconds on ~250 samples per CPU-second), so it is
   printed with its uncertainty. The same runs give signals delivered per CPU-second:
   at most CONFIG_HZ (250 on this project's kernel) per thread, whatever is asked.

Targets (benchmarks/README.md): at most 1 % slowdown at 100 Hz and 3 % at 250 Hz.

This is a script, not a test: the numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # realprof from this checkout (imported only when used)
    sys.path.insert(0, str(ROOT))

DEFAULT_ITERATIONS = 40_000  # about 1.5 s of CPU on a 2020s x86-64 core, CPython 3.11
DEFAULT_DEPTH_LOOPS = 8_000_000  # about 0.8 s of CPU in the leaf of the depth runs
INSTALL_HINT = "not installed: pip install 'sigprof-lab[bench]'"
TARGETS = {100.0: 1.01, 250.0: 1.03}  # rate_hz -> the most CPU time may grow

# name -> (label, kind, options); kind "realprof" takes Sampler keywords.
CONFIGS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "none": ("no profiler", "none", {}),
    "realprof-100": ("realprof 100 Hz", "realprof", {"rate_hz": 100}),
    "realprof-250": ("realprof 250 Hz", "realprof", {"rate_hz": 250}),
    "realprof-1000": ("realprof 1000 Hz", "realprof", {"rate_hz": 1000}),
    # perf_event task clock: not capped by the tick, so these really sample at the rate
    "realprof-perf-1000": (
        "realprof 1000 Hz, perf",
        "realprof",
        {"rate_hz": 1000, "timer": "perf"},
    ),
    "realprof-perf-5000": (
        "realprof 5000 Hz, perf",
        "realprof",
        {"rate_hz": 5000, "timer": "perf"},
    ),
    "realprof-py-100": (
        "realprof 100 Hz, Python handler",
        "realprof",
        {"rate_hz": 100, "handler": "python", "timer": "process"},
    ),
    "cprofile": ("cProfile", "cprofile", {}),
    "pyinstrument": ("pyinstrument (1 ms)", "pyinstrument", {}),
    "yappi": ("yappi (CPU clock)", "yappi", {}),
}
NEEDS_MODULE = {"pyinstrument": "pyinstrument", "yappi": "yappi"}

# (depth of the leaf frame, max_depth given to the Sampler)
DEPTH_CASES = [(10, 128), (100, 128), (100, 64)]
DEPTH_HZ = 1000


# ----- the workload (runs in the child) ---------------------------------------------------


class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def add(self, other: Vec) -> Vec:
        return Vec(self.x + other.x, self.y + other.y)

    def dot(self, other: Vec) -> int:
        return self.x * other.x + self.y * other.y


WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "the")


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def count_words(i: int, counts: dict[str, int]) -> int:
    for k in range(24):
        word = WORDS[(i + k * 7) % len(WORDS)]
        counts[word] = counts.get(word, 0) + 1
    return len(counts)


def vectors(i: int) -> int:
    acc = Vec(0, 0)
    for k in range(12):
        acc = acc.add(Vec(k, i % 5))
    return acc.dot(Vec(1, 2))


def lists(i: int) -> int:
    xs = [(i * 31 + k * 17) % 101 for k in range(40)]
    xs.sort()
    evens = [x for x in xs if not x & 1]
    return sum(evens) + len(f"{xs[0]}-{xs[-1]}")


def unit(i: int, counts: dict[str, int]) -> int:
    return fib(10) + count_words(i, counts) + vectors(i) + lists(i)


def workload(iterations: int) -> int:
    counts: dict[str, int] = {}
    total = 0
    for i in range(iterations):
        total += unit(i, counts)
    return total


def spin(loops: int) -> int:
    """The leaf of the depth runs: a plain loop, no calls (the stack stays put)."""
    x = 0
    for i in range(loops):
        x = (x + i * 7) % 1_000_003
    return x


def stack_depth() -> int:
    """Python frames on this thread's stack, this function's caller included."""
    frame = sys._getframe(1)
    n = 0
    while frame is not None:
        n += 1
        frame = frame.f_back
    return n


def hold(levels: int, loops: int) -> tuple[int, int]:
    """Recurse ``levels`` more frames, then spin; returns (depth of spin's frame, result)."""
    if levels > 0:
        return hold(levels - 1, loops)
    depth = stack_depth() + 1  # spin's own frame
    return depth, spin(loops)


# ----- profilers (in the child) ------------------------------------------------------------


class _Profiler:
    """start()/stop() around one profiler; stats() after stop."""

    def __init__(self, kind: str, options: dict[str, Any]) -> None:
        self.kind = kind
        self.options = options
        self.obj: Any = None

    def start(self) -> None:
        if self.kind == "realprof":
            from realprof.sampler import Sampler

            self.obj = Sampler(**self.options)
            self.obj.start()
        elif self.kind == "cprofile":
            import cProfile

            self.obj = cProfile.Profile()
            self.obj.enable()
        elif self.kind == "pyinstrument":
            from pyinstrument import Profiler

            self.obj = Profiler()
            self.obj.start()
        elif self.kind == "yappi":
            import yappi

            yappi.set_clock_type("cpu")
            yappi.start()
            self.obj = yappi

    def stop(self) -> None:
        if self.kind == "realprof":
            self.obj.stop()
        elif self.kind == "cprofile":
            self.obj.disable()
        elif self.kind in ("pyinstrument", "yappi"):
            self.obj.stop()

    def stats(self) -> dict[str, Any]:
        if self.kind != "realprof":
            return {}
        st = self.obj.stats
        keep = (
            "handler",
            "timer",
            "signals_delivered",
            "samples_recorded",
            "samples_lost_overflow",
            "signals_discarded",
            "signals_merged",
            "timer_overruns",
            "cpu_seconds",
            "handler_ns_total",
        )
        out = {k: st[k] for k in keep if k in st}
        out["total_samples"] = self.obj.profile.total_samples
        return out


def child_slowdown(name: str, iterations: int) -> dict[str, Any]:
    _label, kind, options = CONFIGS[name]
    workload(max(1, iterations // 50))  # warm up (specialization, allocator) unprofiled
    profiler = _Profiler(kind, options)
    profiler.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    checksum = workload(iterations)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    profiler.stop()
    stop_s = time.perf_counter() - wall1
    return {
        "config": name,
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "stop_s": stop_s,
        "checksum": checksum,
        "stats": profiler.stats(),
    }


def child_depth(depth: int, max_depth: int, loops: int, profiled: bool) -> dict[str, Any]:
    base = stack_depth()  # frames above hold(): <module>, main, this function
    levels = depth - base - 2  # hold's first frame and spin's frame make up the rest
    if levels < 0:
        raise SystemExit(f"depth {depth} is shallower than the harness ({base + 2})")
    hold(levels, max(1, loops // 50))  # warm up
    profiler = _Profiler("realprof", {"rate_hz": DEPTH_HZ, "max_depth": max_depth})
    if profiled:
        profiler.start()
    cpu0 = time.process_time()
    leaf_depth, _ = hold(levels, loops)
    cpu = time.process_time() - cpu0
    out: dict[str, Any] = {"depth": leaf_depth, "max_depth": max_depth, "cpu_s": cpu}
    if profiled:
        profiler.stop()
        out["stats"] = profiler.stats()
        leaf = [
            len(stack)
            for (stack, _thread), count in profiler.obj.profile.samples.items()
            for _ in range(count)
            if stack and stack[0].function == "spin"
        ]
        out["recorded_depth_median"] = statistics.median(leaf) if leaf else None
    return out


# ----- the parent ------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    from lab.machine import cpu_model

    model = cpu_model()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "nproc": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_child(args: list[str], timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        # Reported, not fatal: a crash under a profiler is a result too.
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return {"failed": f"{how} {tail[0]}".strip()}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def available(name: str) -> bool:
    module = NEEDS_MODULE.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def measure_slowdown(iterations: int, repeat: int, progress: bool) -> list[dict[str, Any]]:
    names = [n for n in CONFIGS if available(n)]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in CONFIGS}
    for r in range(repeat):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if progress:
                print(f"  round {r + 1}/{repeat}: {name}", file=sys.stderr, flush=True)
            runs[name].append(run_child(["--child", name, "--iterations", str(iterations)], 600))
    checksums = {run["checksum"] for rs in runs.values() for run in rs if "failed" not in run}
    if len(checksums) > 1:
        raise RuntimeError(f"the workload computed different results: {checksums}")
    base_rounds = runs["none"]
    base = [x for x in base_rounds if "failed" not in x]
    if not base:
        raise RuntimeError(f"every run without a profiler failed: {base_rounds}")
    base_cpu = statistics.median(x["cpu_s"] for x in base)
    base_wall = statistics.median(x["wall_s"] for x in base)
    rows = []
    for name, (label, kind, options) in CONFIGS.items():
        row: dict[str, Any] = {"config": name, "label": label, "kind": kind, "options": options}
        if not runs[name]:
            row["installed"] = False
            row["note"] = INSTALL_HINT
            rows.append(row)
            continue
        row["installed"] = True
        row["failed_runs"] = [x["failed"] for x in runs[name] if "failed" in x]
        rs = [x for x in runs[name] if "failed" not in x]
        if not rs:
            row["note"] = f"every run failed: {row['failed_runs'][0]}"
            rows.append(row)
            continue
        cpu = [x["cpu_s"] for x in rs]
        wall = [x["wall_s"] for x in rs]
        paired = [
            x["cpu_s"] / b["cpu_s"]
            for x, b in zip(runs[name], base_rounds, strict=True)
            if "failed" not in x and "failed" not in b
        ] or [statistics.median(cpu) / base_cpu]
        row.update(
            {
                "runs": len(rs),
                "cpu_s": cpu,
                "wall_s": wall,
                "stop_s_median": _median([x["stop_s"] for x in rs]),
                "cpu_s_median": statistics.median(cpu),
                "wall_s_median": statistics.median(wall),
                "cpu_ratio": statistics.median(cpu) / base_cpu,
                # the least disturbed runs of each: another view of the same noise
                "cpu_ratio_of_minimums": min(cpu) / min(x["cpu_s"] for x in base),
                "wall_ratio": statistics.median(wall) / base_wall,
                "cpu_ratio_paired_min": min(paired),
                "cpu_ratio_paired_median": statistics.median(paired),
                "cpu_ratio_paired_max": max(paired),
            }
        )
        stats = [x["stats"] for x in rs if x["stats"]]
        if stats:
            delivered = [s["signals_delivered"] for s in stats]
            samples = [s["total_samples"] for s in stats]
            profiled_cpu = [
                s.get("cpu_seconds") or x["cpu_s"] for s, x in zip(stats, rs, strict=True)
            ]
            row["signals_delivered_median"] = statistics.median(delivered)
            row["samples_median"] = statistics.median(samples)
            row["signals_per_cpu_s"] = _median(
                [d / c for d, c in zip(delivered, profiled_cpu, strict=True) if c]
            )
            if all("handler_ns_total" in s for s in stats) and kind == "realprof":
                # The handler's own time as a share of the workload: the part of the
                # slowdown that does not depend on noise.
                row["handler_share"] = statistics.median(
                    s["handler_ns_total"] / 1e9 / x["cpu_s"] for s, x in zip(stats, rs, strict=True)
                )
                row["handler_ns_per_signal"] = _median(
                    [
                        s["handler_ns_total"] / s["signals_delivered"]
                        for s in stats
                        if s["signals_delivered"]
                    ]
                )
        rate = options.get("rate_hz")
        if kind == "realprof" and options.get("handler", "c") == "c" and rate in TARGETS:
            limit = TARGETS[rate]
            row["target_ratio"] = limit
            row["target_met"] = row["cpu_ratio"] <= limit
        rows.append(row)
    return rows


def measure_handler(loops: int, repeat: int, progress: bool) -> list[dict[str, Any]]:
    depths = sorted({d for d, _ in DEPTH_CASES})
    plain: dict[int, list[dict[str, Any]]] = {d: [] for d in depths}
    prof: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in DEPTH_CASES}
    jobs: list[tuple[int, int, bool]] = [(d, 128, False) for d in depths]
    jobs += [(d, m, True) for d, m in DEPTH_CASES]
    failures: list[str] = []
    for r in range(repeat):
        order = jobs[r % len(jobs) :] + jobs[: r % len(jobs)]
        for depth, max_depth, profiled in order:
            if progress:
                what = f"depth {depth}, max_depth {max_depth}" if profiled else f"depth {depth}"
                print(f"  round {r + 1}/{repeat}: {what}", file=sys.stderr, flush=True)
            args = ["--child-depth", str(depth), "--max-depth", str(max_depth)]
            args += ["--loops", str(loops)] + ([] if profiled else ["--off"])
            result = run_child(args, 600)
            if "failed" in result:
                failures.append(f"depth {depth}, max_depth {max_depth}: {result['failed']}")
                continue
            if result["depth"] != depth:
                raise RuntimeError(f"asked for depth {depth}, got {result['depth']}")
            (prof[(depth, max_depth)] if profiled else plain[depth]).append(result)
    rows = []
    for depth, max_depth in DEPTH_CASES:
        rs = prof[(depth, max_depth)]
        mine = [f for f in failures if f.startswith(f"depth {depth}, max_depth {max_depth}:")]
        if not rs or not plain[depth]:
            rows.append({"depth": depth, "max_depth": max_depth, "runs": 0, "failed_runs": mine})
            continue
        stats = [x["stats"] for x in rs]
        delivered = [s["signals_delivered"] for s in stats]
        samples = [s["total_samples"] for s in stats]
        cpu = [x["cpu_s"] for x in rs]
        base = [x["cpu_s"] for x in plain[depth]]
        row: dict[str, Any] = {
            "depth": depth,
            "max_depth": max_depth,
            "rate_hz": DEPTH_HZ,
            "runs": len(rs),
            "failed_runs": mine,
            "recorded_depth": _median(
                [
                    x["recorded_depth_median"]
                    for x in rs
                    if x.get("recorded_depth_median") is not None
                ]
            ),
            "signals_delivered_median": statistics.median(delivered),
            "samples_median": statistics.median(samples),
            "signals_per_cpu_s": statistics.median(
                s["signals_delivered"] / (s.get("cpu_seconds") or x["cpu_s"])
                for s, x in zip(stats, rs, strict=True)
            ),
            "cpu_s_median": statistics.median(cpu),
            "cpu_s_median_unprofiled": statistics.median(base),
        }
        if all("handler_ns_total" in s for s in stats):
            per = [
                s["handler_ns_total"] / s["signals_delivered"]
                for s in stats
                if s["signals_delivered"]
            ]
            row["method"] = "handler_ns_total / signals_delivered"
            if per:  # none when no run lasted long enough for a signal
                row["handler_ns_per_sample"] = statistics.median(per)
                row["handler_ns_per_sample_min"] = min(per)
                row["handler_ns_per_sample_max"] = max(per)
        else:
            row["method"] = "slowdown / samples"
        # The slowdown estimate and how much the unprofiled runs alone scatter.
        n = statistics.median(delivered) or 1
        row["slowdown_ns_per_sample"] = (statistics.median(cpu) - statistics.median(base)) / n * 1e9
        row["slowdown_noise_ns_per_sample"] = (max(base) - min(base)) / n * 1e9
        rows.append(row)
    return rows


# ----- output ------------------------------------------------------------------------------


def _load(x: list[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in x) if x else "n/a"


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"{report['date']}: {m['cpu_model']}, nproc {m['nproc']}, {m['implementation']} "
        f"{m['python']}, {m['kernel']}",
        f"load average (1/5/15 min): {_load(report['loadavg_before'])} before, "
        f"{_load(report['loadavg_after'])} after",
        f"workload: {report['iterations']:,} iterations of mixed pure-Python work; "
        f"{report['repeat']} rounds, interleaved, one fresh process per run",
        "CPU s: median process CPU time; ratio: median / no-profiler median; range: per-round "
        "ratios; min: fastest run / fastest no-profiler run",
        "",
    ]
    header = (
        f"{'profiler':<32} {'CPU s':>6} {'ratio':>6} {'range':>13} {'min':>6} {'wall s':>7} "
        f"{'ratio':>6} {'stop s':>7} {'signals':>8} {'sig/CPU-s':>9} {'in handler':>10}  target"
    )
    lines += [header, "-" * len(header)]
    failures: list[str] = []
    for row in report["slowdown"]:
        failures += [f"{row['label']}: {f}" for f in row.get("failed_runs", [])]
        if "note" in row:
            lines.append(f"{row['label']:<32} {row['note']}")
            continue
        rng = f"{row['cpu_ratio_paired_min']:.3f}-{row['cpu_ratio_paired_max']:.3f}"
        signals = row.get("signals_delivered_median")
        per_cpu = row.get("signals_per_cpu_s")
        share = row.get("handler_share")
        target = ""
        if "target_ratio" in row:
            verdict = "met" if row["target_met"] else "NOT met"
            target = f"<= {row['target_ratio']:.2f} {verdict}"
        lines.append(
            f"{row['label']:<32} {row['cpu_s_median']:>6.3f} {row['cpu_ratio']:>6.3f} "
            f"{rng:>13} {row['cpu_ratio_of_minimums']:>6.3f} "
            f"{row['wall_s_median']:>7.3f} {row['wall_ratio']:>6.3f} "
            f"{row['stop_s_median']:>7.3f} "
            f"{'' if signals is None else f'{signals:,.0f}':>8} "
            f"{'' if per_cpu is None else f'{per_cpu:.1f}':>9} "
            f"{'' if share is None else f'{share:.2%}':>10}  {target}"
        )
    lines += [
        "",
        f"handler cost per sample: realprof {DEPTH_HZ} Hz, per-thread timer, C handler; "
        "leaf spinning at a fixed stack depth",
    ]
    header = (
        f"{'depth':>5} {'max_depth':>9} {'recorded':>8} {'signals':>8} {'sig/CPU-s':>9} "
        f"{'handler ns/sample':>17} {'range':>13} {'slowdown ns/sample':>18}  method"
    )
    lines += [header, "-" * len(header)]
    for row in report["handler"]:
        failures += [f"handler cost, {f}" for f in row.get("failed_runs", [])]
        if not row["runs"]:
            lines.append(f"{row['depth']:>5} {row['max_depth']:>9} every run failed")
            continue
        per = row.get("handler_ns_per_sample")
        rng = (
            f"{row['handler_ns_per_sample_min']:.0f}-{row['handler_ns_per_sample_max']:.0f}"
            if per is not None
            else ""
        )
        slow = f"{row['slowdown_ns_per_sample']:.0f} +- {row['slowdown_noise_ns_per_sample']:.0f}"
        recorded = row["recorded_depth"]
        lines.append(
            f"{row['depth']:>5} {row['max_depth']:>9} "
            f"{'' if recorded is None else f'{recorded:.0f}':>8} "
            f"{row['signals_delivered_median']:>8,.0f} {row['signals_per_cpu_s']:>9.1f} "
            f"{'' if per is None else f'{per:.0f}':>17} {rng:>13} {slow:>18}  {row['method']}"
        )
    lines += [
        "",
        "handler ns/sample: the handler's own time (entry to return), summed in the handler,",
        "/ signals delivered; kernel delivery and sigreturn are not in it. slowdown ns/sample:",
        "(profiled - unprofiled CPU) / signals, +- the unprofiled runs' range / signals.",
        "sig/CPU-s: signals per CPU-second of the profiled threads; the kernel tick caps it",
        "at CONFIG_HZ per thread (250 here), whatever rate is asked.",
    ]
    if failures:
        lines += ["", f"FAILED RUNS ({len(failures)}, left out of the medians):"]
        lines += [f"  {f}" for f in failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--loops", type=int, default=DEFAULT_DEPTH_LOOPS, help="depth runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--save", metavar="PATH", help="also write the JSON report to PATH")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    # internal: one measured run, in a fresh process
    parser.add_argument("--child", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--child-depth", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-depth", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--off", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child_slowdown(args.child, args.iterations)))
        return 0
    if args.child_depth is not None:
        result = child_depth(args.child_depth, args.max_depth, args.loops, not args.off)
        print(json.dumps(result))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    progress = not args.quiet
    report: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "loadavg_before": loadavg(),
        "iterations": args.iterations,
        "depth_loops": args.loops,
        "repeat": args.repeat,
        "targets": {f"{hz:g} Hz": ratio for hz, ratio in TARGETS.items()},
    }
    started = time.perf_counter()
    report["slowdown"] = measure_slowdown(args.iterations, args.repeat, progress)
    report["handler"] = measure_handler(args.loops, args.repeat, progress)
    report["loadavg_after"] = loadavg()
    report["elapsed_s"] = time.perf_counter() - started
    if args.save:
        Path(args.save).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
