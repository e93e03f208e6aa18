"""The timeline: *why?* What the CPUs and the profiler did, a few tens of milliseconds.

`plot_timeline` draws one row per CPU with the thread that ran, the kernel's ticks, and
under each row what the profiler did at that moment (timer expiries, deliveries, what the
handler did with the sample). It makes visible that timers are only checked at ticks,
that expiries bunch in one tick round, and that the second expiry of a round is dropped
because one SIGPROF is pending. Style, saving and alt text as in `figures.style`.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter
from matplotlib.transforms import offset_copy

from figures.style import (
    OKABE_ITO,
    SERVICE_COLOURS,
    THREAD_COLOURS,
    THREAD_HATCHES,
    format_of,
    house_style,
    new_figure,
    save,
)

if TYPE_CHECKING:  # annotations only: drawing needs no simulator
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sim.model import Trace

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


def _marker_style(spec: dict[str, Any], size: float) -> dict[str, Any]:
    """An event kind's marker: a cross in its colour, any other shape edged in black."""
    cross = spec["marker"] == "x"
    return dict(
        marker=spec["marker"],
        markersize=size,
        color=spec["colour"],
        markeredgecolor=spec["colour"] if cross else "black",
        markeredgewidth=1.4 if cross else 0.5,
    )


# The placed events: (cpu or None, kind, instant) -> how many.
_Placed = Counter[tuple[int | None, str, int]]


def plot_timeline(trace: Trace, path: str | Path, title: str = "") -> str:
    """One row per CPU: who ran, the ticks, and what the profiler did; returns alt text.

    Under each CPU's bar are three lanes of markers, for the thread on that CPU at that
    moment: *timer* (an expiry, or an expiry dropped as already pending), *signal* (a
    delivery) and *sample* (what the handler did with it). Events of a thread that was
    not on any CPU (Windows suspends runnable threads too) go to a last row.
    """
    format_of(path)
    start_ms, end_ms = trace.start_ns / 1e6, trace.end_ns / 1e6
    span_ms = max(end_ms - start_ms, 1e-9)
    segments = _merged_segments(trace)
    styles = _thread_styles(trace)
    placed, drawn = _place_events(trace)
    off_cpu = any(cpu is None for cpu, _, _ in placed)
    n_rows = trace.cpus + (1 if off_cpu else 0)

    heading = title or f"Timeline {start_ms:g}–{end_ms:g} ms"
    machine = _machine_line(trace)
    subtitle = (
        f"{machine}. Bars: the thread on each CPU. Black notches: kernel ticks. "
        "Under each bar: timer expiries, deliveries, and what the handler did."
    )

    with house_style():
        fig = new_figure(11.0, 1.9 + 0.62 * n_rows)
        ax = fig.add_subplot()
        _draw_threads(ax, segments, styles, span_ms)
        _draw_ticks(ax, trace)
        present = _draw_events(fig, ax, trace, placed)
        # A little room at both ends so markers at the window's edges stay whole.
        ax.set_xlim(start_ms - 0.01 * span_ms, end_ms + 0.01 * span_ms)
        _draw_rows(ax, trace, n_rows, off_cpu)
        ax.set_title(subtitle, loc="left", color="#333333", fontsize=8)
        fig.suptitle(heading, x=0.01, ha="left")
        handles = _legend_handles(trace, present, segments, styles)
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
        save(fig, path, heading, alt)
    return alt


def _machine_line(trace: Trace) -> str:
    """'4 CPUs, kernel tick every 4 ms (HZ=250)'."""
    hz = round(1e9 / trace.tick_ns) if trace.tick_ns else None
    return f"{trace.cpus} CPU{'s' if trace.cpus != 1 else ''}" + (
        f", kernel tick every {trace.tick_ns / 1e6:g} ms (HZ={hz})" if hz else ""
    )


def _place_events(trace: Trace) -> tuple[_Placed, list[tuple[int, str, str]]]:
    """Every drawable event on its CPU (None: on none), counting repeats of one kind at
    one instant; and the events drawn, in trace order."""
    finder = _CpuFinder(trace.segments)
    placed: _Placed = Counter()
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
    return placed, drawn


def _draw_threads(
    ax: Axes,
    segments: Sequence[tuple[int, str, int, int]],
    styles: dict[str, tuple[str, str]],
    span_ms: float,
) -> None:
    """Which thread ran where: a bar per segment, named where it is wide enough."""
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


def _draw_ticks(ax: Axes, trace: Trace) -> None:
    """Ticks: a notch across the bar, and a faint guide down through the lanes, so the
    eye follows each tick to the checks it caused."""
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


def _draw_events(fig: Figure, ax: Axes, trace: Trace, placed: _Placed) -> list[str]:
    """Markers in their lanes; returns the kinds drawn, in legend order.

    Kinds that share a lane and an instant (an expiry of the thread's own timer and a
    dropped process expiry, say) sit side by side a few points apart; a number beside a
    marker counts repeats.
    """

    def row_of(cpu: int | None) -> int:
        return trace.cpus if cpu is None else cpu

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
            **_marker_style(spec, 5.5),
            transform=offset_copy(ax.transData, fig=fig, x=dx, y=0, units="points"),
            clip_on=False,
        )
    return present


def _draw_rows(ax: Axes, trace: Trace, n_rows: int, off_cpu: bool) -> None:
    """The y axis: a row per CPU (CPU 0 at the top), the lanes named on the first."""
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


def _legend_handles(
    trace: Trace,
    present: Sequence[str],
    segments: Sequence[tuple[int, str, int, int]],
    styles: dict[str, tuple[str, str]],
) -> list[Any]:
    """Ticks, the event kinds drawn and, while the list stays short, the threads."""
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
                **_marker_style(spec, 6),
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
    return handles


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
