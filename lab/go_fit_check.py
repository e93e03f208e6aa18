"""go-fit: `python -m sim fit` held against a real Go profile of the same sitting.

    python -m realprof go-fit [--out DIR] [--repeat 3] [--duration 4] [--threads 2]
                              [--rate-hz 250]
    python -m realprof go-fit --verdict-only GO_FIT_JSON [--out DIR]

The fit (`sim.fit`, `python -m sim fit --profile`) answers a Go 1.17 user with the
same-round survival p that explains their profile. This command checks that answer on
this machine, in one sitting, against p measured the way the project measures it:

1. p counted in tick rounds: `lab.calibrate.survival_run` at 400 Hz with two busy native
   threads under realprof's process timer (the grid's "calibrate 400 Hz, 2 threads"),
   and the same with the C probe (`lab.cprobe`: a trivial handler, no reader thread),
   which is the process closer to Go's (whose profile reader wakes every 100 ms, not
   every 10 ms);
2. the Go world's program for `threads` busy goroutines at `rate_hz`, built by the `go`
   on PATH and run under the go1.17 emulation (`lab.go_seccomp`: timer_create denied, so
   the process timer alone samples it) as the grid runs it (`lab.go_variant.GoVariant`,
   world `go1.19-as-go1.17` for Go 1.19), which writes a real `cpu.pb.gz` and reports
   the process's CPU time (rusage);
3. `python -m sim fit --cpus C --hz HZ --go go1.17 --profile cpu.pb.gz
   --process-cpu-s CPU --threads N --preset this-vm` on that profile, as a user would.

Steps 1 and 2 are interleaved, `repeat` times, so a drift of the host's p affects both
alike. The verdict: whether each measured median p agrees with one fit of all the Go
runs' profiles together (step 3 with every profile), whose range is the error of their
mean capture, from their scatter, at Student's t (`sim.fit.pool`). The median has an
error of its own, from its `repeat` survival runs: its standard error (the median's
factor, `lab.medians.median_variance`) at Student's t with one degree of freedom
fewer than its runs, at `sim.fit.Z_RANGE`'s coverage as the fit's range is, widens the
pooled range's side that faces it, the two half-widths added in quadrature
(`agreement`). That treats the two errors as independent; a drift shared by the
interleaved runs moves both alike, so the allowance errs wide. Held to the range as if
it were exact, realprof's median of three fell outside it in a CI run on a host whose
survival runs scatter 0.17 to 0.28 in one sitting. Each run's own fit, with its
counting noise alone, is shown too. With two busy CPUs at rate = HZ every tick round
generates two signals, so the capture is (1 + p)/2 and the profile carries p with
little noise; with fewer CPUs than busy goroutines free (another job on the machine),
the process timer sees fewer ticks per round and the fit is refused or lands at its
edge, which the output says (`machine_busy`, as the grid flags its runs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab import calibrate, cprobe
from lab.go_seccomp import EMULATIONS
from lab.go_toolchain import GoWorldError
from lab.go_variant import GoVariant, path_variant
from lab.go_world import run_go_world
from lab.grid_cells import cell_scenario
from lab.machine import cpus_wanted, got_its_cpus, kernel_hz, machine_facts, usable_cpus
from lab.medians import median_variance
from sim.fit import Z_RANGE, t_quantile

P_RATE_HZ = 400  # calibration's survival rate (not a grid cell)
_FIT_LINE = re.compile(
    r"p \(machine\.same_round_survival\) = (?P<p>[\d.]+), range (?P<low>[\d.]+) to "
    r"(?P<high>[\d.]+)"
)


def fit_command(profiles: list[tuple[Path, float]], cpus: int, hz: int, threads: int) -> list[str]:
    """The `python -m sim fit` command a user would run on these Go profiles, each with
    the process CPU seconds of its run."""
    command = [sys.executable, "-m", "sim", "fit", "--cpus", str(cpus), "--hz", str(hz)]
    command += ["--go", "go1.17"]
    for profile, cpu_s in profiles:
        command += ["--profile", str(profile), "--process-cpu-s", f"{cpu_s:.4f}"]
    return [*command, "--threads", str(threads), "--preset", "this-vm"]


def agreement(pooled: dict[str, Any], runs: list[float]) -> dict[str, Any]:
    """Whether the median of `runs` (measured p) agrees with the pooled Go fit: the gap
    between them within the pooled range's half-width on the median's side and the
    median's standard error at Student's t (n - 1 degrees of freedom, Z_RANGE's
    coverage), added in quadrature. One run has no scatter to add. The verdict is taken
    on the rounded gap and allowance, the numbers the output prints."""
    n = len(runs)
    median = statistics.median(runs)
    se = math.sqrt(median_variance(statistics.stdev(runs), n)) if n > 1 else 0.0
    multiplier = t_quantile(n - 1) if n > 1 else Z_RANGE
    side = pooled["p"] - pooled["low"] if median < pooled["p"] else pooled["high"] - pooled["p"]
    gap = round(median - pooled["p"], 4)
    allowed = round(math.hypot(side, multiplier * se), 4)
    return {
        "median": round(median, 4),
        "median_se": round(se, 4),
        "t": round(multiplier, 3),
        "gap": gap,
        "allowed": allowed,
        "agrees": abs(gap) <= allowed,
    }


def judge(result: dict[str, Any]) -> dict[str, Any]:
    """The result with each counted median's `agreement` with its pooled fit, from the
    survival runs and the pooled fit it holds: a new run's, or a stored go-fit.json's
    (`--verdict-only`), whose verdict before this one (`p_in_pooled_range`, the median
    held to the range as if exact) it replaces."""
    pooled = result["pooled_fit"]
    survival = {
        "realprof": result["realprof_survival_runs"],
        "cprobe": result["cprobe_survival_runs"],
    }
    verdicts = {}
    for name, runs in survival.items():
        ps = [r["p"] for r in runs if r.get("p") is not None]
        if ps and pooled.get("p") is not None:
            verdicts[name] = agreement(pooled, ps)
    result.pop("p_in_pooled_range", None)
    result["p_agrees_with_pooled_fit"] = verdicts
    return result


def run_fit(command: list[str]) -> dict[str, Any]:
    """The fitted p and its range from the fit command's output (None when refused)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    match = _FIT_LINE.search(done.stdout)
    if done.returncode != 0 or match is None:
        return {"p": None, "error": (done.stderr.strip() or done.stdout.strip())[:300]}
    return {k: float(v) for k, v in match.groupdict().items()} | {"output": done.stdout}


def go_fit_check(
    out: Path,
    repeat: int = 3,
    duration_s: float = 4.0,
    threads: int = 2,
    rate_hz: int = 250,
    go: GoVariant | None = None,
) -> dict[str, Any]:
    """Measure p, run the emulated Go, fit its profiles: the JSON-ready result.

    `go`: the Go release that runs under the go1.17 emulation (None: the `go` on PATH), the
    same Go run (`lab.go_variant.GoVariant`) as the grid's and `compare`'s."""
    variant = (go or path_variant()).emulated(EMULATIONS["go1.17"])
    hz = kernel_hz()[0] or 250
    cpus = usable_cpus()
    wanted = cpus_wanted("native", threads, cpus)
    realprof_runs: list[dict[str, Any]] = []
    probe_runs: list[dict[str, Any]] = []
    go_runs: list[dict[str, Any]] = []
    for i in range(repeat):
        realprof_runs.append(calibrate.survival_run(P_RATE_HZ, 2, duration_s, hz))
        probe_runs.append(cprobe.probe_run(2, P_RATE_HZ, duration_s, hz))
        scenario = cell_scenario("native", threads, rate_hz, "process", duration_s, {}, "go1.18")
        where = out / f"go-{i + 1}"
        report, profile = run_go_world(scenario, where, variant=variant)
        command = fit_command([(where / "cpu.pb.gz", report.cpu_seconds)], cpus, hz, threads)
        go_runs.append(
            {
                "profile": str(where / "cpu.pb.gz"),
                "cpu_seconds": report.cpu_seconds,
                "samples": profile.total_samples,
                "capture_ratio": report.capture_ratio,
                "machine_busy": not got_its_cpus(report.cpu_seconds, wanted, duration_s),
                "fit_command": " ".join(["python", *command[1:]]),
                "fit": run_fit(command),
            }
        )

    def median_p(runs: list[dict[str, Any]]) -> float | None:
        values = [r["p"] for r in runs if r.get("p") is not None]
        return round(statistics.median(values), 4) if values else None

    measured = {"realprof": median_p(realprof_runs), "cprobe": median_p(probe_runs)}
    verdicts = {
        name: [
            run["fit"]["p"] is not None and run["fit"]["low"] <= p <= run["fit"]["high"]
            for run in go_runs
        ]
        for name, p in measured.items()
        if p is not None
    }
    # All the Go profiles in one fit, as a user with several would: the range then holds
    # the run-to-run drift of p as well as each profile's counting noise.
    usable = [run for run in go_runs if not run["machine_busy"]]
    pooled_command = fit_command(
        [(Path(run["profile"]), run["cpu_seconds"]) for run in usable], cpus, hz, threads
    )
    pooled = run_fit(pooled_command) if usable else {"p": None, "error": "every Go run was busy"}
    result = {
        "command": "python -m realprof go-fit",
        "cell": f"{threads} busy goroutines, {cpus} CPUs, HZ={hz}, {rate_hz} Hz, {variant.world}",
        "load_average": os.getloadavg(),
        # p is the host's: which host, for the record (lab.machine).
        "machine": machine_facts(),
        "measured_p": measured,
        "realprof_survival_runs": realprof_runs,
        "cprobe_survival_runs": [
            {k: r[k] for k in ("p", "rounds", "capture_ratio", "cpu_seconds")} for r in probe_runs
        ],
        "go_runs": go_runs,
        "p_in_fitted_range": verdicts,
        "pooled_fit_command": " ".join(["python", *pooled_command[1:]]),
        "pooled_fit": pooled,
    }
    return judge(result)


def read_result(path: Path) -> dict[str, Any]:
    """A go-fit.json as `go_fit_check` wrote it; ValueError naming what is wrong."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read go-fit data: {exc}") from exc
    needed = ("cell", "load_average", "measured_p", "realprof_survival_runs")
    needed += ("cprobe_survival_runs", "go_runs", "p_in_fitted_range", "pooled_fit")
    needed += ("pooled_fit_command",)
    missing = [key for key in needed if not isinstance(result, dict) or key not in result]
    if missing:
        raise ValueError(
            f"{path}: not go-fit data (written by python -m realprof go-fit): "
            f"no {', '.join(missing)}"
        )
    try:
        render(judge(dict(result)))
    except (KeyError, TypeError, AttributeError, ValueError, statistics.StatisticsError) as exc:
        raise ValueError(
            f"{path}: not go-fit data (written by python -m realprof go-fit): "
            f"{type(exc).__name__} {exc}"
        ) from exc
    return result


def render(result: dict[str, Any]) -> str:
    """The result as text: measured p, each Go run's fit, the verdicts."""
    host = result.get("machine") or {}
    where = f"; {host.get('cpu_model')}, Linux {host.get('kernel')}" if host else ""
    load = ", ".join(f"{x:.2f}" for x in result["load_average"])
    lines = [f"{result['cell']}{where}; load average {load}"]
    realprof_ps = [r["p"] for r in result["realprof_survival_runs"]]
    probe_ps = [r["p"] for r in result["cprobe_survival_runs"]]
    lines.append(
        f"measured p ({P_RATE_HZ} Hz, 2 threads, counted in tick rounds): realprof median "
        f"{result['measured_p']['realprof']} (runs {realprof_ps}); C probe median "
        f"{result['measured_p']['cprobe']} (runs {probe_ps})"
    )
    for i, run in enumerate(result["go_runs"], 1):
        fit = run["fit"]
        fitted = (
            f"fitted p {fit['p']:.3f} (range {fit['low']:.3f} to {fit['high']:.3f})"
            if fit["p"] is not None
            else f"no fit: {fit['error']}"
        )
        busy = " (machine busy: fewer CPUs than asked)" if run["machine_busy"] else ""
        lines.append(
            f"Go run {i}: {run['samples']} samples, process CPU {run['cpu_seconds']:.2f} s, "
            f"capture {run['capture_ratio']:.3f}{busy}: {fitted}"
        )
        lines.append(f"  {run['fit_command']}")
    for name, verdict in result["p_in_fitted_range"].items():
        lines.append(
            f"{name}'s p in one run's fitted range (counting noise only): "
            f"{sum(verdict)}/{len(verdict)} Go runs"
        )
    pooled = result["pooled_fit"]
    if pooled["p"] is None:
        lines.append(f"all Go runs in one fit: no fit: {pooled['error']}")
    else:
        lines.append(
            f"all Go runs in one fit: p {pooled['p']:.3f} (range {pooled['low']:.3f} to "
            f"{pooled['high']:.3f}, with the runs' scatter)"
        )
        lines.append(f"  {result['pooled_fit_command']}")
        for name, verdict in result["p_agrees_with_pooled_fit"].items():
            agrees = verdict["agrees"]
            lines.append(
                f"{name}'s median p {verdict['median']} (SE {verdict['median_se']} from its "
                f"runs) is {abs(verdict['gap']):.3f} {'below' if verdict['gap'] < 0 else 'above'}"
                f" it, {'within' if agrees else 'beyond'} the {verdict['allowed']:.3f} that the "
                f"range and t = {verdict.get('t', Z_RANGE):.2f} such SEs allow: Go's p "
                f"{'does not differ' if agrees else 'differs'} from {name}'s"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m realprof go-fit", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for files (default go-fit; with --verdict-only, none: print only)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    parser.add_argument("--threads", type=int, default=2, help="busy goroutines")
    parser.add_argument("--rate-hz", type=int, default=250)
    parser.add_argument(
        "--verdict-only",
        type=Path,
        metavar="GO_FIT_JSON",
        help="judge a stored go-fit.json again with this verdict; runs nothing",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.duration <= 0 or args.threads < 1 or args.rate_hz < 1:
        print("error: --repeat, --threads, --rate-hz >= 1 and --duration > 0", file=sys.stderr)
        return 2
    if args.verdict_only:
        try:
            result = judge(read_result(args.verdict_only))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        # Written, where asked, under its own name: a sitting re-judged stays that sitting.
        target = args.out / args.verdict_only.name if args.out else None
    else:
        out = args.out or Path("go-fit")
        try:
            result = go_fit_check(out, args.repeat, args.duration, args.threads, args.rate_hz)
        except (GoWorldError, calibrate.CalibrationError, cprobe.CProbeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        target = out / "go-fit.json"
    sys.stdout.write(render(result))
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {target}", file=sys.stderr)
    return 0
