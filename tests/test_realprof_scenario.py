"""`python -m realprof scenario`: a scenario's workload run for real, reported like the sim.

The kernel is real and shared, so the numbers are noisy. Every tolerance is derived
from the sampling model rather than picked: a profile of n samples estimates a share p
with binomial standard error sqrt(p(1-p)/n), and a share is accepted within three of
them. Per-thread timers sample far more regularly than a binomial draw, so this is a
loose bound for a working sampler and a tight one for a broken one (a sampler that
missed the native thread, or the second Python thread, would be off by tens of points).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from cli_runs import run_realprof

from contract.profile_files import read_profile
from contract.report import Report
from lab.machine import parse_timer_list, tick_alignment

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
WORKLOAD_FUNCTIONS = {"py_parse", "py_render", "c_hash"}
WORKLOAD_THREADS = {"py.0", "py.1", "native"}


@pytest.fixture(scope="module")
def per_thread(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path, str]:
    out = tmp_path_factory.mktemp("per-thread")
    result = run_realprof(
        "scenario",
        str(SCENARIOS / "realprof-per-thread.yaml"),
        "--set",
        "workload.duration_s=3",
        "--out",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    printed = Report.from_dict(json.loads(result.stdout))
    return printed, out, result.stderr


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_report_is_a_real_world_report(per_thread) -> None:
    report, out, _stderr = per_thread
    written = Report.load(out / "report.json")
    assert written == report  # --json prints exactly what --out writes
    assert report.world == "real"
    assert (report.runtime, report.timer) == ("realprof", "per-thread")
    assert 2.9 <= report.wall_seconds <= 3.5
    # Observable in-process or not: the kernel's own counts are null, never guessed.
    assert report.signals_generated is None
    assert report.signals_dropped_pending is None
    assert report.signals_pending_at_stop is None
    assert report.signals_delivered is not None and report.samples_recorded is not None
    machine = report.machine
    assert machine["cpus"] == len(os.sched_getaffinity(0))
    assert "kernel_hz" in machine and "tick_alignment" in machine
    assert machine["scenario_machine"]["kernel_hz"] == 250
    assert any("not observable in-process" in note for note in report.notes)
    # Every workload thread ran and was timed; the truth adds up to cpu_seconds.
    truth = {
        row.name: row.true_cpu_seconds for row in report.threads if row.name in WORKLOAD_THREADS
    }
    assert set(truth) == WORKLOAD_THREADS
    assert all(seconds > 0.05 for seconds in truth.values()), truth
    assert math.isclose(sum(truth.values()), report.cpu_seconds, rel_tol=1e-6)


def test_conservation(per_thread) -> None:
    report, _out, _stderr = per_thread
    assert report.conservation_errors() == []
    assert report.samples_lost_overflow == 0


def test_capture(per_thread) -> None:
    report, _out, _stderr = per_thread
    n = report.samples_in_profile
    expected = report.expected_samples
    assert n > 50, "too little CPU for any statistics: is the machine overloaded?"
    # Per-thread timers count each thread's own CPU: nothing is dropped while pending.
    # What the kernel folds as overruns (it noticed an expiry more than one period late,
    # which happens when other processes crowd the CPUs) is counted but not sampled.
    accounted = (n + (report.timer_overruns or 0)) / expected
    assert report.capture_ratio > 0.9 or accounted > 0.95, (
        f"capture {report.capture_ratio:.3f}, with overruns {accounted:.3f}"
    )
    # A thread yields at most one signal per period of its CPU, plus one for the phase.
    assert n <= expected + len(WORKLOAD_THREADS) + 3 * math.sqrt(expected)


def test_function_and_thread_shares_match_the_truth(per_thread) -> None:
    report, _out, _stderr = per_thread
    n = report.samples_in_profile
    functions = {row.name: row for row in report.functions}
    assert set(functions) >= WORKLOAD_FUNCTIONS, sorted(functions)
    threads = {row.name: row for row in report.threads}
    for name, row in [*functions.items(), *threads.items()]:
        if name not in WORKLOAD_FUNCTIONS | WORKLOAD_THREADS:
            continue
        p = row.true_share
        assert p is not None and 0 < p < 1
        tolerance = 3 * binomial_se(p, n)
        assert abs(row.share - p) <= tolerance, (
            f"{name}: share {row.share:.3f}, true {p:.3f}, 3 se = {tolerance:.3f} (n={n})"
        )


def test_outputs(per_thread) -> None:
    report, out, stderr = per_thread
    pprof = read_profile(out / "profile.pb.gz")
    assert pprof.total_samples == report.samples_in_profile
    assert pprof.by_function() == {row.name: row.samples for row in report.functions if row.samples}
    assert read_profile(out / "profile.speedscope.json").by_thread() == pprof.by_thread()
    assert read_profile(out / "profile.folded").total_samples == pprof.total_samples
    try:
        import figures.funnel  # noqa: F401
    except ImportError:
        pass
    else:
        assert (out / "funnel.png").stat().st_size > 0
    assert "wrote report.json" in stderr


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ("windows-suspend.yaml", ["go-windows", "only in the simulator"]),
        (
            "cgo-external-threads.yaml",
            ["external (cgo-created) threads exist only in the simulator"],
        ),
    ],
)
def test_scenarios_the_real_world_cannot_run(scenario: str, words: list[str]) -> None:
    result = run_realprof("scenario", str(SCENARIOS / scenario), "--set", "workload.duration_s=1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert scenario in lines[0]


def test_bad_override_is_one_line() -> None:
    result = run_realprof(
        "scenario", str(SCENARIOS / "quickstart.yaml"), "--set", "profiler.rate_hz=-1"
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "profiler.rate_hz" in result.stderr


def test_cpython_runtime_merges_on_the_main_thread() -> None:
    # The naive Python handler: deliveries on any thread, one handler run on the main
    # thread for all of them. The workers' CPU is all but invisible.
    result = run_realprof(
        "scenario", str(SCENARIOS / "cpython-main-thread.yaml"),
        "--set", "workload.duration_s=1", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = Report.from_dict(json.loads(result.stdout))
    assert (report.runtime, report.timer) == ("cpython", "process")
    assert report.conservation_errors() == []
    assert report.signals_merged and report.signals_merged > report.samples_recorded
    assert report.capture_ratio < 0.5
    assert set(report.to_dict()["machine"]) >= {"cpus", "kernel_hz"}
    assert {row.name for row in report.threads if row.samples} <= {"main"}


# ---------------------------------------------------------------------------------------
# machine facts, from synthetic /proc/timer_list text


def _timer_list(expiries: dict[int, int]) -> str:
    parts = ["Timer List Version: v0.10", "now at 1000 nsecs", ""]
    for cpu, expiry in expiries.items():
        parts += [
            f"cpu: {cpu}",
            " clock 0:",
            "active timers:",
            " #0: <00000000deadbeef>, tick_nohz_handler, S:01",
            f" # expires at {expiry}-{expiry} nsecs [in 1 to 1 nsecs]",
            "  .last_tick      : 5 nsecs",
        ]
    parts += ["", "Tick Device: mode:     1", " next_event:     12345 nsecs"]
    return "\n".join(parts) + "\n"


def test_tick_alignment_from_timer_list() -> None:
    tick = 4_000_000  # HZ=250
    aligned = _timer_list({0: 100 * tick, 1: 103 * tick})  # same grid, another tick
    assert parse_timer_list(aligned) == {0: 100 * tick, 1: 103 * tick}
    assert tick_alignment(250, aligned)["tick_alignment"] == "aligned"
    skewed = _timer_list({0: 100 * tick, 1: 100 * tick + tick // 4})  # skew_tick=1, 2 CPUs
    facts = tick_alignment(250, skewed)
    assert facts["tick_alignment"] == "skewed"
    assert facts["tick_offsets_ns"] == {"0": 0, "1": tick // 4}
    assert tick_alignment(250, _timer_list({0: 5}))["tick_alignment"] is None
    assert tick_alignment(None, aligned)["tick_alignment"] is None
