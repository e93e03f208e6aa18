"""The shared contract on the standard library alone: same messages, same runtime table.

`tests/data/scenario_messages.json` holds, for 1311 edits of a full scenario (every field
set to each of 21 values, deleted, or given an unknown key; every runtime with every
timer), the one-line error or a hash of the validated scenario, as the contract gave them
at commit efb350b, when it validated with pydantic. The pure-Python validation must give
the same line for each: the browser build (Pyodide, no compiled packages) prints the
command line's messages. A new field changes two things only, and the file is written
again for them: the hash of every valid scenario (the field's default is in it) and the
lists of allowed keys or step kinds (as for `gomaxprocs`, `syscall_ms` and
`suspend_timer_resolution_ms`, issue 13, and `profiler.free_threaded`, issue 15). Issue 14
changed two on purpose: a runtime may be a Go release (`go1.21` validates, and the list of
allowed runtimes names that form), and a misspelt key or choice gets a "did you mean" (no
edit here is close enough to get one).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.report import Report, ReportError, Share
from contract.runtimes import RUNTIMES, TIMERS, model_for_go_release
from contract.scenario import ScenarioError, json_schema, scenario_to_dict, validate_scenario
from contract.scenario_file import load_scenario
from sim.model import simulate

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = json.loads((ROOT / "tests" / "data" / "scenario_messages.json").read_text("utf-8"))


def _full_scenario() -> dict[str, Any]:
    """The quickstart with every optional field written out (the capture's base)."""
    base = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text("utf-8"))
    base["machine"] = {
        "cpus": 2,
        "kernel_hz": 250,
        "tick_skew": False,
        "same_round_survival": 0.1,
        "same_round_survival_after_switch": None,
        "cpu_check_bias": [1, 2],
        "base_slice_ms": None,
        "perf_delivery_us": 3.0,
    }
    base["profiler"] = {
        "runtime": "go1.18",
        "timer": "both",
        "rate_hz": 100,
        "buffer_words": 4096,
        "extra_words": 1000,
        "reader_period_ms": 100,
        "reader_cost_us_per_sample": 0.5,
        "handler_cost_us": None,
        "max_depth": 64,
        "gil_switch_interval_ms": 5.0,
    }
    base["workload"]["threads"] = [
        {
            "name": "a",
            "count": 2,
            "kind": "go",
            "program": [
                {"run": {"function": "f", "cpu_ms": 1, "depth": 3}},
                {"native": {"function": "g", "cpu_ms": 1, "depth": 2}},
                {"sleep_ms": 1},
            ],
        },
        {
            "name": "b",
            "count": 1,
            "kind": "external",
            "program": [{"native": {"function": "h", "cpu_ms": 2}}],
        },
    ]
    return base


VALUES = ["x", -1, 0, 0.5, 1, 2, 1e12, None, [], {}, True, float("nan"), "", [1], {"k": 1}, 250]
VALUES += ["go1.17", "process", "per-thread", "perf", "suspend"]


def _paths(node: Any, prefix: tuple = ()):
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _cases() -> list[tuple[str, Any]]:
    """The edits, named as the capture named them (the fixture's keys)."""
    base = _full_scenario()
    cases = []
    for path in list(_paths(base)):
        for value in VALUES:
            raw = copy.deepcopy(base)
            node = raw
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            cases.append((f"set {path}={value!r}", raw))
        raw = copy.deepcopy(base)
        node = raw
        for key in path[:-1]:
            node = node[key]
        if isinstance(node, dict):
            del node[path[-1]]
            cases.append((f"del {path}", raw))
        raw = copy.deepcopy(base)
        node = raw
        for key in path:
            node = node[key]
        if isinstance(node, dict):
            node["bogus_key"] = 1
            cases.append((f"extra {path}", raw))
    for top in [None, [], "x", 3, {}, {"workload": None}, {"bogus": 1}]:
        cases.append((f"top {top!r}", top))
    runtimes = ["go1.17", "go1.18", "go1.26", "go-windows", "cpython", "realprof", "go1.21", "x"]
    timers = ["process", "per-thread", "both", "suspend", "perf", None, "y"]
    for runtime, timer in itertools.product(runtimes, timers):
        raw = copy.deepcopy(base)
        raw["profiler"]["runtime"] = runtime
        raw["profiler"]["timer"] = timer
        cases.append((f"rt {runtime} {timer}", raw))
        raw = copy.deepcopy(raw)
        raw["workload"]["threads"][1]["kind"] = "go"
        cases.append((f"rt {runtime} {timer} nogo", raw))
    return cases


def _outcome(raw: Any) -> str:
    try:
        scenario = validate_scenario(raw, "<t>")
    except ScenarioError as exc:
        return str(exc)
    digest = hashlib.sha256(json.dumps(scenario_to_dict(scenario), sort_keys=True).encode())
    return "OK " + digest.hexdigest()[:16]


def test_every_case_gives_the_message_it_gave_with_pydantic(monkeypatch, tmp_path) -> None:
    # Profile names are listed from these places; pin them to the repository's machines/.
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("SIGPROF_LAB_MACHINES", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cases = _cases()
    assert len(cases) == len(EXPECTED) == 1311
    wrong = [
        (name, EXPECTED[name], got)
        for name, raw in cases
        if (got := _outcome(raw)) != EXPECTED[name]
    ]
    assert not wrong, f"{len(wrong)} differ, first: {wrong[:3]}"


def test_the_contract_validates_without_yaml_or_pydantic(tmp_path: Path) -> None:
    """The browser has neither: the pure modules import and say what the CLI says."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "workload: {duration_s: 1, threads: "
        "[{name: a, program: [{run: {function: f, cpu_ms: x}}]}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as from_file:
        load_scenario(bad)
    script = textwrap.dedent(
        f"""
        import sys

        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("yaml", "pydantic", "pydantic_core"):
                    raise ImportError("blocked: " + name)

        sys.meta_path.insert(0, Blocked())
        from contract.scenario import ScenarioError, validate_scenario
        from contract.report import Report
        raw = {{"workload": {{"duration_s": 1, "threads": [
            {{"name": "a", "program": [{{"run": {{"function": "f", "cpu_ms": "x"}}}}]}}]}}}}
        try:
            validate_scenario(raw, {str(bad)!r})
        except ScenarioError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # The file's message adds the line of the field (read from the YAML), nothing else.
    assert str(from_file.value) == result.stdout.strip().replace(f"{bad}:", f"{bad}:1:", 1)
    assert "cpu_ms: Input should be a valid number" in result.stdout


# -- the runtime table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "runtime"),
    [
        ("go1.4", "go1.17"),
        ("go1.17.13", "go1.17"),
        ("go1.18", "go1.18"),
        ("go1.25.9", "go1.18"),
        ("go1.26.0", "go1.26"),
        ("go2.0", "go1.26"),
        ("devel go1.27-abc", "go1.26"),
    ],
)
def test_a_go_release_maps_to_the_line_that_models_it(version: str, runtime: str) -> None:
    name, note = model_for_go_release(version)
    assert name == runtime
    assert RUNTIMES[name].go_note in note


def test_a_devel_build_is_said_to_be_taken_as_current() -> None:
    _name, note = model_for_go_release("devel go1.27-abc")
    assert "not a Go release number" in note


def test_the_schema_lists_the_tables_runtimes_and_timers() -> None:
    profiler = json_schema()["$defs"]["Profiler"]["properties"]
    assert profiler["runtime"]["anyOf"][0]["enum"] == list(RUNTIMES)
    assert profiler["timer"]["anyOf"][0]["enum"] == list(TIMERS)


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_each_runtime_takes_exactly_its_timers(runtime: str) -> None:
    threads = [{"name": "a", "program": [{"sleep_ms": 1}]}]
    for timer in TIMERS:
        raw = {
            "profiler": {"runtime": runtime, "timer": timer},
            "workload": {"duration_s": 1, "threads": threads},
        }
        if timer in RUNTIMES[runtime].timers:
            assert validate_scenario(raw).profiler.effective_timer == timer
        else:
            with pytest.raises(ScenarioError, match=f"cannot use timer '{timer}'"):
                validate_scenario(raw)
    default = validate_scenario(
        {"profiler": {"runtime": runtime}, "workload": {"duration_s": 1, "threads": threads}}
    )
    assert default.profiler.effective_timer == RUNTIMES[runtime].timers[0]
    assert default.profiler.effective_handler_cost_us == RUNTIMES[runtime].handler_cost_us


# -- the report ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report() -> Report:
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml", ["workload.duration_s=0.2"])
    return simulate(scenario).report


def test_a_written_report_loads_back_to_the_same_bytes(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    report.write_json(path)
    assert Report.load(path).to_json() == path.read_text("utf-8")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"bogus": 1}, "bogus: unknown key (allowed: world, scenario,"),
        ({"samples_in_profile": "many"}, "samples_in_profile: Input should be a valid integer"),
        ({"world": "moon"}, "world: Input should be 'sim', 'real' or 'go' (got 'moon')"),
        ({"functions": [{"name": "f"}]}, "functions.0.samples: required field is missing"),
    ],
)
def test_a_bad_report_is_one_line_naming_file_and_field(
    report: Report, tmp_path: Path, edit: dict[str, Any], expected: str
) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({**report.to_dict(), **edit}), encoding="utf-8")
    with pytest.raises(ReportError) as error:
        Report.load(path)
    assert str(error.value) == f"{path}: {expected}" or str(error.value).startswith(
        f"{path}: {expected}"
    )
    assert "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_numbers_are_stored_as_their_field_says() -> None:
    # A count given as 3.0 is an int and a share given as 1 a float: the JSON bytes do
    # not depend on how a world spelled its numbers.
    row = Share(name="f", samples=3.0, share=1)
    assert (type(row.samples), type(row.share)) == (int, float)
    with pytest.raises(ReportError, match="samples: Input should be a valid integer, got a number"):
        Share(name="f", samples=2.5, share=1.0)


def test_conservation_names_each_identity_that_fails(report: Report) -> None:
    assert report.conservation_errors() == []
    broken = dataclasses.replace(
        report,
        signals_generated=report.signals_generated + 3,
        samples_recorded=report.samples_recorded - 1,
    )
    assert broken.conservation_errors() == [
        f"generated {report.signals_generated + 3} != delivered + dropped + pending at stop "
        f"{report.signals_generated}",
        f"delivered {report.signals_delivered} != recorded + lost + discarded + merged "
        f"{report.signals_delivered - 1}",
    ]
    # A world that cannot observe a count checks only the identity it can.
    unobserved = dataclasses.replace(broken, signals_generated=None)
    assert unobserved.conservation_errors() == broken.conservation_errors()[1:]


def test_a_reports_floats_may_be_nan_or_infinite_and_are_written_as_null(
    report: Report, tmp_path: Path
) -> None:
    odd = dataclasses.replace(report, attribution_error_pp=math.nan, wall_seconds=math.inf)
    assert math.isnan(odd.attribution_error_pp) and odd.wall_seconds == math.inf
    written = json.loads(odd.to_json())
    assert (written["attribution_error_pp"], written["wall_seconds"]) == (None, None)
    # A report.json written by another tool with NaN tokens loads as it did with pydantic.
    data = {**report.to_dict(), "attribution_error_pp": math.nan, "capture_ratio": math.inf}
    (tmp_path / "nan.json").write_text(json.dumps(data), encoding="utf-8")
    loaded = Report.load(tmp_path / "nan.json")
    assert math.isnan(loaded.attribution_error_pp) and loaded.capture_ratio == math.inf
