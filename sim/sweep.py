"""Sweeps: one scenario, run at every point of a grid of values, to see how a knob moves it.

A single run says "this profile captured 25% of the samples"; a sweep says why, by
showing the capture ratio fall as the rate passes the kernel's tick rate, or the
attribution error grow with the number of CPUs. `python -m sim sweep scenario.yaml
--vary profiler.rate_hz=100,250,500,1000 --vary machine.cpus=2,8` runs the cartesian
product of the values (here 4 × 2 = 8 points) and writes a table, `sweep.json`,
`sweep.csv` and `sweep.png` (`figures.sweep.plot_sweep`: the first varied field on the x
axis, the second as one line per value).

Every point is the base scenario with dotted-path overrides (`contract.overrides.with_overrides`),
validated exactly like a value written in the file, and all points are validated before
the first one runs, so a typo fails in milliseconds, not after an hour of simulation.
Each point keeps the scenario's seed: a sweep is deterministic, and its rows do not
depend on how it was run (inline, `jobs` local processes, or a Dask cluster) nor on the
order in which points finish.
"""

from __future__ import annotations

import csv
import gc
import io
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from contract.overrides import with_overrides
from contract.report import rounded_for_json
from contract.scenario import Scenario, ScenarioError, scenario_to_dict
from contract.scenario_file import read_yaml
from contract.values import is_number, same_value, unique

# The Report fields each row carries, after the varied values. The first group is what
# sweeps are usually about; the rest is the funnel, so a row's losses can be followed.
ROW_FIELDS: tuple[str, ...] = (
    "capture_ratio",
    "profile_cpu_percent",
    "attribution_error_pp",
    "expected_samples",
    "samples_in_profile",
    "signals_generated",
    "signals_dropped_pending",
    "signals_pending_at_stop",
    "signals_delivered",
    "signals_merged",
    "signals_discarded",
    "samples_recorded",
    "samples_lost_overflow",
    "timer_overruns",
    "cpu_seconds",
    "wall_seconds",
)

# Column headings of the text table: two lines each, words and a unit, and a format.
_COLUMNS: dict[str, tuple[str, str, str]] = {
    "capture_ratio": ("capture", "ratio", "{:.3f}"),
    "profile_cpu_percent": ("profile", "CPU %", "{:.1f}"),
    "attribution_error_pp": ("attribution", "error (pp)", "{:.1f}"),
    "expected_samples": ("expected", "samples", "{:,.0f}"),
    "samples_in_profile": ("in profile", "samples", "{:,}"),
    "signals_generated": ("generated", "signals", "{:,}"),
    "signals_dropped_pending": ("dropped:", "pending", "{:,}"),
    "signals_pending_at_stop": ("pending", "at stop", "{:,}"),
    "signals_delivered": ("delivered", "signals", "{:,}"),
    "signals_merged": ("merged", "signals", "{:,}"),
    "signals_discarded": ("discarded", "signals", "{:,}"),
    "samples_recorded": ("recorded", "samples", "{:,}"),
    "samples_lost_overflow": ("lost: buffer", "full", "{:,}"),
    "timer_overruns": ("timer", "overruns", "{:,}"),
    "cpu_seconds": ("workload", "CPU (s)", "{:.3f}"),
    "wall_seconds": ("wall", "time (s)", "{:.3f}"),
}
# Losses: shown in the table only where they happened, to keep it readable.
_LOSS_COLUMNS = (
    "signals_dropped_pending",
    "signals_pending_at_stop",
    "signals_merged",
    "signals_discarded",
    "samples_lost_overflow",
    "timer_overruns",
)

CLUSTER_MISSING = "--cluster needs dask.distributed: pip install 'sigprof-lab[cluster]'"


@dataclass
class SweepResult:
    """The rows of a sweep, in grid order (the last varied field changes fastest)."""

    axes: list[str]
    rows: list[dict[str, Any]]
    scenario: Scenario | None = None  # the base scenario, for titles and sweep.json

    # -- text -----------------------------------------------------------------------

    def to_table(self) -> str:
        """An aligned table: the varied fields, then the metrics, in words with units.

        Loss columns that are zero (or unobserved) at every point are left out and named
        on the last line; the wall time is shown only when it varies. sweep.csv has all.
        """
        from figures.sweep import axis_unit

        # samples_recorded is left out: it equals the profile but for the losses shown.
        fields = [name for name in ROW_FIELDS if name != "samples_recorded"]
        hidden = []
        for name in list(fields):
            values = [row.get(name) for row in self.rows]
            if name in _LOSS_COLUMNS and not any(values):
                fields.remove(name)
                hidden.append(name)
            elif name == "wall_seconds" and len(unique(values)) <= 1:
                fields.remove(name)

        headings: list[tuple[str, str]] = []
        for axis in self.axes:
            section, _, leaf = axis.rpartition(".")
            unit = axis_unit(axis)
            headings.append((section, f"{leaf} ({unit})" if unit else leaf))
        headings += [(_COLUMNS[name][0], _COLUMNS[name][1]) for name in fields]

        cells: list[list[str]] = []
        numeric: list[bool] = [True] * len(headings)
        for row in self.rows:
            line = []
            for i, axis in enumerate(self.axes):
                value = row[axis]
                if not is_number(value):
                    numeric[i] = False
                line.append(_show(value))
            for name in fields:
                value = row.get(name)
                line.append("—" if value is None else _COLUMNS[name][2].format(value))
            cells.append(line)

        widths = [
            max(len(h[0]), len(h[1]), *(len(c[i]) for c in cells)) for i, h in enumerate(headings)
        ]

        def fmt(texts: Iterable[str]) -> str:
            out = []
            for i, text in enumerate(texts):
                out.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
            return "  ".join(out).rstrip()

        lines = [
            fmt(h[0] for h in headings),
            fmt(h[1] for h in headings),
            "  ".join("-" * w for w in widths),
        ]
        lines += [fmt(c) for c in cells]
        if hidden:
            words = ", ".join(
                _COLUMNS[name][0].rstrip(":") + " " + _COLUMNS[name][1] for name in hidden
            )
            lines.append(f"(zero at every point, not shown: {words})")
        return "\n".join(lines) + "\n"

    # -- files ----------------------------------------------------------------------

    def to_json(self) -> str:
        """Deterministic JSON: same sweep, same bytes."""
        document: dict[str, Any] = {
            "scenario": self.scenario.name if self.scenario else None,
            "seed": self.scenario.seed if self.scenario else None,
            "axes": self.axes,
            "values": {axis: unique(row[axis] for row in self.rows) for axis in self.axes},
            "fields": list(ROW_FIELDS),
            "rows": [rounded_for_json(row) for row in self.rows],
            "base_scenario": scenario_to_dict(self.scenario) if self.scenario else None,
        }
        return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = [*self.axes, *ROW_FIELDS]
        writer.writerow(columns)
        for row in self.rows:
            out = []
            for column in columns:
                value = rounded_for_json(row.get(column))
                if value is None:
                    out.append("")
                elif isinstance(value, list | dict | bool):
                    out.append(json.dumps(value))
                else:
                    out.append(value)
            writer.writerow(out)
        return buffer.getvalue()

    def write(self, out_dir: str | Path, cpu_percent: bool = False) -> list[Path]:
        """sweep.json, sweep.csv and sweep.png in `out_dir`; returns their paths.

        The figure plots the capture ratio and the attribution error; with `cpu_percent`,
        the CPU % the profile shows between them, the number a user reads in pprof.
        """
        from figures.sweep import plot_sweep

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path, csv_path, png_path = out / "sweep.json", out / "sweep.csv", out / "sweep.png"
        json_path.write_text(self.to_json(), encoding="utf-8")
        csv_path.write_text(self.to_csv(), encoding="utf-8")

        x = self.axes[0]
        rows, series = self.rows, None
        if len(self.axes) == 2:
            series = self.axes[1]
        elif len(self.axes) > 2:
            # One line per combination of the other fields, named by all of them.
            series = ", ".join(self.axes[1:])
            rows = [
                {**row, series: ", ".join(_show(row[a]) for a in self.axes[1:])}
                for row in self.rows
            ]
        name = self.scenario.name if self.scenario else "scenario"
        over = x + (f" and {series}" if series else "")
        metrics = ("capture_ratio", "attribution_error_pp")
        if cpu_percent:
            metrics = ("capture_ratio", "profile_cpu_percent", "attribution_error_pp")
        plot_sweep(
            rows, x, png_path, series=series, metrics=metrics, title=f"{name}: sweep over {over}"
        )
        return [json_path, csv_path, png_path]


# ---------------------------------------------------------------------------------------
# Parsing --vary


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _split_values(text: str, where: str) -> list[str]:
    """Split on commas outside brackets and quotes: `[1,1],[4,1]` -> `[1,1]`, `[4,1]`."""
    items, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth < 0:
                raise ScenarioError(f"{where}: unbalanced {char!r} in the values")
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if quote or depth:
        raise ScenarioError(f"{where}: unclosed {'quote' if quote else 'bracket'} in the values")
    items.append(text[start:])
    return items


def _parse_value(item: str, where: str) -> Any:
    try:
        value = yaml.safe_load(item)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{where}: cannot read value {item.strip()!r}: {problem}") from None
    # YAML 1.1 reads 1e3 as a string; a sweep means the number.
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) and item.strip() == value:
        number = float(value)
        value = int(number) if number.is_integer() and "." not in value else number
    return value


def parse_vary(texts: Iterable[str]) -> dict[str, list[Any]]:
    """`["profiler.rate_hz=100,250,500"]` -> `{"profiler.rate_hz": [100, 250, 500]}`.

    Values are YAML scalars (or flow lists such as `[4,1]`, split on top-level commas).
    Malformed input raises ScenarioError with a one-line message.
    """
    vary: dict[str, list[Any]] = {}
    for text in texts:
        path, sep, values_text = text.partition("=")
        path = path.strip()
        if not sep:
            raise ScenarioError(
                f"--vary {text!r}: expected dotted.path=V1,V2,... "
                "(e.g. profiler.rate_hz=100,250,500)"
            )
        if not path or any(not key.strip() for key in path.split(".")):
            raise ScenarioError(f"--vary {text!r}: empty field name in the dotted path")
        path = ".".join(key.strip() for key in path.split("."))
        where = f"--vary {path}"
        if path in vary:
            raise ScenarioError(f"{where}: given twice; list all its values in one --vary")
        if not values_text.strip():
            raise ScenarioError(f"{where}: no values after '='")
        values: list[Any] = []
        for item in _split_values(values_text, where):
            if not item.strip():
                raise ScenarioError(
                    f"{where}: empty value in {values_text!r} (two commas in a row, or a "
                    "comma at an end?)"
                )
            value = _parse_value(item, where)
            if any(same_value(value, seen) for seen in values):
                raise ScenarioError(f"{where}: value {_show(value)} is listed twice")
            values.append(value)
        vary[path] = values
    if not vary:
        raise ScenarioError("--vary: nothing to vary; give at least one PATH=V1,V2,...")
    return vary


# ---------------------------------------------------------------------------------------
# Running


def run_point(scenario: Scenario) -> dict[str, Any]:
    """Simulate one grid point; the Report fields of a row. Top level: workers pickle it."""
    from sim.model import simulate

    report = simulate(scenario).report
    return {name: getattr(report, name) for name in ROW_FIELDS}


def _reason(exc: ScenarioError) -> str:
    """The part of a scenario error that says what is wrong, without its source prefix."""
    message = str(exc)
    # with_overrides names the source "NAME with {...}: " and apply_override "--set PATH: ";
    # the sweep names the point itself.
    for pattern in (r"^.* with \{.*?\}: ", r"^--set \S+: "):
        stripped = re.sub(pattern, "", message, count=1)
        if stripped != message:
            return stripped
    return message


def grid_points(
    scenario: Scenario, vary: Mapping[str, Iterable[Any]]
) -> list[tuple[dict[str, Any], Scenario]]:
    """Every point of the grid, validated: (the varied values, the scenario to run).

    Each value is first tried alone, so a bad value is named without the other fields;
    then every combination, since some values are only wrong together (a timer the
    runtime cannot use).
    """
    axes = {path: list(values) for path, values in vary.items()}
    if not axes:
        raise ScenarioError("--vary: nothing to vary; give at least one PATH=V1,V2,...")
    for path, values in axes.items():
        if not values:
            raise ScenarioError(f"--vary {path}: no values")

    def build(point: dict[str, Any]) -> Scenario:
        try:
            return with_overrides(scenario, point, read_profile=read_yaml)
        except ScenarioError as exc:
            shown = ", ".join(f"{k}={_show(v)}" for k, v in point.items())
            raise ScenarioError(f"--vary {shown}: {_reason(exc)}") from None

    for path, values in axes.items():
        for value in values:
            build({path: value})
    points = []
    for combination in itertools.product(*axes.values()):
        point = dict(zip(axes, combination, strict=True))
        points.append((point, build(point)))
    return points


def run_sweep(
    scenario: Scenario,
    vary: Mapping[str, Iterable[Any]],
    jobs: int = 1,
    cluster: str | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run `scenario` at every point of the grid; rows in grid order.

    `jobs` > 1 runs points in that many local processes; `cluster` (a Dask scheduler
    address, e.g. tcp://10.0.0.5:8786) runs them there instead and ignores `jobs`. The
    cluster's workers need sigprof-lab installed at the same version, or their numbers
    would silently differ from a local run.
    """
    if jobs < 1:
        raise ScenarioError(f"--jobs must be at least 1, got {jobs}")
    points = grid_points(scenario, vary)
    scenarios = [s for _, s in points]

    def progress_bar() -> Any:
        from tqdm import tqdm

        return tqdm(
            total=len(points),
            desc=f"sweep {scenario.name}",
            unit="point",
            file=sys.stderr,
            disable=not progress,
            dynamic_ncols=True,
        )

    if cluster is not None:
        results = _run_on_cluster(cluster, scenarios, progress_bar)
    elif jobs == 1 or len(points) == 1:
        results = []
        with progress_bar() as bar:
            for point in scenarios:
                results.append(run_point(point))
                bar.update(1)
    else:
        results = _run_in_processes(scenarios, min(jobs, len(points)), progress_bar)
    rows = [{**point, **result} for (point, _), result in zip(points, results, strict=True)]
    return SweepResult(axes=list(vary), rows=rows, scenario=scenario)


def _run_in_processes(
    scenarios: list[Scenario], jobs: int, progress_bar: Callable[[], Any]
) -> list[dict[str, Any]]:
    # The platform's default start method, like any ProcessPoolExecutor: fork on Linux
    # before Python 3.14, which needs no `if __name__ == "__main__":` guard in a calling
    # script; spawn or forkserver elsewhere, which do. Under fork all workers start at
    # the first submit, before the progress bar exists, so no thread of ours is forked.
    results: list[dict[str, Any] | None] = [None] * len(scenarios)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_point, s): i for i, s in enumerate(scenarios)}
        try:
            with progress_bar() as bar:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in done:
                        # Completion order is arbitrary; the index keeps grid order.
                        results[futures[future]] = future.result()  # a worker's error
                        bar.update(1)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results  # type: ignore[return-value]


def _run_on_cluster(
    address: str, scenarios: list[Scenario], progress_bar: Callable[[], Any]
) -> list[dict[str, Any]]:
    # dask is an optional extra: imported here, only when a cluster is asked for.
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ScenarioError(CLUSTER_MISSING) from None
    problem = None
    try:
        client = Client(address, set_as_default=False, timeout=10)
    except (OSError, TimeoutError, ValueError) as exc:
        problem = f"--cluster {address}: cannot reach a Dask scheduler there ({exc})"
    if problem is not None:
        # The half-built Client sits in a reference cycle; collected at interpreter exit,
        # when its event loop is gone, its __del__ hangs for 20 s. Collect it now.
        gc.collect()
        raise ScenarioError(problem)
    with client:
        # pure=False: never let Dask reuse a result by hashing the arguments.
        futures = client.map(run_point, scenarios, pure=False)
        try:
            with progress_bar() as bar:
                for _future in as_completed(futures, loop=client.loop):
                    bar.update(1)
            # gather returns results in the order of `futures`: grid order.
            return client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise


# ---------------------------------------------------------------------------------------
# Helpers


def _show(value: Any) -> str:
    """A value as it would be typed on the command line."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return json.dumps(value, ensure_ascii=False)
