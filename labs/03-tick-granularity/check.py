"""Lab 3 check: the largest rate at which per-thread timers on a HZ=250 kernel still give
every expected sample.

The model's answer is HZ itself: a CPU timer is checked, and fires, at most once per tick.
How close to HZ an answer must be comes from the simulator, not from trial: the check
simulates the scenario at HZ, where the 2 s run already misses a few samples at its ends
(capture c_HZ < 1), and accepts rates within HZ × (1 − c_HZ) of HZ, since a rate that
close changes the sample count by no more than those ends do. Anything farther is either
below the limit (higher rates are captured in full too) or above it (the capture falls as
HZ / rate).
"""

from __future__ import annotations

from labs import REPO_DIR
from labs.common import Usage, number, playground_reading, simulate, want_args

USAGE = (
    "RATE_HZ   (the largest rate a HZ=250 kernel samples in full)"
    " | playground RATIO   (playground: tick-granularity at HZ=1000)"
)
SCENARIO = REPO_DIR / "scenarios/tick-granularity.yaml"


def check(args: list[str]) -> tuple[bool, str]:
    if args[:1] == ["playground"]:
        return playground_reading(
            args[1:],
            scenario="tick-granularity",
            overrides=["machine.kernel_hz=1000"],
            field="capture_ratio",
            what="RATIO",
            tolerance=0.02,
        )
    want_args(args, 1)
    rate = number(args[0], "RATE_HZ")
    if not 0 < rate <= 1_000_000:
        raise Usage(f"RATE_HZ must be in (0, 1000000], got {args[0]!r}")
    at_hz = simulate(SCENARIO, [])
    hz = at_hz.machine["kernel_hz"]
    at_hz = simulate(SCENARIO, [f"profiler.rate_hz={hz:g}"])
    tolerance_hz = hz * (1 - at_hz.capture_ratio)
    got = simulate(SCENARIO, [f"profiler.rate_hz={rate:g}"])
    if abs(rate - hz) <= tolerance_hz:
        return True, (
            f"at {rate:g} Hz the simulator captures {got.capture_ratio:.3f}: the timer is "
            f"due at most once per {1000 / hz:g} ms tick. Above {hz:g} Hz it is due more "
            "than once per tick but fires once per tick; the rest are overruns, which Go "
            f"ignores. (Accepted: {hz:g} ± {tolerance_hz:.1f} Hz, the run's end loss at HZ.)"
        )
    if rate > hz:
        return False, (
            f"at {rate:g} Hz the capture ratio is {got.capture_ratio:.3f} "
            f"({got.timer_overruns} overruns), below {at_hz.capture_ratio:.3f} at the limit: "
            "a CPU timer is checked, and fires, at most once per tick, so no more than HZ "
            "samples per CPU-second"
        )
    return False, (
        f"{rate:g} Hz is captured in full (capture {got.capture_ratio:.3f}), but so are "
        "higher rates: what limits how often a CPU timer can fire?"
    )
