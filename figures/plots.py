"""Figures that teach: where the samples went, what the CPUs did, how a knob moves the result.

Three figures, each answering one question a learner asks:

* `plot_funnel` — *where did my samples go?* One bar per stage of a sample's life, from
  the samples a perfect profiler would take (CPU seconds × rate) down to the samples in
  the written profile, with every loss (an expiry dropped because SIGPROF was already
  pending, a signal discarded by the runtime, a full buffer, ...) as its own hatched,
  coloured bar, labelled with its count and its share of the expected samples.
* `plot_timeline` — *why?* A few tens of milliseconds of the simulation: one row per CPU
  with the thread that ran, the kernel's ticks, and under each row what the profiler did
  at that moment (timer expiries, deliveries, what the handler did with the sample). It
  makes visible that timers are only checked at ticks, that expiries bunch in one tick
  round, and that the second expiry of a round is dropped because one SIGPROF is pending.
* `plot_sweep` — *how does it change?* A metric (capture ratio, attribution error, ...)
  against one varied field, one line per value of a second one.

Every function writes the file named by `path` (PNG, SVG or PDF, by suffix) and returns
alt text: one paragraph, with the key numbers, saying what the figure shows, for docs and
screen readers. The same text is embedded in the file's metadata (PNG `Description`, SVG
`dc:description`, PDF `Subject`), with the title.

Output is byte-stable: the same inputs give the same bytes, so figures can be committed
and regenerated without noise in diffs. That needs a fixed style (matplotlib's defaults
plus ours, whatever the user's matplotlibrc says), a fixed SVG hash salt, and no
timestamps or software versions in the metadata. The module never touches pyplot: each
figure is a `matplotlib.figure.Figure` on an Agg canvas, and all style settings live in
an `rc_context`, so nothing leaks into the caller's matplotlib state.

Colours are colour-blind safe: Okabe & Ito's palette for events, losses and lines, and
Paul Tol's "light" palette for the thread bars of the timeline (light, so that black
labels and markers stay readable). What colour separates is also told apart another
way (marker shapes for events and lines, hatching for losses, names written on the
thread bars), so the figures survive greyscale printing and colour blindness alike.
"""

from __future__ import annotations

import bisect
import contextlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from matplotlib.transforms import offset_copy

from contract.report import FUNNEL_LABELS

if TYPE_CHECKING:  # annotations only: drawing needs no simulator
    from contract.report import Report
    from sim.model import Trace

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
def _style() -> Iterator[None]:
    """matplotlib's defaults plus ours, restored on exit (a user's matplotlibrc is ignored)."""
    with mpl.style.context("default"), mpl.rc_context(_STYLE):
        yield


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)  # Agg, whatever backend pyplot would pick
    return fig


def _format_of(path: str | Path) -> str:
    """png, svg or pdf from the file name; checked before drawing, to fail fast."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{path}: unknown figure format {path.suffix!r}; use one of {', '.join(_FORMATS)}"
        )
    return fmt


def _save(fig: Figure, path: str | Path, title: str, alt: str) -> None:
    """Write `fig` to `path` without timestamps or versions, so bytes repeat."""
    path = Path(path)
    fmt = _format_of(path)
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


def _count(value: float) -> str:
    """1249 -> '1,249'; 8000.0 -> '8,000'; 12.5 -> '12.5'."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _machine_words(machine: dict[str, Any]) -> str:
    cpus = machine.get("cpus")
    hz = machine.get("kernel_hz")
    parts = []
    if cpus is not None:
        parts.append(f"{cpus} CPU{'s' if cpus != 1 else ''}")
    if hz is not None:
        parts.append(f"HZ={hz}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------
# The funnel


# Stages of a sample's life, top to bottom. Each loss sits under the stage it leaves,
# so reading down, the bars shrink exactly where the losses appear.
_FUNNEL_LAYOUT: tuple[tuple[str, str], ...] = (
    ("expected_samples", "stage"),
    ("signals_generated", "stage"),
    ("timer_overruns", "loss"),
    ("signals_dropped_pending", "loss"),
    ("signals_pending_at_stop", "loss"),
    ("signals_delivered", "stage"),
    ("signals_merged", "loss"),
    ("signals_discarded", "loss"),
    ("samples_lost_overflow", "loss"),
    ("samples_recorded", "stage"),
    ("samples_in_profile", "stage"),
)
_STAGE_COLOUR = OKABE_ITO["blue"]
_LOSS_STYLE: dict[str, tuple[str, str]] = {  # colour, hatch
    "timer_overruns": (OKABE_ITO["purple"], "\\\\\\"),
    "signals_dropped_pending": (OKABE_ITO["vermillion"], "///"),
    "signals_pending_at_stop": (OKABE_ITO["yellow"], "..."),
    "signals_merged": (OKABE_ITO["green"], "xxx"),
    "signals_discarded": (OKABE_ITO["orange"], "---"),
    "samples_lost_overflow": (OKABE_ITO["sky_blue"], "+++"),
}


def plot_funnel(report: Report, path: str | Path) -> str:
    """Bars from expected samples down to the profile, with every loss; returns alt text.

    Stages a world cannot observe (the real world sees no generated signals) are kept as
    rows that say "not observed"; losses it cannot observe are left out. Losses that
    were observed to be zero are shown, as an empty bar labelled 0, so that two funnels
    of the same scenario in different runtimes line up row for row.
    """
    _format_of(path)
    expected = report.expected_samples
    rows: list[tuple[str, str, float | None]] = []
    for name, kind in _FUNNEL_LAYOUT:
        value = getattr(report, name)
        if value is None and kind == "loss":
            continue
        rows.append((name, kind, value))

    def share(value: float) -> str:
        return f"{value / expected:.1%} of expected" if expected else "no CPU time"

    title = f"{report.scenario}: where the samples went"
    subtitle = (
        f"{report.world} world · runtime {report.runtime} · timer {report.timer} · "
        f"rate {report.rate_hz:g} Hz · {_machine_words(report.machine)}"
    )
    true_cpu_percent = (
        report.cpu_seconds / report.wall_seconds * 100 if report.wall_seconds else 0.0
    )
    footer = (
        f"capture ratio {report.capture_ratio:.3f} · the profile shows "
        f"{report.profile_cpu_percent:.1f}% CPU, the workload used {true_cpu_percent:.1f}%"
    )

    with _style():
        fig = _new_figure(9.0, 1.5 + 0.36 * len(rows))
        ax = fig.add_subplot()
        ys = list(range(len(rows)))
        top = max([v for _, _, v in rows if v is not None] + [1.0])
        for y, (name, kind, value) in zip(ys, rows, strict=True):
            if value is None:
                ax.text(
                    0,
                    y,
                    f"  not observed in the {report.world} world",
                    va="center",
                    ha="left",
                    color="#666666",
                    style="italic",
                )
                continue
            if kind == "stage":
                ax.barh(y, value, height=0.7, color=_STAGE_COLOUR, edgecolor=_STAGE_COLOUR)
            else:
                colour, hatch = _LOSS_STYLE[name]
                ax.barh(
                    y,
                    value,
                    height=0.5,
                    color=colour,
                    edgecolor="#333333",
                    hatch=hatch,
                    linewidth=0.6,
                )
            if name == "expected_samples":
                words = _count(value)
            elif value == 0 and kind == "loss":
                words = "0"
            else:
                words = f"{_count(value)}  ({share(value)})"
            ax.annotate(
                words,
                xy=(value, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                ha="left",
                fontsize=8,
                color="#777777" if value == 0 and kind == "loss" else "black",
                fontweight="bold" if name == "samples_in_profile" else "normal",
            )
        labels = [
            FUNNEL_LABELS[name] if kind == "stage" else f"− {FUNNEL_LABELS[name]}"
            for name, kind, _ in rows
        ]
        ax.set_yticks(ys, labels)
        for label, (_, kind, _) in zip(ax.get_yticklabels(), rows, strict=True):
            if kind == "loss":
                label.set_color("#444444")
                label.set_fontstyle("italic")
        ax.invert_yaxis()  # read top to bottom, like the pipeline
        # Room on the right for the count and share labels.
        ax.set_xlim(0, top * 1.42)
        ax.set_xlabel("samples or signals (count)")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
        ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_title(f"{subtitle}\n{footer}", loc="left", color="#333333", fontsize=8.5)
        fig.suptitle(title, x=0.01, ha="left")
        legend = [
            Patch(facecolor=_STAGE_COLOUR, label="a stage samples pass through"),
            Patch(
                facecolor="#DDDDDD",
                edgecolor="#333333",
                hatch="///",
                label="a loss (− rows): what never reaches the profile",
            ),
        ]
        fig.legend(handles=legend, loc="outside lower left", ncol=2, frameon=False)

        parts = []
        nothing_lost = []
        for name, kind, value in rows:
            label = FUNNEL_LABELS[name]
            if value is None:
                parts.append(f"{label}: not observed")
            elif kind == "loss" and value == 0:
                nothing_lost.append(label)
            elif name == "expected_samples":
                parts.append(f"{label}: {_count(value)}")
            else:
                parts.append(f"{label}: {_count(value)} ({share(value)})")
        if nothing_lost:
            parts.append("zero for " + ", ".join(nothing_lost))
        alt = (
            f"Funnel of samples for scenario {report.scenario} ({subtitle}). "
            + "; ".join(parts)
            + f". Capture ratio {report.capture_ratio:.3f}: the profile shows "
            f"{report.profile_cpu_percent:.1f}% CPU where the workload used "
            f"{true_cpu_percent:.1f}%."
        )
        _save(fig, path, title, alt)
    return alt


# ---------------------------------------------------------------------------------------
# The timeline


# Event kinds in the order a signal meets them, with their lane under the CPU's bar.
_EVENT_LANES = ("timer", "signal", "sample")
_EVENTS: dict[str, dict[str, Any]] = {
    "expiry-process": dict(
        lane="timer",
        marker="^",
        colour=OKABE_ITO["blue"],
        label="process timer expired, SIGPROF queued",
    ),
    "expiry-thread": dict(
        lane="timer",
        marker="v",
        colour=OKABE_ITO["sky_blue"],
        label="thread's own timer expired, SIGPROF queued",
    ),
    "expiry-perf": dict(
        lane="timer",
        marker="<",
        colour=OKABE_ITO["blue"],
        label="perf event overflowed, SIGPROF queued on its thread",
    ),
    "drop-pending": dict(
        lane="timer",
        marker="x",
        colour=OKABE_ITO["vermillion"],
        label="expired but dropped: a SIGPROF was already pending",
    ),
    "drop-perf": dict(
        lane="timer",
        marker="x",
        colour=OKABE_ITO["vermillion"],
        label="perf overflow dropped: its thread's SIGPROF was still pending",
    ),
    "deliver": dict(
        lane="signal",
        marker="o",
        colour=OKABE_ITO["purple"],
        label="delivered, the handler runs",
    ),
    "record": dict(
        lane="sample",
        marker="s",
        colour=OKABE_ITO["green"],
        label="written to the ring buffer",
    ),
    "discard": dict(
        lane="sample",
        marker="D",
        colour=OKABE_ITO["orange"],
        label="discarded by the runtime",
    ),
    "merge": dict(
        lane="sample",
        marker="P",
        colour=OKABE_ITO["yellow"],
        label="deliveries merged into one Python handler run",
    ),
    "lost": dict(
        lane="sample",
        marker="*",
        colour=OKABE_ITO["black"],
        label="lost: buffer full",
    ),
}
_EVENT_WORDS = {  # singular, plural
    "expiry-process": ("process-timer expiry", "process-timer expiries"),
    "expiry-thread": ("per-thread timer expiry", "per-thread timer expiries"),
    "drop-pending": (
        "expiry dropped because SIGPROF was already pending",
        "expiries dropped because SIGPROF was already pending",
    ),
    "expiry-perf": ("perf event overflow", "perf event overflows"),
    "drop-perf": (
        "perf overflow dropped because its thread's SIGPROF was pending",
        "perf overflows dropped because their thread's SIGPROF was pending",
    ),
    "deliver": ("signal delivery", "signal deliveries"),
    "record": ("sample recorded", "samples recorded"),
    "discard": ("signal discarded by the runtime", "signals discarded by the runtime"),
    "merge": ("merged Python handler run", "merged Python handler runs"),
    "lost": ("sample lost to a full buffer", "samples lost to a full buffer"),
}


def _n(count: int, singular: str, plural: str) -> str:
    return f"{count:,} {singular if count == 1 else plural}"


# Geometry of one row (one CPU), in row units; row r spans r .. r+1, drawn top down.
_BAR = (0.06, 0.40)  # top, height
_LANE_Y = {"timer": 0.58, "signal": 0.72, "sample": 0.86}


def _thread_styles(trace: Trace) -> dict[str, tuple[str, str]]:
    """Colour and hatch of each thread, by its place in the scenario (stable per scenario)."""
    styles: dict[str, tuple[str, str]] = {}
    n = len(THREAD_COLOURS)
    for index, name in enumerate(trace.threads):
        hatch = THREAD_HATCHES[(index // n) % len(THREAD_HATCHES)]
        styles[name] = (THREAD_COLOURS[index % n], hatch)
    return styles


def _merged_segments(trace: Trace) -> list[tuple[int, str, int, int]]:
    """Segments with back-to-back pieces of one thread on one CPU joined (ticks split them)."""
    merged: list[tuple[int, str, int, int]] = []
    for cpu, thread, t0, t1 in sorted(trace.segments, key=lambda s: (s[0], s[2], s[3], s[1])):
        if merged and merged[-1][0] == cpu and merged[-1][1] == thread and merged[-1][3] == t0:
            merged[-1] = (cpu, thread, merged[-1][2], t1)
        else:
            merged.append((cpu, thread, t0, t1))
    return merged


class _CpuFinder:
    """Which CPU a thread was on at a given instant, from the trace's segments."""

    def __init__(self, segments: Sequence[tuple[int, str, int, int]]) -> None:
        by_thread: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for cpu, thread, t0, t1 in segments:
            by_thread[thread].append((t0, t1, cpu))
        self.by_thread = {k: sorted(v) for k, v in by_thread.items()}

    def cpu_at(self, thread: str, t: int) -> int | None:
        spans = self.by_thread.get(thread, [])
        i = bisect.bisect_right(spans, (t, math.inf, math.inf))
        # A segment that covers t, else one that ends or starts exactly at t: events of a
        # tick round happen at the tick instant, where one segment ends and the next begins.
        for t0, t1, cpu in reversed(spans[max(0, i - 2) : i]):
            if t0 <= t < t1:
                return cpu
        for t0, t1, cpu in spans[max(0, i - 2) : i + 1]:
            if t1 == t or t0 == t:
                return cpu
        return None


def plot_timeline(trace: Trace, path: str | Path, title: str = "") -> str:
    """One row per CPU: who ran, the ticks, and what the profiler did; returns alt text.

    Under each CPU's bar are three lanes of markers, for the thread on that CPU at that
    moment: *timer* (an expiry, or an expiry dropped as already pending), *signal* (a
    delivery) and *sample* (what the handler did with it). Events of a thread that was
    not on any CPU (Windows suspends runnable threads too) go to a last row.
    """
    _format_of(path)
    start_ms, end_ms = trace.start_ns / 1e6, trace.end_ns / 1e6
    span_ms = max(end_ms - start_ms, 1e-9)
    hz = round(1e9 / trace.tick_ns) if trace.tick_ns else None
    segments = _merged_segments(trace)
    finder = _CpuFinder(trace.segments)
    styles = _thread_styles(trace)

    # Place every event on a row, counting repeats of one kind at one instant.
    placed: Counter[tuple[int | None, str, int]] = Counter()
    drawn: list[tuple[int, str, str]] = []
    for t, kind, thread in trace.events:
        if kind not in _EVENTS:
            continue
        cpu = finder.cpu_at(thread, t)
        if cpu is None and not trace.start_ns < t < trace.end_ns:
            # A thread dispatched at the window's very end (or start) has no segment
            # inside it; its events belong to the next tick round, which is not drawn.
            continue
        placed[(cpu, kind, t)] += 1
        drawn.append((t, kind, thread))
    off_cpu = any(cpu is None for cpu, _, _ in placed)
    n_rows = trace.cpus + (1 if off_cpu else 0)

    def row_of(cpu: int | None) -> int:
        return trace.cpus if cpu is None else cpu

    heading = title or f"Timeline {start_ms:g}–{end_ms:g} ms"
    machine = f"{trace.cpus} CPU{'s' if trace.cpus != 1 else ''}" + (
        f", kernel tick every {trace.tick_ns / 1e6:g} ms (HZ={hz})" if hz else ""
    )
    subtitle = (
        f"{machine}. Bars: the thread on each CPU. Black notches: kernel ticks. "
        "Under each bar: timer expiries, deliveries, and what the handler did."
    )

    with _style():
        fig = _new_figure(11.0, 1.9 + 0.62 * n_rows)
        ax = fig.add_subplot()

        # Which thread ran where.
        for cpu, thread, t0, t1 in segments:
            if thread in styles:
                colour, hatch = styles[thread]
            else:
                colour, hatch = SERVICE_COLOURS.get(thread, "#AAAAAA"), ""
            x0, width = t0 / 1e6, (t1 - t0) / 1e6
            top, height = cpu + _BAR[0], _BAR[1]
            ax.broken_barh(
                [(x0, width)],
                (top, height),
                facecolors=colour,
                edgecolor="white",
                linewidth=0.6,
                hatch=hatch or None,
            )
            if width >= 0.06 * span_ms:
                ax.text(
                    x0 + width / 2,
                    top + height / 2,
                    thread,
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="black",
                    clip_on=True,
                    zorder=4,
                    # The bar's colour behind the name keeps tick notches off the text.
                    bbox=dict(boxstyle="square,pad=0.15", facecolor=colour, edgecolor="none"),
                )

        # Ticks: a notch across the bar, and a faint guide down through the lanes, so the
        # eye follows each tick to the checks it caused.
        tick_rows: dict[int, list[float]] = defaultdict(list)
        for cpu, t in trace.ticks:
            tick_rows[cpu].append(t / 1e6)
        for cpu, xs in sorted(tick_rows.items()):
            ax.vlines(xs, cpu + 0.02, cpu + _BAR[0] + _BAR[1] + 0.04, colors="black", linewidth=1.0)
            ax.vlines(
                xs,
                cpu + _BAR[0] + _BAR[1] + 0.04,
                cpu + 0.95,
                colors="#BBBBBB",
                linewidth=0.5,
                linestyles=(0, (2, 2)),
            )

        # Events: markers in their lane. Kinds that share a lane and an instant (an
        # expiry of the thread's own timer and a dropped process expiry, say) sit side by
        # side a few points apart; a number beside a marker counts repeats.
        lane_groups: dict[tuple[int, str, int], list[str]] = defaultdict(list)
        for cpu, kind, t in sorted(placed, key=lambda key: (row_of(key[0]), key[2])):
            lane_groups[(row_of(cpu), _EVENTS[kind]["lane"], t)].append(kind)
        points: dict[tuple[str, float], list[tuple[float, float]]] = defaultdict(list)
        for (row, lane, t), kinds_here in lane_groups.items():
            kinds_here.sort(key=list(_EVENTS).index)
            for i, kind in enumerate(kinds_here):
                dx = (i - (len(kinds_here) - 1) / 2) * 7.0
                x, y = t / 1e6, row + _LANE_Y[lane]
                points[(kind, dx)].append((x, y))
                count = placed[(None if row == trace.cpus else row, kind, t)]
                if count > 1:
                    ax.annotate(
                        f"×{count}",
                        (x, y),
                        xytext=(dx + 4, -1),
                        textcoords="offset points",
                        fontsize=6,
                        va="center",
                    )
        present = [kind for kind in _EVENTS if any(k == kind for k, _ in points)]
        for (kind, dx), xy in sorted(
            points.items(), key=lambda kv: (list(_EVENTS).index(kv[0][0]), kv[0][1])
        ):
            spec = _EVENTS[kind]
            ax.plot(
                [p[0] for p in xy],
                [p[1] for p in xy],
                linestyle="none",
                marker=spec["marker"],
                markersize=5.5,
                color=spec["colour"],
                markeredgecolor=spec["colour"] if spec["marker"] == "x" else "black",
                markeredgewidth=1.4 if spec["marker"] == "x" else 0.5,
                transform=offset_copy(ax.transData, fig=fig, x=dx, y=0, units="points"),
                clip_on=False,
            )

        # A little room at both ends so markers at the window's edges stay whole.
        ax.set_xlim(start_ms - 0.01 * span_ms, end_ms + 0.01 * span_ms)
        ax.set_ylim(n_rows, 0)  # CPU 0 at the top
        ax.set_xlabel("time (ms)")
        row_labels = [f"CPU {cpu}" for cpu in range(trace.cpus)]
        if off_cpu:
            row_labels.append("not on a CPU")
        ax.set_yticks([r + _BAR[0] + _BAR[1] / 2 for r in range(n_rows)], row_labels)
        # Name the three lanes once, on the first row.
        ax.yaxis.set_minor_locator(FixedLocator([_LANE_Y[lane] for lane in _EVENT_LANES]))
        ax.yaxis.set_minor_formatter(
            FuncFormatter(lambda _v, pos: _EVENT_LANES[pos] if pos is not None and pos < 3 else "")
        )
        ax.tick_params(axis="y", which="minor", labelsize=6, labelcolor="#555555", length=2)
        ax.tick_params(axis="y", which="major", length=0)
        ax.spines["left"].set_visible(False)
        for r in range(1, n_rows):
            ax.axhline(r, color="#DDDDDD", linewidth=0.6)
        ax.set_title(subtitle, loc="left", color="#333333", fontsize=8)
        fig.suptitle(heading, x=0.01, ha="left")

        handles: list[Any] = [
            Line2D(
                [],
                [],
                color="black",
                marker="|",
                linestyle="none",
                markersize=9,
                markeredgewidth=1.2,
                label="kernel tick (timers are checked here)",
            ),
        ]
        for kind in present:
            spec = _EVENTS[kind]
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker=spec["marker"],
                    markersize=6,
                    color=spec["colour"],
                    markeredgecolor=spec["colour"] if spec["marker"] == "x" else "black",
                    markeredgewidth=1.4 if spec["marker"] == "x" else 0.5,
                    label=f"{spec['lane']}: {spec['label']}",
                )
            )
        ran = sorted(
            {s[1] for s in segments},
            key=lambda n: (n not in styles, trace.threads.index(n) if n in styles else 0, n),
        )
        # Thread swatches only while the legend stays short; bars carry names anyway.
        if len(ran) <= 10:
            for name in ran:
                colour, hatch = styles.get(name, (SERVICE_COLOURS.get(name, "#AAAAAA"), ""))
                words = (
                    " (profiler's reader)"
                    if name == "reader"
                    else (" (profiler's sampler)" if name == "profileLoop" else "")
                )
                handles.append(
                    Patch(
                        facecolor=colour,
                        hatch=hatch or None,
                        edgecolor="white",
                        label=f"thread {name}{words}",
                    )
                )
        fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)

        # Alt text: counts, then one concrete tick round where expiries were dropped.
        kinds: Counter[str] = Counter()
        for (_cpu, kind, _t), count in placed.items():
            kinds[kind] += count
        tick_times = sorted({t for _, t in trace.ticks})
        counts = ", ".join(_n(kinds[k], *_EVENT_WORDS[k]) for k in _EVENTS if kinds[k])
        n_ran = len({s[1] for s in segments})
        alt = (
            (f"{title}. " if title else "")
            + f"Timeline of {start_ms:g} to {end_ms:g} ms on {machine}: "
            f"{_n(len(tick_times), 'tick round', 'tick rounds')}; "
            f"{_n(n_ran, 'thread', 'threads')} ran. Events: {counts or 'none'}."
        )
        if off_cpu:
            alt += (
                " Some events happened to threads that were waiting for a CPU; they are "
                "on the last row."
            )
        example = _dropped_round_example(drawn)
        if example:
            alt += " " + example
        _save(fig, path, heading, alt)
    return alt


def _dropped_round_example(events: Sequence[tuple[int, str, str]]) -> str:
    """Words for the first instant where a SIGPROF was taken and others were dropped."""
    by_time: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for t, kind, thread in events:
        by_time[t].append((kind, thread))
    for t in sorted(by_time):
        events = by_time[t]
        dropped = [thread for kind, thread in events if kind == "drop-pending"]
        if not dropped:
            continue
        taken = [thread for kind, thread in events if kind == "expiry-process"]
        who = f"{taken[0]}'s expiry became the SIGPROF and " if taken else ""
        return (
            f"At {t / 1e6:g} ms one tick round raised "
            f"{_n(len(dropped) + len(taken), 'process-timer expiry', 'process-timer expiries')}"
            f": {who}{len(dropped)} {'was' if len(dropped) == 1 else 'were'} dropped because "
            "SIGPROF was already pending."
        )
    return ""


# ---------------------------------------------------------------------------------------
# Sweeps


METRIC_LABELS: dict[str, str] = {
    "capture_ratio": "capture ratio (in profile ÷ expected)",
    "attribution_error_pp": "largest attribution error (percentage points)",
    "profile_cpu_percent": "CPU shown by the profile (%)",
    "cpu_seconds": "workload CPU (s)",
    "wall_seconds": "wall time (s)",
    **{name: f"{label} (count)" for name, label in FUNNEL_LABELS.items()},
}
# Units named by the suffix of a scenario field (the schema puts the unit in the name).
_UNIT_SUFFIXES = (
    ("_us_per_sample", "µs per sample"),
    ("_words", "words"),
    ("_hz", "Hz"),
    ("_ms", "ms"),
    ("_us", "µs"),
    ("_ns", "ns"),
    ("_pp", "percentage points"),
    ("_s", "s"),
)


def axis_unit(path: str) -> str | None:
    """The unit of a dotted scenario path, from its last name: `profiler.rate_hz` -> `Hz`."""
    last = path.rsplit(".", 1)[-1]
    for suffix, unit in _UNIT_SUFFIXES:
        if last.endswith(suffix):
            return unit
    return None


def axis_label(path: str) -> str:
    unit = axis_unit(path)
    return f"{path} ({unit})" if unit else path


def _metric_text(metric: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if metric == "capture_ratio":
        return f"{value:.3f}"
    if metric in ("attribution_error_pp", "profile_cpu_percent"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return f"{value:,}"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value)}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unique(values: Sequence[Any]) -> list[Any]:
    """First-seen order; works for unhashable values such as lists."""
    seen: list[Any] = []
    for value in values:
        if not any(value == s and type(value) is type(s) for s in seen):
            seen.append(value)
    return seen


def plot_sweep(
    rows: list[dict[str, Any]],
    x: str,
    path: str | Path,
    series: str | None = None,
    metrics: Sequence[str] = ("capture_ratio", "attribution_error_pp"),
    title: str = "",
) -> str:
    """One subplot per metric against `x`, one line per value of `series`; returns alt text.

    Each (series, x) pair must name exactly one row: a sweep over more fields than x and
    series has to be split or combined into a label column first. Numeric x values that
    span a factor of ten or more are drawn on a log axis, with ticks at the values swept.
    Missing values (None) leave a gap.
    """
    _format_of(path)
    if not rows:
        raise ValueError("plot_sweep: no rows to plot")
    for key in (x, series, *metrics):
        if key is not None and key not in rows[0]:
            raise ValueError(f"plot_sweep: rows have no column {key!r}")
    if not metrics:
        raise ValueError("plot_sweep: give at least one metric")

    x_values = _unique([row[x] for row in rows])
    numeric = all(_is_number(v) for v in x_values)
    if numeric:
        x_values = sorted(x_values)
    series_values = _unique([row[series] for row in rows]) if series else [None]

    def x_pos(value: Any) -> float:
        if numeric:
            return float(value)
        return float(next(i for i, v in enumerate(x_values) if v == value))

    lines: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        s = next(i for i, v in enumerate(series_values) if v == row[series]) if series else 0
        xi = next(i for i, v in enumerate(x_values) if v == row[x])
        if xi in lines[s]:
            where = f"{x}={_value_text(row[x])}" + (
                f", {series}={_value_text(row[series])}" if series else ""
            )
            raise ValueError(
                f"plot_sweep: several rows for {where}; pass series= (or a label column) "
                "to tell them apart"
            )
        lines[s][xi] = row

    log_x = numeric and min(x_values) > 0 and max(x_values) / min(x_values) >= 10
    heading = title or f"Sweep over {x}" + (f" and {series}" if series else "")

    with _style():
        fig = _new_figure(7.5, 0.9 + 2.5 * len(metrics))
        axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
        for ax, metric in zip(axes, metrics, strict=True):
            for s, series_value in enumerate(series_values):
                points = lines.get(s, {})
                xs = [x_pos(x_values[i]) for i in sorted(points)]
                ys = [
                    math.nan if points[i][metric] is None else float(points[i][metric])
                    for i in sorted(points)
                ]
                label = (
                    _value_text(series_value)
                    + (f" {axis_unit(series)}" if series and axis_unit(series) else "")
                    if series
                    else None
                )
                ax.plot(
                    xs,
                    ys,
                    color=LINE_COLOURS[s % len(LINE_COLOURS)],
                    marker=LINE_MARKERS[s % len(LINE_MARKERS)],
                    linestyle=("-", "--", ":", "-.")[(s // len(LINE_COLOURS)) % 4],
                    linewidth=1.6,
                    markersize=5,
                    label=label,
                )
            # A reference where the perfect profiler would sit.
            if metric == "capture_ratio":
                ax.axhline(1.0, color="#888888", linewidth=0.8, linestyle="--")
                ax.annotate(
                    "perfect profiler",
                    (1.0, 1.0),
                    xycoords=("axes fraction", "data"),
                    xytext=(-2, 3),
                    textcoords="offset points",
                    ha="right",
                    fontsize=7,
                    color="#666666",
                )
                ax.set_ylim(0, max(ax.get_ylim()[1], 1.1))
            elif metric == "attribution_error_pp":
                # The largest |error| is never negative; a 1 pp floor keeps "all zero"
                # from being blown up into a scale of hundredths.
                ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))
            ax.set_ylabel(METRIC_LABELS.get(metric, metric).replace(" (", "\n("))
            ax.grid(color="#E5E5E5", linewidth=0.6)
            ax.set_axisbelow(True)
        bottom = axes[-1]
        if log_x:
            bottom.set_xscale("log")
        if numeric:
            if len(x_values) <= 12:
                bottom.xaxis.set_major_locator(FixedLocator([float(v) for v in x_values]))
                bottom.xaxis.set_minor_locator(NullLocator())
                bottom.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        else:
            bottom.set_xticks(range(len(x_values)), [_value_text(v) for v in x_values])
            bottom.set_xlim(-0.5, len(x_values) - 0.5)
        bottom.set_xlabel(axis_label(x) + (" — log scale" if log_x else ""))
        if series:
            fig.legend(
                *axes[0].get_legend_handles_labels(),
                title=axis_label(series),
                frameon=False,
                loc="outside lower center",
                ncol=min(4, len(series_values)),
            )
        fig.suptitle(heading, x=0.01, ha="left")

        unit = axis_unit(x)
        xs_words = ", ".join(_value_text(v) for v in x_values) + (f" {unit}" if unit else "")
        parts = []
        for metric in metrics:
            for s, series_value in enumerate(series_values):
                points = lines.get(s, {})
                values = ", ".join(_metric_text(metric, points[i][metric]) for i in sorted(points))
                who = f" for {series} = {_value_text(series_value)}" if series else ""
                parts.append(f"{METRIC_LABELS.get(metric, metric)}{who}: {values}")
        alt = f"{heading}. Against {x} = {xs_words}: " + "; ".join(parts) + "."
        _save(fig, path, heading, alt)
    return alt


def plot_validation_grid(data: dict[str, Any], path: str | Path) -> str:
    """The validation grid: predicted against measured capture per cell, and each gap.

    `data` is what `python -m realprof grid` writes (`docs/data/grid.json`): cells with
    the simulated twin's and each real world's median capture ratio. The top row puts
    every cell on the predicted/measured plane with the ±0.05 band, one panel per timer
    (process, per-thread, perf) so the three sit side by side; the bottom panel shows the
    gap per cell, so the regimes where the model misses stand out.
    """
    styles = {
        ("sim", "real", "native"): ("#0072B2", "o", "realprof, native threads"),
        ("sim", "real", "python"): ("#E69F00", "s", "realprof, Python threads"),
        ("sim-go", "go", "native"): ("#009E73", "^", "Go 1.19, goroutines"),
    }
    timer_titles = {
        "process": "process timer (setitimer)",
        "per-thread": "per-thread timers (timer_create)",
        "perf": "perf_event task clock",
    }
    timers = [t for t in timer_titles if any(c["timer"] == t for c in data["cells"])]
    labels, values, colours = [], [], []
    per_timer: dict[str, list[float]] = {t: [] for t in timers}
    with _style():
        fig = _new_figure(12, 8.4)
        grid = fig.add_gridspec(2, max(1, len(timers)), height_ratios=[1, 1])
        panels = {t: fig.add_subplot(grid[0, i]) for i, t in enumerate(timers)}
        bars = fig.add_subplot(grid[1, :])
        top = 1.1
        for timer in timers:
            ax = panels[timer]
            for (model, world, workload), (colour, marker, label) in styles.items():
                points = [
                    (c[model]["capture_ratio"], c[world]["capture_ratio"], c)
                    for c in data["cells"]
                    if c["timer"] == timer
                    and c["workload"] == workload
                    and model in c
                    and world in c
                ]
                if not points:
                    continue
                ax.scatter(
                    [p for p, _, _ in points],
                    [m for _, m, _ in points],
                    c=colour,
                    marker=marker,
                    label=label,
                    s=26,
                    alpha=0.85,
                )
            ax.plot([0, top], [0, top], color="grey", lw=1)
            for offset in (-0.05, 0.05):
                ax.plot([0, top], [offset, top + offset], color="grey", lw=0.6, ls="--")
            ax.set_xlim(0, top)
            ax.set_ylim(0, top)
            ax.set_xlabel("capture predicted by the model")
            ax.set_title(timer_titles[timer], fontsize=10)
            ax.grid(alpha=0.3)
        if timers:
            panels[timers[0]].set_ylabel("capture measured")
            handles: dict[str, Any] = {}
            for ax in panels.values():
                for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                    handles.setdefault(label, handle)
            panels[timers[0]].legend(
                list(handles.values()), list(handles), fontsize=7, loc="upper left"
            )
        for timer in timers:
            for (model, world, workload), (colour, _marker, _label) in styles.items():
                for c in data["cells"]:
                    if c["timer"] != timer or c["workload"] != workload:
                        continue
                    if model not in c or world not in c:
                        continue
                    gap = c[world]["capture_ratio"] - c[model]["capture_ratio"]
                    labels.append(
                        f"{'go' if world == 'go' else workload[:2]} {c['threads']}t "
                        f"{c['rate_hz']} {c['timer'][:4]}"
                    )
                    values.append(gap)
                    colours.append(colour)
                    per_timer[timer].append(gap)
        bars.bar(range(len(values)), values, color=colours)
        bars.axhspan(-0.05, 0.05, color="grey", alpha=0.15, label="±0.05")
        bars.set_xticks(range(len(values)), labels, rotation=90, fontsize=5)
        bars.set_xlim(-1, max(len(values), 1))
        bars.set_ylabel("measured − predicted capture")
        bars.set_title("Gap per cell (cell: workload, threads, rate Hz, timer)", fontsize=10)
        bars.legend(fontsize=8)
        within = sum(abs(v) <= 0.05 for v in values)
        worst = max(range(len(values)), key=lambda k: abs(values[k])) if values else None
        timer_words = "; ".join(
            f"{timer_titles[t]}: {sum(abs(v) <= 0.05 for v in per_timer[t])} of "
            f"{len(per_timer[t])} within 0.05"
            for t in timers
        )
        alt = (
            f"Validation grid: predicted against measured capture ratio for {len(values)} "
            f"cells, {within} of them within 0.05 of the model ({timer_words})"
            + (
                f"; the largest gap is {values[worst]:+.2f} at {labels[worst]}"
                if worst is not None
                else ""
            )
            + ". Bottom: the gap per cell."
        )
        _save(fig, path, "Validation grid", alt)
    return alt
