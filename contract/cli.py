"""What every command line of the project shares: one-line errors and exit status 2.

The contract: bad input gets one clear line naming the problem and the
allowed values, exit status 2, and no traceback or usage dump. `python -m sim`,
`python -m realprof` and its subcommands build their parsers from `OneLineParser`
(`CommandParser` where an abbreviated option must not match); a command raises
`UsageError` for bad input its parser cannot see, and the front end prints it with
`err` and exits 2. This module imports only the standard library, so `realprof record`
can use it without loading the simulator before the program it profiles.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # what a shell reports for a process ended by SIGINT (128 + 2)


class UsageError(Exception):
    """Bad input; the message is one line for the user (exit status 2)."""


def one_line(text: str) -> str:
    """Keep an error on one line even when it echoes user input with newlines."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def counted(n: int, noun: str) -> str:
    """`n` and the noun, plural unless one: messages that count what the user gave."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def error_line(message: str) -> str:
    """The line a command prints for bad input (`python -m sim` and the playground page
    print the same line for the same scenario text, from this function)."""
    return f"error: {one_line(message)}"


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} (see --help)\n")


class CommandParser(OneLineParser):
    """The one-line parser without prefix matching of long options (a record command's
    options must never swallow an abbreviation meant for the program)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def err(*lines: str) -> None:
    """Print `lines` on stderr, and nothing at all if stderr is gone: a closed or broken
    stderr (the profiled program may close it) must not turn a message into a crash."""
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
        for line in lines:
            stream.write(line + "\n")
        stream.flush()


def int_in(low: int, high: int | None) -> Callable[[str], int]:
    """An argparse `type`: an integer in [low, high] (no upper bound when high is None)."""

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


def check_writable_dir(directory: Path, what: str) -> None:
    """Fail now, before minutes of work, if `directory` cannot take a new file."""
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


def add_scenario_options(
    parser: argparse.ArgumentParser,
    *,
    seed_help: str = "override the scenario's seed",
    set_example: str = "profiler.rate_hz=250",
    out_help: str = "directory for report.json, profiles, figures",
    json_output: bool = True,
) -> None:
    """The options every command that runs a scenario file takes, spelled once:
    the scenario, ``--seed``, ``--set PATH=VALUE`` (repeatable), ``--out`` and, where the
    command prints one report, ``--json``."""
    parser.add_argument(
        "scenario", help="scenario YAML file, or a shipped scenario's name (see scenarios/)"
    )
    parser.add_argument("--seed", type=int, help=seed_help)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help=f"override a field, e.g. --set {set_example} (repeatable)",
    )
    parser.add_argument("--out", type=Path, help=out_help)
    if json_output:
        parser.add_argument("--json", action="store_true", help="print report.json to stdout")


def rate_in(high_hz: float) -> Callable[[str], float]:
    """An argparse type: a finite number of samples per CPU-second in (0, high_hz]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= high_hz):
            raise argparse.ArgumentTypeError(
                f"expected a number of samples per CPU-second in (0, {high_hz:.0f}], got {text!r}"
            )
        return value

    return parse
