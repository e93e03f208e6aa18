"""Lab 7's program: a small log-crunching job that knows where its CPU time goes.

It loops until `--seconds` of wall time have passed: it builds a batch of fake log
lines (`make_lines`), parses them (`parse_records`), then sums a checksum over the parsed
fields (`checksum`). Around every call it reads its own thread CPU clock
(`time.thread_time_ns`, CLOCK_THREAD_CPUTIME_ID), so at the end it knows exactly how many
CPU seconds each function used: the truth a profile of it should show. `--truth PATH`
writes that as JSON for `python -m labs.check 7`.

    python labs/07-profile-your-program/program.py --seconds 2 --truth truth.json
"""

from __future__ import annotations

import argparse
import json
import time


def make_lines(n: int, seed: int) -> list[str]:
    lines = []
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        lines.append(f"{i} user{x % 97} GET /item/{x % 1000} {x % 500} ms")
    return lines


def parse_records(lines: list[str]) -> list[tuple[str, int, int]]:
    records = []
    for line in lines:
        fields = line.split(" ")
        user = fields[1]
        item = 0
        for ch in fields[3][6:]:
            item = item * 10 + (ord(ch) - 48)
        millis = 0
        for ch in fields[4]:
            millis = millis * 10 + (ord(ch) - 48)
        records.append((user, item, millis))
    return records


def checksum(records: list[tuple[str, int, int]]) -> int:
    total = 0
    for user, item, millis in records:
        for ch in user:
            total = (total * 31 + ord(ch)) & 0xFFFFFFFF
        total = (total ^ item * 2654435761 ^ millis) & 0xFFFFFFFF
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="wall time to run")
    parser.add_argument("--truth", help="write each function's CPU seconds here (JSON)")
    args = parser.parse_args()

    cpu = {"make_lines": 0, "parse_records": 0, "checksum": 0}
    deadline = time.perf_counter() + args.seconds
    batches = 0
    result = 0
    while time.perf_counter() < deadline:
        t0 = time.thread_time_ns()
        lines = make_lines(400, batches)
        t1 = time.thread_time_ns()
        records = parse_records(lines)
        t2 = time.thread_time_ns()
        result ^= checksum(records)
        t3 = time.thread_time_ns()
        cpu["make_lines"] += t1 - t0
        cpu["parse_records"] += t2 - t1
        cpu["checksum"] += t3 - t2
        batches += 1
    seconds = {name: ns / 1e9 for name, ns in cpu.items()}
    total = sum(seconds.values())
    print(f"{batches} batches, checksum {result:08x}; CPU by function (thread clock):")
    for name, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<14} {value:7.3f} s  {value / total:6.1%}")
    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as f:
            json.dump({"cpu_seconds": seconds, "total_cpu_seconds": total}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
