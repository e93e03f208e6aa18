"""Lab 5 check: which change to the profiler makes the skewed-attribution scenario's two
equal threads split 50/50 while the kernel keeps its [4, 1] bias?

The answer is a scenario change written as `--set`-style overrides (KEY=VALUE ...). The
check refuses changes outside `profiler.` (the kernel's bias is what the learner must live
with), simulates the scenario with the overrides, and passes when the largest attribution
error is within three standard deviations of sampling noise: a thread's share of n samples
has a binomial standard deviation of √(0.5 · 0.5 / n), 50/√n points, so the bound is
150/√n points for the n samples that run recorded (about 3.4 for its 2,000).
"""

from __future__ import annotations

import math

from labs import REPO_DIR
from labs.common import Usage, simulate

USAGE = "KEY=VALUE ...   (profiler overrides for skewed-attribution, e.g. profiler.rate_hz=50)"
SCENARIO = REPO_DIR / "scenarios/skewed-attribution.yaml"


def noise_bound_pp(samples: int) -> float:
    """Three binomial standard deviations of a 50/50 share, in points."""
    return 3 * 50 / math.sqrt(max(samples, 1))


def check(args: list[str]) -> tuple[bool, str]:
    if not args or any("=" not in arg for arg in args):
        raise Usage("give one or more KEY=VALUE overrides, e.g. profiler.rate_hz=50")
    outside = [arg for arg in args if not arg.startswith("profiler.")]
    if outside:
        return False, (
            f"{', '.join(outside)} changes more than the profiler: the kernel's bias "
            "(machine.cpu_check_bias [4, 1]) and the workload are what you must live with; "
            "change only profiler.* settings"
        )
    from contract.scenario import ScenarioError

    try:
        got = simulate(SCENARIO, args)
    except ScenarioError as exc:
        raise Usage(str(exc).splitlines()[0]) from None
    error = got.attribution_error_pp or 0.0
    bound = noise_bound_pp(got.samples_in_profile)
    if error > bound:
        threads = ", ".join(f"{t.name} {t.share:.1%}" for t in got.threads)
        return False, (
            f"with {' '.join(args)} the threads show {threads} for equal work (error "
            f"{error:.1f} points, noise allows {bound:.1f}). With one process timer the "
            "CPU that checks first wins each tick round, at any rate: which timer charges "
            "each thread its own CPU time?"
        )
    return True, (
        f"{got.runtime} with timer {got.timer}: largest attribution error {error:.1f} points "
        f"(noise allows {bound:.1f} for {got.samples_in_profile} samples). Each thread's own "
        "CPU timer fires on that thread, whichever CPU ticks first."
    )
