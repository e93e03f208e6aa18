"""The sources check (offline): every Go, Linux and CPython citation is pinned and linked.

Three rules, each checked on the docs and, on small strings, on known good and bad cases:

(a) Pinned links. A link into the golang/go, torvalds/linux or python/cpython
    repositories (`/blob/` a file, `/tree/` a folder) names a release tag (`go1.19.8`,
    `v6.1`, `v3.11.2`) or a 40-hex commit, never a branch (`master`, `main`, `3.13`); a
    link to a file carries a line anchor (`#L123` or `#L120-L130`), a folder needs none.
    Links into the Linux cross-referencer (elixir.bootlin.com) name a version likewise;
    its file pages carry a line anchor, its identifier pages (`/A/ident/NAME`) need none.
    Checked on every page of `docs/` and on the identifier registry.
(b) Linked issues. In each walkthrough chapter and lab page, the first mention of a Go
    issue (`#35057`, `golang/go#35057`, `issue 35057`) is a link to
    https://github.com/golang/go/issues/35057; a CPython `gh-NNNNN` likewise links to
    python/cpython/issues. A reference that names another project (`PR #1068` of
    async-profiler, `gperftools issue 278`, `owner/repo#N`) is that project's and is
    not checked here.
(c) Linked identifiers. `docs/data/source_identifiers.yml` maps each Go and Linux
    identifier the walkthrough names to a pinned link (the definition line at a release
    tag). In each chapter the first backticked use of a registered identifier is a
    Markdown link to a pinned source (the registry's or another pinned one). So that
    nothing slips through unclassified, every backticked token of a chapter that looks
    like a Go or Linux identifier is registered or on the registry's allow-list of
    project and Python names. What "looks like" is deliberately wide and simple:
    a lowerCamelCase or UpperCamelCase word with an inner capital (`setThreadCPUProfiler`,
    `StartCPUProfile`, `_ExternalCode`), a name qualified by a Go package or runtime
    variable (`runtime.X`, `pprof.X`, `syscall.X`, `trace.X`, `mp.X`, `prof.X`,
    `cpuprof.X`, `sched.X`) or by a lowerCamelCase type (`profBuf.write`), a
    snake_case word (`complete_signal`) or a C field access (`signal->curr_target`).

Fenced code blocks, headings, admonition titles and images are not prose and are skipped
by (c): a link belongs in the first sentence that uses the name. Every failure names the page, the
token and what to do.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from references import ROOT

DOCS = ROOT / "docs"
REGISTRY = DOCS / "data" / "source_identifiers.yml"
CHAPTERS = sorted((DOCS / "walkthrough").glob("*.md"))
LAB_PAGES = sorted((DOCS / "labs").glob("*.md"))

SOURCE_REPOS = ("golang/go", "torvalds/linux", "python/cpython")
REPO_LINK = re.compile(
    r"https://github\.com/(?P<repo>golang/go|torvalds/linux|python/cpython)"
    r"/(?P<kind>blob|tree)/(?P<ref>[^/\s)#]+)(?P<path>/[^\s)#>]*)?(?P<anchor>#[^\s)>]*)?"
)
ELIXIR_LINK = re.compile(
    r"https://elixir\.bootlin\.com/linux/(?P<ref>[^/\s)#]+)"
    r"/(?P<kind>source|A/ident)(?P<path>/[^\s)#>]*)?(?P<anchor>#[^\s)>]*)?"
)
PINNED_REF = re.compile(r"^(?:go\d+\.\d+(?:\.\d+)?|v\d+\.\d+(?:\.\d+)?|[0-9a-f]{40})$")
LINE_ANCHOR = re.compile(r"^#L\d+(?:-L\d+)?$")
OTHER_PINNED = re.compile(
    r"^https://(?:github\.com/(?:golang/go|torvalds/linux|python/cpython)/commit/[0-9a-f]{7,40}"
    r"|go\.googlesource\.com/go/\+/[0-9a-f]{7,40}|go-review\.googlesource\.com/c/go/\+/\d+"
    r"|(?:github\.com/(?:golang/go|python/cpython)/issues/\d+)"
    r"|man7\.org/linux/man-pages/\S+)"
)

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
LINK = re.compile(r"(?<!!)\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]\((?P<url>[^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
TITLE_LINE = re.compile(r"[ \t]*(?:#|!!!|\?\?\?|!\[)")

# (b) issue references: the project is named by what precedes the number.
GO_ISSUE = re.compile(r"(?<![\w/#-])(?P<prefix>golang/go\s?#|#|[Ii]ssues? )(?P<number>\d{3,6})\b")
CPYTHON_ISSUE = re.compile(r"(?<![\w/-])(?:gh|GH)-(?P<number>\d{3,6})\b")
OTHER_PROJECT = re.compile(
    r"(?:\bPR\s?|[\w.-]+/[\w.-]+\s?|gperftools |async-profiler |py-spy |CPython |pprof )$"
)

# (c) what looks like a Go or Linux identifier
LOOKS_LIKE_SOURCE = (
    re.compile(r"^_?[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*$"),  # setThreadCPUProfiler, profBuf
    re.compile(r"^_?[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*$"),  # StartCPUProfile, _ExternalCode
    re.compile(
        r"^(?:runtime|pprof|runtime/pprof|syscall|trace|mp|m|gp|sched|prof|cpuprof)\.[\w.]+$"
    ),
    re.compile(r"^_?[a-z][a-z0-9]*[A-Z]\w*\.\w+$"),  # cpuProfile.addNonGo, profBuf.write
    re.compile(r"^_*[a-z][a-z0-9]*(?:_[a-z0-9]+)+$"),  # complete_signal, __run_posix_cpu_timers
    re.compile(r"^[a-z_]+->[a-z_]+$"),  # signal->curr_target
)


def load_registry(path: Path = REGISTRY) -> tuple[dict[str, str], set[str]]:
    """(identifier -> pinned URL, allow-listed names) from the registry file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    registered = {**data["go"], **data["linux"]}
    return registered, set(data["allow"])


def without_fences(text: str) -> str:
    """The text with fenced code blocks blanked: each character but a newline becomes a
    space, so offsets and line numbers stay those of the page."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _link_at(links: list[re.Match[str]], offset: int) -> str | None:
    """The URL of the link whose text holds `offset`, if any."""
    for link in links:
        if link.start("text") <= offset < link.end("text"):
            return link.group("url")
    return None


def pin_problem(url: str) -> str | None:
    """Why a link into Go, Linux or CPython sources is not pinned, or None if it is."""
    match = REPO_LINK.match(url) or ELIXIR_LINK.match(url)
    if match is None:
        return None
    if not PINNED_REF.match(match["ref"]):
        return f"names {match['ref']!r}, not a release tag or a 40-hex commit"
    is_file = match["kind"] in ("blob", "source") and not (match["path"] or "/").endswith("/")
    anchor = match["anchor"] or ""
    if is_file and not LINE_ANCHOR.match(anchor):
        return "links a file without a line anchor (#L123 or #L120-L130)"
    return None


def is_pinned_source(url: str) -> bool:
    """A link that pins what it cites: a pinned source file or folder, a commit, an issue."""
    in_source = REPO_LINK.match(url) or ELIXIR_LINK.match(url)
    if in_source:
        return pin_problem(url) is None
    return OTHER_PINNED.match(url) is not None


def unpinned_links(text: str) -> list[tuple[str, str]]:
    """(url, why) for every unpinned link into Go, Linux or CPython sources in `text`."""
    found = []
    for match in re.finditer(r"https://(?:github\.com|elixir\.bootlin\.com)/[^\s)>\]\"'`]+", text):
        why = pin_problem(match.group().rstrip(".,;:"))
        if why is not None:
            found.append((match.group(), why))
    return found


def issue_problems(page: str, text: str) -> list[str]:
    """(b): the first mention of each Go or CPython issue is a link to it."""
    text = without_fences(text)
    links = list(LINK.finditer(text))
    seen: set[tuple[str, str]] = set()
    problems = []
    mentions = [(m, "golang/go") for m in GO_ISSUE.finditer(text)]
    mentions += [(m, "python/cpython") for m in CPYTHON_ISSUE.finditer(text)]
    for match, repo in sorted(mentions, key=lambda item: item[0].start()):
        before = text[max(0, match.start() - 40) : match.start()]
        bare = repo == "golang/go" and not match["prefix"].startswith("golang/go")
        if bare and OTHER_PROJECT.search(before):
            continue  # another project's issue or pull request
        if _inside_url(links, match.start()):
            continue
        key = (repo, match["number"])
        if key in seen:
            continue
        seen.add(key)
        url = _link_at(links, match.start())
        want = f"https://github.com/{repo}/issues/{match['number']}"
        if url is None or url.rstrip("/").split("#")[0] != want:
            problems.append(
                f"{page}:{_line(text, match.start())}: first mention of {repo} issue "
                f"{match['number']} ({match.group()!r}) is not a link; write "
                f"[{match.group().strip()}]({want})"
            )
    return problems


def _inside_url(links: list[re.Match[str]], offset: int) -> bool:
    return any(link.start("url") <= offset < link.end("url") for link in links)


def _normalize(token: str) -> str:
    token = token.strip()
    return token[:-2] if token.endswith("()") else token


def identifier_problems(
    page: str, text: str, registered: dict[str, str], allowed: set[str]
) -> list[str]:
    """(c): registered identifiers are linked on first use; nothing source-like is unclassified."""
    text = without_fences(text)
    links = list(LINK.finditer(text))
    seen: set[str] = set()
    problems = []
    for match in INLINE_CODE.finditer(text):
        if TITLE_LINE.match(text, text.rfind("\n", 0, match.start()) + 1):
            continue  # a heading, an admonition's title or an image: not prose
        token = _normalize(match.group(1))
        where = f"{page}:{_line(text, match.start())}"
        if token in registered:
            if token in seen:
                continue
            seen.add(token)
            url = _link_at(links, match.start())
            if url is None:
                problems.append(
                    f"{where}: first use of `{token}` in this chapter is not a link; write "
                    f"[`{token}`]({registered[token]})"
                )
            elif not is_pinned_source(url):
                problems.append(
                    f"{where}: `{token}` links {url}, not a pinned source; link "
                    f"{registered[token]} (or another tag or commit with a line anchor)"
                )
        elif token not in allowed and any(p.match(token) for p in LOOKS_LIKE_SOURCE):
            problems.append(
                f"{where}: `{token}` looks like a Go or Linux identifier but is neither "
                f"registered nor allowed: add it with its pinned link to go: or linux: in "
                f"{REGISTRY.relative_to(ROOT)}, or to allow: if it is a project or Python name"
            )
    return problems


# ---------------------------------------------------------------------------------------
# The rules on the docs


def test_links_into_go_linux_and_cpython_are_pinned() -> None:
    pages = [*sorted(DOCS.rglob("*.md")), REGISTRY]
    problems = [
        f"{page.relative_to(ROOT)}: {url} {why}"
        for page in pages
        for url, why in unpinned_links(page.read_text(encoding="utf-8"))
    ]

    assert problems == [], "\n".join(["unpinned links:", *problems])


def test_the_registry_links_are_pinned_to_a_line() -> None:
    registered, allowed = load_registry()
    problems = [
        f"{name}: {url}"
        for name, url in registered.items()
        if pin_problem(url)
        or not (REPO_LINK.match(url) or ELIXIR_LINK.match(url) or OTHER_PINNED.match(url))
    ]
    both = sorted(set(registered) & allowed)

    assert problems == [], "\n".join(["registry links not pinned:", *problems])
    assert both == [], f"registered and allowed at once: {both}"


def test_first_mention_of_each_issue_is_a_link() -> None:
    problems = [
        problem
        for page in CHAPTERS + LAB_PAGES
        for problem in issue_problems(str(page.relative_to(ROOT)), page.read_text(encoding="utf-8"))
    ]

    assert problems == [], "\n".join(problems)


def test_first_use_of_each_identifier_is_a_link() -> None:
    registered, allowed = load_registry()
    problems = [
        problem
        for page in CHAPTERS
        for problem in identifier_problems(
            str(page.relative_to(ROOT)), page.read_text(encoding="utf-8"), registered, allowed
        )
    ]

    assert problems == [], "\n".join(problems)


GO_1198_LINK = re.compile(
    r"\[`(?P<name>[^`\]]+)`\]\(https://github\.com/golang/go/blob/go1\.19\.8/src/"
    r"(?P<path>[^#)]+)#L(?P<first>\d+)(?:-L(?P<last>\d+))?\)"
)
QUALIFIED_NAME = re.compile(r"^(?:(?P<owner>\w+)\.)?(?P<name>\w+)(?:\(.*\))?$")
GO_FUNC = re.compile(r"^func (?:\((?:\w+ )?\*?(?P<recv>\w+)(?:\[[^\]]*\])?\) )?(?P<name>\w+)[\[(]")


def function_spans(lines: list[str], name: str, receiver: str | None) -> list[tuple[int, int]]:
    """(first, last) line numbers of each `func` called `name` (on `receiver`, if given) in
    a Go file, its doc comment included: a link may show the comment or the body."""
    spans = []
    for index, line in enumerate(lines):
        m = GO_FUNC.match(line)
        if m is None or m["name"] != name or (receiver and m["recv"] != receiver):
            continue
        end = index
        while end < len(lines) and lines[end].rstrip() != "}":
            end += 1
        start = index
        while start > 0 and lines[start - 1].startswith("//"):
            start -= 1
        spans.append((start + 1, end + 1))
    return spans


def go_anchor_problems(page: str, text: str, goroot: Path) -> list[str]:
    """Links whose text names a Go function (or method, or any identifier) and whose
    go1.19.8 line anchor shows neither the inside of that function nor the name."""
    problems = []
    for m in GO_1198_LINK.finditer(text):
        named = QUALIFIED_NAME.match(m["name"])
        if named is None or m["name"].endswith(".go"):
            continue  # a file or a package, not an identifier
        first = int(m["first"])
        last = int(m["last"] or first)
        lines = (goroot / "src" / m["path"]).read_text(errors="replace").splitlines()
        spans = function_spans(lines, named["name"], named["owner"])
        shown = lines[first - 1 : last]
        inside = any(start <= first and last <= end for start, end in spans)
        if not inside and not any(named["name"] in line for line in shown):
            where = f"{page}:{_line(text, m.start())}"
            problems.append(
                f"{where}: [{m['name']}] -> {m['path']}#L{first}: that line shows "
                f"{shown[0].strip()[:60]!r}, not {named['name']}"
            )
    return problems


def test_go_line_anchors_show_what_their_link_names(require_tool) -> None:
    go = require_tool("go", "apt-get install golang-go")
    goroot = Path(
        subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True).stdout.strip()
    )
    version = (goroot / "VERSION").read_text().split()[0] if (goroot / "VERSION").exists() else "?"
    if version != "go1.19.8":
        pytest.skip(f"the links are anchored in go1.19.8's source; this Go is {version}")
    problems = [
        problem
        for page in sorted(DOCS.rglob("*.md"))
        for problem in go_anchor_problems(
            str(page.relative_to(ROOT)), page.read_text(encoding="utf-8"), goroot
        )
    ]

    assert problems == [], "\n".join(problems)


def test_an_anchor_off_the_named_function_is_caught(tmp_path: Path) -> None:
    source = tmp_path / "src" / "runtime" / "proc.go"
    source.parent.mkdir(parents=True)
    source.write_text(
        "package runtime\n\n// other does another thing.\nfunc other() {\n\tsigprof(0)\n}\n\n"
        "func sigprof(pc uintptr) {\n\tpc++\n}\n"
    )
    url = "https://github.com/golang/go/blob/go1.19.8/src/runtime/proc.go"
    text = (
        f"[`sigprof`]({url}#L9) inside; [`other`]({url}#L3) its comment; "
        f"[`sigprof(0)`]({url}#L5) a call site; [`other`]({url}#L9) wrong; "
        f"[`proc.go`]({url}#L1) a file"
    )

    assert go_anchor_problems("page.md", text, tmp_path) == [
        "page.md:1: [other] -> runtime/proc.go#L9: that line shows 'pc++', not other"
    ]


# ---------------------------------------------------------------------------------------
# The rules on small strings: they catch what they should


GO_FILE = "https://github.com/golang/go/blob/go1.19.8/src/runtime/proc.go#L4540"


def test_pin_rule_catches_branches_and_missing_lines() -> None:
    text = (
        f"[a]({GO_FILE}) [b](https://github.com/golang/go/blob/master/src/runtime/proc.go#L1) "
        "[c](https://github.com/torvalds/linux/blob/v6.1/kernel/signal.c) "
        "[d](https://github.com/torvalds/linux/tree/v6.1/kernel/time) "
        "[e](https://github.com/python/cpython/blob/3.13/Lib/os.py#L10) "
        "[f](https://elixir.bootlin.com/linux/latest/source/kernel/signal.c#L1) "
        "[g](https://elixir.bootlin.com/linux/v6.13/A/ident/posixtimer_send_sigqueue)"
    )

    assert [url for url, _ in unpinned_links(text)] == [
        "https://github.com/golang/go/blob/master/src/runtime/proc.go#L1",
        "https://github.com/torvalds/linux/blob/v6.1/kernel/signal.c",
        "https://github.com/python/cpython/blob/3.13/Lib/os.py#L10",
        "https://elixir.bootlin.com/linux/latest/source/kernel/signal.c#L1",
    ]


def test_issue_rule_wants_the_first_mention_linked() -> None:
    good = "See [#35057](https://github.com/golang/go/issues/35057); later #35057 again."
    bad = "As golang/go #14434 showed, and [#14434](https://github.com/golang/go/issues/14434)."
    cpython = "CPython gh-99729 unlinked frames."
    other = "async-profiler PR #1068 and gperftools issue 278 and google/pprof#123."

    assert issue_problems("good.md", good) == []
    assert [p.split(":")[0] for p in issue_problems("bad.md", bad)] == ["bad.md"]
    assert "golang/go issue 14434" in issue_problems("bad.md", bad)[0]
    assert "python/cpython issue 99729" in issue_problems("c.md", cpython)[0]
    assert issue_problems("other.md", other) == []
    assert issue_problems("wrong.md", "[#1](https://github.com/golang/go/issues/2) #123") != []


def test_identifier_rule_wants_the_first_use_linked_and_everything_classified() -> None:
    registered = {"sigprof": GO_FILE}
    allowed = {"same_round_survival"}
    linked = f"[`sigprof`]({GO_FILE}) then `sigprof()` and `same_round_survival`."
    unlinked = f"`sigprof()` first, then [`sigprof`]({GO_FILE})."
    branch = "[`sigprof`](https://github.com/golang/go/blob/master/src/runtime/proc.go#L1)"
    unknown = (
        "`complete_signal` and `validSIGPROF` and `runtime.SetCgoTraceback`, `SIGPROF`, "
        "`cpuProfile.addNonGo`, `syscall.SyscallN`, `sim.signals`."
    )
    fenced = "```\n`complete_signal`\n```\n## What `sigprof` does\n"

    assert identifier_problems("a.md", linked, registered, allowed) == []
    assert "first use of `sigprof`" in identifier_problems("a.md", unlinked, registered, allowed)[0]
    assert "not a pinned source" in identifier_problems("a.md", branch, registered, allowed)[0]
    flagged = [p.split("`")[1] for p in identifier_problems("a.md", unknown, registered, allowed)]
    assert flagged == [
        "complete_signal",
        "validSIGPROF",
        "runtime.SetCgoTraceback",
        "cpuProfile.addNonGo",
        "syscall.SyscallN",
    ]
    assert identifier_problems("a.md", fenced, registered, allowed) == []
