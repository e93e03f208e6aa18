"""The one writer of a run's files: what `python -m sim --out` and `python -m realprof
scenario --out` leave in their directory.

A run (simulated or real) has a report, a profile and, for the simulator, a trace of its
first milliseconds. The writer puts the report and the profile in every format first;
the figures come last and never cost the data: a figure that fails to draw is reported
through `warn` and left out of the list of files written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.profile_files import write_profile

PROFILE_FILES = (
    ("profile.pb.gz", "pprof"),
    ("profile.folded", "folded"),
    ("profile.speedscope.json", "speedscope"),
)


def write_outputs(result: Any, out: Path, warn: Callable[[str], None] | None = None) -> list[Path]:
    """Write `result.report`, `result.profile` and the figures into `out`.

    `result.trace` (optional) adds the timeline figure. Returns the paths written, in
    the order written.
    """
    # matplotlib, loaded only when figures are asked for
    from figures.funnel import plot_funnel
    from figures.timeline import plot_timeline

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json"]
    result.report.write_json(written[0])
    for name, fmt in PROFILE_FILES:
        write_profile(result.profile, out / name, fmt)
        written.append(out / name)
    figures: list[tuple[str, Callable[[Path], Any]]] = [
        ("funnel.png", lambda path: plot_funnel(result.report, path))
    ]
    trace = getattr(result, "trace", None)
    if trace is not None:
        title = f"{result.scenario.name}: first {trace.end_ns / 1e6:g} ms"
        figures.append(("timeline.png", lambda path: plot_timeline(trace, path, title=title)))
    for name, draw in figures:
        try:
            draw(out / name)
        except Exception as exc:  # a figure never costs the report
            if warn is not None:
                warn(f"warning: {name} not written: {type(exc).__name__}: {exc}".splitlines()[0])
            continue
        written.append(out / name)
    return written
