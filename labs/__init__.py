"""Hands-on labs for sigprof-lab: one folder per lab, one page per lab in docs/labs/.

Each folder `labs/NN-slug/` holds `steps.yaml` (every command-line step of the lab page,
with the numbers to extract from its JSON output and the tolerance they must fall in),
`check.py` (the lab's answer checker, run as `python -m labs.check N ...`) and any
scenario or program the lab needs. `labs.steps` reads and runs the steps; CI runs them all
(tests/test_labs.py) so the pages keep matching what the tools print.
"""

from __future__ import annotations

from pathlib import Path

LABS_DIR = Path(__file__).resolve().parent
REPO_DIR = LABS_DIR.parent


def lab_dirs() -> dict[int, Path]:
    """{lab number: its folder}, from the folders named NN-slug."""
    found = {}
    for path in sorted(LABS_DIR.iterdir()):
        head = path.name.split("-", 1)[0]
        if path.is_dir() and head.isdigit() and (path / "steps.yaml").exists():
            found[int(head)] = path
    return found
