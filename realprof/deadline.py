"""`record --duration`: stop profiling once, at a deadline or at the program's end.

`StopOnce(stop, seconds, reached)` runs `stop` exactly once: from a daemon thread
after `seconds` of wall time (then `reached` too, to say so), or from `at_end` when
the program ends first; a lock makes the two exclusive, so a deadline that fires while
the program ends stops nothing twice. The thread blocks SIGPROF, as the sampler's reader
does, so the process timer's signal goes to a thread of the program, and is marked
`_realprof_reader` so the sampler's thread hook registers it unprofiled. It is a
daemon: the interpreter does not wait for it at exit, and `record` does not either
(it waits only for the program's non-daemon threads). An error in `stop` at the
deadline is reported by `reached_failed` and never reaches the program.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

__all__ = ["StopOnce"]


class StopOnce:
    def __init__(
        self,
        stop: Callable[[], None],
        seconds: float | None,
        reached: Callable[[], None],
        reached_failed: Callable[[BaseException], None],
    ) -> None:
        self._stop = stop
        self._seconds = seconds
        self._reached = reached
        self._failed = reached_failed
        self._lock = threading.Lock()
        self._done = False
        self._ended = threading.Event()
        self.early = False  # stopped at the deadline, before the program's end

    def start(self) -> None:
        """Start the deadline thread (nothing without `seconds`)."""
        if self._seconds is None:
            return
        thread = threading.Thread(target=self._wait, name="realprof-duration", daemon=True)
        thread._realprof_reader = True  # type: ignore[attr-defined]  # not profiled
        thread.start()

    def at_end(self) -> None:
        """The program ended: stop now unless the deadline did."""
        self._ended.set()
        self._once(early=False)

    def _once(self, early: bool) -> bool:
        with self._lock:
            if self._done:
                return False
            self._stop()  # if it fails at the deadline, the program's end tries again
            self._done = True
            self.early = early
            return True

    def _wait(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})
        if self._ended.wait(self._seconds):
            return
        try:
            if self._once(early=True):
                self._reached()
        except Exception as exc:  # never break the program: report and let it run
            self._failed(exc)
