"""The CPU profile both worlds produce: the ``Profile`` type, without its file formats.

What a CPU profile holds
------------------------
A sampling CPU profiler never measures how long a function ran. It interrupts the
program at a steady rate (``rate_hz`` times per second of CPU time), records the
interrupted thread's call stack, and counts how often each stack was seen. A
profile is therefore a table ``(stack, thread) -> count`` plus the sampling period
that turns counts into time: ``cpu time ≈ count × period``. Everything a viewer
shows (top functions, flame graphs, "Total samples = 2.5s") is derived from that
table.

What this module keeps
----------------------
``Profile`` stores counts by ``(leaf-first stack, thread)``, as pprof orders stacks,
plus a count per kind of loss, and the period in whole nanoseconds as Go's
``runtime/pprof`` computes it (``1e9 // hz``, ``src/runtime/pprof/proto.go``). A lost
sample sits, in every file format, on one synthetic frame named as Go names it
(``LOST_FUNCTIONS``); ``add_loaded`` turns such a frame back into a loss when a file
is read, so reading what was written gives the same profile.

The formats live beside this module, each reader next to its writer:
``contract.pprof`` (protobuf), ``contract.folded``, ``contract.speedscope``;
``contract.profile_files`` picks one by file name or content and writes files
atomically. This module imports only the standard library, so the model core can
build a profile without protobuf installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_RATE_HZ",
    "LOST_FUNCTIONS",
    "NS_PER_SECOND",
    "Frame",
    "Profile",
    "ProfileFormatError",
    "add_loaded",
]


@dataclass(frozen=True, order=True)
class Frame:
    """One stack frame. Frames are compared and sorted field by field.

    ``function`` is the name the code gives itself (Python's ``co_qualname``, or a Go
    name such as ``main.compute``); ``module`` qualifies it where that name alone is
    not unique (a Python frame's module, ``pkg.mod``; empty for the simulator's and
    Go's frames, whose names are package-qualified already). ``name`` joins the two:
    it is the function's identity in every summary and format, as Go's
    package-qualified name is in pprof.
    """

    function: str
    file: str = ""
    line: int = 0  # line of the sample inside the function (0 = unknown)
    start_line: int = 0  # first line of the function (co_firstlineno), 0 = unknown
    module: str = ""  # qualifier of function, "" = none (see the class docstring)

    @property
    def name(self) -> str:
        """``module.function``, or ``function`` when there is no module."""
        return f"{self.module}.{self.function}" if self.module else self.function


# Kind of loss -> name of the single synthetic frame its samples sit on. The
# first two are the names Go's own profiles use, so a reader of a Go profile and
# of ours sees the same thing; "unknown_code" is for a sample whose stack could
# not be read at all (Go's closest analogue is runtime._ExternalCode).
LOST_FUNCTIONS: dict[str, str] = {
    "overflow": "runtime/pprof.lostProfileEvent",
    "extra": "runtime._LostExternalCode",
    "unknown_code": "[unknown code]",
}
_LOST_KIND_BY_FUNCTION = {name: kind for kind, name in LOST_FUNCTIONS.items()}

# Go's default rate (runtime/pprof.StartCPUProfile); used when a file does not say.
DEFAULT_RATE_HZ = 100.0
NS_PER_SECOND = 1_000_000_000


class ProfileFormatError(ValueError):
    """A file is not a profile the readers (``contract.profile_files``) can read. The
    message is one line and starts with the file's path."""


SampleKey = tuple[tuple[Frame, ...], str]


class Profile:
    """Sample counts by (leaf-first stack, thread), plus lost samples by kind."""

    def __init__(
        self,
        rate_hz: float,
        *,
        start_time_ns: int = 0,
        duration_ns: int = 0,
        comments: list[str] | None = None,
    ) -> None:
        numeric = isinstance(rate_hz, int | float) and not isinstance(rate_hz, bool)
        if not (numeric and math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive finite number, got {rate_hz!r}")
        period_ns = int(NS_PER_SECOND // rate_hz)
        if period_ns < 1:
            raise ValueError(f"rate_hz {rate_hz} is above 1e9: the period would be under 1 ns")
        if start_time_ns < 0 or duration_ns < 0:
            raise ValueError("start_time_ns and duration_ns must be >= 0")
        self.rate_hz: float = rate_hz
        # Go's convention (proto.go): integer nanoseconds, 1e9 // hz. Every CPU
        # value written is count * period_ns, so it must be fixed per profile.
        self.period_ns: int = period_ns
        self.start_time_ns: int = int(start_time_ns)
        self.duration_ns: int = int(duration_ns)
        self.comments: list[str] = list(comments or [])
        self.samples: dict[SampleKey, int] = {}
        self.lost: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"Profile(rate_hz={self.rate_hz}, samples={self.total_samples}, "
            f"lost={self.total_lost}, stacks={len(self.samples)})"
        )

    def empty_copy(self, rate_hz: float | None = None) -> Profile:
        """A profile with this one's rate (or `rate_hz`), times and comments, no samples:
        what a filter or a rewrite of the samples starts from. The period is kept exactly
        (a profile read from a file may carry one that `1e9 // rate_hz` would not give)."""
        copy = Profile(
            self.rate_hz if rate_hz is None else rate_hz,
            start_time_ns=self.start_time_ns,
            duration_ns=self.duration_ns,
            comments=self.comments,
        )
        if rate_hz is None:
            copy.period_ns = self.period_ns
        return copy

    # ----- filling -----------------------------------------------------------------

    def add(self, stack: Sequence[Frame], thread: str, count: int = 1) -> None:
        """Count ``count`` samples of ``stack`` (leaf first) on ``thread``."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        frames = tuple(stack)
        if not frames:
            # pprof would show an empty stack as nothing at all, and folded cannot
            # write one; a sample without a readable stack is a loss of its own.
            raise ValueError("empty stack: record it with add_lost('unknown_code', count)")
        for frame in frames:
            if not isinstance(frame, Frame):
                raise TypeError(f"stack items must be Frame, got {type(frame).__name__}")
        if frames[0].name in _LOST_KIND_BY_FUNCTION:
            # Loading recognises these leaves as losses; refusing them here keeps
            # a written and read p equal to p.
            raise ValueError(f"{frames[0].name!r} is a synthetic lost-sample frame: use add_lost()")
        if count == 0:
            return
        key = (frames, str(thread))
        self.samples[key] = self.samples.get(key, 0) + int(count)

    def add_lost(self, kind: str, count: int) -> None:
        """Count ``count`` samples lost for reason ``kind`` (a key of LOST_FUNCTIONS)."""
        if kind not in LOST_FUNCTIONS:
            raise ValueError(
                f"unknown lost kind {kind!r}; expected one of {sorted(LOST_FUNCTIONS)}"
            )
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if count:
            self.lost[kind] = self.lost.get(kind, 0) + int(count)

    def merge(self, other: Profile) -> None:
        """Add ``other``'s samples and losses to this profile.

        As in google/pprof's ``profile.Merge``, durations add up and the earliest
        nonzero start time wins. Comments are appended, skipping ones already
        present. Unlike pprof, the periods must be equal: CPU time is derived from
        counts with one period per profile.
        """
        if other.period_ns != self.period_ns:
            raise ValueError(
                f"cannot merge profiles with periods {self.period_ns} ns and {other.period_ns} ns"
            )
        for key, count in other.samples.items():
            self.samples[key] = self.samples.get(key, 0) + count
        for kind, count in other.lost.items():
            self.lost[kind] = self.lost.get(kind, 0) + count
        starts = [t for t in (self.start_time_ns, other.start_time_ns) if t]
        self.start_time_ns = min(starts) if starts else 0
        self.duration_ns += other.duration_ns
        self.comments.extend(c for c in other.comments if c not in self.comments)

    # ----- summaries (real samples only; losses are in .lost) ---------------------

    @property
    def total_samples(self) -> int:
        return sum(self.samples.values())

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values())

    def by_function(self) -> dict[str, int]:
        """Samples per leaf function (``Frame.name``; the "flat" column of pprof -top)."""
        counts: dict[str, int] = {}
        for (stack, _thread), count in self.samples.items():
            leaf = stack[0].name
            counts[leaf] = counts.get(leaf, 0) + count
        return counts

    def by_thread(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (_stack, thread), count in self.samples.items():
            counts[thread] = counts.get(thread, 0) + count
        return counts

    def top(self, n: int = 10) -> list[tuple[str, int, int]]:
        """``(function, flat, cum)`` rows, flat descending then name, like pprof -top;
        functions are told apart by ``Frame.name``, as pprof tells them by name.

        flat counts samples with the function as leaf; cum counts samples with the
        function anywhere on the stack, once per sample even under recursion.
        """
        flat = self.by_function()
        cum: dict[str, int] = {}
        for (stack, _thread), count in self.samples.items():
            for name in {frame.name for frame in stack}:
                cum[name] = cum.get(name, 0) + count
        rows = [(name, flat.get(name, 0), total) for name, total in cum.items()]
        rows.sort(key=lambda row: (-row[1], row[0]))
        return rows[: max(n, 0)]

    # ----- for the writers ---------------------------------------------------------

    def sorted_samples(self) -> list[tuple[tuple[Frame, ...], str, int]]:
        """Real samples, then lost ones on their synthetic frame, in a fixed order."""
        rows = [(stack, thread, count) for (stack, thread), count in sorted(self.samples.items())]
        for kind in sorted(self.lost):
            rows.append(((Frame(LOST_FUNCTIONS[kind]),), "", self.lost[kind]))
        return rows


def add_loaded(profile: Profile, stack: Sequence[Frame], thread: str, count: int) -> None:
    """Add a sample read from a file, turning synthetic lost frames back into losses."""
    if count <= 0:
        return
    if not stack:
        profile.add_lost("unknown_code", count)
        return
    kind = _LOST_KIND_BY_FUNCTION.get(stack[0].name)
    if kind is not None:
        profile.add_lost(kind, count)
    else:
        profile.add(stack, thread, count)
