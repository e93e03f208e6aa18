"""The documentation site: generated files are current, the build is strict, links resolve.

* The figure generator (`python -m docsgen`) run into a temporary directory writes
  files byte-identical to the committed `docs/figures/*` and generated reference pages.
* `mkdocs build --strict` passes (link and anchor validation is set to warn in
  mkdocs.yml, so a broken link fails the build).
* Every image a page shows exists, every figure is shown somewhere, and its alt text is
  the one the plot function returned (figures.json).
* Every item of the "checklist for a faithful model" (shared reference
  of Go's CPU profiler) is explained on a page: an explicit map below, item to page
  and phrases that must appear there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
GENERATED_PAGES = ("scenario.md", "report.md", "runtimes.md", "scenarios.md")
BUILD_ENV = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}

IMAGE = re.compile(r"!\[(?P<alt>(?:[^\[\]]|\[[^\[\]]*\])*)\]\((?P<target>[^)\s]+)\)")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\[\]]*\])*\]\((?P<target>[^)\s]+)\)")
LINK_TEXT = re.compile(r"(?<!!)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)\s]+\)")


def _need(module: str, how: str) -> None:
    """Skip with an install hint, except in CI, where a missing tool is a failure."""
    try:
        __import__(module)
    except ImportError:
        message = f"{module} is not installed: {how}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


# ---------------------------------------------------------------------------------------
# (a) generated files are current


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docsgen")
    from docsgen.site import generate

    generate(out / "figures", out / "reference")
    return out


def test_generator_reproduces_committed_figures_byte_for_byte(regenerated: Path) -> None:
    """`python -m docsgen docs/figures` regenerates exactly what is committed."""
    fresh = {p.name: p.read_bytes() for p in (regenerated / "figures").iterdir()}
    committed = {p.name: p.read_bytes() for p in FIGURES.iterdir()}

    assert sorted(fresh) == sorted(committed), "run: python -m docsgen docs/figures"
    stale = sorted(name for name in fresh if fresh[name] != committed[name])
    assert stale == [], f"stale figures {stale}; run: python -m docsgen docs/figures"


def test_generator_reproduces_committed_reference_pages(regenerated: Path) -> None:
    stale = [
        name
        for name in GENERATED_PAGES
        if (regenerated / "reference" / name).read_bytes()
        != (DOCS / "reference" / name).read_bytes()
    ]

    assert stale == [], f"stale pages {stale}; run: python -m docsgen docs/figures"


def test_published_schema_is_what_sim_schema_writes(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    subprocess.run([sys.executable, "-m", "sim", "schema", "--out", str(out)], cwd=ROOT, check=True)

    assert out.read_bytes() == (DOCS / "reference" / "scenario.schema.json").read_bytes(), (
        "run: python -m sim schema --out docs/reference/scenario.schema.json"
    )


# ---------------------------------------------------------------------------------------
# (b) the strict build


def test_mkdocs_build_is_strict_and_clean(tmp_path: Path) -> None:
    _need("mkdocs", 'pip install -e ".[test]" (mkdocs, mkdocs-material)')
    _need("material", 'pip install -e ".[test]" (mkdocs-material)')
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, **BUILD_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (site / "index.html").is_file()
    assert (site / "walkthrough" / "03-signals-and-coalescing" / "index.html").is_file()


# ---------------------------------------------------------------------------------------
# (c) links, images and alt text


def test_every_relative_link_and_image_resolves() -> None:
    broken = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        targets = [m["target"] for m in IMAGE.finditer(text)]
        targets += [m["target"] for m in LINK.finditer(text)]
        for target in targets:
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if not (page.parent / path).resolve().exists():
                broken.append(f"{page.relative_to(DOCS)}: {target}")

    assert broken == []


def test_every_figure_is_shown_and_every_image_exists() -> None:
    shown: set[str] = set()
    missing = []
    for page in _pages():
        for match in IMAGE.finditer(page.read_text(encoding="utf-8")):
            path = (page.parent / match["target"]).resolve()
            if not path.is_file():
                missing.append(f"{page.relative_to(DOCS)}: {match['target']}")
            if path.parent == FIGURES.resolve():
                shown.add(path.name)
    images = {p.name for p in FIGURES.iterdir() if p.suffix in (".png", ".svg")}

    assert missing == []
    assert sorted(images - shown) == [], "figures no page shows"


def test_alt_text_is_what_the_plot_function_returned() -> None:
    manifest = json.loads((FIGURES / "figures.json").read_text(encoding="utf-8"))
    wrong = []
    for page in _pages():
        for match in IMAGE.finditer(page.read_text(encoding="utf-8")):
            name = Path(match["target"]).stem
            in_figures = Path(match["target"]).parent.name == "figures"
            if in_figures and name in manifest and match["alt"] != manifest[name]["alt"]:
                wrong.append(f"{page.relative_to(DOCS)}: {name}")

    assert wrong == [], "paste the alt text from docs/figures/figures.json"


def test_every_figure_caption_names_a_command() -> None:
    """Each <figure> has a caption with a command that reproduces or regenerates it."""
    missing = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"<figure.*?</figure>", text, flags=re.S):
            caption = re.search(r"<figcaption[^>]*>(.*?)</figcaption>", block, flags=re.S)
            if not caption or not re.search(r"`python -m (sim|docsgen)[ .]", caption.group(1)):
                missing.append(f"{page.relative_to(DOCS)}: {block[:60]!r}")

    assert missing == []


def test_command_reference_covers_every_option() -> None:
    """Every option of every documented parser appears on the command-line page."""
    from realprof import flame as realprof_flame
    from realprof import record as realprof_record
    from realprof import show as realprof_show
    from sim import __main__ as sim_cli

    page = (DOCS / "reference" / "commands.md").read_text(encoding="utf-8")
    parsers = [
        sim_cli._run_parser(),
        sim_cli._sweep_parser(),
        realprof_record._record_parser(),
        realprof_show.show_parser(),
        realprof_flame.flame_parser(),
    ]
    options = {
        option
        for parser in parsers
        for action in parser._actions
        for option in action.option_strings
        if option not in ("-h", "--help")
    }
    options |= {"--out", "--only", "--pages", "--top", "--json", "--seed"}

    assert sorted(o for o in options if f"`{o}" not in page and f" {o}" not in page) == []


# ---------------------------------------------------------------------------------------
# (d) the checklist of a faithful model

W = "walkthrough/"
CHECKLIST: dict[str, list[tuple[str, str]]] = {
    "1 threads (Ms): profilehz, profileTimerValid, blocked, Go/non-Go, cgo, depth, label": [
        (W + "04-per-thread-timers.md", "mp.profilehz"),
        (W + "04-per-thread-timers.md", "profileTimerValid"),
        (W + "09-other-systems.md", "`blocked`"),
        (W + "06-handler-and-stack.md", "Threads Go did not create"),
        (W + "06-handler-and-stack.md", "in a cgo call"),
        (W + "06-handler-and-stack.md", "keeps at most **64 frames**"),
        (W + "06-handler-and-stack.md", "profiler labels"),
    ],
    "2 per-CPU kernel tick; CPU timers evaluated only at ticks": [
        (W + "02-process-timer-and-tick.md", "100, 250 (the common default), 300 or 1000"),
        (W + "02-process-timer-and-tick.md", "CPU timers are checked only at ticks"),
    ],
    "3 setitimer: one accumulator, 1e6/hz us, no random phase, one interval per check, "
    "drop while pending, non-uniform receiver": [
        (W + "02-process-timer-and-tick.md", "The process clock is charged by the tick"),
        (W + "02-process-timer-and-tick.md", "`1,000,000 / hz` microseconds"),
        (W + "02-process-timer-and-tick.md", "there is no random phase"),
        (W + "02-process-timer-and-tick.md", "**exactly one interval**"),
        (W + "03-signals-and-coalescing.md", "**already pending**"),
        (W + "05-who-gets-the-signal.md", "Why it is unfair"),
    ],
    "4 timer_create: per-M thread-CPU timer, random first expiry, thread-directed, lazy "
    "at execute(), setitimer still armed, validSIGPROF": [
        (W + "04-per-thread-timers.md", "timer_create(CLOCK_THREAD_CPUTIME_ID)"),
        (W + "04-per-thread-timers.md", "**random first expiry**"),
        (W + "04-per-thread-timers.md", "**threads never collide**"),
        (W + "04-per-thread-timers.md", "## The lazy switch"),
        (W + "04-per-thread-timers.md", "## The process timer stays armed"),
        (W + "04-per-thread-timers.md", "## `validSIGPROF`: throwing away duplicates"),
    ],
    "5 handler: no nesting, prof.hz/profilehz guards, ~1 us unwind, 64 frames, "
    "fallback frames, signalLock": [
        (W + "06-handler-and-stack.md", "**`SIGPROF` never nests on one thread**"),
        (W + "06-handler-and-stack.md", "`prof.hz == 0`"),
        (W + "06-handler-and-stack.md", "on the order of 1 µs per stack"),
        (W + "06-handler-and-stack.md", "`_VDSO`"),
        (W + "06-handler-and-stack.md", "`_GC`"),
        (W + "06-handler-and-stack.md", "`prof.signalLock`"),
    ],
    "6 non-Go threads: extra[1000], flushed by the next Go sample or at stop, lostExtra": [
        (W + "06-handler-and-stack.md", "`cpuprof.extra` (1,000 words"),
        (W + "06-handler-and-stack.md", "only when a *Go* thread records a sample"),
        (W + "06-handler-and-stack.md", "`lostExtra`"),
        (W + "07-profbuf-and-reader.md", "## The extra buffer's way in"),
    ],
    "7 profBuf: 131,072 words, 16,384 tags, 3+depth, rewind, overflow record, lazy free": [
        (W + "07-profbuf-and-reader.md", "131,072 words"),
        (W + "07-profbuf-and-reader.md", "16,384 entries"),
        (W + "07-profbuf-and-reader.md", "**3 + depth**"),
        (W + "07-profbuf-and-reader.md", "rewind"),
        (W + "07-profbuf-and-reader.md", "**overflow record**"),
        (W + "07-profbuf-and-reader.md", "freed only at the **next** read call"),
    ],
    "8 reader: 1.9-1.25 sleep 100 ms; 1.26 half full / EOF / overflow; log nil after EOF": [
        (W + "07-profbuf-and-reader.md", "**sleep 100 ms**"),
        (W + "07-profbuf-and-reader.md", "(65,536 words)"),
        (W + "07-profbuf-and-reader.md", "`cpuprof.log` is cleared only then"),
    ],
    "9 builder: (stack, label) entries, [count, count*1e9/hz], lostProfileEvent, no "
    "timestamps, duration = writer wall time": [
        (W + "08-samples-to-pprof.md", "the stack plus the label-map pointer"),
        (W + "08-samples-to-pprof.md", "`[count, count × period]`"),
        (W + "08-samples-to-pprof.md", "`runtime/pprof.lostProfileEvent`"),
        (W + "08-samples-to-pprof.md", "**Time order is thrown away.**"),
        (W + "08-samples-to-pprof.md", "**wall time of the writer**"),
    ],
    "10 Windows: 10 ms wall-clock period, every unblocked M with profilehz suspended": [
        (W + "09-other-systems.md", "`1000 / hz` ms"),
        (W + "09-other-systems.md", "**wall-clock** time"),
        (W + "09-other-systems.md", "`SuspendThread`"),
    ],
    "11 validation: TestCPUProfileMultithreadMagnitude + #35057/#45983/#14434": [
        (W + "08-samples-to-pprof.md", "TestCPUProfileMultithreadMagnitude"),
        (W + "08-samples-to-pprof.md", "within 10%"),
        (W + "03-signals-and-coalescing.md", "#45983"),
        (W + "03-signals-and-coalescing.md", "249.4%"),
        (W + "05-who-gets-the-signal.md", "**80/20**"),
    ],
}


def _words(text: str) -> str:
    """Whitespace-insensitive text as a reader sees it, so rewrapping a paragraph or
    linking a name to its source does not break a phrase."""
    return " ".join(LINK_TEXT.sub(r"\1", text).split())


def test_checklist_has_all_eleven_items() -> None:
    assert [int(item.split()[0]) for item in CHECKLIST] == list(range(1, 12))


@pytest.mark.parametrize("item", list(CHECKLIST), ids=[i.split()[0] for i in CHECKLIST])
def test_checklist_item_is_explained(item: str) -> None:
    missing = [
        f"{page}: {phrase!r}"
        for page, phrase in CHECKLIST[item]
        if _words(phrase) not in _words((DOCS / page).read_text(encoding="utf-8"))
    ]

    assert missing == []


def test_every_walkthrough_chapter_cites_sources_and_its_module() -> None:
    problems = []
    for page in sorted((DOCS / "walkthrough").glob("[0-9][0-9]-*.md")):
        text = page.read_text(encoding="utf-8")
        if "## Sources" not in text:
            problems.append(f"{page.name}: no Sources section")
        number = int(page.name[:2])
        if number >= 2 and not re.search(r"`(sim|contract|realprof|lab)[./][a-z_]+", text):
            problems.append(f"{page.name}: names no module of the code")

    assert problems == []


# ---------------------------------------------------------------------------------------
# Simulated numbers in the prose come from the command named next to them

CLAIM = re.compile(
    r"`(?P<cmd>python -m sim scenarios/[^`]+)`\s*→(?P<text>.*?)(?=\n\s*\n|`python -m|\Z)", re.S
)
NUMBER = re.compile(r"(?<![\w.#/-])\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> set[float]:
    return {float(m.group().replace(",", "")) for m in NUMBER.finditer(text)}


def _claims() -> list[tuple[str, str, str]]:
    claims = []
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for match in CLAIM.finditer(text):
            # A claim ends at the paragraph's end or at the next command. Numbers in code
            # spans (commands, flags) and in links ("chapter 4") are not claims.
            prose = re.sub(r"`[^`]*`|\[[^\]]*\]\([^)]*\)", "", match["text"])
            claims.append((str(page.relative_to(DOCS)), match["cmd"], prose))
    return claims


def test_simulated_numbers_in_the_prose_match_their_command() -> None:
    """`python -m sim scenarios/X.yaml [--set ...]` → every number after it is in its output."""
    import shlex

    from contract.report import render_text
    from contract.scenario_file import load_scenario
    from sim.model import simulate

    claims = _claims()
    outputs: dict[str, set[float]] = {}
    wrong = []
    for page, command, prose in claims:
        if command not in outputs:
            argv = shlex.split(command)[3:]
            overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
            report = simulate(load_scenario(ROOT / argv[0], overrides)).report
            used = round(report.cpu_seconds / report.wall_seconds * 100, 1)
            outputs[command] = _numbers(render_text(report)) | {used}
        extra = sorted(_numbers(prose) - outputs[command])
        if extra:
            wrong.append(f"{page}: {command} does not print {extra}")

    assert len(claims) >= 15
    assert wrong == []
