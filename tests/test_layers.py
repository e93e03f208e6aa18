"""The layout's rules: layers, file sizes, no import cycle.

* The import contracts (`[tool.importlinter]` in pyproject.toml, run by `lint-imports`:
  the layers; the model core and the contract's pure modules without the format edges'
  packages; the real sampler on the contract alone) hold on the repository, and the
  layers contract fails, naming the import, on a copy of the package tree given one
  upward import (a module of the model core importing `lab`).
* Every package module sits in a layer of the contract (import-linter checks only the
  modules it is told about, so a new module must be added there), and the pure-core
  contract covers every module of the core layer.
* No file of package code (everything importable outside tests/ and benchmarks/) is over
  600 lines, except the C sampler.
* No import cycle between modules, function-level imports included: grimp's graph (the one
  import-linter builds) is searched for a path back along every import. import-linter's
  `acyclic_siblings` contract would see only cycles between siblings of one package, not
  one between a package's `__init__` and its module, nor one across packages.

The layer map in CONTRIBUTING.md (docs/figures/layer-map.png) is drawn from the same
contract and the same graph by `docsgen/layer_map.py`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "sim", "figures", "realprof", "lab", "docsgen", "labs")
MAX_LINES = 600
LONG_ALLOWED = {"realprof/_sampler.c"}
CODE_SUFFIXES = {".py", ".c", ".h"}
INSTALL_HINT = 'pip install -e ".[test]"  (import-linter, which brings grimp)'


def _config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]


def _contract(contract_id: str) -> dict:
    return next(c for c in _config()["contracts"] if c.get("id") == contract_id)


def _layers() -> list[list[str]]:
    """The layers contract's layers, top first, each a list of module names."""
    return [
        [name.strip().strip("()") for name in re.split(r"[|:]", layer)]
        for layer in _contract("layers")["layers"]
    ]


@pytest.fixture
def lint_imports(require_tool: Callable[[str, str], str]) -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    if beside.is_file():
        return str(beside)
    return require_tool("lint-imports", INSTALL_HINT)


def _grimp():
    try:
        import grimp
    except ImportError:
        from conftest import _in_ci

        message = f"grimp is not installed: {INSTALL_HINT}"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return grimp


def _run(lint_imports: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [lint_imports, "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---------------------------------------------------------------------------------------
# The import contract


def test_import_contract_holds(lint_imports: str) -> None:
    result = _run(lint_imports, ROOT)

    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contract_fails_on_an_upward_import(lint_imports: str, tmp_path: Path) -> None:
    """Copy the packages, make the model core import the laboratory, see lint-imports fail."""
    junk = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "build")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=junk)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    core = _layers()[-2][0]  # the model core, just above the contract
    path = tmp_path / (core.replace(".", "/") + ".py")
    text = path.read_text(encoding="utf-8")
    # After the module docstring and `from __future__`, so the file still compiles.
    anchor = "from __future__ import annotations\n"
    assert anchor in text, f"{path}: no `{anchor.strip()}` to add the upward import after"
    path.write_text(text.replace(anchor, anchor + "import lab  # upward\n", 1), encoding="utf-8")

    clean = _run(lint_imports, ROOT, "--contract", "layers")
    broken = _run(lint_imports, tmp_path, "--contract", "layers")

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout
    assert f"{core} is not allowed to import lab" in broken.stdout, broken.stdout
    assert f"{core} -> lab (l." in broken.stdout, broken.stdout


def test_every_package_module_sits_in_a_layer() -> None:
    grimp = _grimp()
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    listed = {name for layer in _layers() for name in layer}

    def placed(module: str) -> bool:
        parts = module.split(".")
        if any(".".join(parts[:i]) in listed for i in range(1, len(parts) + 1)):
            return True
        # A package whose modules sit in different layers (sim, realprof): its __init__.
        return any(name.startswith(module + ".") for name in listed)

    unplaced = sorted(m for m in graph.modules if not placed(m))

    assert unplaced == [], "add these modules to a layer in pyproject.toml [tool.importlinter]"


def test_the_pure_core_contract_covers_the_core_layers() -> None:
    """The model core is every sim module in the layers between the figures and the
    contract (the real sampler's layers sit among them, and are held by their own
    contract)."""
    layers = _layers()
    figures = next(i for i, layer in enumerate(layers) if "figures" in layer)
    core = {m for layer in layers[figures + 1 : -1] for m in layer if m.startswith("sim.")}
    sources = set(_contract("pure-core")["source_modules"])

    assert {"sim.model", "sim.cputimers"} <= core
    assert sorted(core - sources) == []


def test_the_layer_map_draws_no_arrow_upward() -> None:
    """The published figure shows what the code does: every import points down, package
    __init__ modules (in no layer of the contract) included."""
    _grimp()
    from docsgen.layer_map import layer_graph

    boxes = layer_graph()
    by_name = {box.name: box for box in boxes}
    upward = sorted(
        f"{box.name} -> {target}"
        for box in boxes
        for target in box.imports
        if by_name[target].layer > box.layer
    )
    assert sum(len(box.imports) for box in boxes) > 10
    assert upward == []


# ---------------------------------------------------------------------------------------
# File sizes


def _package_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix in CODE_SUFFIXES and "__pycache__" not in path.parts:
                files.append(path)
    return files


def test_no_package_file_is_over_600_lines() -> None:
    files = _package_files()
    long = {
        str(p.relative_to(ROOT)): n
        for p in files
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(p.relative_to(ROOT)) not in LONG_ALLOWED
    }

    assert len(files) > 30
    assert long == {}, f"split these files (lines): {long}"


# ---------------------------------------------------------------------------------------
# Cycles


def _graph_without_extension_imports(grimp):
    """The import graph; importing a C extension (`from pkg import _ext`, `import pkg._ext
    as e`) counts as no import of pkg.

    grimp sees only Python files, so it resolves `from realprof import _sampler` (the
    compiled sampler) to the package `realprof` itself, which imports the importing module:
    a cycle that is not there.
    """
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            details = graph.get_import_details(importer=importer, imported=imported)
            if details and all(_names_extension(d["line_contents"], imported) for d in details):
                graph.remove_import(importer=importer, imported=imported)
    return graph


def _names_extension(line: str, package: str) -> bool:
    """Whether an import line, resolved by grimp to `package`, imports a C extension of it."""
    line = line.strip()
    m = re.fullmatch(r"from ([\w.]+) import (\w+)(?: as \w+)?", line) or re.fullmatch(
        r"import ([\w.]+)\.(\w+)(?: as \w+)?", line
    )
    return bool(
        m and m[1] == package and (ROOT / package.replace(".", "/") / f"{m[2]}.c").is_file()
    )


def test_no_import_cycle_function_level_imports_included() -> None:
    grimp = _grimp()
    graph = _graph_without_extension_imports(grimp)
    cycles = set()
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycle = (importer, *back)  # importer -> imported -> ... -> importer
                start = cycle.index(min(cycle[:-1]))  # one spelling per cycle
                cycles.add(" -> ".join((*cycle[start:-1], *cycle[:start], cycle[start])))

    assert sorted(cycles) == []
