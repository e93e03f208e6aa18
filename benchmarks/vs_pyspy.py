"""realprof against py-spy on real third-party programs: do the two agree on where the time goes?

    python benchmarks/vs_pyspy.py                        # every program, table, JSON file
    python benchmarks/vs_pyspy.py --program json.tool    # one program (repeatable flag)
    python benchmarks/vs_pyspy.py --scale 0.05 --min-samples 0   # a quick smoke run
    python benchmarks/vs_pyspy.py --between A.json B.json  # each tool against itself

Each program is a real third-party command-line tool run on a generated input (made
here, from a fixed seed, so every run profiles the same work):

* ``json.tool``: ``python -m json.tool`` (the standard library) pretty-printing a
  generated JSON document (100 MB per unit of ``--scale``). Parsing is C (``_json``);
  writing with an indent is pure Python (the ``_iterencode`` generators of
  ``json.encoder``).
* ``pygments``: ``python -m pygments -l python -f html`` highlighting a generated
  Python source file (regular expressions and generators).
* ``pyflakes``: ``python -m pyflakes`` checking the same kind of generated source
  (``ast`` parsing, then a pure-Python tree walk).
* ``docutils``: ``python -m docutils`` turning a generated reStructuredText document
  into HTML (pure Python).
* ``pycodestyle``: ``python -m pycodestyle`` checking the same kind of generated
  source line by line (regular expressions and ``tokenize``; it keeps little alive).
* ``sqlparse``: ``python -m sqlparse -r -k upper`` reformatting generated SQL statements
  (a lexer and a token tree per statement).
* ``markdown``: ``python -m markdown`` (Python-Markdown) turning a generated Markdown
  document into HTML.
* ``chardet``: ``python -m chardet.cli.chardetect`` (chardet 5, pure Python; chardet 7
  is compiled) guessing the encoding of generated cp1252 text byte by byte.
* ``isort``: ``python -m isort --check-only`` (isort 5, pure Python; isort 9 is
  compiled) sorting a generated file of unsorted import blocks.

Each program runs twice, one run at a time and never beside another of ours: under
``python -m realprof record`` (the perf_event timer at 1000 Hz when the kernel allows
it, else the per-thread CPU timer at 250 Hz: ``--timer auto``, the default) writing
pprof, and under ``py-spy record --format raw --function --full-filenames`` (py-spy
0.4, a sampler in another process that stops the target and reads its memory) at
200 Hz (``--rate``). At the default size (``--scale 3.2``) each program takes about
30 s of CPU, so py-spy's profile too holds more than ``--min-samples`` (default 5,000)
samples; fewer fails the program.

Why py-spy at 200 Hz, stopping the target (``--pyspy-mode blocking``, py-spy's
default). py-spy stops the target for each sample and reads its stack while it stands
still; the stops are wall time, and py-spy counts a stopped thread as active. At
1000 Hz they doubled the run: on an idle machine the programs took 1.5-2.1 s of wall
time per CPU-second under py-spy (1.0 under realprof), and a stop lasts as long as its
read, which grows with the stack it reads, so the shares were shares of a run stretched
unevenly by py-spy itself. At 200 Hz the stops take a few per cent (0.92-1.04 s per
CPU-second measured) and the stretch is under the sampling noise. Without stopping the
target (``--pyspy-mode nonblocking``) py-spy reads a moving stack: on json.tool it lost
a third of its samples to read errors and put 12 % (against 31 %) in the encoder's
generators, whose frames it failed to follow. Stopping has its own bias: a stop asked
from another CPU takes effect at the target's next return to user mode, often the end of
a system call, so functions that make system calls between short stretches of Python
get more than their share (isort's ``os.path.exists``: ``benchmarks/syscall_stop_bias.py``
measures it against a known truth).

What is compared. A function is identified by (file, first line): realprof's pprof
file is read with ``contract.profile_files.read_profile``, whose frames carry
``file`` and ``start_line`` (the code object's ``co_filename`` and
``co_firstlineno``); py-spy's raw (folded) lines hold ``name (file:line)`` frames,
root first, and with ``--function`` the line is the function's first line. Files are
compared as real paths (a relative ``co_filename`` is taken from the run's directory).
Names are not part of the key, so the match does not depend on how either tool
qualifies them (py-spy prints ``Class.method``; realprof's names may be qualified by
module); the last dotted part of the two names is checked to agree and a disagreement
is reported. A realprof frame without a first line falls back to (file, last dotted
part of the name).

For each function among realprof's five highest by flat samples (the leaf share) and
py-spy's five highest: the flat share in each profile, k1/n1 and k2/n2, and the
difference's standard error as two binomial proportions with the pooled share p,
``SE = sqrt(p (1 - p) (1/n1 + 1/n2))``; the function agrees when ``|diff| <= 3 SE``.
The cumulative share (samples with the function anywhere on the stack, once per
sample) is compared the same way and reported, but the verdict is on flat shares.
Consecutive samples of one run are not independent draws, and the two runs differ in
timing, so the binomial SE is a yardstick, not an exact model.

The same window of each run: realprof starts sampling just before the program's main
module runs and cuts its runner's frames (runpy, its ``record``) from the root of every
stack; py-spy sees the whole process, from the interpreter's start-up (``site``, which
reads the environment's ``.pth`` files) to its shutdown. So py-spy's samples are cut the
same way: the runpy frames at the root are removed, and samples without them (start-up,
shutdown, no Python frame) are left out of the shares and reported as "outside".

Output: a table per program, and a JSON file (``--out``, default
``benchmarks/vs-pyspy-DATE.json`` in UTC) with every number, the machine, the Python
and tool versions, and the load average before and after each run (the machine may be
shared: a busy machine changes timing, which both tools see alike, but is reported).
This is a script, not a test. Needs py-spy (``pip install py-spy``; it uses ptrace, so
run as root or with ptrace allowed) and the programs' packages (pygments, pyflakes,
docutils, pycodestyle, sqlparse, markdown, ``chardet<6``, ``isort<6``), in the
environment of the Python that runs this script.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.profile_files import read_profile  # noqa: E402

TOP_N = 5
Z_LIMIT = 3.0
SEED = 12


# ----- generated inputs (fixed seed: the same bytes on every run) ----------------------

_WORD_LIST = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu "
    "signal profile sample thread kernel timer buffer reader writer handler frame stack"
)
WORDS = _WORD_LIST.split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_json(path: Path, scale: float) -> str:
    """About 100 MB × scale of nested records."""
    rng = random.Random(SEED)
    target = int(100_000_000 * scale)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        i = 0
        while written < target:
            record = {
                "id": i,
                "name": _sentence(rng, 2),
                "score": round(rng.uniform(-1000, 1000), 4),
                "active": rng.random() < 0.5,
                "parent": None if rng.random() < 0.3 else rng.randrange(i + 1),
                "tags": [rng.choice(WORDS) for _ in range(rng.randrange(1, 6))],
                "attrs": {rng.choice(WORDS): rng.randrange(10**6) for _ in range(4)},
                "history": [
                    {"t": rng.randrange(10**9), "v": round(rng.random(), 6)}
                    for _ in range(rng.randrange(0, 4))
                ],
                "text": _sentence(rng, rng.randrange(3, 12)),
            }
            chunk = ("," if i else "") + json.dumps(record)
            out.write(chunk)
            written += len(chunk)
            i += 1
        out.write("]\n")
    return f"{written / 1e6:.1f} MB of JSON, {i:,} records"


PYTHON_UNIT = '''
class Widget{i}(Widget{parent}):
    """Widget number {i}: {sentence}."""

    limit = {n}

    def __init__(self, name, size={n2}):
        self.name = name
        self.size = size
        self.items = [x * {k} for x in range(size) if x % 3]

    def total(self, factor=1.5):
        acc = 0.0
        for index, value in enumerate(self.items):
            if value > self.limit and index % 2 == 0:
                acc += value * factor
            elif value < 0:
                acc -= abs(value)
            else:
                acc += {k} / (index + 1)
        return round(acc, 3)

    @property
    def label(self):
        return f"{{self.name}}-{{self.size:04d}}-{i}"


def helper_{i}(data, *args, **kwargs):
    # {sentence}
    mapping = {{"a": {n}, "b": "{word}", "c": [1, 2, 3], "d": None}}
    words = "{sentence}".split()
    result = {{w: len(w) for w in words if w not in mapping}}
    try:
        value = data[{k}] + sum(args)
    except (IndexError, TypeError) as error:
        value = str(error)
    with open(kwargs.get("path", "/dev/null")) as handle:
        handle.read()
    return Widget{i}(str(value), size=len(result)).total() + 0x{n:x}
'''


def make_python(path: Path, units: int) -> str:
    """``units`` class-and-function units of plain Python, about 40 lines each."""
    rng = random.Random(SEED)
    parts = ['"""Generated for benchmarks/vs_pyspy.py."""\n\n\nclass Widget0:\n    pass\n']
    for i in range(1, units + 1):
        parts.append(
            PYTHON_UNIT.format(
                i=i,
                parent=rng.randrange(i),
                sentence=_sentence(rng, 6),
                word=rng.choice(WORDS),
                n=rng.randrange(1000),
                n2=rng.randrange(1, 50),
                k=rng.randrange(1, 9),
            )
        )
    text = "\n".join(parts)
    path.write_text(text, encoding="utf-8")
    return f"{text.count(chr(10)):,} lines of Python ({len(text) / 1e6:.1f} MB)"


def _paragraph(
    rng: random.Random, emphasis: str, strong: str, code: str, reference: Callable[[str], str]
) -> str:
    """40 words with an emphasis, a strong word, a code span and a reference, in the
    markup the format strings and `reference` give (reStructuredText or Markdown)."""
    words = [rng.choice(WORDS) for _ in range(40)]
    words[3] = emphasis.format(words[3])
    words[9] = strong.format(words[9])
    words[15] = code.format(words[15])
    words[21] = reference(words[21])
    return " ".join(words) + ".\n"


def make_rst(path: Path, sections: int) -> str:
    """``sections`` sections of reStructuredText: inline markup, lists, a table, a literal
    block, internal references."""
    rng = random.Random(SEED)
    parts = ["==================\nGenerated document\n==================\n"]
    for i in range(sections):
        title = f"Section {i}: {_sentence(rng, 3)}"
        parts.append(f".. _target{i}:\n\n{title}\n{'=' * len(title)}\n")
        for _ in range(3):
            parts.append(
                _paragraph(
                    rng,
                    "*{}*",
                    "**{}**",
                    "``{}()``",
                    lambda _w, i=i: f"target{rng.randrange(i + 1)}_",
                )
            )
        parts.append("".join(f"* {_sentence(rng, 8)}\n" for _ in range(4)))
        parts.append("".join(f"{n}. {_sentence(rng, 6)}\n" for n in range(1, 4)))
        rule = "========  =====  ======\n"
        rows = "".join(
            f"{rng.choice(WORDS):8}  {rng.randrange(10**4):5}  {rng.random():.4f}\n"
            for _ in range(3)
        )
        parts.append(f"{rule}name      count  share\n{rule}{rows}{rule}")
        parts.append(f"Code::\n\n    def f{i}(x):\n        return x * {i}\n")
    text = "\n".join(parts)
    path.write_text(text, encoding="utf-8")
    return f"{sections:,} sections of reStructuredText ({len(text) / 1e6:.1f} MB)"


def make_sql(path: Path, statements: int) -> str:
    """``statements`` SQL statements (selects with joins and conditions, inserts), one
    per line, unformatted."""
    rng = random.Random(SEED)
    parts = []
    for i in range(statements):
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        if i % 3:
            parts.append(
                f"select t.id, t.{a}, u.{b}, count(*) as n from {a}_table t join {b}_table u "
                f"on t.id = u.{a}_id where t.{b} > {rng.randrange(1000)} and u.{a} like "
                f"'%{rng.choice(WORDS)}%' group by t.id, t.{a}, u.{b} order by n desc "
                f"limit {rng.randrange(1, 100)};"
            )
        else:
            values = ", ".join(f"({rng.randrange(10**6)}, '{rng.choice(WORDS)}')" for _ in range(4))
            parts.append(f"insert into {a}_table (id, name) values {values};")
    text = "\n".join(parts) + "\n"
    path.write_text(text, encoding="utf-8")
    return f"{statements:,} SQL statements ({len(text) / 1e6:.1f} MB)"


def make_markdown(path: Path, sections: int) -> str:
    """``sections`` sections of Markdown: headings, emphasis, links, lists, code."""
    rng = random.Random(SEED)
    parts = []
    for i in range(sections):
        parts.append(f"## Section {i}: {_sentence(rng, 3)}\n")
        for _ in range(3):
            link = f"https://example.org/{i}"
            parts.append(
                _paragraph(
                    rng, "*{}*", "**{}**", "`{}()`", lambda word, link=link: f"[{word}]({link})"
                )
            )
        parts.append("".join(f"* {_sentence(rng, 8)}\n" for _ in range(4)))
        parts.append("".join(f"{n}. {_sentence(rng, 6)}\n" for n in range(1, 4)))
        parts.append(f"    def f{i}(x):\n        return x * {i}\n")
    text = "\n".join(parts)
    path.write_text(text, encoding="utf-8")
    return f"{sections:,} sections of Markdown ({len(text) / 1e6:.1f} MB)"


ACCENTED_WORDS = [
    *("café", "naïve", "façade", "élève", "garçon", "über", "straße", "größe"),
    *("mañana", "señor", "crème", "brûlée", "déjà", "àpropos"),
]


def make_latin_text(path: Path, scale: float) -> str:
    """About 4.5 MB × scale of Western European text encoded in cp1252: no multi-byte
    encoding fits it and no single-byte one wins outright, so chardet's probers read it
    all (a pure-ASCII file would be decided on its first line)."""
    rng = random.Random(SEED)
    vocabulary = ACCENTED_WORDS + WORDS[:6]
    target = int(4_500_000 * scale)
    lines, size = [], 0
    while size < target:
        line = " ".join(rng.choice(vocabulary) for _ in range(8))
        lines.append(line)
        size += len(line.encode("cp1252")) + 1
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    return f"{size / 1e6:.1f} MB of cp1252 text, {len(lines):,} lines"


def make_imports(path: Path, blocks: int) -> str:
    """``blocks`` unsorted blocks of 12 imports (plain, dotted, and ``from`` imports of
    one to five names), each followed by a small function: isort's work is the import
    blocks, so the file is mostly those."""
    rng = random.Random(SEED)
    stdlib = ["os", "sys", "re", "json", "typing", "collections"]
    parts = []
    for i in range(blocks):
        imports = []
        for _ in range(12):
            kind = rng.random()
            if kind < 0.3:
                imports.append(f"import {rng.choice(WORDS)}.{rng.choice(WORDS)}")
            elif kind < 0.5:
                imports.append(f"import {rng.choice(stdlib)}")
            else:
                count = rng.randrange(1, 6)
                names = ", ".join(f"{rng.choice(WORDS)}{rng.randrange(50)}" for _ in range(count))
                imports.append(f"from {rng.choice(WORDS)}.{rng.choice(WORDS)} import {names}")
        parts.append("\n".join(imports) + f"\n\n\ndef f{i}(x):\n    return x * {i}\n\n\n")
    text = "".join(parts)
    path.write_text(text, encoding="utf-8")
    return f"{blocks:,} import blocks ({text.count(chr(10)):,} lines of Python)"


@dataclass(frozen=True)
class Program:
    name: str
    package: str  # distribution whose version is reported
    make: Callable[[Path, float], tuple[list[str], str]]  # (workdir, scale) -> (argv, input)


def _json_tool(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input.json"
    return ["-m", "json.tool", str(path), os.devnull], make_json(path, scale)


def _pygments(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input_pygments.py"
    what = make_python(path, max(1, int(3000 * scale)))
    return ["-m", "pygments", "-l", "python", "-f", "html", "-o", os.devnull, str(path)], what


def _pyflakes(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input_pyflakes.py"
    return ["-m", "pyflakes", str(path)], make_python(path, max(1, int(4500 * scale)))


def _pycodestyle(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input_pycodestyle.py"
    what = make_python(path, max(1, int(3000 * scale)))
    return ["-m", "pycodestyle", "--max-line-length=200", "-qq", str(path)], what


def _sqlparse(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input.sql"
    what = make_sql(path, max(1, int(4000 * scale)))
    return ["-m", "sqlparse", "-r", "-k", "upper", "-o", os.devnull, str(path)], what


def _markdown(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input.md"
    what = make_markdown(path, max(1, int(6000 * scale)))
    return ["-m", "markdown", "-f", os.devnull, str(path)], what


def _docutils(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input.rst"
    what = make_rst(path, max(1, int(1500 * scale)))
    return ["-m", "docutils", str(path), os.devnull], what


def _chardet(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input_cp1252.txt"
    return ["-m", "chardet.cli.chardetect", str(path)], make_latin_text(path, scale)


def _isort(work: Path, scale: float) -> tuple[list[str], str]:
    path = work / "input_isort.py"
    what = make_imports(path, max(1, int(20_000 * scale)))
    # --check-only sorts every block as a rewrite would, compares, and prints one line
    return ["-m", "isort", "--check-only", str(path)], what


PROGRAMS = {
    p.name: p
    for p in (
        Program("json.tool", "", _json_tool),
        Program("pygments", "pygments", _pygments),
        Program("pyflakes", "pyflakes", _pyflakes),
        Program("docutils", "docutils", _docutils),
        Program("pycodestyle", "pycodestyle", _pycodestyle),
        Program("sqlparse", "sqlparse", _sqlparse),
        Program("markdown", "markdown", _markdown),
        Program("chardet", "chardet", _chardet),
        Program("isort", "isort", _isort),
    )
}


# ----- reading the two profiles -------------------------------------------------------

Key = tuple[str, Any]  # (real path of the file, first line) or (real path, "name:" + short name)


def short_name(name: str) -> str:
    """The last dotted part of a function name: 'raw_decode' for 'JSONDecoder.raw_decode',
    for 'json.decoder:JSONDecoder.raw_decode' and for 'json.decoder.JSONDecoder.raw_decode'."""
    return re.split(r"[.:]", name)[-1] or name


def real_file(file: str, cwd: Path) -> str:
    if not file or file.startswith("<"):
        return file  # '<frozen runpy>', '<string>': not a path
    path = Path(file) if os.path.isabs(file) else cwd / file
    return os.path.realpath(path)


@dataclass
class Counts:
    """Flat and cumulative samples per function key, from one profile."""

    total: int = 0
    flat: dict[Key, int] = field(default_factory=dict)
    cum: dict[Key, int] = field(default_factory=dict)
    names: dict[Key, str] = field(default_factory=dict)  # key -> the tool's own name for it

    def add(self, stack: list[tuple[Key, str]], count: int) -> None:
        """``stack`` leaf first, as (key, name) pairs."""
        self.total += count
        leaf_key, _ = stack[0]
        self.flat[leaf_key] = self.flat.get(leaf_key, 0) + count
        for key, name in stack:
            self.names.setdefault(key, name)
        for key in {key for key, _ in stack}:
            self.cum[key] = self.cum.get(key, 0) + count

    def top(self, n: int) -> list[Key]:
        return [k for k, _ in sorted(self.flat.items(), key=lambda kv: (-kv[1], str(kv[0])))][:n]


def realprof_counts(path: Path, cwd: Path) -> tuple[Counts, dict[str, Any]]:
    profile = read_profile(path)
    counts = Counts()
    gc_samples = 0
    for (stack, _thread), count in profile.samples.items():
        frames = []
        if any(f.function == GC_FRAME for f in stack):
            gc_samples += count
        for f in stack:
            if f.function == GC_FRAME:
                # py-spy has no such frame: it charges a collection to the frame that
                # started it, the [garbage collection] frame's caller here.
                continue
            file = real_file(f.file, cwd)
            key = (file, f.start_line) if f.start_line else (file, "name:" + short_name(f.function))
            frames.append((key, f.function))
        counts.add(frames, count)
    info = {
        "samples": profile.total_samples,
        "lost": dict(profile.lost),
        "rate_hz": profile.rate_hz,
        "threads": profile.by_thread(),
        "gc_samples": gc_samples,
    }
    return counts, info


GC_FRAME = "[garbage collection]"  # realprof's frame for the cyclic GC (realprof/sampler.py)
PYSPY_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


RUNNER_FILES = ("runpy.py", "<frozen runpy>")


def pyspy_counts(text: str, cwd: Path) -> tuple[Counts, int]:
    """py-spy's raw output: one ``frame;frame;... COUNT`` line per stack, root first, each
    frame ``name (file:line)``. Only the program's own samples are kept, as realprof
    records them: the runpy frames at the root are cut, and a sample without them
    (interpreter start-up, ``site``, shutdown, no Python frame at all) is left out and
    counted in the second value returned."""
    counts, outside = Counts(), 0
    for raw in text.splitlines():
        if not raw.strip():
            continue
        stack_text, _, count_text = raw.rpartition(" ")
        parts = stack_text.split(";") if stack_text else []
        cut = 0
        while cut < len(parts) and _in_runner(parts[cut]):
            cut += 1
        if cut == 0 or cut == len(parts):
            outside += int(count_text)
            continue
        frames = []
        for part in reversed(parts[cut:]):  # leaf first
            m = PYSPY_FRAME.match(part)
            if m is None:  # a frame without a file ('process 12', a thread name)
                frames.append((("", "name:" + part), part))
                continue
            file = real_file(m["file"], cwd)
            line = int(m["line"] or 0)
            key = (file, line) if line else (file, "name:" + short_name(m["name"]))
            frames.append((key, m["name"]))
        counts.add(frames, int(count_text))
    return counts, outside


def _in_runner(part: str) -> bool:
    m = PYSPY_FRAME.match(part)
    return m is not None and m["file"].endswith(RUNNER_FILES)


# ----- the comparison -----------------------------------------------------------------


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> dict[str, float | bool]:
    """Shares k1/n1 and k2/n2, their difference, its pooled binomial SE, z, and whether
    |diff| <= Z_LIMIT SE (equal shares always agree, even when SE is 0)."""
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p1 - p2
    z = diff / se if se > 0 else 0.0
    return {
        "realprof": p1,
        "pyspy": p2,
        "diff": diff,
        "se": se,
        "z": z,
        "agree": abs(diff) <= Z_LIMIT * se,
    }


def compare(rp: Counts, spy: Counts) -> list[dict[str, Any]]:
    """One row per function in either tool's top TOP_N by flat samples, realprof's first."""
    rp_top, spy_top = rp.top(TOP_N), spy.top(TOP_N)
    rows = []
    for key in rp_top + [k for k in spy_top if k not in rp_top]:
        rp_name, spy_name = rp.names.get(key, ""), spy.names.get(key, "")
        top = [tool for tool, keys in (("realprof", rp_top), ("py-spy", spy_top)) if key in keys]
        rows.append(
            {
                "function": spy_name or rp_name,
                "realprof_name": rp_name,
                "pyspy_name": spy_name,
                # None: the function is in one profile only, nothing to compare.
                "names_agree": short_name(rp_name) == short_name(spy_name)
                if rp_name and spy_name
                else None,
                "file": key[0],
                "first_line": key[1] if isinstance(key[1], int) else None,
                "in_top": "both" if len(top) == 2 else top[0],
                "flat_counts": [rp.flat.get(key, 0), spy.flat.get(key, 0)],
                "flat": two_proportions(
                    rp.flat.get(key, 0), rp.total, spy.flat.get(key, 0), spy.total
                ),
                "cum_counts": [rp.cum.get(key, 0), spy.cum.get(key, 0)],
                "cum": two_proportions(
                    rp.cum.get(key, 0), rp.total, spy.cum.get(key, 0), spy.total
                ),
            }
        )
    return rows


# ----- running ------------------------------------------------------------------------


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run(cmd: list[str], cwd: Path, timeout: float) -> dict[str, Any]:
    before = os.times()
    load_before = loadavg()
    start = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    # The tools' own lines (realprof's summary, py-spy's "Samples: N Errors: E"), and the
    # end of the rest (the program's output: pyflakes' warnings, docutils' messages).
    ours = [
        line for line in proc.stdout.splitlines() if line.startswith(("realprof", "  ", "py-spy>"))
    ]
    wall = time.monotonic() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return {
        "cmd": cmd,
        "exit": proc.returncode,
        "wall_s": round(wall, 3),
        "children_cpu_s": round(cpu, 3),
        "output": "\n".join(ours)[-6000:],
        "output_tail": proc.stdout[-1000:],
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


def realprof_record_command(timer: str, hz: int, out: Path, argv: list[str]) -> list[str]:
    """`python -m realprof record` of the program `argv`, writing `out`."""
    command = [sys.executable, "-m", "realprof", "record", "--timer", timer, "--hz", str(hz)]
    return [*command, "-o", str(out), *argv]


def choose_timer(work: Path) -> tuple[str, int]:
    """perf at 1000 Hz if the kernel lets realprof open the event, else per-thread 250 Hz."""
    script = work / "probe.py"
    script.write_text("sum(i * i for i in range(200_000))\n", encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "realprof",
        "record",
        "--timer",
        "perf",
        "--hz",
        "1000",
        "-o",
        str(work / "probe.pb.gz"),
        str(script),
    ]
    ok = subprocess.run(cmd, cwd=work, capture_output=True).returncode == 0
    return ("perf", 1000) if ok else ("per-thread", 250)


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info(pyspy: str) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    spy = subprocess.run([pyspy, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu_model": model,
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "py_spy": spy,
        "sigprof_lab": f"{version('sigprof-lab')} (commit {commit or 'unknown'})",
    }


def profile_program(
    prog: Program, args: argparse.Namespace, work: Path, timer: str, hz: int, pyspy: str
) -> dict[str, Any]:
    argv, what = prog.make(work, args.scale)
    rp_out, spy_out = work / f"{prog.name}.realprof.pb.gz", work / f"{prog.name}.pyspy.txt"
    rp_cmd = realprof_record_command(timer, hz, rp_out, argv)
    spy_cmd = [
        pyspy,
        "record",
        "--format",
        "raw",
        "--function",
        "--full-filenames",
        "--rate",
        str(args.rate),
        *(["--nonblocking"] if args.pyspy_mode == "nonblocking" else []),
        "-o",
        str(spy_out),
        "--",
        sys.executable,
        *argv,
    ]
    print(f"{prog.name}: {what}; running under realprof ...", file=sys.stderr, flush=True)
    rp_run = run(rp_cmd, work, args.timeout)
    print(f"{prog.name}: running under py-spy ...", file=sys.stderr, flush=True)
    spy_run = run(spy_cmd, work, args.timeout)
    result: dict[str, Any] = {
        "program": prog.name,
        "command": ["python", *argv],
        "package": f"{prog.package} {version(prog.package)}" if prog.package else "stdlib",
        "input": what,
        "realprof_run": rp_run,
        "pyspy_run": spy_run,
    }
    if not rp_out.exists() or not spy_out.exists():
        result["error"] = "a profile was not written (see the runs' stderr)"
        return result
    rp, rp_info = realprof_counts(rp_out, work)
    spy, outside = pyspy_counts(spy_out.read_text(encoding="utf-8"), work)
    m = re.search(r"Samples: (\d+) Errors: (\d+)", spy_run["output"])
    result["realprof"] = {"timer": timer, "hz": hz, **rp_info}
    result["pyspy"] = {
        "rate_hz": args.rate,
        "mode": args.pyspy_mode,
        "samples": spy.total,
        "outside": outside,
        "reported_samples": int(m[1]) if m else None,
        "errors": int(m[2]) if m else None,
    }
    capture = re.search(r"capture ([\d.]+)%", rp_run["output"])
    result["realprof"]["capture_percent"] = float(capture[1]) if capture else None
    cpu = re.search(r"([\d.]+) s process CPU", rp_run["output"])
    result["realprof"]["process_cpu_s"] = float(cpu[1]) if cpu else None
    # py-spy samples the threads that are not idle on a wall-clock schedule: a thread
    # waiting for a CPU (a busy machine) or stalled counts. Its samples over the rate,
    # divided by the CPU time realprof measured for the same work, is how much wall
    # time py-spy counted per CPU-second: near 1 the two measure the same thing.
    if cpu and float(cpu[1]) > 0:
        active_s = (spy.total + outside) / args.rate
        result["pyspy"]["active_s_per_cpu_s"] = round(active_s / float(cpu[1]), 3)
    rows = compare(rp, spy)
    result["rows"] = rows
    enough = min(rp.total, spy.total) >= args.min_samples
    result["enough_samples"] = enough
    result["agree"] = enough and all(r["flat"]["agree"] for r in rows)
    return result


# ----- output -------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}"


def table(result: dict[str, Any]) -> str:
    lines = [
        f"== {result['program']}: {' '.join(result['command'])}",
        f"   input: {result['input']}; {result['package']}",
    ]
    if "error" in result:
        return "\n".join([*lines, f"   ERROR: {result['error']}"])
    rp, spy = result["realprof"], result["pyspy"]
    rr, sr = result["realprof_run"], result["pyspy_run"]
    lines.append(
        f"   realprof: {rp['timer']} {rp['hz']} Hz, {rp['samples']:,} samples "
        f"(lost {sum(rp['lost'].values())}, capture {rp['capture_percent']}%), "
        f"{rr['wall_s']:.1f} s wall, exit {rr['exit']}; load {rr['loadavg_before']}"
    )
    if rp.get("gc_samples"):
        lines.append(
            f"   realprof: {rp['gc_samples'] / rp['samples']:.1%} of the samples in garbage "
            "collection (compared as py-spy counts them: in the frame that started it)"
        )
    lines.append(
        f"   py-spy:   {spy['rate_hz']} Hz, {spy['samples']:,} samples (outside the program "
        f"{spy['outside']}, errors {spy['errors']}), "
        f"{sr['wall_s']:.1f} s wall, exit {sr['exit']}; load {sr['loadavg_before']}"
    )
    lines.append(
        f"   realprof measured {rp.get('process_cpu_s')} s of process CPU; py-spy counted "
        f"{spy.get('active_s_per_cpu_s')} s of non-idle wall time per CPU-second"
    )
    lines.append(
        f"   {'function':<34} {'file:first line':<34} {'top':>8}  {'rp flat%':>8} {'spy flat%':>9}"
        f" {'diff':>6} {'3 SE':>6} {'z':>6} {'ok':>3}  {'rp cum%':>7} {'spy cum%':>8} {'z':>6}"
    )
    for r in result["rows"]:
        f, c = r["flat"], r["cum"]
        where = f"{Path(r['file']).name}:{r['first_line'] or '?'}"
        name = r["function"] + (" (!)" if r["names_agree"] is False else "")
        cum = f"{_pct(c['realprof']):>7} {_pct(c['pyspy']):>8} {c['z']:6.2f}"
        lines.append(
            f"   {name[:34]:<34} {where[:34]:<34} {r['in_top']:>8}  {_pct(f['realprof']):>8} "
            f"{_pct(f['pyspy']):>9} {100 * f['diff']:6.2f} {300 * f['se']:6.2f} {f['z']:6.2f} "
            f"{'yes' if f['agree'] else 'NO':>3}  {cum}"
        )
    verdict = "AGREE" if result["agree"] else "DISAGREE"
    if not result["enough_samples"]:
        verdict += " (too few samples: raise --scale)"
    lines.append(f"   verdict: {verdict}")
    return "\n".join(lines)


def between_runs(first: dict[str, Any], second: dict[str, Any]) -> str:
    """Each tool against itself: the same rows' flat shares in two saved runs, z as above.
    Tells a tool's run-to-run spread (load, timing) from a disagreement between tools."""
    lines = [
        f"{'program':<10} {'function':<34} {'rp 1':>6} {'rp 2':>6} {'z':>6}  "
        f"{'spy 1':>6} {'spy 2':>6} {'z':>6}"
    ]
    later = {p["program"]: p for p in second["programs"] if "rows" in p}
    for one in first["programs"]:
        two = later.get(one["program"])
        if "rows" not in one or two is None:
            continue
        rows_two = {(r["file"], r["first_line"]): r for r in two["rows"]}
        n = [[one["realprof"]["samples"], two["realprof"]["samples"]],
             [one["pyspy"]["samples"], two["pyspy"]["samples"]]]  # fmt: skip
        for r in one["rows"]:
            other = rows_two.get((r["file"], r["first_line"]))
            if other is None:
                continue
            cells = []
            for tool in (0, 1):
                k1, k2 = r["flat_counts"][tool], other["flat_counts"][tool]
                t = two_proportions(k1, n[tool][0], k2, n[tool][1])
                cells.append(f"{_pct(t['realprof'])} {_pct(t['pyspy'])} {t['z']:6.2f}")
            lines.append(f"{one['program']:<10} {r['function'][:34]:<34} {cells[0]}  {cells[1]}")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--program",
        action="append",
        choices=sorted(PROGRAMS),
        help="program to run (repeatable; default all)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="input size factor (3.2: about 30 s of CPU per program)",
    )
    parser.add_argument("--rate", type=int, default=200, help="py-spy's rate in Hz (200)")
    parser.add_argument(
        "--pyspy-mode",
        choices=("blocking", "nonblocking"),
        default="blocking",
        help="py-spy stops the target for each sample (blocking, its default and ours) or "
        "reads it running (nonblocking)",
    )
    parser.add_argument("--timer", choices=("auto", "perf", "per-thread"), default="auto")
    parser.add_argument("--min-samples", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=600.0, help="per run, seconds")
    parser.add_argument("--py-spy", default=None, help="py-spy executable")
    parser.add_argument("--workdir", default=None, help="keep inputs and profiles here")
    parser.add_argument(
        "--out", default=None, help="JSON file (default benchmarks/vs-pyspy-DATE.json)"
    )
    parser.add_argument(
        "--between",
        nargs=2,
        metavar="JSON",
        help="run nothing: compare two saved runs, each tool against itself",
    )
    args = parser.parse_args(None if argv is None else list(argv))
    if args.between:
        first, second = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.between)
        print(between_runs(first, second))
        return 0
    if (args.scale is not None and args.scale <= 0) or args.rate <= 0:
        parser.exit(2, "vs_pyspy.py: --scale and --rate must be positive\n")

    pyspy = args.py_spy or shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        parser.exit(2, f"vs_pyspy.py: py-spy not found ({pyspy}); pip install py-spy\n")
    names = args.program or list(PROGRAMS)
    missing = [
        n for n in names if PROGRAMS[n].package and version(PROGRAMS[n].package) == "not installed"
    ]
    if missing:
        parser.exit(
            2,
            f"vs_pyspy.py: not installed: {', '.join(missing)}; pip install {' '.join(missing)}\n",
        )

    now = _dt.datetime.now(_dt.UTC)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="vs_pyspy."))
    work.mkdir(parents=True, exist_ok=True)
    if args.timer == "auto":
        timer, hz = choose_timer(work)
    else:
        timer, hz = args.timer, 1000 if args.timer == "perf" else 250
    if args.scale is None:  # about 30 s of CPU per program: 6,000 py-spy samples at 200 Hz
        args.scale = 3.2
    report: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(pyspy),
        "settings": {
            "timer": timer,
            "hz": hz,
            "pyspy_rate": args.rate,
            "pyspy_mode": args.pyspy_mode,
            "scale": args.scale,
            "min_samples": args.min_samples,
            "top_n": TOP_N,
            "z_limit": Z_LIMIT,
        },
        "loadavg_before": loadavg(),
        "programs": [],
    }
    for name in names:  # one at a time: never two profiled programs at once
        result = profile_program(PROGRAMS[name], args, work, timer, hz, pyspy)
        report["programs"].append(result)
        print(table(result), flush=True)
    report["loadavg_after"] = loadavg()
    agreeing = sum(1 for r in report["programs"] if r.get("agree"))
    report["programs_agreeing"] = agreeing
    m = report["machine"]
    print(
        f"\n{report['date']}: {m['cpu_model']}, nproc {m['nproc']}, {m['python']}, {m['kernel']}, "
        f"{m['py_spy']}, sigprof-lab {m['sigprof_lab']}"
    )
    print(
        f"load average (1/5/15 min): {report['loadavg_before']} before, "
        f"{report['loadavg_after']} after"
    )
    print(
        f"{agreeing} of {len(names)} programs agree (every top-{TOP_N} flat share within "
        f"{Z_LIMIT:g} SE, at least {args.min_samples:,} samples per profile)"
    )
    out = Path(args.out) if args.out else ROOT / "benchmarks" / f"vs-pyspy-{now:%Y-%m-%d}.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}; inputs and profiles in {work}")
    return 0 if agreeing == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
