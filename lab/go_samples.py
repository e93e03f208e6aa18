"""Real Go samples for the walkthrough: labels, the execution trace, and C threads.

    python -m realprof go-samples [--out docs/data] [--scale 2]

builds the fixed program of `lab.go_samples_program` with the installed Go and cgo, runs
its two parts and writes `go-samples.json` (the data the figures of
`lab.go_samples_figure` draw; `python -m docsgen docs/figures` redraws them):

* `labels`: from the pprof file, the samples of each value of the label `request` (the
  child goroutine's samples land under its creator's `b`), beside each worker's thread
  CPU time × the rate; how many of the profile's Locations hold more than one Line (an
  inlined call); from the execution trace (`go tool trace -d`, which prints the events
  Go 1.19's parser reads), the CPU sample events per worker goroutine in bins of 100
  schedule milliseconds, matched to workers by their `trace.Log` entries.
* `cgo`: the samples of each phase of the C threads (C before the callback, Go in the
  first thread's callback, C after it, Go in a second C thread's callback), beside each
  phase's thread CPU time × the rate.

The numbers are one measurement on this machine, not a model: the file records the Go
version and the time scale, and is committed so that the figures are redrawn, not
remeasured, by the docs build (as `docs/data/grid.json` is for the validation grid).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from contract.pprof import to_pprof_message
from contract.profile import Profile
from lab.go_samples_program import GO_SOURCE
from lab.go_toolchain import (
    INSTALL_HINT,
    GoWorldError,
    Symbol,
    build_program,
    c_symbols,
    go_toolchain,
    run_checked,
    version_of,
)

DATA_FILE = "go-samples.json"
BIN_MS = 100  # schedule milliseconds per bin of the trace's CPU samples
NO_LABEL = "(no label)"
CGO_PHASES = (
    "c_spin_before_callback",
    "firstThreadCallback",
    "c_spin_after_callback",
    "secondThreadCallback",
)
_CPU_SAMPLE = re.compile(r"^(?P<ts>\d+) CPUSample p=(?P<p>-?\d+) g=(?P<g>\d+) ")
_USER_LOG = re.compile(
    r"^(?P<ts>\d+) UserLog .* g=(?P<g>\d+) .*category=(?P<key>\S+) message=(?P<value>\S+)"
)


def decode_pprof(path: Path) -> Any:
    """The Profile protobuf message of a gzipped pprof file (contract.pprof's classes)."""
    message_class = type(to_pprof_message(Profile(100)))
    return message_class.FromString(gzip.decompress(path.read_bytes()))


def _label_samples(message: Any, key: str) -> dict[str, int]:
    strings = message.string_table
    counts: dict[str, int] = {}
    for sample in message.sample:
        value = NO_LABEL
        for label in sample.label:
            if strings[label.key] == key:
                value = strings[label.str]
        counts[value] = counts.get(value, 0) + sample.value[0]
    return counts


def _child_samples(message: Any, key: str) -> dict[str, int]:
    """Samples of the goroutine started with a plain `go worker(...)` (no `pprof.Do` on
    its stack, unlike its creator's), by its label value: inheritance puts them all
    under the creator's value, none under NO_LABEL."""
    counts: dict[str, int] = {}
    for sample in message.sample:
        names = _stack_names(message, sample, [])
        if "main.worker" not in names or "runtime/pprof.Do" in names:
            continue
        value = NO_LABEL
        for label in sample.label:
            if message.string_table[label.key] == key:
                value = message.string_table[label.str]
        counts[value] = counts.get(value, 0) + sample.value[0]
    return counts


def _stack_names(message: Any, sample: Any, symbols: list[Symbol]) -> list[str]:
    """Function names of a sample's stack, leaf first, inlined frames expanded.

    Go writes a nameless Function for a C address (it has no symbol table for C code
    without `runtime.SetCgoTraceback`); those are named from `go tool nm`'s ranges.
    """
    strings = message.string_table
    functions = {f.id: strings[f.name] for f in message.function}
    locations = {loc.id: loc for loc in message.location}
    names = []
    for loc_id in sample.location_id:
        location = locations[loc_id]
        named = [functions[line.function_id] for line in location.line]
        if not any(named):
            named = [s.name for s in symbols if s.start <= location.address < s.end]
        names += named
    return names


def _inlining(message: Any) -> dict[str, Any]:
    strings = message.string_table
    functions = {f.id: strings[f.name] for f in message.function}
    inlined = [loc for loc in message.location if len(loc.line) > 1]
    example = [functions[line.function_id] for line in inlined[0].line] if inlined else []
    return {
        "locations": len(message.location),
        "inlined_locations": len(inlined),
        "inlined_example": example,
        "mappings": len(message.mapping),
    }


def trace_samples(go: str, trace: Path, scale: float) -> dict[str, Any]:
    """CPU sample events per worker and bin, from `go tool trace -d` (Go 1.19's parser)."""
    trace_text = run_checked([go, "tool", "trace", "-d", str(trace)], "go tool trace -d", 300)
    worker_of: dict[str, str] = {}
    t0_ns = None
    samples: list[tuple[int, str]] = []
    for line in trace_text.splitlines():
        if log := _USER_LOG.match(line):
            if log["key"] == "worker":
                worker_of[log["g"]] = log["value"]
            elif log["key"] == "mark":
                t0_ns = int(log["ts"]) + 50_000_000  # the program's t0 is 50 ms after
        elif sample := _CPU_SAMPLE.match(line):
            samples.append((int(sample["ts"]), sample["g"]))
    if t0_ns is None:
        raise GoWorldError("the trace has no mark/t0 log entry")
    bin_ns = BIN_MS * scale * 1e6
    bins: dict[str, dict[int, int]] = {}
    for ts, g in samples:
        name = worker_of.get(g, "other")
        index = int((ts - t0_ns) // bin_ns)
        bins.setdefault(name, {})
        bins[name][index] = bins[name].get(index, 0) + 1
    return {
        "bin_ms": BIN_MS,
        "cpu_sample_events": len(samples),
        "bins": {name: {str(i): n for i, n in sorted(b.items())} for name, b in bins.items()},
    }


def _run(binary: Path, part: str, where: Path, scale: float) -> dict[str, Any]:
    where.mkdir(parents=True, exist_ok=True)
    command = [str(binary), "-dir", str(where), "-part", part, "-scale", repr(scale)]
    return json.loads(run_checked(command, "the Go program").splitlines()[-1])


def measure(scale: float = 2.0) -> dict[str, Any]:
    """Build and run both parts; return the data of go-samples.json."""
    go = go_toolchain()
    if go is None:
        raise GoWorldError(f"go-samples needs Go: {INSTALL_HINT}")
    version = version_of(go) or "unknown"
    binary = build_program(go, version, GO_SOURCE, cgo=True)
    with tempfile.TemporaryDirectory(prefix="sigprof-go-samples-") as tmp:
        labels_dir, cgo_dir = Path(tmp, "labels"), Path(tmp, "cgo")
        labels_run = _run(binary, "labels", labels_dir, scale)
        cgo_run = _run(binary, "cgo", cgo_dir, scale)
        labels_message = decode_pprof(labels_dir / "cpu.pb.gz")
        cgo_message = decode_pprof(cgo_dir / "cpu.pb.gz")
        trace = trace_samples(go, labels_dir / "trace.out", scale)
    rate_hz = round(1e9 / labels_message.period)
    cpu = labels_run["cpu_ns"]
    expected = {
        "a": cpu["a"] * rate_hz / 1e9,
        "b": (cpu["b"] + cpu["b-child"]) * rate_hz / 1e9,
    }
    symbols = c_symbols(go, binary, CGO_PHASES)
    stacks = [(s.value[0], _stack_names(cgo_message, s, symbols)) for s in cgo_message.sample]
    phases: dict[str, dict[str, float]] = {}
    for phase in CGO_PHASES:
        count = sum(n for n, names in stacks if phase in names or f"main.{phase}" in names)
        phases[phase] = {
            "samples": count,
            "expected": round(cgo_run["c_phase_ns"][phase] * rate_hz / 1e9, 1),
        }
    return {
        "command": "python -m realprof go-samples --out docs/data",
        "go": labels_run["go"],
        "rate_hz": rate_hz,
        "scale_ms_per_unit": scale,
        "schedule_ms": labels_run["schedule_ms"],
        "labels": {
            "samples": _label_samples(labels_message, "request"),
            "expected": {k: round(v, 1) for k, v in expected.items()},
            "child_samples": _child_samples(labels_message, "request"),
            "child_expected": round(cpu["b-child"] * rate_hz / 1e9, 1),
            "worker_cpu_ms": {k: round(v / 1e6, 1) for k, v in sorted(cpu.items())},
            **_inlining(labels_message),
        },
        "trace": trace,
        "cgo": phases,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m realprof go-samples",
        description="Run the walkthrough's Go program (labels, trace, cgo) and write its data.",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/data"), help="directory")
    parser.add_argument(
        "--scale", type=float, default=2.0, help="wall ms per schedule ms (default 2)"
    )
    args = parser.parse_args(argv)
    try:
        data = measure(args.scale)
    except GoWorldError as error:
        print(f"go-samples: {error}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / DATA_FILE
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0
