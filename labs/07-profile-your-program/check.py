"""Lab 7 check: how many samples per CPU-second does realprof record of program.py when
asked for 1000 Hz on this machine? A prediction, checked against a real recording.

The model's answer: realprof's per-thread timers are CPU timers, checked at most once per
tick, so no rate gives more than HZ samples per CPU-second (lab 3); HZ is read from this
kernel's configuration at run time (`lab.machine.kernel_hz`). The check records the
program for real at 1000 Hz (2 s, `--truth` for its own CPU clocks), divides the samples of
its three functions by their measured CPU seconds, and accepts answers from that measured
rate to HZ, widened on either side by 6% of HZ: the loss real runs show at exactly HZ on a
shared VM (lab 3's real 250 Hz step, capture 0.98 ± 0.06).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from labs import LABS_DIR
from labs.common import Usage, number, want_args

USAGE = "SAMPLES_PER_CPU_SECOND   (realprof record --hz 1000 of program.py, on this machine)"
ASKED_HZ = 1000
REAL_LOSS = 0.06
PROGRAM = LABS_DIR / "07-profile-your-program/program.py"


def record(directory: Path) -> tuple[int, float]:
    """Record program.py for real at ASKED_HZ: (samples of its functions, their CPU s)."""
    from contract.profile_files import read_profile

    profile_path, truth_path = directory / "p.pb.gz", directory / "truth.json"
    proc = subprocess.run(
        [sys.executable, "-m", "realprof", "record", "--hz", str(ASKED_HZ), "-o",
         str(profile_path), str(PROGRAM), "--seconds", "2", "--truth", str(truth_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise Usage(f"realprof record failed on this machine: {last}")
    truth = json.loads(truth_path.read_text(encoding="utf-8"))["cpu_seconds"]
    counts = read_profile(profile_path).by_function()
    # realprof qualifies names by module (program.parse_records), the truth does not.
    sampled = sum(c for key, c in counts.items() for name in truth if key.endswith(name))
    return sampled, sum(truth.values())


def check(args: list[str]) -> tuple[bool, str]:
    want_args(args, 1)
    answer = number(args[0], "SAMPLES_PER_CPU_SECOND")
    from lab.machine import kernel_hz

    hz, source = kernel_hz()
    if hz is None:
        raise Usage(f"this check needs the kernel's CONFIG_HZ, which is {source}")
    with tempfile.TemporaryDirectory(prefix="lab07-") as tmp:
        samples, cpu_seconds = record(Path(tmp))
    measured = samples / cpu_seconds
    model = min(ASKED_HZ, hz)
    low = min(measured, model) - REAL_LOSS * hz
    high = max(measured, model) + REAL_LOSS * hz
    said = (
        f"realprof recorded {samples} samples in {cpu_seconds:.2f} CPU-s = {measured:.0f} per "
        f"CPU-second at --hz {ASKED_HZ}; this kernel ticks at {hz} Hz ({source})"
    )
    if low <= answer <= high:
        return True, (
            f"{said} (accepted {low:.0f} to {high:.0f}). A CPU timer is checked, and fires, "
            "at most once per tick: asking for more than HZ gives overruns, not samples."
        )
    if answer > high:
        return False, (
            f"{said}. Asking is not getting: what limits how often a thread's CPU timer can "
            "fire (lab 3)?"
        )
    return False, f"{said}. More than {answer:g}: the limit is the kernel's, not the program's."
