"""The funnel: *where did my samples go?*

`plot_funnel` draws one bar per stage of a sample's life, from the samples a perfect
profiler would take (CPU seconds × rate) down to the samples in the written profile,
with every loss (an expiry dropped because SIGPROF was already pending, a signal
discarded by the runtime, a full buffer, ...) as its own hatched, coloured bar, labelled
with its count and its share of the expected samples. Style, saving and alt text as in
`figures.style`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from contract.report import FUNNEL_LABELS
from figures.style import (
    OKABE_ITO,
    count_words,
    format_of,
    house_style,
    machine_words,
    new_figure,
    save,
)

if TYPE_CHECKING:  # annotations only
    from contract.report import Report

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
    format_of(path)
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
        f"rate {report.rate_hz:g} Hz · {machine_words(report.machine)}"
    )
    true_cpu_percent = (
        report.cpu_seconds / report.wall_seconds * 100 if report.wall_seconds else 0.0
    )
    footer = (
        f"capture ratio {report.capture_ratio:.3f} · the profile shows "
        f"{report.profile_cpu_percent:.1f}% CPU, the workload used {true_cpu_percent:.1f}%"
    )

    with house_style():
        fig = new_figure(9.0, 1.5 + 0.36 * len(rows))
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
                words = count_words(value)
            elif value == 0 and kind == "loss":
                words = "0"
            else:
                words = f"{count_words(value)}  ({share(value)})"
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
                parts.append(f"{label}: {count_words(value)}")
            else:
                parts.append(f"{label}: {count_words(value)} ({share(value)})")
        if nothing_lost:
            parts.append("zero for " + ", ".join(nothing_lost))
        alt = (
            f"Funnel of samples for scenario {report.scenario} ({subtitle}). "
            + "; ".join(parts)
            + f". Capture ratio {report.capture_ratio:.3f}: the profile shows "
            f"{report.profile_cpu_percent:.1f}% CPU where the workload used "
            f"{true_cpu_percent:.1f}%."
        )
        save(fig, path, title, alt)
    return alt
