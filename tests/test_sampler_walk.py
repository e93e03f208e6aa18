"""The handler's stack walk never trusts a frame pointer it has not checked.

CPython 3.11 and 3.12 publish a new ``cframe`` a few instructions before they set its
``current_frame``, so a SIGPROF that lands there finds a stale pointer as the newest
frame (the entry window); a frame is also popped a moment before ``current_frame`` moves
on. The C module's ``walk_selftest(kind, in_place)`` recreates that state on the calling
thread with a chosen kind of garbage, in a new cframe (the entry window) or in place of
the current frame, and sends SIGPROF to itself (see "Trusting the frame chain" and "The
entry window" in _sampler.c). In the entry window the walk falls back on the caller's
chain, which is what the thread runs there; anything else that fails is dropped.

Each case runs in a child process, so a walk that dereferenced the garbage fails the test
(killed by SIGSEGV) instead of killing pytest. The old walk, which checked only the first
two frame pointers with process_vm_readv, crashed on a stale pointer whose chain went
bad at the third frame; the CI run of the 2026-11-25 session died that way in the soak.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sampler_checks import run_target, signals_accounted, target_result

from realprof.sampler import c_handler_available

ROOT = Path(__file__).resolve().parent.parent
C_OK, C_WHY = c_handler_available()

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not C_OK, reason=f"C handler unavailable: {C_WHY}"),
]

CHILD = textwrap.dedent(
    """
    import json, sys
    from realprof import sampler as sampler_mod
    from realprof.sampler import Sampler

    kind, repeats, faulthandler_on = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    in_place = sys.argv[4] == "1"
    if faulthandler_on:
        import faulthandler
        faulthandler.enable()
    _sampler = sampler_mod._sampler
    # A slow rate: nearly every signal in this run comes from walk_selftest itself.
    s = Sampler(rate_hz=1, timer="per-thread")
    s.start()
    before = _sampler.stats()

    def suspended():
        yield 1
        yield 2

    def nested(n):
        if n == 0:
            gen = suspended()
            next(gen)
            for _ in range(repeats):
                _sampler.walk_selftest(kind, in_place, gen)
            return _sampler.stats()
        return nested(n - 1)

    after = nested(5)
    profile = s.stop()
    print("RESULT " + json.dumps({
        "delta": {k: after[k] - before[k] for k in (
            "handler_entries", "recorded", "stacks_untrusted", "stack_walk_faults",
            "unknown_frames", "stacks_entry_window")},
        "stats": s.stats,
        "profile_samples": profile.total_samples,
        "profile_unknown": profile.lost.get("unknown_code", 0),
        "stacks": sorted(
            [[f.function for f in stack], count]
            for (stack, _thread), count in profile.samples.items()
        ),
    }))
    """
)


def run_child(
    kind: str, repeats: int = 50, faulthandler_on: bool = False, in_place: bool = False
) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONFAULTHANDLER", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            kind,
            str(repeats),
            "1" if faulthandler_on else "0",
            "1" if in_place else "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        pytest.fail(f"walk_selftest({kind!r}) killed the process with {name}:\n{proc.stderr}")
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


# 3.11 and 3.12 have an entry window (a new cframe whose current_frame is not yet set).
ENTRY_WINDOW = sys.version_info[:2] < (3, 13)
GARBAGE = ["unreadable", "stale", "suspended_generator"]


@pytest.mark.parametrize("kind", GARBAGE)
def test_a_stale_newest_frame_is_dropped_and_counted(kind):
    # In place of the current frame (on 3.13+ the only place there is): no caller's
    # chain explains the data stack, so nothing can be read and the sample is a loss.
    repeats = 50
    r = run_child(kind, repeats, in_place=True)
    d = r["delta"]
    assert d["stacks_entry_window"] == 0
    # Every self-sent signal reached the handler and became a record...
    assert d["handler_entries"] >= repeats
    assert d["recorded"] >= repeats
    # ...and each of them was refused as untrusted or caught by the fault guard.
    assert d["stacks_untrusted"] + d["stack_walk_faults"] == repeats
    if kind == "unreadable":
        # A PROT_NONE page: the first read faults, the guard jumps back.
        assert d["stack_walk_faults"] == repeats
    st = r["stats"]
    # The funnel still balances, with the refused stacks as unknown-code losses.
    assert st["signals_delivered"] == signals_accounted(st)
    assert st["samples_recorded"] == st["reader_records"]
    assert st["reader_records"] == r["profile_samples"] + r["profile_unknown"]
    assert r["profile_unknown"] >= repeats


@pytest.mark.skipif(not ENTRY_WINDOW, reason="3.13+ link a frame before publishing it")
@pytest.mark.parametrize("kind", GARBAGE)
def test_a_sample_in_the_entry_window_is_charged_to_the_caller(kind):
    # A stale word as a new cframe's newest frame, the state 3.11/3.12 are in while a
    # call from C enters the interpreter: the thread runs its caller there. The soak's
    # generator thread lost 0.1 % of its samples to this (the suspended_generator kind)
    # until the walk fell back on the caller's chain.
    repeats = 50
    r = run_child(kind, repeats)
    d, st = r["delta"], r["stats"]
    assert d["stacks_untrusted"] + d["stack_walk_faults"] == 0
    assert d["stacks_entry_window"] == repeats
    caller = ["nested"] * 6 + ["<module>"]
    at_caller = sum(count for stack, count in r["stacks"] if stack == caller)
    assert at_caller >= repeats, r["stacks"]
    assert st["signals_delivered"] == signals_accounted(st)
    assert st["reader_records"] == r["profile_samples"] + r["profile_unknown"]


@pytest.mark.skipif(ENTRY_WINDOW, reason="3.11/3.12 read the caller's chain (test above)")
@pytest.mark.parametrize("kind", GARBAGE)
def test_without_an_entry_window_a_new_stale_frame_is_dropped(kind):
    r = run_child(kind, 50)
    d = r["delta"]
    assert d["stacks_entry_window"] == 0
    assert d["stacks_untrusted"] + d["stack_walk_faults"] == 50


def test_a_pointer_into_a_live_frame_never_crashes():
    # 8 bytes into the current frame: inside mapped, live memory, but not a frame start.
    # Whatever the walk makes of it, the process survives and the funnel balances.
    r = run_child("misaligned", 50)
    st = r["stats"]
    assert r["delta"]["handler_entries"] >= 50
    assert st["samples_recorded"] == st["reader_records"]
    assert st["reader_records"] == r["profile_samples"] + r["profile_unknown"]


def test_the_fault_guard_sits_in_front_of_faulthandler():
    # faulthandler.enable() before start(): the guard saves it as the previous handler
    # and still catches its own faults.
    r = run_child("unreadable", 20, faulthandler_on=True, in_place=True)
    assert r["delta"]["stack_walk_faults"] == 20


def test_a_fault_outside_the_walk_still_kills_the_program():
    # The guard must not swallow the program's own crashes: with the sampler running, a
    # real NULL dereference (ctypes.string_at(0)) dies by SIGSEGV as it would without us.
    code = textwrap.dedent(
        """
        import ctypes
        from realprof.sampler import Sampler
        s = Sampler(rate_hz=100, timer="per-thread")
        s.start()
        ctypes.string_at(0)
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONFAULTHANDLER", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )
    assert proc.returncode == -signal.SIGSEGV, (proc.returncode, proc.stderr)


def test_the_guard_is_removed_at_stop():
    code = textwrap.dedent(
        """
        import ctypes, signal
        from realprof.sampler import Sampler
        s = Sampler(rate_hz=100, timer="per-thread")
        s.start()
        s.stop()
        print(signal.getsignal(signal.SIGSEGV) == signal.SIG_DFL)
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONFAULTHANDLER", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_unknown_selftest_kind_is_refused():
    from realprof import sampler as sampler_mod
    from realprof.sampler import Sampler

    s = Sampler(rate_hz=1, timer="per-thread")
    s.start()
    try:
        with pytest.raises(
            ValueError, match="allowed: unreadable, stale, misaligned, suspended_generator"
        ):
            sampler_mod._sampler.walk_selftest("bogus")
    finally:
        s.stop()


GC_IN_PROLOGUE = textwrap.dedent(
    """
    import gc, json, sys
    from realprof.sampler import Sampler

    class Burner:
        # Cyclic garbage whose finalizer burns CPU and leaves the next cycle behind,
        # so every collection has a finalizer to run.
        def __init__(self):
            self.me = self

        def __del__(self):
            total = 0
            for i in range(3000):
                total += i
            Burner()

    def victim():
        yield 1   # never resumed: the call's one allocation is RETURN_GENERATOR's

    def caller(n):
        keep = []
        for _ in range(n):
            keep.append(victim())   # kept alive, so each call counts towards gen 0
            if len(keep) == 1000:
                keep = []

    gc.set_threshold(50)
    Burner()
    s = Sampler(rate_hz=250, timer="per-thread")
    s.start()
    caller(600_000)
    profile = s.stop()
    def below(name):
        # {function just below `name` in the stack: samples}, over samples holding `name`
        out = {}
        for (stack, _thread), count in profile.samples.items():
            names = [f.function for f in stack]
            if name in names:
                i = names.index(name)
                parent = names[i + 1] if i + 1 < len(names) else "(root)"
                out[parent] = out.get(parent, 0) + count
        return out

    print("RESULT " + json.dumps({
        "finalizer": below("Burner.__del__"),
        "gc": below("[garbage collection]"),
        "gc_callbacks_after": len(gc.callbacks),
    }))
    """
)


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11),
    reason="only 3.11 runs the cyclic GC inside an allocation, so inside a function's "
    "prologue; 3.12+ runs it at the eval breaker (gh-97922)",
)
def test_time_in_a_prologue_is_charged_to_the_called_function():
    # A generator function's call allocates its generator before RESUME; in 3.11 that
    # allocation runs the collection and its finalizers right there. Those samples
    # belong under the generator function (py-spy puts them there too). The walk used
    # to skip frames not yet at RESUME and charged them all to `caller`: pyflakes'
    # Checker.LAMBDA (a closure's MAKE_CELL) showed 0.5 % against py-spy's 24 %.
    proc = run_target(GC_IN_PROLOGUE, timeout=120)
    gc_below = target_result(proc)["gc"]
    collection_samples = sum(gc_below.values())
    assert collection_samples >= 50, gc_below
    # Nearly every collection is triggered by a victim() call (the rest by `keep`'s
    # list, 1 in 1,000): the old walk put 0 here.
    assert gc_below.get("victim", 0) >= 0.9 * collection_samples, gc_below


def test_a_collection_is_its_own_frame_with_its_finalizers_above_it():
    # Every sample in a finalizer the GC runs shows the collection just below it (the
    # frame is inserted where the collection started), and the collection sits on the
    # function that started it: `victim` in 3.11 (its prologue allocates), `caller` in
    # 3.12+ (the eval breaker runs the collection, gh-97922). The sampler's
    # gc.callbacks entry is gone after stop.
    proc = run_target(GC_IN_PROLOGUE, timeout=120)
    result = target_result(proc)
    finalizer, gc_below = result["finalizer"], result["gc"]
    assert sum(finalizer.values()) >= 50, result
    assert finalizer == {"[garbage collection]": sum(finalizer.values())}, result
    trigger = "victim" if sys.version_info[:2] == (3, 11) else "caller"
    assert gc_below.get(trigger, 0) >= 0.9 * sum(gc_below.values()), result
    assert result["gc_callbacks_after"] == 0, result


INIT_SHIM = textwrap.dedent(
    """
    import json
    from realprof.sampler import Sampler

    class Point:
        def __init__(self, n):
            total = 0
            for i in range(n):
                total += i
            self.total = total

    def caller(rounds):
        for _ in range(rounds):
            Point(2000)   # specialized to CALL_ALLOC_AND_ENTER_INIT after warm-up (3.13)

    s = Sampler(rate_hz=250, timer="per-thread")
    s.start()
    caller(30_000)
    profile = s.stop()
    below = {}
    for (stack, _thread), count in profile.samples.items():
        names = [f.function for f in stack]
        if "Point.__init__" in names:
            i = names.index("Point.__init__")
            below[names[i + 1]] = below.get(names[i + 1], 0) + count
    print("RESULT " + json.dumps(below))
    """
)


def test_a_constructor_call_shows_its_caller_below_init():
    # 3.13 enters a specialized __init__ through a shim frame (_Py_InitCleanup) whose
    # code has no RESUME at all; keeping frames not yet at RESUME must not keep it
    # (it showed as a frame named "__init__", line 0, between __init__ and its caller).
    below = target_result(run_target(INIT_SHIM, timeout=120))
    assert sum(below.values()) >= 50, below
    assert below == {"caller": sum(below.values())}, below


STALE_GC = textwrap.dedent(
    """
    import gc, json, time
    from realprof.sampler import Sampler

    class Clears:
        def __init__(self):
            self.me = self
        def __del__(self):
            gc.callbacks.clear()   # the collection's "stop" callback never comes

    def busy(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    s = Sampler(rate_hz=250, timer="per-thread")
    s.start()
    Clears()
    gc.collect()
    busy(0.6)
    profile = s.stop()
    in_busy = sum(c for (stack, _t), c in profile.samples.items()
                  if "busy" in [f.function for f in stack])
    in_busy_gc = sum(c for (stack, _t), c in profile.samples.items()
                     if "busy" in [f.function for f in stack]
                     and "[garbage collection]" in [f.function for f in stack])
    print("RESULT " + json.dumps({"busy": in_busy, "busy_under_gc": in_busy_gc}))
    """
)


def test_a_collection_whose_end_is_never_seen_does_not_mark_later_samples():
    # If gc.callbacks loses the sampler's entry during a collection, the entry's "stop"
    # call never comes: the handler also asks the interpreter whether it is collecting.
    r = target_result(run_target(STALE_GC, timeout=60))
    assert r["busy"] >= 50, r
    assert r["busy_under_gc"] == 0, r
