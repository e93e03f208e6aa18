"""The playground's payload: Pyodide and this project's simulator, packed into the built site.

`pack_playground(site_dir)` writes `playground/runtime/` into a built site:

* `pyodide/`: the files of the npm package `pyodide` (installed by `npm ci --prefix web`,
  pinned in `web/package.json`) that loading it in a browser needs: the loader, the
  interpreter (`pyodide.asm.mjs`, `pyodide.asm.wasm`), the standard library
  (`python_stdlib.zip`) and the package lock it reads at start-up. Nothing is fetched
  from anywhere else at view time;
* `sigprof.zip`: `contract/` (with the shipped scenarios as its `scenarios/` package
  data, where `contract.scenario_file.shipped_scenarios_dir` looks), `sim/`, `machines/`,
  and the pure-Python files of the SimPy and PyYAML installed in the building environment
  (PyYAML falls back to its pure-Python loader when its C extension is absent, and the
  CLI's `yaml.safe_load` uses that pure loader anyway): `.py` and `.yaml` files, and
  each distribution's METADATA and licence;
* `versions.json`: the Pyodide, Python, SimPy and PyYAML versions packed, and the zip's
  SHA-256 (the page fetches `sigprof.zip?sha=...`, so a rebuilt site is never served a
  stale copy from the browser's cache).

The zip is byte-stable: sorted entries, a fixed timestamp, fixed permissions. Without the
npm package the site is built without the runtime (the playground page then says how to
install it); under CI that is an error. `encode_scenario` is the page's URL form of a
scenario (`#yaml=` + raw DEFLATE + base64url, what the page's `DecompressionStream
("deflate-raw")` reads back). `add_try_it_links` gives every figure of a simulator run
(`docsgen.figure_list.FIGURES` of kind timeline, funnel or sweep; measured figures get
none) a "Try it in the playground" link that opens that run's scenario, with the
figure's overrides applied (and, for a timeline, its window); the MkDocs hook
`on_page_markdown` applies it to every page.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import zlib
from pathlib import Path

import yaml

from contract.overrides import apply_override
from contract.scenario_file import parse_override
from docsgen.common import ROOT, SCENARIOS
from docsgen.figure_list import FIGURES, FigureSpec

PYODIDE_PACKAGE = ROOT / "web" / "node_modules" / "pyodide"
PYODIDE_FILES = (
    "package.json",
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
INSTALL_HINT = "npm ci --prefix web"
RUNTIME_DIR = "playground/runtime"
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # any fixed time: the zip must be byte-stable
PLAYGROUND_PAGE = "playground/"


def _python_files(package_dir: Path, arcname: str) -> list[tuple[Path, str]]:
    """(file, name in the zip) of every .py/.yaml/.typed file under package_dir."""
    found = []
    for path in sorted(package_dir.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        if path.suffix in (".py", ".yaml"):
            found.append((path, f"{arcname}/{path.relative_to(package_dir).as_posix()}"))
    return found


def _distribution(name: str, top_level: str) -> tuple[str, list[tuple[Path, str]]]:
    """(version, files) of an installed distribution: its top-level package's Python
    files, and its METADATA and licence files (so `importlib.metadata.version` and
    `simpy.__version__` answer in the browser as they do here)."""
    dist = importlib.metadata.distribution(name)
    files = _python_files(Path(str(dist.locate_file(top_level))), top_level)
    for entry in dist.files or ():
        parts = entry.parts
        if parts[0].endswith(".dist-info") and (
            parts[-1] == "METADATA" or "licenses" in parts or parts[-1].startswith("LICENSE")
        ):
            files.append((Path(str(dist.locate_file(entry))), entry.as_posix()))
    return dist.version, files


def packed_files() -> tuple[list[tuple[Path, str]], dict[str, str]]:
    """What goes into sigprof.zip, and the versions of the third-party packages in it."""
    simpy_version, simpy_files = _distribution("simpy", "simpy")
    yaml_version, yaml_files = _distribution("PyYAML", "yaml")
    files = [
        *_python_files(ROOT / "contract", "contract"),
        *_python_files(SCENARIOS, "contract/scenarios"),
        *_python_files(ROOT / "sim", "sim"),
        *_python_files(ROOT / "machines", "machines"),
        *simpy_files,
        *yaml_files,
    ]
    return files, {"simpy": simpy_version, "pyyaml": yaml_version}


def write_zip(path: Path) -> dict[str, str]:
    """Write sigprof.zip; return the packed versions."""
    import zipfile

    files, versions = packed_files()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source, name in sorted(files, key=lambda item: item[1]):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    return versions


def pack_playground(site_dir: str | Path) -> Path | None:
    """Copy Pyodide and pack the simulator into `site_dir/playground/runtime/`.

    Returns the runtime folder, or None when the npm package is not installed (an error
    when the CI environment variable is set)."""
    if not (PYODIDE_PACKAGE / "pyodide.asm.wasm").is_file():
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            raise SystemExit(f"docsgen.playground: {PYODIDE_PACKAGE} is missing: {INSTALL_HINT}")
        # The page asks for versions.json before it starts Python: without the runtime it
        # finds this and says what to install, and requests nothing that is not there.
        runtime = Path(site_dir) / RUNTIME_DIR
        runtime.mkdir(parents=True, exist_ok=True)
        (runtime / "versions.json").write_text(
            json.dumps({"pyodide": None, "install": INSTALL_HINT}, indent=2) + "\n",
            encoding="utf-8",
        )
        return None
    runtime = Path(site_dir) / RUNTIME_DIR
    (runtime / "pyodide").mkdir(parents=True, exist_ok=True)
    for name in PYODIDE_FILES:
        shutil.copyfile(PYODIDE_PACKAGE / name, runtime / "pyodide" / name)
    versions = write_zip(runtime / "sigprof.zip")
    package = json.loads((PYODIDE_PACKAGE / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((PYODIDE_PACKAGE / "pyodide-lock.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256((runtime / "sigprof.zip").read_bytes()).hexdigest()
    facts = {
        "pyodide": package["version"],
        "python": lock["info"]["python"],
        **versions,
        "zip_sha256": digest,
    }
    (runtime / "versions.json").write_text(
        json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return runtime


def encode_scenario(yaml_text: str, window_ms: tuple[float, float] | None = None) -> str:
    """The playground URL fragment that opens `yaml_text`: `yaml=` + base64url(raw
    DEFLATE), and `&window=START:END` (ms) for the timeline when given."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = compressor.compress(yaml_text.encode("utf-8")) + compressor.flush()
    fragment = "yaml=" + base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")
    if window_ms is not None:
        fragment += f"&window={window_ms[0]:g}:{window_ms[1]:g}"
    return fragment


def decode_scenario(fragment: str) -> tuple[str, tuple[float, float] | None]:
    """The YAML text and the timeline window of a fragment made by `encode_scenario`."""
    fields = dict(part.partition("=")[::2] for part in fragment.removeprefix("#").split("&"))
    if "yaml" not in fields:
        raise ValueError(f"not a playground scenario fragment: {fragment[:40]!r}")
    data = fields["yaml"]
    text = zlib.decompress(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)), -15)
    window = None
    if "window" in fields:
        start, _, end = fields["window"].partition(":")
        window = (float(start), float(end))
    return text.decode("utf-8"), window


# ---------------------------------------------------------------------------------------
# "Try it" links: each simulator figure of the docs opens the playground on its run.

SIMULATOR_KINDS = ("timeline", "funnel", "sweep")  # figures of a run of a shipped scenario
_FIGURE_BLOCK = re.compile(r"<figure\b.*?</figure>", re.S)
_FIGURE_IMAGE = re.compile(r"\]\((?:\.\./)*figures/([\w-]+)\.png\)")


def figure_scenario_text(spec: FigureSpec) -> str:
    """The scenario file a figure's run used: the shipped file itself, or, with the
    figure's `--set` overrides, its mapping with them applied, written out as YAML."""
    text = (SCENARIOS / f"{spec.scenario}.yaml").read_text(encoding="utf-8")
    if not spec.overrides:
        return text
    raw = yaml.safe_load(text)
    for override in spec.overrides:
        apply_override(raw, *parse_override(override))
    # The description is the shipped file's: say what changed.
    header = f"# The run of the figure {spec.name}: {spec.command()}\n"
    return header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=88)


def try_it_fragment(spec: FigureSpec) -> str:
    """The playground fragment of a figure: its scenario, and its window if a timeline."""
    window = spec.window_ms if spec.kind == "timeline" else None
    return encode_scenario(figure_scenario_text(spec), window)


def add_try_it_links(markdown: str, page_url: str) -> str:
    """Each <figure> of a simulator figure gets a "try it" link at the end of its caption,
    relative to the page's URL (`page_url`, as MkDocs gives it: `walkthrough/03-x/`)."""
    specs = {spec.name: spec for spec in FIGURES if spec.kind in SIMULATOR_KINDS}
    to_site_root = "../" * page_url.count("/")

    def link(block: re.Match[str]) -> str:
        text = block.group(0)
        names = [m.group(1) for m in _FIGURE_IMAGE.finditer(text) if m.group(1) in specs]
        if not names:
            return text
        href = f"{to_site_root}{PLAYGROUND_PAGE}#{try_it_fragment(specs[names[0]])}"
        anchor = (
            f' <a class="try-it" href="{href}" title="open this run in the playground and '
            'change it">Try it in the playground</a>'
        )
        closing = "</figcaption>" if "</figcaption>" in text else "</figure>"
        head, _, tail = text.rpartition(closing)
        return f"{head}{anchor}{closing}{tail}"

    return _FIGURE_BLOCK.sub(link, markdown)
