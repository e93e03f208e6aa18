"""`python -m sim fit`: the p that explains what a user saw, its range, and bad input."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contract.profile_files import write_profile
from contract.scenario import validate_scenario
from contract.scenario_file import load_scenario
from sim.__main__ import EXIT_BAD_INPUT, main
from sim.fit import Z_RANGE, t_quantile
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


def _known_p_run(p: float, tmp_path: Path, seed: int = 7) -> tuple[Path, float]:
    raw = {
        "seed": seed,
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
    path = tmp_path / f"profile-{p}-{seed}.pb.gz"
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


def _fitted_range(argv: list[str], capsys) -> tuple[float, float, str]:
    assert main(argv) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("p ("))
    low, high = (float(x) for x in line.split("range ")[1].split(":")[0].split(" to "))
    return low, high, line


def _profiles_argv(runs: list[tuple[Path, float]]) -> list[str]:
    argv = ["fit", "--cpus", "8", "--hz", "250", "--go", "go1.17"]
    for path, cpu_s in runs:
        argv += ["--profile", str(path), "--process-cpu-s", str(cpu_s)]
    return argv


def test_profiles_of_one_p_are_fitted_together(tmp_path: Path, capsys) -> None:
    # Three runs of one machine (seeds differ): their captures scatter only binomially,
    # so the pooled range is the binomial one of three times the samples, narrower than
    # one profile's, and still holds p.
    runs = [_known_p_run(0.3, tmp_path, seed) for seed in (7, 8, 9)]
    one_low, one_high, _ = _fitted_range(_profiles_argv(runs[:1]), capsys)
    low, high, line = _fitted_range(_profiles_argv(runs), capsys)
    assert low <= 0.3 <= high, line
    assert high - low < one_high - one_low, line
    assert "the 3 profiles' captures" in line, line


def test_profiles_whose_p_drifts_widen_the_range_by_their_scatter(tmp_path: Path, capsys) -> None:
    # p drifting from run to run (0.2, 0.4, 0.6: a VM's neighbours change) scatters the
    # captures far more than their samples explain: the range takes the scatter with
    # Student's t at 2 degrees of freedom, and holds every run's p.
    runs = [_known_p_run(q, tmp_path) for q in (0.2, 0.4, 0.6)]
    one_low, one_high, _ = _fitted_range(_profiles_argv(runs[1:2]), capsys)
    low, high, line = _fitted_range(_profiles_argv(runs), capsys)
    assert f"±{t_quantile(2):.2f} SE" in line, line
    assert low <= 0.2, line
    assert high >= 0.6, line
    assert high - low > 2 * (one_high - one_low), line


def test_t_quantile_matches_closed_forms() -> None:
    coverage = math.erf(Z_RANGE / math.sqrt(2))
    # One degree of freedom is the Cauchy distribution: P(|T| < t) = 2 atan(t) / pi.
    assert abs(t_quantile(1) - math.tan(math.pi * coverage / 2)) < 0.01
    # Two: P(|T| < t) = t / sqrt(2 + t^2).
    assert abs(t_quantile(2) - math.sqrt(2 * coverage**2 / (1 - coverage**2))) < 1e-3
    # Many: the normal's z.
    assert abs(t_quantile(2000) - Z_RANGE) < 1e-2


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
    "fewer CPU values than profiles": [
        *("--profile", "/nonexistent/a.pb.gz", "--profile", "/nonexistent/b.pb.gz"),
        *("--process-cpu-s", "3"),
    ],
    "one duration for several profiles": [
        *("--profile", "/nonexistent/a.pb.gz", "--profile", "/nonexistent/b.pb.gz"),
        *("--process-cpu-s", "3", "--process-cpu-s", "3"),
    ],
    "two CPU values for one pprof number": [
        *("--top-percent", "400", "--top-percent", "300", "--pprof-percent", "100"),
    ],
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
