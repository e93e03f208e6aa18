"""The module that qualifies a Python frame's name, as Go qualifies its own by package.

Why
---
pprof, flame graphs and ``Profile.top`` tell functions apart by name, and Python's
``co_qualname`` is not unique: every file has a ``<module>``, many have ``main``,
``run`` or ``Class.__init__``. Go never meets this because its symbols are
package-qualified (``main.compute``, ``net/http.(*Server).Serve``). So a frame carries
the module its code belongs to (``Frame.module``) and is named ``module.qualname``
(``Frame.name``): ``pkg.mod.func``, ``pkg.mod.Class.__init__``, ``pkg.mod.<module>``.

Why dotted module names and not ``file:qualname``: they read like Go's names and like the
``import`` line a reader would type, stay short in ``pprof -top`` and in flame-graph
boxes, do not depend on where the code was checked out (a path does), and a
``go tool pprof -list 'mod\\.func'`` regex is easy to write. File and lines are not
lost: they stay in ``Frame.file``, ``line`` and ``start_line``, so pprof's ``-list``,
``-lines`` and speedscope still point at the source.

How
---
The module is derived from the code's file (a code object knows no ``__name__``): the
path relative to the ``sys.path`` entry that holds it most closely, without ``.py``,
``/`` turned into ``.`` and a trailing ``__init__`` dropped, which is the name the
import system gives it (``__main__`` excepted: a script ``driver.py`` is ``driver``).
``<frozen runpy>`` is ``runpy``; another ``<...>`` pseudo-file (``exec``'s
``<string>``, ``<stdin>``) is its own module (``<string>.<module>``); a file outside
``sys.path`` is named by its stem; code with no file at all (``co_filename`` empty) has
no module and keeps its bare name (the lab's stand-ins for a scenario's functions use
this to carry the scenario's names exactly).

A module is never left off a real frame for a second reason: pprof demangles a name it
thinks is C++ by dropping every ``<...>``, which turns a bare ``<module>`` or
``<listcomp>`` into the empty name (shown as ``[python]``, the mapping). It leaves alone
a name that differs from the function's ``system_name`` (ours do: that is the bare
qualname) or contains ``.<`` (Java's ``Class.<init>``); see ``demangleSingleFunction``
in google/pprof ``internal/symbolizer/symbolizer.go``. The answer for a file is cached for the
life of the process, so every frame of one file gets the same module even if
``sys.path`` changes later. Nothing here may raise: the sampler's reader thread calls
it inside the profiled program.
"""

from __future__ import annotations

import os
import sys

__all__ = ["module_of"]

_SOURCE_SUFFIXES = (".py", ".pyw", ".pyc", ".pyo")
_cache: dict[str, str] = {}


def module_of(filename: str) -> str:
    """The dotted module name of the code in ``filename``, "" when it has none."""
    module = _cache.get(filename)
    if module is None:
        try:
            module = _derive(filename)
        except Exception:  # an odd path must not cost the program its profile
            module = ""
        _cache[filename] = module
    return module


def _derive(filename: str) -> str:
    if not filename:
        return ""
    if filename.startswith("<") and filename.endswith(">"):
        inner = filename[1:-1]
        return inner[len("frozen ") :] if inner.startswith("frozen ") else filename
    path = os.path.normpath(os.path.abspath(filename))
    relative = ""
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        root = os.path.normpath(os.path.abspath(entry or os.curdir))
        prefix = root if root.endswith(os.sep) else root + os.sep
        if path.startswith(prefix):
            candidate = path[len(prefix) :]
            if not relative or len(candidate) < len(relative):
                relative = candidate
    if not relative:
        relative = os.path.basename(path)
    for suffix in _SOURCE_SUFFIXES:
        if relative.endswith(suffix):
            relative = relative[: -len(suffix)]
            break
    parts = [part for part in relative.split(os.sep) if part]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)
