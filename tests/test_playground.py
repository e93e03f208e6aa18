"""The playground's Python side, without a browser: the sliced run, the driver, the pack,
the URL form and the walkthrough's "try it" links.

* `Simulation.run_in_slices` gives the report `run` gives, for every shipped scenario;
* `sim.playground.run_scenario` answers with the very text `python -m sim FILE --json`
  prints, and with the command's one error line for bad input; it stops when asked;
* the zip packed for the site holds the simulator, the shipped scenarios and the
  installed SimPy and PyYAML (their METADATA too), no compiled file, byte-stable;
* every "try it" link the docs build adds decodes to a scenario the simulator accepts,
  the one of its figure's run (shipped file, `--set` overrides), and measured figures
  get none. The browser side is `tests/test_browser.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.scenario_file import load_scenario, shipped_scenarios
from docsgen.figure_list import FIGURES
from docsgen.playground import (
    SIMULATOR_KINDS,
    add_try_it_links,
    decode_scenario,
    encode_scenario,
    write_zip,
)
from sim.model import Simulation
from sim.playground import run_scenario

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TRY_IT = re.compile(r'class="try-it" href="([^"]*)"')


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _drive(text: str, cwd: Path, stop_after: int | None = None) -> dict:
    """run_scenario as the worker calls it, in `cwd`; asks to stop after `stop_after`
    progress reports."""
    reports: list[float] = []
    here = Path.cwd()
    os.chdir(cwd)
    try:
        answer = asyncio.run(
            run_scenario(
                text,
                "scenario.yaml",
                (0.0, 40.0),
                reports.append,
                lambda: stop_after is not None and len(reports) >= stop_after,
            )
        )
    finally:
        os.chdir(here)
    return {**json.loads(answer), "progress": reports}


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_a_run_in_slices_gives_the_report_of_one_run(name: str) -> None:
    scenario = load_scenario(name)
    whole = Simulation(scenario).run()
    sliced = Simulation(scenario)
    shares = list(sliced.run_in_slices(200))
    result = sliced.result()

    assert result.report.to_json() == whole.report.to_json()
    assert result.stats["sim_events"] == whole.stats["sim_events"]
    assert shares == sorted(shares) and shares[-1] == 1.0 and len(shares) == 200


def test_the_driver_prints_what_the_command_prints(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "tick-granularity.yaml").read_text(encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(text, encoding="utf-8")
    cli = _cli(["scenario.yaml", "--json"], tmp_path)
    answer = _drive(text, tmp_path)

    assert answer["report"] == cli.stdout
    assert answer["trace"]["cpus"] == 2 and answer["trace"]["segments"]
    assert answer["mapping"]["name"] == "tick-granularity"
    assert answer["funnel"][0][0] == "expected_samples"


@pytest.mark.parametrize(
    "change",
    [("  rate_hz: 100", "  rate_hx: 100"), ("kernel_hz: 250", "kernel_hz: 251"), ("seed: 1", "[")],
)
def test_the_driver_shows_the_command_line_error_line(
    tmp_path: Path, change: tuple[str, str]
) -> None:
    text = (ROOT / "scenarios" / "quickstart.yaml").read_text(encoding="utf-8").replace(*change)
    (tmp_path / "scenario.yaml").write_text(text, encoding="utf-8")
    cli = _cli(["scenario.yaml", "--json"], tmp_path)
    answer = _drive(text, tmp_path)

    assert cli.returncode == 2
    assert answer["error"] == cli.stderr.strip()
    assert "report" not in answer


def test_the_driver_stops_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.playground

    monkeypatch.setattr(sim.playground, "YIELD_EVERY_S", 0.0)  # report after every slice
    text = (ROOT / "scenarios" / "quickstart.yaml").read_text(encoding="utf-8")
    answer = _drive(text, tmp_path, stop_after=3)

    assert answer["progress"] == [0.005, 0.01, 0.015]
    assert answer["cancelled"] == 0.015


def test_the_packed_zip_holds_the_simulator_and_the_installed_packages(tmp_path: Path) -> None:
    import importlib.metadata

    versions = write_zip(tmp_path / "a.zip")
    write_zip(tmp_path / "b.zip")
    names = set(zipfile.ZipFile(tmp_path / "a.zip").namelist())
    simpy = importlib.metadata.version("simpy")

    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert versions == {"simpy": simpy, "pyyaml": importlib.metadata.version("PyYAML")}
    assert {
        "sim/model.py",
        "sim/playground.py",
        "contract/scenario_file.py",
        "contract/scenarios/quickstart.yaml",
        "machines/this-machine.yaml",
        "simpy/core.py",
        "yaml/reader.py",
        f"simpy-{simpy}.dist-info/METADATA",
    } <= names
    assert not [n for n in names if n.endswith((".so", ".pyc", ".pyd"))]


@given(st.text(max_size=300))
def test_a_scenario_text_survives_the_url(text: str) -> None:
    assert decode_scenario(encode_scenario(text)) == (text, None)
    assert decode_scenario(encode_scenario(text, (100.0, 140.5))) == (text, (100.0, 140.5))


def _links_of_the_docs() -> dict[str, list[str]]:
    links = {}
    for page in sorted(DOCS.rglob("*.md")):
        url = page.relative_to(DOCS).with_suffix("").as_posix() + "/"
        found = TRY_IT.findall(add_try_it_links(page.read_text(encoding="utf-8"), url))
        if found:
            links[page.relative_to(DOCS).as_posix()] = found
    return links


def test_every_try_it_link_opens_its_figures_run(tmp_path: Path) -> None:
    specs = [spec for spec in FIGURES if spec.kind in SIMULATOR_KINDS]
    links = _links_of_the_docs()
    opened = []
    for page, hrefs in links.items():
        depth = page.count("/") + 1
        for href in hrefs:
            assert href.startswith("../" * depth + "playground/#yaml="), (page, href)
            text, window = decode_scenario(href.partition("#")[2])
            path = tmp_path / "scenario.yaml"
            path.write_text(text, encoding="utf-8")
            scenario = load_scenario(path)  # accepted, or ScenarioError fails the test
            opened.append((scenario, window))
    expected = [(load_scenario(spec.scenario, spec.overrides), spec.window_ms) for spec in specs]

    assert len(opened) == sum(map(len, links.values())) >= 19
    # each link is the run of a figure of the list, a timeline's with its window
    for scenario, window in opened:
        assert any(scenario == want and (window is None or window == w) for want, w in expected)
    assert not any(
        p.startswith(("walkthrough/06a", "walkthrough/08a", "walkthrough/11")) for p in links
    )
