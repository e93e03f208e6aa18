"""speedscope JSON files, written and read.

jlfwong/speedscope ``src/lib/file-format-spec.ts``: one ``sampled`` profile per thread,
stacks root first, weights in nanoseconds (``count × period_ns``). The format has no
slot for a function's first line or module, the rate or the timestamps, so we add one object,
``"sigprofLab"``, which the published schema permits (it does not forbid extra
properties) and speedscope ignores. Without it (a file from another tool) the period is
inferred as the greatest common divisor of the weights. A frame's ``name`` is
``Frame.name`` (module-qualified, so same-named functions stay apart in speedscope);
``frameModules``, written only when some frame has a module, lets the reader split it.
The writer is deterministic (frames and samples sorted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from contract.profile import DEFAULT_RATE_HZ, NS_PER_SECOND, Frame, Profile, add_loaded

__all__ = ["SPEEDSCOPE_SCHEMA_URL", "parse_speedscope", "to_speedscope", "to_speedscope_bytes"]

SPEEDSCOPE_SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
_EXPORTER = "sigprof-lab"
_EXTENSION_KEY = "sigprofLab"  # our own metadata inside a speedscope file


def to_speedscope(profile: Profile) -> dict:
    """The profile as a speedscope file (a JSON-ready dict)."""
    rows = profile.sorted_samples()
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
        weights = [count * profile.period_ns for _stack, count in stacks]
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
        entry: dict[str, object] = {"name": frame.name}
        if frame.file:
            entry["file"] = frame.file
        if frame.line:
            entry["line"] = frame.line
        shared_frames.append(entry)
    document: dict = {
        "$schema": SPEEDSCOPE_SCHEMA_URL,
        "exporter": _EXPORTER,
        "name": f"CPU profile, {profile.rate_hz:g} Hz",
        "activeProfileIndex": 0,
        "shared": {"frames": shared_frames},
        "profiles": profiles,
        _EXTENSION_KEY: {
            "rateHz": profile.rate_hz,
            "periodNs": profile.period_ns,
            "startTimeNs": profile.start_time_ns,
            "durationNs": profile.duration_ns,
            "comments": list(profile.comments),
            "frameStartLines": [frame.start_line for frame in frames],
        },
    }
    if any(frame.module for frame in frames):  # absent for the simulator's profiles
        document[_EXTENSION_KEY]["frameModules"] = [frame.module for frame in frames]
    return document


def to_speedscope_bytes(profile: Profile) -> bytes:
    """The speedscope file as compact UTF-8 JSON with one trailing newline."""
    text = json.dumps(to_speedscope(profile), separators=(",", ":"), allow_nan=False)
    return (text + "\n").encode("utf-8")


_NS_PER_UNIT = {
    "nanoseconds": 1,
    "microseconds": 1_000,
    "milliseconds": 1_000_000,
    "seconds": NS_PER_SECOND,
}


def parse_speedscope(document: object, fail: Callable[[str], Exception]) -> Profile:
    """The profile in a parsed speedscope JSON document; ``fail(what)`` builds the error."""
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

    modules = extension.get("frameModules", [""] * len(raw_frames))
    if (
        not isinstance(modules, list)
        or len(modules) != len(raw_frames)
        or not all(isinstance(m, str) for m in modules)
    ):
        raise fail(f"speedscope {_EXTENSION_KEY}.frameModules does not match shared.frames")

    frames = []
    for i, raw in enumerate(raw_frames):
        where = f"shared.frames[{i}]"
        name = require(raw, "name", str, where)
        file = require(raw, "file", str, where) if "file" in raw else ""
        line = require(raw, "line", (int, float), where) if "line" in raw else 0
        module = modules[i]
        if module and name.startswith(module + "."):  # name is Frame.name: split it
            name = name[len(module) + 1 :]
        else:
            module = ""
        frames.append(Frame(name, file, int(line), int(start_lines[i]), module))

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
        rate_hz = NS_PER_SECOND / period_ns if period_ns else DEFAULT_RATE_HZ
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
        add_loaded(profile, stack, thread, (weight_ns + period // 2) // period)
    for stack, thread, count in counted:
        add_loaded(profile, stack, thread, count)
    return profile
