"""`lab.go_fit_check.agreement`: a counted median p against the pooled fit of Go profiles.

* A median whose runs do not scatter is held to the pooled range as it is.
* A median outside the range agrees when its own runs' scatter covers the gap, and not
  when it does not.
* The side of the range that faces the median is the one widened.
* `go-fit --verdict-only` judges a stored go-fit.json again, and refuses what is not one
  in one line, exit 2.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from references import ROOT

from lab.go_fit_check import agreement
from realprof.__main__ import main as realprof_main

POOLED = {"p": 0.165, "low": 0.139, "high": 0.182}


@pytest.mark.parametrize(("median", "agrees"), [(0.18, True), (0.19, False), (0.13, False)])
def test_runs_without_scatter_are_held_to_the_range(median: float, agrees: bool) -> None:
    verdict = agreement(POOLED, [median] * 3)
    assert (verdict["median_se"], verdict["agrees"]) == (0.0, agrees)


def test_a_median_outside_the_range_agrees_when_its_runs_scatter_over_the_gap() -> None:
    # Eight survival runs as one sitting counted them: median 0.186, above 0.182.
    runs = [0.1861, 0.1858, 0.2056, 0.1698, 0.1791, 0.1901, 0.1802, 0.2804]
    verdict = agreement(POOLED, runs)
    assert verdict["gap"] == round(statistics.median(runs) - 0.165, 4)
    assert verdict["median_se"] > 0.01
    assert verdict["agrees"]


def test_a_median_far_beyond_its_scatter_disagrees() -> None:
    verdict = agreement(POOLED, [0.30, 0.31, 0.32])
    assert not verdict["agrees"]


def test_the_side_facing_the_median_is_widened() -> None:
    lopsided = {"p": 0.5, "low": 0.2, "high": 0.55}
    below = agreement(lopsided, [0.25, 0.25, 0.25])
    above = agreement(lopsided, [0.75, 0.75, 0.75])
    assert (below["allowed"], below["agrees"]) == (0.3, True)
    assert (above["allowed"], above["agrees"]) == (0.05, False)


def test_the_allowance_adds_the_range_and_the_median_error_in_quadrature() -> None:
    runs = [0.1, 0.2, 0.3, 0.4]
    verdict = agreement(POOLED, runs)
    side = POOLED["high"] - POOLED["p"]
    # Four runs: Student's t at three degrees of freedom, wider than the normal's 2.
    assert verdict["t"] > 3
    expected = math.hypot(side, verdict["t"] * verdict["median_se"])
    assert verdict["allowed"] == pytest.approx(expected, abs=1e-3)


def stored_result(tmp_path: Path) -> Path:
    """The committed AMD sitting as the verdict before agreement left it."""
    data = json.loads((ROOT / "docs" / "data" / "go-fit.json").read_text(encoding="utf-8"))
    data.pop("p_agrees_with_pooled_fit", None)
    data["p_in_pooled_range"] = {"realprof": True, "cprobe": True}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_verdict_only_judges_a_stored_sitting_again(tmp_path: Path, capsys) -> None:
    source = stored_result(tmp_path)
    out = tmp_path / "out"
    assert realprof_main(["go-fit", "--verdict-only", str(source), "--out", str(out)]) == 0
    written = json.loads((out / source.name).read_text(encoding="utf-8"))
    stored = json.loads(source.read_text(encoding="utf-8"))
    runs = [r["p"] for r in stored["realprof_survival_runs"]]
    assert "p_in_pooled_range" not in written
    assert written["p_agrees_with_pooled_fit"]["realprof"] == agreement(stored["pooled_fit"], runs)
    assert "realprof's median p" in capsys.readouterr().out


def test_verdict_only_without_out_writes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    source = stored_result(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert realprof_main(["go-fit", "--verdict-only", str(source)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
    assert "cprobe's median p" in capsys.readouterr().out


def not_quite(tmp_path: Path) -> str:
    """A stored sitting whose pooled fit lost its range: keys all there, values not."""
    data = json.loads(stored_result(tmp_path).read_text(encoding="utf-8"))
    data["pooled_fit"] = {"p": 0.5}
    return json.dumps(data)


@pytest.mark.parametrize("text", ["not json", '{"cell": "x"}', "[1, 2]", "not quite"])
def test_verdict_only_refuses_what_is_not_go_fit_data(tmp_path: Path, capsys, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(not_quite(tmp_path) if text == "not quite" else text, encoding="utf-8")
    out = tmp_path / "out"
    assert realprof_main(["go-fit", "--verdict-only", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1, err
    assert not out.exists()
