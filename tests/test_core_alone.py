"""The model core runs on SimPy and the standard library alone.

A virtual environment with only `simpy` installed (built once, cached under
~/.cache/sigprof-lab/) runs, with the repository on PYTHONPATH, the quickstart scenario
given as plain data (a dict, as a browser playground would pass it): validated by
`contract.scenario.validate_scenario`, simulated by `sim.model.simulate`, printed by
`contract.report.render_text`. The printout is the full installation's, byte for byte,
and none of pydantic, matplotlib, protobuf, PyYAML or tqdm was imported (they are not
there to import).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
CACHE = Path.home() / ".cache" / "sigprof-lab"
EDGES = ("pydantic", "matplotlib", "google.protobuf", "yaml", "tqdm")

SCRIPT = """
import json, sys
from contract.report import render_text
from contract.scenario import validate_scenario
from sim.model import simulate

data = json.load(sys.stdin)
assert type(data) is dict
print(render_text(simulate(validate_scenario(data, "quickstart")).report), end="")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {edges!r} or m in {edges!r})
assert not loaded, f"the core imported {{loaded}}"
""".format(edges=set(EDGES))


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def core_python() -> Path:
    """The interpreter of a venv holding simpy and nothing else of ours."""
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    home = CACHE / f"core-venv-{tag}"
    python = home / "bin" / "python"
    done = home / ".simpy-installed"
    if not done.is_file():
        shutil.rmtree(home, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "simpy>=4.1"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            message = f"could not install simpy into {home}: {result.stderr[-2000:]}"
            if _in_ci():
                pytest.fail(message)
            pytest.skip(message)
        done.write_text("simpy\n", encoding="utf-8")
    return python


def test_the_venv_holds_only_simpy(core_python: Path) -> None:
    listed = subprocess.run(
        [str(core_python), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}

    assert "simpy" in names
    assert names - {"simpy", "pip", "setuptools", "wheel"} == set()


def test_quickstart_from_plain_data_with_only_simpy(core_python: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [str(core_python), "-c", SCRIPT],
        input=json.dumps(data),
        cwd=tmp_path,  # not the repository, so only PYTHONPATH finds it
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert "Funnel (where the samples went)" in result.stdout
    assert "capture ratio" in result.stdout

    from contract.report import render_text
    from contract.scenario_file import load_scenario
    from sim.model import simulate

    assert result.stdout == render_text(simulate(load_scenario(QUICKSTART)).report)
