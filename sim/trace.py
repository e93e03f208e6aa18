"""The trace: what happened on each CPU in a short window of virtual time, for the timeline.

A `Trace` covers `[start_ns, end_ns]` and holds three lists, each in the order things
happened:

* `segments`: `(cpu, thread, t0, t1)`, a thread on a CPU, clipped to the window (the
  machine reports each segment when it ends: `Machine.on_segment`);
* `ticks`: `(cpu, t)`, the ticks of each tick round inside the window;
* `events`: `(t, kind, thread)`, the profiler's events inside the window: an expiry
  (`expiry-thread`, `expiry-process`, `expiry-perf`), a drop (`drop-pending`,
  `drop-perf`), a delivery (`deliver`), and what the handler made of it (`record`,
  `lost`, `discard`, `merge`).

Recording never changes the run: it reads the clock and the threads, draws no random
number and schedules no event, so a run with a trace gives the same report as one
without. `to_dict` gives it as plain lists and numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Trace:
    """What happened in a short window, for the timeline figure."""

    start_ns: int
    end_ns: int
    cpus: int
    tick_ns: int
    threads: list[str]
    segments: list[tuple[int, str, int, int]] = field(default_factory=list)  # cpu, thread, t0, t1
    ticks: list[tuple[int, int]] = field(default_factory=list)  # cpu, t
    events: list[tuple[int, str, str]] = field(default_factory=list)  # t, kind, thread

    def covers(self, now_ns: int) -> bool:
        return self.start_ns <= now_ns <= self.end_ns

    def add_event(self, now_ns: int, kind: str, thread_name: str) -> None:
        if self.covers(now_ns):
            self.events.append((now_ns, kind, thread_name))

    def add_segment(self, cpu: int, thread_name: str, start_ns: int, end_ns: int) -> None:
        if end_ns > self.start_ns and start_ns < self.end_ns:
            self.segments.append(
                (cpu, thread_name, max(start_ns, self.start_ns), min(end_ns, self.end_ns))
            )

    def to_dict(self) -> dict[str, Any]:
        """The trace as plain lists and numbers (JSON-ready)."""
        data = asdict(self)
        for key in ("segments", "ticks", "events"):
            data[key] = [list(item) for item in data[key]]
        return data
