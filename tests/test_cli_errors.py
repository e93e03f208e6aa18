"""Bad input to `python -m sim`: one line on stderr, exit status 2, never a traceback.

Every case is checked in-process through `sim.__main__.main` (fast), and a handful are
also run as real subprocesses, `python -m sim ...` from the repository root, so the
module entry point, `sys.exit` and the interpreter's own exception printing are covered
too. A case names what the one line must contain: the file (where the problem is in a
file), the field (where there is one) and what is allowed.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.__main__ import EXIT_BAD_INPUT, main

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
name: good
machine: {cpus: 2, kernel_hz: 250}
profiler: {runtime: go1.18, rate_hz: 100}
workload:
  duration_s: 0.05
  threads:
    - name: worker
      program:
        - run: {function: main.work, cpu_ms: 1, depth: 3}
"""


def _scenario(workload_threads: str = "", profiler: str = "", machine: str = "") -> str:
    """A small valid scenario with one section replaced (indented YAML text)."""
    threads = workload_threads or (
        "    - name: worker\n"
        "      program:\n"
        "        - run: {function: main.work, cpu_ms: 1, depth: 3}\n"
    )
    return (
        "name: bad\n"
        f"machine: {machine or '{cpus: 2, kernel_hz: 250}'}\n"
        f"profiler: {profiler or '{runtime: go1.18, rate_hz: 100}'}\n"
        "workload:\n"
        "  duration_s: 0.05\n"
        "  threads:\n"
        f"{threads}"
    )


@dataclass(frozen=True)
class Case:
    """One kind of bad input.

    `content` is written to FILE (str: UTF-8 text, bytes: as is, None: no file at all,
    "<dir>": FILE is a directory). `args` is the command line with "{file}" standing for
    FILE. `expect` lists substrings the error line must contain; `names_file` says
    whether it must name FILE (not when the problem is only on the command line).
    """

    id: str
    content: str | bytes | None
    args: tuple[str, ...]
    expect: tuple[str, ...]
    names_file: bool = True


RUN = ("{file}",)

CASES = [
    # -- the file itself --------------------------------------------------------------
    Case(
        "yaml-syntax",
        "workload: [\n  bad: :\n",
        RUN,
        ("YAML syntax error", "line 2"),
    ),
    Case("empty-file", "", RUN, ("empty", "workload")),
    Case("comments-only", "# nothing here\n", RUN, ("empty", "workload")),
    Case("missing-file", None, RUN, ("no such file",)),
    Case("directory", "<dir>", RUN, ("directory",)),
    Case(
        "not-utf8",
        b"name: caf\xe9\n" + GOOD.encode().split(b"\n", 1)[1],
        RUN,
        ("cannot read", "utf-8"),
    ),
    Case(
        "yaml-list",
        "- name: a\n- name: b\n",
        RUN,
        ("must be a mapping", "workload", "got list"),
    ),
    Case(
        "yaml-scalar",
        "just a string\n",
        RUN,
        ("must be a mapping", "got str"),
    ),
    Case(
        "two-documents",
        GOOD + "---\nname: other\n",
        RUN,
        ("YAML syntax error", "line 10", "another document"),
    ),
    # -- the schema -------------------------------------------------------------------
    Case(
        "unknown-top-level-key",
        GOOD + "colour: blue\n",
        RUN,
        ("colour", "unknown key", "allowed:", "workload", "profiler"),
    ),
    Case(
        "unknown-key-in-step",
        _scenario(
            "    - name: worker\n"
            "      program:\n"
            "        - run: {function: main.work, cpu_ms: 1, colour: red}\n"
        ),
        RUN,
        ("workload.threads.0.program.0.run.colour", "unknown key", "allowed:", "cpu_ms"),
    ),
    Case(
        # The key is echoed: a newline in it must not break the one-line rule.
        "unknown-key-with-newline",
        GOOD + '"bad\\nkey": 1\n',
        RUN,
        ("bad\\nkey", "unknown key", "allowed:"),
    ),
    Case(
        "unknown-key-in-machine",
        _scenario(machine="{cpus: 2, kernel_hz: 250, hyperthreads: 2}"),
        RUN,
        ("machine.hyperthreads", "unknown key", "allowed:", "cpus", "kernel_hz"),
    ),
    Case(
        "string-for-number",
        _scenario(profiler="{runtime: go1.18, rate_hz: fast}"),
        RUN,
        ("profiler.rate_hz", "valid number", "'fast'"),
    ),
    Case(
        "negative-rate",
        _scenario(profiler="{runtime: go1.18, rate_hz: -100}"),
        RUN,
        ("profiler.rate_hz", "greater than or equal to 0.01", "-100"),
    ),
    Case(
        "zero-rate",
        _scenario(profiler="{runtime: go1.18, rate_hz: 0}"),
        RUN,
        ("profiler.rate_hz", "greater than or equal to 0.01"),
    ),
    Case(
        "infinite-cpu-ms",
        _scenario(
            "    - name: worker\n"
            "      program:\n"
            "        - run: {function: main.work, cpu_ms: .inf}\n"
        ),
        RUN,
        ("workload.threads.0.program.0.run.cpu_ms", "finite number"),
    ),
    Case(
        "nan-rate",
        _scenario(profiler="{runtime: go1.18, rate_hz: .nan}"),
        RUN,
        ("profiler.rate_hz", "finite number"),
    ),
    Case(
        "zero-duration",
        GOOD.replace("duration_s: 0.05", "duration_s: 0"),
        RUN,
        ("workload.duration_s", "greater than 0"),
    ),
    Case(
        "missing-workload",
        "name: nothing\nmachine: {cpus: 2}\n",
        RUN,
        ("workload", "required field is missing"),
    ),
    Case(
        "program-without-steps",
        _scenario("    - name: worker\n      program: []\n"),
        RUN,
        ("workload.threads.0.program", "at least 1 item"),
    ),
    Case(
        "step-with-two-kinds",
        _scenario(
            "    - name: worker\n"
            "      program:\n"
            "        - run: {function: main.work, cpu_ms: 1}\n"
            "          sleep_ms: 5\n"
        ),
        RUN,
        ("workload.threads.0.program", "step 0", "exactly one of run, native, sleep_ms"),
    ),
    Case(
        "step-of-unknown-kind",
        _scenario("    - name: worker\n      program:\n        - spin_ms: 5\n"),
        RUN,
        ("workload.threads.0.program", "'spin_ms'", "allowed: run, native, sleep_ms"),
    ),
    Case(
        "timer-runtime-cannot-use",
        _scenario(profiler="{runtime: go1.17, timer: per-thread}"),
        RUN,
        ("profiler", "go1.17", "'per-thread'", "allowed: process"),
    ),
    Case(
        "perf-timer-runtime-cannot-use",
        _scenario(profiler="{runtime: go1.17, timer: perf}"),
        RUN,
        ("profiler", "go1.17", "'perf'", "allowed: process"),
    ),
    Case(
        "unknown-runtime",
        _scenario(profiler="{runtime: go1.4}"),
        RUN,
        ("profiler.runtime", "'go1.4'", "go1.17", "go1.18", "realprof", "go1.5"),
    ),
    Case(
        "unknown-kernel-hz",
        _scenario(machine="{cpus: 2, kernel_hz: 200}"),
        RUN,
        ("machine.kernel_hz", "100", "250", "300", "1000"),
    ),
    Case(
        "cpu-check-bias-wrong-length",
        _scenario(machine="{cpus: 2, cpu_check_bias: [4, 1, 1]}"),
        RUN,
        ("machine", "cpu_check_bias", "3 weights", "one per CPU (2)"),
    ),
    Case(
        "duplicate-group-names",
        _scenario(
            "    - name: worker\n"
            "      program: [{sleep_ms: 1}]\n"
            "    - name: worker\n"
            "      program: [{sleep_ms: 2}]\n"
        ),
        RUN,
        ("workload", "must be unique", "'worker'"),
    ),
    Case(
        "external-threads-under-cpython",
        _scenario(
            "    - name: main\n"
            "      program: [{run: {function: f, cpu_ms: 1}}]\n"
            "    - name: cthread\n"
            "      kind: external\n"
            "      program: [{native: {function: C.work, cpu_ms: 1}}]\n",
            profiler="{runtime: cpython}",
        ),
        RUN,
        ("cpython", "external", "'cthread'", "kind: go"),
    ),
    Case(
        "unknown-machine-profile",
        GOOD.replace("machine: {cpus: 2, kernel_hz: 250}", "machine: no-such-box-xyz"),
        RUN,
        ("machine", "'no-such-box-xyz'"),
    ),
    # -- overrides (--set) and --seed -------------------------------------------------
    Case(
        "set-unknown-field",
        GOOD,
        ("{file}", "--set", "profiler.bogus=3"),
        ("profiler.bogus", "unknown key", "allowed:", "rate_hz"),
    ),
    Case(
        "set-bad-value",
        GOOD,
        ("{file}", "--set", "profiler.rate_hz=-5"),
        ("profiler.rate_hz", "greater than or equal to 0.01", "-5"),
    ),
    Case(
        "set-path-through-a-number",
        GOOD,
        ("{file}", "--set", "workload.duration_s.x=1"),
        ("--set", "workload.duration_s.x", "not a mapping or a list"),
        names_file=False,
    ),
    Case(
        "set-list-index-out-of-range",
        GOOD,
        ("{file}", "--set", "workload.threads.3.count=2"),
        ("--set", "workload.threads.3", "out of range", "1 items"),
        names_file=False,
    ),
    Case(
        "set-list-index-not-a-number",
        GOOD,
        ("{file}", "--set", "workload.threads.first.count=2"),
        ("--set", "workload.threads.first", "out of range"),
        names_file=False,
    ),
    Case(
        "set-without-equals",
        GOOD,
        ("{file}", "--set", "profiler.rate_hz"),
        ("--set", "'profiler.rate_hz'", "dotted.path=value"),
        names_file=False,
    ),
    Case(
        "set-empty-path",
        GOOD,
        ("{file}", "--set", "profiler..rate_hz=5"),
        ("--set", "empty field name"),
        names_file=False,
    ),
    Case(
        "negative-seed",
        GOOD,
        ("{file}", "--seed", "-1"),
        ("seed", "greater than or equal to 0"),
    ),
    # -- the command line itself ------------------------------------------------------
    Case(
        "unknown-flag",
        GOOD,
        ("{file}", "--frobnicate"),
        ("unrecognized arguments", "--frobnicate", "--help"),
        names_file=False,
    ),
    Case(
        "no-scenario-argument",
        None,
        (),
        ("required", "scenario"),
        names_file=False,
    ),
    Case(
        "seed-not-an-integer",
        GOOD,
        ("{file}", "--seed", "one"),
        ("--seed", "invalid int value", "'one'"),
        names_file=False,
    ),
    Case(
        "timeline-ms-without-colon",
        GOOD,
        ("{file}", "--timeline-ms", "40"),
        ("--timeline-ms", "START:END", "'40'"),
        names_file=False,
    ),
    Case(
        "timeline-ms-not-numbers",
        GOOD,
        ("{file}", "--timeline-ms", "a:b"),
        ("--timeline-ms", "START:END", "'a:b'"),
        names_file=False,
    ),
    Case(
        "timeline-ms-backwards",
        GOOD,
        ("{file}", "--timeline-ms", "40:10"),
        ("--timeline-ms", "end must be after its start", "'40:10'"),
        names_file=False,
    ),
    Case(
        "top-zero",
        GOOD,
        ("{file}", "--top", "0"),
        ("--top", "at least 1"),
        names_file=False,
    ),
    # -- sweep ------------------------------------------------------------------------
    Case(
        "sweep-vary-without-equals",
        GOOD,
        ("sweep", "{file}", "--vary", "profiler.rate_hz"),
        ("vary", "profiler.rate_hz"),
        names_file=False,
    ),
    Case(
        "sweep-vary-without-values",
        GOOD,
        ("sweep", "{file}", "--vary", "profiler.rate_hz="),
        ("vary", "profiler.rate_hz"),
        names_file=False,
    ),
    Case(
        "sweep-vary-empty-value",
        GOOD,
        ("sweep", "{file}", "--vary", "profiler.rate_hz=100,,250"),
        ("--vary profiler.rate_hz", "empty value"),
        names_file=False,
    ),
    Case(
        "sweep-vary-value-twice",
        GOOD,
        ("sweep", "{file}", "--vary", "profiler.rate_hz=100,100"),
        ("--vary profiler.rate_hz", "listed twice"),
        names_file=False,
    ),
    Case(
        "sweep-vary-invalid-value",
        GOOD,
        ("sweep", "{file}", "--no-progress", "--vary", "profiler.rate_hz=0,100"),
        ("--vary profiler.rate_hz=0", "profiler.rate_hz", "greater than or equal to 0.01"),
        names_file=False,
    ),
    Case(
        "sweep-vary-unknown-field",
        GOOD,
        ("sweep", "{file}", "--no-progress", "--vary", "profiler.bogus=1,2"),
        ("profiler.bogus", "unknown key", "allowed:", "rate_hz"),
        names_file=False,
    ),
    Case(
        "sweep-without-vary",
        GOOD,
        ("sweep", "{file}"),
        ("--vary", "required"),
        names_file=False,
    ),
    Case(
        "sweep-bad-scenario",
        _scenario(profiler="{runtime: go1.18, rate_hz: 0}"),
        ("sweep", "{file}", "--vary", "profiler.rate_hz=100,250"),
        ("profiler.rate_hz", "greater than or equal to 0.01"),
    ),
    Case(
        "sweep-zero-jobs",
        GOOD,
        ("sweep", "{file}", "--vary", "profiler.rate_hz=100,250", "--jobs", "0"),
        ("--jobs", "at least 1"),
        names_file=False,
    ),
]

# Run again as real `python -m sim` subprocesses: one per layer that can fail (reading,
# YAML, schema, cross-field validation, overrides, argparse, sweep).
SUBPROCESS_CASES = {
    "yaml-syntax",
    "missing-file",
    "not-utf8",
    "unknown-key-in-step",
    "timer-runtime-cannot-use",
    "set-list-index-out-of-range",
    "unknown-flag",
    "sweep-vary-without-equals",
}

assert {case.id for case in CASES} >= SUBPROCESS_CASES
assert len({case.id for case in CASES}) == len(CASES)


def _prepare(case: Case, tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / f"{case.id}.yaml"
    if case.content == "<dir>":
        path.mkdir()
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif isinstance(case.content, str):
        path.write_text(case.content, encoding="utf-8")
    return path, [arg.replace("{file}", str(path)) for arg in case.args]


def _check(case: Case, path: Path, code: int | None, out: str, err: str) -> None:
    assert "Traceback" not in out + err, err
    assert code == EXIT_BAD_INPUT, f"exit status {code}; stderr: {err!r}"
    assert out == "", "bad input must not print a report"
    assert err.endswith("\n") and err.count("\n") == 1, f"not exactly one line: {err!r}"
    line = err.rstrip("\n")
    assert "error:" in line
    if case.names_file:
        assert str(path) in line, f"the file is not named: {line!r}"
    for text in case.expect:
        assert text in line, f"{text!r} missing from: {line!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_in_process(case: Case, tmp_path: Path, capsys) -> None:
    path, argv = _prepare(case, tmp_path)
    try:
        code: int | None = main(argv)
    except SystemExit as exc:  # argparse errors leave through sys.exit
        code = exc.code if isinstance(exc.code, int) else None
    captured = capsys.readouterr()
    _check(case, path, code, captured.out, captured.err)


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SUBPROCESS_CASES], ids=lambda c: c.id)
def test_bad_input_subprocess(case: Case, tmp_path: Path) -> None:
    path, argv = _prepare(case, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "sim", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
    )
    _check(case, path, proc.returncode, proc.stdout, proc.stderr)


def test_good_scenario_still_runs(tmp_path: Path, capsys) -> None:
    """The fixture scenario the bad cases are built from is itself valid."""
    path = tmp_path / "good.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert main([str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert '"samples_in_profile"' in captured.out
    assert captured.err == ""
