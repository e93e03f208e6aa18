"""Every reference resolves: in the repository, or at a primary source (offline).

* Every in-repo path named in the code's comments and docstrings, the docs, the JSON
  Schema, the scenarios, the labs' steps, README.md and CONTRIBUTING.md exists (a
  template such as `labs/NN-slug/check.py` matches something).
* Every bare Markdown file name (such as `README.md`) is a file of the repository.
* Every module name (`sim.model`, `contract.report.render_text`) names a module, and the
  name after it is defined there.
* Every external link in the docs and the package code points at a primary source (the
  list is `tests/references.py`'s PRIMARY_SOURCES): a Go or Linux file, an issue, a PEP,
  a manual page, the project whose code or format is cited.

How references are found is in `tests/references.py`, shared with the sources check of
the walkthrough's citations. Relative links between docs pages are checked by
`tests/test_docs.py` and the strict mkdocs build.
"""

from __future__ import annotations

from pathlib import Path

from references import (
    PACKAGES,
    ROOT,
    bare_markdown_names,
    bare_markdown_resolves,
    external_urls,
    in_repo_paths,
    is_primary,
    module_names,
    module_resolves,
    path_resolves,
    texts,
)


def _code() -> list[Path]:
    files = []
    for folder in (*PACKAGES, "tests", "benchmarks"):
        files += sorted((ROOT / folder).rglob("*.py"))
    files += [ROOT / "realprof" / "_sampler.c", ROOT / ".ci" / "run", ROOT / "setup.py"]
    return [f for f in files if "__pycache__" not in f.parts and "node_modules" not in f.parts]


def _prose() -> list[Path]:
    return [
        *sorted((ROOT / "docs").rglob("*.md")),
        ROOT / "docs" / "reference" / "scenario.schema.json",
        *sorted((ROOT / "scenarios").glob("*.yaml")),
        *sorted((ROOT / "labs").rglob("*.yaml")),
        *sorted((ROOT / "machines").glob("*.yaml")),
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
    ]


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_in_repo_paths_exist() -> None:
    dangling = [
        f"{_where(path, line)}: {ref}"
        for path in _code() + _prose()
        for line, text in texts(path)
        for ref in in_repo_paths(text)
        if not path_resolves(ref, path)
    ]

    assert dangling == [], "\n".join(["dangling:", *dangling])


def test_bare_markdown_names_exist() -> None:
    dangling = [
        f"{_where(path, line)}: {name}"
        for path in _code() + _prose()
        for line, text in texts(path)
        for name in bare_markdown_names(text)
        if not bare_markdown_resolves(name)
    ]

    assert dangling == [], "\n".join(["dangling:", *dangling])


def test_module_names_resolve() -> None:
    dangling = [
        f"{_where(path, line)}: {name}"
        for path in _code() + _prose()
        for line, text in texts(path)
        for name in module_names(text)
        if not module_resolves(name)
    ]

    assert dangling == [], "\n".join(["dangling:", *dangling])


def test_external_links_point_at_primary_sources() -> None:
    package_code = [p for p in _code() if p.parts[len(ROOT.parts)] in PACKAGES]
    secondary = [
        f"{path.relative_to(ROOT)}: {url}"
        for path in package_code + _prose()
        for url in external_urls(path.read_text(encoding="utf-8"))
        if not is_primary(url)
    ]

    assert secondary == [], "\n".join(["not a primary source:", *secondary])


def test_the_finders_find_what_they_should() -> None:
    """The patterns themselves, on known cases."""
    text = "see `sim/model.py` and labs/NN-slug/check.py, not kernel/signal.c or docs/x.md."
    assert in_repo_paths(text) == ["sim/model.py", "labs/NN-slug/check.py", "docs/x.md"]
    assert path_resolves("labs/NN-slug/check.py", ROOT / "README.md")
    assert not path_resolves("docs/x.md", ROOT / "README.md")
    assert module_names("`contract.report.render_text`, report.json, realprof.__file__") == [
        "contract.report.render_text"
    ]
    assert module_resolves("contract.report.render_text")
    assert not module_resolves("sim.no_such_module")
    # A name built here, so this file itself cites nothing the repository lacks.
    missing = "NO-SUCH-NOTE" + ".md"
    assert bare_markdown_names(f"cites {missing} §2") == [missing]
    assert not bare_markdown_resolves(missing)
    assert bare_markdown_resolves("CONTRIBUTING.md")
    assert is_primary("https://github.com/golang/go/issues/35057")
    assert not is_primary("https://github.com/golang/gofrontend/")
    assert not is_primary("https://example.com/blog/go-profiler")
    assert external_urls("http://127.0.0.1:8000/ and <https://man7.org/linux/x>") == [
        "https://man7.org/linux/x"
    ]
