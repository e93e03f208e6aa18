"""The figures of `docs/data/go-samples.json` (`python -m realprof go-samples`).

Three pictures of one real Go run, redrawn by `python -m docsgen docs/figures` from the
committed data (never remeasured by the docs build), each returning its alt text:

* `plot_go_labels`: samples per value of the label `request` in the pprof file, beside
  the workers' thread CPU time × rate (the child goroutine counted under `b`);
* `plot_go_trace_samples`: the execution trace's CPU sample events per worker goroutine
  and 100-ms bin of the schedule: the *when* that the profile's totals cannot show;
* `plot_go_cgo_phases`: samples per phase of the C threads against thread CPU × rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from figures.style import OKABE_ITO, house_style, new_figure, save

_MEASURED = OKABE_ITO["blue"]
_EXPECTED = "#BBBBBB"
_WORKERS = (("a", OKABE_ITO["orange"]), ("b", OKABE_ITO["blue"]), ("b-child", OKABE_ITO["green"]))


def _where(data: dict[str, Any]) -> str:
    return f"{data['go']}, {data['rate_hz']} Hz, 2 CPUs"


def _paired_bars(ax: Any, names: list[str], measured: list[float], expected: list[float]) -> None:
    ys = range(len(names))
    ax.barh(
        [y + 0.2 for y in ys], expected, height=0.38, color=_EXPECTED, label="thread CPU × rate"
    )
    ax.barh([y - 0.2 for y in ys], measured, height=0.38, color=_MEASURED, label="samples in pprof")
    for y, m, e in zip(ys, measured, expected, strict=True):
        ax.text(m, y - 0.2, f" {m:g}", va="center", fontsize=8)
        ax.text(e, y + 0.2, f" {e:g}", va="center", fontsize=8, color="#555555")
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlabel("samples")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)


def plot_go_labels(data: dict[str, Any], path: str | Path) -> str:
    labels = data["labels"]
    names = sorted(labels["expected"])
    measured = [labels["samples"].get(n, 0) for n in names]
    expected = [labels["expected"][n] for n in names]
    title = f"Samples per pprof label request=… ({_where(data)})"
    with house_style():
        fig = new_figure(7.5, 2.6)
        ax = fig.add_subplot()
        _paired_bars(ax, [f"request={n}" for n in names], measured, expected)
        ax.set_title(title, loc="left", fontsize=10)
        pairs = ", ".join(
            f"request={n}: {m} samples against {e:g} expected"
            for n, m, e in zip(names, measured, expected, strict=True)
        )
        alt = (
            f"Horizontal bars, one pair per label value, from a real {data['go']} run at "
            f"{data['rate_hz']} Hz: {pairs}. The expected value is the workers' thread CPU "
            "time times the rate; request=b includes the child goroutine that never called "
            "pprof.Do and inherited the label from its creator."
        )
        save(fig, path, title, alt)
    return alt


def plot_go_trace_samples(data: dict[str, Any], path: str | Path) -> str:
    trace = data["trace"]
    bin_ms = trace["bin_ms"]
    bins = trace["bins"]
    last = max(int(i) for b in bins.values() for i in b)
    xs = list(range(last + 1))
    title = f"Execution-trace CPU samples per goroutine over time ({_where(data)})"
    with house_style():
        fig = new_figure(7.5, 3.0)
        ax = fig.add_subplot()
        bottom = [0] * len(xs)
        words = []
        for name, colour in _WORKERS:
            counts = [bins.get(name, {}).get(str(x), 0) for x in xs]
            ax.bar(
                [x * bin_ms + bin_ms / 2 for x in xs],
                counts,
                width=bin_ms * 0.9,
                bottom=bottom,
                color=colour,
                label=name,
            )
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
            spans = [str(x * bin_ms) for x, c in zip(xs, counts, strict=True) if c]
            if spans:
                words.append(f"{name} from {spans[0]} to {int(spans[-1]) + bin_ms} ms")
        ax.set_xlabel(f"schedule time (ms; 1 ms = {data['scale_ms_per_unit']:g} ms of wall time)")
        ax.set_ylabel(f"CPU samples per {bin_ms} ms")
        ax.legend(title="goroutine", fontsize=8, title_fontsize=8)
        ax.set_title(title, loc="left", fontsize=10)
        alt = (
            f"Stacked bars of the execution trace's {trace['cpu_sample_events']} CPU sample "
            f"events, per {bin_ms}-ms bin of the schedule, one colour per goroutine: "
            + "; ".join(words)
            + ". The profile of the same run says only how many samples each label got."
        )
        save(fig, path, title, alt)
    return alt


def plot_go_cgo_phases(data: dict[str, Any], path: str | Path) -> str:
    phases = data["cgo"]
    order = [
        ("c_spin_before_callback", "C thread 1, in C, before its callback"),
        ("firstThreadCallback", "C thread 1, in Go (callback, extra M)"),
        ("c_spin_after_callback", "C thread 1, in C, after its callback"),
        ("secondThreadCallback", "C thread 2, in Go (callback, extra M)"),
    ]
    measured = [phases[k]["samples"] for k, _ in order]
    expected = [phases[k]["expected"] for k, _ in order]
    title = f"Samples of C threads that call into Go ({_where(data)})"
    with house_style():
        fig = new_figure(7.5, 3.0)
        ax = fig.add_subplot()
        _paired_bars(ax, [words for _, words in order], measured, expected)
        ax.set_title(title, loc="left", fontsize=10)
        pairs = "; ".join(
            f"{words}: {m} samples against {e:g} expected"
            for (_, words), m, e in zip(order, measured, expected, strict=True)
        )
        alt = (
            f"Horizontal bars, one pair per phase of two C-created threads, from a real "
            f"{data['go']} run at {data['rate_hz']} Hz: {pairs}. The expected value is the "
            "phase's thread CPU time times the rate."
        )
        save(fig, path, title, alt)
    return alt
