"""What the sampler hooks into the process while it runs: thread start, os.exec*, fork
and interpreter exit; and which sampler is the running one.

SIGPROF and the process timer are one per process, so at most one `Sampler` runs at a
time: it is `active`, set by `Sampler.start` and cleared by `Sampler.stop` (and in a
forked child). The hooks find it there; they reach into the sampler's state (its
`_running`, `handler`, `_ext` and the Python handler's `_py_active`) and never import
`realprof.sampler`, which imports them.

* Thread start: ``threading.Thread._bootstrap_inner`` is wrapped while profiling, so a
  new thread registers itself with the C side before ``run()``.
* exec: every ``os.exec*`` is wrapped while profiling (below), so the new program
  starts with no timer armed and no SIGPROF pending.
* fork: with the Python handler and no extension, SIGPROF is blocked on the forking
  thread across ``os.fork()``; in the child the sampler is marked dead and the hooks
  come off (the extension's own ``pthread_atfork`` handlers reset the C side).
* exit: a running sampler is stopped before interpreter finalization.
* ``fork_child_callbacks`` run in a forked child after the above (``realprof/children.py``
  starts a new sampler there under ``record --follow-children``); each failure is ignored.

A hook that finds no running sampler does nothing, and each is removed at stop only if
nobody wrapped the same function after us (otherwise ours stays, inert).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from typing import Any

__all__ = [
    "active",
    "fork_child_callbacks",
    "install_exec_hook",
    "install_thread_hook",
    "uninstall_hooks",
]

active: Any = None  # the one running Sampler (SIGPROF is one signal), or None
fork_child_callbacks: list[Any] = []  # called with no argument in a forked child


# ----- thread-start hook ------------------------------------------------------------------

_orig_bootstrap_inner: Any = None


def _bootstrap_inner(self: threading.Thread) -> None:
    sampler = active
    if sampler is not None and sampler.handler == "c" and sampler._running:
        sampler._on_thread_start(self)
    _orig_bootstrap_inner(self)


def install_thread_hook() -> None:
    global _orig_bootstrap_inner
    current = threading.Thread.__dict__.get("_bootstrap_inner")
    if current is _bootstrap_inner:
        return
    _orig_bootstrap_inner = current
    threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[method-assign]


def _uninstall_thread_hook() -> None:
    # Only if nobody wrapped it after us; otherwise ours stays, inert when not sampling.
    if threading.Thread.__dict__.get("_bootstrap_inner") is _bootstrap_inner:
        threading.Thread._bootstrap_inner = _orig_bootstrap_inner  # type: ignore[method-assign]


# ----- exec -------------------------------------------------------------------------------
#
# ITIMER_PROF and pending signals survive execve; the handler does not, so without this
# the exec'd program dies of SIGPROF after one period of CPU (see "exec while profiling"
# in _sampler.c). Every os.exec* function is wrapped while profiling; the outermost call
# prepares once (before_exec callbacks, then the C side) and resumes if the exec fails,
# so os.execvp trying each PATH entry through os.execv prepares once, not per entry. A
# C-level execve (a C extension calling it directly) bypasses this: see the walkthrough.

_EXEC_NAMES = ("execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe")
_exec_originals: dict[str, Any] = {}
_exec_depth = threading.local()
_py_exec_state: list[Any] = []


def _exec_prepare(sampler: Any) -> None:
    for callback in list(sampler.before_exec):
        try:
            callback(sampler)
        except Exception as error:  # the exec goes ahead; the failure is kept
            sampler._reader_errors.append(f"before_exec: {error!r}")
    if sampler._ext is not None:
        sampler._ext.exec_prepare()
    elif sampler._py_active:
        _py_exec_state.append(signal.setitimer(signal.ITIMER_PROF, 0, 0))
        if threading.current_thread() is threading.main_thread():
            # SIG_IGN drops a pending SIGPROF; signal.signal works on the main thread only
            _py_exec_state.append(signal.signal(signal.SIGPROF, signal.SIG_IGN))
            signal.signal(signal.SIGPROF, signal.SIG_DFL)


def _exec_resume(sampler: Any) -> None:
    if sampler._ext is not None:
        sampler._ext.exec_resume()
    elif _py_exec_state:
        value, interval = _py_exec_state[0]
        if len(_py_exec_state) > 1:
            signal.signal(signal.SIGPROF, _py_exec_state[1])
        _py_exec_state.clear()
        if value or interval:
            signal.setitimer(signal.ITIMER_PROF, value or interval, interval)


def _wrap_exec(real: Any) -> Any:
    def exec_while_profiling(*args: Any, **kwargs: Any) -> Any:
        sampler = active
        depth = getattr(_exec_depth, "n", 0)
        if sampler is None or not sampler._running or depth:
            return real(*args, **kwargs)  # not profiling, or inside an outer exec call
        _exec_depth.n = 1
        try:
            _exec_prepare(sampler)
            try:
                return real(*args, **kwargs)
            finally:  # reached only if the exec failed: profiling goes on
                _exec_resume(sampler)
        finally:
            _exec_depth.n = 0

    exec_while_profiling.__wrapped__ = real  # type: ignore[attr-defined]
    exec_while_profiling.__name__ = real.__name__
    exec_while_profiling.__doc__ = real.__doc__
    return exec_while_profiling


def install_exec_hook() -> None:
    for name in _EXEC_NAMES:
        current = getattr(os, name, None)
        if current is not None and name not in _exec_originals:
            _exec_originals[name] = current
            setattr(os, name, _wrap_exec(current))


def uninstall_hooks() -> None:
    _uninstall_thread_hook()
    for name, real in list(_exec_originals.items()):
        # Only if nobody wrapped it after us; otherwise ours stays, inert when idle.
        if getattr(getattr(os, name), "__wrapped__", None) is real:
            setattr(os, name, real)
            del _exec_originals[name]


# ----- process events ---------------------------------------------------------------------


def _before_fork() -> None:
    # handler="python" without the extension arms ITIMER_PROF from Python: SIGPROF is
    # blocked on the forking thread across os.fork(), so that a SIGPROF storm cannot make
    # a large clone() restart for ever (gperftools issue 278) and no expiry is lost (see
    # "fork() with profiling on" in _sampler.c, whose pthread_atfork handlers do the
    # same in C for every fork, C-level ones included, whenever the extension is there).
    global _saved_mask
    sampler = active
    if sampler is not None and sampler._ext is None and sampler._py_active:
        _saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGPROF})


def _after_fork_in_parent() -> None:
    global _saved_mask
    if _saved_mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, _saved_mask)
        _saved_mask = None


def _after_fork_in_child() -> None:
    global _saved_mask
    if _saved_mask is not None:  # the child inherits the mask, no timer (setitimer(2))
        signal.pthread_sigmask(signal.SIG_SETMASK, _saved_mask)
        _saved_mask = None
    # The extension's pthread_atfork child handler already reset the C side (the child has
    # no timers and one thread); the reader thread does not exist here.
    global active
    sampler = active
    if sampler is not None:
        sampler._in_child = True
        sampler._py_active = False
        active = None
    uninstall_hooks()
    for callback in list(fork_child_callbacks):
        with contextlib.suppress(Exception):  # never break the child
            callback()


def _stop_at_exit() -> None:
    # Disarm before interpreter finalization: a handler must not walk thread states
    # that Py_Finalize is tearing down.
    sampler = active
    if sampler is not None:
        sampler.stop()


_saved_mask: set[signal.Signals] | None = None
os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
atexit.register(_stop_at_exit)
