"""Read and run a lab's machine-readable steps (`labs/NN-slug/steps.yaml`).

A step is one command of the lab page, exactly as the page shows it, and what to expect:

    - id: run                        # unique within the lab
      command: python -m sim scenarios/quickstart.yaml --json
      json: stdout                   # where the JSON to check is: stdout or a file path
      expect:                        # values pulled out of that JSON
        - {path: capture_ratio, value: 0.996, tol: 0.01}
        - {path: "threads[name=spinA].share", value: 0.765, tol: 0.02}
      output_contains: [...]         # text stdout or stderr must contain (optional)
      files:                         # files the step must produce (optional)
        - {path: out/lab07/p.speedscope.json, contains: [checksum]}
      real: true                     # measures this machine's kernel (noisy)
      eyes: true                     # a person must look (a web UI); files still checked
      manual: true                   # not run by CI (e.g. it starts a web server); its
                                     # `files` (what it opens) are still checked
      tool: go                       # needs this executable on PATH
      valid_if:                      # the run measured what it should (e.g. both CPUs
        - {path: cpu_seconds, min: 3.6}  # were free), else it is rerun, up to `attempts`
      attempts: 3

Paths into the JSON are dotted; `[3]` indexes a list and `[name=X]` picks the list item
whose `name` is X. Commands are run from the repository root (or a directory holding
its `scenarios/` and `labs/`), without a shell; a leading `python` is this interpreter.
`python -m labs run N` runs lab N's steps and prints each comparison.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labs import lab_dirs
from labs.common import shown

_INDEX = re.compile(r"^(?P<key>[^\[\]]*)((\[(?P<sel>[^\]]+)\]))?$")


class StepError(Exception):
    """A steps.yaml that does not follow the format."""


@dataclass
class Outcome:
    step_id: str
    ok: bool
    lines: list[str] = field(default_factory=list)
    valid: bool = True


def load_steps(lab: int) -> dict[str, Any]:
    labs = lab_dirs()
    if lab not in labs:
        raise StepError(f"no lab {lab}; labs: {', '.join(map(str, sorted(labs)))}")
    data = yaml.safe_load((labs[lab] / "steps.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise StepError(f"lab {lab}: steps.yaml needs a list under 'steps'")
    for step in data["steps"]:
        if "id" not in step or "command" not in step:
            raise StepError(f"lab {lab}: every step needs an id and a command: {step}")
    return data


def extract(data: Any, path: str) -> Any:
    """The value at a dotted path like `rows[2].capture_ratio` or `threads[name=a].share`."""
    value = data
    for part in re.findall(r"(?:[^.\[]|\[[^\]]*\])+", path):
        match = _INDEX.match(part)
        if match is None:
            raise StepError(f"bad path component {part!r} in {path!r}")
        key, sel = match.group("key"), match.group("sel")
        if key:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"{path}: no key {key!r}")
            value = value[key]
        if sel is not None:
            if not isinstance(value, list):
                raise KeyError(f"{path}: {key or 'value'} is not a list")
            if "=" in sel:
                field_name, _, wanted = sel.partition("=")
                hits = [item for item in value if str(item.get(field_name)) == wanted]
                if not hits:
                    raise KeyError(f"{path}: no item with {field_name}={wanted}")
                value = hits[0]
            else:
                value = value[int(sel)]
    return value


def within(actual: Any, expected: Any, tol: float) -> bool:
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        return actual == expected
    if not isinstance(actual, int | float) or isinstance(actual, bool):
        return False
    return math.isfinite(actual) and abs(actual - expected) <= tol


def argv_of(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    return argv


def run_step(step: dict[str, Any], cwd: Path, timeout: float = 120) -> Outcome:
    """Run one step's command in `cwd` and compare what it printed or wrote; a run whose
    `valid_if` fails (a busy machine) is repeated up to `attempts` times."""
    attempts = int(step.get("attempts", 1))
    for attempt in range(1, attempts + 1):
        outcome = _run_once(step, cwd, timeout)
        if outcome.valid or attempt == attempts:
            return outcome
    return outcome


def _run_once(step: dict[str, Any], cwd: Path, timeout: float) -> Outcome:
    outcome = Outcome(step["id"], True)
    if step.get("manual"):
        check_files(step, cwd, outcome)
        outcome.lines.append("manual step: not run; the files it opens are there")
        return outcome
    proc = subprocess.run(
        argv_of(step["command"]),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        outcome.ok = False
        outcome.lines.append(f"exit status {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return outcome
    for text in step.get("output_contains", []):
        if text not in proc.stdout + proc.stderr:
            outcome.ok = False
            outcome.lines.append(f"output lacks {text!r}")
    check_files(step, cwd, outcome)
    compare_json(step, cwd, proc.stdout, outcome)
    return outcome


def check_files(step: dict[str, Any], cwd: Path, outcome: Outcome) -> None:
    for spec in step.get("files", []):
        path = cwd / spec["path"]
        if not path.exists():
            outcome.ok = False
            outcome.lines.append(f"{spec['path']}: not written")
            continue
        content = path.read_bytes().decode("utf-8", errors="replace")
        for text in spec.get("contains", []):
            if text not in content:
                outcome.ok = False
                outcome.lines.append(f"{spec['path']}: lacks {text!r}")


def compare_json(step: dict[str, Any], cwd: Path, stdout: str, outcome: Outcome) -> None:
    if step.get("expect"):
        source = step.get("json", "stdout")
        try:
            raw = stdout if source == "stdout" else (cwd / source).read_text("utf-8")
            data = json.loads(raw)
        except (OSError, ValueError) as exc:
            outcome.ok = False
            outcome.lines.append(f"cannot read JSON from {source}: {exc}")
            return
        for cond in step.get("valid_if", []):
            actual = extract(data, cond["path"])
            if not isinstance(actual, int | float) or actual < cond["min"]:
                outcome.ok = outcome.valid = False
                outcome.lines.append(
                    f"BAD run: {cond['path']} = {shown(actual)} < {cond['min']}: the machine was "
                    "busy (another process used a CPU); rerun on an idle machine"
                )
        for item in step["expect"]:
            try:
                actual = extract(data, item["path"])
            except (KeyError, IndexError, TypeError) as exc:
                outcome.ok = False
                outcome.lines.append(f"{item['path']}: {exc}")
                continue
            tol = float(item.get("tol", 0))
            good = within(actual, item["value"], tol)
            mark = "ok " if good else "BAD"
            outcome.lines.append(
                f"{mark} {item['path']} = {shown(actual)} "
                f"(expected {shown(item['value'])} ± {tol:g})"
            )
            outcome.ok &= good


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print("usage: python -m labs run N   (run lab N's steps and compare)")
        return 0
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m labs run N   (run lab N's steps and compare)", file=sys.stderr)
        return 2
    try:
        data = load_steps(int(argv[0]))
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for step in data["steps"]:
        print(f"$ {step['command']}")
        tool = step.get("tool")
        if tool and shutil.which(tool) is None:
            print(f"  skipped: {tool!r} is not on PATH")
            continue
        outcome = run_step(step, Path.cwd())
        for line in outcome.lines:
            print(f"  {line}")
        if step.get("eyes"):
            print("  (now look at it yourself: this step needs a person's eyes)")
        failed += not outcome.ok
    print(f"{len(data['steps']) - failed}/{len(data['steps'])} steps as expected")
    return 1 if failed else 0
