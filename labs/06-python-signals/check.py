"""Lab 6 check: the naive Python handler's samples per second of wall time when the main
thread of scenarios/cpython-main-thread.yaml waits 100 ms instead of 250 ms and the timer
asks for 200 Hz instead of 100 (a prediction: the steps run neither change).

The model's answer: CPython runs the Python handler once per wake-up of the main thread,
so 1000 / sleep_ms samples a second, whatever the rate. The check simulates the changed
scenario and accepts answers from the simulated rate to that ideal (they differ by the
run's ends), widened by one wake-up per run (1 / wall seconds) on either side.
"""

from __future__ import annotations

from labs import REPO_DIR
from labs.common import number, simulate, want_args

USAGE = "SAMPLES_PER_SECOND   (naive handler, main thread waking every 100 ms, 200 Hz timer)"
SLEEP_MS, RATE_HZ = 100, 200
OVERRIDES = [f"workload.threads.0.program.0.sleep_ms={SLEEP_MS}", f"profiler.rate_hz={RATE_HZ}"]


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    answer = number(args[0], "SAMPLES_PER_SECOND")
    got = simulate(REPO_DIR / "scenarios/cpython-main-thread.yaml", OVERRIDES)
    simulated = got.samples_in_profile / got.wall_seconds
    ideal = 1000 / SLEEP_MS
    slack = 1 / got.wall_seconds
    low, high = min(simulated, ideal) - slack, max(simulated, ideal) + slack
    if round(low, 6) <= answer <= round(high, 6):  # 9.4 - 0.2 is 9.2, not 9.1999...
        return True, (
            f"the simulator records {got.samples_in_profile} samples in "
            f"{got.wall_seconds:g} s = {simulated:.1f}/s (accepted {low:.1f} to {high:.1f}): "
            f"one per wake-up of the main thread, every {SLEEP_MS} ms, whatever the timer "
            f"rate; {got.signals_merged} signals were merged into those runs"
        )
    if answer >= 50:
        return False, (
            f"{answer:g}/s is about the timer's rate: the signals do arrive, but CPython "
            "runs the Python handler only when the main thread next executes bytecode, and "
            "merges everything that arrived meanwhile. How often does the main thread run?"
        )
    return False, (
        f"not {answer:g}/s: in step 1 the main thread woke every 250 ms; how many Python "
        "handler runs does one wake-up give, and does the timer's rate change that?"
    )
