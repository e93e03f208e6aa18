"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

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
