"""Lab 7 check: does the profile agree with the program's own CPU clocks?

Arguments: the profile realprof wrote (pprof, folded or speedscope) and the truth file
the program wrote with --truth. Each function's share of the profile must be within 7
points of its share of the measured CPU time (about three standard deviations of
sampling noise for 500 samples), and the profile's CPU time within 15% of the truth.
"""

from __future__ import annotations

import json
from pathlib import Path

from labs.common import Usage, want_args

USAGE = "PROFILE TRUTH.json   (e.g. out/lab07/program.pb.gz out/lab07/truth.json)"
TOLERANCE_PP = 7.0


def _truth(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seconds = {str(k): float(v) for k, v in data["cpu_seconds"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise Usage(f"{path}: not the JSON program.py writes with --truth") from None
    if not seconds or sum(seconds.values()) <= 0:
        raise Usage(f"{path}: no CPU time in it")
    return seconds


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 2)
    from contract.profile import ProfileFormatError
    from contract.profile_files import read_profile

    profile_path, truth_path = Path(args[0]), Path(args[1])
    if not profile_path.is_file():
        raise Usage(f"{profile_path}: no such profile")
    try:
        profile = read_profile(profile_path)
    except (ProfileFormatError, ValueError, OSError) as exc:
        raise Usage(f"{profile_path}: not a profile ({str(exc).splitlines()[0]})") from None
    truth = _truth(truth_path)
    counts = profile.by_function()
    # The truth has bare names (parse_records); realprof qualifies them by module
    # (program.parse_records), as Go qualifies by package.
    in_truth = {
        name: sum(c for key, c in counts.items() if key == name or key.endswith("." + name))
        for name in truth
    }
    sampled = sum(in_truth.values())
    if sampled == 0:
        return False, f"the profile has no samples of {', '.join(truth)}: right program?"
    total_cpu = sum(truth.values())
    rows, bad = [], []
    for name, cpu in truth.items():
        share, true_share = in_truth[name] / sampled, cpu / total_cpu
        gap = (share - true_share) * 100
        rows.append(f"{name} {share:.1%} vs {true_share:.1%}")
        if abs(gap) > TOLERANCE_PP:
            bad.append(f"{name}: profile {share:.1%}, program {true_share:.1%} ({gap:+.1f} pp)")
    profile_cpu = profile.total_samples / profile.rate_hz
    if bad:
        return False, (
            "the profile disagrees with the program's clocks: " + "; ".join(bad) + ". Were "
            "both files written by the same run (record ... --truth)? Too few samples "
            "(short run, low --hz) make shares noisy."
        )
    if abs(profile_cpu - total_cpu) > 0.15 * total_cpu:
        return False, (
            f"the profile accounts for {profile_cpu:.2f} s of CPU, the program measured "
            f"{total_cpu:.2f} s: samples were lost or the files are from different runs"
        )
    return True, (
        f"{'; '.join(rows)} (within {TOLERANCE_PP:g} pp); profile CPU {profile_cpu:.2f} s "
        f"vs measured {total_cpu:.2f} s"
    )
