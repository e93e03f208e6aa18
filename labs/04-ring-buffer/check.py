"""Lab 4 check: the smallest power-of-two buffer (in words) with which the starved-reader
scenario loses no sample. The check simulates the answer and half of it."""

from __future__ import annotations

from labs import REPO_DIR
from labs.common import Usage, number, playground_reading, simulate, want_args

USAGE = (
    "WORDS   (smallest power-of-two profiler.buffer_words that loses nothing)"
    " | playground RATIO   (playground: starved-reader, reader every 25 ms)"
)
SCENARIO = REPO_DIR / "scenarios/starved-reader.yaml"


def lost(words: int) -> int:
    return simulate(SCENARIO, [f"profiler.buffer_words={words}"]).samples_lost_overflow


def check(args: list[str]) -> tuple[bool, str]:
    if args[:1] == ["playground"]:
        return playground_reading(
            args[1:],
            scenario="starved-reader",
            overrides=["profiler.reader_period_ms=25"],
            field="capture_ratio",
            what="RATIO",
            tolerance=0.02,
        )
    want_args(args, 1)
    value = number(args[0], "WORDS")
    if value != int(value) or not 16 <= value <= 1 << 24:
        raise Usage(f"WORDS must be a whole number in [16, 16777216], got {args[0]!r}")
    words = int(value)
    if words & (words - 1):
        return False, (
            f"{words} is not a power of two; the job asks for the smallest power of two "
            "(Go's buffer is 1<<17 words), e.g. 16384, 32768, 65536 ..."
        )
    at_answer = lost(words)
    if at_answer:
        return False, (
            f"with {words} words {at_answer} samples are still lost (buffer full): the "
            "reader drains every 250 ms, so the buffer must hold 250 ms of records, and "
            "Go frees what a read returned only at the next read"
        )
    at_half = lost(words // 2)
    if not at_half:
        return False, (f"{words} words lose nothing, but {words // 2} lose nothing too: go smaller")
    return True, (
        f"{words} words lose nothing, {words // 2} lose {at_half}. Each record of a "
        "64-frame stack takes 67 words; 250 ms of them from 16 threads at 250 Hz, held "
        "until the read after next, is what the buffer must hold."
    )
