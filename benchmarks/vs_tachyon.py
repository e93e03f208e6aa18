"""realprof beside CPython 3.15's own sampling profiler, Tachyon (`python -m profiling.sampling`).

    PY=~/.cache/sigprof-lab/venvs/3.15/bin/python     # a 3.15 with this checkout installed
    $PY benchmarks/vs_tachyon.py                        # the table, and a JSON file
    $PY benchmarks/vs_tachyon.py --seconds 1 --pairs 2  # a quick run

Run by a CPython 3.15 (Tachyon ships with it, PEP 799) in whose environment this checkout
is installed (`pip install -e .`), so both tools profile the same program on the same
interpreter. realprof runs in the program's process (`python -m realprof record`, a
signal handler on the interrupted thread, CPU-time timers: perf at 1000 Hz where the
kernel allows it, else per-thread at 250 Hz, `benchmarks/vs_pyspy.py choose_timer`);
Tachyon runs in another process and reads the program's memory (`python -m
profiling.sampling run`, 1 kHz of wall time, all threads, `--native`, collapsed stacks).
It reads another process's memory, which needs ptrace rights: root, or
`kernel.yama.ptrace_scope=0`.

The programs (written here, run as `python PROGRAM MODE TRUTH.json SECONDS`) time every
call of their functions on the calling thread's CPU clock (`time.thread_time_ns`), so
each run writes its own truth: the CPU seconds of each function. The modes:

* ``split``: two Python threads, each calling ``work_a`` (1 unit) then ``work_b`` (2
  units): a known split of one third, two thirds, under the GIL;
* ``offcpu``: a busy thread (``work_a``) beside a thread that sleeps (``sleeper``) and
  one that waits on an event (``waiter``): off the CPU, no CPU-time sampler sees them;
* ``gil``: two busy Python threads (``work_a``, ``work_b``) taking turns on the GIL;
* ``native``: ``native_hash`` (hashlib.sha256 of 1 MiB, which releases the GIL) beside a
  Python thread (``work_a``).

What is measured:

1. Attribution error, per mode: each function's share of a profile's samples (a sample
   goes to the innermost frame that is one of the program's functions; Tachyon's
   ``<native>`` frames are skipped) minus its share of the true CPU, the largest over
   the functions in percentage points, and that error in binomial standard errors of
   the profile's sample count. realprof and Tachyon in its CPU mode (``--mode cpu``).
2. What each sees that the other cannot: Tachyon's wall mode on ``offcpu`` (the share
   of samples on the sleeping and waiting threads, which no CPU-time timer can fire
   for), its GIL mode on ``gil`` (samples taken while the thread holds the GIL, against
   wall mode: the rest is waiting for the GIL), and on ``native`` the share of samples
   whose leaf Tachyon marks ``<native>`` (realprof's leaf is the Python caller).
3. Overhead, paired in one run: ``split`` runs ``--pairs`` rounds of (no profiler,
   realprof, Tachyon CPU mode), the order rotated each round; each profiled run's
   throughput (the program's calls per second) over the unprofiled run's of the same
   round, the median over rounds; and the profiler's own CPU per second of the run
   (realprof: the process's CPU beyond the workload threads', its reader; Tachyon: its
   process's CPU, the children's CPU less the program's).

Output: the table, and a JSON file (``--out``, default ``benchmarks/vs-tachyon-DATE.json``,
UTC) with every run, the interpreter, the timer and the load average before and after
each run (the machine may be shared). A script, not a test.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from vs_pyspy import (  # noqa: E402
    choose_timer,
    loadavg,
    machine_info,
    realprof_record_command,
    run,
)

from contract.profile_files import read_profile  # noqa: E402

FUNCTIONS = ("work_a", "work_b", "sleeper", "waiter", "native_hash")
MODES = ("split", "offcpu", "gil", "native")
TACHYON_RATE_HZ = 1000

PROGRAM = """
import hashlib, json, sys, threading, time

MODE, TRUTH, SECONDS = sys.argv[1], sys.argv[2], float(sys.argv[3])
cpu_ns = {}
calls = [0]
lock = threading.Lock()
BUF = bytes(1 << 20)


def spin(n):
    x = 0
    for i in range(n):
        x ^= i * 2654435761
    return x


def work_a(n):
    return spin(n)


def work_b(n):
    return spin(n)


def native_hash(n):
    return hashlib.sha256(BUF).digest()


def sleeper(n):
    time.sleep(0.005)


def waiter(n):
    EVENT.wait(0.05)


EVENT = threading.Event()


def loop(steps, deadline):
    clock = time.thread_time_ns
    mine = {}
    done = 0
    while time.monotonic() < deadline:
        for fn, n in steps:
            t0 = clock()
            fn(n)
            mine[fn.__name__] = mine.get(fn.__name__, 0) + clock() - t0
            done += 1
    with lock:
        for name, ns in mine.items():
            cpu_ns[name] = cpu_ns.get(name, 0) + ns
        calls[0] += done


PLANS = {
    "split": [[(work_a, 3000), (work_b, 6000)], [(work_a, 3000), (work_b, 6000)]],
    "offcpu": [[(work_a, 3000)], [(sleeper, 0)], [(waiter, 0)]],
    "gil": [[(work_a, 3000)], [(work_b, 3000)]],
    "native": [[(native_hash, 0)], [(work_a, 3000)]],
}
start = time.monotonic()
deadline = start + SECONDS
threads = [threading.Thread(target=loop, args=(plan, deadline)) for plan in PLANS[MODE]]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.monotonic() - start
with open(TRUTH, "w") as f:
    json.dump({"cpu_s": {k: v / 1e9 for k, v in cpu_ns.items()}, "calls": calls[0],
               "wall_s": wall, "process_cpu_s": time.process_time()}, f)
"""


def _leaf_function(frames: list[str]) -> str | None:
    """The innermost of the program's functions in a stack (leaf first)."""
    for name in frames:
        if name in FUNCTIONS:
            return name
    return None


def tachyon_counts(path: Path) -> tuple[dict[str, int], int, int]:
    """(samples by function, all samples, samples whose leaf is `<native>`): collapsed
    lines are `tid:N;file:function:line;...;leaf COUNT`, root first."""
    counts: dict[str, int] = {}
    total = native = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        parts = stack.split(";")[1:]  # the tid first
        names = [p.split(":")[1] if p.count(":") >= 2 else p for p in reversed(parts)]
        total += count
        if names and names[0] == "<native>":
            native += count
        function = _leaf_function(names)
        if function is not None:
            counts[function] = counts.get(function, 0) + count
    return counts, total, native


def realprof_counts(path: Path) -> tuple[dict[str, int], int]:
    profile = read_profile(path)
    counts: dict[str, int] = {}
    for (stack, _thread), count in profile.samples.items():
        function = _leaf_function([f.function.rsplit(".", 1)[-1] for f in stack])
        if function is not None:
            counts[function] = counts.get(function, 0) + count
    return counts, profile.total_samples


def attribution(counts: dict[str, int], truth: dict[str, float]) -> dict[str, Any]:
    """Largest |profile share − true share| over the busy functions, in pp and in SEs."""
    busy = {name: cpu for name, cpu in truth.items() if cpu > 0}
    n = sum(counts.get(name, 0) for name in busy)
    total_cpu = sum(busy.values())
    rows = {}
    worst = {"error_pp": 0.0, "z": 0.0, "function": None}
    for name, cpu in busy.items():
        true_share = cpu / total_cpu
        share = counts.get(name, 0) / n if n else 0.0
        se = math.sqrt(max(true_share * (1 - true_share), 1e-12) / max(n, 1))
        rows[name] = {"share": share, "true": true_share}
        if abs(share - true_share) * 100 >= abs(worst["error_pp"]):
            worst = {
                "error_pp": (share - true_share) * 100,
                "z": (share - true_share) / se,
                "function": name,
            }
    return {"samples": n, "functions": rows, **worst}


def profile_run(
    tool: str, mode: str, work: Path, seconds: float, timer: tuple[str, int], tachyon_mode: str
) -> dict[str, Any]:
    """One run of the program in `mode` under `tool` ("none", "realprof" or "tachyon")."""
    program = work / "program.py"
    truth = work / f"truth-{tool}-{mode}-{tachyon_mode}.json"
    argv = [str(program), mode, str(truth), str(seconds)]
    out = work / f"{tool}-{mode}-{tachyon_mode}"
    if tool == "none":
        cmd = [sys.executable, *argv]
    elif tool == "realprof":
        out = out.with_suffix(".pb.gz")
        cmd = realprof_record_command(timer[0], timer[1], out, argv)
    else:
        out = out.with_suffix(".txt")
        cmd = [
            sys.executable,
            "-m",
            "profiling.sampling",
            "run",
            "--mode",
            tachyon_mode,
            "-a",
            "--native",
            "-r",
            str(TACHYON_RATE_HZ),
            "--collapsed",
            "-o",
            str(out),
            *argv,
        ]
    result = run(cmd, work, timeout=seconds * 10 + 60)
    if result["exit"] != 0 or not truth.exists():
        raise SystemExit(f"vs_tachyon: {' '.join(cmd)} failed:\n{result['output_tail']}")
    result["truth"] = json.loads(truth.read_text(encoding="utf-8"))
    if tool == "realprof":
        result["counts"], result["samples"] = realprof_counts(out)
    elif tool == "tachyon":
        result["counts"], result["samples"], result["native_leaf"] = tachyon_counts(out)
    return result


def _throughput(run_: dict[str, Any]) -> float:
    return run_["truth"]["calls"] / run_["truth"]["wall_s"]


def _own_cpu_per_s(tool: str, run_: dict[str, Any]) -> float:
    truth = run_["truth"]
    workload = sum(truth["cpu_s"].values())
    if tool == "realprof":  # the reader thread and the main thread's start and stop
        return (truth["process_cpu_s"] - workload) / truth["wall_s"]
    return (run_["children_cpu_s"] - truth["process_cpu_s"]) / truth["wall_s"]


def measure(seconds: float, pairs: int, work: Path) -> dict[str, Any]:
    (work / "program.py").write_text(PROGRAM, encoding="utf-8")
    from realprof.sampler import c_handler_available

    # Without the C handler (a Python it does not support yet) realprof has only its
    # naive Python handler, which needs the process timer.
    timer = choose_timer(work) if c_handler_available()[0] else ("process", 250)
    attributions: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        attributions[mode] = {
            "realprof": profile_run("realprof", mode, work, seconds, timer, "cpu"),
            "tachyon-cpu": profile_run("tachyon", mode, work, seconds, timer, "cpu"),
        }
    sees = {
        "offcpu-wall": profile_run("tachyon", "offcpu", work, seconds, timer, "wall"),
        "gil-gil": profile_run("tachyon", "gil", work, seconds, timer, "gil"),
        "gil-wall": profile_run("tachyon", "gil", work, seconds, timer, "wall"),
    }
    rounds = []
    tools = ["none", "realprof", "tachyon"]
    for i in range(pairs):
        order = tools[i % 3 :] + tools[: i % 3]
        runs = {tool: profile_run(tool, "split", work, seconds, timer, "cpu") for tool in order}
        rounds.append({"order": order, "runs": runs})
    return {"timer": list(timer), "attributions": attributions, "sees": sees, "rounds": rounds}


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"attribution": {}, "overhead": {}}
    for mode, runs in data["attributions"].items():
        out["attribution"][mode] = {
            tool: attribution(r["counts"], r["truth"]["cpu_s"]) for tool, r in runs.items()
        }
    sees = data["sees"]
    wall = sees["offcpu-wall"]
    off = sum(wall["counts"].get(f, 0) for f in ("sleeper", "waiter"))
    gil_held = sees["gil-gil"]["samples"]
    gil_wall = sees["gil-wall"]["samples"]
    native = data["attributions"]["native"]["tachyon-cpu"]
    out["sees"] = {
        "tachyon_wall_offcpu_share": off / wall["samples"] if wall["samples"] else None,
        "realprof_offcpu_samples": sum(
            data["attributions"]["offcpu"]["realprof"]["counts"].get(f, 0)
            for f in ("sleeper", "waiter")
        ),
        "tachyon_gil_held_over_wall": gil_held / gil_wall if gil_wall else None,
        "tachyon_native_leaf_share": native["native_leaf"] / native["samples"]
        if native["samples"]
        else None,
    }
    for tool in ("realprof", "tachyon"):
        ratios = [
            _throughput(r["runs"][tool]) / _throughput(r["runs"]["none"]) for r in data["rounds"]
        ]
        own = [_own_cpu_per_s(tool, r["runs"][tool]) for r in data["rounds"]]
        out["overhead"][tool] = {
            "throughput_ratio_median": statistics.median(ratios),
            "throughput_ratios": ratios,
            "own_cpu_per_s_median": statistics.median(own),
        }
    return out


def table(data: dict[str, Any], summary: dict[str, Any]) -> str:
    timer, rate = data["timer"]
    lines = [
        f"realprof ({data['realprof_handler']} handler, {timer} timer, {rate} Hz) beside "
        f"Tachyon (profiling.sampling, {TACHYON_RATE_HZ} Hz of wall time, all threads) on "
        f"CPython {data['python']}",
        "",
        "attribution error against the thread CPU clocks (largest over the functions):",
        f"  {'program':<8} {'realprof':>22} {'Tachyon --mode cpu':>24}",
    ]
    for mode, tools in summary["attribution"].items():
        cells = [
            f"{a['error_pp']:+.1f} pp ({a['z']:+.1f} SE, n={a['samples']})"
            for a in (tools["realprof"], tools["tachyon-cpu"])
        ]
        lines.append(f"  {mode:<8} {cells[0]:>22} {cells[1]:>24}")
    sees = summary["sees"]

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f}%"

    lines += [
        "",
        "what each sees that the other cannot:",
        f"  threads off the CPU (offcpu): Tachyon --mode wall puts "
        f"{pct(sees['tachyon_wall_offcpu_share'])} of its samples on the sleeping and "
        f"waiting threads; realprof {sees['realprof_offcpu_samples']} samples (no CPU "
        "timer runs for them)",
        f"  GIL wait (gil): Tachyon --mode gil keeps {pct(sees['tachyon_gil_held_over_wall'])}"
        " of --mode wall's samples (the rest wait for the GIL); realprof cannot tell",
        f"  native code (native): Tachyon --native marks {pct(sees['tachyon_native_leaf_share'])}"
        " of its samples <native>; realprof's leaf is the Python caller (native_hash)",
        "",
        f"overhead, {len(data['rounds'])} rounds of split (median):",
    ]
    for tool, o in summary["overhead"].items():
        lines.append(
            f"  {tool:<9} throughput {o['throughput_ratio_median']:.3f} of unprofiled; "
            f"own CPU {o['own_cpu_per_s_median']:.3f} s per s"
        )
    lines.append(f"load average before/after: {data['loadavg_before']} / {data['loadavg_after']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="wall seconds per run")
    parser.add_argument("--pairs", type=int, default=5, help="rounds of the overhead pairs")
    parser.add_argument(
        "--out", type=Path, help="JSON file (default benchmarks/vs-tachyon-DATE.json)"
    )
    args = parser.parse_args(argv)
    if sys.version_info < (3, 15):
        print(
            f"vs_tachyon: needs CPython 3.15 (Tachyon), this is {sys.version.split()[0]}",
            file=sys.stderr,
        )
        return 2
    if args.seconds <= 0 or args.pairs < 1:
        print("vs_tachyon: --seconds > 0 and --pairs >= 1", file=sys.stderr)
        return 2
    from realprof.sampler import c_handler_available

    with tempfile.TemporaryDirectory(prefix="vs-tachyon-") as tmp:
        load_before = loadavg()
        data = measure(args.seconds, args.pairs, Path(tmp))
    data |= {
        "python": sys.version.split()[0],
        "realprof_handler": "C" if c_handler_available()[0] else "Python (no C handler here)",
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "machine": {k: v for k, v in machine_info(sys.executable).items() if k != "py_spy"},
        "command": "python benchmarks/vs_tachyon.py " + " ".join(argv or sys.argv[1:]),
    }
    summary = summarise(data)
    sys.stdout.write(table(data, summary))
    day = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    out = args.out or HERE / f"vs-tachyon-{day}.json"
    out.write_text(json.dumps({"summary": summary, **data}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
