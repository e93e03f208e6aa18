"""What one sample costs the handler when the stack is deeper than max_depth.

    python benchmarks/bench_depth.py                      # depths 64, 100, 1000, 10000
    python benchmarks/bench_depth.py --repeat 7 --seconds 3
    python benchmarks/bench_depth.py --json depth.json    # table, and the JSON to a file

A thread recurses until its leaf frame is exactly DEPTH Python frames deep (counting the
thread's own bootstrap frames; ``sys.setrecursionlimit`` raised to fit) and spins there
for ``--seconds`` of its CPU time, under ``Sampler(rate_hz=250, timer="per-thread",
max_depth=64)``: every sample keeps only the 64 frames at the leaf end. One fresh
process per run; depths interleaved (round r starts the rotation at depth r), ``--repeat``
rounds. The cost per sample is the handler's own time summed in the handler
(``stats["handler_ns_total"]``, CLOCK_MONOTONIC from entry to return) over
``stats["signals_delivered"]``; kernel delivery and ``sigreturn`` are not in it. The
table gives its median over the rounds, the range, and the ratio of the median to the
median at depth 64 (where the walk reaches the stack's end); issue 10's bar is a ratio
of at most 2 at depths 100, 1000 and 10000. Also per depth: signals delivered, the
share of them that became samples in the profile ("kept": a stack the handler refused
as untrusted is lost as unknown code), and the median length of the recorded stacks.

The child imports the same ``realprof`` as this script (``PYTHONPATH=/other/tree
python benchmarks/bench_depth.py`` measures another tree, e.g. the code before a change).

This is a script, not a test: the numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench_overhead import _load  # the load-average line, as bench_overhead prints it

ROOT = Path(__file__).resolve().parent.parent
try:  # the realprof on the path (PYTHONPATH, an install), else this checkout's
    import realprof
except ImportError:
    sys.path.insert(0, str(ROOT))
    import realprof

REALPROF_ROOT = Path(realprof.__file__).resolve().parent.parent
DEPTHS = (64, 100, 1000, 10000)
RATE_HZ = 250
MAX_DEPTH = 64
TIMER = "per-thread"
BAR = 2.0  # issue 10: cost at depth 100, 1000, 10000 within 2x of depth 64


# ----- one run (in the child) --------------------------------------------------------------


def stack_depth() -> int:
    """Python frames on this thread's stack, this function's caller included."""
    frame = sys._getframe(1)
    n = 0
    while frame is not None:
        n += 1
        frame = frame.f_back
    return n


def spin_at_bottom(seconds: float) -> int:
    """The leaf: a loop that makes no Python calls, for `seconds` of thread CPU time."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2_000):
            x = (x * 31 + i) % 1_000_003
    return x


def descend(levels: int, seconds: float, out: dict[str, Any]) -> None:
    if levels > 0:
        descend(levels - 1, seconds, out)
        return
    out["leaf_depth"] = stack_depth() + 1  # spin_at_bottom's own frame
    spin_at_bottom(seconds)


def child(depth: int, seconds: float) -> dict[str, Any]:
    from realprof.sampler import Sampler

    sys.setrecursionlimit(depth + 1_000)
    out: dict[str, Any] = {"depth": depth}

    def body() -> None:
        # frames above descend(): the thread's bootstrap frames and this one
        base = stack_depth()
        descend(depth - base - 2, seconds, out)  # descend's frames + spin_at_bottom = rest

    sampler = Sampler(rate_hz=RATE_HZ, timer=TIMER, max_depth=MAX_DEPTH)
    sampler.start()
    worker = threading.Thread(target=body, name="deep")
    worker.start()
    worker.join()
    profile = sampler.stop()
    st = sampler.stats
    lengths = sorted(
        len(stack)
        for (stack, _thread), count in profile.samples.items()
        for _ in range(count)
        if stack and stack[0].function == "spin_at_bottom"
    )
    out.update(
        {
            "signals_delivered": st["signals_delivered"],
            "samples_recorded": st["samples_recorded"],
            "handler_ns_total": st["handler_ns_total"],
            "stacks_untrusted": st.get("stacks_untrusted"),
            "cpu_seconds": st["cpu_seconds"],
            "in_profile": profile.total_samples,
            "lost_unknown": profile.lost.get("unknown_code", 0),
            "recorded_depth": statistics.median(lengths) if lengths else None,
        }
    )
    return out


# ----- the parent ------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    from lab.machine import cpu_model

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model() or platform.processor() or "unknown",
        "nproc": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": f"{platform.system()} {platform.release()}",
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_child(depth: int, seconds: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REALPROF_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    args = ["--child", str(depth), "--seconds", str(seconds)]
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        timeout=seconds * 10 + 60,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        # Reported, not fatal: a crash under the profiler is a result too.
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        tail = proc.stderr.strip().splitlines()[-1:] or [""]
        return {"depth": depth, "failed": f"{how} {tail[0]}".strip()}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(depths: list[int], seconds: float, repeat: int, progress: bool) -> list[dict]:
    runs: dict[int, list[dict[str, Any]]] = {d: [] for d in depths}
    for r in range(repeat):
        order = depths[r % len(depths) :] + depths[: r % len(depths)]
        for depth in order:
            if progress:
                print(f"  round {r + 1}/{repeat}: depth {depth}", file=sys.stderr, flush=True)
            result = run_child(depth, seconds)
            if "failed" not in result and result["leaf_depth"] != depth:
                raise RuntimeError(f"asked for depth {depth}, got {result['leaf_depth']}")
            runs[depth].append(result)
    rows = []
    for depth in depths:
        ok = [x for x in runs[depth] if "failed" not in x and x["signals_delivered"]]
        row: dict[str, Any] = {
            "depth": depth,
            "runs": len(ok),
            "failed_runs": [x["failed"] for x in runs[depth] if "failed" in x],
            "raw": runs[depth],
        }
        if ok:
            per = [x["handler_ns_total"] / x["signals_delivered"] for x in ok]
            depth_seen = [x["recorded_depth"] for x in ok if x["recorded_depth"] is not None]
            row.update(
                {
                    "handler_ns_per_sample": statistics.median(per),
                    "handler_ns_per_sample_min": min(per),
                    "handler_ns_per_sample_max": max(per),
                    "signals_delivered_median": statistics.median(
                        x["signals_delivered"] for x in ok
                    ),
                    "kept_share": statistics.median(
                        x["in_profile"] / x["signals_delivered"] for x in ok
                    ),
                    "recorded_depth": statistics.median(depth_seen) if depth_seen else None,
                }
            )
        rows.append(row)
    base = next((r for r in rows if r["depth"] == DEPTHS[0] and r["runs"]), None)
    for row in rows:
        if base is not None and row["runs"]:
            row["ratio_to_64"] = row["handler_ns_per_sample"] / base["handler_ns_per_sample"]
            if row["depth"] != DEPTHS[0]:
                row["within_bar"] = row["ratio_to_64"] <= BAR
    return rows


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"{report['date']}: {m['cpu_model']}, nproc {m['nproc']}, {m['implementation']} "
        f"{m['python']}, {m['kernel']}; realprof from {report['realprof']}",
        f"load average (1/5/15 min): {_load(report['loadavg_before'])} before, "
        f"{_load(report['loadavg_after'])} after",
        f"{TIMER} timer, {RATE_HZ} Hz, max_depth={MAX_DEPTH}; a thread spins "
        f"{report['seconds']:g} s of CPU at each depth; {report['repeat']} rounds, "
        "interleaved, one fresh process per run",
        "",
    ]
    header = (
        f"{'depth':>6} {'runs':>4} {'signals':>7} {'kept':>6} {'recorded':>8} "
        f"{'handler ns/sample':>17} {'range':>13} {'x depth 64':>10}  bar <= {BAR:g}x"
    )
    lines += [header, "-" * len(header)]
    failures: list[str] = []
    for row in report["rows"]:
        failures += [f"depth {row['depth']}: {f}" for f in row["failed_runs"]]
        if not row["runs"]:
            lines.append(f"{row['depth']:>6} {0:>4} every run failed")
            continue
        rng = f"{row['handler_ns_per_sample_min']:.0f}-{row['handler_ns_per_sample_max']:.0f}"
        recorded = row["recorded_depth"]
        ratio = row.get("ratio_to_64")
        verdict = ""
        if "within_bar" in row:
            verdict = "met" if row["within_bar"] else "NOT met"
        lines.append(
            f"{row['depth']:>6} {row['runs']:>4} {row['signals_delivered_median']:>7.0f} "
            f"{row['kept_share']:>6.1%} {'' if recorded is None else f'{recorded:.0f}':>8} "
            f"{row['handler_ns_per_sample']:>17.0f} {rng:>13} "
            f"{'' if ratio is None else f'{ratio:.2f}':>10}  {verdict}"
        )
    lines += [
        "",
        "handler ns/sample: handler_ns_total / signals_delivered (the handler's own time,",
        "entry to return; kernel delivery and sigreturn are not in it), median of the runs;",
        "kept: samples in the profile / signals delivered; recorded: median frames per",
        "stack at the leaf.",
    ]
    if failures:
        lines += ["", f"FAILED RUNS ({len(failures)}, left out of the medians):"]
        lines += [f"  {f}" for f in failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="CPU seconds at the bottom per run"
    )
    parser.add_argument(
        "--depths", default=",".join(map(str, DEPTHS)), help="default 64,100,1000,10000"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the JSON report to PATH")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one run, in a child
    args = parser.parse_args(argv)

    if args.child is not None:
        print(json.dumps(child(args.child, args.seconds)))
        return 0
    try:
        depths = [int(d) for d in args.depths.split(",") if d.strip()]
    except ValueError:
        parser.error(f"--depths takes integers like 64,100 (got {args.depths!r})")
    if args.repeat < 1 or args.seconds <= 0 or not depths or min(depths) < 16:
        parser.error("--repeat >= 1, --seconds > 0 and depths of at least 16")
    if depths[0] != DEPTHS[0]:
        depths = [DEPTHS[0], *[d for d in depths if d != DEPTHS[0]]]  # the reference

    report: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "realprof": str(REALPROF_ROOT),
        "loadavg_before": loadavg(),
        "timer": TIMER,
        "rate_hz": RATE_HZ,
        "max_depth": MAX_DEPTH,
        "seconds": args.seconds,
        "repeat": args.repeat,
        "bar": BAR,
    }
    started = time.perf_counter()
    report["rows"] = measure(depths, args.seconds, args.repeat, not args.quiet)
    report["loadavg_after"] = loadavg()
    report["elapsed_s"] = time.perf_counter() - started
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
