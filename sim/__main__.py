"""Command line: `python -m sim SCENARIO.yaml`, `python -m sim sweep ...`, `python -m sim fit ...`,
`python -m sim schema`.

Every kind of bad input (a missing or malformed scenario, an unknown flag, a bad
override) ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from contract.cli import EXIT_BAD_INPUT, add_scenario_options, counted, error_line, int_in
from contract.cli import OneLineParser as _Parser
from contract.scenario import ScenarioError, json_schema
from contract.scenario_file import load_scenario


def _window(text: str) -> tuple[float, float]:
    try:
        start, _, end = text.partition(":")
        window = (float(start), float(end))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:END in milliseconds, e.g. 0:40, got {text!r}"
        ) from None
    if window[1] <= window[0]:
        raise argparse.ArgumentTypeError(f"window end must be after its start, got {text!r}")
    return window


def _run_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m sim",
        description=(
            "Simulate Go's CPU profiler on a scenario and report what the profile holds and "
            "where samples were lost. Other commands: `python -m sim sweep ...`, "
            "`python -m sim fit ...`, "
            "`python -m sim schema`."
        ),
    )
    add_scenario_options(parser)
    parser.add_argument(
        "--timeline-ms",
        type=_window,
        default=(0.0, 40.0),
        metavar="START:END",
        help="window of the timeline figure, in ms (default 0:40)",
    )
    parser.add_argument("--top", type=int, default=10, help="rows in the attribution tables")
    return parser


def _sweep_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m sim sweep",
        description="Run a scenario over a grid of values and plot capture and error.",
    )
    add_scenario_options(
        parser, out_help="directory for sweep.json, sweep.csv, sweep.png", json_output=False
    )
    parser.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="PATH=V1,V2,...",
        help="a field and its values, e.g. --vary profiler.rate_hz=100,250,500 (repeatable)",
    )
    parser.add_argument(
        "--cpu-percent",
        action="store_true",
        help="also plot the CPU %% the profile shows (samples × period ÷ wall time, in %% of "
        "one CPU) under the capture ratio",
    )
    parser.add_argument("--jobs", type=int, default=1, help="parallel local processes")
    parser.add_argument("--cluster", help="address of a running Dask scheduler (optional extra)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run_main(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    if args.top < 1:
        _run_parser().error("--top must be at least 1")
    from sim.model import simulate

    scenario = load_scenario(args.scenario, args.overrides, args.seed)
    result = simulate(scenario, trace_window_ms=args.timeline_ms if args.out else None)
    if args.json:
        sys.stdout.write(result.report.to_json())
    else:
        sys.stdout.write(result.report.to_text(top=args.top))
    if args.out:
        # Imported here: the writer loads protobuf and matplotlib, which a run without
        # --out (and every bad-input error) does without.
        from figures.outputs import write_outputs

        written = write_outputs(result, args.out, warn=lambda line: print(line, file=sys.stderr))
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}", file=sys.stderr)
    return 0


def sweep_main(argv: list[str]) -> int:
    args = _sweep_parser().parse_args(argv)
    if args.jobs < 1:
        _sweep_parser().error("--jobs must be at least 1")
    from sim.sweep import parse_vary, run_sweep

    scenario = load_scenario(args.scenario, args.overrides, args.seed)
    vary = parse_vary(args.vary)
    result = run_sweep(
        scenario, vary, jobs=args.jobs, cluster=args.cluster, progress=not args.no_progress
    )
    sys.stdout.write(result.to_table())
    if args.out:
        written = result.write(args.out, cpu_percent=args.cpu_percent)
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}", file=sys.stderr)
    return 0


def _fit_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m sim fit",
        description=(
            "Find the same-round survival p that explains what you saw: the CPU the process "
            "used (top) and the CPU the profile shows (pprof), on a Go release whose profile "
            "comes from the process timer (go1.17 and older). Prints p with its range, the "
            "profile other Go releases and timers would show, and a scenario that reproduces it."
        ),
    )
    parser.add_argument("--cpus", type=int_in(1, 1024), required=True, help="the machine's CPUs")
    parser.add_argument(
        "--hz", type=int, choices=(100, 250, 300, 1000), required=True, help="CONFIG_HZ"
    )
    parser.add_argument("--go", required=True, help="the Go release that made the profile")
    parser.add_argument(
        "--top-percent",
        type=_positive,
        action="append",
        help="CPU %% the process used, as top shows it (once per --profile)",
    )
    parser.add_argument(
        "--process-cpu-s",
        type=_positive,
        action="append",
        help="CPU seconds the process used (once per --profile)",
    )
    parser.add_argument("--pprof-percent", type=_positive, help="CPU %% the profile shows")
    parser.add_argument("--duration-s", type=_positive, help="the profile's duration (seconds)")
    parser.add_argument(
        "--profile",
        type=Path,
        action="append",
        help="a profile file (profile.pb.gz): its samples, rate, duration; repeat it to fit "
        "several runs as one, with their scatter in the range",
    )
    parser.add_argument("--rate-hz", type=_positive, default=100.0, help="profile rate (100)")
    parser.add_argument("--threads", type=int_in(1, 4096), help="busy threads (ceil(top/100))")
    parser.add_argument("--preset", choices=("aligned", "skew-tick", "this-vm"), default="aligned")
    parser.add_argument("--out", type=Path, help="write the scenario here (else print it)")
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _observation(args: argparse.Namespace):
    from sim.fit import Observation, pool

    cpu_forms = [x for x in (args.top_percent, args.process_cpu_s) if x is not None]
    if len(cpu_forms) != 1:
        raise ScenarioError("give the process's CPU: one of --top-percent or --process-cpu-s")
    profiles = args.profile or []
    if not profiles:
        if args.pprof_percent is None:
            raise ScenarioError("say what the profile showed: --pprof-percent or --profile")
        if args.duration_s is None:
            raise ScenarioError("give the profile's duration: --duration-s")
        if len(cpu_forms[0]) != 1:
            raise ScenarioError("give the process's CPU once for one --pprof-percent")
        duration_s = args.duration_s
        samples = round(args.pprof_percent / 100 * duration_s * args.rate_hz)
        cpu_s = (args.process_cpu_s or [args.top_percent[0] / 100 * duration_s])[0]
        return Observation(
            args.cpus, args.hz, args.go, args.rate_hz, duration_s, cpu_s, samples, args.threads
        )
    if args.pprof_percent is not None:
        raise ScenarioError("give --profile or --pprof-percent, not both")
    if len(cpu_forms[0]) != len(profiles):
        raise ScenarioError(
            f"give the process's CPU once per --profile: {counted(len(profiles), 'profile')}, "
            f"{counted(len(cpu_forms[0]), 'CPU value')}"
        )
    if args.duration_s is not None and len(profiles) > 1:
        raise ScenarioError(
            "--duration-s applies to one --profile; several profiles each give their own"
        )
    from contract.profile import ProfileFormatError
    from contract.profile_files import read_profile

    observations = []
    for i, path in enumerate(profiles):
        try:
            profile = read_profile(path)
        except ProfileFormatError as exc:
            raise ScenarioError(str(exc)) from None
        rate_hz = 1e9 / profile.period_ns
        duration_s = args.duration_s or profile.duration_ns / 1e9 or None
        if duration_s is None:
            raise ScenarioError(f"{path} records no duration: give --duration-s")
        cpu_s = (
            args.process_cpu_s[i] if args.process_cpu_s else args.top_percent[i] / 100 * duration_s
        )
        observations.append(
            Observation(
                args.cpus,
                args.hz,
                args.go,
                rate_hz,
                duration_s,
                cpu_s,
                profile.total_samples,
                args.threads,
            )
        )
    return pool(observations)


def fit_main(argv: list[str]) -> int:
    args = _fit_parser().parse_args(argv)
    from sim.fit import fit, fitted_scenario, presets, to_text, write_scenario

    observation = _observation(args)
    result = fit(observation, presets()[args.preset]())
    sys.stdout.write(to_text(result))
    text = write_scenario(fitted_scenario(result), args.out)
    if args.out:
        print(f"\nwrote the scenario to {args.out}: python -m sim {args.out}")
    else:
        sys.stdout.write("\nthe scenario that reproduces it (--out FILE writes it):\n" + text)
    return 0


def schema_main(argv: list[str]) -> int:
    parser = _Parser(prog="python -m sim schema", description="Print the scenario JSON Schema.")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"sweep": sweep_main, "fit": fit_main, "schema": schema_main}
    try:
        if argv and argv[0] in commands:
            return commands[argv[0]](argv[1:])
        return run_main(argv)
    except ScenarioError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        # Output paths: an existing file where a directory should be, no permission, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(error_line(where + (exc.strerror or str(exc))), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
