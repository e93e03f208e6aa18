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
With `--duration SECONDS` a daemon thread (`realprof.deadline`) stops the sampler and
writes the profile after that much wall time, and the program runs on unprofiled; the
summary comes at its end.
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
import contextlib
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
    rate_in,
)
from contract.profile import Frame
from contract.profile_files import FORMATS, format_for_path, write_profile
from realprof.deadline import StopOnce
from realprof.show import top_lines

DEFAULT_OUTPUT = {
    "pprof": "realprof.pb.gz",
    "folded": "realprof.folded",
    "speedscope": "realprof.speedscope.json",
}
TIMERS = ("process", "per-thread", "both", "perf")
HANDLERS = ("c", "python")


_RECORD_VALUE_OPTIONS = (
    "-o",
    "--output",
    "--hz",
    "--timer",
    "--handler",
    "--format",
    "--buffer-words",
    "--max-depth",
    "--duration",
)
_RECORD_FLAGS = ("--follow-children",)


def _record_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="python -m realprof record",
        usage=(
            "python -m realprof record [-o OUT] [--hz N] [--timer {process,per-thread,both,perf}]"
            " [--handler {c,python}] [--format {pprof,folded,speedscope}]"
            " [--buffer-words N] [--max-depth N] [--follow-children] [--duration SECONDS]"
            " (script.py | -m module) [args ...]"
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
        "--hz", type=rate_in(1_000_000), default=100.0, help="samples per CPU-second (default 100)"
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
        default=None,
        help="ring buffer capacity in 8-byte words (default 131072 x ceil(hz/100), at most "
        "8388608: Go's profBufWordCount at its 100 Hz, as many seconds at any rate)",
    )
    parser.add_argument(
        "--max-depth",
        type=int_in(1, 1024),
        default=64,
        help="frames kept per stack, leaf end (default 64, Go's limit)",
    )
    parser.add_argument(
        "--follow-children",
        action="store_true",
        help="profile the program's Python child processes too (multiprocessing, "
        "subprocess) and merge them into the profile, each under a root frame and "
        "pprof label process='pid N (NAME)'",
    )
    parser.add_argument(
        "--duration",
        type=_seconds,
        metavar="SECONDS",
        help="profile only the first SECONDS of wall time: then sampling stops and the "
        "profile is written, and the program runs on to its end unprofiled (its exit "
        "status is kept; the summary comes when it ends)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


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
        if token in ("-h", "--help") or token in _RECORD_FLAGS:
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
            known = ", ".join(("-m", *_RECORD_VALUE_OPTIONS, *_RECORD_FLAGS))
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
    clean = profile.empty_copy()
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

    from realprof.sampler import (
        Sampler,
        c_handler_available,
        integrity_notes,
        mean_depth,
        record_hints,
        run_delay_seconds,
    )
    from realprof.sampler_notes import capture_comment, open_hint

    if handler == "c":
        ok, why = c_handler_available()
        if not ok:
            err(f"realprof: warning: {why}; using the Python handler and the process timer")
            handler, timer = "python", "process"
    # Absolute now: the target may chdir.
    output_abs = output.resolve()
    if args.duration is not None and fmt == "pprof":
        # The write at the deadline runs beside the program: importing protobuf then, a
        # file at a time while a busy main thread takes the GIL back every 5 ms, took
        # 0.6-0.7 s. Loaded now, before the program (contract/profile_files.py says why
        # it is not loaded otherwise).
        importlib.import_module("contract.pprof")
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
    follower = None
    if args.follow_children:  # realprof/children.py
        from realprof.children import Follower

        follower = Follower.for_sampler(sampler, sampler.buffer_words)
    shown = f"-m {target}" if kind == "module" else target
    # Stopped and written once: at the target's end, or at --duration (realprof.deadline).
    finished: dict[str, Any] = {}

    def finish() -> None:
        profile = _without_runner_frames(sampler.stop())
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        finished["run_delay"] = run_delay_seconds() - delay0
        # The file itself says how much of the CPU its samples stand for: a profile asked
        # above what the timer delivers otherwise claims a fraction of the run's CPU, and
        # only the record summary (gone once the terminal is) would say so.
        profile.comments.append(capture_comment(profile, cpu))
        merged = follower.merge(profile, shown, _without_runner_frames) if follower else profile
        finished.update(profile=profile, merged=merged, cpu=cpu, wall=wall, written=None)
        try:
            (follower.write if follower else write_profile)(merged, output_abs, fmt)
        except OSError as exc:
            finished["written"] = f"cannot write {output}: {exc.strerror or exc}"

    def reached() -> None:
        if finished["written"] is None:
            err(
                f"realprof: --duration {args.duration:g} s reached: sampling stopped, "
                f"wrote {output}; the program runs on"
            )

    once = StopOnce(
        finish,
        args.duration,
        reached,
        lambda exc: err(f"realprof: warning: stopping at --duration failed: {exc!r}"),
    )
    once.start()
    try:
        with follower or contextlib.nullcontext():
            status, how = _run_target(kind, target, target_args)
    finally:
        try:
            once.at_end()
        finally:
            if follower:
                follower.cleanup()
        profile, merged = finished["profile"], finished["merged"]
        cpu, wall, written = finished["cpu"], finished["wall"], finished["written"]
        run_delay = finished["run_delay"]
    if once.early:
        how += f" (profiled its first {args.duration:g} s: --duration)"
    stats = sampler.stats
    expected = cpu * args.hz
    in_profile = profile.total_samples
    lost_full, lost_unread = (
        stats.get("samples_lost_overflow", 0),
        profile.lost.get("unknown_code", 0),
    )
    lost = lost_full + lost_unread
    why_lost = ", ".join(
        f"{n:,} {why}"
        for n, why in ((lost_full, "ring buffer full"), (lost_unread, "stack unreadable"))
        if n
    )
    capture = f"{in_profile / expected:.1%}" if expected else "—"
    lines = [
        f"realprof: {shown} {how}; profiled {wall:.3f} s wall, {cpu:.3f} s process CPU "
        f"(handler {handler}, timer {timer}, {args.hz:g} Hz)",
        f"  samples: expected {expected:,.1f}, delivered {stats.get('signals_delivered', 0):,}"
        f", recorded {stats.get('samples_recorded', 0):,}, lost {lost:,}"
        f"{f' ({why_lost})' if why_lost else ''}, in profile "
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
    from realprof.children import children_lines, unfollowed_children_cpu  # after the run

    lines += children_lines(follower, profile, merged)
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
                children_cpu=0.0 if follower else unfollowed_children_cpu(),
                followed_children=follower is not None,
                buffer_words=sampler.buffer_words,
                mean_depth=mean_depth(profile),
            )
        ]
    lines.append("  top functions:")
    lines += top_lines(merged, 10, indent="    ")
    if written is None:
        lines.append(f"  wrote {output} ({fmt}); {open_hint(str(output), fmt)}")
        err(*lines)
        return status
    err(*lines)
    err(f"realprof: error: {written}")
    return EXIT_BAD_INPUT
