"""The pprof format: a gzipped ``perftools.profiles.Profile`` protobuf, written and read.

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

What we write and read
----------------------
Field numbers from google/pprof ``proto/profile.proto``; rules from
``proto/README.md``. The message classes are built at import time from a
``FileDescriptorProto`` added to a private descriptor pool, so there is no protoc
step and no generated ``_pb2`` module to match against the installed protobuf
runtime. Python frames have no addresses: each frame is one Location with
``address = 0`` and one Line, under a single Mapping named ``python``. The thread is
the sample label ``thread``. A Function's ``name`` is ``Frame.name`` (module-qualified for
Python frames, ``pkg.mod.func``: pprof aggregates by name, so this is what keeps two
``main``s apart in ``go tool pprof -top``) and its ``system_name`` is ``Frame.function``
(the code's own ``co_qualname``); the reader splits the module off again when
``name`` ends in ``"." + system_name``, and Go's files, whose two are equal, read with
no module. Lost samples are written the way Go writes them, as
samples whose stack is a single synthetic frame (``LOST_FUNCTIONS``), and read back
into ``Profile.lost``. Go writes ``_LostExternalCode`` under ``_ExternalCode``; we
write one frame. Left out: addresses, real mappings and build ids, inlined frames,
columns, numeric labels and any label but ``thread``, ``drop_frames``/``keep_frames``,
``default_sample_type``, and per-sample timestamps (dropped, as in Go).

The writer is deterministic (sorted samples, ids in order of first use, gzip
``mtime = 0``). The reader takes the protobuf gzipped or raw, once
``contract.profile_files`` has told it from the other formats by its content.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from contract.profile import NS_PER_SECOND, Frame, Profile, add_loaded

__all__ = ["PprofProfile", "parse_pprof", "to_pprof_bytes", "to_pprof_message"]

_THREAD_LABEL = "thread"

# --------------------------------------------------------------------------------------
# message classes, built from a descriptor at import time
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
# writing
# --------------------------------------------------------------------------------------


def to_pprof_message(profile: Profile) -> Message:
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
    message.period = profile.period_ns
    message.time_nanos = profile.start_time_ns
    message.duration_nanos = profile.duration_ns
    mapping_id = 1
    message.mapping.add(
        id=mapping_id,
        filename=intern("python"),
        has_functions=True,
        has_filenames=True,
        has_line_numbers=True,
    )
    thread_key = intern(_THREAD_LABEL)

    function_ids: dict[tuple[str, str, str, int], int] = {}
    location_ids: dict[Frame, int] = {}

    def location_id(frame: Frame) -> int:
        loc_id = location_ids.get(frame)
        if loc_id is not None:
            return loc_id
        function_key = (frame.module, frame.function, frame.file, frame.start_line)
        func_id = function_ids.get(function_key)
        if func_id is None:
            func_id = function_ids[function_key] = len(function_ids) + 1
            message.function.add(
                id=func_id,
                # name is the identity pprof aggregates by: module-qualified;
                # system_name the code's own name (the reader splits them again).
                name=intern(frame.name),
                system_name=intern(frame.function),
                filename=intern(frame.file),
                start_line=frame.start_line,
            )
        loc_id = location_ids[frame] = len(location_ids) + 1
        location = message.location.add(id=loc_id, mapping_id=mapping_id, address=0)
        location.line.add(function_id=func_id, line=frame.line)
        return loc_id

    for stack, thread, count in profile.sorted_samples():
        sample = message.sample.add(
            location_id=[location_id(frame) for frame in stack],
            value=[count, count * profile.period_ns],
        )
        if thread:
            sample.label.add(key=thread_key, str=intern(thread))
    message.comment.extend(intern(text) for text in profile.comments)
    return message


def to_pprof_bytes(profile: Profile) -> bytes:
    """Gzipped pprof protobuf; the same profile always gives the same bytes."""
    raw = to_pprof_message(profile).SerializeToString(deterministic=True)
    return gzip.compress(raw, mtime=0)  # mtime=0: no timestamp in the gzip header


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def parse_pprof(data: bytes, fail: Callable[[str], Exception]) -> Profile:
    """The profile in a pprof protobuf (not gzipped); ``fail(what)`` builds the error to raise."""
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
        name = string(function.name, "function name")
        system_name = string(function.system_name, "function system_name")
        # Ours: name = "module.system_name" (see the writer). Go's: equal, no module.
        module = ""
        if system_name and name.endswith("." + system_name):
            module = name[: -len(system_name) - 1]
        functions[function.id] = (
            name[len(module) + 1 :] if module else name,
            string(function.filename, "function filename"),
            function.start_line,
            module,
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
            name, file, start_line, module = functions[line.function_id]
            # Go writes a nameless function for a PC it could not symbolise (C code
            # without runtime.SetCgoTraceback): treat it as unsymbolised, or every
            # such address would merge into one frame named "".
            if name:
                frames.append(Frame(name, file, line.line, start_line, module))
        if not frames:  # unsymbolised: all we have is the address
            frames.append(Frame(f"0x{location.address:x}"))
        locations[location.id] = tuple(frames)

    profile = Profile(NS_PER_SECOND / period_ns)
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
        add_loaded(profile, stack, thread, count)
    return profile
