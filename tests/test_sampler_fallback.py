"""The pure-Python fallback of realprof.sampler: when the C handler cannot run.

Runs on every CPython version: the fallback is what users of unsupported versions
get, so it is tested with the C extension hidden, whatever the interpreter.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from realprof import process_hooks
from realprof import sampler as sampler_mod
from realprof.frame_names import module_of
from realprof.sampler import Sampler

pytestmark = pytest.mark.real


def python_spin(cpu_ns: int) -> None:
    end = time.thread_time_ns() + cpu_ns
    while time.thread_time_ns() < end:
        pass


@pytest.fixture
def no_extension(monkeypatch):
    monkeypatch.setattr(sampler_mod, "_sampler", None)
    monkeypatch.setattr(sampler_mod, "_IMPORT_ERROR", ImportError("hidden by the test"))


def test_c_handler_falls_back_with_a_clear_warning(no_extension):
    with pytest.warns(RuntimeWarning, match="falling back to the pure-Python SIGPROF handler"):
        s = Sampler(handler="c", timer="per-thread")
    assert (s.handler, s.timer, s.requested_handler) == ("python", "process", "c")


def test_unsupported_version_falls_back(monkeypatch):
    monkeypatch.setattr(sampler_mod, "SUPPORTED_VERSIONS", ((3, 0), (3, 1)))
    ok, why = sampler_mod.c_handler_available()
    assert not ok and "outside 3.0-3.1" in why
    with pytest.warns(RuntimeWarning, match="outside"):
        s = Sampler()
    assert s.handler == "python"


def test_free_threaded_build_falls_back_and_says_why(monkeypatch):
    monkeypatch.setattr(sampler_mod, "FREE_THREADED", True)
    ok, why = sampler_mod.c_handler_available()
    assert not ok and "free-threaded" in why
    with pytest.warns(RuntimeWarning, match="free-threaded"):
        s = Sampler()
    assert s.handler == "python"


def test_python_handler_without_extension_samples_the_main_thread(no_extension):
    with Sampler(rate_hz=100, timer="process", handler="python") as s:
        t0 = time.thread_time_ns()
        python_spin(1_000_000_000)
        cpu = time.thread_time_ns() - t0
    st, p = s.stats, s.profile
    assert st["signals_delivered_estimated"] is True
    expected = cpu / 1e9 * 100
    # The main thread runs bytecode all along: the deferred handler keeps up.
    assert p.total_samples >= 0.7 * expected, (p.total_samples, expected, st)
    assert st["samples_recorded"] == st["reader_records"] == p.total_samples
    assert set(p.by_thread()) == {threading.main_thread().name}
    assert f"{module_of(__file__)}.python_spin" in p.by_function()
    # stopping leaves SIGPROF ignored, never SIG_DFL (which would kill the process)
    assert signal.getsignal(signal.SIGPROF) == signal.SIG_IGN
    assert process_hooks.active is None


def test_fallback_profile_context_manager(no_extension, tmp_path):
    out = tmp_path / "cpu.folded"
    with pytest.warns(RuntimeWarning), sampler_mod.profile(out, hz=100, timer="per-thread"):
        python_spin(300_000_000)
    text = out.read_text()
    assert "python_spin" in text
