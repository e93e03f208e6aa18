"""grid: the validation grid, the model held against every real world, cell by cell.

`python -m realprof grid [--out docs/data] [--repeat 3] [--worlds sim,real,go]
[--go-versions 1.19,1.23,1.26,1.27] [--go-emulate go1.17] [--timers process,per-thread,perf]
[--merge]`, or
`python -m realprof grid --resimulate docs/data/grid.json` to recompute only the
predictions after a change of the model.

Cells: busy threads {1, 2, 4} × rate {100, 200, 250, 500, 1000} Hz × timer {process,
per-thread}, and × rate {100, 250, 1000, 2000, 5000} Hz for the perf_event timer (which
the tick does not cap), once with busy native (GIL-free) threads and once with busy Python
threads; and busy Python threads on a free-threaded CPython (`python-ft`, process and
per-thread timers), which run for real under python3.14t (`lab.interpreters.lab_python`;
without one they run in the simulator only, and the grid's notes say how to get one).
`--timers` runs some timers only; `--merge` puts the cells run into the existing grid.json
instead of replacing it.
Each cell runs in the simulator (the realprof model on this machine's calibrated profile,
`machines/this-machine.yaml`) and for real under realprof (median of `--repeat` runs); the
per-thread cells with native threads also run under the real Go runtime, once per Go
release of `--go-versions` (default: the `go` on PATH, where Go is installed), each
against the model of its release (`lab.go_variant.GoVariant`: Go 1.19 and 1.23 arm
per-thread timers beside the process timer, the go1.18 model; 1.26 and 1.27 add the
reader woken at half full, the go1.26 model). With `--go-emulate go1.17` the native
process-timer cells also run each of those releases with `timer_create` denied
(`lab.go_seccomp`: the process timer alone), against the go1.17 model. A cell keys each
Go run by its release and emulation (`go1.23`, `go1.19-as-go1.17`) and each twin by its
model (`sim-go1.18`, `sim-go1.17`); `go_versions` in grid.json names the exact version
each ran (go1.23.5). `--worlds go` runs only the cells Go runs.

None of these cells is used by `realprof calibrate` (it measures at 150, 400 and 750
Hz), so the grid is a held-out test of the calibrated model. Real runs are interleaved:
pass k runs every cell once, so a drift of the host (on a VM, the process timer's
same-round survival changes over minutes) affects all cells alike. Each pass also
repeats calibration's survival runs, each experiment twice, spread evenly among the
pass's cells so that they sample the minutes the cells ran in, and the simulated worlds
run last with this session's values: p, the two-thread runs' median, and p after a
switch, fitted to the four-thread runs' captures (`lab.survival_fit.survival_medians`;
the probe's from its own runs, through its own model); the other calibrated
values (CPU check bias, handler cost) come from the machine profile. Where Go runs cells
with no CPU to spare (as many busy goroutines as CPUs, or more), each pass also traces
the Go runtime's own wake-ups between ticks beside the first release (`lab.go_wakers`,
root only, at 150 Hz: no cell's rate), and the Go twins replay them
(`workload.runtime_wakers`, `sim.gowakers`), seed i the i-th pass's (`go_runtime_wakers`
in grid.json); without tracefs the twins run without them and the notes say why. The
survival runs, the medians and the model's machine are stored with the cells in
`grid.json`; `plot_grid` redraws the figure from that file alone, so the committed
figure is reproducible from the committed data.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract.report import Report
from contract.scenario import Scenario
from lab import calibrate, cprobe
from lab.go_seccomp import Emulation
from lab.go_toolchain import GoWorldError, find_toolchain
from lab.go_variant import GoVariant, path_variant
from lab.go_wakers import WAKERS_RATE_HZ, measure_wakers, tracefs_ready
from lab.go_world import run_go_world
from lab.grid_cells import FREE_THREADED_WORKLOAD, TIMERS, as_cell, cell_key, cell_scenario, cells
from lab.grid_results import median_of
from lab.interpreters import install_command, lab_python, report_under
from lab.machine import cpus_wanted, got_its_cpus, machine_facts, machine_here, usable_cpus
from lab.survival_fit import SE_KEY, model_values, survival_medians
from lab.workload import run_scenario
from sim.model import simulate


def _summary(report: Report) -> dict[str, Any]:
    return {
        "capture_ratio": report.capture_ratio,
        "samples_in_profile": report.samples_in_profile,
        "expected_samples": report.expected_samples,
        "cpu_seconds": report.cpu_seconds,
        "timer_overruns": report.timer_overruns,
        "attribution_error_pp": report.attribution_error_pp,
        "thread_shares": {row.name: row.share for row in report.threads},
        "thread_true_shares": {row.name: row.true_share for row in report.threads},
        # How long the written profile runs past the profiled interval: the time the
        # reader takes to see the end (Go 1.18-1.25 sleep 100 ms between reads: 100-200
        # ms; Go 1.26 wakes the reader at the end: about 0; golang/go #63043).
        "profile_overhang_s": (
            report.profile_seconds - report.wall_seconds
            if report.profile_seconds is not None
            else None
        ),
    }


# The grid on every Go release the project measures (the docs cite it).
# The Go release grid: every release's Go cells and their twins, the go1.17 emulation
# beside them, in one sitting; committed as docs/data/go-releases/grid.json.
GO_RELEASES_OUT = "docs/data/go-releases"
GO_VERSIONS_COMMAND = (
    "python -m realprof grid --worlds sim,go --go-versions 1.19,1.23,1.26,1.27 "
    f"--go-emulate go1.17 --repeat 3 --out {GO_RELEASES_OUT}"
)
BUSY_ATTEMPTS = 3
# Each survival experiment runs twice a pass, at spread positions: p drifts within a pass
# on a VM, and runs bunched at a pass's start sampled only its first minute.
SURVIVAL_SLOTS_PER_EXPERIMENT = 2
# The simulated worlds and the runtime each one models; a Go twin is "sim-" and its
# model's name ("sim-go1.26", `GoVariant.twin`).
SIMULATED_RUNTIMES = {"sim": "realprof", "sim-cprobe": "cprobe"}


def simulated_runtime(world: str) -> str | None:
    """The runtime a cell's world simulates, or None for a real world."""
    if world in SIMULATED_RUNTIMES:
        return SIMULATED_RUNTIMES[world]
    if world.startswith("sim-go"):
        return world.removeprefix("sim-")
    return None


def default_go_variants() -> tuple[GoVariant, ...]:
    """The `go` on PATH as the one variant, or none without Go."""
    try:
        return (path_variant(),)
    except GoWorldError:
        return ()


def _wakers_summary(counts: dict[str, Any]) -> dict[str, Any]:
    """What grid.json keeps of a wakers run beside the wakers: the counts without the
    per-thread distributions."""
    keep = ("capture_ratio", "go_version", "busy_cpu_s", "runtime_thread_wakes_per_s")
    keep += ("busy_preempted_at_tick_per_s", "busy_preempted_between_ticks_per_s")
    return {k: counts[k] for k in (*keep, "between_ticks_by") if k in counts}


def _realprof_run(scenario: Scenario) -> dict[str, Any]:
    return _summary(run_scenario(scenario).report)


def _go_run(scenario: Scenario, variant: GoVariant) -> dict[str, Any]:
    report = run_go_world(scenario, variant=variant)[0]
    return _summary(report) | {"go_version": report.machine.get("go_version")}


def _realprof_run_under(python: Path, scenario: Scenario) -> dict[str, Any]:
    """A free-threaded cell, run by the free-threaded interpreter (`lab.interpreters`)."""
    return _summary(report_under(python, scenario))


def _real_run(
    measure: Callable[[], dict[str, Any]], cell: tuple, duration_s: float
) -> dict[str, Any]:
    """One real run (`measure()`) that got the CPUs it asked for, or the last try, flagged.

    Busy native threads, and Python threads without the GIL, should get min(threads,
    CPUs) CPUs for the whole run (Python threads with the GIL, one CPU). If another
    process takes a CPU, two threads may take turns on one CPU, and the cell measures a
    different machine (no same-round collisions, for one). Such a run is retried.
    """
    workload, threads, _, _ = cell
    wanted = cpus_wanted(workload, threads)
    summary: dict[str, Any] = {}
    for _ in range(BUSY_ATTEMPTS):
        summary = measure()
        summary["machine_busy"] = not got_its_cpus(summary["cpu_seconds"], wanted, duration_s)
        if not summary["machine_busy"]:
            break
    return summary


def _simulated(
    cell: tuple[str, int, int, str],
    world: str,
    duration_s: float,
    machine: dict,
    repeat: int,
    go_wakers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A cell's simulated world ("sim": the realprof model, "sim-go1.18": the go1.18 model,
    "sim-cprobe": the C probe's model), seeds 1..N. A Go twin replays the Go runtime's
    wakers measured in the session (`go_runtime_wakers` of grid.json), seed i those of
    the i-th measurement for its number of busy threads."""
    runtime = simulated_runtime(world)
    assert runtime is not None, world
    measured = (go_wakers or {}).get("by_threads", {}).get(str(cell[1]), [])
    runs = []
    for i in range(repeat):
        wakers = measured[i % len(measured)] if measured and world.startswith("sim-go") else None
        scenario = cell_scenario(*cell, duration_s, machine, runtime, wakers)
        runs.append(_summary(simulate(dataclasses.replace(scenario, seed=1 + i)).report))
    entry = median_of(runs)
    if cell[3] == "process":
        # How far the capture follows p: the grid's tolerance for the cell comes from p's
        # run-to-run scatter through this slope (lab.grid_results.tolerance).
        wakers = measured[0] if measured and world.startswith("sim-go") else None
        at = []
        for p in (0.0, 1.0):
            on = machine | {"same_round_survival": p, "same_round_survival_after_switch": p}
            at.append(simulate(cell_scenario(*cell, duration_s, on, runtime, wakers)).report)
        entry["capture_per_p"] = round(at[1].capture_ratio - at[0].capture_ratio, 4)
    return entry


def survival_slots(pass_index: int, with_cprobe: bool) -> list[list[tuple[str, Any]]]:
    """One pass's survival runs, in slots of one experiment each (realprof's run, then the
    probe's beside it): every experiment SURVIVAL_SLOTS_PER_EXPERIMENT times, the order
    rotated by the pass so each experiment samples different minutes of the pass."""
    experiments = calibrate.survival_experiments() * SURVIVAL_SLOTS_PER_EXPERIMENT
    shift = pass_index % len(experiments)
    experiments = experiments[shift:] + experiments[:shift]
    worlds = ("calibrate", "cprobe-calibrate") if with_cprobe else ("calibrate",)
    return [[(world, exp) for world in worlds] for exp in experiments]


def spread(jobs: list[Any], slots: list[list[Any]]) -> list[Any]:
    """`jobs` with the slots' jobs set in at even intervals, the first half an interval in.

    p drifts over minutes on a VM, so survival runs bunched at a pass's start measure
    the p of its first minute, not of the minutes its cells ran in."""
    before: dict[int, list[Any]] = {}  # job index -> the slots' jobs that go before it
    for i, slot in enumerate(slots):
        before.setdefault(int((i + 0.5) * len(jobs) / len(slots) + 0.5), []).extend(slot)
    out: list[Any] = []
    for index, job in enumerate(jobs):
        out += before.pop(index, [])
        out.append(job)
    return out + before.pop(len(jobs), [])


def wakers_threads(grid: list[tuple[str, int, int, str]], variants) -> list[int]:
    """The busy-thread counts whose Go cells need the runtime's wakers measured: those
    with no idle CPU for them (with one busy thread on two CPUs they take the idle one)."""
    cpus = usable_cpus()
    return sorted(
        {cell[1] for cell in grid if cell[1] >= cpus and any(v.runs_in(cell) for v in variants)}
    )


def world_machine(machine: dict[str, Any], world: str, cprobe_medians: dict[str, Any]) -> dict:
    """The machine a simulated world runs on: the C probe's model takes the same-round
    survival its own survival runs gave in the session (p counted, p after a switch
    fitted through the probe's model), realprof's model realprof's; a value the probe's
    runs could not give stays realprof's.
    p belongs to the process as much as to the machine: realprof's reader wakes between
    ticks and moves the checks (`sim.reader`), the probe has no reader."""
    if world != "sim-cprobe":
        return machine
    return machine | model_values(cprobe_medians)


def run_grid(
    worlds: tuple[str, ...] = ("sim", "real", "go"),
    repeat: int = 3,
    duration_s: float = 2.0,
    quick: bool = False,
    progress: bool = True,
    timers: tuple[str, ...] = TIMERS,
    only: tuple[str, ...] = (),
    with_cprobe: bool = False,
    go: tuple[GoVariant, ...] | None = None,
    go_emulate: Emulation | None = None,
) -> dict[str, Any]:
    """The grid's data; `go`: the Go releases to run (None: the `go` on PATH, if any);
    `go_emulate`: also run each of them under that emulation in the cells it runs."""
    from tqdm import tqdm

    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = round(os.getloadavg()[0], 2)
    base = cell_scenario("native", 1, 100, "process", duration_s, {})
    machine, machine_note = machine_here(base, None)
    releases = (default_go_variants() if go is None else go) if "go" in worlds else ()
    variants = (*releases, *(r.emulated(go_emulate) for r in releases if go_emulate))
    go_versions = {v.world: find_toolchain(v.release)[1] for v in variants}
    grid = cells(quick, timers)
    if only:
        grid = [cell for cell in grid if cell_key(*cell) in only]
    if "sim" not in worlds and "real" not in worlds:
        grid = [cell for cell in grid if any(v.runs_in(cell) for v in variants)]
    # The free-threaded cells run for real under python3.14t, where there is one.
    ft_cells = [cell for cell in grid if cell[0] == FREE_THREADED_WORKLOAD]
    ft_python = lab_python() if ft_cells and "real" in worlds else None
    ft_note = (
        [
            f"the {len(ft_cells)} free-threaded cells ran in the simulator only: no "
            f"free-threaded Python here; to measure them: {install_command()}"
        ]
        if ft_cells and "real" in worlds and ft_python is None
        else []
    )
    # Real worlds drift (the process timer's same-round survival changes over minutes on
    # a VM), so their repeats are interleaved: pass k runs every cell once, and a drift
    # affects all cells alike instead of whichever cell ran at the wrong minute. Each pass
    # also repeats calibration's survival runs (400 and 750 Hz: not grid cells), spread
    # among its cells (`survival_slots`, `spread`), and the simulated worlds,
    # deterministic per seed, run last on this session's medians.
    hz = int(machine.get("kernel_hz") or 250)
    # The emulated Go runs use the process timer alone, so their twins need this
    # session's p as much as realprof's process-timer cells do.
    calibrating = (
        ("real" in worlds or any(v.emulate for v in variants))
        and (machine.get("cpus") or 0) >= 2
        and (any(cell[3] == "process" for cell in grid))
    )
    # Go twins replay the Go runtime's wake-ups between ticks (sim.gowakers), traced in
    # this session beside the Go runs (lab.go_wakers, at a rate that is no cell's).
    wakers_for = wakers_threads(grid, releases) if releases else []
    wakers_why = tracefs_ready() if wakers_for else None
    if wakers_why:
        wakers_for = []
    real_jobs: list[tuple[str, Any]] = []
    for pass_index in range(repeat):
        real_jobs += [("wakers", n) for n in wakers_for]
        cell_jobs: list[tuple[str, Any]] = []
        for cell in grid:
            if "real" in worlds and (cell[0] != FREE_THREADED_WORKLOAD or ft_python):
                cell_jobs.append(("real", cell))
            if with_cprobe and cprobe.probes(cell):
                cell_jobs.append(("cprobe", cell))
            cell_jobs += [(v.world, cell) for v in variants if v.runs_in(cell)]
        slots = survival_slots(pass_index, with_cprobe) if calibrating else []
        real_jobs += spread(cell_jobs, slots)
    sim_jobs = []
    for cell in grid:
        if "sim" in worlds or "real" in worlds:
            sim_jobs.append(("sim", cell))
        twins = dict.fromkeys(v.twin for v in variants if v.runs_in(cell))
        sim_jobs += [(twin, cell) for twin in twins]
        if with_cprobe and cprobe.probes(cell):
            sim_jobs.append(("sim-cprobe", cell))
    results: dict[str, dict[str, Any]] = {
        cell_key(*cell): {
            "workload": cell[0],
            "threads": cell[1],
            "rate_hz": cell[2],
            "timer": cell[3],
        }
        for cell in grid
    }
    real_runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    survival_runs: list[dict[str, Any]] = []
    go_wakers: dict[str, Any] = {
        "release": releases[0].world if wakers_for else None,
        "rate_hz": WAKERS_RATE_HZ,
        "by_threads": {},
        "runs": [],
    }
    cprobe_survival_runs: list[dict[str, Any]] = []
    with tqdm(
        total=len(sim_jobs) + len(real_jobs),
        desc="grid",
        unit="run",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for world, job in real_jobs:
            if world == "wakers":
                bar.set_postfix_str(f"Go runtime wakers, {job} threads")
                wakers, counts = measure_wakers(job, releases[0], duration_s)
                go_wakers["by_threads"].setdefault(str(job), []).append(wakers)
                go_wakers["runs"].append({"threads": job} | _wakers_summary(counts))
            elif world == "calibrate":
                rate, threads_n = job
                bar.set_postfix_str(f"calibrate {rate} Hz, {threads_n} threads")
                survival_runs.append(calibrate.survival_run(rate, threads_n, duration_s, hz))
            elif world == "cprobe-calibrate":
                rate, threads_n = job
                bar.set_postfix_str(f"cprobe calibrate {rate} Hz, {threads_n} threads")
                cprobe_survival_runs.append(cprobe.probe_run(threads_n, rate, duration_s, hz))
            elif world == "real":
                bar.set_postfix_str(f"real {cell_key(*job)}")
                scenario = cell_scenario(*job, duration_s, machine)
                measure = (
                    functools.partial(_realprof_run_under, ft_python, scenario)
                    if job[0] == FREE_THREADED_WORKLOAD and ft_python is not None
                    else functools.partial(_realprof_run, scenario)
                )
                real_runs.setdefault((cell_key(*job), world), []).append(
                    _real_run(measure, job, duration_s)
                )
            elif world == "cprobe":
                bar.set_postfix_str(f"cprobe {cell_key(*job)}")
                _, threads_n, rate, _ = job
                real_runs.setdefault((cell_key(*job), world), []).append(
                    _real_run(
                        functools.partial(cprobe.probe_run, threads_n, rate, duration_s, hz),
                        job,
                        duration_s,
                    )
                )
            else:
                bar.set_postfix_str(f"{world} {cell_key(*job)}")
                variant = next(v for v in variants if v.world == world)
                scenario = cell_scenario(*job, duration_s, machine, variant.model)
                real_runs.setdefault((cell_key(*job), world), []).append(
                    _real_run(functools.partial(_go_run, scenario, variant), job, duration_s)
                )
            bar.update(1)
        session: dict[str, Any] | None = None
        if survival_runs:
            medians = survival_medians(survival_runs, machine, duration_s)
            session = {"runs": survival_runs} | medians
            machine = machine | model_values(medians)
        cprobe_medians = (
            survival_medians(cprobe_survival_runs, machine, duration_s, "cprobe")
            if cprobe_survival_runs
            else {}
        )
        for world, cell in sim_jobs:
            bar.set_postfix_str(f"{world} {cell_key(*cell)}")
            on = world_machine(machine, world, cprobe_medians)
            results[cell_key(*cell)][world] = _simulated(
                cell, world, duration_s, on, repeat, go_wakers
            )
            bar.update(1)
    for (key, world), runs in real_runs.items():
        results[key][world] = median_of(runs)
    command = "python -m realprof grid" + (" --quick" if quick else "")
    if tuple(timers) != TIMERS:
        command += " --timers " + ",".join(timers)
    if only:
        command += " --cells " + ",".join(only)
    if with_cprobe:
        command += " --cprobe"
    if tuple(worlds) != ("sim", "real", "go"):
        command += " --worlds " + ",".join(worlds)
    if go is not None and releases:
        command += " --go-versions " + ",".join(v.release for v in releases)
    if go_emulate and releases:
        command += f" --go-emulate {go_emulate.name}"
    return {
        "command": command,
        # When it ran, and how busy the machine was as it began (1-minute load average).
        "started": started,
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_before,
        "machine": machine_facts(),
        "model_machine": machine,
        "notes": [machine_note]
        + ft_note
        + (
            [f"the Go twins ran without the Go runtime's wakers (sim.gowakers): {wakers_why}"]
            if wakers_why
            else []
        )
        + (
            [
                "same-round survival measured in this session, spread through the grid's passes: "
                f"p = {session['same_round_survival']} (counted, median of the two-thread "
                f"runs), after a context switch {session['same_round_survival_after_switch']} "
                f"(fitted to the four-thread runs' captures), from {len(session['runs'])} "
                f"runs at {', '.join(str(r) for r in calibrate.SURVIVAL_RATES_HZ)} Hz"
            ]
            if session
            else []
        ),
        "session_calibration": session,
        **({"go_runtime_wakers": go_wakers} if go_wakers["by_threads"] else {}),
        **(
            {"cprobe_calibration": {"runs": cprobe_survival_runs} | cprobe_medians}
            if cprobe_survival_runs
            else {}
        ),
        "repeat": repeat,
        "duration_s": duration_s,
        # Each Go world's release and the version that ran it, the model of its twin, and
        # the emulation it ran under, if any.
        "go_versions": {
            v.world: {"version": go_versions[v.world], "model": v.model}
            | ({"emulate": v.emulate.name} if v.emulate else {})
            for v in variants
        },
        "cells": [results[cell_key(*cell)] for cell in grid],
    }


def _refit_after_switch(
    calibration: dict[str, Any], machine: dict[str, Any], duration_s: float, runtime: str
) -> dict[str, float]:
    """Fits a calibration's p after a switch (and its error) again from its stored survival
    runs, in place; returns the model's values the runs could give (a value they cannot
    give stays as stored)."""
    fitted = survival_medians(calibration["runs"], machine, duration_s, runtime)
    kept = {k: v for k, v in fitted.items() if v is not None}
    calibration.update(kept)
    if "same_round_survival_after_switch" in kept and fitted[SE_KEY] is None:
        calibration.pop(SE_KEY, None)  # a new value without an error: not the old one's
    return model_values(kept)


def resimulate(data: dict[str, Any], progress: bool = True) -> dict[str, Any]:
    """Run the simulated worlds of stored grid data again, on the machine stored with it.

    For a change of the model: the real measurements, and the survival runs with the p
    they counted, stay as they were measured; p after a switch, which is fitted through
    the model, is fitted again from those runs (`lab.survival_fit.survival_medians`), and
    the predictions are recomputed (same seeds, same repeat).
    """
    from tqdm import tqdm

    # p after a switch is fitted through the model, so a changed model fits it again from
    # the stored survival runs (their captures); p itself is counted and stays.
    duration_s = data["duration_s"]
    session = data.get("session_calibration") or {}
    probe = data.get("cprobe_calibration") or {}
    to_refit = [
        (calibration, runtime, label)
        for calibration, runtime, label in [
            (session, "realprof", "realprof"),
            (probe, "cprobe", "C probe"),
        ]
        if calibration.get("runs")
    ]
    jobs = [(cell, world) for cell in data["cells"] for world in cell if simulated_runtime(world)]
    refits = []
    with tqdm(
        total=len(to_refit) + len(jobs),
        desc="resimulate",
        unit="step",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for calibration, runtime, label in to_refit:
            bar.set_postfix_str(f"fitting {runtime}'s p after a switch")
            kept = _refit_after_switch(calibration, data["model_machine"], duration_s, runtime)
            if runtime == "realprof":
                data["model_machine"] |= kept
            refits.append(f"{label} {kept.get('same_round_survival_after_switch')}")
            bar.update(1)
        for cell, world in jobs:
            bar.set_postfix_str(f"{cell_key(*as_cell(cell))} {world}")
            on = world_machine(data["model_machine"], world, probe)
            cell[world] = _simulated(
                as_cell(cell),
                world,
                data["duration_s"],
                on,
                data["repeat"],
                data.get("go_runtime_wakers"),
            )
            bar.update(1)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [n for n in data.get("notes", []) if not n.startswith("predictions recomputed")]
    refitted = f"; p after a switch fitted again: {', '.join(refits)}" if refits else ""
    data["notes"] = [
        *notes,
        f"predictions recomputed on the stored machine by `--resimulate` ({when}); "
        f"the real runs are as measured{refitted}",
    ]
    return data
