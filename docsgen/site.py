"""The documentation generator: every figure and generated reference page, byte for byte.

    python -m docsgen docs/figures [--pages docs/reference] [--only NAME ...]

writes into `docs/figures/`:

* every figure of `docsgen.figure_list.FIGURES`: `pipeline.png` (`docsgen.pipeline`), the
  validation grid, and timelines, funnels and sweeps of named, shipped scenarios;
* `figures.json`, a manifest with each figure's alt text (returned by the plot
  functions), the scenario, the overrides and the command line that reproduces the run.
  The docs pages paste that alt text; `tests/test_docs.py` checks they still agree.

and into the pages directory (default: `reference/` beside the figures directory) the
pages of `docsgen.reference_pages`: `scenario.md`, `report.md`, `runtimes.md` and
`scenarios.md`.
`--only` redraws the named figures and leaves the pages alone.

Everything is deterministic: the simulator is seeded, matplotlib output carries no
timestamps (see `figures.style`), JSON is sorted. Running the generator twice, or into a
temporary directory, gives identical bytes, which the docs tests check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.report import Report
from docsgen.common import GO_RELEASES_DATA, GRID_DATA
from docsgen.figure_list import FIGURES, draw_figure
from docsgen.reference_pages import (
    library_reference,
    report_reference,
    runtime_reference,
    scenario_reference,
)
from lab.grid_results import read_grid

# ---------------------------------------------------------------------------------------
# Driver


def _grid_data() -> dict[str, Any]:
    """The committed Go release grid, which the runtime page quotes (the validation grid
    where there is none)."""
    path = GO_RELEASES_DATA if GO_RELEASES_DATA.exists() else GRID_DATA
    return read_grid(path.read_text(encoding="utf-8"))


@dataclass
class Generated:
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def generate(
    figures_dir: str | Path, pages_dir: str | Path | None = None, only: Sequence[str] = ()
) -> Generated:
    """Write every figure, the manifest and the generated pages; return what was written."""
    figures_dir = Path(figures_dir)
    pages_dir = Path(pages_dir) if pages_dir is not None else figures_dir.parent / "reference"
    figures_dir.mkdir(parents=True, exist_ok=True)
    pages_dir.mkdir(parents=True, exist_ok=True)
    out = Generated()
    reports: dict[str, Report] = {}
    manifest: dict[str, dict[str, Any]] = {}
    manifest_path = figures_dir / "figures.json"
    if only and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    known = {spec.name for spec in FIGURES}
    unknown = sorted(set(only) - known)
    if unknown:
        raise SystemExit(f"docsgen.site: unknown figure(s) {unknown}; known: {sorted(known)}")
    for spec in FIGURES:
        if only and spec.name not in only:
            continue
        started = time.perf_counter()
        alt = draw_figure(spec, figures_dir, reports)
        out.seconds[spec.name] = time.perf_counter() - started
        out.files.append(figures_dir / f"{spec.name}.png")
        manifest[spec.name] = {
            "file": f"{spec.name}.png",
            "alt": alt,
            "kind": spec.kind,
            "scenario": spec.scenario or None,
            "overrides": list(spec.overrides),
            "command": spec.command(),
        }
    manifest_path.write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    out.files.append(manifest_path)
    if only:  # a partial run refreshes figures only
        return out
    pages = (
        ("scenario.md", scenario_reference()),
        ("report.md", report_reference()),
        ("runtimes.md", runtime_reference(_grid_data())),
        ("scenarios.md", library_reference(reports)),
    )
    for name, text in pages:
        path = pages_dir / name
        path.write_text(text, encoding="utf-8")
        out.files.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docsgen",
        description="Regenerate the documentation's figures and generated reference pages.",
    )
    parser.add_argument(
        "figures_dir",
        nargs="?",
        default="docs/figures",
        type=Path,
        help="where the PNG figures and figures.json go (default docs/figures)",
    )
    parser.add_argument(
        "--pages",
        type=Path,
        default=None,
        help="where scenario.md and report.md go (default: reference/ beside figures_dir)",
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="only this figure"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = generate(args.figures_dir, args.pages, args.only)
    for name, seconds in result.seconds.items():
        print(f"  {name:<24} {seconds:5.1f} s", file=sys.stderr)
    print(
        f"wrote {len(result.files)} files in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
