"""Lab 1 check: main.parse's share of the quickstart's profile at 250 Hz, predicted before
any 250 Hz run (the steps run only 100 Hz).

The model's answer: per-thread timers sample each thread's CPU time at any rate up to HZ,
so a function's share of the profile estimates its share of the CPU, whatever the rate;
only its sampling noise shrinks. The check simulates the quickstart at 250 Hz and accepts
answers within three binomial standard deviations of the simulated share,
3·√(s(1 − s)/n) for share s of n samples (about 0.036 for its 1,294 samples).
"""

from __future__ import annotations

import math

from labs import REPO_DIR
from labs.common import Usage, number, simulate, want_args

USAGE = "SHARE   (main.parse's share of the quickstart's profile at 250 Hz, 0 to 1)"
RATE_HZ = 250


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    answer = number(args[0], "SHARE")
    if not 0 <= answer <= 1:
        raise Usage(f"SHARE is a fraction of the profile, 0 to 1 (0.3, not 30); got {args[0]!r}")
    got = simulate(REPO_DIR / "scenarios/quickstart.yaml", [f"profiler.rate_hz={RATE_HZ}"])
    parse = next(f for f in got.functions if f.name == "main.parse")
    bound = 3 * math.sqrt(parse.share * (1 - parse.share) / got.samples_in_profile)
    low, high = parse.share - bound, parse.share + bound
    if low <= answer <= high:
        return True, (
            f"at {RATE_HZ} Hz main.parse holds {parse.share:.3f} of {got.samples_in_profile} "
            f"samples for {parse.true_share:.3f} of the CPU (accepted {low:.3f} to "
            f"{high:.3f}, three standard deviations of sampling noise). The capture is "
            f"{got.capture_ratio:.3f}: {got.signals_dropped_pending} process-timer expiries "
            "found SIGPROF pending and were dropped, and it did not matter: the per-thread "
            "timers carry the profile, the process timer's signals are duplicates."
        )
    direction = "more" if answer > high else "less"
    return False, (
        f"{answer:g} is {direction} than the {RATE_HZ} Hz profile shows. A faster timer gives "
        "more samples of every function alike: what share of each thread's busy time does "
        "main.parse take?"
    )
