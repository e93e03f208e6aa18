"""Tests for sim.sweep: parsing --vary, the grid, parallel and Dask runs, and the outputs."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import sim.sweep as sweep
from contract.scenario import Scenario, ScenarioError, validate_scenario
from sim.sweep import ROW_FIELDS, SweepResult, parse_vary, run_sweep

RATE = "profiler.rate_hz"
RUNTIME = "profiler.runtime"


def raw_scenario(threads: int = 1, runtime: str = "go1.17") -> dict[str, Any]:
    """Busy threads on two CPUs at HZ=250 for half a second."""
    return {
        "name": "tiny",
        "machine": {"cpus": 2, "kernel_hz": 250},
        "profiler": {"runtime": runtime, "rate_hz": 100},
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


def tiny(threads: int = 1, runtime: str = "go1.17") -> Scenario:
    return validate_scenario(raw_scenario(threads, runtime))


# --------------------------------------------------------------------------------------
# parse_vary
# --------------------------------------------------------------------------------------


def test_parse_vary_reads_yaml_scalars_in_order() -> None:
    vary = parse_vary(
        [
            "profiler.rate_hz=100,250, 500,1e3,2.5",
            " profiler.runtime = go1.17,go1.18",
            "machine.tick_skew=true,false",
            "machine.cpu_check_bias=[1,1],[4, 1],null",
            "name='a,b',c",
        ]
    )
    assert list(vary) == [RATE, RUNTIME, "machine.tick_skew", "machine.cpu_check_bias", "name"]
    assert vary[RATE] == [100, 250, 500, 1000, 2.5]
    assert [type(v) for v in vary[RATE]] == [int, int, int, int, float]
    assert vary[RUNTIME] == ["go1.17", "go1.18"]
    assert vary["machine.tick_skew"] == [True, False]
    assert vary["machine.cpu_check_bias"] == [[1, 1], [4, 1], None]
    assert vary["name"] == ["a,b", "c"]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["profiler.rate_hz"], "expected dotted.path=V1,V2"),
        (["=1,2"], "empty field name"),
        (["profiler..rate_hz=1"], "empty field name"),
        (["profiler.rate_hz="], "no values after '='"),
        (["profiler.rate_hz=1,,2"], "empty value"),
        (["profiler.rate_hz=1,"], "empty value"),
        (["machine.cpu_check_bias=[1,2"], "unclosed bracket"),
        (["machine.cpu_check_bias=1]"], "unbalanced ']'"),
        (["name='abc"], "unclosed quote"),
        (["profiler.rate_hz=100,100.0"], "value 100 is listed twice"),
        (["profiler.rate_hz=1", "profiler.rate_hz=2"], "given twice"),
        (["workload.threads={a: b: c}"], "cannot read value"),
        ([], "nothing to vary"),
    ],
)
def test_parse_vary_rejects_malformed_input(texts: list[str], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as info:
        parse_vary(texts)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("--vary")


# --------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------


def test_rows_come_in_grid_order() -> None:
    result = run_sweep(tiny(), {RATE: [500, 100], RUNTIME: ["go1.18", "go1.17"]}, progress=False)
    assert result.axes == [RATE, RUNTIME]
    assert [(r[RATE], r[RUNTIME]) for r in result.rows] == [
        (500, "go1.18"),
        (500, "go1.17"),
        (100, "go1.18"),
        (100, "go1.17"),
    ]
    for row in result.rows:
        assert list(row) == [RATE, RUNTIME, *ROW_FIELDS]
        assert row["wall_seconds"] == 0.5


def test_every_point_is_validated_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Scenario] = []
    monkeypatch.setattr(sweep, "run_point", lambda s: ran.append(s) or {})

    with pytest.raises(ScenarioError) as info:
        run_sweep(tiny(), {RATE: [100, 250, -5]}, progress=False)
    assert str(info.value) == (
        "--vary profiler.rate_hz=-5: profiler.rate_hz: Input should be greater than or "
        "equal to 0.01 (got -5)"
    )

    # Values that are only wrong together: go1.17 has no per-thread timers.
    with pytest.raises(ScenarioError) as info:
        run_sweep(
            tiny(runtime="go1.18"),
            {RUNTIME: ["go1.18", "go1.17"], "profiler.timer": ["both"]},
            progress=False,
        )
    message = str(info.value)
    assert message.startswith("--vary profiler.runtime=go1.17, profiler.timer=both: ")
    assert "cannot use timer 'both'" in message

    with pytest.raises(
        ScenarioError, match=r"profiler\.rte_hz: unknown key; did you mean rate_hz\? \(allowed: "
    ):
        run_sweep(tiny(), {"profiler.rte_hz": [1, 2]}, progress=False)
    with pytest.raises(ScenarioError, match=r"^--vary workload\.threads\.3\.count=2: .*range"):
        run_sweep(tiny(), {"workload.threads.3.count": [2]}, progress=False)
    with pytest.raises(ScenarioError, match="no values"):
        run_sweep(tiny(), {RATE: []}, progress=False)
    with pytest.raises(ScenarioError, match="--jobs must be at least 1"):
        run_sweep(tiny(), {RATE: [100]}, jobs=0, progress=False)
    assert ran == []


def test_a_machine_profile_name_is_a_value_like_any_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--vary machine=NAME,...` reads each machine profile (a YAML file) per point."""
    (tmp_path / "three.yaml").write_text("machine:\n  cpus: 3\n  kernel_hz: 100\n")
    (tmp_path / "one.yaml").write_text("cpus: 1\n")
    monkeypatch.setenv("SIGPROF_LAB_MACHINES", str(tmp_path))
    result = run_sweep(tiny(threads=3), {"machine": ["three", "one"]}, progress=False)
    assert [row["machine"] for row in result.rows] == ["three", "one"]
    # Three busy threads: three CPUs give each its own CPU, one CPU a third of one.
    cpu = [row["cpu_seconds"] for row in result.rows]
    assert cpu[0] == pytest.approx(1.5, rel=0.02)
    assert cpu[1] == pytest.approx(0.5, rel=0.02)


def test_capture_falls_with_rate_above_hz() -> None:
    # One busy thread, process timer only, HZ=250: the timer is checked once a tick, so
    # the profile gets at most 250 samples per CPU-second whatever the rate asked.
    # Below the ideal min(1, HZ/rate) only by the ends of the 0.5 s run: the first expiry
    # is a tick late (set_cpu_itimer), the last interval is partial, and the signals
    # before Go's lazy switch are discarded (sysmon's 10 ms preemption, seen at a tick):
    # together at most (interval + tick + 10 ms + tick) of the run's CPU time. The model
    # is deterministic here: no noise.
    rates = [100, 250, 500, 1000]
    result = run_sweep(tiny(), {RATE: rates}, progress=False)
    captures = [row["capture_ratio"] for row in result.rows]
    tick_s, duration_s, switch_s = 1 / 250, 0.5, 0.010
    ideals = [min(1.0, 250 / rate) for rate in rates]
    lows = [
        ideal * (1 - (1 / min(rate, 250) + 2 * tick_s + switch_s) / duration_s)
        for ideal, rate in zip(ideals, rates, strict=True)
    ]
    assert all(low <= c <= ideal for low, c, ideal in zip(lows, captures, ideals, strict=True)), (
        captures
    )
    assert all(row["signals_dropped_pending"] == 0 for row in result.rows)


def test_parallel_runs_equal_inline_runs() -> None:
    vary = {RATE: [100, 250, 1000], RUNTIME: ["go1.17", "go1.18"]}
    scenario = tiny(threads=3)
    inline = run_sweep(scenario, vary, jobs=1, progress=False)
    parallel = run_sweep(scenario, vary, jobs=2, progress=False)
    assert parallel.rows == inline.rows
    assert parallel.to_json() == inline.to_json()


def test_dask_cluster_equals_inline_runs() -> None:
    distributed = pytest.importorskip("distributed")
    vary = {RATE: [100, 500], RUNTIME: ["go1.17", "go1.18"]}
    scenario = tiny(threads=3)
    inline = run_sweep(scenario, vary, progress=False)
    started = time.perf_counter()
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        remote = run_sweep(scenario, vary, cluster=cluster.scheduler_address, progress=False)
    assert remote.rows == inline.rows
    # Not marked slow: a two-worker local cluster starts in a few seconds.
    assert time.perf_counter() - started < 60


def test_cluster_without_dask_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ScenarioError) as info:
        run_sweep(tiny(), {RATE: [100]}, cluster="tcp://127.0.0.1:8786", progress=False)
    assert str(info.value) == (
        "--cluster needs dask.distributed: pip install 'sigprof-lab[cluster]'"
    )


def test_bad_cluster_address_is_one_line() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(ScenarioError, match=r"^--cluster nonsense: cannot reach a Dask"):
        run_sweep(tiny(), {RATE: [100]}, cluster="nonsense", progress=False)


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    run_sweep(tiny(), {RATE: [100, 250]}, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "sweep tiny" in err and "2/2" in err


# --------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_axes() -> SweepResult:
    return run_sweep(
        tiny(threads=3), {RATE: [100, 500], RUNTIME: ["go1.17", "go1.18"]}, progress=False
    )


def test_table_is_labelled_in_words_with_units(two_axes: SweepResult) -> None:
    table = two_axes.to_table()
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["profiler", "profiler"]
    assert "rate_hz (Hz)" in lines[1] and "runtime" in lines[1]
    for words in ("capture", "ratio", "CPU %", "error (pp)", "expected", "in profile"):
        assert words in table
    # Three threads on two CPUs with the process timer: same-round expiries are dropped.
    assert "dropped:" in lines[0]
    assert set(lines[2]) == {"-", " "}
    assert len(lines) == 3 + 4 + 1
    assert lines[-1].startswith("(zero at every point, not shown:")
    widths = {len(line) for line in lines[:7]}
    assert max(widths) - min(widths) <= 12  # aligned (rstrip trims the last column only)


def test_write_outputs_are_deterministic(two_axes: SweepResult, tmp_path: Path) -> None:
    first = two_axes.write(tmp_path / "a")
    second = two_axes.write(tmp_path / "b")
    assert [p.name for p in first] == ["sweep.json", "sweep.csv", "sweep.png"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
        assert a.stat().st_size > 0

    document = json.loads(first[0].read_text(encoding="utf-8"))
    assert document["axes"] == [RATE, RUNTIME]
    assert document["values"] == {RATE: [100, 500], RUNTIME: ["go1.17", "go1.18"]}
    assert document["seed"] == 1 and document["scenario"] == "tiny"
    assert len(document["rows"]) == 4
    assert document["rows"][0]["samples_in_profile"] == two_axes.rows[0]["samples_in_profile"]
    # The base scenario is in the file, so the sweep can be rerun from it alone.
    rerun = run_sweep(
        validate_scenario(document["base_scenario"]), document["values"], progress=False
    )
    assert rerun.rows == two_axes.rows

    with first[1].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [RATE, RUNTIME, *ROW_FIELDS]
    assert [r[RUNTIME] for r in rows] == ["go1.17", "go1.18", "go1.17", "go1.18"]
    assert first[2].read_bytes().startswith(b"\x89PNG")


def test_write_with_three_axes_and_list_values(tmp_path: Path) -> None:
    vary = parse_vary(
        ["profiler.rate_hz=100,250", "machine.cpu_check_bias=[1,1],[4,1]", "seed=1,2"]
    )
    result = run_sweep(tiny(threads=2), vary, progress=False)
    assert len(result.rows) == 8
    paths = result.write(tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)
    text = (tmp_path / "sweep.csv").read_text(encoding="utf-8")
    assert '"[4, 1]"' in text
    assert "[4, 1]" in result.to_table()


def test_command_line_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.__main__ import main

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw_scenario()), encoding="utf-8")
    out = tmp_path / "out"
    code = main(
        [
            "sweep",
            str(path),
            "--vary",
            "profiler.rate_hz=100,1000",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "capture" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv", "sweep.json", "sweep.png"]

    code = main(["sweep", str(path), "--vary", "profiler.rate_hz=100,,1", "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: --vary profiler.rate_hz: empty value")


def test_command_line_sweep_plots_profile_cpu_percent_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from sim.__main__ import main

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw_scenario()), encoding="utf-8")
    described = {}
    for flags in ([], ["--cpu-percent"]):
        out = tmp_path / ("cpu" if flags else "plain")
        argv = ["sweep", str(path), "--vary", "profiler.rate_hz=100,1000", "--no-progress"]
        assert main([*argv, "--out", str(out), *flags]) == 0, capsys.readouterr().err
        with Image.open(out / "sweep.png") as png:
            described[bool(flags)] = png.text["Description"]
    assert "CPU shown by the profile (%)" not in described[False]
    assert "capture ratio" in described[True]
    assert "CPU shown by the profile (%)" in described[True]
