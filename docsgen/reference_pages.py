"""The generated reference pages: the scenario reference, the report reference, the
runtime table and the scenario library (`scenario.md`, `report.md`, `runtimes.md`,
`scenarios.md`).

* `scenario_reference`, built from `contract.scenario.json_schema()` (the field
  descriptions); `scenario.schema.json` itself is written by `python -m sim schema` and
  is not touched here.
* `report_reference`, built from `contract.report.Report` and `FUNNEL_LABELS`, with the
  words of `REPORT_MEANINGS`.
* `runtime_reference`, built from `contract.runtimes` (its rows, their notes and
  sources, the Go release lines), so the page cannot disagree with what the scenario
  schema accepts and the Go world maps a release to; its last section, what each Go
  release changed in the profiler (`PROFILER_CHANGES`), carries what the validation grid
  (`docs/data/grid.json`) measured on each release (`lab.grid_results.go_world_summary`).
* `library_reference`, each shipped scenario with the numbers of its own run.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from contract.fields import specs, type_label
from contract.report import FUNNEL_LABELS, Report, Share
from contract.runtimes import (
    GO_RELEASE_FORMS,
    GO_RELEASE_PATTERN,
    NEWEST_KNOWN_GO_RELEASE,
    OLDEST_GO_RELEASE,
    PROFILER_CHANGES,
    RUNTIMES,
    release_note,
    release_span,
)
from contract.scenario import json_schema
from contract.scenario_file import load_scenario
from docsgen.common import GENERATED_NOTE, SCENARIOS
from figures.style import machine_words
from lab.grid import GO_VERSIONS_COMMAND
from lab.grid_results import go_title, go_world_summary


def _cell(text: Any) -> str:
    """Text for one Markdown table cell: no pipes, no newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _literal(text: str) -> str:
    """Prose from a docstring or description: `*` stays a character outside code spans."""
    parts = text.split("`")  # even parts are prose, odd parts are inside a code span
    return "`".join(p.replace("*", "\\*") if i % 2 == 0 else p for i, p in enumerate(parts))


def _schema_type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return " or ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "pattern" in prop:
        return f"a {prop.get('type', 'string')} matching `{prop['pattern']}`"
    if "anyOf" in prop:
        return " or ".join(_schema_type(p, defs) for p in prop["anyOf"])
    if "oneOf" in prop:
        return " or ".join(_schema_type(p, defs) for p in prop["oneOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}), defs)}"
    return kind


def _constraints(prop: dict[str, Any]) -> str:
    words = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in prop:
            words.append(f"{sign} {prop[key]:g}")
    if "minLength" in prop:
        words.append(f"at least {prop['minLength']} character")
    if "minItems" in prop:
        words.append(f"at least {prop['minItems']} item")
    for option in prop.get("anyOf", []):
        inner = _constraints(option)
        if option.get("type") == "array" and "items" in option:
            inner = _constraints(option["items"])
            if inner:
                inner = f"each {inner}"
        if inner:
            words.append(inner)
    return ", ".join(words)


_SECTIONS = (
    # heading, $defs name (None: the top level), dotted prefix, intro
    ("Top level", None, "", "A scenario file is one YAML mapping with these keys."),
    (
        "machine",
        "Machine",
        "machine.",
        "The simulated machine and the kernel model's calibration parameters.",
    ),
    ("profiler", "Profiler", "profiler.", "Which profiler runs, and its knobs."),
    ("workload", "Workload", "workload.", "What the profiled program does."),
    (
        "workload.threads[]",
        "ThreadGroup",
        "workload.threads.N.",
        "A group of `count` identical threads repeating one program. `N` is the group's "
        "index in the list, as `--set` and `--vary` address it.",
    ),
    (
        "Program steps",
        "StepWork",
        "…run. / …native.",
        "A step is one mapping with exactly one key: `run` (CPU time in a named function; "
        "Python code in the Python runtimes, so it needs the GIL), `native` (CPU time in "
        "native code: C without the GIL, a cgo call in Go), `sleep_ms` (time off the "
        "CPU, a number of milliseconds) or `syscall_ms` (time off the CPU in a blocking "
        "call: only Windows' profileLoop tells it from a sleep). `run` and `native` take "
        "these fields.",
    ),
)


def scenario_reference() -> str:
    """The scenario reference page, from the JSON Schema the code exports."""
    schema = json_schema()
    defs = schema["$defs"]
    lines = [
        GENERATED_NOTE,
        "# Scenario files",
        "",
        "A scenario describes one experiment: the machine, the profiler and the program. "
        "The simulator (`python -m sim`) and the real sampler (`python -m realprof "
        "scenario`) read the same file. The schema is strict: an unknown key, a wrong type "
        "or a timer the runtime cannot use is rejected with one line that names the file "
        "and the field, and exit status 2.",
        "",
        "This page is generated from `contract.scenario.json_schema()`, the scenario "
        "classes' field descriptions, by `python -m docsgen docs/figures`. The same schema is "
        "published as [scenario.schema.json](scenario.schema.json) for editors "
        "(yaml-language-server: put `# yaml-language-server: "
        "$schema=../docs/reference/scenario.schema.json` on a scenario's first line, as "
        "`scenarios/quickstart.yaml` does).",
        "",
        "Override any field from the command line with a dotted path, validated like the "
        "file: `--set profiler.rate_hz=250`, `--set workload.threads.0.count=8`.",
        "",
    ]
    for heading, def_name, prefix, intro in _SECTIONS:
        block = schema if def_name is None else defs[def_name]
        required = set(block.get("required", []))
        lines += [f"## {heading}", "", intro, ""]
        lines += [
            "| field | type | default | allowed | description |",
            "|---|---|---|---|---|",
        ]
        for name, prop in block["properties"].items():
            if name in required:
                default = "*required*"
            elif "default" in prop:
                default = f"`{json.dumps(prop['default'], ensure_ascii=False)}`"
            else:
                default = "see section"
            lines.append(
                "| "
                + " | ".join(
                    _cell(part)
                    for part in (
                        f"`{prefix}{name}`",
                        _schema_type(prop, defs),
                        default,
                        _constraints(prop) or "",
                        _literal(prop.get("description", "")),
                    )
                )
                + " |"
            )
        lines.append("")
    lines += [
        "## An example",
        "",
        "The quickstart scenario, as shipped:",
        "",
        "```yaml",
        (SCENARIOS / "quickstart.yaml").read_text(encoding="utf-8").rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


# What each report field means: the field list comes from the code, the words from here.
# A field added to Report without a line here fails the generator (and the docs tests).
REPORT_MEANINGS: dict[str, str] = {
    "world": "`sim` (the simulator), `real` (realprof on this kernel) or `go` (the real Go "
    "runtime).",
    "scenario": "The scenario's `name`.",
    "runtime": "The profiler model that ran: `profiler.runtime`, or the model of the Go "
    "release it names (see the runtime table).",
    "timer": "The timer source actually used (`profiler.timer`, or the runtime's default).",
    "seed": "The seed of the run (null in worlds without one).",
    "machine": "The machine the run used: CPUs, HZ and the kernel model's parameters.",
    "rate_hz": "The requested rate, samples per CPU-second.",
    "wall_seconds": "Wall time of the profiled interval.",
    "cpu_seconds": "CPU time of the workload's threads, handler time on them included; the "
    "reader and the idle main thread are not counted.",
    "expected_samples": "`cpu_seconds × rate_hz`: what a perfect profiler would record.",
    "signals_generated": "Signals the timers raised (the simulator sees them all).",
    "timer_overruns": "Extra timer intervals folded into one delivered per-thread signal "
    "(`si_overrun`); Go does not weight samples by them, so they are missing samples. "
    "Always 0 for timer `perf`: a perf overflow has no overrun count.",
    "signals_dropped_pending": "Process-timer expiries, or perf overflows of a thread, lost "
    "because a SIGPROF was already pending (process-wide, or on that thread for `perf`; "
    "`legacy_queue` in `kernel/signal.c`).",
    "signals_pending_at_stop": "Generated, but still pending when the timers stopped.",
    "signals_delivered": "Handler entries at C level.",
    "signals_merged": "Delivered, but folded into a later handler run (CPython runs its "
    "Python-level handler once for all signals since its last run).",
    "signals_discarded": "Delivered, but ignored by the runtime: a duplicate "
    "(`validSIGPROF`) or profiling already off.",
    "signals_discarded_duplicate": "Discarded by `validSIGPROF` as a duplicate.",
    "signals_discarded_unswitched": "Discarded because the Go M that took it has not yet "
    "switched to the profiling rate: `sigprof` returns while `mp.profilehz == 0`, which "
    "an M sets only at its next `execute()`.",
    "signals_discarded_after_stop": "Discarded because profiling stopped before the "
    "handler ran (CPython's tripped deliveries).",
    "samples_recorded": "Samples written into the ring buffer.",
    "samples_lost_overflow": "Samples dropped because the buffer was full (Go's "
    "`lostProfileEvent`), and Go's `lostExtra` for threads it did not create.",
    "samples_in_profile": "Samples in the written profile, counted from the profile itself.",
    "capture_ratio": "`samples_in_profile / expected_samples`: the share of the CPU time the "
    "profile can see, unweighted by overruns.",
    "profile_cpu_percent": "`samples_in_profile / rate_hz / wall_seconds × 100`: the CPU "
    "the profile shows over the profiled interval.",
    "profile_seconds": "The written profile's duration (`duration_nanos`). In Go it is the "
    "writer's wall time: up to Go 1.25 it runs 100-200 ms past the stop (golang/go #63043). "
    "Null where the world does not know it.",
    "pprof_cpu_percent": "`samples_in_profile / rate_hz / profile_seconds × 100`: the "
    'percentage `go tool pprof` prints in "Total samples = … (N%)", lower than '
    "`profile_cpu_percent` for a short Go profile.",
    "functions": "Per leaf function: samples, share of the profile and true share of CPU "
    "time (see below).",
    "threads": "The same per thread.",
    "attribution_error_pp": "The largest gap between a share and its true share, in "
    "percentage points (null where the truth is unknown).",
    "notes": "Sentences: for a scenario that names a Go release, which model stands for it; "
    "then why samples were lost, stage by stage.",
}


def report_reference() -> str:
    """The report reference page, from `contract.report.Report` and `FUNNEL_LABELS`."""
    report_fields = specs(Report)
    missing = [name for name in report_fields if name not in REPORT_MEANINGS]
    stale = [name for name in REPORT_MEANINGS if name not in report_fields]
    if missing or stale:
        raise SystemExit(
            "docsgen.reference_pages: REPORT_MEANINGS is out of date "
            f"(missing {missing}, stale {stale})"
        )
    lines = [
        GENERATED_NOTE,
        "# The report",
        "",
        "Every world writes the same report, `report.json` (`python -m sim … --out DIR`, "
        "`python -m realprof scenario … --out DIR`), and prints it as a table. A field a "
        "world cannot observe is `null` (the real kernel does not tell a process how many "
        "signals it generated). This page is generated from `contract.report.Report` and "
        "`contract.report.FUNNEL_LABELS` by `python -m docsgen docs/figures`.",
        "",
        "## The funnel",
        "",
        "The text table and the funnel figure follow a sample from the timer to the profile, "
        "with these words:",
        "",
        "| field | row in the table and the figure |",
        "|---|---|",
    ]
    for name, label in FUNNEL_LABELS.items():
        lines.append(f"| `{name}` | {_cell(label)} |")
    lines += [
        "",
        "Each count is taken where it happens (the timer, the kernel model, the handler, "
        "the reader, the written profile), never derived from another, so conservation is "
        "a check that can fail. `python -m sim` prints `conservation: OK` when all hold:",
        "",
        "```text",
        "signals_generated = signals_delivered + signals_dropped_pending + signals_pending_at_stop",
        "signals_delivered = samples_recorded + samples_lost_overflow + signals_discarded "
        "+ signals_merged",
        "signals_discarded = signals_discarded_duplicate + signals_discarded_unswitched "
        "+ signals_discarded_after_stop",
        "```",
        "",
        "`timer_overruns` is not part of either identity: an overrun is an interval the "
        "kernel folded into a signal that *was* delivered.",
        "",
        "## All fields",
        "",
        "| field | type | meaning |",
        "|---|---|---|",
    ]
    for name, spec in report_fields.items():
        lines.append(f"| `{name}` | `{_cell(type_label(spec))}` | {_cell(REPORT_MEANINGS[name])} |")
    lines += [
        "",
        "## One row of `functions` or `threads`",
        "",
        "| field | type | meaning |",
        "|---|---|---|",
    ]
    for name, spec in specs(Share).items():
        meaning = spec.description or {
            "name": "Function (leaf frame) or thread name.",
            "samples": "Samples whose leaf is this function, or taken on this thread.",
            "true_cpu_seconds": "CPU time it really received (null where unknown).",
        }.get(name, "")
        lines.append(f"| `{name}` | `{_cell(type_label(spec))}` | {_cell(meaning)} |")
    lines += [
        "",
        "The text table prints `error` as `share − true share` in percentage points; "
        "`attribution_error_pp` is the largest absolute value over functions and threads.",
        "",
    ]
    return "\n".join(lines)


def _links(sources: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"[{_cell(label)}]({url})" for label, url in sources) or "—"


def runtime_reference(grid: dict[str, Any] | None = None) -> str:
    """The runtime table page: each Go release line and each runtime, from `contract.runtimes`,
    and what each release changed, with what the grid (`grid`, grid.json) measured."""
    oldest = f"{OLDEST_GO_RELEASE[0]}.{OLDEST_GO_RELEASE[1]}"
    newest = f"{NEWEST_KNOWN_GO_RELEASE[0]}.{NEWEST_KNOWN_GO_RELEASE[1]}"
    lines = [
        GENERATED_NOTE,
        "# The runtime table",
        "",
        "`profiler.runtime` names a model of a profiler, or the Go release you run: "
        f"{GO_RELEASE_FORMS}. A release runs the model of its era, the scenario keeps what "
        "you wrote, and the report says which model stood for it in one note. This page "
        "is generated from `contract/runtimes.py`, the one table the scenario schema, the "
        "simulator and the Go world (`lab.go_toolchain.model_runtime`) read, by "
        "`python -m docsgen docs/figures`.",
        "",
        "## Go releases and their models",
        "",
        "| Go releases | model | what it does | sources |",
        "|---|---|---|---|",
    ]
    go_lines = sorted(
        (row for row in RUNTIMES.values() if row.go_releases is not None),
        key=lambda row: row.go_releases[0],  # type: ignore[index]
    )
    for row in go_lines:
        lines.append(
            f"| {release_span(row)} | `{row.name}` | {_cell(row.go_note)} | {_links(row.sources)} |"
        )
    example = "go1.21"
    lines += [
        "",
        f"Releases before Go {oldest} are refused. A release after Go {newest}, the newest "
        "this table was checked against, runs the newest line's model and the note says "
        "so. The schema accepts a release by the pattern "
        f"`{GO_RELEASE_PATTERN}` beside the models' names. The reader's loop has a history "
        "of its own, with its sources, in "
        "[profBuf and the reader](../walkthrough/07-profbuf-and-reader.md#the-reader): "
        "`go1.17` and `go1.18` read the buffer as Go 1.9 to 1.25 do, every "
        "`profiler.reader_period_ms`; Go 1.5 to 1.8 kept samples in a hash table instead, "
        "which no model simulates.",
        "",
        f"For example `python -m sim go118-many-threads --set profiler.runtime={example}` "
        "runs the scenario and its report says:",
        "",
        "```text",
        f"note: {release_note(example)}",
        "```",
        "",
        "## Every runtime",
        "",
        "| runtime | timers (default first) | what it is | sources |",
        "|---|---|---|---|",
    ]
    for row in RUNTIMES.values():
        what = (
            f"Go {release_span(row)} on Linux: {row.go_note}"
            if row.go_releases is not None
            else row.summary
        )
        timers = ", ".join(f"`{t}`" for t in row.timers)
        lines.append(
            f"| `{row.name}` | {timers} | {_cell(_literal(what))} | {_links(row.sources)} |"
        )
    lines += [
        "",
        "A new runtime or Go release is one row of `contract/runtimes.py`; CONTRIBUTING.md "
        "says what else to touch.",
        "",
        *_changes_by_release(grid or {"cells": []}),
    ]
    return "\n".join(lines)


def _changes_by_release(grid: dict[str, Any]) -> list[str]:
    """The section "What changed in the profiler, release by release", with what the
    validation grid (`docs/data/grid.json`) measured on each release."""
    lines = [
        "## What changed in the profiler, release by release",
        "",
        "Go on Linux. Each change was read in the source its links name; the last "
        "column is what the validation grid measured on that release: the median capture "
        "ratio of its Go cells (busy goroutines, per-thread timers) and how long the "
        "written profile ran past the stop, beside what the release's model predicts. "
        "The second number is the reader's wake rule: a reader that sleeps 100 ms between "
        "reads sees the end 100 to 200 ms late; one the writer wakes sees it at once. "
        f"Command: `{GO_VERSIONS_COMMAND}` (chapter 11).",
        "",
        "| Go | what changed | sources | measured (model) |",
        "|---|---|---|---|",
    ]
    for change in PROFILER_CHANGES:
        summary = go_world_summary(grid, change.world) if change.world else None
        if change.world is None:
            measured = "not on Linux" if "not on Linux" in change.change else "—"
        elif summary is None:
            measured = f"{change.world} is not in docs/data/grid.json yet"
        else:
            measured = (
                f"{go_title(grid, change.world)}: capture {summary['capture']:.3f} "
                f"({summary['model_capture']:.3f}, {summary['twin'][4:]}) over "
                f"{summary['cells']} cells"
            )
            if summary["overhang_ms"] is not None and summary["model_overhang_ms"] is not None:
                measured += (
                    f"; the profile ends {round(summary['overhang_ms'])} ms after the stop "
                    f"({round(summary['model_overhang_ms'])} ms)"
                )
        lines.append(
            f"| {change.release} | {_cell(change.change)} | {_links(change.sources)} | {measured} |"
        )
    return [*lines, ""]


def library_reference(reports: dict[str, Report]) -> str:
    """The scenario library page: each shipped scenario, what it teaches, what it gives.

    Every number on it comes from `python -m sim scenarios/<name>.yaml`, run here (or
    reused from the funnel figure of the same full run).
    """
    from sim.model import simulate

    lines = [
        GENERATED_NOTE,
        "# The scenario library",
        "",
        "Each file in `scenarios/` teaches one mechanism. The simulator's own seeds make "
        "every number below reproducible: run the command next to it and you get the same "
        "output. This page is generated by `python -m docsgen docs/figures`, which ran "
        "each scenario.",
        "",
        "| scenario | runtime, timer | machine | capture ratio | profile shows | used | "
        "largest attribution error |",
        "|---|---|---|---|---|---|---|",
    ]
    details = []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = load_scenario(path)
        report = reports.get(path.stem) or simulate(scenario).report
        used = report.cpu_seconds / report.wall_seconds * 100 if report.wall_seconds else 0.0
        error = (
            f"{report.attribution_error_pp:.1f} pp"
            if report.attribution_error_pp is not None
            else "—"
        )
        lines.append(
            f"| [`{path.stem}`](#{path.stem}) | {report.runtime}, {report.timer} | "
            f"{machine_words(report.machine)} | {report.capture_ratio:.3f} | "
            f"{report.profile_cpu_percent:.1f}% | {used:.1f}% | {error} |"
        )
        p = scenario.profiler
        groups = ", ".join(
            f"{g.count} × {g.name}" + (" (external)" if g.kind == "external" else "")
            for g in scenario.workload.threads
        )
        details += [
            f"## {path.stem}",
            "",
            " ".join(scenario.description.split()),
            "",
            f"- **Profiler:** {p.runtime}, timer {p.effective_timer}, {p.rate_hz:g} Hz, "
            f"buffer {p.buffer_words:,} words, reader every {p.reader_period_ms:g} ms.",
            f"- **Workload:** {groups} threads for {scenario.workload.duration_s:g} s, on "
            f"{machine_words(dataclasses.asdict(scenario.machine))}.",
            f"- **`python -m sim scenarios/{path.stem}.yaml`** → "
            f"{report.samples_in_profile:,} samples of {report.expected_samples:,.1f} "
            f"expected (capture ratio {report.capture_ratio:.3f}); the profile shows "
            f"{report.profile_cpu_percent:.1f}% CPU where the workload used {used:.1f}%.",
        ]
        if report.notes:
            details.append(
                "- **Notes from the run:** " + "; ".join(_cell(n) for n in report.notes) + "."
            )
        details.append("")
    return "\n".join([*lines, "", *details])
