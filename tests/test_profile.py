"""Tests for contract.profile and its file formats (contract.pprof, .folded, .speedscope,
contract.profile_files): the API, the three formats, and loading bad files."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tempfile
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.folded import _folded_name
from contract.pprof import PprofProfile, to_pprof_bytes
from contract.profile import LOST_FUNCTIONS, Frame, Profile, ProfileFormatError
from contract.profile_files import (
    format_for_path,
    profile_from_bytes,
    profile_to_bytes,
    read_profile,
    write_profile,
)
from contract.speedscope import SPEEDSCOPE_SCHEMA_URL, to_speedscope

SUFFIX = {"pprof": ".pb.gz", "folded": ".folded", "speedscope": ".speedscope.json"}

# --------------------------------------------------------------------------------------
# fixtures and strategies
# --------------------------------------------------------------------------------------

MAIN = Frame("main", "app.py", 10, 1)
WORK = Frame("work", "app.py", 20, 15)
SPIN = Frame("spin", "lib.py", 5, 3)


def small_profile() -> Profile:
    """300 samples at 100 Hz over 3 s: 'work' is the top function (200 flat)."""
    profile = Profile(100, start_time_ns=1_700_000_000_000_000_000, duration_ns=3 * 10**9)
    profile.comments.append("made by test_profile")
    profile.add([WORK, MAIN], "MainThread", 200)
    profile.add([SPIN, WORK, MAIN], "worker-1", 100)
    profile.add_lost("overflow", 7)
    return profile


def roundtrip(profile: Profile, format: str) -> Profile:
    # A fresh directory per call: Hypothesis runs many examples in one test call,
    # which rules out the function-scoped tmp_path fixture.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"profile{SUFFIX[format]}"
        write_profile(profile, path)
        return read_profile(path)


_LOST_NAMES = set(LOST_FUNCTIONS.values())
# Any text, as long as it does not name (or fold to the name of) a lost-sample frame.
function_names = st.text(min_size=1, max_size=12).filter(
    lambda name: name not in _LOST_NAMES and _folded_name(name) not in _LOST_NAMES
)
frames = st.builds(
    Frame,
    function=function_names,
    file=st.text(max_size=10),
    line=st.integers(0, 10**6),
    start_line=st.integers(0, 10**6),
    # Python frames' module; no lost-frame name can be spelled with these letters.
    module=st.one_of(st.just(""), st.text("abmod_<>.", max_size=6)),
)
stacks = st.lists(frames, min_size=1, max_size=6)
threads = st.text(max_size=8)
counts = st.integers(1, 10**6)
rates_hz = st.one_of(
    st.sampled_from([100, 250, 1000, 97, 19.5]),
    st.floats(min_value=0.5, max_value=1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def profiles(draw, names=function_names, min_samples: int = 0) -> Profile:
    named_frames = st.builds(Frame, function=names, file=st.text(max_size=10))
    profile = Profile(
        draw(rates_hz),
        start_time_ns=draw(st.integers(0, 2**62)),
        duration_ns=draw(st.integers(0, 2**62)),
        comments=draw(st.lists(st.text(max_size=10), max_size=3)),
    )
    entries = draw(
        st.lists(
            st.tuples(st.lists(named_frames, min_size=1, max_size=6), threads, counts),
            min_size=min_samples,
            max_size=8,
        )
    )
    for stack, thread, count in entries:
        profile.add(stack, thread, count)
    for kind, count in draw(
        st.dictionaries(st.sampled_from(sorted(LOST_FUNCTIONS)), counts)
    ).items():
        profile.add_lost(kind, count)
    return profile


@st.composite
def full_profiles(draw) -> Profile:
    """Profiles whose frames use every field (line and start_line too)."""
    profile = draw(profiles())
    for stack, thread, count in draw(st.lists(st.tuples(stacks, threads, counts), max_size=6)):
        profile.add(stack, thread, count)
    return profile


fast_io = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------
# the Profile API
# --------------------------------------------------------------------------------------


def test_period_follows_go_integer_division():
    assert Profile(100).period_ns == 10_000_000
    assert Profile(97).period_ns == 1_000_000_000 // 97
    assert Profile(19.5).period_ns == 51_282_051


@pytest.mark.parametrize("rate_hz", [0, -1, float("nan"), float("inf"), 2e9, True])
def test_bad_rate_rejected(rate_hz):
    with pytest.raises(ValueError):
        Profile(rate_hz)


def test_add_accumulates_and_summaries():
    profile = small_profile()
    profile.add([WORK, MAIN], "MainThread", 5)
    profile.add([WORK, MAIN], "MainThread", 0)  # a zero count is a no-op
    assert profile.samples[((WORK, MAIN), "MainThread")] == 205
    assert profile.total_samples == 305
    assert profile.total_lost == 7
    assert profile.lost == {"overflow": 7}
    assert profile.by_function() == {"work": 205, "spin": 100}
    assert profile.by_thread() == {"MainThread": 205, "worker-1": 100}
    assert profile.top() == [("work", 205, 305), ("spin", 100, 100), ("main", 0, 305)]
    assert profile.top(1) == [("work", 205, 305)]


def test_top_counts_recursion_once_and_breaks_ties_by_name():
    profile = Profile(100)
    rec = Frame("rec")
    profile.add([rec, rec, rec, MAIN], "t", 3)
    profile.add([Frame("b")], "t", 2)
    profile.add([Frame("a")], "t", 2)
    assert profile.top() == [("rec", 3, 3), ("a", 2, 2), ("b", 2, 2), ("main", 0, 3)]


def test_add_rejects_bad_input():
    profile = Profile(100)
    with pytest.raises(ValueError, match="add_lost"):
        profile.add([], "t")
    with pytest.raises(TypeError):
        profile.add(["main"], "t")  # type: ignore[list-item]
    with pytest.raises(ValueError):
        profile.add([MAIN], "t", -1)
    with pytest.raises(ValueError, match="add_lost"):
        profile.add([Frame(LOST_FUNCTIONS["overflow"])], "t")
    with pytest.raises(ValueError, match="unknown lost kind"):
        profile.add_lost("dropped", 1)
    assert profile.samples == {} and profile.lost == {}


def test_merge():
    first = small_profile()
    second = Profile(100, start_time_ns=5, duration_ns=10**9, comments=["other"])
    second.add([WORK, MAIN], "MainThread", 1)
    second.add([MAIN], "t2", 4)
    second.add_lost("extra", 2)
    second.add_lost("overflow", 1)
    first.merge(second)
    assert first.samples[((WORK, MAIN), "MainThread")] == 201
    assert first.samples[((MAIN,), "t2")] == 4
    assert first.lost == {"overflow": 8, "extra": 2}
    assert first.start_time_ns == 5  # earliest nonzero, as google/pprof's Merge
    assert first.duration_ns == 4 * 10**9  # durations add up
    assert first.comments == ["made by test_profile", "other"]
    with pytest.raises(ValueError, match="period"):
        first.merge(Profile(250))


# --------------------------------------------------------------------------------------
# round trips (Hypothesis)
# --------------------------------------------------------------------------------------


@fast_io
@given(full_profiles())
def test_pprof_roundtrip(profile):
    loaded = roundtrip(profile, "pprof")
    assert loaded.samples == profile.samples
    assert loaded.lost == profile.lost
    assert loaded.period_ns == profile.period_ns
    assert (loaded.start_time_ns, loaded.duration_ns) == (
        profile.start_time_ns,
        profile.duration_ns,
    )
    assert loaded.comments == profile.comments


@fast_io
@given(full_profiles())
def test_speedscope_roundtrip(profile):
    loaded = roundtrip(profile, "speedscope")
    assert loaded.samples == profile.samples
    assert loaded.lost == profile.lost
    assert (loaded.rate_hz, loaded.period_ns) == (profile.rate_hz, profile.period_ns)
    assert (loaded.start_time_ns, loaded.duration_ns) == (
        profile.start_time_ns,
        profile.duration_ns,
    )
    assert loaded.comments == profile.comments


@fast_io
@given(profiles(min_samples=1))
def test_folded_roundtrip_keeps_totals(profile):
    # Folded drops threads, files, lines and the rate; the totals survive.
    loaded = roundtrip(profile, "folded")
    assert loaded.total_samples == profile.total_samples
    assert loaded.lost == profile.lost


def _function_stacks(profile: Profile) -> dict[tuple[str, ...], int]:
    merged: dict[tuple[str, ...], int] = {}
    for (stack, _thread), count in profile.samples.items():
        key = tuple(frame.name for frame in stack)
        merged[key] = merged.get(key, 0) + count
    return merged


@fast_io
@given(profiles(names=st.text("abcXYZ_.<>0123456789", min_size=1, max_size=10)))
def test_folded_roundtrip_keeps_stacks_of_clean_names(profile):
    loaded = roundtrip(profile, "folded") if profile.total_samples + profile.total_lost else None
    if loaded is None:
        return  # an empty profile folds to an empty file, which is not loadable
    assert _function_stacks(loaded) == _function_stacks(profile)
    assert set(loaded.by_thread()) <= {""}  # threads are merged


@settings(deadline=None, max_examples=30)
@given(full_profiles(), st.sampled_from(sorted(SUFFIX)))
def test_writes_are_byte_identical(profile, format):
    # Rebuild the same profile with samples added in the opposite order.
    rebuilt = Profile(
        profile.rate_hz,
        start_time_ns=profile.start_time_ns,
        duration_ns=profile.duration_ns,
        comments=profile.comments,
    )
    for (stack, thread), count in reversed(list(profile.samples.items())):
        rebuilt.add(stack, thread, count)
    for kind, count in reversed(list(profile.lost.items())):
        rebuilt.add_lost(kind, count)
    with tempfile.TemporaryDirectory() as directory:
        paths = [Path(directory) / f"{name}{SUFFIX[format]}" for name in ("a", "b", "c")]
        write_profile(profile, paths[0])
        write_profile(profile, paths[1])
        write_profile(rebuilt, paths[2])
        first, second, third = (path.read_bytes() for path in paths)
    assert first == second == third


# --------------------------------------------------------------------------------------
# what each format contains
# --------------------------------------------------------------------------------------


def test_pprof_contents():
    profile = small_profile()
    raw = gzip.decompress(to_pprof_bytes(profile))
    message = PprofProfile()
    message.ParseFromString(raw)
    strings = list(message.string_table)

    def text(index):
        return strings[index]

    assert strings[0] == ""
    assert [(text(v.type), text(v.unit)) for v in message.sample_type] == [
        ("samples", "count"),
        ("cpu", "nanoseconds"),
    ]
    assert (text(message.period_type.type), text(message.period_type.unit)) == (
        "cpu",
        "nanoseconds",
    )
    assert message.period == 10_000_000
    assert message.time_nanos == profile.start_time_ns
    assert message.duration_nanos == profile.duration_ns
    assert [text(i) for i in message.comment] == ["made by test_profile"]

    (mapping,) = message.mapping
    assert mapping.id == 1 and text(mapping.filename) == "python"
    assert mapping.has_functions and mapping.has_filenames and mapping.has_line_numbers

    functions = {f.id: f for f in message.function}
    locations = {loc.id: loc for loc in message.location}
    assert 0 not in functions and 0 not in locations
    assert len(functions) == len(message.function) and len(locations) == len(message.location)
    for location in message.location:
        assert location.address == 0 and location.mapping_id == 1 and len(location.line) == 1

    def leaf_first(sample):
        result = []
        for loc_id in sample.location_id:
            line = locations[loc_id].line[0]
            function = functions[line.function_id]
            assert function.system_name == function.name
            result.append(
                Frame(text(function.name), text(function.filename), line.line, function.start_line)
            )
        return tuple(result)

    seen = {}
    for sample in message.sample:
        labels = {text(label.key): text(label.str) for label in sample.label}
        count, cpu_ns = sample.value
        assert cpu_ns == count * message.period
        seen[(leaf_first(sample), labels.get("thread"))] = count
    assert seen == {
        ((WORK, MAIN), "MainThread"): 200,
        ((SPIN, WORK, MAIN), "worker-1"): 100,
        # Lost samples: one synthetic frame, no thread label, as Go writes them.
        ((Frame("runtime/pprof.lostProfileEvent"),), None): 7,
    }


def test_pprof_raw_protobuf_loads(tmp_path):
    path = tmp_path / "raw.pprof"
    path.write_bytes(gzip.decompress(to_pprof_bytes(small_profile())))
    assert read_profile(path).samples == small_profile().samples


def _go_style_profile() -> PprofProfile:
    """A profile shaped like Go's: cpu-only values, an inlined location, no thread."""
    message = PprofProfile()
    message.string_table.extend(["", "cpu", "nanoseconds", "inner", "outer", "x.go", "lbl", "v"])
    message.sample_type.add(type=1, unit=2)
    message.period_type.type, message.period_type.unit, message.period = 1, 2, 10_000_000
    message.function.add(id=1, name=3, filename=5, start_line=3)
    message.function.add(id=2, name=4, filename=5, start_line=9)
    location = message.location.add(id=7, address=0x401000)
    location.line.add(function_id=1, line=4)  # inlined into ...
    location.line.add(function_id=2, line=11)  # ... its caller, listed last
    message.location.add(id=8, address=0x402000)  # unsymbolised
    sample = message.sample.add(location_id=[7, 8], value=[30_000_000])
    sample.label.add(key=6, str=7)  # labels other than "thread" are ignored
    return message


def test_go_style_pprof_loads(tmp_path):
    path = tmp_path / "go.pb.gz"
    path.write_bytes(gzip.compress(_go_style_profile().SerializeToString()))
    loaded = read_profile(path)
    stack = (Frame("inner", "x.go", 4, 3), Frame("outer", "x.go", 11, 9), Frame("0x402000"))
    assert loaded.samples == {(stack, ""): 3}
    assert loaded.rate_hz == 100


def test_folded_contents(tmp_path):
    profile = small_profile()
    profile.add([Frame("odd;name\nwith  \t"), Frame(" leaf 12 ")], "t", 4)
    path = tmp_path / "p.txt"
    write_profile(profile, path)
    lines = path.read_text().splitlines()
    assert lines == sorted(lines)
    assert lines == [
        "leaf 12;odd:name with 4",
        "main;work 200",  # root first
        "main;work;spin 100",
        "runtime/pprof.lostProfileEvent 7",
    ]


SPEEDSCOPE_SCHEMA = {
    # Written from jlfwong/speedscope src/lib/file-format-spec.ts: every field the
    # TypeScript types make required, for the 'sampled' profiles we write.
    "type": "object",
    "required": ["$schema", "shared", "profiles"],
    "properties": {
        "$schema": {"const": SPEEDSCOPE_SCHEMA_URL},
        "name": {"type": "string"},
        "exporter": {"type": "string"},
        "activeProfileIndex": {"type": "integer", "minimum": 0},
        "shared": {
            "type": "object",
            "required": ["frames"],
            "properties": {
                "frames": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "file": {"type": "string"},
                            "line": {"type": "number"},
                            "col": {"type": "number"},
                        },
                    },
                }
            },
        },
        "profiles": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "type", "name", "unit", "startValue", "endValue", "samples", "weights",
                ],
                "properties": {
                    "type": {"const": "sampled"},
                    "name": {"type": "string"},
                    "unit": {
                        "enum": [
                            "none", "nanoseconds", "microseconds", "milliseconds", "seconds",
                            "bytes",
                        ]
                    },
                    "startValue": {"type": "number"},
                    "endValue": {"type": "number"},
                    "samples": {
                        "type": "array",
                        "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    },
                    "weights": {"type": "array", "items": {"type": "number", "minimum": 0}},
                },
            },
        },
    },
}  # fmt: skip


def test_speedscope_contents(tmp_path):
    profile = small_profile()
    path = tmp_path / "p.json"
    write_profile(profile, path)
    document = json.loads(path.read_text())
    jsonschema.validate(document, SPEEDSCOPE_SCHEMA)
    assert document["exporter"] == "sigprof-lab"
    assert document["activeProfileIndex"] == 0
    assert document["name"]
    frames = document["shared"]["frames"]
    by_name = {p["name"]: p for p in document["profiles"]}
    # One profile per thread, busiest first; lost samples carry thread "".
    assert [p["name"] for p in document["profiles"]] == ["MainThread", "worker-1", ""]
    for p in document["profiles"]:
        assert p["unit"] == "nanoseconds" and p["startValue"] == 0
        assert len(p["samples"]) == len(p["weights"])
        assert p["endValue"] == sum(p["weights"])
        for stack in p["samples"]:
            assert all(0 <= i < len(frames) for i in stack)
    (stack,) = by_name["worker-1"]["samples"]
    assert [frames[i]["name"] for i in stack] == ["main", "work", "spin"]  # root first
    assert frames[stack[-1]] == {"name": "spin", "file": "lib.py", "line": 5}
    assert by_name["worker-1"]["weights"] == [100 * profile.period_ns]


def test_speedscope_empty_profile_still_has_a_profile(tmp_path):
    path = tmp_path / "empty.speedscope.json"
    write_profile(Profile(100), path)
    jsonschema.validate(json.loads(path.read_text()), SPEEDSCOPE_SCHEMA)
    assert read_profile(path).total_samples == 0


def test_speedscope_from_another_tool(tmp_path):
    # No sigprofLab block, weights in milliseconds: the period is inferred.
    document = {
        "$schema": SPEEDSCOPE_SCHEMA_URL,
        "shared": {"frames": [{"name": "main"}, {"name": "f", "file": "f.py", "line": 3}]},
        "profiles": [
            {
                "type": "sampled", "name": "T", "unit": "milliseconds", "startValue": 0,
                "endValue": 50, "samples": [[0, 1], [0]], "weights": [30, 20],
            }
        ],
    }  # fmt: skip
    path = tmp_path / "other.json"
    path.write_text(json.dumps(document))
    loaded = read_profile(path)
    assert loaded.period_ns == 10_000_000 and loaded.rate_hz == 100
    assert loaded.samples == {
        ((Frame("f", "f.py", 3), Frame("main")), "T"): 3,
        ((Frame("main"),), "T"): 2,
    }


# --------------------------------------------------------------------------------------
# file handling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "format"),
    [
        ("cpu.pb.gz", "pprof"),
        ("cpu.pprof", "pprof"),
        ("cpu.folded", "folded"),
        ("cpu.txt", "folded"),
        ("cpu.json", "speedscope"),
        ("cpu.speedscope.json", "speedscope"),
        ("CPU.PB.GZ", "pprof"),
    ],
)
def test_format_from_suffix(name, format):
    assert format_for_path(name) == format


def test_unknown_suffix_or_format(tmp_path):
    with pytest.raises(ValueError, match="cannot tell"):
        write_profile(small_profile(), tmp_path / "cpu.bin")
    with pytest.raises(ValueError, match="unknown profile format"):
        write_profile(small_profile(), tmp_path / "cpu.bin", format="svg")


def test_explicit_format_overrides_suffix(tmp_path):
    path = tmp_path / "cpu.bin"
    write_profile(small_profile(), path, format="speedscope")
    assert json.loads(path.read_text())["exporter"] == "sigprof-lab"


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "cpu.pb.gz"
    path.write_bytes(b"old")
    write_profile(small_profile(), path)
    assert read_profile(path).total_samples == 300
    assert sorted(os.listdir(tmp_path)) == ["cpu.pb.gz"]
    with pytest.raises(FileNotFoundError):
        write_profile(small_profile(), tmp_path / "missing" / "cpu.pb.gz")
    assert sorted(os.listdir(tmp_path)) == ["cpu.pb.gz"]


def _assert_rejected(path: Path, fragment: str = "") -> None:
    with pytest.raises(ProfileFormatError) as caught:
        read_profile(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    assert fragment.lower() in message.lower(), message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (gzip.compress(b"", mtime=0), "empty"),
        (b"hello world", ""),
        (bytes(range(256)) * 4, ""),
        (b"\x00" * 64, ""),
        (gzip.compress(bytes(range(256)), mtime=0), ""),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
        (b'{"profiles": []}', "speedscope"),
        (b"[1, 2, 3]", "speedscope"),
        (b'{"$schema": "' + SPEEDSCOPE_SCHEMA_URL.encode() + b'"}', "shared"),
        (b"main;work 3\nnot a folded line\n", "line 2"),
    ],
)
def test_garbage_is_rejected(tmp_path, content, fragment):
    path = tmp_path / "bad.prof"
    path.write_bytes(content)
    _assert_rejected(path, fragment)


def test_missing_file_is_rejected(tmp_path):
    _assert_rejected(tmp_path / "nope.pb.gz", "cannot read")


def test_evented_speedscope_is_rejected(tmp_path):
    document = to_speedscope(small_profile())
    document["profiles"][0] = {"type": "evented", "name": "x", "unit": "none",
                               "startValue": 0, "endValue": 0, "events": []}  # fmt: skip
    path = tmp_path / "evented.json"
    path.write_text(json.dumps(document))
    _assert_rejected(path, "evented")


@pytest.mark.parametrize("format", ["pprof", "raw-pprof", "speedscope"])
def test_every_truncation_is_rejected(tmp_path, format):
    profile = small_profile()
    profile.comments.clear()  # a raw protobuf cut just before its comments still parses
    if format == "raw-pprof":
        data = gzip.decompress(to_pprof_bytes(profile))
    else:
        data = profile_to_bytes(profile, format).rstrip()  # dropping the last newline loses nothing
    path = tmp_path / "cut.prof"
    for size in range(len(data)):
        path.write_bytes(data[:size])
        _assert_rejected(path)


_VALID_FILES = [profile_to_bytes(small_profile(), format) for format in SUFFIX]


@settings(deadline=None, max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=200),
        # Valid files with a few bytes overwritten, inserted or cut off.
        st.tuples(
            st.sampled_from(_VALID_FILES),
            st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=3)), max_size=3),
            st.integers(0, 2000),
        ).map(
            lambda args: _mutate(*args),
        ),
    )
)
def test_corrupt_input_raises_only_profile_format_error(data):
    try:
        profile_from_bytes(data, "corrupt.prof")
    except ProfileFormatError as error:
        assert str(error).startswith("corrupt.prof: ") and "\n" not in str(error)


def _mutate(data: bytes, edits: list[tuple[int, bytes]], cut_from_end: int) -> bytes:
    buffer = bytearray(data)
    for offset, replacement in edits:
        position = offset % (len(buffer) + 1)
        buffer[position : position + 1] = replacement
    return bytes(buffer[: max(len(buffer) - cut_from_end, 0)])


def test_truncated_folded_line_is_rejected(tmp_path):
    path = tmp_path / "cut.folded"
    path.write_text("main;work 200\nmain;work;sp")
    _assert_rejected(path, "line 2")


# --------------------------------------------------------------------------------------
# the real viewer
# --------------------------------------------------------------------------------------


def test_go_tool_pprof_reads_it(tmp_path, require_tool):
    go = require_tool("go", "apt-get install golang-go")
    path = tmp_path / "cpu.pb.gz"
    write_profile(small_profile(), path)
    env = dict(os.environ, PPROF_TMPDIR=str(tmp_path), HOME=str(tmp_path))

    def pprof(*args: str) -> str:
        result = subprocess.run(
            [go, "tool", "pprof", *args, str(path)],
            capture_output=True, text=True, timeout=300, env=env, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    top = pprof("-top")
    # 307 samples (300 + 7 lost) at a 10 ms period over a 3 s duration.
    assert "Duration: 3s, Total samples = 3070ms (102.33%)" in top
    rows = top.split("flat  flat%   sum%        cum   cum%\n", 1)[1].splitlines()
    assert rows[0].split()[-1] == "work"
    assert rows[0].split()[0] == "2000ms"
    assert any(row.split()[-1] == "runtime/pprof.lostProfileEvent" for row in rows)
    raw = pprof("-raw")
    assert "thread:[worker-1]" in raw and "thread:[MainThread]" in raw


def test_require_tool_skips_or_fails(require_tool, monkeypatch):
    assert require_tool("sh", "apt-get install dash")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install nothing"):
        require_tool("no-such-tool-for-sigprof-lab", "apt-get install nothing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install nothing"):
        require_tool("no-such-tool-for-sigprof-lab", "apt-get install nothing")


def test_an_empty_copy_keeps_times_comments_and_the_exact_period() -> None:
    profile = Profile(97, start_time_ns=5, duration_ns=7, comments=["c"])
    profile.period_ns = 10_309_000  # as read from a file, not 1e9 // 97
    profile.add([Frame("f", "f.py", 1, 1)], "main", 3)
    copy = profile.empty_copy()
    assert (copy.rate_hz, copy.period_ns, copy.start_time_ns, copy.duration_ns) == (
        97,
        10_309_000,
        5,
        7,
    )
    assert (copy.comments, copy.samples, copy.lost) == (["c"], {}, {})
    rated = profile.empty_copy(250)
    assert (rated.rate_hz, rated.period_ns) == (250, 4_000_000)
