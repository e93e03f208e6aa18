"""Call a function a delay from now: the one SimPy idiom the mechanisms schedule with.

`after(env, delay_ns, fn, *args)` creates `env.timeout(delay_ns)` and appends a callback
that calls `fn(*args)` when SimPy processes that timeout. A callback on a timeout costs
one event, where a process (a generator) would cost several.

Invariants:

* The timeout is created, and so scheduled, at the call: SimPy processes events in order
  of time, then of creation, so the same calls in the same order give the same run, bit
  for bit.
* The arguments are bound at the call, not at the expiry: a callback sees the thread,
  token or generation it was scheduled for, and compares it with the current one to
  find out whether it was cancelled meanwhile (nothing is ever removed from SimPy's
  queue).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy


def after(env: simpy.Environment, delay_ns: int, fn: Callable[..., Any], *args: Any) -> None:
    """Call `fn(*args)` `delay_ns` from now (arguments bound now)."""
    env.timeout(delay_ns).callbacks.append(lambda _event: fn(*args))
