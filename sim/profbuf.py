"""profBuf: the ring buffer between the signal handler and the reader.

Models Go's `src/runtime/profbuf.go` (Go 1.9 onwards). The writer runs in the signal
handler and may not block or allocate, so a sample that does not fit is dropped and only
counted; the next time there is room the writer first stores an *overflow record*
`[4, time of first drop, 0, dropped]`, which the profile builder turns into samples on the
frame `runtime/pprof.lostProfileEvent`. So a loss is never silent: it reaches the profile
as a count, just without stacks.

Invariants kept here, and property-tested:

* Records are contiguous. A CPU sample takes `3 + depth` words (`[length, time, count,
  pc…]`). One that does not fit before the end of the array leaves a rewind marker and
  starts again at index 0; the skipped words count as used until the reader passes them.
* One tag (the goroutine's label pointer) per record, in a second ring of `tag_capacity`
  entries (`profBufTagCount` = 1<<14); it only binds when stacks are shallower than ~6
  frames.
* Go frees space lazily: `read` first commits the *previous* read, so the words a reader
  was handed stay occupied until it calls `read` again (`free_on_read=False`). This
  project's own C ring buffer frees them at once (`free_on_read=True`).
* Records come out in the order they went in, none duplicated, and
  `written + dropped` equals the number of write attempts. The overflow records carry
  every dropped sample, plus the counts of dropped lostExtra records.

A capacity of None makes the buffer unbounded: the naive CPython port keeps its samples
in a dictionary (`sim.runtimes`), so nothing is ever lost there.

Left out: the packed index words and the CAS loops (the simulator has one writer at a
time by construction), the reader-sleeping flag bits, and label maps (tags are counted,
their contents are not modelled).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

OVERFLOW_RECORD_WORDS = 4
SAMPLE_HEADER_WORDS = 3


@dataclass(slots=True)
class Record:
    """One record as the reader sees it."""

    kind: str  # "sample", "overflow" or "lost_extra"
    time_ns: int
    count: int
    words: int
    payload: Any = None  # for samples: (stack, thread)


class ProfBuf:
    def __init__(
        self,
        capacity_words: int | None,
        tag_capacity: int | None = None,
        free_on_read: bool = False,
    ) -> None:
        self.capacity_words = capacity_words
        self.tag_capacity = tag_capacity
        self.free_on_read = free_on_read
        self._records: deque[tuple[Record, int]] = deque()  # (record, words incl. skip)
        self._write_index = 0  # physical word index of the next record
        self._used_words = 0  # words between the committed read point and the write point
        self._used_tags = 0
        self._handed_words = 0  # handed to the reader, not yet committed (Go mode)
        self._handed_tags = 0
        self.overflow_pending = 0
        self.overflow_time_ns = 0
        # Counters, each kept where the event happens.
        self.records_written = self.samples_written = self.samples_dropped = 0
        self.lost_counts_dropped = 0  # counts carried by dropped lostExtra records
        self.overflow_records_written = self.max_used_words = 0

    # -- space ------------------------------------------------------------------------

    @property
    def unread_words(self) -> int:
        return self._used_words - self._handed_words

    def _cost(self, words: int, start: int) -> int | None:
        """Words a record of `words` would take at `start`, counting a rewind skip."""
        if self.capacity_words is None:
            return words
        if words > self.capacity_words:
            return None
        if start + words <= self.capacity_words:
            return words
        return (self.capacity_words - start) + words

    def _fits(self, sizes: list[int]) -> bool:
        if self.capacity_words is None:
            return True
        if self.tag_capacity is not None and self._used_tags + len(sizes) > self.tag_capacity:
            return False
        start, total = self._write_index, 0
        for words in sizes:
            cost = self._cost(words, start)
            if cost is None:
                return False
            total += cost
            start = words if cost != words else start + words
            if start >= self.capacity_words:
                start = 0
        return self._used_words + total <= self.capacity_words

    def _append(self, record: Record) -> None:
        cost = self._cost(record.words, self._write_index)
        assert cost is not None
        if self.capacity_words is not None:
            if cost != record.words:
                self._write_index = record.words  # rewound to 0, record placed at 0
            else:
                self._write_index += record.words
            if self._write_index >= self.capacity_words:
                self._write_index = 0
        self._records.append((record, cost))
        self._used_words += cost
        self._used_tags += 1
        self.records_written += 1
        self.max_used_words = max(self.max_used_words, self._used_words)

    # -- writer -----------------------------------------------------------------------

    def write(self, record: Record) -> bool:
        """Store one record or count it as dropped. Returns whether it was stored."""
        if self.overflow_pending:
            overflow_words = OVERFLOW_RECORD_WORDS
            if self._fits([overflow_words, record.words]):
                self._append(
                    Record("overflow", self.overflow_time_ns, self.overflow_pending, overflow_words)
                )
                self.overflow_records_written += 1
                self.overflow_pending = 0
            else:
                self._drop(record)
                return False
        if not self._fits([record.words]):
            self._drop(record)
            return False
        self._append(record)
        if record.kind == "sample":
            self.samples_written += record.count
        return True

    def _drop(self, record: Record) -> None:
        if self.overflow_pending == 0:
            self.overflow_time_ns = record.time_ns
        # Go adds one per dropped record (saturating at 2^32-1); we carry the samples the
        # record stood for, so a dropped lostExtra record still reaches the profile as a
        # count. Only real samples are dropped *here*; lostExtra ones were counted lost
        # when the extra buffer refused them.
        self.overflow_pending += record.count
        if record.kind == "sample":
            self.samples_dropped += record.count
        else:
            self.lost_counts_dropped += record.count

    # -- reader -----------------------------------------------------------------------

    def read(self, eof: bool = False) -> list[Record]:
        """Everything unread; at EOF also a synthesized pending overflow record."""
        if not self.free_on_read:
            # Commit the previous read: only now does its space return to the writer.
            self._used_words -= self._handed_words
            self._used_tags -= self._handed_tags
            self._handed_words = self._handed_tags = 0
        out: list[Record] = []
        handed_words = handed_tags = 0
        while self._records:
            record, cost = self._records.popleft()
            out.append(record)
            handed_words += cost
            handed_tags += 1
        if self.free_on_read:
            self._used_words -= handed_words
            self._used_tags -= handed_tags
        else:
            self._handed_words, self._handed_tags = handed_words, handed_tags
        if eof and self.overflow_pending:
            out.append(Record("overflow", self.overflow_time_ns, self.overflow_pending, 0))
            self.overflow_pending = 0
        if not out and not self._records and not self.free_on_read and eof:
            self._used_words = self._used_tags = 0
        return out
