"""Folded stacks (Brendan Gregg's format), written and read.

brendangregg/FlameGraph ``README.md``: one line ``root;caller;...;leaf COUNT`` per
distinct stack, root first. Folded text has no place for threads, files, lines or the
rate: stacks of all threads are merged, frames are function names only (``Frame.name``,
module-qualified for Python, so two ``main``s in different files stay two frames; a
name read back is the whole ``Frame.function``), and reading assumes
``DEFAULT_RATE_HZ``. Names are cleaned so a line always splits back into the same
frames: ``;`` becomes ``:``, control characters become spaces, edges are trimmed, and a
leading ``{`` becomes ``(`` so the file never passes for JSON. An empty profile
folds to an empty file, which reading rejects like any empty file. The writer is
deterministic (lines sorted).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from contract.profile import DEFAULT_RATE_HZ, Frame, Profile, add_loaded

__all__ = ["as_folded_text", "parse_folded", "to_folded"]

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


def _folded_name(function: str) -> str:
    # ";" separates frames and a line ends the sample, so neither may appear in a
    # name; trimmed edges keep "name COUNT" splitting at the right space; a leading
    # "{" would let the file pass for JSON (see contract.profile_files.profile_from_bytes).
    name = _CONTROL_CHARS.sub(" ", function.replace(";", ":")).strip()
    if name.startswith("{"):
        name = "(" + name[1:]
    return name or "?"


def to_folded(profile: Profile) -> str:
    """Folded stacks, ``root;...;leaf COUNT`` per line, threads merged."""
    counts: dict[str, int] = {}
    for stack, _thread, count in profile.sorted_samples():
        line = ";".join(_folded_name(frame.name) for frame in reversed(stack))
        counts[line] = counts.get(line, 0) + count
    return "".join(f"{line} {counts[line]}\n" for line in sorted(counts))


_FOLDED_LINE = re.compile(r"(.*\S) ([0-9]+)")


def as_folded_text(data: bytes) -> str | None:
    """The text if its first nonblank line looks like ``stack COUNT``, else None: the
    cheap test that sends a file to the folded reader."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # split("\n"), not splitlines(): the writer only guarantees that names hold no
    # "\n"; other line separators (U+2028, \x85) may legitimately stay in a name.
    first = next((line for line in text.split("\n") if line.strip()), "")
    return text if _FOLDED_LINE.fullmatch(first.rstrip("\r")) else None


def parse_folded(text: str, fail: Callable[[str], Exception]) -> Profile:
    """The profile in folded ``text``; ``fail(what)`` builds the error to raise."""
    profile = Profile(DEFAULT_RATE_HZ)
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            continue
        match = _FOLDED_LINE.fullmatch(line)
        if match is None:
            raise fail(f"line {number} is not 'frame;frame;... COUNT' (truncated?)")
        names = match.group(1).split(";")
        if any(not name for name in names):
            raise fail(f"line {number} has an empty frame name")
        # Folded is root first; Profile is leaf first.
        stack = [Frame(name) for name in reversed(names)]
        add_loaded(profile, stack, "", int(match.group(2)))
    return profile
