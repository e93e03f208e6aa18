"""The layer map: the packages' layers and the imports between them, drawn from the code.

The layers come from the import contract (`[tool.importlinter]` in pyproject.toml, the one
`lint-imports` checks), the arrows from grimp's graph of the imports in the source
(function-level imports included), so the picture is what the code does today:

* one box per package of a layer, or per module where a package spans layers (`sim`'s
  model core below `figures`, its `sweep` and command line above; `realprof`'s sampler
  below, its command line on top); a box lists the modules it holds when it is not a
  whole package;
* bottom to top as in the contract; an arrow from A to B means some module of A imports
  some module of B; an arrow that points up (an import the contract forbids) is drawn
  red and dashed.

`draw_layer_map(path)` writes the PNG and returns its alt text; `python -m docsgen`
calls it for `docs/figures/layer-map.png`. Needs grimp (installed with import-linter,
the test extra).
"""

from __future__ import annotations

import re
import sys
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "sim", "figures", "realprof", "lab", "docsgen", "labs")

# What each box is for, by package (or front module); shown under its name.
ROLES = {
    "contract": "the shared contract: scenario, report,\nruntimes, profile formats, CLI",
    "sim": "the model core: mechanisms and the simulation loop",
    "sim.model": "the simulation loop",
    "figures": "matplotlib figures of reports and traces",
    "realprof": "the real sampler for Python programs",
    "sim.sweep": "parameter sweeps",
    "lab": "the laboratory: real and Go worlds,\ncompare, calibrate, grid",
    "sim.__main__": "python -m sim",
    "realprof.__main__": "python -m realprof",
    "docsgen": "the docs build",
    "labs": "the hands-on labs",
}

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "figure.dpi": 100,
    "savefig.dpi": 150,
}
_BLUE, _ORANGE, _RED, _GREY = "#0072B2", "#E69F00", "#D55E00", "#555555"


@dataclass
class Box:
    """One box: a whole package, or some modules of one package in one layer."""

    name: str  # a package, a module, or "package (core)"
    modules: list[str]  # the layer entries it holds
    layer: int  # 0 = bottom
    whole_package: bool
    imports: set[str] = field(default_factory=set)  # names of the boxes it imports


def contract_layers(pyproject: Path = ROOT / "pyproject.toml") -> list[list[str]]:
    """The layers contract's layers, bottom first, each a list of module names."""
    with open(pyproject, "rb") as f:
        config = tomllib.load(f)["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    return [[n.strip().strip("()") for n in re.split(r"[|:]", layer)] for layer in layers][::-1]


def _boxes(layers: list[list[str]]) -> list[Box]:
    boxes = []
    for level, layer in enumerate(layers):
        by_package: dict[str, list[str]] = {}
        for module in layer:
            by_package.setdefault(module.split(".")[0], []).append(module)
        for package, modules in by_package.items():
            whole = modules == [package]
            # Several modules of one package in one layer: the package may span several
            # such layers (sim's core does), so the box is named by its layer too.
            name = modules[0] if whole or len(modules) == 1 else f"{package}[{level}]"
            boxes.append(Box(name, sorted(modules), level, whole))
    return boxes


def _box_of(module: str, boxes: list[Box], imports: set[str] = frozenset()) -> Box | None:
    """The box holding a module: the layer entry it is or is in.

    A package whose modules span layers has an __init__ in no layer. It stands where
    what it imports of its own package stands (`realprof/__init__.py` re-exports
    `realprof.sampler`, so it is a face of that box), else with the lowest box of its
    modules."""
    for box in boxes:
        for entry in box.modules:
            if module == entry or module.startswith(entry + "."):
                return box
    holding = [b for b in boxes if any(e.startswith(module + ".") for e in b.modules)]
    if not holding:
        return None
    own = [b for b in (_box_of(m, boxes) for m in imports if m.startswith(module + ".")) if b]
    return max(own, key=lambda b: b.layer) if own else min(holding, key=lambda b: b.layer)


def layer_graph(layers: list[list[str]] | None = None) -> list[Box]:
    """The boxes of the layer map with the imports between them, from grimp's graph."""
    try:
        import grimp  # with import-linter, in the test extra
    except ImportError:
        raise SystemExit(
            "python -m docsgen: the layer map needs grimp: pip install -e '.[test]'"
        ) from None

    layers = contract_layers() if layers is None else layers
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    # Optional layer entries, "(name)" in the contract, may not exist yet.
    layers = [[m for m in layer if m in graph.modules] for layer in layers]
    boxes = _boxes([layer for layer in layers if layer])

    def box_of(module: str) -> Box | None:
        return _box_of(module, boxes, graph.find_modules_directly_imported_by(module))

    for importer in sorted(graph.modules):
        source = box_of(importer)
        for imported in graph.find_modules_directly_imported_by(importer):
            target = box_of(imported)
            if source is not None and target is not None and target is not source:
                source.imports.add(target.name)
    return boxes


def _label(box: Box) -> tuple[str, str]:
    """Title and the smaller text under it."""
    role = ROLES.get(box.name) or ROLES.get(box.name.split(".")[0], "")
    if box.whole_package or len(box.modules) == 1:
        return box.name + ("/" if box.whole_package else ""), role
    package = box.name.split("[")[0]
    tails = ", ".join(m.split(".", 1)[1] for m in box.modules)
    return f"{package}/", textwrap.fill(tails, 46)


def _positions(boxes: list[Box], width: float) -> dict[str, tuple[float, float]]:
    """Box centres: one row per layer, bottom up; boxes of a row spread across it.

    A row of one box alternates left and right of the centre, so that the arrows from
    the rows above pass beside it rather than through it.
    """
    rows: dict[int, list[Box]] = {}
    for box in boxes:
        rows.setdefault(box.layer, []).append(box)
    centres = {}
    single = 0
    for level, row in sorted(rows.items()):
        if len(row) == 1 and level not in (0, max(rows)):
            x = width / 2 + (-1.9 if single % 2 == 0 else 1.9)
            single += 1
            centres[row[0].name] = (x, level * 1.25)
            continue
        for i, box in enumerate(row):
            centres[box.name] = (width * (i + 0.5) / len(row), level * 1.25)
    return centres


def _ports(
    boxes: list[Box], centres: dict[str, tuple[float, float]], box_w: float, box_h: float
) -> dict[tuple[str, str], tuple[tuple[float, float], tuple[float, float]]]:
    """Where each arrow leaves and enters: spread along the boxes' edges, ordered by the
    other end's position, so arrows do not meet in one point."""
    by_name = {b.name: b for b in boxes}
    edges = sorted((b.name, t) for b in boxes for t in b.imports)
    leaving: dict[str, list[tuple[str, str]]] = {}
    entering: dict[str, list[tuple[str, str]]] = {}
    for edge in edges:
        leaving.setdefault(edge[0], []).append(edge)
        entering.setdefault(edge[1], []).append(edge)

    def spread(name: str, group: list[tuple[str, str]], other: int) -> dict:
        group = sorted(group, key=lambda e: (centres[e[other]][0], centres[e[other]][1]))
        x, _ = centres[name]
        step = 0.8 * box_w / max(len(group), 1)
        return {e: x + (i - (len(group) - 1) / 2) * step for i, e in enumerate(group)}

    out_x = {e: v for n, g in leaving.items() for e, v in spread(n, g, 1).items()}
    in_x = {e: v for n, g in entering.items() for e, v in spread(n, g, 0).items()}
    ports = {}
    for source, target in edges:
        up = by_name[target].layer > by_name[source].layer
        sy, ty = centres[source][1], centres[target][1]
        start = (out_x[(source, target)], sy + (box_h / 2 if up else -box_h / 2))
        end = (in_x[(source, target)], ty + (-box_h / 2 if up else box_h / 2))
        ports[(source, target)] = (start, end)
    return ports


def _alt(boxes: list[Box]) -> str:
    """Layers and the direction of the arrows; which box imports which is in the picture
    (listing it here would make every new import an edit of the page that shows it)."""

    def spoken(box: Box) -> str:
        # A box of some modules of a package: its title alone ("sim/") would repeat.
        title, under = _label(box)
        if box.whole_package or len(box.modules) == 1:
            return title
        return f"{title} ({' '.join(under.split())})"

    rows = []
    for level in sorted({b.layer for b in boxes}):
        rows.append(" and ".join(sorted(spoken(b) for b in boxes if b.layer == level)))
    arrows = sum(len(b.imports) for b in boxes)
    upward = sorted(
        f"{spoken(b)} imports {spoken(t)}"
        for b in boxes
        for t in boxes
        if t.name in b.imports and t.layer > b.layer
    )
    text = (
        "The layer map of sigprof-lab, drawn from the code's imports: boxes in layers, "
        "bottom to top: " + "; ".join(rows) + f". {arrows} arrows join them, each from a "
        "box to a box whose modules it imports"
    )
    if upward:
        return text + "; red dashed ones point up, against the layers: " + "; ".join(upward) + "."
    return text + "; every arrow points down."


def draw_layer_map(path: str | Path, boxes: list[Box] | None = None) -> str:
    """Draw the layer map into `path` (PNG, byte-stable); return its alt text."""
    import matplotlib as mpl
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    boxes = layer_graph() if boxes is None else boxes
    width, box_w, box_h = 10.0, 2.9, 0.9
    centres = _positions(boxes, width)
    top = max(b.layer for b in boxes)
    by_name = {b.name: b for b in boxes}
    alt = _alt(boxes)
    with mpl.style.context("default"), mpl.rc_context(_STYLE):
        fig = Figure(figsize=(10.0, 1.0 + 0.78 * (top + 1)), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.set_xlim(-0.1, width + 0.1)
        ax.set_ylim(-0.55, top * 1.25 + 0.55)
        ax.axis("off")
        for box in boxes:
            x, y = centres[box.name]
            colour = _BLUE if box.layer <= 1 else _ORANGE if box.layer >= top - 1 else _GREY
            ax.add_patch(
                FancyBboxPatch(
                    (x - box_w / 2, y - box_h / 2),
                    box_w,
                    box_h,
                    boxstyle="round,pad=0.02,rounding_size=0.08",
                    facecolor="white",
                    edgecolor=colour,
                    linewidth=1.4,
                    zorder=3,
                )
            )
            title, small = _label(box)
            ax.text(
                x,
                y + (0.3 if small.count("\n") > 1 else 0.22),
                title,
                ha="center",
                va="center",
                fontweight="bold",
                family="DejaVu Sans Mono",
                zorder=4,
            )
            ax.text(
                x,
                y - (0.12 if small.count("\n") > 1 else 0.1),
                small,
                ha="center",
                va="center",
                fontsize=6.8,
                zorder=4,
            )
        for (source, target), (start, end) in _ports(boxes, centres, box_w, box_h).items():
            up = by_name[target].layer > by_name[source].layer
            span = abs(by_name[source].layer - by_name[target].layer)
            rad = 0.0 if span == 1 else (0.12 if end[0] >= start[0] else -0.12)
            ax.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    arrowstyle="-|>",
                    mutation_scale=9,
                    linewidth=1.6 if up else 0.8,
                    linestyle="--" if up else "-",
                    color=_RED if up else "#333333",
                    alpha=1.0 if up else 0.6,
                    connectionstyle=f"arc3,rad={rad}",
                    shrinkA=0,
                    shrinkB=0,
                    zorder=2,
                )
            )
        fig.suptitle("The layers and the imports between them", x=0.01, ha="left")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(
            path,
            format="png",
            metadata={"Software": None, "Title": "The layer map", "Description": alt},
        )
    return alt
