"""Tests for the figures (figures.funnel, .timeline, .sweep): each is written, byte-stable, and
described by its alt text."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import matplotlib as mpl
import pytest

from contract.report import Report
from contract.scenario import Scenario, validate_scenario
from figures import funnel, sweep, timeline
from sim.model import SimResult, Trace, simulate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_scenario(runtime: str = "go1.18", threads: int = 3) -> Scenario:
    """Two CPUs, half a second: more busy threads than CPUs, so expiries bunch and drop."""
    return validate_scenario(
        {
            "name": "small",
            "machine": {"cpus": 2, "kernel_hz": 250},
            "profiler": {"runtime": runtime, "rate_hz": 250},
            "workload": {
                "duration_s": 0.5,
                "threads": [
                    {
                        "name": "spin",
                        "count": threads,
                        "program": [{"run": {"function": "main.spin", "cpu_ms": 1000}}],
                    }
                ],
            },
        }
    )


@pytest.fixture(scope="module")
def result() -> SimResult:
    return simulate(small_scenario(), trace_window_ms=(0, 40))


def synthetic_trace() -> Trace:
    """Thread a on CPU 0, b then the reader on CPU 1, c waiting for a CPU at 6 ms."""
    ms = 1_000_000
    return Trace(
        start_ns=0,
        end_ns=8 * ms,
        cpus=2,
        tick_ns=4 * ms,
        threads=["a", "b", "c"],
        segments=[
            (0, "a", 0, 4 * ms),
            (0, "a", 4 * ms, 8 * ms),
            (1, "b", 0, 4 * ms),
            (1, "reader", 4 * ms, 5 * ms),
        ],
        ticks=[(0, 4 * ms), (1, 4 * ms)],
        events=[
            (4 * ms, "expiry-process", "a"),
            (4 * ms, "drop-pending", "b"),
            (4 * ms, "deliver", "a"),
            (4 * ms, "record", "a"),
            (6 * ms, "deliver", "c"),
            (6 * ms, "deliver", "c"),
            (6 * ms, "discard", "c"),
            (6 * ms, "record", "c"),
        ],
    )


def draw(kind: str, result: SimResult, path: Path) -> str:
    if kind == "funnel":
        return funnel.plot_funnel(result.report, path)
    if kind == "timeline":
        assert result.trace is not None
        return timeline.plot_timeline(result.trace, path, title="small: first 40 ms")
    rows = [
        {"profiler.rate_hz": rate, "capture_ratio": ratio, "attribution_error_pp": err}
        for rate, ratio, err in ((100, 1.0, 0.5), (250, 0.984, 1.5), (500, 0.49, None))
    ]
    return sweep.plot_sweep(rows, "profiler.rate_hz", path)


KINDS = ("funnel", "timeline", "sweep")
SUFFIXES = (".png", ".svg")


@pytest.fixture(scope="module")
def rendered(result: SimResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every figure in both formats, twice, watching matplotlib's global state meanwhile.

    Rendering is the slow part of these tests, so it happens once for the whole module.
    """
    directory = tmp_path_factory.mktemp("figures")
    had_pyplot = "matplotlib.pyplot" in sys.modules
    # copy() reads the stored values: indexing rcParams["backend"] would import pyplot.
    before = mpl.rcParams.copy()
    out: dict[str, Any] = {"files": {}, "alt": {}}
    for kind in KINDS:
        for suffix in SUFFIXES:
            paths = (directory / f"{kind}-a{suffix}", directory / f"{kind}-b{suffix}")
            alts = [draw(kind, result, path) for path in paths]
            out["files"][kind, suffix] = paths
            out["alt"].setdefault(kind, set()).update(alts)
    out["rc_unchanged"] = mpl.rcParams.copy() == before
    out["pyplot_imported"] = not had_pyplot and "matplotlib.pyplot" in sys.modules
    return out


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("kind", KINDS)
def test_figure_is_written_and_byte_stable(
    kind: str, suffix: str, rendered: dict[str, Any]
) -> None:
    first, second = rendered["files"][kind, suffix]
    data = first.read_bytes()
    assert len(data) > 1000
    assert data == second.read_bytes(), "same inputs must give the same bytes"
    assert len(rendered["alt"][kind]) == 1, "same inputs must give the same alt text"
    if suffix == ".png":
        assert data.startswith(PNG_MAGIC)
        assert b"Software" not in data  # no matplotlib version to churn diffs
    else:
        text = data.decode("utf-8")
        assert text.startswith("<?xml")
        assert "<dc:date>" not in text  # no timestamp
        assert "<dc:description>" in text  # alt text embedded


def test_no_global_matplotlib_state_changes(rendered: dict[str, Any]) -> None:
    assert rendered["rc_unchanged"], "plotting must not change matplotlib.rcParams"
    assert not rendered["pyplot_imported"], "plotting must not import pyplot"


def test_funnel_alt_text_has_the_key_numbers(result: SimResult, rendered: dict[str, Any]) -> None:
    report = result.report
    (alt,) = rendered["alt"]["funnel"]
    assert "small" in alt and "go1.18" in alt and "250 Hz" in alt
    assert f"{report.samples_in_profile:,}" in alt
    assert f"{report.signals_generated:,}" in alt
    assert f"capture ratio {report.capture_ratio:.3f}" in alt.lower()
    # Three busy threads on two CPUs at rate = HZ: same-round expiries are dropped.
    assert report.signals_dropped_pending
    assert f"already pending: {report.signals_dropped_pending:,}" in alt


def test_funnel_handles_unobserved_fields(result: SimResult, tmp_path: Path) -> None:
    # The real world sees what reaches the profile, not the signals on the way.
    unobserved = {
        name: None
        for name in (
            "signals_generated",
            "timer_overruns",
            "signals_dropped_pending",
            "signals_pending_at_stop",
            "signals_delivered",
            "signals_merged",
            "samples_recorded",
        )
    }
    real = Report.from_dict({**result.report.to_dict(), **unobserved, "world": "real"})
    path = tmp_path / "real.png"
    alt = funnel.plot_funnel(real, path)
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert "signals generated by the timers: not observed" in alt
    assert "dropped" not in alt  # unobserved losses are left out, not shown as zero
    assert f"{real.samples_in_profile:,}" in alt


def test_funnel_with_no_cpu_time(result: SimResult, tmp_path: Path) -> None:
    idle = dataclasses.replace(
        result.report, expected_samples=0.0, cpu_seconds=0.0, samples_in_profile=0
    )
    alt = funnel.plot_funnel(idle, tmp_path / "idle.svg")
    assert "no CPU time" in alt


def test_timeline_alt_text_counts_events(rendered: dict[str, Any]) -> None:
    (alt,) = rendered["alt"]["timeline"]
    assert alt.startswith("small: first 40 ms.")
    assert "2 CPUs, kernel tick every 4 ms (HZ=250)" in alt
    assert "10 tick rounds" in alt
    # Three busy threads on two CPUs at rate = HZ: every round has two process-timer
    # expiries, and the second finds SIGPROF pending.
    assert re.search(r"\b\d+ expiries dropped because SIGPROF was already pending", alt)
    assert "one tick round raised" in alt


def test_sweep_alt_text(rendered: dict[str, Any]) -> None:
    (alt,) = rendered["alt"]["sweep"]
    assert "profiler.rate_hz = 100, 250, 500 Hz" in alt
    assert "capture ratio (in profile ÷ expected): 1.000, 0.984, 0.490" in alt
    assert "(percentage points): 0.5, 1.5, n/a" in alt


def test_timeline_places_off_cpu_events_and_service_threads(tmp_path: Path) -> None:
    alt = timeline.plot_timeline(synthetic_trace(), tmp_path / "t.svg")
    assert alt.startswith("Timeline of 0 to 8 ms on 2 CPUs")
    assert "3 threads ran" in alt  # a, b and the reader; c never got a CPU
    assert "waiting for a CPU" in alt  # c's events go to the extra row
    assert (
        "At 4 ms one tick round raised 2 process-timer expiries: a's expiry became the "
        "SIGPROF and 1 was dropped" in alt
    )
    assert "3 signal deliveries" in alt and "1 signal discarded" in alt


def test_timeline_without_events(tmp_path: Path) -> None:
    trace = synthetic_trace()
    trace.events = []
    alt = timeline.plot_timeline(trace, tmp_path / "t.png")
    assert "Events: none." in alt


def test_sweep_series_categorical_and_gaps(tmp_path: Path) -> None:
    rows = [
        {"profiler.runtime": rt, "machine.cpus": cpus, "capture_ratio": c, "extra": None}
        for rt, cpus, c in (
            ("go1.17", 2, 0.9),
            ("go1.17", 8, 0.3),
            ("go1.18", 2, 1.0),
            ("go1.18", 8, 0.99),
        )
    ]
    alt = sweep.plot_sweep(
        rows,
        "profiler.runtime",
        tmp_path / "s.png",
        series="machine.cpus",
        metrics=("capture_ratio", "extra"),
        title="demo",
    )
    assert alt.startswith("demo. Against profiler.runtime = go1.17, go1.18:")
    assert "for machine.cpus = 8: 0.300, 0.990" in alt
    assert "extra for machine.cpus = 2: n/a, n/a" in alt


def test_sweep_log_axis_and_units(tmp_path: Path) -> None:
    rows = [{"profiler.rate_hz": r, "capture_ratio": 250 / max(r, 250)} for r in (100, 1000)]
    alt = sweep.plot_sweep(rows, "profiler.rate_hz", tmp_path / "s.svg", metrics=["capture_ratio"])
    assert "profiler.rate_hz = 100, 1000 Hz" in alt
    assert "1.000, 0.250" in alt
    assert sweep.axis_label("profiler.reader_cost_us_per_sample") == (
        "profiler.reader_cost_us_per_sample (µs per sample)"
    )
    assert sweep.axis_label("machine.cpus") == "machine.cpus"


def test_sweep_counts_int_and_float_as_one_point(tmp_path: Path) -> None:
    rows = [
        {"x": 250, "s": "a", "capture_ratio": 1.0},
        {"x": 250.0, "s": "b", "capture_ratio": 0.5},
    ]
    alt = sweep.plot_sweep(rows, "x", tmp_path / "s.svg", series="s", metrics=["capture_ratio"])
    assert "Against x = 250:" in alt


def test_sweep_rejects_ambiguous_rows(tmp_path: Path) -> None:
    rows = [{"x": 1, "y": 1, "capture_ratio": 1.0}, {"x": 1, "y": 2, "capture_ratio": 0.5}]
    with pytest.raises(ValueError, match="several rows for x=1"):
        sweep.plot_sweep(rows, "x", tmp_path / "s.png", metrics=["capture_ratio"])
    with pytest.raises(ValueError, match="no column 'nope'"):
        sweep.plot_sweep(rows, "nope", tmp_path / "s.png")
    with pytest.raises(ValueError, match="no rows"):
        sweep.plot_sweep([], "x", tmp_path / "s.png")


def test_unknown_format_is_refused(result: SimResult, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown figure format '\.jpeg'"):
        funnel.plot_funnel(result.report, tmp_path / "funnel.jpeg")


def test_sweep_title_of_a_long_scenario_name_stays_inside_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = []
    real_save = sweep.save

    def keep_figure(fig: Any, path: Any, title: str, alt: str) -> None:
        real_save(fig, path, title, alt)
        drawn.append(fig)

    monkeypatch.setattr(sweep, "save", keep_figure)
    name = "a-very-long-scenario-name-" * 8
    title = f"{name}: sweep over profiler.rate_hz and machine.same_round_survival"
    rows = [{"profiler.rate_hz": r, "capture_ratio": 1.0} for r in (100, 250)]
    alt = sweep.plot_sweep(
        rows, "profiler.rate_hz", tmp_path / "s.png", metrics=["capture_ratio"], title=title
    )
    assert alt.startswith(title + ".")

    (fig,) = drawn
    renderer = fig.canvas.get_renderer()
    heading = [t for t in fig.findobj(mpl.text.Text) if t.get_text().startswith("a-very")]
    assert len(heading) == 1
    box = heading[0].get_window_extent(renderer)
    inside = fig.bbox
    assert (box.x0, box.y0) >= (inside.x0, inside.y0)
    assert (box.x1, box.y1) <= (inside.x1, inside.y1)
    # Wrapped, not shortened: every character of the title is drawn.
    assert "".join(heading[0].get_text().split()) == "".join(title.split())
