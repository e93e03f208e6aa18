"""Go 1.17's profiler on a current Go (`lab.go_seccomp`), and the fit held against it.

* The launcher (`lab/go_seccomp.c`) makes `timer_create` fail with the errno asked for,
  in the program it execs, with no_new_privs set and one seccomp filter; every other
  call still works.
* Under it, the Go world's program holds no POSIX timer while it profiles (read in
  /proc/PID/timers: Go's per-thread timers are `timer_create` timers aimed at a thread
  with SIGPROF, 27), for EPERM and for ENOSYS alike; without it, it holds some. The run
  is reported as the go1.17 model with the process timer.
* Bad names are one clear error, exit 2.
* Real (marked `real`): the 4-goroutine cell on 2 CPUs at 250 Hz under the emulation is
  within the grid's tolerance (0.05) of the go1.17 model run on p measured in the same
  sitting, and the same cell without it captures about everything (the go1.18 model);
  `python -m realprof go-fit` finds the pooled fit of its Go runs in agreement with the p
  realprof counts in tick rounds, within the fit's range and that count's own scatter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import go_seccomp
from lab.compare import main as compare_main
from lab.go_plan import make_plan
from lab.go_program import go_source
from lab.go_seccomp import EMULATIONS, ERRNOS
from lab.go_toolchain import GoWorldError, build_program, go_toolchain, version_of
from lab.go_variant import path_variant
from lab.go_world import run_go_world
from lab.grid_cells import cell_scenario
from lab.machine import cpus_wanted, got_its_cpus
from sim.model import simulate

ROOT = Path(__file__).resolve().parent.parent
GO_HINT = "apt-get install golang-go"
GCC_HINT = "apt-get install gcc"
SIGPROF = 27

# A Python child that calls timer_create through libc and prints the errno it got, and
# its own no_new_privs and seccomp mode.
PROBE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
timer = ctypes.c_int(0)
got = libc.syscall(222, 3, None, ctypes.byref(timer))  # x86-64 timer_create, thread clock
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(got, ctypes.get_errno(), status["NoNewPrivs"].strip(), status["Seccomp"].strip())
"""


@pytest.fixture
def launcher(require_tool) -> None:
    require_tool("gcc", GCC_HINT)
    if os.uname().machine != "x86_64":
        pytest.skip("the probe calls timer_create by its x86-64 number")


@pytest.fixture
def go(require_tool) -> str:
    return require_tool("go", GO_HINT)


@pytest.mark.parametrize("errno_name", sorted(ERRNOS))
def test_the_launcher_denies_timer_create_alone(launcher, errno_name: str) -> None:
    prefix = go_seccomp.launcher(EMULATIONS["go1.17"], errno_name)
    done = subprocess.run(
        [*prefix, sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["-1", str(ERRNOS[errno_name]), "1", "2"]
    plain = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    assert plain.stdout.split()[:2] == ["0", "0"]


def test_the_launcher_refuses_a_bad_errno(launcher) -> None:
    binary = go_seccomp.build()
    done = subprocess.run(
        [str(binary), "timer_create", "0", "true"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert "ERRNO must be a number from 1 to 4095" in done.stderr


def test_unknown_names_are_one_clear_error(capsys) -> None:
    with pytest.raises(GoWorldError, match=r"no emulation 'go1\.16'; there is go1\.17"):
        go_seccomp.emulation("go1.16")
    with pytest.raises(GoWorldError, match="the filter answers EPERM or ENOSYS"):
        go_seccomp.launcher(EMULATIONS["go1.17"], "EINVAL")
    scenario = str(ROOT / "scenarios" / "quickstart.yaml")
    with pytest.raises(SystemExit) as exit_info:
        compare_main([scenario, "--emulate", "go1.16"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        compare_main([scenario, "--worlds", "sim", "--emulate", "go1.17"])
    assert exit_info.value.code == 2
    assert "--emulate runs the Go world: --worlds must include go" in capsys.readouterr().err


def _profiling_timers(command: list[str]) -> list[str]:
    """The POSIX timers aimed with SIGPROF that the program holds while it profiles."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # the program profiles from its start for its 2 s
        text = Path(f"/proc/{process.pid}/timers").read_text(encoding="utf-8")
    finally:
        process.wait(timeout=60)
    return [line for line in text.splitlines() if line.startswith(f"signal: {SIGPROF}/")]


@pytest.mark.parametrize("errno_name", sorted(ERRNOS))
def test_under_the_filter_go_arms_no_per_thread_timer(
    go: str, launcher, errno_name: str, tmp_path: Path
) -> None:
    if not Path("/proc/self/timers").exists():
        pytest.skip("this kernel has no /proc/PID/timers (CONFIG_CHECKPOINT_RESTORE)")
    scenario = cell_scenario("native", 2, 250, "process", 2.0, {}, "go1.18")
    binary = build_program(go, version_of(go) or "", go_source(scenario), make_plan(scenario).cgo)
    program = [str(binary), "-rate", "250", "-duration", "2.0", "-o", str(tmp_path / "p.pb.gz")]
    assert len(_profiling_timers(program)) >= 2  # one per busy M at least
    prefix = go_seccomp.launcher(EMULATIONS["go1.17"], errno_name)
    assert _profiling_timers([*prefix, *program]) == []


def test_an_emulated_run_is_reported_as_the_go117_model(go: str, launcher) -> None:
    scenario = cell_scenario("native", 1, 100, "process", 0.5, {}, "go1.18")
    report, profile = run_go_world(scenario, variant=path_variant().emulated(EMULATIONS["go1.17"]))
    assert (report.runtime, report.timer) == ("go1.17", "process")
    assert "timer_create denied (EPERM) by a seccomp filter" in report.notes[0]
    assert profile.total_samples > 0
    assert report.machine["go_version"].endswith("(timer_create denied)")


def _busy(report, threads: int, duration_s: float) -> bool:
    return not got_its_cpus(report.cpu_seconds, cpus_wanted("native", threads), duration_s)


@pytest.mark.real
def test_the_emulation_gives_the_go117_capture_and_plain_go_the_go118_one(
    go: str, launcher
) -> None:
    """2 busy goroutines, 2 CPUs, 250 Hz: every tick round raises two process-timer
    expiries, so Go 1.17's profiler keeps (1 + p) / 2 of the samples and per-thread timers
    nearly all. The tolerance is the noise of one Go run against the median of one pass's
    four two-thread survival runs, through the slope of 0.5: in the committed Go release
    grid (docs/data/go-releases/grid.json, pooled as lab.grid_results.tolerance pools it)
    emulated Go 1.19's runs scatter in p by 0.095 from one run to the next (pooled over
    its two-goroutine cells; 0.14-0.18 for later releases) and the session's survival
    runs by 0.126, so one standard deviation of the gap is 0.5 * sqrt(0.095² + (1.092 *
    0.126)² / 4) = 0.059, and three are 0.18. (It was 0.13, from a scatter of ±0.06 that
    single runs exceed: a CI run missed by 0.148, with the Go run at p ≈ 0.33 and the
    session at 0.63.) That cannot tell the two models apart on its own, so the test also
    asks the emulated run to lose what plain Go keeps."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 CPUs: one CPU's ticks cannot collide")
    from lab.grid import run_grid

    cell = "native/2t/250Hz/process"
    data = run_grid(
        ("sim", "real", "go"),
        repeat=1,
        duration_s=3.0,
        progress=False,
        timers=("process",),
        only=(cell,),
        go_emulate=EMULATIONS["go1.17"],
    )
    (entry,) = data["cells"]
    which = path_variant().emulated(EMULATIONS["go1.17"])
    measured = entry[which.world]
    if any(run["machine_busy"] for run in measured["runs"]):
        pytest.skip(f"the Go runs got fewer than 2 CPUs (machine busy): {measured['runs']}")
    predicted = entry[which.twin]["capture_ratio"]
    assert abs(measured["capture_ratio"] - predicted) <= 0.18, (measured, predicted)
    plain, _ = run_go_world(cell_scenario("native", 2, 250, "process", 3.0, {}, "go1.18"))
    if _busy(plain, 2, 3.0):
        pytest.skip("the plain Go run got fewer than 2 CPUs (machine busy)")
    assert plain.capture_ratio >= 0.95
    assert measured["capture_ratio"] < plain.capture_ratio
    # (1 + p) / 2 stays below 0.95 unless p passes 0.9, which no survival run here reached.
    assert measured["capture_ratio"] <= plain.capture_ratio - 0.05


@pytest.mark.real
def test_the_fit_recovers_the_measured_p_from_real_go_profiles(
    go: str, launcher, tmp_path: Path
) -> None:
    if (os.cpu_count() or 1) < 2 or go_toolchain() is None:
        pytest.skip("needs 2 CPUs and Go")
    from lab.go_fit_check import go_fit_check

    result = go_fit_check(tmp_path, repeat=3, duration_s=3.0)
    clean = [run for run in result["go_runs"] if not run["machine_busy"]]
    if len(clean) < 2:
        pytest.skip("fewer than 2 Go runs got 2 CPUs (machine busy): no scatter to pool")
    # One fit of all the clean Go profiles, whose range holds the runs' drift of p, agrees
    # with the p realprof counted in tick rounds between them, within that count's scatter.
    assert result["p_agrees_with_pooled_fit"]["realprof"]["agrees"], result


def test_a_grid_of_emulated_go_alone_measures_the_session_p(go: str, monkeypatch) -> None:
    """`--worlds sim,go --go-emulate go1.17` runs no realprof cell, but its twins model the
    process timer: the grid must still count p between its passes (it once fell back on
    the machine profile's p, measured days before)."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("the grid calibrates only on 2 or more CPUs")
    from lab import calibrate, grid

    counted_p = 0.77
    monkeypatch.setattr(
        calibrate,
        "survival_run",
        lambda rate, threads_n, duration_s, hz: {
            "rate_hz": rate,
            "threads": threads_n,
            "p": counted_p,
            "p_se": 0.02,
            "rounds": 500,
            "capture_ratio": 0.5,
        },
    )

    def fake_go_world(scenario, variant=None, **_):
        report = simulate(scenario).report
        report.machine["go_version"] = "go1.19.8 (timer_create denied)"
        return report, None

    monkeypatch.setattr(grid, "run_go_world", fake_go_world)
    data = grid.run_grid(
        ("sim", "go"),
        repeat=1,
        duration_s=0.5,
        progress=False,
        timers=("process",),
        only=("native/2t/250Hz/process",),
        go_emulate=EMULATIONS["go1.17"],
    )
    assert counted_p == data["session_calibration"]["same_round_survival"]
