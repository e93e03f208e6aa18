"""The CPU profile both worlds produce, and its three file formats.

What a CPU profile holds
------------------------
A sampling CPU profiler never measures how long a function ran. It interrupts the
program at a steady rate (``rate_hz`` times per second of CPU time), records the
interrupted thread's call stack, and counts how often each stack was seen. A
profile is therefore a table ``(stack, thread) -> count`` plus the sampling period
that turns counts into time: ``cpu time ≈ count × period``. Everything a viewer
shows (top functions, flame graphs, "Total samples = 2.5s") is derived from that
table.

How Go's runtime/pprof builds it
--------------------------------
``runtime/pprof`` turns the records the signal handler left in the profBuf ring
buffer into a gzipped ``perftools.profiles.Profile`` protobuf
(``src/runtime/pprof/proto.go``, ``profileBuilder.addCPUData`` and ``build``):

* The first record carries the rate; the builder sets ``period = 1e9 / hz``
  nanoseconds, with integer division. Our ``Profile.period_ns`` follows it.
* Each record is ``(timestamp, count, stack)``. The timestamp is *dropped*; records
  with the same stack and the same label set are added together. Time order is
  lost, which is why a pprof profile cannot tell you *when* something ran.
* Every sample gets two values, ``[count, count × period]``, described by
  ``sample_type = [samples/count, cpu/nanoseconds]``, with ``period_type =
  cpu/nanoseconds`` and ``period`` set. The CPU value is derived, not measured: a
  profile that lost half its signals reports half the CPU time.
* ``time_nanos`` is when profiling started; ``duration_nanos`` is the wall time of
  the profile writer. ``go tool pprof`` prints "Total samples = Σcpu (Σcpu ÷
  duration %)" from those two fields.
* When the ring buffer overflows, the runtime writes one overflow record with the
  number of dropped samples, and the builder turns it into a sample on a single
  made-up frame, ``runtime/pprof.lostProfileEvent``. Losses thus show up in the
  profile as a function, not as a separate counter. Samples from threads with no
  Go context that did not fit the runtime's ``extra`` buffer appear as
  ``runtime._LostExternalCode`` (under ``runtime._ExternalCode``; see
  ``src/runtime/proc.go``).
* Locations carry program counters, resolved to functions and lines, and
  mappings are read from ``/proc/self/maps``.

What this module keeps, and what it leaves out
----------------------------------------------
``Profile`` stores counts by ``(leaf-first stack, thread)``, as pprof orders
stacks, plus a count per kind of loss. It writes:

* **pprof** (the format above, field numbers from google/pprof
  ``proto/profile.proto``; rules from ``proto/README.md``). The message classes
  are built at import time from a ``FileDescriptorProto`` added to a private
  descriptor pool, so there is no protoc step and no generated ``_pb2`` module to
  match against the installed protobuf runtime. Python frames have no addresses:
  each frame is one Location with ``address = 0`` and one Line, under a single
  Mapping named ``python``. The thread is the sample label ``thread``. Lost
  samples are written the way Go writes them, as samples whose stack is a single
  synthetic frame (``LOST_FUNCTIONS``), and read back into ``Profile.lost``. Go
  writes ``_LostExternalCode`` under ``_ExternalCode``; we write one frame.
  Left out: addresses, real mappings and build ids, inlined frames, columns,
  numeric labels and any label but ``thread``, ``drop_frames``/``keep_frames``,
  ``default_sample_type``, and per-sample timestamps (dropped, as in Go).
* **folded** stacks (Brendan Gregg, brendangregg/FlameGraph ``README.md``): one
  line ``root;caller;...;leaf COUNT`` per distinct stack, root first. Folded
  text has no place for threads, files, lines or the rate: stacks of all threads
  are merged, frames are function names only, and loading assumes
  ``DEFAULT_RATE_HZ``. Names are cleaned so a line always splits back into the
  same frames: ``;`` becomes ``:``, control characters become spaces, edges are
  trimmed, and a leading ``{`` becomes ``(`` so the file never passes for JSON.
  An empty profile folds to an empty file, which ``load`` rejects like any
  empty file.
* **speedscope** JSON (jlfwong/speedscope ``src/lib/file-format-spec.ts``): one
  ``sampled`` profile per thread, stacks root first, weights in nanoseconds
  (``count × period_ns``). The format has no slot for a function's first line,
  the rate or the timestamps, so we add one object, ``"sigprofLab"``, which the
  published schema permits (it does not forbid extra properties) and speedscope
  ignores. Without it (a file from another tool) the period is inferred as the
  greatest common divisor of the weights.

All three writers are deterministic: the same ``Profile`` gives the same bytes
(sorted samples, ids in order of first use, gzip ``mtime = 0``), so written
profiles can be compared and committed as test data.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import secrets
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

__all__ = [
    "DEFAULT_RATE_HZ",
    "FORMATS",
    "LOST_FUNCTIONS",
    "SPEEDSCOPE_SCHEMA_URL",
    "Frame",
    "PprofProfile",
    "Profile",
    "ProfileFormatError",
    "format_for_path",
]


@dataclass(frozen=True, order=True)
class Frame:
    """One stack frame. Frames are compared and sorted field by field."""

    function: str
    file: str = ""
    line: int = 0  # line of the sample inside the function (0 = unknown)
    start_line: int = 0  # first line of the function (co_firstlineno), 0 = unknown


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

FORMATS = ("pprof", "folded", "speedscope")
SPEEDSCOPE_SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
_EXPORTER = "sigprof-lab"
_EXTENSION_KEY = "sigprofLab"  # our own metadata inside a speedscope file
_THREAD_LABEL = "thread"
_NS_PER_SECOND = 1_000_000_000

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


class ProfileFormatError(ValueError):
    """A file is not a profile this module can read. The message is one line and
    starts with the file's path."""


# --------------------------------------------------------------------------------------
# pprof message classes, built from a descriptor at import time.
# --------------------------------------------------------------------------------------

_F = descriptor_pb2.FieldDescriptorProto
_PPROF_PACKAGE = "perftools.profiles"

# (message, [(field name, number, type, repeated, message type)]); numbers from
# google/pprof proto/profile.proto.
_PPROF_MESSAGES: list[tuple[str, list[tuple[str, int, int, bool, str]]]] = [
    (
        "Profile",
        [
            ("sample_type", 1, _F.TYPE_MESSAGE, True, "ValueType"),
            ("sample", 2, _F.TYPE_MESSAGE, True, "Sample"),
            ("mapping", 3, _F.TYPE_MESSAGE, True, "Mapping"),
            ("location", 4, _F.TYPE_MESSAGE, True, "Location"),
            ("function", 5, _F.TYPE_MESSAGE, True, "Function"),
            ("string_table", 6, _F.TYPE_STRING, True, ""),
            ("drop_frames", 7, _F.TYPE_INT64, False, ""),
            ("keep_frames", 8, _F.TYPE_INT64, False, ""),
            ("time_nanos", 9, _F.TYPE_INT64, False, ""),
            ("duration_nanos", 10, _F.TYPE_INT64, False, ""),
            ("period_type", 11, _F.TYPE_MESSAGE, False, "ValueType"),
            ("period", 12, _F.TYPE_INT64, False, ""),
            ("comment", 13, _F.TYPE_INT64, True, ""),
            ("default_sample_type", 14, _F.TYPE_INT64, False, ""),
            ("doc_url", 15, _F.TYPE_INT64, False, ""),
        ],
    ),
    ("ValueType", [("type", 1, _F.TYPE_INT64, False, ""), ("unit", 2, _F.TYPE_INT64, False, "")]),
    (
        "Sample",
        [
            ("location_id", 1, _F.TYPE_UINT64, True, ""),
            ("value", 2, _F.TYPE_INT64, True, ""),
            ("label", 3, _F.TYPE_MESSAGE, True, "Label"),
        ],
    ),
    (
        "Label",
        [
            ("key", 1, _F.TYPE_INT64, False, ""),
            ("str", 2, _F.TYPE_INT64, False, ""),
            ("num", 3, _F.TYPE_INT64, False, ""),
            ("num_unit", 4, _F.TYPE_INT64, False, ""),
        ],
    ),
    (
        "Mapping",
        [
            ("id", 1, _F.TYPE_UINT64, False, ""),
            ("memory_start", 2, _F.TYPE_UINT64, False, ""),
            ("memory_limit", 3, _F.TYPE_UINT64, False, ""),
            ("file_offset", 4, _F.TYPE_UINT64, False, ""),
            ("filename", 5, _F.TYPE_INT64, False, ""),
            ("build_id", 6, _F.TYPE_INT64, False, ""),
            ("has_functions", 7, _F.TYPE_BOOL, False, ""),
            ("has_filenames", 8, _F.TYPE_BOOL, False, ""),
            ("has_line_numbers", 9, _F.TYPE_BOOL, False, ""),
            ("has_inline_frames", 10, _F.TYPE_BOOL, False, ""),
        ],
    ),
    (
        "Location",
        [
            ("id", 1, _F.TYPE_UINT64, False, ""),
            ("mapping_id", 2, _F.TYPE_UINT64, False, ""),
            ("address", 3, _F.TYPE_UINT64, False, ""),
            ("line", 4, _F.TYPE_MESSAGE, True, "Line"),
            ("is_folded", 5, _F.TYPE_BOOL, False, ""),
        ],
    ),
    (
        "Line",
        [
            ("function_id", 1, _F.TYPE_UINT64, False, ""),
            ("line", 2, _F.TYPE_INT64, False, ""),
            ("column", 3, _F.TYPE_INT64, False, ""),
        ],
    ),
    (
        "Function",
        [
            ("id", 1, _F.TYPE_UINT64, False, ""),
            ("name", 2, _F.TYPE_INT64, False, ""),
            ("system_name", 3, _F.TYPE_INT64, False, ""),
            ("filename", 4, _F.TYPE_INT64, False, ""),
            ("start_line", 5, _F.TYPE_INT64, False, ""),
        ],
    ),
]


def _build_pprof_classes() -> dict[str, type]:
    file_proto = descriptor_pb2.FileDescriptorProto(
        # A name of our own: the pool is private, but a distinct name keeps error
        # messages from suggesting this is google/pprof's generated file.
        name="sigprof_lab/pprof_profile.proto",
        package=_PPROF_PACKAGE,
        syntax="proto3",  # as profile.proto; makes repeated scalars packed, as Go writes them
    )
    for message_name, fields in _PPROF_MESSAGES:
        message = file_proto.message_type.add(name=message_name)
        for field_name, number, field_type, repeated, type_name in fields:
            field = message.field.add(
                name=field_name,
                number=number,
                type=field_type,
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = f".{_PPROF_PACKAGE}.{type_name}"
    # Private pool: someone else may have registered the real profile.proto in the
    # default pool, and two definitions of one message name there would clash.
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{_PPROF_PACKAGE}.{name}")
        )
        for name, _ in _PPROF_MESSAGES
    }


_PPROF = _build_pprof_classes()
PprofProfile = _PPROF["Profile"]


# --------------------------------------------------------------------------------------
# Profile
# --------------------------------------------------------------------------------------

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
        period_ns = int(_NS_PER_SECOND // rate_hz)
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
        if frames[0].function in _LOST_KIND_BY_FUNCTION:
            # Loading recognises these leaves as losses; refusing them here keeps
            # load(write(p)) equal to p.
            raise ValueError(
                f"{frames[0].function!r} is a synthetic lost-sample frame: use add_lost()"
            )
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
        """Samples per leaf function name (the "flat" column of pprof -top)."""
        counts: dict[str, int] = {}
        for (stack, _thread), count in self.samples.items():
            leaf = stack[0].function
            counts[leaf] = counts.get(leaf, 0) + count
        return counts

    def by_thread(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (_stack, thread), count in self.samples.items():
            counts[thread] = counts.get(thread, 0) + count
        return counts

    def top(self, n: int = 10) -> list[tuple[str, int, int]]:
        """``(function, flat, cum)`` rows, flat descending then name, like pprof -top.

        flat counts samples with the function as leaf; cum counts samples with the
        function anywhere on the stack, once per sample even under recursion.
        """
        flat = self.by_function()
        cum: dict[str, int] = {}
        for (stack, _thread), count in self.samples.items():
            for name in {frame.function for frame in stack}:
                cum[name] = cum.get(name, 0) + count
        rows = [(name, flat.get(name, 0), total) for name, total in cum.items()]
        rows.sort(key=lambda row: (-row[1], row[0]))
        return rows[: max(n, 0)]

    # ----- writing -----------------------------------------------------------------

    def _sorted_samples(self) -> list[tuple[tuple[Frame, ...], str, int]]:
        """Real samples, then lost ones on their synthetic frame, in a fixed order."""
        rows = [(stack, thread, count) for (stack, thread), count in sorted(self.samples.items())]
        for kind in sorted(self.lost):
            rows.append(((Frame(LOST_FUNCTIONS[kind]),), "", self.lost[kind]))
        return rows

    def to_pprof_message(self) -> Message:
        """The profile as a ``perftools.profiles.Profile`` message (not compressed)."""
        message = PprofProfile()
        strings: dict[str, int] = {}

        def intern(text: str) -> int:
            index = strings.get(text)
            if index is None:
                index = strings[text] = len(strings)
                message.string_table.append(text)
            return index

        intern("")  # pprof requires string_table[0] == ""
        message.sample_type.add(type=intern("samples"), unit=intern("count"))
        message.sample_type.add(type=intern("cpu"), unit=intern("nanoseconds"))
        message.period_type.type = intern("cpu")
        message.period_type.unit = intern("nanoseconds")
        message.period = self.period_ns
        message.time_nanos = self.start_time_ns
        message.duration_nanos = self.duration_ns
        mapping_id = 1
        message.mapping.add(
            id=mapping_id,
            filename=intern("python"),
            has_functions=True,
            has_filenames=True,
            has_line_numbers=True,
        )
        thread_key = intern(_THREAD_LABEL)

        function_ids: dict[tuple[str, str, int], int] = {}
        location_ids: dict[Frame, int] = {}

        def location_id(frame: Frame) -> int:
            loc_id = location_ids.get(frame)
            if loc_id is not None:
                return loc_id
            function_key = (frame.function, frame.file, frame.start_line)
            func_id = function_ids.get(function_key)
            if func_id is None:
                func_id = function_ids[function_key] = len(function_ids) + 1
                name = intern(frame.function)
                message.function.add(
                    id=func_id,
                    name=name,
                    system_name=name,
                    filename=intern(frame.file),
                    start_line=frame.start_line,
                )
            loc_id = location_ids[frame] = len(location_ids) + 1
            location = message.location.add(id=loc_id, mapping_id=mapping_id, address=0)
            location.line.add(function_id=func_id, line=frame.line)
            return loc_id

        for stack, thread, count in self._sorted_samples():
            sample = message.sample.add(
                location_id=[location_id(frame) for frame in stack],
                value=[count, count * self.period_ns],
            )
            if thread:
                sample.label.add(key=thread_key, str=intern(thread))
        message.comment.extend(intern(text) for text in self.comments)
        return message

    def to_pprof_bytes(self) -> bytes:
        """Gzipped pprof protobuf; the same profile always gives the same bytes."""
        raw = self.to_pprof_message().SerializeToString(deterministic=True)
        return gzip.compress(raw, mtime=0)  # mtime=0: no timestamp in the gzip header

    def to_folded(self) -> str:
        """Folded stacks, ``root;...;leaf COUNT`` per line, threads merged."""
        counts: dict[str, int] = {}
        for stack, _thread, count in self._sorted_samples():
            line = ";".join(_folded_name(frame.function) for frame in reversed(stack))
            counts[line] = counts.get(line, 0) + count
        return "".join(f"{line} {counts[line]}\n" for line in sorted(counts))

    def to_speedscope(self) -> dict:
        """The profile as a speedscope file (a JSON-ready dict)."""
        rows = self._sorted_samples()
        frames = sorted({frame for stack, _thread, _count in rows for frame in stack})
        frame_index = {frame: i for i, frame in enumerate(frames)}
        by_thread: dict[str, list[tuple[tuple[Frame, ...], int]]] = {}
        for stack, thread, count in rows:
            by_thread.setdefault(thread, []).append((stack, count))
        if not by_thread:
            by_thread[""] = []  # speedscope shows profiles[activeProfileIndex]: keep one
        profiles = []
        # Busiest thread first: speedscope opens profiles[activeProfileIndex] = 0.
        for thread in sorted(by_thread, key=lambda t: (-sum(c for _s, c in by_thread[t]), t)):
            stacks = sorted(by_thread[thread])
            weights = [count * self.period_ns for _stack, count in stacks]
            profiles.append(
                {
                    "type": "sampled",
                    "name": thread,
                    "unit": "nanoseconds",
                    "startValue": 0,
                    "endValue": sum(weights),
                    # speedscope builds its call tree from index 0: root first.
                    "samples": [[frame_index[f] for f in reversed(stack)] for stack, _ in stacks],
                    "weights": weights,
                }
            )
        shared_frames = []
        for frame in frames:
            entry: dict[str, object] = {"name": frame.function}
            if frame.file:
                entry["file"] = frame.file
            if frame.line:
                entry["line"] = frame.line
            shared_frames.append(entry)
        return {
            "$schema": SPEEDSCOPE_SCHEMA_URL,
            "exporter": _EXPORTER,
            "name": f"CPU profile, {self.rate_hz:g} Hz",
            "activeProfileIndex": 0,
            "shared": {"frames": shared_frames},
            "profiles": profiles,
            _EXTENSION_KEY: {
                "rateHz": self.rate_hz,
                "periodNs": self.period_ns,
                "startTimeNs": self.start_time_ns,
                "durationNs": self.duration_ns,
                "comments": list(self.comments),
                "frameStartLines": [frame.start_line for frame in frames],
            },
        }

    def to_bytes(self, format: str) -> bytes:
        if format == "pprof":
            return self.to_pprof_bytes()
        if format == "folded":
            return self.to_folded().encode("utf-8")
        if format == "speedscope":
            text = json.dumps(self.to_speedscope(), separators=(",", ":"), allow_nan=False)
            return (text + "\n").encode("utf-8")
        raise ValueError(f"unknown profile format {format!r}; expected one of {FORMATS}")

    def write(self, path: str | os.PathLike[str], format: str | None = None) -> None:
        """Write atomically: readers see the old file or the whole new one."""
        path = Path(path)
        data = self.to_bytes(format or format_for_path(path))
        _atomic_write(path, data)

    # ----- reading -----------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Profile:
        """Read a pprof (gzipped or raw), speedscope or folded file, by content."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ProfileFormatError(f"{path}: cannot read: {error.strerror or error}") from error
        return cls.from_bytes(data, str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> Profile:
        """Like load(), for a file already in memory; ``name`` goes in error messages."""
        try:
            return _parse(data, name)
        except ProfileFormatError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as error:
            raise ProfileFormatError(_one_line(f"{name}: malformed profile: {error}")) from error


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The format a file name asks for, from its suffix."""
    name = Path(path).name.lower()
    for suffix, format in _FORMAT_BY_SUFFIX:
        if name.endswith(suffix):
            return format
    known = ", ".join(suffix for suffix, _ in _FORMAT_BY_SUFFIX)
    raise ValueError(f"{path}: cannot tell the profile format from the name; use {known}")


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


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
_JSON_OBJECT_START = re.compile(r"\s*\{\s*[\"}]")


def _folded_name(function: str) -> str:
    # ";" separates frames and a line ends the sample, so neither may appear in a
    # name; trimmed edges keep "name COUNT" splitting at the right space; a leading
    # "{" would let the file pass for JSON (see _parse).
    name = _CONTROL_CHARS.sub(" ", function.replace(";", ":")).strip()
    if name.startswith("{"):
        name = "(" + name[1:]
    return name or "?"


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
    text = _as_folded_text(data)
    if data.lstrip()[:1] in (b"{", b"["):
        # A folded stack may start with "[" too (a root named "[unknown]"), but a
        # folded file is never valid JSON: try JSON first, then folded. Not for
        # '{"' or '{}', the start of every JSON object: a speedscope file cut short
        # could look like a folded line ('..."name":"CPU profile, 100').
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            if text is not None and not _JSON_OBJECT_START.match(text):
                return _parse_folded(text, fail)
            if isinstance(error, UnicodeDecodeError):
                raise fail(f"JSON text is not UTF-8 ({error.reason})") from error
            raise fail(f"invalid or truncated JSON: {error.msg} at line {error.lineno}") from error
        return _parse_speedscope(document, fail)
    if text is not None:
        return _parse_folded(text, fail)
    return _parse_pprof(data, fail)


# ----- pprof -------------------------------------------------------------------------


def _parse_pprof(data: bytes, fail) -> Profile:
    message = PprofProfile()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise fail(f"not a pprof, speedscope or folded profile (protobuf: {error})") from error
    strings = list(message.string_table)
    if not strings or strings[0] != "":
        raise fail("not a pprof profile, or truncated: string_table[0] is not empty")

    def string(index: int, what: str) -> str:
        if not 0 <= index < len(strings):
            raise fail(f"{what} refers to string {index}, past the string table (truncated?)")
        return strings[index]

    sample_types = [
        (string(vt.type, "sample_type"), string(vt.unit, "sample_type"))
        for vt in message.sample_type
    ]
    if not sample_types:
        raise fail("pprof profile has no sample_type (truncated?)")
    period_ns = message.period
    if period_ns <= 0:
        raise fail("pprof profile has no sampling period (truncated, or not a CPU profile?)")
    if message.HasField("period_type"):
        period_unit = string(message.period_type.unit, "period_type")
        if period_unit != "nanoseconds":
            raise fail(f"period unit is {period_unit!r}, not nanoseconds: not a CPU profile")
    if ("samples", "count") in sample_types:
        value_index, divisor = sample_types.index(("samples", "count")), 1
    elif ("cpu", "nanoseconds") in sample_types:
        value_index, divisor = sample_types.index(("cpu", "nanoseconds")), period_ns
    else:
        raise fail(f"no samples/count or cpu/nanoseconds sample type in {sample_types}")

    functions = {}
    for function in message.function:
        if function.id == 0 or function.id in functions:
            raise fail(f"function id {function.id} is zero or repeated")
        functions[function.id] = (
            string(function.name, "function name"),
            string(function.filename, "function filename"),
            function.start_line,
        )
    locations: dict[int, tuple[Frame, ...]] = {}
    for location in message.location:
        if location.id == 0 or location.id in locations:
            raise fail(f"location id {location.id} is zero or repeated")
        frames = []
        # Several lines mean inlining: the last line is the outermost caller, so
        # the list is already leaf first.
        for line in location.line:
            if line.function_id not in functions:
                raise fail(f"location {location.id} names missing function {line.function_id}")
            name, file, start_line = functions[line.function_id]
            # Go writes a nameless function for a PC it could not symbolise (C code
            # without runtime.SetCgoTraceback): treat it as unsymbolised, or every
            # such address would merge into one frame named "".
            if name:
                frames.append(Frame(name, file, line.line, start_line))
        if not frames:  # unsymbolised: all we have is the address
            frames.append(Frame(f"0x{location.address:x}"))
        locations[location.id] = tuple(frames)

    profile = Profile(_NS_PER_SECOND / period_ns)
    profile.period_ns = period_ns  # the file's period is exact; 1e9 // rate might not be
    profile.start_time_ns = max(message.time_nanos, 0)
    profile.duration_ns = max(message.duration_nanos, 0)
    profile.comments = [string(index, "comment") for index in message.comment]
    for sample in message.sample:
        if len(sample.value) != len(sample_types):
            raise fail(f"a sample has {len(sample.value)} values for {len(sample_types)} types")
        stack: list[Frame] = []
        for loc_id in sample.location_id:
            if loc_id not in locations:
                raise fail(f"a sample names missing location {loc_id} (truncated?)")
            stack.extend(locations[loc_id])
        count = sample.value[value_index] // divisor
        if count < 0:
            raise fail(f"negative sample value {sample.value[value_index]}")
        thread = ""
        for label in sample.label:
            if string(label.key, "label key") == _THREAD_LABEL:
                thread = string(label.str, "label value")
        _add_loaded(profile, stack, thread, count)
    return profile


def _add_loaded(profile: Profile, stack: Sequence[Frame], thread: str, count: int) -> None:
    """Add a sample read from a file, turning synthetic lost frames back into losses."""
    if count <= 0:
        return
    if not stack:
        profile.add_lost("unknown_code", count)
        return
    kind = _LOST_KIND_BY_FUNCTION.get(stack[0].function)
    if kind is not None:
        profile.add_lost(kind, count)
    else:
        profile.add(stack, thread, count)


# ----- folded ------------------------------------------------------------------------

_FOLDED_LINE = re.compile(r"(.*\S) ([0-9]+)")


def _as_folded_text(data: bytes) -> str | None:
    """The text if every nonblank line looks like ``stack COUNT``, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # split("\n"), not splitlines(): the writer only guarantees that names hold no
    # "\n"; other line separators (U+2028, \x85) may legitimately stay in a name.
    first = next((line for line in text.split("\n") if line.strip()), "")
    return text if _FOLDED_LINE.fullmatch(first.rstrip("\r")) else None


def _parse_folded(text: str, fail) -> Profile:
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
        _add_loaded(profile, stack, "", int(match.group(2)))
    return profile


# ----- speedscope --------------------------------------------------------------------

_NS_PER_UNIT = {
    "nanoseconds": 1,
    "microseconds": 1_000,
    "milliseconds": 1_000_000,
    "seconds": _NS_PER_SECOND,
}


def _parse_speedscope(document: object, fail) -> Profile:
    if not isinstance(document, dict) or document.get("$schema") != SPEEDSCOPE_SCHEMA_URL:
        raise fail(f"JSON but not a speedscope file ($schema is not {SPEEDSCOPE_SCHEMA_URL})")

    def require(container: object, key: str, kind: type | tuple[type, ...], where: str):
        if not isinstance(container, dict) or key not in container:
            raise fail(f"speedscope {where} has no {key!r}")
        value = container[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fail(f"speedscope {where}.{key} has the wrong type {type(value).__name__}")
        return value

    shared = require(document, "shared", dict, "file")
    raw_frames = require(shared, "frames", list, "shared")
    raw_profiles = require(document, "profiles", list, "file")
    extension = document.get(_EXTENSION_KEY)
    if extension is not None and not isinstance(extension, dict):
        raise fail(f"speedscope {_EXTENSION_KEY} is not an object")
    extension = extension or {}
    start_lines = extension.get("frameStartLines", [0] * len(raw_frames))
    if (
        not isinstance(start_lines, list)
        or len(start_lines) != len(raw_frames)
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in start_lines)
    ):
        raise fail(f"speedscope {_EXTENSION_KEY}.frameStartLines does not match shared.frames")

    frames = []
    for i, raw in enumerate(raw_frames):
        where = f"shared.frames[{i}]"
        name = require(raw, "name", str, where)
        file = require(raw, "file", str, where) if "file" in raw else ""
        line = require(raw, "line", (int, float), where) if "line" in raw else 0
        frames.append(Frame(name, file, int(line), int(start_lines[i])))

    # Every sample as (stack, thread, weight in ns) or, for unit "none", a count.
    timed: list[tuple[list[Frame], str, int]] = []
    counted: list[tuple[list[Frame], str, int]] = []
    for p, raw in enumerate(raw_profiles):
        where = f"profiles[{p}]"
        kind = require(raw, "type", str, where)
        if kind != "sampled":
            raise fail(f"speedscope {where} is {kind!r}; only 'sampled' profiles can be read")
        thread = require(raw, "name", str, where)
        unit = require(raw, "unit", str, where)
        require(raw, "startValue", (int, float), where)
        require(raw, "endValue", (int, float), where)
        stacks = require(raw, "samples", list, where)
        weights = require(raw, "weights", list, where)
        if len(stacks) != len(weights):
            raise fail(f"speedscope {where} has {len(stacks)} samples but {len(weights)} weights")
        if unit != "none" and unit not in _NS_PER_UNIT:
            raise fail(f"speedscope {where} has unit {unit!r}, not a time or a count")
        for s, (indices, weight) in enumerate(zip(stacks, weights, strict=True)):
            if not isinstance(indices, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(frames)
                for i in indices
            ):
                raise fail(f"speedscope {where}.samples[{s}] has a bad frame index")
            if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
                raise fail(f"speedscope {where}.weights[{s}] is not a number >= 0")
            stack = [frames[i] for i in reversed(indices)]  # the file is root first
            if unit == "none":
                counted.append((stack, thread, round(weight)))
            else:
                timed.append((stack, thread, round(weight * _NS_PER_UNIT[unit])))

    def whole(key: str, default: int) -> int:
        value = extension.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise fail(f"speedscope {_EXTENSION_KEY}.{key} is not a whole number >= 0")
        return value

    # Another tool's file has no periodNs: take the largest period that divides
    # every weight (gcd() of nothing is 0, meaning "unknown").
    period_ns = whole("periodNs", math.gcd(*(w for _s, _t, w in timed)))
    rate_hz = extension.get("rateHz")
    if rate_hz is None:
        rate_hz = _NS_PER_SECOND / period_ns if period_ns else DEFAULT_RATE_HZ
    if not isinstance(rate_hz, int | float) or isinstance(rate_hz, bool) or not rate_hz > 0:
        raise fail(f"speedscope {_EXTENSION_KEY}.rateHz is not a positive number")
    comments = extension.get("comments", [])
    if not isinstance(comments, list) or not all(isinstance(c, str) for c in comments):
        raise fail(f"speedscope {_EXTENSION_KEY}.comments is not a list of strings")

    profile = Profile(rate_hz)
    if period_ns:
        profile.period_ns = period_ns  # exact, where 1e9 // rate might round
    profile.start_time_ns = whole("startTimeNs", 0)
    profile.duration_ns = whole("durationNs", 0)
    profile.comments = list(comments)
    period = profile.period_ns
    for stack, thread, weight_ns in timed:
        # Integer rounding: weights above 2**53 ns would lose digits in a float.
        _add_loaded(profile, stack, thread, (weight_ns + period // 2) // period)
    for stack, thread, count in counted:
        _add_loaded(profile, stack, thread, count)
    return profile
