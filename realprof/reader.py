"""The reader: the thread that drains the C ring into the profile, and watches for threads.

The handler only writes raw records (code pointers and offsets) into the ring; turning
them into frames needs Python objects, so it happens here, on a thread of its own that
holds the GIL while it drains: Go's profile reader goroutine, which copies ``profBuf``
into the pprof builder (``src/runtime/pprof/pprof.go`` ``profileWriter``), in a Python
process. `ReaderMixin` is that half of `realprof.sampler.Sampler`, which inherits it.

Every ``reader_period_ms`` (100 ms) the reader scans for threads the sampler has no entry
for (thread states created by C code, and threads with none at all, listed in
``/proc/self/task``) and drains. Between drains it waits in C with the GIL released,
watching ``/proc/self/task`` every ``WATCH_PERIOD_S`` (10 ms), and scans at once when an
unknown thread appears: a native thread's CPU goes unsampled until its timer exists (see
"Watching for new threads between scans" in ``_sampler.c``).

A drain turns each record into a stack of `contract.profile.Frame` (qualified names:
``realprof/frame_names.py``) on a thread label, and into the sampler's counters. The
synthetic frames: ``[native code: NAME]`` for a thread the interpreter did not create,
``[external code]`` (`EXTERNAL_FRAME`) for a signal on a thread not registered (yet)
(Go: ``runtime._ExternalCode``), ``[no Python frame]`` (`NO_PYTHON_FRAME`),
``[unknown code]`` (`UNKNOWN_FRAME`) for a frame that could not be resolved, and
``[garbage collection]``, which the C side stages itself. A record whose leaf cannot be
resolved is a loss (``unknown_code``); the ring's overflow count becomes the
``overflow`` loss, Go's ``lostProfileEvent``.

The reader is registered (for its stack) but not profiled, and blocks SIGPROF, so the
process timer's signals go to the program's threads.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

from contract.profile import Frame
from realprof.frame_names import module_of

__all__ = ["EXTERNAL_FRAME", "NO_PYTHON_FRAME", "UNKNOWN_FRAME", "WATCH_PERIOD_S", "ReaderMixin"]

# How often the reader, between drains, looks for threads it has no entry for.
WATCH_PERIOD_S = 0.01

EXTERNAL_FRAME = Frame("[external code]")
NO_PYTHON_FRAME = Frame("[no Python frame]")
UNKNOWN_FRAME = Frame("[unknown code]")


class ReaderMixin:
    """The reader half of `realprof.sampler.Sampler` (see the module docstring). It uses
    the sampler's ``_ext``, ``profile``, ``reader_period_ms``, its stop event, drain lock,
    name maps and counters."""

    def _reader_loop(self) -> None:
        # Registered (for its stack) but not profiled: no timer, not in cpu_seconds.
        # The thread hook did this already; a scan may have raced it, so say it again.
        with contextlib.suppress(Exception):
            self._ext.register_thread(profiled=False)
        # The process timer's SIGPROF goes to any thread that does not block it
        # (kernel/signal.c, complete_signal): the reader would drop it as not profiled.
        # Blocked here, the kernel hands it to a thread of the program instead; that
        # matters most while the program's only other thread forks (SIGPROF is blocked
        # on a forking thread, see "fork() with profiling on" in _sampler.c).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
        period = self.reader_period_ms / 1000.0
        # Between drains the reader waits in C without the GIL, watching for threads it
        # has no entry for (a C library's pool), and scans as soon as one appears: a
        # native thread's CPU is unsampled until its timer exists (see "Watching for
        # new threads between scans" in _sampler.c).
        watch = getattr(self._ext, "watch_threads", None)
        next_drain = time.monotonic() + period
        while not self._stop_event.is_set():
            left = next_drain - time.monotonic()
            try:
                if left > 0:
                    found = watch(left, WATCH_PERIOD_S) if watch is not None else None
                    if found is None:  # not sampling (or no watch): wait as before
                        self._stop_event.wait(left)
                        continue
                    if found:
                        self._ext.scan_threads()
                        self._note_native_threads()
                    continue
                next_drain = max(next_drain + period, time.monotonic())
                self._ext.scan_threads()
                self._note_native_threads()
                self._drain()
            except Exception as error:  # keep sampling; report at stop
                self._reader_errors.append(repr(error))
                self._stop_event.wait(period)
        # Not sampled nor in cpu_seconds; the hints tell it from CPU no timer covered.
        self._reader_cpu = time.thread_time()

    def _note_native_threads(self) -> None:
        """Names of the native threads registered now (kept: drained after they exit)."""
        native_threads = getattr(self._ext, "native_threads", None)
        if native_threads is not None:
            self._native_names.update(native_threads())

    def _refresh_names(self) -> None:
        for thread in threading.enumerate():
            native_id = getattr(thread, "native_id", None)
            if native_id is not None:
                self._names[native_id] = thread.name

    def _frame(self, key: tuple) -> Frame:
        frame = self._frames.get(key)
        if frame is None:
            qualname, filename, line, first = key
            filename = str(filename)
            frame = Frame(
                str(qualname), filename, max(int(line), 0), max(int(first), 0), module_of(filename)
            )
            self._frames[key] = frame
        return frame

    def _drain(self) -> None:
        """Move records from the C side into the profile (GIL held throughout)."""
        with self._drain_lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        assert self._ext is not None
        records = self._ext.drain()
        if records:
            self._refresh_names()
        f_python, f_native, f_none = self._ext.F_PYTHON, self._ext.F_NATIVE, self._ext.F_NO_TSTATE
        f_untrusted = getattr(self._ext, "F_UNTRUSTED", 0)
        overruns = self.overruns_by_thread
        times = self.sample_times_ns
        for tid, t_ns, _si_code, overrun, flags, frames in records:
            self._reader_records += 1
            if times is not None:
                times.append(t_ns)
            name = self._names.get(tid) or f"tid {tid}"
            if overrun > 0:
                overruns[name] = overruns.get(name, 0) + overrun
            if flags & f_python:
                self._python_samples += 1
            elif flags & f_native:
                self._native_samples += 1
            if flags & f_none and tid in self._native_names:
                # a thread the interpreter did not create: its kernel name, no Python
                comm = self._native_names[tid] or "?"
                self._native_thread_samples += 1
                if tid not in self._names:
                    name = f"{comm} (tid {tid})"
                stack: tuple[Frame, ...] = (Frame(f"[native code: {comm}]"),)
            elif flags & f_none:
                self._external_samples += 1
                stack = (EXTERNAL_FRAME,)
            elif flags & f_untrusted:
                # Caught mid-push with a stale frame pointer: no stack to attribute.
                self._unknown_leaf += 1
                self.profile.add_lost("unknown_code", 1)
                continue
            elif not frames:
                stack = (NO_PYTHON_FRAME,)
            elif frames[0] is None:
                # Profile.add refuses a synthetic lost frame as leaf: it is a loss.
                self._unknown_leaf += 1
                self.profile.add_lost("unknown_code", 1)
                continue
            else:
                stack = tuple(UNKNOWN_FRAME if f is None else self._frame(f) for f in frames)
            self.profile.add(stack, name)
        lost = self._ext.stats()["lost_overflow"]
        if lost > self._lost_reported:
            self.profile.add_lost("overflow", lost - self._lost_reported)
            self._lost_reported = lost
