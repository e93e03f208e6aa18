"""This machine: its facts read from the kernel, and the machine its simulated twins run on.

A scenario describes a machine (CPUs, CONFIG_HZ, tick skew) for the simulator; the real
world cannot choose its machine, so it reports the one at hand beside the scenario's, and
a reader of the report can see at once whether the two worlds ran on comparable machines.

Where each fact comes from, and why:

- ``cpus``: ``os.sched_getaffinity(0)``, the CPUs this process may run on (a container or
  ``taskset`` can allow fewer than ``os.cpu_count()`` reports, and only the allowed ones
  can run the workload's threads at the same time).
- ``kernel_hz``: ``CONFIG_HZ`` from ``/boot/config-$(uname -r)`` or ``/proc/config.gz``
  (CONFIG_IKCONFIG_PROC). The tick rate is a build option that user space cannot query
  directly: ``sysconf(_SC_CLK_TCK)`` is ``USER_HZ``, always 100 on x86, not the tick.
  When neither file exists the value is null and ``kernel_hz_source`` says why.
- ``tick_alignment``: from ``/proc/timer_list`` (root only). Each CPU's periodic tick is
  an hrtimer (``tick_sched_timer``; ``tick_nohz_handler`` since Linux 6.9). All CPUs tick
  on one grid of ``TICK_NSEC`` unless the boot option ``skew_tick=1`` offsets CPU n by
  ``n * TICK_NSEC / (2 * nr_cpus)`` (kernel/time/tick-sched.c ``tick_sched_timer_setup``
  / ``tick_setup_sched_timer``). So the expiry times taken modulo the tick period are
  equal on every CPU when ticks are aligned, and differ when they are skewed. A CPU
  idling in NO_HZ mode may have its tick deferred to a later grid point, which the
  modulo ignores; a CPU without a queued tick timer falls back to its ``.last_tick``.
  Aligned ticks are what make one process timer lose signals in bulk (all CPUs check
  their timers at the same instant: golang/go #35057).
- ``kernel``, ``cpu_model``, ``python``: for the record; profiles from different
  machines should not be compared without knowing they differ.

``kernel_hz`` is the project's one reader of CONFIG_HZ: the Go world's report uses it too.

The simulated twin of a real run (``machine_here``) runs on this machine's calibrated
profile (``machines/this-machine.yaml``, written by ``realprof calibrate``) when there is
one, otherwise on the scenario's machine with this machine's CPU count and tick rate.

Left out: CPU frequency scaling and SMT topology (they change how much work a CPU
second does, not how it is sampled), and fitting the simulator's kernel parameters
(``realprof calibrate`` fits those by experiment; this module only reads its profile).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

from contract.scenario import (
    Machine,
    Scenario,
    machine_profile_dirs,
    machine_section,
    parse_machine,
)

CALIBRATED_PROFILE = "this-machine"
_HZ_LINE = re.compile(rb"^CONFIG_HZ=(\d+)\s*$", re.MULTILINE)
_TICK_HANDLERS = ("tick_sched_timer", "tick_nohz_handler")


def kernel_hz() -> tuple[int | None, str]:
    """``(CONFIG_HZ or None, where it was read or why it is unknown)``."""
    release = platform.release()
    candidates = [Path(f"/boot/config-{release}"), Path("/proc/config.gz")]
    problems = []
    for path in candidates:
        try:
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
        except FileNotFoundError:
            problems.append(f"{path} does not exist")
            continue
        # A truncated or corrupt /proc/config.gz: EOFError, BadGzipFile or zlib.error.
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            problems.append(f"{path} is unreadable ({exc.__class__.__name__})")
            continue
        match = _HZ_LINE.search(data)
        if match:
            return int(match.group(1)), str(path)
        problems.append(f"{path} has no CONFIG_HZ line")
    return None, (
        "unknown: " + "; ".join(problems) + " (the tick rate is a kernel build option that "
        "user space cannot query otherwise; sysconf(_SC_CLK_TCK) is USER_HZ, not the tick)"
    )


def parse_timer_list(text: str) -> dict[int, int]:
    """CPU -> a nanosecond time on that CPU's tick grid, from ``/proc/timer_list`` text.

    Prefers the expiry of the queued tick hrtimer; falls back to ``.last_tick``.
    """
    expiry: dict[int, int] = {}
    last_tick: dict[int, int] = {}
    cpu: int | None = None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("cpu:"):
            try:
                cpu = int(stripped.split(":", 1)[1])
            except ValueError:
                cpu = None
            continue
        if stripped.startswith("Tick Device"):
            cpu = None  # the per-CPU hrtimer sections are over
            continue
        if cpu is None:
            continue
        if any(f", {name}," in line for name in _TICK_HANDLERS) and index + 1 < len(lines):
            match = re.search(r"expires at (\d+)-", lines[index + 1])
            if match and cpu not in expiry:
                expiry[cpu] = int(match.group(1))
        elif stripped.startswith(".last_tick"):
            match = re.search(r":\s*(\d+)", stripped)
            if match and int(match.group(1)) > 0:
                last_tick[cpu] = int(match.group(1))
    return {**last_tick, **expiry}


def tick_alignment(hz: int | None, text: str | None = None) -> dict[str, Any]:
    """Whether the CPUs' ticks are aligned, from /proc/timer_list (or ``text``)."""
    if text is None:
        try:
            text = Path("/proc/timer_list").read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return {
                "tick_alignment": None,
                "tick_alignment_source": f"/proc/timer_list unreadable ({exc.strerror or exc})",
            }
    times = parse_timer_list(text)
    if len(times) < 2:
        return {
            "tick_alignment": None,
            "tick_alignment_source": (
                f"/proc/timer_list shows a tick on {len(times)} CPU(s); need two to compare"
            ),
        }
    cpus = sorted(times)
    if hz:
        tick_ns = (1_000_000_000 + hz // 2) // hz  # TICK_NSEC, include/linux/jiffies.h
        base = times[cpus[0]]
        # Offset of each CPU's grid from CPU 0's, in [0, tick_ns).
        offsets = {cpu: (times[cpu] - base) % tick_ns for cpu in cpus}
        # Within 1 us counts as equal: hrtimer expiries are exact grid points, but a
        # .last_tick fallback is when the tick ran, a little after its grid point.
        aligned = all(min(o, tick_ns - o) <= 1_000 for o in offsets.values())
        return {
            "tick_alignment": "aligned" if aligned else "skewed",
            "tick_offsets_ns": {str(cpu): offsets[cpu] for cpu in cpus},
            "tick_alignment_source": "/proc/timer_list tick expiries modulo TICK_NSEC",
        }
    aligned = len({times[cpu] for cpu in cpus}) == 1
    return {
        "tick_alignment": "aligned" if aligned else None,
        "tick_alignment_source": (
            "/proc/timer_list tick expiries are identical"
            if aligned
            else "/proc/timer_list tick expiries differ, and without CONFIG_HZ the grid is unknown"
        ),
    }


def _skew_tick_option() -> bool | None:
    try:
        words = Path("/proc/cmdline").read_text(encoding="utf-8").split()
    except OSError:
        return None
    for word in words:
        if word.startswith("skew_tick="):
            return word.split("=", 1)[1] not in ("0", "")
    return False


def cpu_model() -> str | None:
    """The CPU's model name as /proc/cpuinfo gives it (or the platform's guess)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        # "model name" on x86, "Model" or "CPU part" on some ARM kernels.
        if key.strip() in ("model name", "Model", "cpu model"):
            return value.strip() or None
    return platform.processor() or None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), or all CPUs where that is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# A run got the CPUs it asked for when its threads used at least this share of their CPU
# time: less, and another process took a CPU, so two of its threads took turns on one and
# a tick round held fewer of its ticks than the model's machine gives it.
GOT_ITS_CPUS = 0.9


def cpus_wanted(workload: str, threads: int, cpus: int | None = None) -> int:
    """The CPUs a cell's busy threads keep busy: one per thread up to the usable CPUs,
    one in all for Python threads that take turns under the GIL."""
    return 1 if workload == "python" else min(threads, cpus or usable_cpus())


def got_its_cpus(cpu_s: float, cpus: int, duration_s: float) -> bool:
    """Whether a run of `duration_s` that wanted `cpus` CPUs busy had them (`GOT_ITS_CPUS`)."""
    return cpu_s >= cpus * duration_s * GOT_ITS_CPUS


def machine_facts() -> dict[str, Any]:
    """This machine's facts, in the shape of a report's ``machine`` mapping."""
    hz, hz_source = kernel_hz()
    facts: dict[str, Any] = {
        "name": "this machine",
        "cpus": usable_cpus(),
        "cpus_online": os.cpu_count(),
        "kernel_hz": hz,
        "kernel_hz_source": hz_source,
        "tick_skew": _skew_tick_option(),
    }
    facts.update(tick_alignment(hz))
    facts.update(
        {
            "kernel": platform.release(),
            "cpu_model": cpu_model(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
        }
    )
    return facts


def calibrated_machine(scenario_path: Path | None = None) -> tuple[Machine | None, str | None]:
    """This machine's calibrated profile, if `realprof calibrate` wrote one."""
    import yaml  # a file format edge: loaded only when a profile is looked for

    for directory in machine_profile_dirs(scenario_path):
        path = directory / f"{CALIBRATED_PROFILE}.yaml"
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            machine = data.get("machine", {})
            fields = machine_section(machine, path)
            when = data.get("calibrated")
            return parse_machine(fields, str(path)), str(path) + (
                f", calibrated {when}" if when else ""
            )
    return None, None


def machine_here(scenario: Scenario, scenario_path: Path | None) -> tuple[dict, str]:
    """The machine section the twins run on, and a note saying where it came from."""
    machine, source = calibrated_machine(scenario_path)
    if machine is not None:
        note = f"simulated on this machine's calibrated profile ({source})"
        return dataclasses.asdict(machine), note
    facts = machine_facts()
    section = dataclasses.asdict(scenario.machine)
    section["cpus"] = facts.get("cpus") or section["cpus"]
    if facts.get("kernel_hz") in (100, 250, 300, 1000):
        section["kernel_hz"] = facts["kernel_hz"]
    section["cpu_check_bias"] = None
    return section, (
        "simulated with this machine's CPUs and HZ but uncalibrated kernel parameters: "
        "run `python -m realprof calibrate` first"
    )


GCC_INSTALL_HINT = "apt-get install gcc"


def build_c(
    source: Path, kind: str, flags: tuple[str, ...], error: type[Exception], who: str
) -> Path:
    """`source` compiled by gcc into `cache_dir(kind)`, once per version of the source
    (the binary is named after its stem and sha256). It is built under a temporary name
    and renamed, so of two concurrent builds each wins or loses whole. Raises
    `error(message)` when gcc is missing (`who` needs it) or fails."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise error(f"{who} needs gcc, which is not installed ({GCC_INSTALL_HINT})")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    binary = cache_dir(kind) / f"{source.stem}-{digest}"
    if binary.exists():
        return binary
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [gcc, *flags, "-o", str(partial), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise error(f"gcc could not build {source.name}: {first}")
    partial.replace(binary)
    return binary


def cache_dir(kind: str) -> Path:
    """Where this machine keeps what the lab builds (`kind`: "go", "cprobe"), outside the
    clone so a fresh checkout reuses it: $XDG_CACHE_HOME or ~/.cache, under
    sigprof-lab/KIND; a per-user temporary directory if that cannot be created."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "sigprof-lab" / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / f"sigprof-lab-{kind}-{os.getuid()}"
        path.mkdir(parents=True, exist_ok=True)
    return path
