"""``handler="python"``: the naive port of a SIGPROF profiler, kept on purpose to show what
it loses.

``signal.setitimer(ITIMER_PROF)`` plus a Python-level ``signal.signal`` handler. CPython
runs Python handlers only on the main thread, only when it next executes bytecode, and
folds all deliveries in between into one call (``Doc/library/signal.rst``). So the
handler records the *main thread's* stack at handler time, whoever burned the CPU;
with the main thread parked in ``Thread.join()`` the workers are invisible. How the
merged deliveries are counted: with the extension, its C handler sits in front of
CPython's, counts every delivery, and forwards it with ``PyErr_SetInterruptEx``
(async-signal-safe, ``Doc/c-api/exceptions.rst``); ``signals_merged`` is then
deliveries minus handler runs. Without the extension nothing in pure Python sees a
delivery, so ``signals_delivered`` is *estimated* as process CPU time / interval
(what ``ITIMER_PROF`` would fire at most; ``stats["signals_delivered_estimated"]``).

This is also the fallback: on CPython outside 3.11.1-3.15, or if the extension fails
to import, ``Sampler(handler="c")`` warns and uses this handler (and the process
timer). Approach as in Scalene, ``scalene/scalene_cpu_profiler.py``.

`PythonHandlerMixin` is the Python-handler half of `realprof.sampler.Sampler`, which
inherits it: its methods use the sampler's settings (``period_ns``, ``max_depth``), its
profile and frame cache, and its ``_ext`` (the C extension, or None without it); its
own state is the sampler's ``_py_*`` attributes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any

from contract.profile import Frame
from realprof.frame_names import module_of
from realprof.process_hooks import install_exec_hook, uninstall_hooks

__all__ = ["PythonHandlerMixin"]


class PythonHandlerMixin:
    """``Sampler``'s ``handler="python"`` methods: start, the handler, stop."""

    def _start_python(self, previous: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "handler='python' must be started on the main thread (signal.signal "
                "works only there)"
            )
        if self._ext is not None:
            disposition = self._ext.sigprof_disposition()
            if disposition == "other" and previous not in (signal.SIG_DFL, signal.SIG_IGN):
                raise RuntimeError(
                    "another (C-level) SIGPROF handler is installed; realprof needs sole "
                    "ownership of SIGPROF: remove it first"
                )
        elif previous is None:
            raise RuntimeError(
                "a SIGPROF handler not installed from Python is present; realprof needs "
                "sole ownership of SIGPROF"
            )
        self._py_prev_handler = previous
        self._py_stacks = []
        self._py_calls = 0
        self._py_main_name = threading.main_thread().name
        self._py_active = True
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPROF})
        signal.signal(signal.SIGPROF, self._py_handler)
        if self._ext is not None:
            # our C handler in front of CPython's: counts deliveries, then forwards
            self._ext.pycount_start()
        else:
            signal.siginterrupt(signal.SIGPROF, False)  # SA_RESTART, as Scalene does
        self._wall0 = time.perf_counter_ns()
        self._cpu0 = time.process_time_ns()
        interval = self.period_ns / 1e9
        signal.setitimer(signal.ITIMER_PROF, interval, interval)
        install_exec_hook()

    def _py_handler(self, signum: int, frame: Any) -> None:
        """The naive port: runs on the main thread, sees only the main thread's stack."""
        if not self._py_active:
            return
        self._py_calls += 1
        stack = []
        cache = self._frames
        depth = 0
        while frame is not None and depth < self.max_depth:
            code = frame.f_code
            key = (code.co_qualname, code.co_filename, frame.f_lineno or 0, code.co_firstlineno)
            item = cache.get(key)
            if item is None:
                item = cache[key] = Frame(*key, module_of(code.co_filename))
            stack.append(item)
            frame = frame.f_back
            depth += 1
        self._py_stacks.append(tuple(stack))

    def _stop_python(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        uninstall_hooks()
        wall = time.perf_counter_ns() - self._wall0
        cpu = time.process_time_ns() - self._cpu0
        if self._ext is not None:
            self._ext.stop()  # deliveries stop counting; our C handler stays, inactive
            if threading.current_thread() is threading.main_thread():
                self._ext.check_signals()  # let a pending Python handler run now
            delivered = self._ext.stats()["handler_entries"]
            estimated = False
        else:
            delivered = cpu // self.period_ns
            estimated = True
        self._py_active = False
        with contextlib.suppress(ValueError):  # not on the main thread: leave it inactive
            # SIG_IGN, not SIG_DFL: a late SIGPROF must not kill the process.
            signal.signal(signal.SIGPROF, signal.SIG_IGN)
        self.collect()
        recorded = self._py_calls
        self.profile.duration_ns = wall
        self.stats = {
            "handler": "python",
            "timer": "process",
            "rate_hz": self.rate_hz,
            "signals_delivered": delivered,
            "signals_delivered_estimated": estimated,
            "samples_recorded": recorded,
            "samples_lost_overflow": 0,
            "signals_discarded": 0,
            "signals_merged": max(0, delivered - recorded),
            "timer_overruns": 0,
            "reader_records": recorded,
            "unknown_frames": 0,
            "stacks_untrusted": 0,
            "stack_walk_faults": 0,
            "stacks_entry_window": 0,
            "wall_seconds": wall / 1e9,
            "cpu_seconds": cpu / 1e9,
            "python_samples": recorded,
            "native_samples": 0,
        }
