"""A scenario in the user's terms (issue 14, item 1): a Go release for a runtime, a shipped
scenario by its name, and a misspelling answered with its line and the likely word.

* `profiler.runtime: go1.21` (any release from go1.5, patch forms too) validates, keeps
  what was written, runs its line's model, and the report (text and JSON) names the
  release, the model and what that model does; older releases and junk are refused with
  the allowed forms; the published JSON Schema agrees.
* The runtime table page (`docs/reference/runtimes.md`) is generated from the same table,
  and the schema's description of `runtime` points to it.
* `python -m sim NAME` finds a shipped scenario (`.yaml` optional); an unknown name lists
  the shipped ones. The scenarios are inside the wheel, as package data.
* A misspelt key or choice gets "did you mean", and the message names the YAML line of
  the key, in every command that reads scenarios (`python -m sim`, `python -m realprof
  scenario`), one line, exit status 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from contract.fields import specs
from contract.runtimes import NEWEST_KNOWN_GO_RELEASE, RUNTIMES
from contract.scenario import Machine, ScenarioError, json_schema, validate_scenario
from docsgen.common import GO_RELEASES_DATA
from docsgen.reference_pages import runtime_reference
from lab.grid_results import read_grid
from realprof.__main__ import main as realprof_main
from sim.__main__ import EXIT_BAD_INPUT, main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))

# A small scenario; the line numbers of its keys are what the messages must name.
SCENARIO = """\
name: terms
machine:
  cpus: 2
  kernel_hz: 250
profiler:
  runtime: go1.18
  timer: both
workload:
  duration_s: 0.05
  threads:
    - name: worker
      program:
        - run: {function: main.work, cpu_ms: 1, depth: 3}
"""
RUNTIME_LINE, TIMER_LINE, KERNEL_HZ_LINE = 6, 7, 4


def _raw(runtime: str) -> dict:
    raw = yaml.safe_load(SCENARIO)
    raw["profiler"] = {"runtime": runtime}
    return raw


def _write(tmp_path: Path, text: str = SCENARIO) -> Path:
    path = tmp_path / "terms.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(argv: list[str], capsys, entry=main) -> tuple[int, str, str]:
    code = entry(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- a Go release for a runtime -----------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "model"),
    [
        ("go1.5", "go1.17"),
        ("go1.17.13", "go1.17"),
        ("go1.18.0", "go1.18"),
        ("go1.21", "go1.18"),
        ("go1.21.5", "go1.18"),
        ("go1.25", "go1.18"),
        ("go1.26.1", "go1.26"),
        ("go1.40", "go1.26"),
    ],
)
def test_a_go_release_keeps_its_name_and_runs_its_lines_model(asked: str, model: str) -> None:
    profiler = validate_scenario(_raw(asked)).profiler

    assert (profiler.runtime, profiler.model) == (asked, model)


def test_a_models_own_name_needs_no_note() -> None:
    profiler = validate_scenario(_raw("go1.18")).profiler

    assert (profiler.model, profiler.runtime_note) == ("go1.18", None)


def test_a_release_newer_than_the_table_says_it_is_taken_as_the_newest_line() -> None:
    major, minor = NEWEST_KNOWN_GO_RELEASE
    newer = f"go{major}.{minor + 1}"
    profiler = validate_scenario(_raw(newer)).profiler

    assert profiler.runtime_note == (
        f"{newer} is newer than Go {major}.{minor}, the newest release this table knows, "
        f"so it runs the newest line's model, go1.26: {RUNTIMES['go1.26'].go_note}"
    )


@pytest.mark.parametrize("asked", ["go1.4", "go1.x", "go1.21rc1", "go1.021", "go2.0", "1.21"])
def test_other_runtimes_are_refused_naming_the_allowed_forms(asked: str) -> None:
    models = ", ".join(repr(name) for name in RUNTIMES)
    with pytest.raises(ScenarioError) as info:
        validate_scenario(_raw(asked), "<t>")

    assert str(info.value) == (
        f"<t>: profiler.runtime: Input should be {models}, or a Go release from go1.5 on "
        f"(go1.21, go1.21.5) (got {asked!r})"
    )


def test_the_report_names_the_release_the_model_and_what_it_does(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, SCENARIO.replace("runtime: go1.18", "runtime: go1.21"))
    note = f"go1.21 runs the go1.18 model: {RUNTIMES['go1.18'].go_note}"

    code, text, _ = _run([str(path)], capsys)
    json_code, json_text, _ = _run([str(path), "--json"], capsys)
    report = json.loads(json_text)

    assert (code, json_code) == (0, 0)
    assert [line for line in text.splitlines() if "go1.21" in line] == [f"note: {note}"]
    assert (report["runtime"], report["notes"][0]) == ("go1.18", note)


def test_the_published_schema_takes_a_release_and_refuses_what_validation_refuses() -> None:
    schema = json.loads((ROOT / "docs" / "reference" / "scenario.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    verdicts = {
        runtime: validator.is_valid(_raw(runtime))
        for runtime in ("go1.21", "go1.21.5", "go1.5", "realprof", "go1.4", "go1.x", "go1.021")
    }

    assert verdicts == {
        "go1.21": True,
        "go1.21.5": True,
        "go1.5": True,
        "realprof": True,
        "go1.4": False,
        "go1.x": False,
        "go1.021": False,
    }


def test_the_runtime_page_is_generated_from_the_table_the_schema_points_to() -> None:
    """The page cannot drift from `contract.runtimes`: it is that table, written out."""
    page = ROOT / "docs" / "reference" / "runtimes.md"
    description = json_schema()["$defs"]["Profiler"]["properties"]["runtime"]["description"]

    # Its measured column: the Go release grid (docs/data/go-releases/grid.json).
    grid = read_grid(GO_RELEASES_DATA.read_text(encoding="utf-8"))
    assert page.read_text(encoding="utf-8") == runtime_reference(grid)
    assert "docs/reference/runtimes.md" in description
    assert "reference/runtimes.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


# -- shipped scenarios by name ------------------------------------------------------------


@pytest.mark.parametrize("name", ["go117-many-threads", "go117-many-threads.yaml"])
def test_a_shipped_scenario_runs_by_its_name(name: str, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no scenarios/ here: the name alone must find it
    short = ["--set", "workload.duration_s=0.05"]

    by_name = _run([name, *short], capsys)
    by_path = _run([str(ROOT / "scenarios" / "go117-many-threads.yaml"), *short], capsys)

    assert by_name == by_path
    assert by_name[1].startswith("go117-many-threads — sim world, go1.17")


def test_an_unknown_name_lists_the_shipped_scenarios(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)

    assert _run(["go117-many-thread"], capsys) == (
        EXIT_BAD_INPUT,
        "",
        "error: go117-many-thread: no such file, and no shipped scenario of that name; "
        f"did you mean go117-many-threads? (shipped: {', '.join(SHIPPED)})\n",
    )


def test_the_wheel_carries_every_shipped_scenario(tmp_path: Path) -> None:
    """A non-editable install finds scenarios by name only if the wheel holds them.

    Built from a copy of the source: setuptools builds in the tree and packs what its
    `build/` directory holds, so an earlier build there could pass this test."""
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(
        ".*", "build", "*.egg-info", "__pycache__", "*.so", "docs", "tests", "benchmarks"
    )
    shutil.copytree(ROOT, source, ignore=skip)
    out = tmp_path / "wheel"
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), source],
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("pip wheel took over 240 s")
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"pip could not build the wheel here (offline?): {exc.stderr[-300:]}")
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = sorted(
            Path(name).stem
            for name in archive.namelist()
            if name.startswith("contract/scenarios/") and name.endswith(".yaml")
        )

    assert packaged == SHIPPED


# -- did you mean, and the line -----------------------------------------------------------


def test_a_misspelt_key_gets_its_line_and_the_likely_key(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, SCENARIO.replace("kernel_hz", "kernal_hz"))
    allowed = ", ".join(specs(Machine))

    assert _run([str(path)], capsys) == (
        EXIT_BAD_INPUT,
        "",
        f"error: {path}:{KERNEL_HZ_LINE}: machine.kernal_hz: unknown key; did you mean "
        f"kernel_hz? (allowed: {allowed})\n",
    )


def test_a_misspelt_value_gets_its_line_and_the_likely_value(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, SCENARIO.replace("timer: both", "timer: proces"))

    assert _run([str(path)], capsys) == (
        EXIT_BAD_INPUT,
        "",
        f"error: {path}:{TIMER_LINE}: profiler.timer: Input should be 'process', 'per-thread', "
        "'both', 'suspend' or 'perf' (got 'proces'); did you mean process?\n",
    )


def test_a_name_without_its_unit_is_taken_as_a_misspelling(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, SCENARIO.replace("duration_s:", "duration:"))

    code, _, err = _run([str(path)], capsys)

    assert (code, err.split(" (allowed")[0]) == (
        EXIT_BAD_INPUT,
        f"error: {path}:9: workload.duration: unknown key; did you mean duration_s?",
    )


def test_a_value_set_on_the_command_line_has_no_line(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path)

    code, _, err = _run([str(path), "--set", "profiler.runtime=go1.4"], capsys)

    assert (code, err.split(": Input")[0]) == (EXIT_BAD_INPUT, f"error: {path}: profiler.runtime")


def test_realprof_reads_scenarios_with_the_same_message(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, SCENARIO.replace("runtime: go1.18", "runtime: go1.4"))

    _, _, sim_err = _run([str(path)], capsys)
    code, out, err = _run(["scenario", str(path)], capsys, entry=realprof_main)

    assert sim_err.startswith(f"error: {path}:{RUNTIME_LINE}: profiler.runtime: ")
    assert (code, out, err) == (
        EXIT_BAD_INPUT,
        "",
        "python -m realprof scenario: " + sim_err,
    )
