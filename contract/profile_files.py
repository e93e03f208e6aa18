"""Profile files: the format a name asks for, writing atomically, reading by content.

The three formats (``contract.pprof``, ``contract.folded``, ``contract.speedscope``)
each hold a writer and a reader; this module is the one place that chooses between
them. Writing picks the format from ``format`` or the file name's suffix
(``format_for_path``); reading ignores the name and tells the format from the bytes:
gzip magic or protobuf is pprof, a JSON document is speedscope, ``stack COUNT`` lines
are folded. Every writer is deterministic: the same ``Profile`` gives the same bytes,
so written profiles can be compared and committed as test data.

contract.pprof (and with it protobuf) is imported when a pprof file is written or read,
not with this module: realprof imports this module before the program it profiles
starts, and protobuf's import puts some 3,500 objects on that program's heap. CPython
runs a full collection when the objects that survived since the last one reach a quarter
of those it kept (Modules/gcmodule.c, long_lived_pending), so the heap a program starts
with moves where its collections fall: pyflakes on a 576,000-line file, run plainly,
did a 4.6 s collection in its checking phase; with 10,000 more objects on the heap at
the start, none there (benchmarks/gc_schedule.py). `realprof record --duration` loads
it before the program all the same: its write at the deadline runs beside the program,
and importing protobuf then, against a busy main thread for the GIL, took 0.6-0.7 s.

A file that is not a profile raises ``contract.profile.ProfileFormatError`` with one
line that starts with the file's name, whatever went wrong inside the reader.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import zlib
from pathlib import Path

from contract.folded import as_folded_text, parse_folded, to_folded
from contract.profile import Profile, ProfileFormatError
from contract.speedscope import parse_speedscope, to_speedscope_bytes

__all__ = [
    "FORMATS",
    "format_for_path",
    "profile_from_bytes",
    "profile_to_bytes",
    "read_profile",
    "write_profile",
]

FORMATS = ("pprof", "folded", "speedscope")

# Longest suffixes first, so ".speedscope.json" is not read as plain ".json".
_FORMAT_BY_SUFFIX = (
    (".speedscope.json", "speedscope"),
    (".pb.gz", "pprof"),
    (".pprof", "pprof"),
    (".pb", "pprof"),
    (".folded", "folded"),
    (".txt", "folded"),
    (".json", "speedscope"),
)


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The format a file name asks for, from its suffix."""
    name = Path(path).name.lower()
    for suffix, format in _FORMAT_BY_SUFFIX:
        if name.endswith(suffix):
            return format
    known = ", ".join(suffix for suffix, _ in _FORMAT_BY_SUFFIX)
    raise ValueError(f"{path}: cannot tell the profile format from the name; use {known}")


# ----- writing -----------------------------------------------------------------------


def profile_to_bytes(profile: Profile, format: str) -> bytes:
    """The file ``format`` makes of ``profile``; the same profile always gives the same bytes."""
    if format == "pprof":
        from contract.pprof import to_pprof_bytes  # imported here: see the module docstring

        return to_pprof_bytes(profile)
    if format == "folded":
        return to_folded(profile).encode("utf-8")
    if format == "speedscope":
        return to_speedscope_bytes(profile)
    raise ValueError(f"unknown profile format {format!r}; expected one of {FORMATS}")


def write_profile(
    profile: Profile, path: str | os.PathLike[str], format: str | None = None
) -> None:
    """Write atomically: readers see the old file or the whole new one. ``format``
    defaults to the one the name asks for."""
    path = Path(path)
    data = profile_to_bytes(profile, format or format_for_path(path))
    _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes) -> None:
    # Same directory, so os.replace is a rename on one file system. O_EXCL with a
    # random name avoids clobbering a concurrent writer's temp file; mode 0o666
    # lets the umask decide the final permissions, as a plain open() would.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            # Without fsync a crash right after the rename can leave an empty file.
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# ----- reading -----------------------------------------------------------------------


def read_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a pprof (gzipped or raw), speedscope or folded file, by content."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ProfileFormatError(f"{path}: cannot read: {error.strerror or error}") from error
    return profile_from_bytes(data, str(path))


def profile_from_bytes(data: bytes, name: str = "<bytes>") -> Profile:
    """Like read_profile(), for a file already in memory; ``name`` goes in error messages."""
    try:
        return _parse(data, name)
    except ProfileFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
        raise ProfileFormatError(_one_line(f"{name}: malformed profile: {error}")) from error


_JSON_OBJECT_START = re.compile(r"\s*\{\s*[\"}]")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _parse(data: bytes, path: object) -> Profile:
    def fail(what: str) -> ProfileFormatError:
        return ProfileFormatError(_one_line(f"{path}: {what}"))

    if not data.strip():
        raise fail("empty file, not a profile")
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise fail(f"truncated or corrupt gzip data ({error})") from error
        if not data.strip():
            raise fail("gzip data is empty, not a profile")
    text = as_folded_text(data)
    if data.lstrip()[:1] in (b"{", b"["):
        # A folded stack may start with "[" too (a root named "[unknown]"), but a
        # folded file is never valid JSON: try JSON first, then folded. Not for
        # '{"' or '{}', the start of every JSON object: a speedscope file cut short
        # could look like a folded line ('..."name":"CPU profile, 100').
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if text is not None and not _JSON_OBJECT_START.match(text):
                return parse_folded(text, fail)
            if isinstance(error, UnicodeDecodeError):
                raise fail(f"JSON text is not UTF-8 ({error.reason})") from error
            raise fail(f"invalid or truncated JSON: {error.msg} at line {error.lineno}") from error
        return parse_speedscope(document, fail)
    if text is not None:
        return parse_folded(text, fail)
    from contract.pprof import parse_pprof  # imported here: see the module docstring

    return parse_pprof(data, fail)
