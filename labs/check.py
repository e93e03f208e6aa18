"""`python -m labs.check N [args]`: is the learner's answer to lab N right, and why?

Each lab folder has a `check.py` with `USAGE` (one line) and `check(args) -> (ok,
message)`; it raises `labs.common.Usage` for malformed arguments. Exit status: 0 PASS,
1 FAIL (the message says what to look at), 2 bad usage, reported on one line of stderr
(no traceback). `-h`/`--help` after N prints the lab's usage and exits 0.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from labs import lab_dirs
from labs.common import Usage

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def load_checker(folder: Path) -> ModuleType:
    """The lab folder's check.py (folders like 02-ceiling are not importable names)."""
    name = f"labs._check_{folder.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, folder / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numbers_of(labs: dict[int, Path]) -> str:
    return ", ".join(map(str, sorted(labs)))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    labs = lab_dirs()
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m labs.check N [args]  (N is a lab: {numbers_of(labs)})")
        return EXIT_PASS
    if not argv or not argv[0].isdigit() or int(argv[0]) not in labs:
        print(
            f"usage: python -m labs.check N [args]  (N is a lab: {numbers_of(labs)})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    lab = int(argv[0])
    checker = load_checker(labs[lab])
    usage = f"usage: python -m labs.check {lab} {checker.USAGE}"
    if any(arg in ("-h", "--help") for arg in argv[1:]):
        print(usage)
        return EXIT_PASS
    try:
        ok, message = checker.check(argv[1:])
    except Usage as exc:
        print(f"error: {exc}; {usage}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{'PASS' if ok else 'FAIL'} (lab {lab}): {message}")
    return EXIT_PASS if ok else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
