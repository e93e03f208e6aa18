"""`python -m realprof show`: summarise a profile file or a report.json.

A profile in any of the three formats (read by content with
`contract.profile_files.profile_from_bytes`) is summarised as its sample count, rate,
CPU time, duration, losses by kind, top functions and threads; a `report.json`
(`contract.report.Report`) prints as `python -m sim` prints it. `top_lines`, the
top-functions table, is shared with `record`'s summary: by flat or by cumulative
samples (`--sort`), each row with the function's file:first line, found on any frame of
any stack, so a caller with no flat samples has one too. `--thread` keeps one thread's
samples (`only_threads`), `--process` one process's in a profile recorded with
`--follow-children`, whose stacks sit under a root frame `pid N (NAME)` (`only_process`).
A file that carries no rate (folded; a speedscope file with count weights, as other
tools write) is read at `--rate-hz` or, without it, at 100 Hz with a note saying the
rate was assumed (`load`). `load`, the filters, `add_view_options` and `read_file` are
shared with `realprof flame`.

An unreadable or malformed file raises `contract.cli.UsageError`: one line on stderr,
exit status 2.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from contract.cli import CommandParser, UsageError, int_in, rate_in
from contract.profile import LOST_FUNCTIONS, Frame, Profile, ProfileFormatError
from contract.profile_files import profile_from_bytes

# Where our speedscope files keep the rate (contract/speedscope.py).
_SPEEDSCOPE_EXTENSION = "sigprofLab"


def locations(profile: Profile) -> dict[str, str]:
    """Function name -> "file:first line", from every frame of every stack (not only
    leaves: a function with no flat samples has a place too)."""
    where: dict[str, str] = {}
    for stack, _thread in sorted(profile.samples):
        for frame in stack:
            if frame.name not in where and frame.file:
                first = f":{frame.start_line}" if frame.start_line else ""
                where[frame.name] = f"{frame.file}{first}"
    return where


def top_lines(profile: Profile, n: int, indent: str = "  ", sort: str = "flat") -> list[str]:
    """pprof -top's table: flat, flat %, cum % and the function's file:first line, n
    rows, by flat (pprof's default) or by cum (pprof -top -cum)."""
    total = profile.total_samples
    if sort == "cum":
        every = profile.top(sum(len(stack) for stack, _thread in profile.samples))
        rows = sorted(every, key=lambda row: (-row[2], -row[1], row[0]))[:n]
    else:
        rows = profile.top(n)
    if not rows or not total:
        return [f"{indent}(no samples)"]
    where = locations(profile)
    width = max(len(name) for name, _flat, _cum in rows)
    lines = [f"{indent}{'flat':>6}  {'flat%':>6}  {'cum%':>6}  function"]
    for name, flat, cum in rows:
        lines.append(
            f"{indent}{flat:>6,}  {flat / total:>6.1%}  {cum / total:>6.1%}  "
            f"{name:<{width}}  {where.get(name, '')}".rstrip()
        )
    return lines


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


def rate_is_recorded(data: bytes, profile_format: str) -> bool:
    """Whether the file says its sampling rate: pprof always (its period), folded never,
    speedscope when it carries our rate or time-valued weights (count weights, as other
    tools write, carry none)."""
    if profile_format == "folded":
        return False
    if profile_format != "speedscope":
        return True
    try:
        document = json.loads(data.decode("utf-8"))
        extension = document.get(_SPEEDSCOPE_EXTENSION) or {}
        units = {raw.get("unit") for raw in document.get("profiles", [])}
    except (AttributeError, UnicodeDecodeError, json.JSONDecodeError):
        return True  # the reader has already accepted it; assume it is ours
    return "rateHz" in extension or bool(units - {"none"})


def at_rate(profile: Profile, rate_hz: float) -> Profile:
    """The same samples at another rate (for a file that carries none)."""
    rated = profile.empty_copy(rate_hz)
    rated.samples = dict(profile.samples)
    rated.lost = dict(profile.lost)
    return rated


def _kept(profile: Profile, keep: Callable[[tuple[Frame, ...], str], bool]) -> Profile:
    """The samples `keep(stack, thread)` accepts; lost samples belong to no thread or
    process and are left out."""
    kept = profile.empty_copy()
    for (stack, thread), count in profile.samples.items():
        if keep(stack, thread):
            kept.samples[(stack, thread)] = count
    return kept


def _listed(names: set[str]) -> str:
    ordered = sorted(names)
    more = f", … {len(ordered) - 10} more" if len(ordered) > 10 else ""
    return ", ".join(ordered[:10]) + more


def only_threads(profile: Profile, pattern: str) -> Profile:
    """The samples of the threads named `pattern` (a name or a shell pattern such as
    'ThreadPool*')."""
    kept = _kept(
        profile, lambda _stack, thread: thread == pattern or fnmatch.fnmatchcase(thread, pattern)
    )
    if not kept.samples:
        names = {name for name in profile.by_thread() if name}
        raise UsageError(
            f"--thread {pattern}: no samples on such a thread; threads: "
            f"{_listed(names) or 'none named'}"
        )
    return kept


# `record --follow-children` puts every stack under a root frame naming its process.
_PROCESS_FRAME = re.compile(r"pid (?P<pid>[0-9]+) \((?P<name>.*)\)")


def process_of(stack: tuple[Frame, ...]) -> str:
    """The process label ``pid N (NAME)`` of a sample, "" in a profile of one process."""
    return stack[-1].function if _PROCESS_FRAME.fullmatch(stack[-1].function) else ""


def only_process(profile: Profile, pattern: str) -> Profile:
    """The samples of the processes `pattern` names: their label ``pid N (NAME)``, NAME
    or N, or a shell pattern of one of them (e.g. 'ForkPoolWorker-*')."""

    def matches(stack: tuple[Frame, ...], _thread: str) -> bool:
        match = _PROCESS_FRAME.fullmatch(process_of(stack))
        return match is not None and any(
            fnmatch.fnmatchcase(text, pattern) for text in (match[0], match["name"], match["pid"])
        )

    kept = _kept(profile, matches)
    if not kept.samples:
        labels = {process_of(stack) for stack, _thread in profile.samples} - {""}
        known = (
            f"processes: {_listed(labels)}"
            if labels
            else ("the profile has no process labels (record --follow-children adds them)")
        )
        raise UsageError(f"--process {pattern}: no samples of such a process; {known}")
    return kept


def load(path: Path, data: bytes, rate_hz: float | None) -> tuple[Profile, str]:
    """(profile, a note on its rate) for a profile file; `rate_hz` sets the rate of a
    file that carries none, and is refused for one that does."""
    profile = profile_from_bytes(data, str(path))
    if rate_is_recorded(data, _sniff_format(data).split()[0]):
        if rate_hz is not None:
            raise UsageError(
                f"--rate-hz {rate_hz:g}: {path} records its rate ({profile.rate_hz:g} Hz); "
                "the option is for files that carry none (folded)"
            )
        return profile, ""
    if rate_hz is None:
        return profile, " (assumed: the file carries no rate; set it with --rate-hz)"
    return at_rate(profile, rate_hz), " (given by --rate-hz: the file carries no rate)"


def _show_profile(path: Path, data: bytes, args: argparse.Namespace) -> None:
    top = args.top
    profile, rate_note = load(path, data, args.rate_hz)
    whole = profile.total_samples
    if args.process is not None:
        profile = only_process(profile, args.process)
    if args.thread is not None:
        profile = only_threads(profile, args.thread)
    total = profile.total_samples
    cpu_s = total * profile.period_ns / 1e9
    duration_s = profile.duration_ns / 1e9
    lines = [
        f"{path}: {_sniff_format(data)} profile",
        f"  samples: {total:,} at {profile.rate_hz:g} Hz (period {profile.period_ns / 1e6:g} ms)"
        f" = {cpu_s:.3f} s CPU{rate_note}",
    ]
    for option, value in (("process", args.process), ("thread", args.thread)):
        if value is not None:
            lines.append(f"  {option}: {value} ({total:,} of {whole:,} samples)")
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
    elif args.thread is None and args.process is None:
        lines.append("  lost: 0")
    lines.append("  top functions:" if args.sort == "flat" else "  top functions (by cum):")
    lines += top_lines(profile, top, indent="    ", sort=args.sort)
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


def add_view_options(parser: argparse.ArgumentParser) -> None:
    """--thread, --process and --rate-hz, shared with `flame`."""
    parser.add_argument(
        "--thread",
        metavar="NAME",
        help="only the samples of this thread (a name or a shell pattern, e.g. 'Thread-*')",
    )
    parser.add_argument(
        "--process",
        metavar="NAME",
        help="only the samples of this process, in a profile recorded with "
        "--follow-children: its label 'pid N (NAME)', NAME or N, or a shell pattern",
    )
    parser.add_argument(
        "--rate-hz",
        type=rate_in(1e9),
        metavar="HZ",
        help="the sampling rate of a file that carries none (folded files; default: "
        "assume 100 Hz and say so)",
    )


def show_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="python -m realprof show",
        description="Summarise a profile (pprof, folded, speedscope) or a report.json.",
    )
    parser.add_argument("file", help="profile or report.json")
    parser.add_argument("--top", type=int_in(1, None), default=10, help="rows per table")
    parser.add_argument(
        "--sort",
        choices=("flat", "cum"),
        default="flat",
        help="order of the top functions: flat (samples in the function itself, the "
        "default) or cum (samples with the function anywhere on the stack)",
    )
    add_view_options(parser)
    return parser


def read_file(path: Path) -> bytes:
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a profile or report")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def main(argv: list[str]) -> int:
    """`show` with its arguments; returns 0."""
    args = show_parser().parse_args(argv)
    path = Path(args.file)
    data = read_file(path)
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
            asked = [
                option
                for option, value in (
                    ("--sort", args.sort != "flat"),
                    ("--thread", args.thread is not None),
                    ("--process", args.process is not None),
                    ("--rate-hz", args.rate_hz is not None),
                )
                if value
            ]
            if asked:
                raise UsageError(f"{path}: a report.json; {', '.join(asked)} apply to profiles")
            sys.stdout.write(report.to_text(top=args.top))
            return 0
    try:
        _show_profile(path, data, args)
    except ProfileFormatError as exc:
        raise UsageError(str(exc)) from None
    return 0
