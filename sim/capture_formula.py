"""The capture ratio of the process timer (Go ≤ 1.17) in closed form, for a simple case.

The case: C threads, each alone on its own CPU and busy all the time, profiled at R Hz by
ITIMER_PROF on a kernel ticking at HZ with aligned ticks, where a second SIGPROF generated
in the same tick round survives with probability p (`machine.same_round_survival`).

The derivation follows the model's mechanisms:

* Each tick round charges the tick-charged process clock C ticks (`sim.cputimers`), that
  is C·T/I timer intervals for a tick of T ns and an interval of I ns. Each of the C
  checks of the round finds the timer due at most once and advances it one interval, so
  a round raises at most C expiries, and on average x = min(C, C·T/I) of them: a timer
  behind by more than C intervals keeps its backlog (R > HZ), and one behind by fewer
  raises one expiry per interval due.
* When x ≥ 1 every round raises at least one expiry (the clock gains at least one
  interval per round); the first becomes a signal (`sim.signals`), and each of the other
  x − 1 on average survives with p. Deliveries per second: HZ·(1 + p·(x − 1)), and
  already-pending drops per second: HZ·(1 − p)·(x − 1).
* When x < 1 no round raises two expiries, nothing collides and every expiry is a
  sample.

The capture ratio is deliveries per second over the C·R samples a second the workload
is worth. The expression min(1, HZ·(1 + p·(C − 1)) / (C·R)) that assumes every CPU
raises an expiry each round is the case x = C (R ≥ HZ) of this one.

Left out, so outside the regime: more threads than CPUs or sleeping threads, skewed
ticks, the after-switch survival (`same_round_survival_after_switch`), the startup (the
first expiry comes a tick late) and the signal still pending at stop, handler costs,
and any bias in which thread is sampled. `tests/test_capture_formula.py` holds it
against the simulator on a grid of C, R, HZ and p.
"""

from __future__ import annotations

from sim.cputimers import itimer_interval_ns


def expiries_per_round(cpus: int, rate_hz: float, kernel_hz: int) -> float:
    """Mean number of ITIMER_PROF expiries a tick round raises with `cpus` busy CPUs."""
    tick_ns = 1_000_000_000 / kernel_hz
    return min(float(cpus), cpus * tick_ns / itimer_interval_ns(rate_hz))


def deliveries_per_s(cpus: int, rate_hz: float, kernel_hz: int, survival: float) -> float:
    """SIGPROF deliveries (samples) a second: one per round plus the survivors."""
    per_round = expiries_per_round(cpus, rate_hz, kernel_hz)
    if per_round < 1:
        return per_round * kernel_hz
    return kernel_hz * (1 + survival * (per_round - 1))


def dropped_pending_per_s(cpus: int, rate_hz: float, kernel_hz: int, survival: float) -> float:
    """Generations dropped as already pending a second (tracefs `signal_generate` res=2)."""
    per_round = expiries_per_round(cpus, rate_hz, kernel_hz)
    return kernel_hz * (1 - survival) * max(0.0, per_round - 1)


def capture_ratio(cpus: int, rate_hz: float, kernel_hz: int, survival: float) -> float:
    """Samples in the profile over the samples the CPU time is worth (cpus × rate_hz)."""
    worth_per_s = cpus * 1_000_000_000 / itimer_interval_ns(rate_hz)
    return min(1.0, deliveries_per_s(cpus, rate_hz, kernel_hz, survival) / worth_per_s)
