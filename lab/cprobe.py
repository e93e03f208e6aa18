"""cprobe: the process timer measured by a trivial C program, beside realprof.

`lab/cprobe.c` is an independent check of the process-timer model: busy C threads
under `setitimer(ITIMER_PROF)` and a SIGPROF handler that only stamps the time and
thread into a preallocated array, read by nobody until the end. Neither Python,
realprof's C sampler nor its reader runs in that process; its model is the `cprobe`
runtime (`contract.runtimes`). Knobs, to test what realprof adds: a busy-wait in the
handler (realprof's handler costs µs), an extra thread that wakes every N ms and burns
some CPU (realprof's reader, which wakes every 10 ms to watch for threads), a
`getrusage(RUSAGE_THREAD)` call after every block of the busy loop (realprof's
`spin_native` times itself that way), and pinning.

`build` compiles the source with gcc (`lab.machine.build_c`) into a cache outside the
clone ($XDG_CACHE_HOME or ~/.cache, `sigprof-lab/cprobe/`), keyed by the source's hash,
so an edit of the source rebuilds it and nothing else does. `probe_run` runs it once and
returns its capture ratio (samples / (process CPU × rate), the CPU measured over the
timer's window) and its tick-round counts (`lab.calibrate.survival_from_rounds`, the
estimator calibration uses on realprof's samples). Without gcc, `CProbeError` says how
to install it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from lab.calibrate import survival_from_rounds
from lab.machine import build_c

SOURCE = Path(__file__).with_name("cprobe.c")


class CProbeError(Exception):
    """The probe cannot be built or run here; one line for the user."""


def build() -> Path:
    """The compiled probe, built once per version of its source."""
    return build_c(SOURCE, "cprobe", ("-O2", "-pthread"), CProbeError, "the C probe")


def probes(cell: tuple[str, int, int, str]) -> bool:
    """Whether the grid runs the probe beside realprof in `cell`: native process-timer cells."""
    workload, _, _, timer = cell
    return workload == "native" and timer == "process"


def probe_run(
    threads: int,
    rate_hz: int,
    duration_s: float,
    hz: int,
    handler_us: float = 0.0,
    reader_ms: int = 0,
    reader_us: int = 0,
    pin: bool = False,
    rusage: bool = False,
    keep_times: bool = False,
) -> dict[str, Any]:
    """One run of the probe: capture ratio, samples per thread, tick-round counts."""
    command = [
        str(build()),
        str(threads),
        str(rate_hz),
        str(duration_s),
        str(handler_us),
        str(reader_ms),
        str(reader_us),
        "1" if pin else "0",
        "1" if rusage else "0",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    if done.returncode != 0:
        raise CProbeError(f"cprobe failed: {done.stderr.strip() or done.returncode}")
    raw = json.loads(done.stdout)
    times = raw["times_ns"]
    cpu_s = raw["process_cpu_ns"] / 1e9
    per_thread = [raw["thread_index"].count(i) for i in range(len(raw["tids"]))]
    counted = survival_from_rounds(times, rate_hz, hz, threads)
    out = {
        "threads": threads,
        "rate_hz": rate_hz,
        "handler_us": handler_us,
        "reader_ms": reader_ms,
        "reader_us": reader_us,
        "pin": pin,
        "rusage": rusage,
        "cpu_seconds": cpu_s,
        "samples": raw["samples"],
        "samples_in_profile": raw["samples"],
        "samples_per_thread": per_thread,
        "capture_ratio": raw["samples"] / (cpu_s * rate_hz) if cpu_s else 0.0,
        "p": None if counted["p"] != counted["p"] else round(counted["p"], 4),
        "rounds": counted["rounds"],
        "f0": round(counted["f0"], 4),
        "f1": round(counted["f1"], 4),
        "f2": round(counted["f2"], 4),
    }
    if keep_times:
        out["times_ns"] = raw["times_ns"]
        out["thread_index"] = raw["thread_index"]
    return out
