"""`realprof.deadline.StopOnce`, the stop behind `record --duration`: once, whoever comes
first (the deadline or the program's end), and never an error into the program."""

from __future__ import annotations

import threading
import time

from realprof.deadline import StopOnce


def make(seconds: float | None, fail_first: bool = False) -> tuple[StopOnce, dict[str, list]]:
    calls: dict[str, list] = {"stop": [], "reached": [], "failed": []}

    def stop() -> None:
        calls["stop"].append(threading.current_thread().name)
        if fail_first and len(calls["stop"]) == 1:
            raise RuntimeError("boom")

    once = StopOnce(
        stop, seconds, lambda: calls["reached"].append(1), lambda e: calls["failed"].append(e)
    )
    return once, calls


def wait_for(condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)


def test_the_deadline_stops_once_and_the_end_does_nothing_more() -> None:
    once, calls = make(0.05)
    once.start()
    wait_for(lambda: calls["reached"])
    once.at_end()

    assert calls == {"stop": ["realprof-duration"], "reached": [1], "failed": []}
    assert once.early is True


def test_an_end_before_the_deadline_stops_once_and_the_thread_ends() -> None:
    once, calls = make(30)
    once.start()
    once.at_end()
    wait_for(lambda: not any(t.name == "realprof-duration" for t in threading.enumerate()))

    assert calls == {"stop": ["MainThread"], "reached": [], "failed": []}
    assert once.early is False
    assert not any(t.name == "realprof-duration" for t in threading.enumerate())


def test_without_seconds_no_thread_is_started() -> None:
    before = threading.active_count()
    once, calls = make(None)
    once.start()

    assert threading.active_count() == before
    once.at_end()
    assert calls["stop"] == ["MainThread"]


def test_a_failed_stop_at_the_deadline_is_reported_and_the_end_tries_again() -> None:
    once, calls = make(0.01, fail_first=True)
    once.start()
    wait_for(lambda: calls["failed"])
    once.at_end()

    assert [str(e) for e in calls["failed"]] == ["boom"]
    assert calls["stop"] == ["realprof-duration", "MainThread"]
    assert calls["reached"] == []
    assert once.early is False
