"""Other interpreters for the real world: a scenario run on a free-threaded CPython.

The real world runs a scenario's workload in the process that reads it (`lab.workload`),
so the interpreter that runs `python -m realprof scenario` is the one measured. To measure
another one, a free-threaded `python3.14t` (PEP 703: no GIL), the command runs itself again
under that interpreter (`run_under`): same arguments, `--python` left out, and this
checkout first on `PYTHONPATH`, so the child runs this code, not whatever copy the other
interpreter has installed. The child needs the package's dependencies and the C sampler
built for its own ABI (each `.so` carries its ABI in its name, so builds for several
Pythons sit side by side in `realprof/`): a virtual environment of that interpreter with
this checkout installed (`pip install -e .`) has both.

Where the free-threaded interpreter is looked for (`lab_python`): the environment
variable `SIGPROF_LAB_PYTHON_314T` (CI sets it where 3.14t could be built), else the
virtual environment `~/.cache/sigprof-lab/venvs/3.14t`, made from the interpreter that
`.ci/cpython-builds` builds into `~/.cache/sigprof-lab/cpython/3.14t` (`install_command`
prints the recipe).

Whether the GIL is on is the interpreter's business at run time, not its build's: a `t`
build runs without it unless `PYTHON_GIL=1` (or `-X gil=1`) turns it on, or an extension
module that does not declare free-threading support is imported, which turns it on with
a warning. `gil_enabled()` reads `sys._is_gil_enabled()` (3.13+), which says which;
`free_threaded_build()` reads the build's `Py_GIL_DISABLED`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from contract.report import Report
from contract.scenario import Scenario, scenario_to_dict
from lab.machine import cache_dir

FREE_THREADED = "3.14t"
# This checkout's root: the directory that holds the lab, realprof and contract packages.
ROOT = Path(__file__).resolve().parent.parent
# A probe that fails unless the child can run the real world: the C sampler and YAML.
_PROBE = "import realprof._sampler, yaml, lab.workload"


class InterpreterError(Exception):
    """An interpreter that cannot run the real world; the message is one line."""


def free_threaded_build() -> bool:
    """Whether this interpreter was built with --disable-gil (a `t` build)."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool:
    """Whether the GIL is on now; always True before 3.13, which has no other mode."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def _env_name(version: str) -> str:
    return "SIGPROF_LAB_PYTHON_" + version.replace(".", "").upper()


def venv_dir(version: str) -> Path:
    return cache_dir("venvs") / version


def install_command(version: str = FREE_THREADED) -> str:
    """The commands that build the interpreter and the lab's venv for it, from the root."""
    base = cache_dir("cpython") / version / "bin" / f"python{version}"
    venv = venv_dir(version)
    return (
        f"bash .ci/cpython-builds {version} && {base} -m venv {venv} && "
        f"{venv}/bin/pip install -e '.[test]' (or set {_env_name(version)} to such a Python)"
    )


def build_failure(version: str = FREE_THREADED) -> str | None:
    """Why `.ci/cpython-builds` could not make `version` here (its `.failed` file), or None."""
    try:
        return (cache_dir("cpython") / version / ".failed").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def lab_python(version: str = FREE_THREADED) -> Path | None:
    """A Python of `version` that has the lab's dependencies, or None (see the header)."""
    named = os.environ.get(_env_name(version))
    candidate = Path(named) if named else venv_dir(version) / "bin" / "python"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child interpreter: this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def check_python(python: Path | str) -> None:
    """Raise InterpreterError unless `python` can run the real world from this checkout."""
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except OSError as exc:
        raise InterpreterError(f"--python {python}: cannot run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InterpreterError(
            f"--python {python}: cannot run the real world from {ROOT} ({last}); make a venv "
            f"of it and install this checkout there: PYTHON -m venv V && V/bin/pip install "
            f"-e '{ROOT}[test]', then pass --python V/bin/python"
        )


def run_under(python: Path | str, argv: list[str], extra_env: dict[str, str] | None = None) -> int:
    """Run `python -m realprof ARGV` from this checkout, its output passed through."""
    check_python(python)
    command = [str(python), "-m", "realprof", *argv]
    return subprocess.run(command, env=child_env(extra_env), check=False).returncode


def report_under(
    python: Path | str, scenario: Scenario, extra_env: dict[str, str] | None = None
) -> Report:
    """The real-world report of `scenario` run under `python` (`realprof scenario --json`)."""
    with tempfile.TemporaryDirectory(prefix="sigprof-lab-") as tmp:
        path = Path(tmp) / f"{scenario.name.replace('/', '-')}.yaml"
        # JSON is YAML: the scenario file the child reads is the scenario, validated again.
        path.write_text(json.dumps(scenario_to_dict(scenario)), encoding="utf-8")
        done = subprocess.run(
            [str(python), "-m", "realprof", "scenario", str(path), "--json"],
            env=child_env(extra_env),
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InterpreterError(f"{python}: {scenario.name} failed: {last}")
    return Report.from_dict(json.loads(done.stdout), f"{python} {scenario.name}")
