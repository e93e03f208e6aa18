"""Hypothesis strategies for valid scenarios and profBuf operation sequences.

Scenarios are kept small so that one simulation takes well under a second: 1-4 CPUs,
1-6 threads in 1-3 groups, programs of 1-3 steps, 0.05-0.4 s of virtual time. Every
runtime is drawn with every timer it allows (`RUNTIME_TIMERS`), external (cgo) threads
only where the runtime has them, and the buffer is sometimes tiny (64-4096 words) so
that overflow, overflow records and the lazy freeing of Go's profBuf are exercised.

`scenario_dicts` gives the raw mapping (as a YAML file would hold it), `scenarios` the
validated `Scenario`. `perf_scenarios` draws only `timer: perf` (a perf_event task-clock
event per thread, not checked at ticks) at rates up to 50 kHz, with the handler cost
(half the time near the period) and the delivery latency drawn too, so that dropped
pending signals are exercised.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from contract.runtimes import RUNTIMES
from contract.scenario import RUNTIME_TIMERS, Scenario, validate_scenario

KERNEL_HZ = (100, 250, 300, 1000)

# (runtime, timer) for every timer each runtime allows; None is "the runtime's default".
RUNTIME_TIMER_PAIRS: list[tuple[str, str | None]] = [
    (runtime, timer) for runtime, timers in RUNTIME_TIMERS.items() for timer in (None, *timers)
]

# Runtimes whose samples come from kernel CPU timers checked at ticks (not Windows'
# wall-clock suspend loop).
KERNEL_TIMER_PAIRS: list[tuple[str, str]] = [
    (runtime, timer)
    for runtime, timers in RUNTIME_TIMERS.items()
    for timer in timers
    if timer in ("process", "per-thread", "both")
]

# Runtimes with a perf_event task-clock timer (realprof; hypothetically Go 1.18+).
PERF_TIMER_PAIRS: list[tuple[str, str | None]] = [
    (runtime, "perf") for runtime, timers in RUNTIME_TIMERS.items() if "perf" in timers
]

# Runtimes that have threads they did not create (cgo): Go on Linux.
EXTERNAL_RUNTIMES = tuple(name for name, row in RUNTIMES.items() if row.external_threads)

FUNCTIONS = ("main.compute", "main.parse", "main.hash", "main.render")

rates = st.one_of(
    st.sampled_from([10, 97, 100, 250, 1000, 2000]),
    st.floats(min_value=10, max_value=2000, allow_nan=False, allow_infinity=False),
)
# A buffer that overflows (64-4096 words) or Go's default.
buffer_words = st.one_of(st.integers(min_value=64, max_value=4096), st.just(131072))


def _work(function: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "function": st.just(function),
            # At least 0.05 ms: far shorter steps make many tiny SimPy events per tick.
            "cpu_ms": st.floats(min_value=0.05, max_value=60, allow_nan=False),
            "depth": st.integers(min_value=1, max_value=80),
        }
    )


def steps(native_ok: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    function = st.sampled_from(FUNCTIONS)
    kinds = [
        function.flatmap(lambda f: _work(f).map(lambda w: {"run": w})),
        st.floats(min_value=0.05, max_value=40, allow_nan=False).map(lambda ms: {"sleep_ms": ms}),
    ]
    if native_ok:
        kinds.append(function.flatmap(lambda f: _work(f).map(lambda w: {"native": w})))
    return st.one_of(*kinds)


@st.composite
def machines(draw: st.DrawFn, max_cpus: int = 4) -> dict[str, Any]:
    cpus = draw(st.integers(min_value=1, max_value=max_cpus))
    machine: dict[str, Any] = {
        "cpus": cpus,
        "kernel_hz": draw(st.sampled_from(KERNEL_HZ)),
        "same_round_survival": draw(st.floats(min_value=0.0, max_value=1.0)),
    }
    if draw(st.booleans()):
        machine["tick_skew"] = draw(st.booleans())
    if draw(st.booleans()):
        machine["same_round_survival_after_switch"] = draw(st.floats(min_value=0.0, max_value=1.0))
    if draw(st.booleans()):
        machine["perf_delivery_us"] = draw(st.sampled_from([0, 1, 3, 15]))
    if draw(st.booleans()):
        machine["cpu_check_bias"] = draw(
            st.lists(
                st.floats(min_value=0.1, max_value=10, allow_nan=False),
                min_size=cpus,
                max_size=cpus,
            )
        )
    return machine


@st.composite
def profilers(draw: st.DrawFn, pairs: list[tuple[str, str | None]] | None = None) -> dict[str, Any]:
    runtime, timer = draw(st.sampled_from(pairs or RUNTIME_TIMER_PAIRS))
    profiler: dict[str, Any] = {
        "runtime": runtime,
        "rate_hz": draw(rates),
        "buffer_words": draw(buffer_words),
    }
    if timer is not None:
        profiler["timer"] = timer
    if draw(st.booleans()):
        profiler["reader_period_ms"] = draw(st.sampled_from([10, 50, 100, 250]))
    if draw(st.booleans()):
        profiler["max_depth"] = draw(st.integers(min_value=1, max_value=64))
    return profiler


@st.composite
def thread_groups(draw: st.DrawFn, runtime: str) -> list[dict[str, Any]]:
    """1-3 groups, 1-6 threads in all."""
    n_groups = draw(st.integers(min_value=1, max_value=3))
    budget = 6
    groups = []
    for index in range(n_groups):
        count = draw(st.integers(min_value=1, max_value=max(1, budget - (n_groups - index - 1))))
        budget -= count
        kind = "go"
        if runtime in EXTERNAL_RUNTIMES and draw(st.booleans()):
            kind = "external"
        groups.append(
            {
                "name": f"g{index}",
                "count": count,
                "kind": kind,
                "program": draw(st.lists(steps(), min_size=1, max_size=3)),
            }
        )
    return groups


@st.composite
def scenario_dicts(
    draw: st.DrawFn,
    pairs: list[tuple[str, str | None]] | None = None,
    min_duration_s: float = 0.05,
    max_duration_s: float = 0.4,
) -> dict[str, Any]:
    """A raw scenario mapping that `validate_scenario` accepts."""
    profiler = draw(profilers(pairs))
    return {
        "name": "generated",
        "seed": draw(st.integers(min_value=0, max_value=2**32 - 1)),
        "machine": draw(machines()),
        "profiler": profiler,
        "workload": {
            "duration_s": draw(
                st.floats(min_value=min_duration_s, max_value=max_duration_s, allow_nan=False)
            ),
            "threads": draw(thread_groups(profiler["runtime"])),
        },
    }


def scenarios(
    pairs: list[tuple[str, str | None]] | None = None,
) -> st.SearchStrategy[Scenario]:
    return scenario_dicts(pairs).map(lambda raw: validate_scenario(raw, "<generated>"))


@st.composite
def perf_scenarios(draw: st.DrawFn) -> Scenario:
    """`timer: perf` up to 50 kHz, for at most 0.1 s so that overflows stay few."""
    raw = draw(scenario_dicts(PERF_TIMER_PAIRS, max_duration_s=0.1))
    raw["profiler"]["rate_hz"] = draw(
        st.one_of(
            rates,
            st.sampled_from([5000, 20_000, 50_000]),
            st.floats(min_value=2000, max_value=50_000, allow_nan=False),
        )
    )
    if draw(st.booleans()):
        raw["profiler"]["handler_cost_us"] = draw(st.sampled_from([0, 0.5, 2, 20, 60]))
    else:
        # Around the period: the regime where the handler's cost is the limit.
        period_us = 1e6 / raw["profiler"]["rate_hz"]
        raw["profiler"]["handler_cost_us"] = period_us * draw(st.sampled_from([0.5, 1.5, 3]))
    return validate_scenario(raw, "<generated>")


@st.composite
def single_busy_thread_scenarios(draw: st.DrawFn) -> Scenario:
    """One thread that never leaves the CPU, on a kernel-timer runtime."""
    runtime, timer = draw(st.sampled_from(KERNEL_TIMER_PAIRS))
    raw = {
        "name": "busy",
        "seed": draw(st.integers(min_value=0, max_value=2**32 - 1)),
        "machine": draw(machines()),
        "profiler": {"runtime": runtime, "timer": timer, "rate_hz": draw(rates)},
        "workload": {
            "duration_s": draw(st.floats(min_value=0.05, max_value=0.4, allow_nan=False)),
            "threads": [
                {
                    "name": "spin",
                    "program": [{"run": {"function": "main.spin", "cpu_ms": 1000, "depth": 5}}],
                }
            ],
        },
    }
    return validate_scenario(raw, "<generated>")


# -- profBuf operations -------------------------------------------------------------------

# ("write", words, kind) or ("read",). "lost_extra" records are what Go's addExtra writes
# for the lostExtra count: they take space but are not samples.
profbuf_writes = st.tuples(
    st.just("write"),
    st.integers(min_value=4, max_value=80),
    st.sampled_from(["sample"] * 9 + ["lost_extra"]),
)
profbuf_ops = st.lists(
    st.one_of(profbuf_writes, profbuf_writes, profbuf_writes, st.just(("read",))),
    max_size=120,
)
profbuf_capacities = st.one_of(st.integers(min_value=16, max_value=400), st.none())
profbuf_tag_capacities = st.one_of(st.none(), st.integers(min_value=1, max_value=12))


# -- broken scenarios ---------------------------------------------------------------------

# Anything a YAML file could hold in place of a value.
junk_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


@st.composite
def mutated_scenario_dicts(draw: st.DrawFn) -> Any:
    """A valid scenario with 1-3 random edits: a value replaced, a key deleted or added."""
    raw: Any = draw(scenario_dicts())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(raw)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if action == "replace":
                raw = draw(junk_values)
            continue
        parent = raw
        for key in path[:-1]:
            parent = parent[key]
        if action == "replace":
            parent[path[-1]] = draw(junk_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(junk_values)
    return raw
