"""What every command line of the project shares: one-line errors and exit status 2.

The contract: bad input gets one clear line naming the problem and the
allowed values, exit status 2, and no traceback or usage dump. `python -m sim`,
`python -m realprof` and its subcommands build their parsers from `OneLineParser`. This
module imports only the standard library, so `realprof record` can use it without loading
the simulator before the program it profiles.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2


def one_line(text: str) -> str:
    """Keep an error on one line even when it echoes user input with newlines."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} (see --help)\n")


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
    parser.add_argument("scenario", help="scenario YAML file (see scenarios/)")
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
