"""Same-named Python functions in different files stay apart, like Go's package-qualified names.

Two modules, ``alpha`` and ``beta``, each have a module body that burns CPU, a ``main``
and a ``Worker.__init__``. Profiled together (``python -m realprof record`` on a driver
that imports both), they must be six functions, not three, in every format (pprof,
folded, speedscope), in ``realprof show`` and in ``go tool pprof -top``; file and line
stay with each frame (``-list`` and ``-lines`` still work). The naming rule itself is
``realprof/frame_names.py``; the formats' round trips are checked on a built profile.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from contract.profile import Frame, Profile
from contract.profile_files import profile_from_bytes, read_profile, write_profile
from realprof.frame_names import module_of
from realprof.show import top_lines

REPO = Path(__file__).resolve().parent.parent

# CPU seconds each function burns; alpha's and beta's differ so a merge would show.
BUDGET = {"<module>": {"alpha": 0.1, "beta": 0.4}, "main": {"alpha": 0.2, "beta": 0.6}}

MODULE = textwrap.dedent(
    """
    import time

    def spin(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    end = time.thread_time() + {module_s}
    while time.thread_time() < end:  # the module body's own CPU
        pass

    class Worker:
        def __init__(self):
            end = time.thread_time() + 0.05
            while time.thread_time() < end:
                pass

    def main():
        Worker()
        end = time.thread_time() + {main_s}
        while time.thread_time() < end:
            pass
    """
)

DRIVER = "import alpha, beta\nalpha.main()\nbeta.main()\n"


# ----- the naming rule ---------------------------------------------------------------


def test_module_of_names_files_as_the_import_system_does(tmp_path, monkeypatch) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(tmp_path), str(tmp_path / "pkg")])
    # The closest sys.path entry wins (site-packages inside lib/python3.x, say).
    assert module_of(str(tmp_path / "pkg" / "sub" / "mod.py")) == "sub.mod"
    assert module_of(str(tmp_path / "top.py")) == "top"
    assert module_of(str(tmp_path / "pkg" / "sub" / "__init__.py")) == "sub"
    assert module_of("<frozen runpy>") == "runpy"
    assert module_of("<string>") == "<string>"
    assert module_of("") == ""
    assert module_of(str(tmp_path.parent / "elsewhere" / "script.py")) == "script"


# ----- the formats, on a built profile ---------------------------------------------------


def _two_modules_profile() -> Profile:
    profile = Profile(100.0, start_time_ns=5, duration_ns=10**9)
    for module, weight in (("alpha", 1), ("beta", 2)):
        file = f"/src/{module}.py"
        body = Frame("<module>", file, 9, 1, module)
        main = Frame("main", file, 20, 18, module)
        init = Frame("Worker.__init__", file, 15, 14, module)
        driver = Frame("<module>", "/src/driver.py", 2, 1, "driver")
        profile.add([body, driver], "MainThread", 3 * weight)
        profile.add([main, driver], "MainThread", 5 * weight)
        profile.add([init, main, driver], "MainThread", weight)
    return profile


def test_same_named_functions_stay_apart_in_top_and_show() -> None:
    profile = _two_modules_profile()
    flat = profile.by_function()
    assert flat == {
        "alpha.<module>": 3,
        "beta.<module>": 6,
        "alpha.main": 5,
        "beta.main": 10,
        "alpha.Worker.__init__": 1,
        "beta.Worker.__init__": 2,
    }
    cum = {name: c for name, _flat, c in profile.top(20)}
    assert cum["alpha.main"] == 6 and cum["beta.main"] == 12 and cum["driver.<module>"] == 27
    text = "\n".join(top_lines(profile, 20))
    assert re.search(r"beta\.main\s+/src/beta\.py:18$", text, re.M), text
    assert re.search(r"alpha\.main\s+/src/alpha\.py:18$", text, re.M), text


@pytest.mark.parametrize("suffix", [".pb.gz", ".speedscope.json"])
def test_pprof_and_speedscope_round_trip_modules_files_and_lines(tmp_path, suffix) -> None:
    profile = _two_modules_profile()
    write_profile(profile, tmp_path / f"p{suffix}")
    loaded = read_profile(tmp_path / f"p{suffix}")
    assert loaded.samples == profile.samples
    assert loaded.by_function() == profile.by_function()


def test_folded_keeps_qualified_names_and_round_trips(tmp_path) -> None:
    profile = _two_modules_profile()
    write_profile(profile, tmp_path / "p.folded")
    text = (tmp_path / "p.folded").read_text()
    assert "driver.<module>;alpha.main;alpha.Worker.__init__ 1\n" in text
    assert "driver.<module>;beta.<module> 6\n" in text
    loaded = read_profile(tmp_path / "p.folded")
    assert loaded.by_function() == profile.by_function()
    write_profile(loaded, tmp_path / "again.folded")
    assert (tmp_path / "again.folded").read_text() == text


def test_go_names_read_back_without_a_module(tmp_path) -> None:
    """A Go profile's name and system_name are equal: nothing to split, no module."""
    profile = Profile(100.0)
    profile.add([Frame("main.compute", "/go/main.go", 7, 5)], "", 4)
    write_profile(profile, tmp_path / "go.pb.gz")
    assert read_profile(tmp_path / "go.pb.gz").samples == profile.samples


# ----- a real recording ------------------------------------------------------------------


def _realprof(*args: str, cwd: Path) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(
        [sys.executable, "-m", "realprof", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


FORMATS = ("p.pb.gz", "p.speedscope.json", "p.folded")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the recording as pprof, and as speedscope and folded from it."""
    work = tmp_path_factory.mktemp("identity")
    for module in ("alpha", "beta"):
        source = MODULE.format(module_s=BUDGET["<module>"][module], main_s=BUDGET["main"][module])
        (work / f"{module}.py").write_text(source, encoding="utf-8")
    (work / "driver.py").write_text(DRIVER, encoding="utf-8")
    _realprof("record", "-o", FORMATS[0], "driver.py", cwd=work)
    pprof = read_profile(work / FORMATS[0])
    for name in FORMATS[1:]:
        write_profile(pprof, work / name)
    return work


def _check_apart(profile: Profile, work: Path | None) -> None:
    flat = profile.by_function()
    for name in ("<module>", "main"):
        alpha, beta = flat.get(f"alpha.{name}", 0), flat.get(f"beta.{name}", 0)
        # 100 Hz per CPU second: alpha expects 10 or 20 samples, beta 40 or 60. beta's
        # lead is over 4 standard errors (sqrt(alpha + beta) <= 9); a merge would
        # leave one of the two at 0.
        assert alpha >= 3 and beta > alpha, flat
    assert not {"main", "<module>", "Worker.__init__"} & set(flat), flat
    if work is not None:  # formats with files: each frame points at its own file
        for (stack, _thread), _count in profile.samples.items():
            for frame in stack:
                if frame.module in ("alpha", "beta"):
                    assert frame.file == str(work / f"{frame.module}.py"), frame
                    assert frame.line > 0 and frame.start_line > 0, frame


def test_a_recording_keeps_same_named_functions_apart_in_every_format(recorded) -> None:
    pprof = read_profile(recorded / FORMATS[0])
    _check_apart(pprof, recorded)
    for name in FORMATS[1:]:
        loaded = read_profile(recorded / name)
        _check_apart(loaded, None if name.endswith(".folded") else recorded)
        assert loaded.by_function() == pprof.by_function()
        if not name.endswith(".folded"):  # folded has no threads, files or lines
            assert loaded.samples == pprof.samples
    folded = (recorded / "p.folded").read_bytes()
    assert profile_from_bytes(folded).total_samples == pprof.total_samples


@pytest.mark.parametrize("name", FORMATS)
def test_show_lists_each_function_with_its_file(recorded, name) -> None:
    out = _realprof("show", "--top", "30", name, cwd=recorded)
    for module in ("alpha", "beta"):
        for function, first in (("main", 19), ("<module>", 1)):
            row = rf"\s{module}\.{re.escape(function)}"
            if not name.endswith(".folded"):  # folded has no files
                row += rf"\s+\S*{module}\.py:{first}"
            assert re.search(row + "$", out, re.M), out


def test_go_tool_pprof_keeps_them_apart(recorded, require_tool) -> None:
    go = require_tool("go", "apt-get install golang-go")

    def pprof(*args: str) -> str:
        result = subprocess.run(
            [go, "tool", "pprof", *args, "p.pb.gz"],
            cwd=recorded,
            env=dict(os.environ, PPROF_TMPDIR=str(recorded)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    top = pprof("-top", "-nodecount=100")
    row = re.compile(r"\s*\S+\s+[0-9.]+%\s+[0-9.]+%\s+\S+\s+[0-9.]+%\s+(\S+)$")
    names = {match[1] for match in map(row.match, top.splitlines()) if match}
    assert {"alpha.main", "beta.main", "alpha.<module>", "beta.<module>"} <= names, top
    assert {"alpha.Worker.__init__", "beta.Worker.__init__"} <= names, top
    # pprof drops "<...>" from names it takes for C++: a bare <module> became "[python]".
    assert "[python]" not in top, top
    lines = pprof("-top", "-lines", "-nodecount=100")
    assert re.search(r"alpha\.main \S*alpha\.py:2[0-9]$", lines, re.M), lines
    listing = pprof("-list", r"^beta\.main$")
    assert "ROUTINE ======================== beta.main in " in listing, listing
    assert "end = time.thread_time()" in listing, listing  # the source was found
