"""`python -m realprof flame FILE -o flame.html`: a flame graph in one self-contained page.

The profile (any format `show` reads, with the same `--thread`, `--process` and
`--rate-hz`) is folded into a call tree, root at the bottom as in Brendan Gregg's flame
graphs: one frame per (function, file, first line) under its caller, its width
proportional to the samples with that call path. Threads are merged, as in folded files and pprof's
flame view; lost samples are not frames (the header counts them).

The page is HTML with an inline SVG drawn here, in Python, and a little inline
JavaScript: no network, no external script, nothing to install. Each frame is a nested
`<svg>` (which clips its label) holding a `<rect>`, the label `function file:line` and
a `<title>` tooltip with the samples and the share; the page opens and reads without
JavaScript. With it, a click on a frame zooms to it (its callers span the width, frames
outside it are hidden; click the root frame "all" or "Reset zoom" to go back) and the search box
highlights the frames whose function or file contains the text, with the share of
samples under them. The total on the page (`#total`) is the profile's sample count and
the root frame's; `tests/test_browser.py` checks both in Chromium.

Output is deterministic: the same profile gives the same bytes. Bad input is one line
and exit status 2 (`contract.cli.UsageError`).
"""

from __future__ import annotations

import hashlib
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from contract.cli import CommandParser, UsageError, check_writable_dir
from contract.profile import Profile, ProfileFormatError
from realprof.show import add_view_options, load, only_process, only_threads, read_file

FRAME_HEIGHT = 18  # px per stack level
_ROOT = ("all", "", 0)


@dataclass
class Node:
    """A call path's frame: (function, file, first line) under its parent."""

    key: tuple[str, str, int]
    samples: int = 0
    children: dict[tuple[str, str, int], Node] = field(default_factory=dict)


def call_tree(profile: Profile) -> Node:
    """The root ("all", every sample) of the profile's call tree, threads merged."""
    root = Node(_ROOT)
    for (stack, _thread), count in sorted(profile.samples.items()):
        root.samples += count
        node = root
        for frame in reversed(stack):  # root first
            key = (frame.name, frame.file, frame.start_line)
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = Node(key)
            child.samples += count
            node = child
    return root


def count_frames(node: Node) -> int:
    """Frames drawn for this tree: one per node, the root included."""
    return 1 + sum(count_frames(child) for child in node.children.values())


def _depth(node: Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def _label(key: tuple[str, str, int]) -> str:
    function, file, start = key
    if not file:
        return function
    return f"{function} {file}:{start}" if start else f"{function} {file}"


def _colour(key: tuple[str, str, int]) -> str:
    """A warm colour fixed by the function's name (deterministic, like flamegraph.pl's)."""
    if key == _ROOT:
        return "rgb(200,200,200)"
    digest = hashlib.sha1(key[0].encode("utf-8", "surrogatepass")).digest()
    return f"rgb({205 + digest[0] % 50},{80 + digest[1] % 150},{digest[2] % 60})"


def _frames_svg(root: Node, height: int) -> list[str]:
    """One nested <svg class="f"> per node, preorder, x and width in % of the total."""
    total = root.samples
    out: list[str] = []

    def emit(node: Node, x: int, depth: int) -> None:
        share = node.samples / total
        label = html.escape(_label(node.key))
        function, file = (html.escape(part) for part in node.key[:2])
        y = height - (depth + 1) * FRAME_HEIGHT
        out.append(
            f'<svg class="f" x="{100 * x / total:.6f}%" y="{y}" '
            f'width="{100 * share:.6f}%" height="{FRAME_HEIGHT - 1}" '
            f'data-x="{x}" data-n="{node.samples}" data-d="{depth}" '
            f'data-fn="{function}" data-file="{file}">'
            f"<title>{label}\n{node.samples:,} samples, {share:.2%}</title>"
            f'<rect width="100%" height="100%" fill="{_colour(node.key)}" rx="2"/>'
            f'<text x="3" y="{FRAME_HEIGHT - 5}">{label}</text></svg>'
        )
        for child in sorted(node.children.values(), key=lambda c: c.key):
            emit(child, x, depth + 1)
            x += child.samples

    emit(root, 0, 0)
    return out


_STYLE = """
body { font: 13px system-ui, sans-serif; margin: 12px; }
header p { margin: 4px 0; }
#graph { width: 100%; display: block; background: #fff; }
svg.f text { font: 11px ui-monospace, monospace; fill: #000; pointer-events: none; }
svg.f rect { stroke: #fff; stroke-width: 0.5; cursor: pointer; }
svg.f.match rect { fill: #e040e0; }
"""

# Zoom: frames keep their sample offset (data-x) and count (data-n); zooming to a frame
# maps [x, x + n) onto the full width, hides what lies outside and stretches callers.
_SCRIPT = """
(function () {
  const frames = Array.from(document.querySelectorAll("svg.f"));
  const total = Number(document.getElementById("total").dataset.samples);
  function zoom(x0, n0, d0) {
    for (const f of frames) {
      const x = Number(f.dataset.x), n = Number(f.dataset.n), d = Number(f.dataset.d);
      const a = Math.max(x, x0), b = Math.min(x + n, x0 + n0);
      const inside = b > a && (d >= d0 || (x <= x0 && x + n >= x0 + n0));
      f.style.display = inside ? "" : "none";
      if (inside) {
        f.setAttribute("x", (100 * (a - x0) / n0) + "%");
        f.setAttribute("width", (100 * (b - a) / n0) + "%");
      }
    }
  }
  for (const f of frames) {
    f.addEventListener("click", () =>
      zoom(Number(f.dataset.x), Number(f.dataset.n), Number(f.dataset.d)));
  }
  document.getElementById("reset").addEventListener("click", () => zoom(0, total, 0));
  const search = document.getElementById("search");
  const matched = document.getElementById("matched");
  search.addEventListener("input", () => {
    const text = search.value;
    let samples = 0, coveredTo = -1;  // preorder: a match inside a counted one adds nothing
    for (const f of frames) {
      const hit = text !== "" && Number(f.dataset.d) > 0 &&
        (f.dataset.fn.includes(text) || f.dataset.file.includes(text));
      f.classList.toggle("match", hit);
      const x = Number(f.dataset.x), n = Number(f.dataset.n);
      if (hit && x >= coveredTo) { samples += n; coveredTo = x + n; }
    }
    matched.dataset.samples = String(samples);
    matched.textContent = text === "" ? "" :
      `matched: ${samples.toLocaleString("en")} samples (${(100 * samples / total).toFixed(2)}%)`;
  });
})();
"""


def flame_html(profile: Profile, title: str, lost: int = 0, rate_note: str = "") -> str:
    """The page: header with the totals, the SVG, the script; `rate_note` says where the
    rate came from when the file did not carry it (see `realprof.show.load`)."""
    root = call_tree(profile)
    if not root.samples:
        raise UsageError(f"{title}: no samples to draw")
    height = _depth(root) * FRAME_HEIGHT
    total = root.samples
    cpu_s = total * profile.period_ns / 1e9
    lost_note = f"; {lost:,} lost samples are not drawn" if lost else ""
    heading = html.escape(title)
    frames = "\n".join(_frames_svg(root, height))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{heading} - realprof flame graph</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>{heading}</h1>
<p>Total: <span id="total" data-samples="{total}">{total:,}</span> samples at
{profile.rate_hz:g} Hz{html.escape(rate_note)} = {cpu_s:.3f} s CPU{lost_note}.
Width is samples; click a frame to zoom, <button id="reset" type="button">Reset zoom</button>
<label>search <input id="search" type="search" placeholder="function or file"></label>
<span id="matched" data-samples="0"></span></p>
</header>
<svg id="graph" width="100%" height="{height}"
 data-frames="{count_frames(root)}">
{frames}
</svg>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def flame_parser() -> CommandParser:
    parser = CommandParser(
        prog="python -m realprof flame",
        description="Write a profile (pprof, folded, speedscope) as a self-contained HTML "
        "flame graph: inline SVG and script, no network; click to zoom, search box.",
    )
    parser.add_argument("file", help="profile file")
    parser.add_argument(
        "-o", "--output", default="flame.html", help="HTML file to write (default flame.html)"
    )
    parser.add_argument("--title", help="page heading (default: the profile's file name)")
    add_view_options(parser)
    return parser


def main(argv: list[str]) -> int:
    """`flame` with its arguments; returns 0."""
    args = flame_parser().parse_args(argv)
    path = Path(args.file)
    output = Path(args.output)
    if output.is_dir():
        raise UsageError(f"-o {output}: is a directory; give a file name")
    check_writable_dir(output.parent, f"-o {output}")
    data = read_file(path)
    try:
        profile, rate_note = load(path, data, args.rate_hz)
    except ProfileFormatError as exc:
        raise UsageError(str(exc)) from None
    lost = profile.total_lost
    if args.process is not None:
        profile = only_process(profile, args.process)
        lost = 0
    if args.thread is not None:
        profile = only_threads(profile, args.thread)
        lost = 0
    page = flame_html(profile, args.title or path.name, lost, rate_note)
    temp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(page.encode("utf-8", "replace"))
        os.replace(temp, output)  # readers see the old page or the whole new one
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    frames = count_frames(call_tree(profile))
    print(f"wrote {output}: {profile.total_samples:,} samples in {frames:,} frames")
    return 0
