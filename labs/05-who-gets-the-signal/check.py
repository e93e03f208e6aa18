"""Lab 5 check: a report.json of the skewed-attribution scenario whose thread shares match
the truth, obtained by changing the profiler, not the kernel's bias."""

from __future__ import annotations

from labs.common import report, want_args

USAGE = "REPORT.json   (skewed-attribution with a profiler whose threads split 50/50)"


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    got = report(args[0])
    if got.scenario != "skewed-attribution":
        return False, f"this is a report of {got.scenario!r}; use scenarios/skewed-attribution.yaml"
    bias = got.machine.get("cpu_check_bias")
    if bias != [4, 1] and bias != [4.0, 1.0]:
        return False, (
            f"machine.cpu_check_bias is {bias}, not [4, 1]: the kernel's bias is the "
            "problem you must live with; change the profiler instead"
        )
    error = got.attribution_error_pp
    if error is None or error > 2:
        threads = ", ".join(f"{t.name} {t.share:.1%}" for t in got.threads)
        return False, (
            f"the threads show {threads} for equal work (error {error} pp). With one "
            "process timer the CPU that checks first wins each tick round; per-thread "
            "timers (profiler.runtime=go1.18, or profiler.timer=per-thread) charge each "
            "thread its own CPU time"
        )
    return True, (
        f"{got.runtime} with timer {got.timer}: largest attribution error {error:.1f} pp. "
        "Each thread's own CPU timer fires on that thread, whichever CPU ticks first."
    )
