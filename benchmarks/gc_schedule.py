"""Where a program's full garbage collections fall, and what moves them.

    python benchmarks/gc_schedule.py --program pyflakes            # plain, +10,000, realprof
    python benchmarks/gc_schedule.py --program pyflakes --extra 0 --extra 3000 --no-realprof

CPython 3.11 runs a full (generation 2) collection only when the objects promoted since
the last one reach a quarter of those it kept (Modules/gcmodule.c, long_lived_pending
against long_lived_total), so a program that builds a large heap does a few long full
collections, and where each one starts depends on the heap's size at every earlier one,
down to the objects the process held before the program began. An in-process profiler
adds such objects (its modules) and allocations (its reader thread). This script runs one
of benchmarks/vs_pyspy.py's programs on the same generated input several ways, each in a
fresh process with a ``gc.callbacks`` logger installed first:

* plain (``--extra 0``), and with N extra dictionaries allocated before the program
  starts (``--extra N``, repeatable; the default set is 0 and 10,000);
* under ``python -m realprof record --timer perf --hz 1000`` (``--no-realprof`` to skip),
  with the logger in the program (realprof's own gc.callbacks entry sits beside it).

For each run it prints the number of full collections, the process CPU, and the CPU of
the full collections grouped by the Python function that was running when each started
(``sys._getframe(1)`` in the callback: CPython's own frame view, which does not show a
function still in its prologue, so a collection started by a closure's MAKE_CELL is
shown under its caller). It runs the programs one at a time; CPU times are shares of a
shared machine, the collection counts and places are not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vs_pyspy import PROGRAMS

LOGGER = textwrap.dedent(
    """
    import gc, json, runpy, sys, time
    extra = int(sys.argv[1])
    module_argv = sys.argv[2:]
    starts, spent = {}, {}

    def log(phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            frame = sys._getframe(1)
            starts["t"] = time.process_time()
            starts["where"] = frame.f_code.co_qualname if frame is not None else "(no frame)"
        else:
            where = starts.pop("where", "?")
            count, cpu = spent.get(where, (0, 0.0))
            spent[where] = (count + 1, cpu + time.process_time() - starts.pop("t", 0.0))

    gc.callbacks.append(log)
    padding = [dict() for _ in range(extra)]
    sys.argv = module_argv
    try:
        runpy.run_module(module_argv[0], run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    print("GC_SCHEDULE " + json.dumps({
        "full_collections": sum(c for c, _ in spent.values()),
        "cpu_s": round(time.process_time(), 2),
        "by_function": {k: [c, round(s, 2)] for k, (c, s) in spent.items()},
    }), file=sys.stderr)
    """
)


def run_one(label: str, cmd: list[str], cwd: Path) -> dict:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)
    for line in proc.stderr.splitlines():
        if line.startswith("GC_SCHEDULE "):
            return {"run": label, **json.loads(line[len("GC_SCHEDULE ") :])}
    return {"run": label, "error": proc.stderr[-2000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--program", choices=sorted(PROGRAMS), default="pyflakes")
    parser.add_argument("--scale", type=float, default=3.2, help="input size (3.2)")
    parser.add_argument(
        "--extra", type=int, action="append", help="extra dicts before the program (0, 10000)"
    )
    parser.add_argument("--no-realprof", action="store_true", help="skip the realprof run")
    parser.add_argument("--workdir", default=None, help="keep the input here")
    args = parser.parse_args(argv)
    if args.scale <= 0 or any(n < 0 for n in args.extra or []):
        parser.exit(2, "gc_schedule.py: --scale must be positive and --extra >= 0\n")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="gc_schedule."))
    work.mkdir(parents=True, exist_ok=True)
    argv_program, what = PROGRAMS[args.program].make(work, args.scale)
    module_argv = argv_program[1:]  # ["-m", module, ...] -> [module, ...]
    logger = work / "gc_logger.py"
    logger.write_text(LOGGER)
    runs = [
        (f"plain, {n:,} extra objects", [sys.executable, str(logger), str(n), *module_argv])
        for n in (args.extra or [0, 10_000])
    ]
    if not args.no_realprof:
        record = [sys.executable, "-m", "realprof", "record", "--timer", "perf", "--hz", "1000"]
        out = str(work / "gc_schedule.pb.gz")
        runs.append(("realprof record, perf 1000 Hz", [*record, "-o", out, str(logger), "0"]))
        runs[-1][1].extend(module_argv)
    print(f"{args.program}: {what}")
    for label, cmd in runs:
        r = run_one(label, cmd, work)
        if "error" in r:
            print(f"  {label}: failed\n{r['error']}")
            continue
        places = ", ".join(
            f"{fn} {n}x {cpu:.2f} s"
            for fn, (n, cpu) in sorted(r["by_function"].items(), key=lambda kv: -kv[1][1])
        )
        print(f"  {label}: {r['full_collections']} full collections, {r['cpu_s']} s CPU; {places}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
