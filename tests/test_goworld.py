"""The Go world: a scenario's workload run and profiled by the installed Go runtime.

The magnitude check is Go's own acceptance test (runtime/pprof's
TestCPUProfileMultithreadMagnitude: profile CPU within 10 % of getrusage); the share check
allows three binomial standard errors; the tick cap compares with the model's HZ / rate.
Runs are shared between tests (one 100 Hz and one 1000 Hz run of the same workload, one
binary), so the file takes 10-20 s (12 s with a cold build cache, here).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from contract.profile import Profile
from contract.report import Report
from contract.scenario import Scenario, validate_scenario
from lab import go_toolchain, go_world
from lab.go_program import go_source
from lab.go_report import OTHER_CODE
from lab.go_toolchain import GoWorldError, model_runtime
from lab.go_world import run_go_world

GO_HINT = "apt-get install golang-go"

# Two busy goroutines, each spending 75 % of its CPU in compute and 25 % in parse.
BUSY_THREADS = [
    {
        "name": "worker",
        "count": 2,
        "program": [
            {"run": {"function": "main.compute", "cpu_ms": 30, "depth": 4}},
            {"run": {"function": "main.parse", "cpu_ms": 10, "depth": 6}},
        ],
    }
]


def make_scenario(
    threads: list[dict], rate_hz: float = 100, duration_s: float = 3, runtime: str = "go1.18"
) -> Scenario:
    return validate_scenario(
        {
            "name": "goworld-test",
            "profiler": {"runtime": runtime, "rate_hz": rate_hz},
            "workload": {"duration_s": duration_s, "threads": threads},
        }
    )


_runs: dict[float, tuple[Report, Profile]] = {}


def busy_run(rate_hz: float) -> tuple[Report, Profile]:
    """One run per rate, shared by the tests that read it."""
    if rate_hz not in _runs:
        _runs[rate_hz] = run_go_world(make_scenario(BUSY_THREADS, rate_hz=rate_hz))
    return _runs[rate_hz]


@pytest.fixture
def go(require_tool) -> str:
    return require_tool("go", GO_HINT)


# -- without Go --------------------------------------------------------------------------


def test_go_source_is_deterministic_and_carries_the_scenario_names():
    scenario = make_scenario(BUSY_THREADS)
    source = go_source(scenario)
    assert source == go_source(make_scenario(BUSY_THREADS))
    for needle in (
        "func compute(budgetNs int64)",
        "func parse(budgetNs int64)",
        "func worker(tid int)",
        "func worker_caller1(",
        "func worker_caller4(",
        "runtime.LockOSThread()",
        "runtime.SetCPUProfileRate(*rate)",
        "runtime.GOMAXPROCS(2)",
        '"worker.0", "worker.1"',
    ):
        assert needle in source
    assert source.count("//go:noinline") >= 2 + 1 + 4
    assert 'import "C"' not in source  # no native step: a pure-Go build


def test_go_source_sanitises_names_and_uses_cgo_only_for_c_steps():
    threads = [
        {
            "name": "9 lives",
            "program": [
                {"run": {"function": "pkg.(*T).Method", "cpu_ms": 5}},
                {"run": {"function": "runtime", "cpu_ms": 5}},
                {"native": {"function": "C.hash", "cpu_ms": 5}},
            ],
        },
        {
            "name": "ext",
            "kind": "external",
            "program": [{"native": {"function": "C.z", "cpu_ms": 5}}],
        },
    ]
    source = go_source(make_scenario(threads))
    # Reserved words and package names never name a generated function.
    assert "func pkg___T__Method(" in source
    assert "func runtime(" not in source and "func runtime_2(" in source
    assert "func u_9_lives(tid int)" in source
    assert '//   C_hash <- native "C.hash"' in source
    assert 'import "C"' in source and "pthread_create" in source


def test_model_runtime_follows_the_linux_profiler_history():
    assert model_runtime("go1.17.13") == ("go1.17", "process")
    assert model_runtime("go1.18") == ("go1.18", "both")
    assert model_runtime("go1.19.8") == ("go1.18", "both")
    assert model_runtime("go1.25.1") == ("go1.18", "both")
    assert model_runtime("go1.26.0") == ("go1.26", "both")
    assert model_runtime("devel go1.27-abc") == ("go1.26", "both")


def test_missing_go_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(go_toolchain, "go_toolchain", lambda: None)
    with pytest.raises(GoWorldError) as error:
        run_go_world(make_scenario(BUSY_THREADS))
    assert str(error.value) == f"the Go world needs Go: {GO_HINT}"


def test_go_windows_is_refused():
    scenario = make_scenario(BUSY_THREADS, runtime="go-windows")
    with pytest.raises(GoWorldError, match="go-windows") as error:
        run_go_world(scenario)
    assert "\n" not in str(error.value)


# -- with Go -----------------------------------------------------------------------------


def test_build_failure_reports_the_first_compiler_line(go, monkeypatch):
    broken = "package main\n\nfunc main() { notDefinedAnywhere() }\n"
    monkeypatch.setattr(go_world, "go_source", lambda scenario: broken)
    with pytest.raises(GoWorldError) as error:
        run_go_world(make_scenario(BUSY_THREADS))
    message = str(error.value)
    assert message.startswith("go build failed: ")
    assert "notDefinedAnywhere" in message and "\n" not in message


def test_busy_goroutines_at_100hz_match_rusage(go):
    report, profile = busy_run(100)
    assert report.world == "go"
    if model_runtime(report.machine["go_version"])[0] == "go1.18":
        assert (report.runtime, report.timer) == ("go1.18", "both")
    assert report.wall_seconds == pytest.approx(3, abs=0.1)
    # Go's acceptance test: the profile's CPU (samples x period) within 10 % of rusage.
    profile_cpu = profile.total_samples * profile.period_ns / 1e9
    assert profile_cpu == pytest.approx(report.cpu_seconds, rel=0.10), report.to_text()
    assert report.capture_ratio >= 0.9
    assert report.samples_in_profile == profile.total_samples
    assert report.samples_lost_overflow == 0
    leaves = {stack[0].function for stack, _thread in profile.samples}
    assert {"main.compute", "main.parse"} <= leaves
    # Threads come from the goroutines' pprof labels.
    threads = {row.name: row for row in report.threads}
    assert threads["worker.0"].samples > 0 and threads["worker.1"].samples > 0
    assert any("TestCPUProfileMultithreadMagnitude" in note for note in report.notes)


def test_function_shares_match_the_truth_within_three_standard_errors(go):
    report, _profile = busy_run(100)
    rows = {row.name: row for row in report.functions}
    compute, parse = rows["main.compute"], rows["main.parse"]
    n = compute.samples + parse.samples
    assert n >= 0.9 * (report.samples_in_profile - rows[OTHER_CODE].samples)
    truth = compute.true_cpu_seconds / (compute.true_cpu_seconds + parse.true_cpu_seconds)
    assert truth == pytest.approx(0.75, abs=0.05)  # the workload did what it says
    share = compute.samples / n
    assert abs(share - truth) <= 3 * math.sqrt(truth * (1 - truth) / n), report.to_text()


def test_a_rate_above_the_tick_is_capped_by_the_tick(go):
    report, _profile = busy_run(1000)
    hz = report.machine["kernel_hz"]
    if hz is None or hz >= 1000:
        pytest.skip(f"needs a kernel tick below 1000 Hz and a readable config (HZ={hz})")
    # Per-thread timers fire only at ticks: at most HZ samples per CPU-second, so the
    # model predicts HZ / rate (0.25 on HZ=250). Measured here: 0.25-0.30 (migrations
    # between CPUs whose ticks are not aligned can add a check).
    assert report.capture_ratio <= hz / 1000 + 0.10, report.to_text()
    assert report.capture_ratio >= 0.5 * hz / 1000, report.to_text()  # profiling did run


def test_external_c_threads_are_sampled_through_setitimer(go, require_tool, tmp_path):
    require_tool("gcc", "apt-get install gcc")  # cgo
    threads = [
        {"name": "gomain", "program": [{"run": {"function": "main.poll", "cpu_ms": 20}}]},
        {
            "name": "cthread",
            "count": 2,
            "kind": "external",
            "program": [
                {"native": {"function": "C.compress", "cpu_ms": 30}},
                {"sleep_ms": 10},
            ],
        },
    ]
    report, profile = run_go_world(make_scenario(threads, duration_s=1.5), workdir=tmp_path)
    text = report.to_text()
    assert {"main.go", "cpu.pb.gz", "result.json"} <= {p.name for p in Path(tmp_path).iterdir()}
    rows = {row.name: row for row in report.functions}
    threads_seen = {row.name: row.samples for row in report.threads}
    external = rows["C.compress"]
    assert external.samples > 0 and rows["main.poll"].samples > 0, text
    assert threads_seen["cthread.0"] + threads_seen["cthread.1"] == external.samples, text
    # Go records a sample of a thread it did not create as [pc, runtime._ExternalCode].
    assert any(
        len(stack) == 2 and stack[1].function == "runtime._ExternalCode"
        for stack, _thread in profile.samples
    )
    # Only setitimer samples these threads, and its signals that land on the Go thread
    # are discarded: a loose bound. Measured 0.79-1.10 with 25-85 expected samples,
    # on this 2-CPU machine shared with other busy processes.
    expected = external.true_cpu_seconds * report.rate_hz
    assert 0.5 * expected <= external.samples <= 1.3 * expected + 5, text
    assert any("pthread_create" in note for note in report.notes)
