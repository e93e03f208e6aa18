"""Go's Ps (`workload.gomaxprocs`) and what Windows' profileLoop samples.

Each test pins one model change of issue 13: goroutines beyond GOMAXPROCS wait off the
CPU, cgo calls and system calls hold no P, the reader is a goroutine that needs one,
profileLoop samples Ms blocked in system calls but no goroutine waiting for a P, and a
low-resolution waitable timer samples at about 64 Hz.
"""

from __future__ import annotations

from typing import Any

import pytest

from contract.scenario import ScenarioError, validate_scenario
from sim.model import Simulation, simulate

DURATION_S = 2.0


def scenario(
    threads: list[dict[str, Any]],
    *,
    cpus: int = 2,
    runtime: str = "go1.18",
    gomaxprocs: int | None = None,
    **profiler: Any,
):
    workload: dict[str, Any] = {"duration_s": DURATION_S, "threads": threads}
    if gomaxprocs is not None:
        workload["gomaxprocs"] = gomaxprocs
    return validate_scenario(
        {
            "machine": {"cpus": cpus, "kernel_hz": 250},
            "profiler": {"runtime": runtime, "rate_hz": 100, **profiler},
            "workload": workload,
        },
        "<test>",
    )


def busy(name: str, count: int) -> dict[str, Any]:
    return {"name": name, "count": count, "program": [{"run": {"function": "f", "cpu_ms": 50}}]}


def test_gomaxprocs_caps_the_goroutines_that_run_go_code():
    report = simulate(scenario([busy("g", 6)], cpus=4, gomaxprocs=2)).report
    assert report.cpu_seconds == pytest.approx(2 * DURATION_S, rel=0.01)


def test_sysmon_preemption_shares_the_ps_between_goroutines():
    report = simulate(scenario([busy("g", 6)], cpus=4, gomaxprocs=2)).report
    shares = [row.true_cpu_seconds for row in report.threads]
    assert max(shares) - min(shares) < 0.1 * (2 * DURATION_S / 6)


def test_cgo_calls_run_without_a_p():
    cgo = {"name": "c", "count": 2, "program": [{"native": {"function": "C.f", "cpu_ms": 50}}]}
    report = simulate(scenario([cgo], cpus=2, gomaxprocs=1)).report
    assert report.cpu_seconds == pytest.approx(2 * DURATION_S, rel=0.01)


def test_the_reader_is_a_goroutine_that_needs_a_p():
    # One busy goroutine and one P on four CPUs: only the reader ever waits for the P,
    # so every sysmon preemption is one made for the reader.
    sim = Simulation(scenario([busy("g", 1)], cpus=4, gomaxprocs=1))
    sim.run()
    assert sim.procs is not None
    assert sim.procs.preemptions > 0


def test_windows_samples_no_goroutine_waiting_for_a_p():
    report = simulate(scenario([busy("g", 6)], runtime="go-windows", gomaxprocs=2)).report
    assert report.capture_ratio == pytest.approx(1.0, abs=0.02)


def test_windows_samples_ms_blocked_in_system_calls_but_not_parked_ones():
    def io(off_step: dict[str, Any]):
        program = [{"run": {"function": "f", "cpu_ms": 0.1}}, off_step]
        return simulate(scenario([{"name": "io", "program": program}], runtime="go-windows"))

    periods = DURATION_S * 100
    in_syscall = io({"syscall_ms": 10}).report
    asleep = io({"sleep_ms": 10}).report
    assert in_syscall.samples_recorded > 0.9 * periods
    assert asleep.samples_recorded < 0.05 * periods
    assert in_syscall.functions[0].name == "runtime.cgocall"


def test_windows_low_resolution_timer_samples_at_64_hz():
    report = simulate(
        scenario([busy("g", 1)], runtime="go-windows", suspend_timer_resolution_ms=15.625)
    ).report
    assert report.samples_recorded == pytest.approx(DURATION_S * 64, abs=2)


def test_gomaxprocs_is_refused_for_a_runtime_without_ps():
    with pytest.raises(ScenarioError) as error:
        scenario([busy("g", 1)], runtime="cpython", gomaxprocs=2)
    assert "workload.gomaxprocs applies to Go runtimes only, not cpython" in str(error.value)


def test_the_timer_resolution_is_refused_for_a_runtime_without_profileloop():
    with pytest.raises(ScenarioError) as error:
        scenario([busy("g", 1)], suspend_timer_resolution_ms=15.625)
    assert "suspend_timer_resolution_ms applies to runtime go-windows only" in str(error.value)
