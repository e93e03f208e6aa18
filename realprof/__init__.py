"""realprof: a real in-process SIGPROF sampler for Python, built like Go's CPU profiler.

``realprof.sampler`` holds the API (``Sampler``, ``profile``); ``realprof._sampler`` is
the C core (timers, async-signal-safe handler, lock-free ring buffer); ``realprof.reader``
is the thread that drains the ring into the profile. See their docstrings for the
mechanism, its invariants and its sources.
"""

from realprof.sampler import Sampler, c_handler_available, profile

__all__ = ["Sampler", "c_handler_available", "profile"]
