"""The house style every figure shares: palettes, matplotlib settings, saving, small words.

Output is byte-stable: the same inputs give the same bytes, so figures can be committed
and regenerated without noise in diffs. That needs a fixed style (matplotlib's defaults
plus ours, whatever the user's matplotlibrc says: `house_style`), a fixed SVG hash salt,
and no timestamps or software versions in the metadata (`save`). No figure touches
pyplot: each is a `matplotlib.figure.Figure` on an Agg canvas (`new_figure`), and all
style settings live in an `rc_context`, so nothing leaks into the caller's matplotlib
state.

Every figure function writes the file named by its `path` (PNG, SVG or PDF, by suffix:
`format_of` checks it before drawing) and returns alt text: one paragraph, with the key
numbers, saying what the figure shows, for docs and screen readers. `save` embeds the
same text in the file's metadata (PNG `Description`, SVG `dc:description`, PDF
`Subject`), with the title.

Colours are colour-blind safe: Okabe & Ito's palette for events, losses and lines, and
Paul Tol's "light" palette for the thread bars of the timeline (light, so that black
labels and markers stay readable). What colour separates is also told apart another
way (marker shapes for events and lines, hatching for losses, names written on the
thread bars), so the figures survive greyscale printing and colour blindness alike.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
# Paul Tol's "light" scheme without its pale grey, which is kept for the reader.
THREAD_COLOURS = (
    "#77AADD",
    "#EE8866",
    "#44BB99",
    "#EEDD88",
    "#FFAABB",
    "#99DDFF",
    "#BBCC33",
    "#AAAA00",
)
# After the palette runs out, the next threads get the same colours with a hatch.
THREAD_HATCHES = ("", "////", "....", "xxxx")
# Threads that are the profiler's, not the workload's.
SERVICE_COLOURS = {"reader": "#BBBBBB", "profileLoop": "#888888"}
LINE_COLOURS = tuple(
    OKABE_ITO[name]
    for name in ("blue", "vermillion", "green", "orange", "purple", "sky_blue", "black")
)
LINE_MARKERS = ("o", "s", "^", "D", "v", "P", "X")

_STYLE: dict[str, Any] = {
    # Byte stability: SVG ids are hashes salted with this; without a fixed salt they
    # are random per process.
    "svg.hashsalt": "sigprof-lab",
    # One font on every machine: DejaVu Sans ships with matplotlib.
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "hatch.linewidth": 0.6,
}

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """matplotlib's defaults plus ours, restored on exit (a user's matplotlibrc is ignored)."""
    with mpl.style.context("default"), mpl.rc_context(_STYLE):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)  # Agg, whatever backend pyplot would pick
    return fig


def format_of(path: str | Path) -> str:
    """png, svg or pdf from the file name; checked before drawing, to fail fast."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{path}: unknown figure format {path.suffix!r}; use one of {', '.join(_FORMATS)}"
        )
    return fmt


def fitted_suptitle(fig: Figure, heading: str) -> None:
    """The figure's title at its top left, wrapped onto more lines until it fits its width.

    A title that fits stays one line (so figures that had one keep their bytes); a long
    one, such as a long scenario name, is wrapped at spaces and hyphens, and a word wider
    than the figure is broken, so no part of it is cut off. Measured with the canvas's
    renderer, since characters differ in width.
    """
    title = fig.suptitle(heading, x=0.01, ha="left")
    renderer = fig.canvas.get_renderer()
    # The same margin on the right as the title's on the left.
    right_px = fig.bbox.width * 0.99
    width_chars = len(heading)
    while title.get_window_extent(renderer).x1 > right_px and width_chars > 10:
        width_chars = int(width_chars * 0.9)
        title.set_text(textwrap.fill(heading, width_chars, break_long_words=True))


def save(fig: Figure, path: str | Path, title: str, alt: str) -> None:
    """Write `fig` to `path` without timestamps or versions, so bytes repeat."""
    path = Path(path)
    fmt = format_of(path)
    metadata: dict[str, Any]
    if fmt == "png":
        metadata = {"Software": None, "Title": title, "Description": alt}
    elif fmt == "svg":
        metadata = {"Date": None, "Creator": None, "Title": title, "Description": alt}
    else:
        metadata = {
            "Creator": None,
            "Producer": None,
            "CreationDate": None,
            "ModDate": None,
            "Title": title,
            "Subject": alt,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, metadata=metadata)


def count_words(value: float) -> str:
    """1249 -> '1,249'; 8000.0 -> '8,000'; 12.5 -> '12.5'."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def machine_words(machine: dict[str, Any]) -> str:
    """'4 CPUs, HZ=250' from a report's or a scenario's machine mapping."""
    cpus = machine.get("cpus")
    hz = machine.get("kernel_hz")
    parts = []
    if cpus is not None:
        parts.append(f"{cpus} CPU{'s' if cpus != 1 else ''}")
    if hz is not None:
        parts.append(f"HZ={hz}")
    return ", ".join(parts)
