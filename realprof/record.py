"""`python -m realprof record`: run a Python program under the sampler, write its profile.

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
caught: `os._exit()` and fatal signals end the process before the profile is written;
an `os.exec*` writes the profile so far first (the sampler's `before_exec`).
The runner's own frames (this module, the `realprof.__main__` dispatcher, runpy) are cut
from the root end of the stacks, so the profile shows the program as `python script.py`
would run it. The summary's "expected" is process CPU × rate; process CPU includes the
sampler's reader thread, which per-thread timers do not sample, so capture reads a
little low for a short run.

Nothing heavy is imported before the target runs (no simulator, no matplotlib): what
this module loads stays in the profiled process and its `sys.modules`.

Bad input (a missing script or module, an unknown flag, a bad value, an unwritable
output) raises `contract.cli.UsageError`: one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import runpy
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from contract.cli import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    CommandParser,
    UsageError,
    check_writable_dir,
    err,
    int_in,
)
from contract.profile import Frame, Profile
from contract.profile_files import FORMATS, format_for_path, write_profile
from realprof.show import top_lines

DEFAULT_OUTPUT = {
    "pprof": "realprof.pb.gz",
    "folded": "realprof.folded",
    "speedscope": "realprof.speedscope.json",
}
TIMERS = ("process", "per-thread", "both", "perf")
HANDLERS = ("c", "python")


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
    parser = CommandParser(
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
        type=int_in(16, None),
        default=131072,
        help="ring buffer capacity in 8-byte words (default 131072, Go's profBufWordCount)",
    )
    parser.add_argument(
        "--max-depth",
        type=int_in(1, 1024),
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


# Files of the runner between the interpreter and the target: the dispatcher
# (realprof/__main__.py, named by path: importing it here would be a cycle), this module
# and runpy (frozen since 3.11, so its frames say "<frozen runpy>").
_RUNNER_FILES = {
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py"),
    os.path.abspath(__file__),
    os.path.abspath(runpy.__file__),
    "<frozen runpy>",
}


def _is_runner_file(filename: str) -> bool:
    if filename.startswith("<"):
        return filename in _RUNNER_FILES
    return os.path.abspath(filename) in _RUNNER_FILES


def _print_target_exception(exc: BaseException) -> None:
    """The target's traceback, without the runner's frames (see _RUNNER_FILES) above it."""
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
    err(str(code))  # sys.exit("message"): the interpreter prints it and exits 1
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

    The main thread's stacks go target frames -> runpy -> record.main -> __main__.main; a user
    wants to see their program's stacks, as under `python script.py`. A sample with
    nothing but runner frames (taken in the runner itself) keeps its stack.
    """
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


def main(argv: list[str]) -> int:
    """`record` with its arguments; returns the target's exit status."""
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
    check_writable_dir(output.parent, f"-o {output}")
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

    import resource

    from realprof.sampler import (
        Sampler,
        c_handler_available,
        integrity_notes,
        record_hints,
        run_delay_seconds,
    )

    if handler == "c":
        ok, why = c_handler_available()
        if not ok:
            err(f"realprof: warning: {why}; using the Python handler and the process timer")
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
    # for the hints: CPU waited for (a busy machine) and spent in reaped children
    delay0 = run_delay_seconds()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)

    def write_before_exec(running: Any) -> None:
        # exec replaces this process: what was sampled so far is the whole profile.
        running.collect()
        running.profile.duration_ns = int((time.perf_counter() - wall0) * 1e9)
        write_profile(_without_runner_frames(running.profile), output_abs, fmt)
        err(f"realprof: the target execs another program; wrote the profile so far to {output}")

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
        run_delay = run_delay_seconds() - delay0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        children_cpu = (children.ru_utime - children0.ru_utime) + (
            children.ru_stime - children0.ru_stime
        )
        try:
            write_profile(profile, output_abs, fmt)
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
    if handler == "c":
        lines += [
            f"  hint: {hint}"
            for hint in record_hints(
                stats,
                hz=args.hz,
                timer=timer,
                samples=in_profile,
                process_cpu=cpu,
                run_delay=run_delay,
                children_cpu=children_cpu,
                followed_children=bool(getattr(args, "follow_children", False)),
            )
        ]
    lines.append("  top functions:")
    lines += top_lines(profile, 10, indent="    ")
    if written is None:
        lines.append(f"  wrote {output} ({fmt}); {_open_hint(str(output), fmt)}")
        err(*lines)
        return status
    err(*lines)
    err(f"realprof: error: {written}")
    return EXIT_BAD_INPUT
