"""`python -m sim fit`: the p that explains what a user saw, its range, and bad input."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from contract.profile_files import write_profile
from contract.scenario import validate_scenario
from contract.scenario_file import load_scenario
from sim.__main__ import EXIT_BAD_INPUT, main
from sim.model import simulate

# The issue's example: 32 CPUs, HZ=250, go1.17, top 2000%, a 30 s pprof showing 400%.
EXAMPLE = [
    "fit",
    "--cpus",
    "32",
    "--hz",
    "250",
    "--go",
    "go1.17",
    "--top-percent",
    "2000",
    "--pprof-percent",
    "400",
    "--duration-s",
    "30",
]
# The command takes about 4 s on this project's 2-CPU VM; the bound is 10 s, the
# issue's promise, times 3 for a loaded CI runner.
EXAMPLE_BOUND_S = 30.0


def test_the_issue_example_in_one_command(tmp_path: Path) -> None:
    out = tmp_path / "fitted.yaml"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sim", *EXAMPLE, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    elapsed_s = time.monotonic() - started
    assert (done.returncode, done.stderr) == (0, "")
    assert elapsed_s < EXAMPLE_BOUND_S
    assert "p (machine.same_round_survival) = " in done.stdout
    assert "go1.18 (Go 1.18 to 1.25)" in done.stdout  # where Go 1.21 falls
    scenario = load_scenario(out)
    assert scenario.profiler.runtime == "go1.17"
    assert scenario.workload.duration_s == 30
    assert 0 < scenario.machine.same_round_survival < 0.5
    # The written scenario reproduces the observation: 400% within the fit's noise.
    reproduced = simulate(scenario).report.profile_cpu_percent
    assert abs(reproduced - 400) < 25


def _known_p_run(p: float, tmp_path: Path) -> tuple[Path, float]:
    raw = {
        "seed": 7,
        "machine": {"cpus": 8, "kernel_hz": 250, "same_round_survival": p},
        "profiler": {"runtime": "go1.17", "rate_hz": 100},
        "workload": {
            "duration_s": 10,
            "threads": [
                {"name": "spin", "count": 8, "program": [{"run": {"function": "f", "cpu_ms": 1e4}}]}
            ],
        },
    }
    result = simulate(validate_scenario(raw))
    path = tmp_path / "profile.pb.gz"
    write_profile(result.profile, path)
    return path, result.report.cpu_seconds


@pytest.mark.parametrize("p", [0.0, 0.3, 0.7])
def test_a_profile_of_known_p_is_fitted_back(p: float, tmp_path: Path, capsys) -> None:
    path, cpu_s = _known_p_run(p, tmp_path)
    argv = ["fit", "--cpus", "8", "--hz", "250", "--go", "go1.17", "--profile", str(path)]
    assert main([*argv, "--process-cpu-s", str(cpu_s)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("p ("))
    low, high = (float(x) for x in line.split("range ")[1].split(":")[0].split(" to "))
    assert low <= p <= high
    assert high - low < 0.15


def test_a_capture_below_what_p_0_gives_is_flagged(capsys) -> None:
    # 150% of 2000% is a capture of 0.075; p = 0 already gives about 0.125 here.
    argv = [a if a != "400" else "150" for a in EXAMPLE]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "p (machine.same_round_survival) = 0.000" in out
    assert "note: the observed capture 0.075 is below what p = 0 gives" in out


BAD = {
    "more CPU than the machine has": ["--top-percent", "900", "--pprof-percent", "100"],
    "a per-thread-timer release": ["--go", "go1.21"],
    "not a Go release": ["--go", "python"],
    "profile above the process": ["--top-percent", "100", "--pprof-percent", "300"],
    "no profile number": ["--top-percent", "400"],
    "both CPU forms": ["--top-percent", "400", "--process-cpu-s", "3", "--pprof-percent", "100"],
    "a negative percent": ["--top-percent", "-4", "--pprof-percent", "100"],
    "a missing profile file": ["--top-percent", "400", "--profile", "/nonexistent/p.pb.gz"],
    "a bad preset": ["--top-percent", "400", "--pprof-percent", "100", "--preset", "cloud"],
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case: str) -> None:
    argv = ["fit", "--cpus", "8", "--hz", "250", "--duration-s", "10"]
    if "--go" not in BAD[case]:
        argv += ["--go", "go1.17"]
    if case == "a per-thread-timer release":
        argv += ["--top-percent", "400", "--pprof-percent", "100"]
    done = subprocess.run(
        [sys.executable, "-m", "sim", *argv, *BAD[case]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (EXIT_BAD_INPUT, "")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
