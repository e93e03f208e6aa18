"""Finding and resolving references in the repository's text, offline.

Shared by `tests/test_references.py` (every in-repo path and module name resolves, every
external link points at a primary source) and meant for the sources check of the
accuracy issue (pinned links to Go and Linux files): import `PRIMARY_SOURCES`, `urls`,
`is_primary` and `texts` from here rather than writing them again.

A reference is:

* an in-repo path: a token starting with one of the repository's top-level folders
  (`sim/model.py`, `docs/reference/scenario.md`, `scenarios/*.yaml`); templates resolve
  if something matches them (`labs/NN-slug/check.py`: all-capital words, `*` and `{a,b}`
  are wildcards);
* a bare Markdown file name (`README.md`): some file of that name must exist;
* a module name (`sim.model`, `contract.report.render_text`): the module must exist and
  the first name after it must be defined in it (a C extension's names in its source);
* an external link (`https://...`): it must point at a primary source, the project that
  wrote the code, the issue, the standard or the manual page cited.

A path inside the text of a Markdown link to an external page (`[async-profiler
docs/X.md](https://github.com/...)`) is that project's, not ours, and is not checked as
an in-repo path.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "sim", "figures", "realprof", "lab", "docsgen", "labs")
TOP_FOLDERS = (*PACKAGES, "scenarios", "docs", "tests", "benchmarks", "machines", ".ci", "web")

# Where a link may point: the primary source of what it cites. GitHub by repository.
PRIMARY_SOURCES = (
    # Go
    "https://github.com/golang/go/",
    "https://go.googlesource.com/",
    "https://go.dev/",
    "https://pkg.go.dev/",
    "https://go-review.googlesource.com/",
    # Linux
    "https://github.com/torvalds/linux/",
    "https://git.kernel.org/",
    "https://elixir.bootlin.com/",
    "https://man7.org/linux/man-pages/",
    "https://lore.kernel.org/",
    # Python
    "https://github.com/python/cpython/",
    "https://docs.python.org/",
    "https://peps.python.org/",
    # Other projects cited for their own code, issues or formats
    "https://github.com/gperftools/gperftools/",
    "https://github.com/async-profiler/async-profiler/",
    "https://github.com/DataDog/go-profiler-notes/",  # its measurement of unwind cost
    "https://github.com/pytest-dev/pytest/",
    "https://github.com/google/pprof/",
    "https://github.com/jlfwong/speedscope/",
    "https://github.com/pyodide/pyodide/",  # the playground's Python in the browser
    "https://www.speedscope.app",  # the viewer itself and its file-format schema
    "https://json-schema.org/draft/",  # the JSON Schema standard ($schema)
)

URL = re.compile(r"https?://[^\s)<>\]\"'`,|]+")
EXTERNAL_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\((https?://[^)\s]+)\)")
_TOPS = "|".join(re.escape(t) for t in TOP_FOLDERS)
PATH = re.compile(r"(?<![\w./-])((?:" + _TOPS + r")/[\w./*{},-]*[\w*}])")
BARE_MARKDOWN = re.compile(r"(?<![\w./-])([\w-]+\.md)\b")
MODULE = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")(?:\.[A-Za-z_]\w*)+)")
FILE_SUFFIXES = ("py", "yaml", "yml", "md", "json", "c", "gz", "pb", "png", "folded", "csv")
PLACEHOLDER = re.compile(r"(?<![A-Za-z])[A-Z]+(?![a-z])(?:-[a-z]+)?")


def urls(text: str) -> list[str]:
    return [m.group().rstrip(".;:") for m in URL.finditer(text)]


def is_primary(url: str) -> bool:
    return url.startswith(PRIMARY_SOURCES)


def _is_loopback(url: str) -> bool:
    return re.match(r"https?://(127\.|localhost|\[::1\])", url) is not None


def external_urls(text: str) -> list[str]:
    return [u for u in urls(text) if not _is_loopback(u)]


def comments_and_docstrings(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and docstring of a Python file."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                yield first.lineno, first.value.value


def texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of the prose of a file: comments and docstrings of Python, every line
    of anything else; in Markdown, the text of external links is replaced by their URL."""
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        yield from comments_and_docstrings(source)
        return
    for number, line in enumerate(source.splitlines(), 1):
        if path.suffix == ".md":
            line = EXTERNAL_LINK.sub(lambda m: m[2], line)
        yield number, line


def _pattern(reference: str) -> str | None:
    """A glob for a templated path, None for a plain one."""
    glob = re.sub(r"\{[^}]*\}", "*", reference)
    glob = "/".join(PLACEHOLDER.sub("*", part) for part in glob.split("/"))
    return glob if "*" in glob else None


def path_resolves(reference: str, where: Path) -> bool:
    glob = _pattern(reference)
    if glob is not None:
        return any(ROOT.glob(glob))
    return (ROOT / reference).exists() or (where.parent / reference).exists()


def in_repo_paths(text: str) -> list[str]:
    return [m.group(1).rstrip(".") for m in PATH.finditer(text)]


def bare_markdown_names(text: str) -> list[str]:
    return [m.group(1) for m in BARE_MARKDOWN.finditer(text)]


def module_names(text: str) -> list[str]:
    names = []
    for match in MODULE.finditer(text):
        name = match.group(1).rstrip(".")
        last = name.rsplit(".", 1)[1]
        if last in FILE_SUFFIXES or (last.startswith("__") and last != "__main__"):
            continue  # a file name (report.json) or a dunder (realprof.__file__)
        names.append(name)
    return names


def module_resolves(name: str) -> bool:
    """`pkg.module[.name...]`: the longest prefix that is a module exists and defines the
    next name (a C extension: its source mentions it)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        stem = ROOT.joinpath(*parts[:i])
        candidates = (stem.with_suffix(".py"), stem / "__init__.py", stem.with_suffix(".c"))
        source = next((p for p in candidates if p.is_file()), None)
        if source is None:
            continue
        rest = parts[i:]
        if not rest:
            return True
        text = source.read_text(encoding="utf-8")
        if source.suffix == ".c":
            return f'"{rest[0]}"' in text or f"{rest[0]}" in text
        word = re.escape(rest[0])
        defined = (
            rf"^\s*(?:async\s+)?(?:def|class)\s+{word}\b",  # a function or class
            rf"^\s*{word}\s*[:=]",  # a module constant or a dataclass field
            rf"^\s*(?:from\s+\S+\s+)?import\s+.*\b{word}\b",  # imported into it
            rf"self\.{word}\b",  # an attribute of one of its classes
        )
        return any(re.search(p, text, re.M) for p in defined)
    return False


def bare_markdown_resolves(name: str) -> bool:
    return any(
        p.name == name for p in ROOT.rglob(name) if ".git" not in p.parts and "site" not in p.parts
    )
