"""How fast the simulator runs: wall time, SimPy events per second, virtual s per wall s.

    python benchmarks/bench_sim.py                 # table
    python benchmarks/bench_sim.py --repeat 5      # median of 5 runs per case
    python benchmarks/bench_sim.py --json          # machine-readable
    python benchmarks/bench_sim.py --case large --profile   # cProfile hotspots

Cases:

* `quickstart`: scenarios/quickstart.yaml as shipped (2 threads, 2 CPUs, 3 s).
* `large`: 64 busy goroutines on 16 CPUs for 10 virtual seconds, profiled at 1000 Hz by
  Go 1.18 on a HZ=250 kernel. The target (benchmarks/README.md) is under 5 s of wall time
  on a 2-core machine.

This is a script, not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contract.scenario import Scenario, validate_scenario  # noqa: E402
from contract.scenario_file import load_scenario  # noqa: E402
from sim.model import simulate  # noqa: E402

LARGE_TARGET_S = 5.0


def quickstart() -> Scenario:
    return load_scenario(ROOT / "scenarios" / "quickstart.yaml")


def large() -> Scenario:
    # Every field the benchmark depends on is spelled out, so editing a shipped scenario
    # never changes what is measured.
    return validate_scenario(
        {
            "name": "bench-large",
            "seed": 1,
            "machine": {"cpus": 16, "kernel_hz": 250, "same_round_survival": 0.0},
            "profiler": {"runtime": "go1.18", "rate_hz": 1000},
            "workload": {
                "duration_s": 10,
                "threads": [
                    {
                        "name": "spin",
                        "count": 64,
                        "program": [{"run": {"function": "main.spin", "cpu_ms": 1000, "depth": 5}}],
                    }
                ],
            },
        },
        "bench-large",
    )


CASES: dict[str, tuple[Callable[[], Scenario], str]] = {
    "quickstart": (quickstart, "scenarios/quickstart.yaml: 2 threads, 2 CPUs, 3 s, 100 Hz"),
    "large": (large, "64 busy threads, 16 CPUs, 10 s, 1000 Hz, go1.18, HZ=250"),
}


def machine_info() -> dict[str, Any]:
    from lab.machine import cpu_model

    model = cpu_model()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "nproc": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_1min_before": load,
    }


def bench(name: str, repeat: int) -> dict[str, Any]:
    build, description = CASES[name]
    scenario = build()
    walls, cpus, events = [], [], []
    result = None
    for _ in range(repeat):
        cpu_started = time.process_time()
        started = time.perf_counter()
        result = simulate(scenario)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
        events.append(result.stats["sim_events"])
    assert result is not None
    wall = statistics.median(walls)
    virtual_s = scenario.workload.duration_s
    report = result.report
    return {
        "case": name,
        "description": description,
        "repeat": repeat,
        "wall_s_median": wall,
        "wall_s_min": min(walls),
        "wall_s_max": max(walls),
        # CPU time of this process: what the wall time would be on an idle machine.
        "cpu_s_median": statistics.median(cpus),
        "sim_events": events[-1],
        "events_per_s": events[-1] / wall,
        "virtual_s": virtual_s,
        "virtual_s_per_wall_s": virtual_s / wall,
        "samples_in_profile": report.samples_in_profile,
        "conservation_ok": not report.conservation_errors(),
        "target_s": LARGE_TARGET_S if name == "large" else None,
    }


def render_table(machine: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"machine: {machine['cpu_model']}, nproc {machine['nproc']}, "
        f"{machine['implementation']} {machine['python']}; "
        f"load average {machine['loadavg_1min_before']} before the run",
        "",
    ]
    header = (
        f"{'case':<11} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>7} {'events':>9} "
        f"{'events/s':>10} {'virt s/wall s':>13}  target"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for row in rows:
        target = ""
        if row["target_s"] is not None:
            ok = row["wall_s_median"] < row["target_s"]
            target = f"< {row['target_s']:g} s {'OK' if ok else 'MISSED'}"
        lines.append(
            f"{row['case']:<11} {row['wall_s_median']:>9.3f} {row['wall_s_min']:>7.3f} "
            f"{row['wall_s_max']:>7.3f} {row['cpu_s_median']:>7.3f} {row['sim_events']:>9,} "
            f"{row['events_per_s']:>10,.0f} "
            f"{row['virtual_s_per_wall_s']:>13.2f}  {target}"
        )
    lines.append("")
    for row in rows:
        lines.append(f"{row['case']}: {row['description']} (median of {row['repeat']})")
        if not row["conservation_ok"]:
            lines.append(f"  WARNING: {row['case']} does not conserve samples")
    lines.append("(s = wall seconds; CPU s = this process's CPU time, the idle-machine wall time)")
    return "\n".join(lines) + "\n"


def profile_case(name: str, top: int) -> str:
    scenario = CASES[name][0]()
    profiler = cProfile.Profile()
    profiler.enable()
    simulate(scenario)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    parser.add_argument(
        "--case",
        action="append",
        choices=sorted(CASES),
        help="run only this case (repeatable; default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--profile", action="store_true", help="also print cProfile hotspots of each case"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = args.case or list(CASES)
    machine = machine_info()
    rows = [bench(name, args.repeat) for name in names]
    if args.json:
        document = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine,
            "results": rows,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(render_table(machine, rows))
    if args.profile:
        for name in names:
            sys.stdout.write(f"\ncProfile of {name} (by own time)\n")
            sys.stdout.write(profile_case(name, top=25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
