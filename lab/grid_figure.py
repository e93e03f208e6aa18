"""The validation grid's figure: the model's predicted capture against the measured one.

It knows the layout of the laboratory's `grid.json` (`lab.grid` writes it, the docs
generator redraws it from `docs/data/grid.json`), so it lives in the laboratory, drawn in
the house style of `figures.style`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from figures.style import house_style, new_figure, save
from lab.grid_results import go_pairs, go_title, tolerance


def plot_validation_grid(data: dict[str, Any], path: str | Path) -> str:
    """The validation grid: predicted against measured capture per cell, and each gap.

    `data` is what `python -m realprof grid` writes (`docs/data/grid.json`): cells with
    the simulated twin's and each real world's median capture ratio. The top row puts
    every cell on the predicted/measured plane with the ±0.05 band, one panel per timer
    (process, per-thread, perf) so the three sit side by side; the bottom panel shows the
    gap per cell, so the regimes where the model misses stand out. Each Go release
    (`--go-versions`) is its own colour and marker, held against its own model.
    """
    styles = {
        ("sim", "real", "native"): ("#0072B2", "o", "realprof, native threads"),
        ("sim", "real", "python"): ("#E69F00", "s", "realprof, Python threads"),
        ("sim", "real", "python-ft"): ("#882255", "h", "realprof, Python threads, no GIL"),
    }
    # Eight distinct colours (Okabe-Ito, then two darker ones): four releases and their
    # go1.17 emulations in the Go release grid.
    go_colours = (
        "#009E73",
        "#CC79A7",
        "#D55E00",
        "#56B4E9",
        "#000000",
        "#F0E442",
        "#7F3C8D",
        "#4D4D4D",
    )
    go_markers = ("^", "v", "D", "P", "X", "*", "<", ">")
    for index, (twin, world) in enumerate(go_pairs(data)):
        styles[(twin, world, "native")] = (
            go_colours[index % len(go_colours)],
            go_markers[index % len(go_markers)],
            f"{go_title(data, world)} goroutines, {twin[4:]} model",
        )
    # The bar labels' word for a cell's workload: native, Python, Python without the GIL.
    short = {"native": "na", "python": "py", "python-ft": "ft"}
    timer_titles = {
        "process": "process timer (setitimer)",
        "per-thread": "per-thread timers (timer_create)",
        "perf": "perf_event task clock",
    }
    # A timer gets a panel where some world was measured against its model (the Go
    # release grid simulates perf cells for realprof but measures none).
    timers = [
        t
        for t in timer_titles
        if any(
            c["timer"] == t and c["workload"] == w and m in c and r in c
            for c in data["cells"]
            for (m, r, w) in styles
        )
    ]
    labels, values, colours = [], [], []
    tolerances: list[float] = []
    per_timer: dict[str, list[tuple[float, float]]] = {t: [] for t in timers}
    with house_style():
        fig = new_figure(12, 8.4)
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
            # Lower right: below the diagonal's band, where no cell lies unless it missed.
            panels[timers[0]].legend(
                list(handles.values()), list(handles), fontsize=6, loc="lower right"
            )
        for timer in timers:
            for (model, world, workload), (colour, _marker, _label) in styles.items():
                for c in data["cells"]:
                    if c["timer"] != timer or c["workload"] != workload:
                        continue
                    if model not in c or world not in c:
                        continue
                    gap = c[world]["capture_ratio"] - c[model]["capture_ratio"]
                    tolerances.append(tolerance(data, c, (model, world)))
                    labels.append(
                        f"{world if world.startswith('go') else short[workload]} "
                        f"{c['threads']}t {c['rate_hz']} {c['timer'][:4]}"
                    )
                    values.append(gap)
                    colours.append(colour)
                    per_timer[timer].append((gap, tolerances[-1]))
        bars.bar(range(len(values)), values, color=colours)
        bars.axhspan(-0.05, 0.05, color="grey", alpha=0.15, label="±0.05")
        wide = [k for k, t in enumerate(tolerances) if t > 0.05]
        if wide:
            bars.errorbar(
                wide,
                [0.0] * len(wide),
                yerr=[tolerances[k] for k in wide],
                fmt="none",
                ecolor="black",
                elinewidth=0.6,
                capsize=1.5,
                label="wider tolerance: p's run-to-run scatter",
            )
        bars.set_xticks(range(len(values)), labels, rotation=90, fontsize=5)
        bars.set_xlim(-1, max(len(values), 1))
        bars.set_ylabel("measured − predicted capture")
        bars.set_title("Gap per cell (cell: workload, threads, rate Hz, timer)", fontsize=10)
        bars.legend(fontsize=8)
        within = sum(abs(v) <= t for v, t in zip(values, tolerances, strict=True))
        worst = max(range(len(values)), key=lambda k: abs(values[k])) if values else None
        timer_words = "; ".join(
            f"{timer_titles[t]}: {sum(abs(v) <= tol for v, tol in per_timer[t])} of "
            f"{len(per_timer[t])}"
            for t in timers
        )
        alt = (
            f"Validation grid: predicted against measured capture ratio for {len(values)} "
            f"cells, {within} of them within their tolerance of the model, 0.05 or wider "
            f"where the run-to-run scatter of p sets it ({timer_words})"
            + (
                f"; the largest gap is {values[worst]:+.2f} at {labels[worst]}"
                if worst is not None
                else ""
            )
            + ". Bottom: the gap per cell."
        )
        save(fig, path, "Validation grid", alt)
    return alt
