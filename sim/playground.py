"""The playground's driver: `python -m sim FILE --json`, run by Pyodide in the reader's browser.

The docs site's playground page (`docs/playground.md`) runs this module in a Web Worker
(`docs/playground/worker.js`), on the files `docsgen.playground` packs into the site.
`run_scenario` takes the scenario text the page shows, writes it to a file of the name
the reader gave it (`scenario.yaml` for typed or pasted text) in the worker's working
directory, and does what `python -m sim FILE --json` does with that file: `load_scenario`
reads and validates it, the simulation runs, and the report is `Report.to_json()`, the
very text the command prints. Bad input gives the command's one line (`error_line` of
the same `ScenarioError`), so the page and the terminal show the same message.

Two things the command line does not need: the run goes in `SLICES` spans of virtual
time (`Simulation.run_in_slices`, which gives the same report), and between spans, at
most every `YIELD_EVERY_S` of wall time, the driver reports progress and awaits
`asyncio.sleep(0)`, which in Pyodide returns to the browser's event loop: the worker then
reads the page's messages (Cancel, a newer scenario) and `should_stop()` says whether to
give up. The trace of the window the page draws is returned beside the report.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from contract.cli import error_line
from contract.report import funnel_rows
from contract.scenario import ScenarioError
from contract.scenario_file import load_scenario, shipped_scenarios
from sim.model import Simulation

SLICES = 200
YIELD_EVERY_S = 0.05


def shipped_scenario_texts() -> str:
    """JSON: each shipped scenario's name -> its file's text, sorted by name."""
    return json.dumps({name: path.read_text("utf-8") for name, path in shipped_scenarios().items()})


def _mapping(text: str) -> Any:
    """The YAML document as plain data for the page's controls; None if it does not parse."""
    try:
        return json.loads(json.dumps(yaml.safe_load(text), default=str))
    except (yaml.YAMLError, ValueError):
        return None


def _file_name(name: str) -> str:
    """A plain file name in the working directory (a dropped file's name, no folders)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base if base and base not in (".", "..") else "scenario.yaml"


async def run_scenario(
    text: str,
    file_name: str,
    window_ms: tuple[float, float],
    progress: Callable[[float], None],
    should_stop: Callable[[], bool],
) -> str:
    """JSON: {"report": the --json text, "text": the text report, "funnel": its
    `funnel_rows`, "trace", "mapping"}, or {"error": the CLI's line, "mapping"}, or
    {"cancelled": share of the run done}."""
    mapping = _mapping(text)
    path = Path(_file_name(file_name))
    try:
        path.write_text(text, encoding="utf-8")
        scenario = load_scenario(str(path))
        start_ms, end_ms = window_ms
        simulation = Simulation(scenario, (float(start_ms), float(end_ms)))
        last_yield = time.perf_counter()
        for done in simulation.run_in_slices(SLICES):
            if time.perf_counter() - last_yield >= YIELD_EVERY_S:
                progress(done)
                await asyncio.sleep(0)
                if should_stop():
                    return json.dumps({"cancelled": done})
                last_yield = time.perf_counter()
        result = simulation.result()
    except ScenarioError as exc:
        return json.dumps({"error": error_line(str(exc)), "mapping": mapping})
    report = result.report
    return json.dumps(
        {
            "report": report.to_json(),
            "text": report.to_text(),
            "funnel": funnel_rows(report),
            "trace": result.trace.to_dict() if result.trace is not None else None,
            "mapping": mapping,
        }
    )
