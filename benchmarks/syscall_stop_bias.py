"""Where a sampler that stops its target puts the time of code that makes system calls.

    python benchmarks/syscall_stop_bias.py                  # three chunk sizes, three tools
    python benchmarks/syscall_stop_bias.py --seconds 1      # a quick run

A small program alternates two functions, many thousand times a second:
``sys_part`` makes one system call (``os.path.exists`` on a missing path, a ``stat``
of about 2.5 µs here) and ``py_part`` runs a pure-Python loop of ``--chunks``
iterations (about 1, 8 and 100 µs for 30, 300 and 3000). Each function times itself
with ``time.perf_counter_ns``, so every run prints its own truth: the share of the two
functions' wall time spent in ``sys_part``. The loop is single-threaded and never
blocks, so its wall time is its CPU time (the stops of a sampler that stops it count
in whichever function was stopped, in the truth as in the samples).

Each chunk size runs under three samplers, one run at a time:

* realprof (``record``; the perf_event timer at 1000 Hz where the kernel allows it, else
  the per-thread CPU timer at 250 Hz), whose signal interrupts the thread where it is;
* py-spy 0.4 at 200 Hz stopping the target for each sample (its default, "blocking"),
  the mode ``benchmarks/vs_pyspy.py`` uses;
* py-spy at 200 Hz reading the target without stopping it (``--nonblocking``).

py-spy's stopping runs are made three ways: placed by the scheduler as usual ("free"),
with py-spy and the program pinned to the same CPU ("same"), and to different CPUs
("other"). py-spy stops a thread with ``PTRACE_ATTACH``, which sends it SIGSTOP; a
thread running on another CPU takes the stop at its next return to user mode, which is
either the end of a system call or the interrupt that kicks its CPU, whichever comes
first. A thread on py-spy's own CPU is not running while py-spy runs, so the stop takes
it where it was preempted.

What is compared: among the samples with ``sys_part`` or ``py_part`` on the stack, the
share with ``sys_part``, against the truth of a run of the same program with no sampler
at all, with the binomial standard error of a share of n samples, ``sqrt(t (1 - t) /
n)``; z beyond ±3 is a bias, not noise. Each sampled run's own truth is printed too: a
sampler changes the program it watches: under py-spy, the stops add wall time to
whichever function they land in; under realprof, the program has a second Python thread
(the reader), and a run with an idle Python thread and no sampler ("idle thread") shows
what such a thread alone does to the program (on this project's VM it made each ``stat``
of the largest chunk cost about three times as much: benchmarks/README.md).

Why this exists: on ``isort`` (``benchmarks/vs_pyspy.py --program isort``), whose
placement of imports calls ``os.path.exists`` between short stretches of Python, py-spy
gave ``exists`` 17 % of the samples and realprof 7.7 %. This program separates the two
readings with a measured truth. Needs py-spy (``pip install py-spy``; ptrace: root or
``kernel.yama.ptrace_scope=0``). A script, not a test.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import vs_pyspy  # benchmarks/vs_pyspy.py: its readers of the two tools' profiles

PROGRAM = """
import json, os, sys, time
now = time.perf_counter_ns
chunk, seconds, cpu = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
if len(sys.argv) > 4:  # an idle companion: a Python thread that sleeps 100 ms at a time
    import threading
    def idle():
        while True:
            time.sleep(0.1)
    threading.Thread(target=idle, daemon=True).start()
if cpu >= 0:
    os.sched_setaffinity(0, {cpu})
spent = {"sys_part": 0, "py_part": 0}

def sys_part(path):
    start = now()
    os.path.exists(path)
    spent["sys_part"] += now() - start

def py_part(n):
    start = now()
    total = 0
    for i in range(n):
        total += i
    spent["py_part"] += now() - start

end = time.process_time() + seconds
calls = 0
while time.process_time() < end:
    for _ in range(200):
        sys_part(f"missing/{calls % 64}.py")
        py_part(chunk)
        calls += 1
print("TRUTH " + json.dumps({"calls": calls, **spent}), file=sys.stderr)
"""

# (tool, placement): "free" lets the scheduler place the sampler and the program; "same"
# pins both to CPU 0; "other" pins py-spy to CPU 0 and the program to CPU 1.
RUNS = (
    ("none", "free"),  # the program alone: the truth the samplers are held against
    # the program beside an idle Python thread, no sampler: what a second thread alone
    # does to the program (realprof's reader is one)
    ("none", "idle thread"),
    ("realprof", "free"),
    ("py-spy blocking", "free"),
    ("py-spy blocking", "same"),
    ("py-spy blocking", "other"),
    ("py-spy nonblocking", "free"),
)
# (sampler CPU, program CPU)
PLACEMENT_CPUS = {"free": (None, -1), "idle thread": (None, -1), "same": (0, 0), "other": (0, 1)}


def truth_of(output: str) -> dict[str, int]:
    for line in output.splitlines():
        if line.startswith("TRUTH "):
            return json.loads(line[len("TRUTH ") :])
    raise SystemExit(f"the program printed no TRUTH line:\n{output[-2000:]}")


def counted_share(counts: vs_pyspy.Counts, script: Path) -> tuple[int, int]:
    """(samples with sys_part on the stack, samples with either function on it)."""
    path = str(script.resolve())
    by_name = {
        vs_pyspy.short_name(name): key for key, name in counts.names.items() if key[0] == path
    }
    k_sys = counts.cum.get(by_name.get("sys_part"), 0)
    k_py = counts.cum.get(by_name.get("py_part"), 0)
    return k_sys, k_sys + k_py


def run_tool(
    tool: str,
    placement: str,
    chunk: int,
    seconds: float,
    work: Path,
    timer: tuple[str, int],
    pyspy: str,
) -> dict[str, Any]:
    script = work / "interleave.py"
    sampler_cpu, program_cpu = PLACEMENT_CPUS[placement]
    # As a module (-m, from the work directory), as vs_pyspy runs its programs: py-spy's
    # samples are then cut at the same runpy frames as realprof's.
    argv = ["-m", "interleave", str(chunk), str(seconds), str(program_cpu)]
    if placement == "idle thread":
        argv.append("idle")
    if tool == "none":
        cmd = [sys.executable, *argv]
    elif tool == "realprof":
        out = work / f"realprof-{chunk}.pb.gz"
        cmd = [sys.executable, "-m", "realprof", "record", "--timer", timer[0]]
        cmd += ["--hz", str(timer[1]), "-o", str(out), *argv]
    else:
        out = work / f"pyspy-{chunk}-{tool.split()[1]}.txt"
        cmd = [pyspy, "record", "--format", "raw", "--function", "--full-filenames"]
        cmd += ["--rate", "200", *(["--nonblocking"] if tool.endswith("nonblocking") else [])]
        cmd += ["-o", str(out), "--", sys.executable, *argv]

    def pin_sampler() -> None:
        if sampler_cpu is not None:
            os.sched_setaffinity(0, {sampler_cpu})

    proc = subprocess.run(
        cmd,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=seconds * 20 + 60,
        preexec_fn=pin_sampler,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    truth = truth_of(proc.stderr)
    row: dict[str, Any] = {
        "tool": tool,
        "placement": placement,
        "chunk_iterations": chunk,
        "calls": truth["calls"],
        "sys_call_us": truth["sys_part"] / truth["calls"] / 1e3,
        "py_chunk_us": truth["py_part"] / truth["calls"] / 1e3,
        "own_true_share": truth["sys_part"] / (truth["sys_part"] + truth["py_part"]),
    }
    if tool == "none":
        return row
    if tool == "realprof":
        counts, _ = vs_pyspy.realprof_counts(out, work)
    else:
        counts, _ = vs_pyspy.pyspy_counts(out.read_text(), work)
    row["samples_sys"], row["samples"] = counted_share(counts, script)
    return row


def judge(row: dict[str, Any], true_share: float) -> None:
    """The sampled share against the unobserved program's, in binomial standard errors."""
    n = row.get("samples", 0)
    row["true_share"] = true_share
    row["sampled_share"] = row["samples_sys"] / n if n else float("nan")
    se = math.sqrt(true_share * (1 - true_share) / n) if n else float("nan")
    row["z"] = (row["sampled_share"] - true_share) / se if se else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", default="30,300,3000", help="py_part loop sizes")
    parser.add_argument("--seconds", type=float, default=4.0, help="CPU seconds per run")
    parser.add_argument("--out", type=Path, help="JSON file with every number")
    args = parser.parse_args(argv)
    try:
        chunks = [int(c) for c in args.chunks.split(",")]
    except ValueError:
        parser.error(f"--chunks: comma-separated whole numbers, not {args.chunks!r}")
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        parser.error("py-spy is not installed: pip install py-spy")
    rows = []
    with tempfile.TemporaryDirectory(prefix="stop_bias.") as tmp:
        work = Path(tmp)
        (work / "interleave.py").write_text(PROGRAM, encoding="utf-8")
        timer = vs_pyspy.choose_timer(work)
        if len(os.sched_getaffinity(0)) < 2:
            parser.error("needs two CPUs (the 'other' placement pins the two to different ones)")
        print(
            f"{'chunk':>6} {'py µs':>6} {'sys µs':>6}  {'tool':<19} {'placement':<11} "
            f"{'truth':>6} {'sampled':>7} {'samples':>7} {'z':>7}\n"
            "(truth: the run's own measured share of sys_part; z: the sampled share against "
            "the truth of the run with no sampler, in binomial SE)"
        )
        for chunk in chunks:
            true_share = float("nan")
            for tool, placement in RUNS:
                row = run_tool(tool, placement, chunk, args.seconds, work, timer, pyspy)
                rows.append(row)
                if tool == "none":
                    if placement == "free":
                        true_share = row["own_true_share"]
                    print(
                        f"{chunk:>6} {row['py_chunk_us']:>6.2f} {row['sys_call_us']:>6.2f}  "
                        f"{'(no sampler)':<19} {placement:<11} {row['own_true_share']:>6.3f}",
                        flush=True,
                    )
                    continue
                judge(row, true_share)
                print(
                    f"{chunk:>6} {row['py_chunk_us']:>6.2f} {row['sys_call_us']:>6.2f}  "
                    f"{tool:<19} {placement:<11} {row['own_true_share']:>6.3f} "
                    f"{row['sampled_share']:>7.3f} {row['samples']:>7,} {row['z']:>7.1f}",
                    flush=True,
                )
    info = vs_pyspy.machine_info(pyspy)
    info["realprof_timer"] = f"{timer[0]} {timer[1]} Hz"
    print(f"{info['cpu_model']}, nproc {info['nproc']}, {info['python']}, {info['py_spy']}")
    if args.out:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        args.out.write_text(json.dumps({"date": stamp, "machine": info, "rows": rows}, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
