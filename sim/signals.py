"""SIGPROF generation, coalescing, receiver choice and delivery.

Models `kernel/signal.c` (`send_signal`, `legacy_queue`, `complete_signal`):

* A process-directed SIGPROF (from ITIMER_PROF, `si_code` SI_KERNEL) goes into the
  process's shared pending set. SIGPROF is a standard signal, and standard signals do not
  queue: a generation while one is already pending is dropped (`legacy_queue`, trace
  result "already pending"), and that timer expiry is gone for good (signal(7);
  setitimer(2) BUGS).
* Whether the earlier one is still pending depends on microseconds: the gap between the
  CPUs' tick interrupts against the generate-to-dequeue latency. The model works in tick
  rounds: the first generation of a round is always queued; every further generation in
  the same round survives only with probability `same_round_survival` (p). A signal still
  undelivered from an earlier round always causes a drop. A generation whose check ran
  after a context switch survives with `same_round_survival_after_switch` instead: the
  check runs at the checking thread's return to user mode (`POSIX_CPU_TIMERS_TASK_WORK`),
  a few µs late for a thread switched in at the tick, and whenever it next runs for a
  thread preempted there. On a real machine p is counted in tick rounds and the
  after-switch value fitted through this model (`lab.calibrate`;
  docs/walkthrough/03-signals-and-coalescing.md).
* The receiver is the thread whose check generated the signal when it can take it
  (SIGPROF not blocked, i.e. not inside its own handler); otherwise a round-robin walk
  from `curr_target` over running threads (`complete_signal`, `wants_signal`). If nobody
  qualifies it waits for the next thread of the process to return to user mode.
* Thread-directed timer signals (`timer_create` with SIGEV_THREAD_ID, `si_code`
  SI_TIMER) go on the target thread's private list; one timer's expiry never drops
  another's (`posixtimer_send_sigqueue` does not consult `legacy_queue`).
* perf_event overflows (`sim.perfevents`, si_code POLL_IN from `send_sigio_to_task`) are
  thread-directed too, but *do* go through `legacy_queue`: one pending per thread, the
  next is dropped.
* Delivery happens when the receiver returns to user mode; the handler runs with SIGPROF
  blocked, so it never nests on a thread.

Left out: the µs-scale latency itself (folded into p), other signals, sigaltstack, and
signals sent with kill(2). And the kind of the *earlier* check: the kernel's survival
depends on how far apart a round's two checks land, and two checks right after switches
at the same tick land only 2-3 µs apart (`benchmarks/tick_round_kinds.py`); the
model keys it on the later check alone, and one fitted value stands for a check switched
in at the tick (µs late) and one deferred between ticks (often hundreds of µs), whose
mix changes with the rate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sim.machine import RUNNING, Thread

SI_KERNEL = 0x80  # ITIMER_PROF
SI_TIMER = -2  # timer_create
SI_SUSPEND = 0  # Windows: not a signal at all, the sampler thread suspends the target
SI_POLL_IN = 1  # perf_event overflow via F_SETSIG (fs/fcntl.c send_sigio_to_task)


@dataclass
class SignalCounters:
    generated: int = 0
    generated_process: int = 0
    generated_thread: int = 0
    generated_perf: int = 0
    dropped_pending: int = 0
    dropped_perf: int = 0
    survived_same_round: int = 0
    delivered: int = 0
    timer_overruns: int = 0
    pending_at_stop: int = 0


@dataclass
class ProcessSignals:
    """The shared pending set for SIGPROF and the receiver walk."""

    same_round_survival: float
    rng: random.Random
    counters: SignalCounters = field(default_factory=SignalCounters)
    # None: a check after a context switch survives like any other.
    same_round_survival_after_switch: float | None = None
    # Queued process signals: (receiver or None for "first taker", round generated).
    pending: list[tuple[Thread | None, int]] = field(default_factory=list)
    curr_target: int = 0

    def generate(
        self, checker: Thread, round_id: int, threads: list[Thread], after_switch: bool = False
    ) -> str:
        """One ITIMER_PROF expiry during `checker`'s check. Returns "queued"/"dropped"."""
        self.counters.generated += 1
        self.counters.generated_process += 1
        if self.pending:
            same_round = all(r == round_id for _, r in self.pending)
            survival = self.same_round_survival
            if after_switch and self.same_round_survival_after_switch is not None:
                survival = self.same_round_survival_after_switch
            if same_round and self.rng.random() < survival:
                self.counters.survived_same_round += 1
            else:
                self.counters.dropped_pending += 1
                return "dropped"
        self.pending.append((self._receiver(checker, threads), round_id))
        return "queued"

    def _receiver(self, checker: Thread, threads: list[Thread]) -> Thread | None:
        if checker.state == RUNNING and not checker.in_handler:
            return checker
        n = len(threads)
        for step in range(n):
            index = (self.curr_target + step) % n
            candidate = threads[index]
            if candidate.state == RUNNING and not candidate.in_handler and candidate.truth:
                self.curr_target = index
                return candidate
        return None

    def take_for(self, thread: Thread) -> int:
        """Signals `thread` dequeues at its return to user mode."""
        if not self.pending or thread.in_handler:
            return 0
        taken = 0
        keep = []
        for receiver, round_id in self.pending:
            if receiver is None or receiver is thread:
                taken += 1
            else:
                keep.append((receiver, round_id))
        self.pending = keep
        return taken

    def release_stale(self) -> None:
        """Receivers that can no longer take their signal hand it to the first taker."""
        self.pending = [
            (r if r is not None and r.state == RUNNING else None, rid) for r, rid in self.pending
        ]
