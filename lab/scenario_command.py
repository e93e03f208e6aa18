"""`python -m realprof scenario`: run a scenario's workload for real and report it.

`main(argv)` is the whole command: it reads the scenario file (with `--set` and `--seed`),
refuses what the real world cannot run (`lab.real_settings`) before it creates anything,
checks that `--out` can take files before the run rather than after it, runs the
workload under the real sampler (`lab.workload.run_scenario`), prints the report as
text or JSON, and writes report.json, the profile in every format and the funnel
figure into `--out` (`figures.outputs.write_outputs`, the writer `python -m sim` uses).

Bad input ends with one line on stderr, `python -m realprof scenario: error: ...`, and
exit status 2; argparse's own exits (`--help`, a bad flag) are left to the caller, as
for every command of `python -m realprof`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from contract.cli import EXIT_BAD_INPUT, OneLineParser, add_scenario_options
from contract.scenario import ScenarioError
from contract.scenario_file import load_scenario
from figures.outputs import write_outputs
from lab.real_settings import RealWorldError, real_settings
from lab.workload import run_scenario

PROG = "python -m realprof scenario"


class UsageError(Exception):
    """Bad input; the message is one line for the user (exit status 2)."""


def _err(*lines: str) -> None:
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
        for line in lines:
            stream.write(line + "\n")
        stream.flush()


def _int_in(low: int, high: int | None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {text!r}")
        return value

    return parse


def _check_writable_dir(directory: Path, what: str) -> None:
    """Fail now, before minutes of profiling, if `directory` cannot take a new file."""
    if not directory.exists():
        raise UsageError(f"{what}: directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise UsageError(f"{what}: {str(directory)!r} is not a directory")
    # A real file, not os.access: root passes every permission check but not a
    # read-only mount or a full disk.
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".realprof-probe-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{what}: cannot write in {str(directory)!r}: {exc.strerror or exc}"
        ) from None


def main(argv: list[str]) -> int:
    """Run the command; 0, or 2 after a one-line error on stderr."""
    try:
        return _scenario(argv)
    except UsageError as exc:
        _err(f"{PROG}: error: {exc}")
        return EXIT_BAD_INPUT


def _scenario(argv: list[str]) -> int:
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Run a scenario's workload for real on this machine under realprof and report "
            "it like `python -m sim` (world: real)."
        ),
        allow_abbrev=False,
    )
    add_scenario_options(
        parser,
        seed_help="override the scenario's seed (recorded only)",
        set_example="workload.duration_s=3",
    )
    parser.add_argument("--top", type=_int_in(1, None), default=10, help="rows per table")
    args = parser.parse_args(argv)

    try:
        scenario = load_scenario(args.scenario, args.overrides, args.seed)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    try:
        real_settings(scenario, args.scenario)  # refuse before creating anything
    except RealWorldError as exc:
        raise UsageError(str(exc)) from None
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a directory")
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot create: {exc.strerror or exc}") from None
        _check_writable_dir(args.out, f"--out {args.out}")
    try:
        result = run_scenario(scenario, args.scenario, progress=lambda line: _err(line))
    except RealWorldError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        sys.stdout.write(result.report.to_json())
    else:
        sys.stdout.write(result.report.to_text(top=args.top))
    sys.stdout.flush()
    if args.out is not None:
        written = write_outputs(result, args.out, warn=_err)
        _err(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0
