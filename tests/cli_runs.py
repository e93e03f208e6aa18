"""Running this checkout's command-line tools in a child process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from references import ROOT


def run_realprof(
    *args: str,
    cwd: Path = ROOT,
    extra_path: Path | None = None,
    env_extra: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m realprof ARGS` with this checkout first on PYTHONPATH (then
    `extra_path`, then the caller's), `env_extra` added to the environment."""
    env = dict(os.environ, **(env_extra or {}))
    paths = [str(ROOT), *([str(extra_path)] if extra_path else [])]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "realprof", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
