"""Lab 2 check: the CPU % that Go 1.17's profile shows for 8 busy threads on an 8-CPU
machine with HZ=1000 at 500 Hz (ticks aligned).

The check simulates that machine and accepts an answer within 2.5% of the simulated value.
Why 2.5%: with aligned ticks and same_round_survival 0 the model has no randomness, and the
simulated value differs from the exact ceiling HZ / rate × 100% only by the 1 s run's ends
(about 1%); twice that plus rounding is 2.5%, which still refuses an answer off by one tick
round in twenty. The message also prints this machine's calibrated survival p, read from its
profile at run time (`realprof calibrate` rewrites it), never a number written here.
"""

from __future__ import annotations

from labs import LABS_DIR
from labs.common import number, playground_reading, simulate, want_args

USAGE = (
    "PERCENT   (what pprof shows for 8 busy threads, 8 CPUs, HZ=1000, go1.17 at 500 Hz)"
    " | playground PERCENT   (playground: go117-many-threads at HZ=1000)"
)
TOLERANCE = 0.025
KERNEL_HZ, RATE_HZ = 1000, 500

OVERRIDES = [
    "machine.cpus=8",
    f"machine.kernel_hz={KERNEL_HZ}",
    f"profiler.rate_hz={RATE_HZ}",
    "workload.threads.0.count=8",
    "workload.duration_s=1",
]


def this_machine() -> str:
    """This machine's calibrated p, as its profile says today."""
    from lab.machine import calibrated_machine

    machine, source = calibrated_machine()
    if machine is None:
        return "This machine has no calibrated profile yet: python -m realprof calibrate."
    return (
        f"This machine's same_round_survival is {machine.same_round_survival:g} ({source}): "
        "a second expiry in one tick round survives with that probability here, so the "
        "real steps' process timer loses fewer samples than aligned ticks (p = 0) would."
    )


def check(args: list[str]) -> tuple[bool, str]:
    if args[:1] == ["playground"]:
        return playground_reading(
            args[1:],
            scenario="go117-many-threads",
            overrides=["machine.kernel_hz=1000"],
            field="profile_cpu_percent",
            what="PERCENT",
            tolerance=25.0,
        )
    want_args(args, 1)
    answer = number(args[0], "PERCENT")
    truth = simulate(LABS_DIR / "02-ceiling/sim-two-cpus.yaml", OVERRIDES).profile_cpu_percent
    ceiling = 100 * KERNEL_HZ / RATE_HZ
    if abs(answer - truth) <= TOLERANCE * truth:
        return True, (
            f"the simulator shows {truth:.1f}%, the exact ceiling is {ceiling:g}% (the 1 s "
            f"run's ends cost {ceiling - truth:.1f} points): at most one SIGPROF per tick "
            "round, 1000 rounds a second, each worth 1/500 s of CPU, although the program "
            "used 800%. Below 125 Hz (HZ/CPUs) the same machine would show all 800%. "
            + this_machine()
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
        f"not {answer:g}%. The ceiling is min(busy threads × 100%, HZ / rate × 100%), less "
        "a little for the 1 s run's ends: redo it with the job's numbers"
    )
