"""The Go world: a scenario's workload run by the real Go runtime, profiled by runtime/pprof.

The simulator predicts what Go's CPU profiler does; `realprof scenario` rebuilds the
profiler for Python on this kernel. The Go world asks the profiler itself:
`run_go_world` writes the scenario's workload as a small Go program
(`lab.go_program.go_source`, names from `lab.go_plan`), builds it with the installed
toolchain (`lab.go_toolchain`), runs it under `runtime/pprof` at the scenario's rate
for its duration, reads the profile Go wrote with `contract.profile_files.read_profile`, and
reports it (`lab.go_report`), so its report sits beside the other two worlds'.

The toolchain is the `go` on PATH, or the release a `GoVariant` names
(`lab.go_toolchain.find_toolchain`); its release decides the model the run measures
(`lab.go_toolchain.model_runtime`: Go 1.18 to 1.25 is the `go1.18` model), unless the
variant runs under an emulation (`lab.go_seccomp`: the program is exec'd by a launcher
that denies `timer_create`, and the run is the `go1.17` model); the report names the
version that ran (`machine.go_version`);
`go-windows`, a suspend-and-sample profiler, has no run on Linux and is refused.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from contract.profile import Profile, ProfileFormatError
from contract.profile_files import read_profile
from contract.report import Report
from contract.scenario import Scenario
from lab.go_plan import make_plan
from lab.go_program import go_source
from lab.go_report import go_report
from lab.go_seccomp import launcher
from lab.go_toolchain import (
    GoWorldError,
    build_program,
    c_symbols,
    find_toolchain,
    first_error_line,
)
from lab.go_variant import GoVariant

# runtime.SetCPUProfileRate's warning when StartCPUProfile asks for 100 Hz after we set
# the rate (src/runtime/cpuprof.go); expected, so it is filtered from the program's stderr.
_RATE_WARNING = "runtime: cannot set cpu profile rate until previous profile has finished."


def _check(scenario: Scenario) -> None:
    if scenario.profiler.model == "go-windows":
        raise GoWorldError(
            "runtime go-windows models Windows' suspend-and-sample thread; the Go world runs "
            "Go on this Linux machine, where profiling is signal-based: use go1.18 or go1.26"
        )


def run_go_world(
    scenario: Scenario,
    workdir: Path | None = None,
    timeout_s: float | None = None,
    variant: GoVariant | None = None,
    errno_name: str = "EPERM",
) -> tuple[Report, Profile]:
    """Run `scenario`'s workload under a Go's CPU profiler: `variant`'s release, or the
    `go` on PATH.

    Returns the report (world "go") and the profile Go wrote. With `workdir`, the
    program's source (main.go), its profile (cpu.pb.gz), its JSON result and stderr are
    kept there; otherwise they live in a temporary directory. A variant with an emulation
    runs the program under its seccomp filter (`lab.go_seccomp`, answering `errno_name`)
    and is reported as the model it emulates.
    """
    _check(scenario)
    go, version = find_toolchain(variant.release if variant else None)
    emulate = variant.emulate if variant else None
    plan = make_plan(scenario)
    source = go_source(scenario)
    binary = build_program(go, version, source, plan.cgo)
    spins = plan.ext_spins()
    symbols = c_symbols(go, binary, spins) if spins else []

    requested = scenario.profiler.rate_hz
    rate = min(max(round(requested), 1), 1_000_000)
    duration = scenario.workload.duration_s
    timeout = timeout_s if timeout_s is not None else duration + 60.0

    with tempfile.TemporaryDirectory(prefix="sigprof-goworld-") as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if workdir is not None:
            (where / "main.go").write_text(source, encoding="utf-8")
        profile_path = where / "cpu.pb.gz"
        command = launcher(emulate, errno_name) if emulate else []
        command += [str(binary), "-rate", str(rate), "-duration", repr(duration)]
        command += ["-o", str(profile_path)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise GoWorldError(
                f"the Go program did not finish within {timeout:g} s "
                f"(workload {duration:g} s); see timeout_s"
            ) from None
        stderr = "\n".join(
            line for line in done.stderr.splitlines() if line.strip() != _RATE_WARNING
        )
        if workdir is not None:
            (where / "stderr.txt").write_text(stderr, encoding="utf-8")
            (where / "result.json").write_text(done.stdout, encoding="utf-8")
        if done.returncode != 0:
            raise GoWorldError(
                f"the Go program failed (exit {done.returncode}): {first_error_line(stderr)}"
            )
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            result = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise GoWorldError("the Go program printed no result line") from None
        try:
            profile = read_profile(profile_path)
        except ProfileFormatError as error:
            raise GoWorldError(f"cannot read Go's profile: {error}") from None

    report = go_report(
        scenario,
        plan,
        symbols,
        result,
        profile,
        rate,
        stderr,
        (emulate, errno_name) if emulate else None,
    )
    return report, profile
