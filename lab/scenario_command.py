"""`python -m realprof scenario`: run a scenario's workload for real and report it.

`main(argv)` is the whole command: it reads the scenario file (with `--set` and `--seed`),
refuses what the real world cannot run (`lab.real_settings`) before it creates anything,
checks that `--out` can take files before the run rather than after it, runs the
workload under the real sampler (`lab.workload.run_scenario`), prints the report as
text or JSON, and writes report.json, the profile in every format and the funnel
figure into `--out` (`figures.outputs.write_outputs`, the writer `python -m sim` uses).
With `--python PATH` the scenario is read and checked here, then the same command runs under
that interpreter (`lab.interpreters.run_under`): a free-threaded `python3.14t`, say, for
a scenario with `profiler.free_threaded: true`; its output and exit status are this
command's.

Bad input ends with one line on stderr, `python -m realprof scenario: error: ...`, and
exit status 2; argparse's own exits (`--help`, a bad flag) are left to the caller, as
for every command of `python -m realprof`.
"""

from __future__ import annotations

import sys

from contract.cli import (
    EXIT_BAD_INPUT,
    CommandParser,
    UsageError,
    add_scenario_options,
    check_writable_dir,
    err,
    int_in,
)
from contract.scenario import ScenarioError
from contract.scenario_file import load_scenario
from figures.outputs import write_outputs
from lab.interpreters import InterpreterError, run_under
from lab.real_settings import RealWorldError, real_settings
from lab.workload import run_scenario

PROG = "python -m realprof scenario"


def main(argv: list[str]) -> int:
    """Run the command; 0, or 2 after a one-line error on stderr."""
    try:
        return _scenario(argv)
    except UsageError as exc:
        err(f"{PROG}: error: {exc}")
        return EXIT_BAD_INPUT


def _scenario(argv: list[str]) -> int:
    parser = CommandParser(
        prog=PROG,
        description=(
            "Run a scenario's workload for real on this machine under realprof and report "
            "it like `python -m sim` (world: real)."
        ),
    )
    add_scenario_options(
        parser,
        seed_help="override the scenario's seed (recorded only)",
        set_example="workload.duration_s=3",
    )
    parser.add_argument("--top", type=int_in(1, None), default=10, help="rows per table")
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="run the workload under this Python (e.g. a free-threaded python3.14t with "
        "this checkout installed) instead of this one",
    )
    args = parser.parse_args(argv)

    try:
        scenario = load_scenario(args.scenario, args.overrides, args.seed)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    if args.python is not None:
        try:
            return run_under(args.python, ["scenario", *_without_python(argv)])
        except InterpreterError as exc:
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
        check_writable_dir(args.out, f"--out {args.out}")
    try:
        result = run_scenario(scenario, args.scenario, progress=lambda line: err(line))
    except RealWorldError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        sys.stdout.write(result.report.to_json())
    else:
        sys.stdout.write(result.report.to_text(top=args.top))
    sys.stdout.flush()
    if args.out is not None:
        written = write_outputs(result, args.out, warn=err)
        err(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


def _without_python(argv: list[str]) -> list[str]:
    """The arguments with `--python PATH` (or `--python=PATH`) taken out."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--python":
            skip = True
        elif not arg.startswith("--python="):
            out.append(arg)
    return out
