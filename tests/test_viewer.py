"""The offline viewer: `realprof show`'s options and the `realprof flame` page.

Profiles are built here, so every number is known: `show --sort cum` puts a caller with
no flat samples first, `--thread` keeps one thread's samples, every row has its
file:line, a folded file's rate is said to be assumed or is taken from `--rate-hz`; the
flame page draws one frame per call path, widths in proportion to samples, and says the
profile's total. (The page in a real browser: tests/test_browser.py.)
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from contract.profile import Frame, Profile
from contract.profile_files import write_profile
from realprof import show
from realprof.__main__ import main as realprof_main

MAIN = Frame("main", "app.py", 30, 28)
PHASE_A = Frame("phase_a", "app.py", 5, 3)
PHASE_B = Frame("phase_b", "lib.py", 12, 10)


def sample_profile() -> Profile:
    """main (no flat samples) -> phase_a -> 12 leaves of 3 samples on MainThread, and
    main -> phase_b (5 flat samples) on a thread named worker: 41 samples."""
    profile = Profile(100)
    for i in range(12):
        leaf = Frame(f"leaf{i:02}", "leaves.py", i + 2, i + 1)
        profile.add((leaf, PHASE_A, MAIN), "MainThread", 3)
    profile.add((PHASE_B, MAIN), "worker", 5)
    return profile


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = realprof_main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def table(out: str) -> list[list[str]]:
    """The top-functions rows (flat, flat%, cum%, function, where) of show's output."""
    lines = out.split("      flat   flat%    cum%  function\n", 1)[1].split("\n  threads:")[0]
    return [line.split() for line in lines.strip().splitlines()]


@pytest.fixture
def pprof_file(tmp_path: Path) -> Path:
    path = tmp_path / "p.pb.gz"
    write_profile(sample_profile(), path)
    return path


def test_show_sorts_by_cum(pprof_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run("show", str(pprof_file), "--sort", "cum", "--top", "3", capsys=capsys)

    assert status == 0
    assert "top functions (by cum):" in out
    assert table(out) == [
        ["0", "0.0%", "100.0%", "main", "app.py:28"],
        ["0", "0.0%", "87.8%", "phase_a", "app.py:3"],
        ["5", "12.2%", "12.2%", "phase_b", "lib.py:10"],
    ]


def test_show_default_sort_is_flat_and_rows_with_no_flat_have_file_line(
    pprof_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run("show", str(pprof_file), "--top", "20", capsys=capsys)

    assert status == 0
    rows = table(out)
    assert rows[0] == ["5", "12.2%", "12.2%", "phase_b", "lib.py:10"]
    assert rows[-2:] == [
        ["0", "0.0%", "100.0%", "main", "app.py:28"],
        ["0", "0.0%", "87.8%", "phase_a", "app.py:3"],
    ]
    assert all(len(row) == 5 for row in rows)  # every row names its file:line


def test_show_filters_by_thread(pprof_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run("show", str(pprof_file), "--thread", "work*", capsys=capsys)

    assert status == 0
    assert "  samples: 5 at 100 Hz (period 10 ms) = 0.050 s CPU\n" in out
    assert "  thread: work* (5 of 41 samples)\n" in out
    assert table(out) == [
        ["5", "100.0%", "100.0%", "phase_b", "lib.py:10"],
        ["0", "0.0%", "100.0%", "main", "app.py:28"],
    ]
    assert out.endswith("  threads:\n         5  100.0%  worker\n")


def test_show_unknown_thread_is_one_line(
    pprof_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run("show", str(pprof_file), "--thread", "nope", capsys=capsys)

    assert (status, out) == (2, "")
    assert err == (
        "python -m realprof show: error: --thread nope: no samples on such a thread; "
        "threads: MainThread, worker\n"
    )


def children_profile() -> Profile:
    """As `record --follow-children` merges them: each process's stacks under a root
    frame 'pid N (NAME)', threads named 'pid N (NAME): thread'."""
    profile = Profile(100)
    for pid, name, count in (
        (10, "demo.py", 4),
        (11, "ForkPoolWorker-1", 6),
        (12, "ForkPoolWorker-2", 7),
    ):
        label = f"pid {pid} ({name})"
        profile.add((PHASE_B, MAIN, Frame(label)), f"{label}: MainThread", count)
    return profile


@pytest.mark.parametrize(
    ("pattern", "samples"),
    [("ForkPoolWorker-*", 13), ("ForkPoolWorker-2", 7), ("11", 6), ("pid 10 (demo.py)", 4)],
)
def test_show_filters_by_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str, samples: int
) -> None:
    path = tmp_path / "children.pb.gz"
    write_profile(children_profile(), path)

    status, out, _ = run("show", str(path), "--process", pattern, capsys=capsys)

    assert status == 0
    assert f"  process: {pattern} ({samples} of 17 samples)\n" in out
    assert table(out)[0] == [str(samples), "100.0%", "100.0%", "phase_b", "lib.py:10"]


def test_show_process_filter_errors_name_the_processes(
    tmp_path: Path, pprof_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "children.folded"
    write_profile(children_profile(), path)

    _, _, unknown = run("show", str(path), "--process", "nope", capsys=capsys)
    _, _, unlabelled = run("show", str(pprof_file), "--process", "x", capsys=capsys)

    assert unknown == (
        "python -m realprof show: error: --process nope: no samples of such a process; "
        "processes: pid 10 (demo.py), pid 11 (ForkPoolWorker-1), pid 12 (ForkPoolWorker-2)\n"
    )
    assert "no process labels (record --follow-children adds them)" in unlabelled


def test_show_says_a_folded_files_rate_is_assumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other-tool.folded"
    path.write_text("main;work 150\nmain 50\n", encoding="utf-8")

    _, assumed, _ = run("show", str(path), capsys=capsys)
    _, given, _ = run("show", str(path), "--rate-hz", "250", capsys=capsys)

    assert (
        "  samples: 200 at 100 Hz (period 10 ms) = 2.000 s CPU"
        " (assumed: the file carries no rate; set it with --rate-hz)\n"
    ) in assumed
    assert (
        "  samples: 200 at 250 Hz (period 4 ms) = 0.800 s CPU"
        " (given by --rate-hz: the file carries no rate)\n"
    ) in given


def test_show_refuses_rate_hz_for_a_file_that_records_its_rate(
    pprof_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run("show", str(pprof_file), "--rate-hz", "250", capsys=capsys)

    assert status == 2
    assert err.count("\n") == 1
    assert "records its rate (100 Hz)" in err


def test_show_reads_a_count_weighted_speedscope_file_as_rateless(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # py-spy and others write unit "none" (counts) and no rate.
    path = tmp_path / "other.speedscope.json"
    path.write_text(
        '{"$schema": "https://www.speedscope.app/file-format-schema.json",'
        ' "shared": {"frames": [{"name": "main"}]},'
        ' "profiles": [{"type": "sampled", "name": "t", "unit": "none", "startValue": 0,'
        ' "endValue": 4, "samples": [[0]], "weights": [4]}]}',
        encoding="utf-8",
    )

    _, out, _ = run("show", str(path), "--rate-hz", "20", capsys=capsys)

    assert "  samples: 4 at 20 Hz (period 50 ms) = 0.200 s CPU (given by --rate-hz" in out


def test_show_keeps_the_rate_of_our_speedscope_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ours.speedscope.json"
    write_profile(sample_profile(), path)

    status, out, _ = run("show", str(path), capsys=capsys)

    assert status == 0
    assert "  samples: 41 at 100 Hz (period 10 ms) = 0.410 s CPU\n" in out


# ----- flame ---------------------------------------------------------------------------


class Frames(HTMLParser):
    """The frames of a flame page: per <svg class="f">, its data-* attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[dict[str, str]] = []
        self.total = ""
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "svg" and values.get("class") == "f":
            self.frames.append(values)
        if tag == "span" and values.get("id") == "total":
            self.total = values["data-samples"]
        if tag == "text":
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "text" and self._text is not None:
            self.frames[-1]["label"] = "".join(self._text)
            self._text = None


def test_flame_page_draws_every_call_path_with_its_samples(
    pprof_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "flame.html"
    status, stdout, _ = run("flame", str(pprof_file), "-o", str(out), capsys=capsys)
    page = out.read_text(encoding="utf-8")
    parsed = Frames()
    parsed.feed(page)
    frames = {f["label"]: (int(f["data-n"]), int(f["data-d"])) for f in parsed.frames}

    assert status == 0
    assert stdout == f"wrote {out}: 41 samples in 16 frames\n"
    assert parsed.total == "41"
    # all, main, phase_a, 12 leaves, phase_b: labelled function file:line
    assert len(parsed.frames) == 16
    assert frames["all"] == (41, 0)
    assert frames["main app.py:28"] == (41, 1)
    assert frames["phase_a app.py:3"] == (36, 2)
    assert frames["phase_b lib.py:10"] == (5, 2)
    assert frames["leaf00 leaves.py:1"] == (3, 3)
    # widths are samples / total
    widths = {f["label"]: f["width"] for f in parsed.frames}
    assert widths["phase_b lib.py:10"] == f"{100 * 5 / 41:.6f}%"
    # self-contained: no external resource of any kind
    assert re.findall(r"(?:src|href)\s*=|https?://", page) == []


def test_flame_escapes_names_and_is_deterministic(tmp_path: Path) -> None:
    from realprof import (
        flame,
    )  # new in this change: imported here, so each test fails alone without it

    profile = Profile(100)
    profile.add((Frame('<lambda> & "x"', "a<b>.py", 2, 1),), "MainThread", 2)
    page = flame.flame_html(profile, "t")
    parsed = Frames()
    parsed.feed(page)

    assert page == flame.flame_html(profile, "t")
    assert [f["label"] for f in parsed.frames] == ["all", '<lambda> & "x" a<b>.py:1']


def test_flame_counts_lost_samples_in_the_header_not_in_the_graph() -> None:
    from realprof import (
        flame,
    )  # new in this change: imported here, so each test fails alone without it

    profile = sample_profile()
    profile.add_lost("overflow", 7)

    page = flame.flame_html(profile, "t", lost=profile.total_lost)

    assert '<span id="total" data-samples="41">41</span>' in page
    assert "7 lost samples are not drawn" in page


def test_flame_thread_filter_and_errors(
    pprof_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "w.html"
    status, stdout, _ = run(
        "flame", str(pprof_file), "--thread", "worker", "-o", str(out), capsys=capsys
    )
    bad_thread = run("flame", str(pprof_file), "--thread", "x", "-o", str(out), capsys=capsys)
    not_profile = tmp_path / "junk.txt"
    not_profile.write_bytes(b"\x00\x01 not a profile \xff")
    bad_file = run("flame", str(not_profile), "-o", str(tmp_path / "j.html"), capsys=capsys)

    assert (status, stdout) == (0, f"wrote {out}: 5 samples in 3 frames\n")
    for status, out_text, err in (bad_thread, bad_file):
        assert (status, out_text, err.count("\n")) == (2, "", 1)
    assert not (tmp_path / "j.html").exists()


def test_flame_says_the_rate_of_a_folded_file_was_assumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other-tool.folded"
    path.write_text("main;work 150\nmain 50\n", encoding="utf-8")

    run("flame", str(path), "-o", str(tmp_path / "a.html"), capsys=capsys)
    run("flame", str(path), "--rate-hz", "250", "-o", str(tmp_path / "g.html"), capsys=capsys)

    assert "100 Hz (assumed: the file carries no rate; set it with --rate-hz) = 2.000 s CPU" in (
        tmp_path / "a.html"
    ).read_text(encoding="utf-8")
    assert "250 Hz (given by --rate-hz: the file carries no rate) = 0.800 s CPU" in (
        tmp_path / "g.html"
    ).read_text(encoding="utf-8")


def test_show_refuses_profile_options_for_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_real_report
) -> None:
    report = tiny_real_report
    report.write_json(tmp_path / "report.json")

    status, out, err = run("show", str(tmp_path / "report.json"), "--sort", "cum", capsys=capsys)

    assert (status, out) == (2, "")
    assert err.endswith("report.json: a report.json; --sort apply to profiles\n")


def test_call_tree_matches_the_profile() -> None:
    from realprof import (
        flame,
    )  # new in this change: imported here, so each test fails alone without it

    root = flame.call_tree(sample_profile())

    assert root.samples == 41
    assert flame.count_frames(root) == 16
    assert [(child.key, child.samples) for child in root.children.values()] == [
        (("main", "app.py", 28), 41)
    ]


def test_show_options_are_the_documented_view_options() -> None:
    from realprof import (
        flame,
    )  # new in this change: imported here, so each test fails alone without it

    shown = {o for a in show.show_parser()._actions for o in a.option_strings}
    drawn = {o for a in flame.flame_parser()._actions for o in a.option_strings}

    assert {"--sort", "--thread", "--process", "--rate-hz", "--top"} <= shown
    assert {"--thread", "--process", "--rate-hz", "-o", "--title"} <= drawn
