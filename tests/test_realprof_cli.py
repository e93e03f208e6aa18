"""`python -m realprof record` and `show`, run as a user runs them: in a subprocess.

The recorded programs are real and so is the sampler (real SIGPROF, real kernel). The
assertions are about what must hold on any machine: the target's exit status and argv,
a profile that loads and holds the target's hot function, and one-line errors with exit
status 2 for every kind of bad input.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cli_runs
import pytest

from contract.profile import Profile
from contract.profile_files import read_profile

REPO = Path(__file__).resolve().parent.parent
HOT = "realprof_test_hot"

SCRIPT = textwrap.dedent(
    f"""
    import sys, time

    def {HOT}(seconds):
        end = time.thread_time() + seconds
        x = 0
        while time.thread_time() < end:
            x += 1
        return x

    print("ARGV=" + repr(sys.argv[1:]))
    print("PATH0=" + sys.path[0])
    {HOT}(0.3)
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "exit3":
        sys.exit(3)
    if mode == "raise":
        raise RuntimeError("the target failed on purpose")
    """
)


def run_realprof(
    *args: str, cwd: Path, extra_path: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return cli_runs.run_realprof(*args, cwd=cwd, extra_path=extra_path, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("record")
    (path / "target.py").write_text(SCRIPT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recorded(workdir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One default recording (pprof, per-thread timer), shared by several tests."""
    result = run_realprof("record", "target.py", "ok", "--flag", "-o", "x", cwd=workdir)
    return result, workdir / "realprof.pb.gz"


def hot_samples(path: Path, module: str = "target") -> tuple[int, Profile]:
    profile = read_profile(path)
    # realprof names functions module.qualname; the script target.py is module "target".
    return profile.by_function().get(f"{module}.{HOT}", 0), profile


# ---------------------------------------------------------------------------------------
# record


def test_record_keeps_status_and_argv_and_writes_the_hot_function(recorded) -> None:
    result, path = recorded
    assert result.returncode == 0, result.stderr
    # Everything after the script is the target's, flags that look like ours included.
    assert "ARGV=['ok', '--flag', '-o', 'x']" in result.stdout
    # sys.path[0] is the script's directory, as with `python target.py`.
    assert f"PATH0={os.path.realpath(path.parent)}" in result.stdout
    hot, profile = hot_samples(path)
    # 0.3 s of CPU at 100 Hz: about 30 samples, nearly all in the hot function.
    assert hot >= 15, profile.by_function()
    assert hot >= 0.8 * profile.total_samples
    # The runner's own frames (this CLI, runpy) are not in the target's stacks.
    frames = {frame.function for stack, _thread in profile.samples for frame in stack}
    assert not frames & {"record_main", "_run_target", "_run_code", "run_path"}, frames
    # The summary on stderr says what happened and where the file went.
    assert "capture" in result.stderr and "delivered" in result.stderr
    assert HOT in result.stderr
    assert "go tool pprof -top realprof.pb.gz" in result.stderr


@pytest.mark.parametrize(
    ("mode", "output", "status"),
    [("exit3", "out.folded", 3), ("raise", "out.speedscope.json", 1)],
)
def test_record_keeps_failing_status_and_still_writes(
    workdir: Path, mode: str, output: str, status: int
) -> None:
    result = run_realprof("record", "-o", output, "target.py", mode, cwd=workdir)
    assert result.returncode == status, result.stderr
    hot, _profile = hot_samples(workdir / output)
    assert hot > 0
    if mode == "raise":
        # The target's own traceback, without the runner's frames above it. The summary
        # after it may name them: a sample taken while runpy read the target has the
        # runner below it (the CI run at 9ff18c5 caught one sample of 30 there).
        traceback, _, summary = result.stderr.partition("\nrealprof: ")
        assert summary, result.stderr
        assert "Traceback" in traceback, result.stderr
        assert "RuntimeError: the target failed on purpose" in traceback, result.stderr
        assert 'target.py", line' in traceback, result.stderr
        assert "realprof/__main__.py" not in traceback, result.stderr
        assert "realprof/record.py" not in traceback, result.stderr
        assert "runpy" not in traceback, result.stderr


def test_record_module_with_pythonpath(tmp_path: Path) -> None:
    modules = tmp_path / "mods"
    modules.mkdir()
    (modules / "realprof_test_target.py").write_text(SCRIPT, encoding="utf-8")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_realprof(
        "record", "-o", "m.pb.gz", "-m", "realprof_test_target", "exit3", "-v",
        cwd=cwd, extra_path=modules,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "ARGV=['exit3', '-v']" in result.stdout
    assert f"PATH0={os.path.realpath(cwd)}" in result.stdout  # python -m: the cwd
    hot, _profile = hot_samples(cwd / "m.pb.gz", module="realprof_test_target")
    assert hot > 0


def test_record_python_handler(workdir: Path) -> None:
    result = run_realprof(
        "record", "--handler", "python", "-o", "py.pb.gz", "target.py", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert "handler python, timer process" in result.stderr
    hot, _profile = hot_samples(workdir / "py.pb.gz")
    assert hot > 0


@pytest.mark.parametrize("timer", ["process", "per-thread"])
def test_record_a_target_that_execs_writes_the_profile_so_far(tmp_path: Path, timer) -> None:
    # exec replaces the recording process: the profile up to the exec is written first,
    # and the new program (a shell busy for a while) runs to its end, not killed by an
    # inherited ITIMER_PROF.
    (tmp_path / "execs.py").write_text(
        textwrap.dedent(
            """
            import os, time
            def before_exec():
                t = time.process_time()
                while time.process_time() - t < 0.3:
                    pass
            before_exec()
            os.execv("/bin/sh", ["sh", "-c",
                     "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo SHELL-DONE"])
            """
        ),
        encoding="utf-8",
    )
    result = run_realprof("record", "--timer", timer, "-o", "ex.pb.gz", "execs.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SHELL-DONE" in result.stdout, (result.stdout, result.stderr)
    assert "wrote the profile so far" in result.stderr, result.stderr
    assert read_profile(tmp_path / "ex.pb.gz").by_function().get("execs.before_exec", 0) > 0


def test_record_ctrl_c_exits_130_and_writes(tmp_path: Path) -> None:
    script = tmp_path / "forever.py"
    started = tmp_path / "started"
    script.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            def spin_forever():
                while True:
                    pass
            Path({str(started)!r}).touch()
            spin_forever()
            """
        ),
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "realprof", "record", "-o", "ki.pb.gz", "forever.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs with SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the target never started"
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert read_profile(tmp_path / "ki.pb.gz").by_function().get("forever.spin_forever", 0) > 0


def test_go_tool_pprof_reads_the_profile(recorded, require_tool) -> None:
    go = require_tool("go", "apt-get install -y golang-go")
    _result, path = recorded
    top = subprocess.run(
        [go, "tool", "pprof", "-top", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, HOME=os.environ.get("HOME", str(path.parent))),
    )
    assert top.returncode == 0, top.stderr
    assert HOT in top.stdout
    assert "Total samples" in top.stdout + top.stderr


PHASES = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    def spin(seconds):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    def phase_a(seconds):
        spin(seconds)

    def phase_b(seconds):
        spin(seconds)

    phase_a(float(sys.argv[1]))
    print("WRITTEN_BEFORE_B=" + str(Path(sys.argv[3]).exists()), flush=True)
    phase_b(float(sys.argv[2]))
    print("DONE", flush=True)
    sys.exit(3)
    """
)


@pytest.mark.real
def test_record_duration_stops_sampling_on_time_and_the_program_runs_on(tmp_path: Path) -> None:
    # Phase A spins 1.5 s, phase B 0.5 s; --duration 0.6 must stop sampling inside
    # phase A and write the profile then, while the program runs on to its own end.
    (tmp_path / "phases.py").write_text(PHASES, encoding="utf-8")
    result = run_realprof(
        "record",
        "--duration",
        "0.6",
        "-o",
        "d.pb.gz",
        "phases.py",
        "1.5",
        "0.5",
        "d.pb.gz",
        cwd=tmp_path,
    )
    profile = read_profile(tmp_path / "d.pb.gz")
    flat = profile.by_function()
    cum = {name: c for name, _f, c in profile.top(100)}

    assert result.returncode == 3, result.stderr  # the target's own status
    assert result.stdout.splitlines() == ["WRITTEN_BEFORE_B=True", "DONE"]
    assert "--duration 0.6 s reached: sampling stopped, wrote d.pb.gz" in result.stderr
    assert "(profiled its first 0.6 s: --duration)" in result.stderr
    assert "phases.phase_b" not in cum
    assert cum.get("phases.phase_a", 0) > 0
    assert profile.total_samples - cum["phases.phase_a"] <= 2  # the runner's start, if sampled
    # One spinning thread has at most 0.6 s of CPU in 0.6 s of wall: at most 60 samples
    # at 100 Hz (+2 for the timer's phase); and the window recorded is the one asked.
    assert profile.total_samples <= 62, flat
    assert 0.6e9 <= profile.duration_ns < 0.9e9


@pytest.mark.real
def test_record_duration_longer_than_the_program_profiles_all_of_it(tmp_path: Path) -> None:
    (tmp_path / "phases.py").write_text(PHASES, encoding="utf-8")
    result = run_realprof(
        "record",
        "--duration",
        "30",
        "-o",
        "d.pb.gz",
        "phases.py",
        "0.2",
        "0.2",
        "d.pb.gz",
        cwd=tmp_path,
    )
    cum = {name: c for name, _f, c in read_profile(tmp_path / "d.pb.gz").top(100)}

    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == ["WRITTEN_BEFORE_B=False", "DONE"]
    assert "reached" not in result.stderr
    assert "--duration" not in result.stderr
    assert cum.get("phases.phase_a", 0) > 0 and cum.get("phases.phase_b", 0) > 0


# ---------------------------------------------------------------------------------------
# bad input: one line, exit 2, never a traceback

BAD_RECORD = {
    "missing script": (["record", "missing.py"], ["missing.py"]),
    "missing module": (["record", "-m", "realprof_no_such_module"], ["realprof_no_such_module"]),
    "unknown flag": (["record", "--bogus", "target.py"], ["--bogus"]),
    "hz zero": (["record", "--hz", "0", "target.py"], ["--hz"]),
    "hz negative": (["record", "--hz", "-5", "target.py"], ["--hz"]),
    "hz not a number": (["record", "--hz", "fast", "target.py"], ["--hz", "fast"]),
    "timer": (["record", "--timer", "wall", "target.py"], ["process", "per-thread", "both"]),
    "handler": (["record", "--handler", "rust", "target.py"], ["'c'", "'python'"]),
    "format": (["record", "--format", "svg", "target.py"], ["pprof", "folded", "speedscope"]),
    "python handler per-thread": (
        ["record", "--handler", "python", "--timer", "per-thread", "target.py"],
        ["python", "process"],
    ),
    "python handler both": (
        ["record", "--handler", "python", "--timer", "both", "target.py"],
        ["python", "process"],
    ),
    "unwritable directory": (["record", "-o", "no/such/dir/x.pb.gz", "target.py"], ["no/such"]),
    "output is a directory": (["record", "-o", ".", "target.py"], ["directory"]),
    "unknown suffix": (["record", "-o", "out.xyz", "target.py"], ["--format"]),
    "buffer below one record": (
        ["record", "--buffer-words", "100", "target.py"],
        ["buffer_words", "at least 132", "max_depth=64"],
    ),
    "perf above its floor": (
        ["record", "--timer", "perf", "--hz", "200000", "target.py"],
        ["perf", "100,000 Hz"],
    ),
    "no program": (["record", "--hz", "50"], ["script"]),
    "duration zero": (["record", "--duration", "0", "target.py"], ["--duration", "'0'"]),
    "duration not a number": (["record", "--duration", "1m", "target.py"], ["--duration"]),
    "unknown command": (["frobnicate"], ["frobnicate"]),
    "no command": ([], ["command"]),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORD))
def test_bad_record_input(workdir: Path, case: str) -> None:
    argv, words = BAD_RECORD[case]
    assert_one_line_error(run_realprof(*argv, cwd=workdir), *words)
    # Nothing was run, so nothing was written.
    assert not (workdir / "out.xyz").exists()


# ---------------------------------------------------------------------------------------
# show


def test_show_profile(recorded, workdir: Path) -> None:
    _result, path = recorded
    profile = read_profile(path)
    result = run_realprof("show", str(path), cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert f"samples: {profile.total_samples:,} at 100 Hz" in result.stdout
    assert HOT in result.stdout
    assert "MainThread" in result.stdout  # the thread table
    assert "lost: 0" in result.stdout


def test_show_report(tmp_path: Path, tiny_real_report) -> None:
    report = tiny_real_report
    path = tmp_path / "report.json"
    report.write_json(path)
    result = run_realprof("show", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == report.to_text()


def test_show_bad_files(recorded, tmp_path: Path) -> None:
    _result, path = recorded
    data = path.read_bytes()
    files = {
        "garbage.pb.gz": b"\x00\x01\x02 this is not a profile \xff\xfe",
        "truncated.pb.gz": data[: len(data) // 2],
        "truncated-raw.pb": gzip.decompress(data)[: len(gzip.decompress(data)) // 2],
        "empty.pb.gz": b"",
        "report-ish.json": b'{"world": "real", "scenario": 3}',
        "broken.json": b'{"world": "real", ',
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    for name in [*files, "missing.pb.gz", "."]:
        result = run_realprof("show", name, cwd=tmp_path)
        assert_one_line_error(result)


def test_samples_taken_while_printing_the_targets_traceback_are_the_runners():
    # A sample can land while the runner prints the target's exception (imports for the
    # traceback included): it is labelled as the runner's, never shown as its code.
    import os

    from contract.profile import Frame, Profile
    from realprof import record as cli

    runner = os.path.abspath(cli.__file__)
    profile = Profile(100)
    profile.add(
        (
            Frame("_read_directory", "<frozen zipimport>", 401, 1),
            Frame("_print_target_exception", runner, 340, 338),
            Frame("main", runner, 300, 290),
        ),
        "MainThread",
        1,
    )
    profile.add(
        (Frame("work", "target.py", 3, 1), Frame("main", runner, 300, 290)), "MainThread", 2
    )
    clean = cli._without_runner_frames(profile)
    expected = {
        ((Frame("[realprof: printing the target's traceback]"),), "MainThread"): 1,
        ((Frame("work", "target.py", 3, 1),), "MainThread"): 2,
    }
    assert expected == dict(clean.samples)


def test_realprof_starts_without_protobuf_on_the_programs_heap():
    # An in-process profiler's imports join the profiled program's heap, and CPython's
    # full collections fall where they do relative to that heap's size; protobuf (3,500
    # objects) is needed only to write or read pprof, after the program ran.
    code = (
        "import sys, realprof.record, realprof.sampler, realprof.children; "
        "print(sorted(m for m in sys.modules if m.startswith('google')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_profile_says_how_much_of_the_cpu_its_samples_stand_for(workdir: Path) -> None:
    """1000 Hz on the per-thread timer, which the 250 Hz tick caps: the file's comments
    carry the process CPU and the share the samples account for, which the record
    summary's capture matches (both from the same run)."""
    out = workdir / "thousand.pb.gz"
    result = run_realprof(
        "record",
        "--hz",
        "1000",
        "--timer",
        "per-thread",
        "-o",
        str(out),
        "target.py",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    profile = read_profile(out)
    [comment] = [c for c in profile.comments if "process CPU" in c]
    cpu_s, sampled_s = (float(x) for x in re.findall(r"([\d.]+) s", comment))
    assert sampled_s == pytest.approx(profile.total_samples / 1000, abs=5e-4), comment
    assert cpu_s >= 0.3, comment  # the target spins 0.3 s of CPU
    # the summary's capture is in-profile samples over process CPU × rate: the same ratio
    summary = float(re.search(r"capture ([\d.]+)%", result.stderr)[1]) / 100
    assert sampled_s / cpu_s == pytest.approx(summary, abs=0.002), (comment, result.stderr)
