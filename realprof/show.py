"""`python -m realprof show`: summarise a profile file or a report.json.

A profile in any of the three formats (read by content with
`contract.profile_files.profile_from_bytes`) is summarised as its sample count, rate,
CPU time, duration, losses by kind, top functions and threads; a `report.json`
(`contract.report.Report`) prints as `python -m sim` prints it. `top_lines`, the
top-functions table, is shared with `record`'s summary.

An unreadable or malformed file raises `contract.cli.UsageError`: one line on stderr,
exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from contract.cli import CommandParser, UsageError, int_in
from contract.profile import LOST_FUNCTIONS, Profile, ProfileFormatError
from contract.profile_files import profile_from_bytes


def top_lines(profile: Profile, n: int, indent: str = "  ") -> list[str]:
    """pprof -top's table: flat, flat %, cum % and the leaf's file:first line, n rows."""
    total = profile.total_samples
    rows = profile.top(n)
    if not rows or not total:
        return [f"{indent}(no samples)"]
    locations: dict[str, str] = {}
    for (stack, _thread), _count in profile.samples.items():
        leaf = stack[0]
        if leaf.name not in locations and leaf.file:
            first = f":{leaf.start_line}" if leaf.start_line else ""
            locations[leaf.name] = f"{leaf.file}{first}"
    width = max(len(name) for name, _flat, _cum in rows)
    lines = [f"{indent}{'flat':>6}  {'flat%':>6}  {'cum%':>6}  function"]
    for name, flat, cum in rows:
        where = locations.get(name, "")
        lines.append(
            f"{indent}{flat:>6,}  {flat / total:>6.1%}  {cum / total:>6.1%}  "
            f"{name:<{width}}  {where}".rstrip()
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


def _show_profile(path: Path, data: bytes, top: int) -> None:
    profile = profile_from_bytes(data, str(path))
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
    lines += top_lines(profile, top, indent="    ")
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


def main(argv: list[str]) -> int:
    """`show` with its arguments; returns 0."""
    parser = CommandParser(
        prog="python -m realprof show",
        description="Summarise a profile (pprof, folded, speedscope) or a report.json.",
    )
    parser.add_argument("file", help="profile or report.json")
    parser.add_argument("--top", type=int_in(1, None), default=10, help="rows per table")
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
    try:
        _show_profile(path, data, args.top)
    except ProfileFormatError as exc:
        raise UsageError(str(exc)) from None
    return 0
