"""Command line: `python -m realprof record | show | scenario` (console script `realprof`).

``record`` profiles a Python program *in this process*: the sampler is started, the
target runs through `runpy` exactly as `python script.py` or `python -m module` would
run it (its own `sys.argv`, `sys.path[0]` set the way the interpreter sets it, run as
`__main__`), and the profile is written when it ends, however it ends. In-process is the
point: an in-process SIGPROF sampler sees the program's threads and Python frames from
the inside, with the program's own thread states, which a profiler in another process
could only read from outside. The target keeps its exit status (its `SystemExit` code, 1
after an uncaught exception, whose traceback is printed without our own frames because
the error is the target's, 130 after Ctrl-C), and non-daemon threads are waited for
before profiling stops, as the interpreter waits for them at exit. What cannot be
caught: `os._exit()` and fatal signals end the process before the profile is written.
The runner's own frames (this module, runpy) are cut from the root end of the stacks,
so the profile shows the program as `python script.py` would run it. The summary's
"expected" is process CPU × rate; process CPU includes the sampler's reader thread,
which per-thread timers do not sample, so capture reads a little low for a short run.

``show`` summarises a profile (pprof, folded or speedscope, as `contract.profile.Profile.load`
reads them) or a `report.json` (`contract.report.Report`).

``scenario`` runs a scenario's workload for real (`lab.workload`) and prints or
writes the same report as `python -m sim`. `compare`, `calibrate` and `grid` are
dispatched to `realprof.<command>.main(argv)` when such a module exists.

Every kind of bad input (a missing script or module, an unknown flag, a bad value, an
unwritable output, an unreadable file) ends with one line on stderr and exit status 2,
never a traceback of ours.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import math
import os
import runpy
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from contract.cli import OneLineParser, add_scenario_options

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
DEFAULT_OUTPUT = {
    "pprof": "realprof.pb.gz",
    "folded": "realprof.folded",
    "speedscope": "realprof.speedscope.json",
}
TIMERS = ("process", "per-thread", "both", "perf")
HANDLERS = ("c", "python")
FORMATS = ("pprof", "folded", "speedscope")
# Commands other modules may provide later (each with `main(argv) -> int`).
_MODULE_COMMANDS = ("compare", "calibrate", "grid")


class UsageError(Exception):
    """Bad input; the message is one line for the user (exit status 2)."""


class _Parser(OneLineParser):
    """The project's one-line parser, without prefix matching of long options (a record
    command's options must never swallow an abbreviation meant for the program)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def _err(*lines: str) -> None:
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
        for line in lines:
            stream.write(line + "\n")
        stream.flush()


# ---------------------------------------------------------------------------------------
# value checks shared by the commands


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 1_000_000):
        raise argparse.ArgumentTypeError(
            f"expected a number of samples per CPU-second in (0, 1000000], got {text!r}"
        )
    return value


def _int_in(low: int, high: int | None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {text!r}")
        return value

    return parse


def _check_writable_dir(directory: Path, what: str) -> None:
    """Fail now, before minutes of profiling, if `directory` cannot take a new file."""
    if not directory.exists():
        raise UsageError(f"{what}: directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise UsageError(f"{what}: {str(directory)!r} is not a directory")
    # A real file, not os.access: root passes every permission check but not a
    # read-only mount or a full disk.
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".realprof-probe-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{what}: cannot write in {str(directory)!r}: {exc.strerror or exc}"
        ) from None


# ---------------------------------------------------------------------------------------
# record

_RECORD_VALUE_OPTIONS = (
    "-o",
    "--output",
    "--hz",
    "--timer",
    "--handler",
    "--format",
    "--buffer-words",
    "--max-depth",
)


def _record_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m realprof record",
        usage=(
            "python -m realprof record [-o OUT] [--hz N] [--timer {process,per-thread,both,perf}]"
            " [--handler {c,python}] [--format {pprof,folded,speedscope}]"
            " [--buffer-words N] [--max-depth N] (script.py | -m module) [args ...]"
        ),
        description=(
            "Run a Python program in this process under realprof's SIGPROF sampler and "
            "write its CPU profile. Options go before the program; everything after the "
            "script (or -m module) is the program's own argv."
        ),
    )
    parser.add_argument(
        "-o",
        "--output",
        help="profile file (default realprof.pb.gz; the format follows the suffix: "
        ".pb.gz/.pprof pprof, .folded/.txt folded, .speedscope.json/.json speedscope)",
    )
    parser.add_argument(
        "--hz", type=_rate, default=100.0, help="samples per CPU-second (default 100)"
    )
    parser.add_argument(
        "--timer",
        choices=TIMERS,
        help="per-thread (default with the C handler): one CPU timer per thread; process: "
        "one setitimer for the whole process; both: the two, duplicates filtered; perf: one "
        "perf_event task-clock event per thread, not limited by the kernel tick",
    )
    parser.add_argument(
        "--handler",
        choices=HANDLERS,
        default="c",
        help="c (default): the async-signal-safe C handler; python: the naive "
        "signal.signal handler (process timer only; samples the main thread)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, help="output format (default: from the -o suffix)"
    )
    parser.add_argument(
        "--buffer-words",
        type=_int_in(16, None),
        default=131072,
        help="ring buffer capacity in 8-byte words (default 131072, Go's profBufWordCount)",
    )
    parser.add_argument(
        "--max-depth",
        type=_int_in(1, 1024),
        default=64,
        help="frames kept per stack, leaf end (default 64, Go's limit)",
    )
    return parser


def _split_record_argv(argv: list[str]) -> tuple[list[str], str | None, str | None, list[str]]:
    """(our options, "script" | "module" | None, target, target's args).

    Like the interpreter's own command line, option parsing stops at the script or at
    `-m MODULE`: whatever follows belongs to the target, flags included.
    """
    options: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            if i + 1 >= len(argv):
                return options, None, None, []
            return options, "script", argv[i + 1], argv[i + 2 :]
        if token == "-m":
            if i + 1 >= len(argv):
                raise UsageError("argument -m: expected a module name")
            return options, "module", argv[i + 1], argv[i + 2 :]
        if token.startswith("-m") and not token.startswith("--"):
            return options, "module", token[2:], argv[i + 1 :]
        if token in ("-h", "--help"):
            options.append(token)
        elif token in _RECORD_VALUE_OPTIONS:
            if i + 1 >= len(argv):
                raise UsageError(f"argument {token}: expected a value")
            options += [token, argv[i + 1]]
            i += 1
        elif (token.startswith("--") and token.partition("=")[0] in _RECORD_VALUE_OPTIONS) or (
            token.startswith("-o") and len(token) > 2  # -oFILE
        ):
            options.append(token)
        elif token == "-":
            raise UsageError("reading the program from stdin is not supported; give a file")
        elif token.startswith("-"):
            known = ", ".join(("-m", *_RECORD_VALUE_OPTIONS))
            raise UsageError(f"unknown option {token!r} (options: {known})")
        else:
            return options, "script", token, argv[i + 1 :]
        i += 1
    return options, None, None, []


def _resolve_output(args: argparse.Namespace) -> tuple[Path, str]:
    from contract.profile import format_for_path

    if args.output is None:
        fmt = args.format or "pprof"
        return Path(DEFAULT_OUTPUT[fmt]), fmt
    path = Path(args.output)
    if args.format:
        return path, args.format
    try:
        return path, format_for_path(path)
    except ValueError:
        raise UsageError(
            f"-o {args.output}: cannot tell the format from the name; use a suffix "
            "(.pb.gz, .folded, .speedscope.json) or --format pprof|folded|speedscope"
        ) from None


def _check_target(kind: str, target: str) -> None:
    """Fail with one line if the script or module cannot be run."""
    if kind == "script":
        path = Path(target)
        if not path.exists():
            raise UsageError(f"cannot open script {target!r}: no such file")
        if path.is_dir() and not (path / "__main__.py").exists():
            raise UsageError(f"cannot run directory {target!r}: it has no __main__.py")
        if not (path.is_file() or path.is_dir()):
            raise UsageError(f"cannot run {target!r}: not a regular file")
        if path.is_file() and not os.access(path, os.R_OK):
            raise UsageError(f"cannot open script {target!r}: permission denied")
        return
    if (
        not target
        or target.startswith(".")
        or not all(part.isidentifier() for part in target.split("."))
    ):
        raise UsageError(f"-m {target!r}: not a module name")
    try:
        spec = importlib.util.find_spec(target)
        # A package runs as PACKAGE.__main__, as with python -m.
        if (
            spec is not None
            and spec.submodule_search_locations is not None
            and importlib.util.find_spec(f"{target}.__main__") is None
        ):
            raise UsageError(f"-m {target}: is a package without __main__ and cannot be run")
    except UsageError:
        raise
    except Exception as exc:  # the parent package failed to import
        raise UsageError(
            f"-m {target}: cannot import: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None
    if spec is None:
        raise UsageError(f"-m {target}: no module named {target!r}")


def _path_entry(kind: str, target: str) -> str:
    """What the interpreter would put in sys.path[0] for this target."""
    if kind == "module":
        return os.getcwd()  # `python -m module`: the current directory
    path = Path(target)
    if path.is_dir() or _is_zip(path):
        return str(path.resolve())  # a directory or zip runs from itself
    # `python script.py`: the script's directory, symlinks resolved.
    return str(Path(os.path.realpath(target)).parent)


def _is_zip(path: Path) -> bool:
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


# Files of the runner between the interpreter and the target: this module and runpy
# (frozen since 3.11, so its frames say "<frozen runpy>").
_RUNNER_FILES = {
    os.path.abspath(__file__),
    os.path.abspath(runpy.__file__),
    "<frozen runpy>",
}


def _is_runner_file(filename: str) -> bool:
    if filename.startswith("<"):
        return filename in _RUNNER_FILES
    return os.path.abspath(filename) in _RUNNER_FILES


def _print_target_exception(exc: BaseException) -> None:
    """The target's traceback, without the frames of this module and runpy above it."""
    tb = exc.__traceback__
    while tb is not None and _is_runner_file(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    # The default hook prints the exception's own __traceback__ when it has one, so the
    # trimmed traceback must be set on the exception, not only passed.
    exc.__traceback__ = tb
    hook = sys.excepthook
    try:
        hook(type(exc), exc, tb)
    except Exception:  # the target's hook failed: fall back to the default printer
        traceback.print_exception(type(exc), exc, tb)


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code & 0xFF if code >= 0 else code % 256
    if isinstance(code, bool):
        return int(code)
    _err(str(code))  # sys.exit("message"): the interpreter prints it and exits 1
    return 1


def _wait_for_threads() -> None:
    # The interpreter waits for non-daemon threads before it exits (threading._shutdown);
    # their CPU time belongs in the profile.
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread.is_alive():
            thread.join()


def _run_target(kind: str, target: str, target_args: list[str]) -> tuple[int, str]:
    """Run the target as __main__; return (exit status, how it ended)."""
    saved_argv = sys.argv[:]
    sys.argv = [target, *target_args]
    try:
        try:
            if kind == "script":
                runpy.run_path(target, run_name="__main__")
            else:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            status, how = 0, "exited with 0"
        except SystemExit as exc:
            status = _exit_code(exc)
            how = f"exited with {status}"
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED, "interrupted (Ctrl-C)"
        except Exception as exc:
            _print_target_exception(exc)
            status, how = 1, f"raised {type(exc).__name__}"
        try:
            _wait_for_threads()
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED, "interrupted (Ctrl-C) while waiting for its threads"
        return status, how
    finally:
        sys.argv = saved_argv


def _without_runner_frames(profile: Any) -> Any:
    """The profile with the runner's frames (this CLI, runpy) cut from the root end.

    The main thread's stacks go target frames -> runpy -> record_main -> main; a user
    wants to see their program's stacks, as under `python script.py`. A sample with
    nothing but runner frames (taken in the runner itself) keeps its stack.
    """
    from contract.profile import Frame, Profile

    clean = Profile(
        profile.rate_hz,
        start_time_ns=profile.start_time_ns,
        duration_ns=profile.duration_ns,
        comments=profile.comments,
    )
    clean.period_ns = profile.period_ns
    printing = Frame("[realprof: printing the target's traceback]")
    for (stack, thread), count in profile.samples.items():
        if any(f.function == "_print_target_exception" and _is_runner_file(f.file) for f in stack):
            # The runner's own work after the target raised (still profiled, as Python
            # prints the traceback before it waits for the program's threads).
            clean.add((printing,), thread, count)
            continue
        end = len(stack)
        while end > 0 and _is_runner_file(stack[end - 1].file):
            end -= 1
        clean.add(stack[:end] if end else stack, thread, count)
    for kind, count in profile.lost.items():
        clean.add_lost(kind, count)
    return clean


def _open_hint(path: str, fmt: str) -> str:
    if fmt == "pprof":
        return f"open with: go tool pprof -top {path} / speedscope {path}"
    if fmt == "folded":
        return f"open with: speedscope {path} / flamegraph.pl {path} > flame.svg"
    return f"open with: speedscope {path} (or drop it on https://www.speedscope.app)"


def _top_lines(profile: Any, n: int, indent: str = "  ") -> list[str]:
    total = profile.total_samples
    rows = profile.top(n)
    if not rows or not total:
        return [f"{indent}(no samples)"]
    locations: dict[str, str] = {}
    for (stack, _thread), _count in profile.samples.items():
        leaf = stack[0]
        if leaf.function not in locations and leaf.file:
            first = f":{leaf.start_line}" if leaf.start_line else ""
            locations[leaf.function] = f"{leaf.file}{first}"
    width = max(len(name) for name, _flat, _cum in rows)
    lines = [f"{indent}{'flat':>6}  {'flat%':>6}  {'cum%':>6}  function"]
    for name, flat, cum in rows:
        where = locations.get(name, "")
        lines.append(
            f"{indent}{flat:>6,}  {flat / total:>6.1%}  {cum / total:>6.1%}  "
            f"{name:<{width}}  {where}".rstrip()
        )
    return lines


def record_main(argv: list[str]) -> int:
    options, kind, target, target_args = _split_record_argv(argv)
    parser = _record_parser()
    args = parser.parse_args(options)
    if kind is None or target is None:
        parser.error("no program to profile: give script.py [args] or -m module [args]")
    handler = args.handler
    timer = args.timer or ("process" if handler == "python" else "per-thread")
    if handler == "python" and timer != "process":
        parser.error(
            f"--handler python works only with --timer process (got {timer}): a Python "
            "signal handler runs on the main thread and cannot own per-thread timers"
        )
    if args.output is not None and Path(args.output).is_dir():
        raise UsageError(f"-o {args.output}: is a directory; give a file name")
    output, fmt = _resolve_output(args)
    _check_writable_dir(output.parent, f"-o {output}")
    # sys.path[0] as the interpreter would set it, before looking for a -m module (the
    # console script's own sys.path[0] is its bin directory).
    saved_path0 = sys.path[0] if sys.path else None
    if sys.path:
        sys.path[0] = _path_entry(kind, target)
    else:
        sys.path.insert(0, _path_entry(kind, target))
    try:
        _check_target(kind, target)
        return _record(args, kind, target, target_args, output, fmt, handler, timer)
    finally:
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0


def _record(
    args: argparse.Namespace,
    kind: str,
    target: str,
    target_args: list[str],
    output: Path,
    fmt: str,
    handler: str,
    timer: str,
) -> int:

    from realprof.sampler import Sampler, c_handler_available, integrity_notes

    if handler == "c":
        ok, why = c_handler_available()
        if not ok:
            _err(f"realprof: warning: {why}; using the Python handler and the process timer")
            handler, timer = "python", "process"
    # Absolute now: the target may chdir.
    output_abs = output.resolve()
    try:
        sampler = Sampler(
            rate_hz=args.hz,
            timer=timer,
            handler=handler,
            buffer_words=args.buffer_words,
            max_depth=args.max_depth,
        )
    except ValueError as exc:  # limits of the ring or the kernel (see Sampler)
        raise UsageError(str(exc)) from None
    wall0 = time.perf_counter()
    cpu0 = time.process_time()

    def write_before_exec(running: Any) -> None:
        # exec replaces this process: what was sampled so far is the whole profile.
        running.collect()
        running.profile.duration_ns = int((time.perf_counter() - wall0) * 1e9)
        _without_runner_frames(running.profile).write(output_abs, fmt)
        _err(f"realprof: the target execs another program; wrote the profile so far to {output}")

    sampler.before_exec.append(write_before_exec)
    try:
        sampler.start()
    except (RuntimeError, OSError) as exc:  # e.g. timer_create refused, SIGPROF taken
        raise UsageError(f"cannot start the sampler: {exc}") from None
    try:
        status, how = _run_target(kind, target, target_args)
    finally:
        profile = _without_runner_frames(sampler.stop())
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        try:
            profile.write(output_abs, fmt)
            written = None
        except OSError as exc:
            written = f"cannot write {output}: {exc.strerror or exc}"
    stats = sampler.stats
    shown = f"-m {target}" if kind == "module" else target
    expected = cpu * args.hz
    in_profile = profile.total_samples
    lost = stats.get("samples_lost_overflow", 0) + profile.lost.get("unknown_code", 0)
    capture = f"{in_profile / expected:.1%}" if expected else "—"
    lines = [
        f"realprof: {shown} {how}; profiled {wall:.3f} s wall, {cpu:.3f} s process CPU "
        f"(handler {handler}, timer {timer}, {args.hz:g} Hz)",
        f"  samples: expected {expected:,.1f}, delivered {stats.get('signals_delivered', 0):,}"
        f", recorded {stats.get('samples_recorded', 0):,}, lost {lost:,}, in profile "
        f"{in_profile:,}; capture {capture}",
    ]
    extra = [
        f"{name} {stats[key]:,}"
        for key, name in (
            ("signals_discarded", "discarded"),
            ("signals_merged", "merged"),
            ("timer_overruns", "timer overruns"),
        )
        if stats.get(key)
    ]
    if extra:
        lines.append("  (" + ", ".join(extra) + ")")
    lines += [f"  warning: {note}" for note in integrity_notes(stats)]
    lines.append("  top functions:")
    lines += _top_lines(profile, 10, indent="    ")
    if written is None:
        lines.append(f"  wrote {output} ({fmt}); {_open_hint(str(output), fmt)}")
        _err(*lines)
        return status
    _err(*lines)
    _err(f"realprof: error: {written}")
    return EXIT_BAD_INPUT


# ---------------------------------------------------------------------------------------
# show


def _sniff_format(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        return "pprof (gzip)"
    if data.lstrip()[:1] == b"{":
        return "speedscope"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "pprof"
    return "folded"


def _show_profile(path: Path, data: bytes, top: int) -> None:
    from contract.profile import LOST_FUNCTIONS, Profile

    profile = Profile.from_bytes(data, str(path))
    total = profile.total_samples
    cpu_s = total * profile.period_ns / 1e9
    duration_s = profile.duration_ns / 1e9
    lines = [
        f"{path}: {_sniff_format(data)} profile",
        f"  samples: {total:,} at {profile.rate_hz:g} Hz (period {profile.period_ns / 1e6:g} ms)"
        f" = {cpu_s:.3f} s CPU",
    ]
    if duration_s > 0:
        lines.append(f"  duration: {duration_s:.3f} s wall ({cpu_s / duration_s:.1%} CPU)")
    else:
        lines.append("  duration: not recorded in this format")
    if profile.lost:
        parts = ", ".join(
            f"{kind} {count:,} ({LOST_FUNCTIONS[kind]})"
            for kind, count in sorted(profile.lost.items())
        )
        lines.append(f"  lost: {profile.total_lost:,}: {parts}")
    else:
        lines.append("  lost: 0")
    lines.append("  top functions:")
    lines += _top_lines(profile, top, indent="    ")
    threads = profile.by_thread()
    named = {name: count for name, count in threads.items() if name}
    if named:
        lines.append("  threads:")
        for name, count in sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            lines.append(f"    {count:>6,}  {count / max(total, 1):>6.1%}  {name}")
        if len(named) > top:
            lines.append(f"    … {len(named) - top} more")
    for comment in profile.comments:
        lines.append(f"  comment: {comment}")
    sys.stdout.write("\n".join(lines) + "\n")


def show_main(argv: list[str]) -> int:
    parser = _Parser(
        prog="python -m realprof show",
        description="Summarise a profile (pprof, folded, speedscope) or a report.json.",
    )
    parser.add_argument("file", help="profile or report.json")
    parser.add_argument("--top", type=_int_in(1, None), default=10, help="rows per table")
    args = parser.parse_args(argv)
    path = Path(args.file)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a profile or report")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if data.lstrip()[:1] == b"{":
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None  # let the profile reader name the problem
        if isinstance(document, dict) and "world" in document and "$schema" not in document:
            from contract.report import Report, ReportError

            try:
                report = Report.from_dict(document, str(path))
            except ReportError as exc:
                raise UsageError(f"{path}: not a valid report.json: {exc.problem}") from None
            sys.stdout.write(report.to_text(top=args.top))
            return 0
    from contract.profile import ProfileFormatError

    try:
        _show_profile(path, data, args.top)
    except ProfileFormatError as exc:
        raise UsageError(str(exc)) from None
    return 0


# ---------------------------------------------------------------------------------------
# scenario


def scenario_main(argv: list[str]) -> int:
    parser = _Parser(
        prog="python -m realprof scenario",
        description=(
            "Run a scenario's workload for real on this machine under realprof and report "
            "it like `python -m sim` (world: real)."
        ),
    )
    add_scenario_options(
        parser,
        seed_help="override the scenario's seed (recorded only)",
        set_example="workload.duration_s=3",
    )
    parser.add_argument("--top", type=_int_in(1, None), default=10, help="rows per table")
    args = parser.parse_args(argv)

    from contract.scenario import ScenarioError
    from contract.scenario_file import load_scenario
    from lab.workload import RealWorldError, real_settings, run_scenario

    try:
        scenario = load_scenario(args.scenario, args.overrides, args.seed)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    try:
        real_settings(scenario, args.scenario)  # refuse before creating anything
    except RealWorldError as exc:
        raise UsageError(str(exc)) from None
    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out}: exists and is not a directory")
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot create: {exc.strerror or exc}") from None
        _check_writable_dir(args.out, f"--out {args.out}")
    try:
        result = run_scenario(scenario, args.scenario, progress=lambda line: _err(line))
    except RealWorldError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        sys.stdout.write(result.report.to_json())
    else:
        sys.stdout.write(result.report.to_text(top=args.top))
    sys.stdout.flush()
    if args.out is not None:
        from figures.outputs import write_outputs

        written = write_outputs(result, args.out, warn=_err)
        _err(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------
# dispatch

_USAGE = """\
usage: python -m realprof COMMAND ...

commands:
  record [options] (script.py | -m module) [args ...]
                       run a Python program under the sampler and write its profile
  show FILE            summarise a profile (pprof, folded, speedscope) or a report.json
  scenario SCENARIO.yaml [--out DIR] [--json] [--set PATH=VALUE ...] [--seed N]
                       run a scenario's workload for real and report it like the simulator

`python -m realprof COMMAND --help` explains each command.
"""


def _module_command(name: str) -> Any:
    """`main` of realprof.<name>, if that module exists (commands added later)."""
    if importlib.util.find_spec(f"lab.{name}") is None:
        return None
    return getattr(importlib.import_module(f"lab.{name}"), "main", None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"record": record_main, "show": show_main, "scenario": scenario_main}
    prog = "python -m realprof"
    try:
        if not argv:
            raise UsageError(f"no command; commands: {', '.join(commands)} ({prog} --help)")
        command, rest = argv[0], argv[1:]
        if command in ("-h", "--help", "help"):
            sys.stdout.write(_USAGE)
            return 0
        handler = commands.get(command)
        if handler is None and command in _MODULE_COMMANDS:
            handler = _module_command(command)
            if handler is None:
                raise UsageError(f"command {command!r} is not available in this version")
        if handler is None:
            raise UsageError(
                f"unknown command {command!r}; commands: {', '.join(commands)} ({prog} --help)"
            )
        prog = f"{prog} {command}"
        return handler(rest)
    except UsageError as exc:
        _err(f"{prog}: error: {exc}")
        return EXIT_BAD_INPUT
    except SystemExit as exc:
        # argparse's exits (--help: 0, a bad flag: 2); the target's SystemExit never gets
        # here, record turns it into the target's status.
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
