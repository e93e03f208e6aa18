"""Lab 2 check: the CPU % that Go 1.17's profile shows for 8 busy threads on an 8-CPU
machine with HZ=1000 at 500 Hz (ticks aligned). The check simulates that machine and
accepts an answer within 10% of what the simulator shows.
"""

from __future__ import annotations

from labs import LABS_DIR
from labs.common import number, simulate, want_args

USAGE = "PERCENT   (what pprof shows for 8 busy threads, 8 CPUs, HZ=1000, go1.17 at 500 Hz)"

OVERRIDES = [
    "machine.cpus=8",
    "machine.kernel_hz=1000",
    "profiler.rate_hz=500",
    "workload.threads.0.count=8",
    "workload.duration_s=1",
]


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    answer = number(args[0], "PERCENT")
    truth = simulate(LABS_DIR / "02-ceiling/sim-two-cpus.yaml", OVERRIDES).profile_cpu_percent
    if abs(answer - truth) <= 0.1 * truth:
        return True, (
            f"the simulator shows {truth:.1f}%: at most one SIGPROF per tick round, 1000 "
            "rounds a second, each worth 1/500 s of CPU, is 200%, although the program "
            "used 800%. Below 125 Hz (HZ/CPUs) the same machine would show all 800%."
        )
    if abs(answer - 800) <= 40:
        return False, (
            "800% is what the program used. With aligned ticks the process timer gets at "
            "most one SIGPROF per tick round: how many rounds per second (HZ), and how much "
            "CPU does pprof credit for each sample (1/rate)?"
        )
    if abs(answer - 250) <= 15:
        return False, (
            "250% is the ceiling of HZ=250 at 100 Hz; this machine has HZ=1000 and samples "
            "at 500 Hz: redo HZ / rate × 100%"
        )
    return False, (
        f"not {answer:g}%. The ceiling is min(busy threads × 100%, HZ / rate × 100%); check "
        "it with: python -m sim labs/02-ceiling/sim-two-cpus.yaml --set machine.cpus=8 "
        "--set machine.kernel_hz=1000 --set profiler.rate_hz=500 "
        "--set workload.threads.0.count=8"
    )
