"""The labs (labs/NN-slug/, docs/labs/lab-NN-slug.md) keep working.

Every command-line step of every lab runs here, from a scratch directory that holds the
repository's `scenarios/` and `labs/`, and what it prints or writes is compared with the
numbers in its `steps.yaml` within the stated tolerances (real-kernel steps included:
their tolerances come from the spread measured on the 2-CPU HZ=250 VM the labs were
written on). Each lab's check command is run on a right answer (exit 0, PASS), wrong
answers (exit 1, the hint) and malformed input (exit 2). Each page shows every step's
command verbatim and every expected number.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labs import lab_dirs
from labs.steps import argv_of, load_steps, run_step

REPO = Path(__file__).resolve().parents[1]
LABS = sorted(lab_dirs())
TOOL_HINTS = {"go": "apt-get install -y golang-go"}


def test_there_are_seven_labs() -> None:
    assert LABS == [1, 2, 3, 4, 5, 6, 7]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labs")
    for name in ("scenarios", "labs"):
        (path / name).symlink_to(REPO / name)
    return path


@pytest.fixture(scope="module", autouse=True)
def _importable_repo() -> None:
    # The learner runs from the repository root, where `labs` is importable; here the
    # scratch directory's symlink gives `labs`, PYTHONPATH the rest.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old) if p)
    yield
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


_ran: dict[int, list] = {}


def run_lab(lab: int, cwd: Path) -> list:
    """Run lab's steps once per module (the checks use their outputs); tool steps too
    when the tool is here (test_tool_steps insists on it under CI)."""
    if lab not in _ran:
        outcomes = []
        for step in load_steps(lab)["steps"]:
            if step.get("tool") and shutil.which(step["tool"]) is None:
                continue
            outcomes.append((step, run_step(step, cwd)))
        _ran[lab] = outcomes
    return _ran[lab]


@pytest.mark.parametrize("lab", LABS)
def test_steps_give_the_expected_numbers(lab: int, workdir: Path) -> None:
    failures = [
        f"{step['id']} ({step['command']}):\n    " + "\n    ".join(outcome.lines)
        for step, outcome in run_lab(lab, workdir)
        if not outcome.ok
    ]
    assert not failures, "\n".join(failures)


def test_tool_steps(workdir: Path, require_tool) -> None:
    tool_steps = [
        (lab, step) for lab in LABS for step in load_steps(lab)["steps"] if step.get("tool")
    ]
    assert tool_steps, "lab 7 opens its profile with go tool pprof"
    for tool in {step["tool"] for _lab, step in tool_steps}:
        require_tool(tool, TOOL_HINTS.get(tool, f"install {tool}"))
    for lab, step in tool_steps:
        run_lab(lab, workdir)
        outcome = run_step(step, workdir)
        assert outcome.ok, f"{step['command']}: {outcome.lines}"


def test_eyes_steps_are_marked_and_their_files_checked() -> None:
    eyes = [step for lab in LABS for step in load_steps(lab)["steps"] if step.get("eyes")]
    assert {s["id"] for s in eyes} >= {"pprof-web", "speedscope-view"}
    for step in eyes:
        assert step.get("files"), f"{step['id']}: a step for a person's eyes names its files"


@pytest.mark.parametrize("lab", LABS)
def test_check_command(lab: int, workdir: Path) -> None:
    run_lab(lab, workdir)
    checks = load_steps(lab)["checks"]
    assert {c["exit"] for c in checks} == {0, 1, 2}, "right, wrong and malformed answers"
    for case in checks:
        if "write" in case:
            target = workdir / case["write"]["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(case["write"]["text"], encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "labs.check", *case["args"]],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        said = proc.stdout + proc.stderr
        assert proc.returncode == case["exit"], f"{case['args']}: {proc.returncode} {said}"
        assert case["says"] in said, f"{case['args']}: {said!r} lacks {case['says']!r}"
        if case["exit"] == 0:
            assert proc.stdout.startswith("PASS"), said
        elif case["exit"] == 1:
            assert proc.stdout.startswith("FAIL"), said
        assert "Traceback" not in said


def test_check_usage_errors(workdir: Path) -> None:
    for args in ([], ["99"], ["one"]):
        proc = subprocess.run(
            [sys.executable, "-m", "labs.check", *args],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and "usage: python -m labs.check N" in proc.stderr


def _number_forms(value: float) -> set[str]:
    forms = {str(value), f"{value:,}"}
    if isinstance(value, float) and value.is_integer():
        forms |= {str(int(value)), f"{int(value):,}"}
    return forms


@pytest.mark.parametrize("lab", LABS)
def test_page_shows_every_step(lab: int) -> None:
    data = load_steps(lab)
    page = (REPO / data["page"]).read_text(encoding="utf-8")
    front = yaml.safe_load(page.split("---", 2)[1])
    assert front["title"] and front["teaching"] > 0 and front["exercises"] > 0
    for part in (
        '!!! abstract "Objectives"',
        "## Setup",
        "## Steps",
        "## Your job",
        '??? success "Answer"',
        "## Going further",
        '!!! success "Key points"',
    ):
        assert part in page, f"{data['page']} lacks {part!r}"
    for step in data["steps"]:
        assert step["command"] in page, f"{data['page']} lacks the command {step['command']}"
        for item in step.get("expect", []):
            forms = _number_forms(item["value"])
            assert any(f in page for f in forms), (
                f"{data['page']}: step {step['id']} expects {item['path']} = {item['value']}"
            )
    assert f"python -m labs.check {lab}" in page
    for link in re.findall(r"\]\((\.\./walkthrough/[^)#]+)", page):
        assert (REPO / "docs/labs" / link).resolve().exists(), link


def test_commands_parse() -> None:
    for lab in LABS:
        for step in load_steps(lab)["steps"]:
            assert argv_of(step["command"])


@pytest.mark.parametrize("lab", LABS)
def test_check_help_prints_the_usage(lab: int, workdir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "labs.check", str(lab), "--help"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith(f"usage: python -m labs.check {lab} ")


def test_a_bad_answer_is_one_line(workdir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "labs.check", "3", "lots"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "must be a number" in proc.stderr and "usage: python -m labs.check 3" in proc.stderr


def test_step_lines_show_floats_as_written(tmp_path: Path) -> None:
    step = {
        "id": "sum",
        "command": "python -c \"import json; print(json.dumps({'x': 0.1 + 0.2}))\"",
        "expect": [{"path": "x", "value": 0.3, "tol": 0.01}],
    }
    outcome = run_step(step, tmp_path)
    assert outcome.lines == ["ok  x = 0.3 (expected 0.3 ± 0.01)"]


# What would hand a lab's answer over if a step ran it: the job's own run (a pattern in a
# step's command). `labs run N` runs every step, so none may match.
JOB_RUNS = {
    1: r"quickstart\.yaml .*rate_hz=250",
    2: r"machine\.cpus=8 .*kernel_hz=1000|kernel_hz=1000 .*rate_hz=500",
    3: r"^python -m sim .*rate_hz=[\d,]*\b25\d\b",
    4: r"buffer_words=[\d,]*\b(32768|65536)\b",
    5: r"skewed-attribution\.yaml .*(runtime=go1\.(1[89]|2\d)|timer=per-thread)",
    6: r"sleep_ms=100",
    7: r"--hz 1000",
}


@pytest.mark.parametrize("lab", LABS)
def test_labs_run_leaves_the_job_undone(lab: int) -> None:
    ran = [s["command"] for s in load_steps(lab)["steps"] if re.search(JOB_RUNS[lab], s["command"])]
    assert ran == [], f"lab {lab}: these steps do the job: {ran}"
