"""The Go runtime's own threads: they wake between ticks and take a CPU from a busy thread.

A Go program is more threads than its busy goroutines. sysmon sleeps 20 µs in a loop,
doubling after 1 ms without work up to 10 ms (`sysmon`, src/runtime/proc.go L5134 in
Go 1.19.8), Ms are woken to run timers or to take over a P that sysmon retook from a
goroutine in a cgo call (`retake`, L5291), and the profile writer wakes every 100 ms up
to Go 1.25. On this project's VM, with four goroutines spinning in cgo calls
on two CPUs, they switched the busy threads out between ticks 70-160 times a second
(`python benchmarks/go_runtime_wakes.py`, benchmarks/README.md). Each such switch
matters to the profiler in two ways, both through the timer check that runs only at a
tick or at the return to user mode after one (`sim.model`):

* under per-thread timers, the thread that gets the CPU back between ticks runs on past
  the next tick with its expiries piling up, so more of them end as one signal and an
  overrun (`sim.cputimers.ThreadTimer`): four goroutines at 250 Hz lose a few per cent;
* under the process timer, a thread preempted at a tick with its check still queued may
  be the one switched in, and generates its signal there, far from the other CPU's
  check, where it cannot find the first one still pending (`sim.signals`).

Each waker of `workload.runtime_wakers` is a helper thread (`Thread.helper`: it uses
CPU and charges the process clock at a tick, but is not part of the profile's truth
and takes no signal). It sleeps for a gap drawn from its measured distribution, given
as equally spaced quantiles (`gap_points_ms`): a pair of neighbouring points picked
uniformly, then a gap uniform between them. It wakes on a CPU picked at random with
wake-up preemption (`Machine.wake_preempting`, as realprof's reader does, but without
the protected slice: what is replayed are the measured takings of a busy thread's CPU,
each a preemption), runs `run_us` and sleeps again. The thread it took the CPU from
gets it back when it sleeps with probability `victim_resumes` (measured per thread and
run: 0.35-0.92 for sysmon in this project's runs); otherwise a queued thread runs
first, as after realprof's reader.

Invariants:

* Gaps run from one taking of a busy thread's CPU to the next, as they were measured
  (`lab.go_wakers`: the model replays the takings, not every wake-up); one that falls
  due while the waker is still up (queued, or running) is skipped and counted.
* A waker preempted in turn goes on with what is left of its run when it is back.
* The wakers draw from a random stream of their own (`wakers/{seed}`), and a scenario
  without wakers creates no event: it runs bit for bit as it did before they existed.

Left out: the wakers' wake-ups at a tick (the measurement keeps only those between
ticks), what they do (sysmon's retake of a P is `sim.gosched`'s, at a tick), and that a
program's wakers depend on the program, the Go release and the machine: the model
replays what was measured for one of them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

from contract.workload import RuntimeWaker
from sim.events import after
from sim.machine import SLEEPING, Machine, Thread


def gap_ns(points_ms: Sequence[float], rng: random.Random) -> int:
    """One gap from a distribution given as equally spaced quantiles (ms), in ns."""
    k = rng.randrange(len(points_ms) - 1)
    return max(1, round(1e6 * rng.uniform(points_ms[k], points_ms[k + 1])))


def mean_gap_ms(points_ms: Sequence[float]) -> float:
    """The mean of the gaps `gap_ns` draws: the mean of the neighbouring pairs' midpoints."""
    pairs = list(itertools.pairwise(points_ms))
    return sum((a + b) / 2 for a, b in pairs) / len(pairs)


class RuntimeWakers:
    """The runtime's waking threads of one run."""

    def __init__(
        self,
        env,  # simpy.Environment
        machine: Machine,
        wakers: Sequence[RuntimeWaker],
        seed: int,
        stopped: Callable[[], bool],
    ) -> None:
        self.env = env
        self.machine = machine
        self.stopped = stopped
        self.rng = random.Random(f"wakers/{seed}")
        self.specs: dict[Thread, RuntimeWaker] = {}
        for spec in wakers:
            thread = Thread.helper(f"go runtime: {spec.name}", "go-runtime", self._done)
            self.specs[thread] = spec
        self.running: set[Thread] = set()  # woken, its run not yet done
        self.wakes = 0
        self.wakes_skipped = 0

    def start(self) -> None:
        for thread, spec in self.specs.items():
            after(self.env, gap_ns(spec.gap_points_ms, self.rng), self._wake, thread)

    def owns(self, thread: Thread) -> bool:
        return thread in self.specs

    def _wake(self, thread: Thread) -> None:
        if self.stopped():
            return
        spec = self.specs[thread]
        after(self.env, gap_ns(spec.gap_points_ms, self.rng), self._wake, thread)
        if thread.state != SLEEPING:
            self.wakes_skipped += 1
            return
        self.wakes += 1
        cpu = self.rng.randrange(len(self.machine.cpus))
        back_first = self.rng.random() < spec.victim_resumes
        self.machine.wake_preempting(thread, cpu, parity=False, victim_first=back_first)

    def run(self, thread: Thread) -> None:
        """At its return to user mode: spend its CPU, then sleep (`_done`). Dispatched
        again after a preemption, it goes on with what is left of its run."""
        if thread in self.running:
            return
        self.running.add(thread)
        self.machine.start_work(thread, max(1, round(self.specs[thread].run_us * 1000)))

    def _done(self, thread: Thread) -> None:
        self.running.discard(thread)
        self.machine.block(thread, SLEEPING)
