"""What every command line of the project shares: one-line errors and exit status 2.

The contract: bad input gets one clear line naming the problem and the
allowed values, exit status 2, and no traceback or usage dump. `python -m sim`,
`python -m realprof` and its subcommands build their parsers from `OneLineParser`. This
module imports only the standard library, so `realprof record` can use it without loading
the simulator before the program it profiles.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_BAD_INPUT = 2


def one_line(text: str) -> str:
    """Keep an error on one line even when it echoes user input with newlines."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} (see --help)\n")
