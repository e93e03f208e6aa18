"""The sweep: *how does it change?* A metric against one varied field.

`plot_sweep` draws one subplot per metric (capture ratio, attribution error, ...) against
one varied scenario field, one line per value of a second one; `axis_unit` and
`axis_label` name a scenario field's unit from its name, for this figure and for the
sweep's table (`sim.sweep`). The title is wrapped to the figure's width
(`figures.style.fitted_suptitle`), so a long scenario name is never cut off. Style,
saving and alt text as in `figures.style`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from contract.report import FUNNEL_LABELS
from contract.values import is_number, unique
from figures.style import (
    LINE_COLOURS,
    LINE_MARKERS,
    fitted_suptitle,
    format_of,
    house_style,
    new_figure,
    save,
)

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
    Missing values (None) leave a gap. Values are compared as scenario values
    (`contract.values`): 250 and 250.0 are one point.
    """
    format_of(path)
    if not rows:
        raise ValueError("plot_sweep: no rows to plot")
    for key in (x, series, *metrics):
        if key is not None and key not in rows[0]:
            raise ValueError(f"plot_sweep: rows have no column {key!r}")
    if not metrics:
        raise ValueError("plot_sweep: give at least one metric")

    x_values = unique([row[x] for row in rows])
    numeric = all(is_number(v) for v in x_values)
    if numeric:
        x_values = sorted(x_values)
    series_values = unique([row[series] for row in rows]) if series else [None]

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

    with house_style():
        fig = new_figure(7.5, 0.9 + 2.5 * len(metrics))
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
        fitted_suptitle(fig, heading)

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
        save(fig, path, heading, alt)
    return alt
