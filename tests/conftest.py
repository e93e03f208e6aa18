"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def _in_ci() -> bool:
    # CI services set CI=true; treat an explicit "false"/"0" as unset.
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def require_tool() -> Callable[[str, str], str]:
    """``require_tool(name, install_hint)`` -> path of the executable ``name``.

    A missing tool skips the test on a developer's machine, saying how to install
    it, but fails it under CI (env CI set): there a skip would hide that the check
    never ran.
    """

    def require(name: str, install_hint: str) -> str:
        path = shutil.which(name)
        if path is not None:
            return path
        message = f"{name!r} is not on PATH; install it with `{install_hint}`"
        if _in_ci():
            pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)

    return require


@pytest.fixture
def require_go_release() -> Callable[[str], tuple[str, str]]:
    """``require_go_release("1.23")`` -> (path of its ``go``, its version).

    Like ``require_tool``: a release that is not installed skips the test with the
    command that installs it (``.ci/go-toolchains 1.23``), and fails it under CI.
    """
    from lab.go_toolchain import GoWorldError, find_toolchain

    def require(release: str) -> tuple[str, str]:
        try:
            return find_toolchain(release)
        except GoWorldError as error:
            if _in_ci():
                pytest.fail(f"{error} (CI is set, so this is a failure, not a skip)")
            pytest.skip(str(error))

    return require


@pytest.fixture
def tiny_real_report():
    """A small real-world report (100 samples of one function on one thread), for the
    commands that read report.json."""
    from contract.report import build_report

    return build_report(
        world="real",
        scenario="tiny",
        runtime="realprof",
        timer="per-thread",
        machine={"cpus": 2, "kernel_hz": 250},
        rate_hz=100,
        wall_seconds=1.0,
        cpu_seconds=1.0,
        counts={"signals_delivered": 100, "samples_recorded": 100},
        function_samples={"main.compute": 100},
        thread_samples={"main": 100},
        true_function_cpu_s={"main.compute": 1.0},
    )


@pytest.fixture
def free_threaded_python() -> Path:
    """A free-threaded Python (python3.14t) with the lab installed (`lab.interpreters`).

    Missing, it skips the test with the commands that make one; under CI it fails, unless
    `.ci/cpython-builds` left the reason it could not build one (`<prefix>/.failed`): then
    the skip names that reason, which the build's log shows too.
    """
    from lab.interpreters import FREE_THREADED, build_failure, install_command, lab_python

    python = lab_python(FREE_THREADED)
    if python is not None:
        return python
    failure = build_failure(FREE_THREADED)
    if failure is not None:
        pytest.skip(f"no free-threaded Python: {failure}")
    message = f"no free-threaded Python {FREE_THREADED}; make one with `{install_command()}`"
    if _in_ci():
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)
