"""Lab 3 check: the largest rate at which per-thread timers on a HZ=250 kernel still give
every expected sample. The check simulates the answer and the kernel's limit."""

from __future__ import annotations

from labs import REPO_DIR
from labs.common import Usage, number, simulate, want_args

USAGE = "RATE_HZ   (the largest rate a HZ=250 kernel samples in full)"
SCENARIO = REPO_DIR / "scenarios/tick-granularity.yaml"


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    rate = number(args[0], "RATE_HZ")
    if not 0 < rate <= 1_000_000:
        raise Usage(f"RATE_HZ must be in (0, 1000000], got {args[0]!r}")
    got = simulate(SCENARIO, [f"profiler.rate_hz={rate:g}"])
    if abs(rate - 250) <= 5:
        return True, (
            f"at {rate:g} Hz the simulator captures {got.capture_ratio:.3f}: the timer is "
            "due once per 4 ms tick. Above 250 Hz it is due more than once per tick but "
            "fires once per tick; the rest are overruns, which Go ignores."
        )
    if rate > 250:
        return False, (
            f"at {rate:g} Hz the capture ratio is {got.capture_ratio:.3f} "
            f"({got.timer_overruns} overruns): a CPU timer is checked, and fires, at most "
            "once per tick, so no more than HZ samples per CPU-second"
        )
    return False, (
        f"{rate:g} Hz is captured in full (capture {got.capture_ratio:.3f}), but so are "
        "higher rates: look at the sweep for the last rate before the capture falls"
    )
