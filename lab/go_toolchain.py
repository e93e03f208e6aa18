"""The Go toolchains: find one by release, read its version, build a program, list symbols.

The Go world (`lab.go_world`) writes a scenario's workload as a Go program; this module
is everything it asks of the `go` command. `find_toolchain` finds the `go` of a release
("1.23"): the `go` on PATH if it is that release, Debian's /usr/lib/go-X.Y, or the cache
that `.ci/go-toolchains` fills (`lab.machine.cache_dir("go-toolchains")`/X.Y/usr/lib/go-X.Y,
unpacked from Debian's packages); without a release it is the `go` on PATH. A release
found nowhere is one line naming the command that installs it; a release and the
emulation it runs under make one Go run, a `lab.go_variant.GoVariant`. `version_of` asks
a toolchain's version (`go env GOVERSION`, or `go version` before Go 1.16),
`build_program` builds a single-file module offline (GOPROXY=off, GOTOOLCHAIN=local:
Go 1.21+ would otherwise fetch the toolchain a go.mod names) into a cache keyed by
toolchain and source, so one build serves every rate and duration of a workload, and
`c_symbols` lists the address ranges of named C functions with `go tool nm -size`.

The program's go.mod names the toolchain's own release in its `go` line, as `go mod
init` on that release writes it: from Go 1.21 the `go` line chooses the language version
and the GODEBUG defaults a program is built with (https://go.dev/doc/godebug), so each
release builds the program the way a user of that release would.

Which model a Go release implements
-----------------------------------
From Go 1.18 to 1.25 the Linux profiler is the same machine: `setThreadCPUProfiler`
(src/runtime/os_linux.go) gives every M a `timer_create(CLOCK_THREAD_CPUTIME_ID)` timer
aimed at its own thread, the process-wide `setitimer(ITIMER_PROF)` stays armed beside
them for threads Go did not create, `validSIGPROF` drops the process timer's signals on
Ms that have their own timer, and the reader goroutine sleeps 100 ms between drains
(src/runtime/pprof/pprof.go `profileWriter`). Go 1.19 changed none of that (it named
the buffer constants and added execution-trace CPU samples), so a Go 1.19 run is a
measurement of the scenario's `go1.18` model; 1.26's reader wake-up is the next model,
and Go 1.17 and older arm setitimer alone. `model_runtime` maps a version to its model
(the table is `contract.runtimes`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from contract.runtimes import model_and_timer_for_go_release
from lab.machine import cache_dir

INSTALL_HINT = "apt-get install golang-go"
# The script that fetches the other releases (.ci/go-toolchains) and the releases it knows;
# Go 1.19 is Debian bookworm's golang-go (INSTALL_HINT).
TOOLCHAINS_SCRIPT = ".ci/go-toolchains"
FETCHABLE_GO_RELEASES = ("1.21", "1.22", "1.23", "1.26", "1.27")
SYSTEM_GO_RELEASE = "1.19"
_RELEASE_FORM = re.compile(r"(?:go)?(1\.(?:[0-9]|[1-9][0-9]))")

_BUILD_TIMEOUT_S = 600.0


class GoWorldError(Exception):
    """The Go world cannot run this scenario here; the message is one line for the CLI."""


def go_toolchain() -> str | None:
    """Path of the `go` command, or None when Go is not installed."""
    return shutil.which("go")


@functools.lru_cache(maxsize=8)
def version_of(go: str) -> str | None:
    """The version `go` reports, e.g. "go1.19.8", or None if it reports none."""
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
        if out.startswith("go"):
            return out
        # `go env GOVERSION` needs Go 1.16; older toolchains only answer `go version`.
        words = subprocess.run(
            [go, "version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return words[2] if len(words) >= 3 and words[2].startswith("go") else None


def release_of(version: str) -> str | None:
    """The release ("1.23") of a version ("go1.23.5", "devel go1.27-abc"), or None."""
    match = re.search(r"go(1\.[0-9]+)", version)
    return match.group(1) if match else None


def parse_release(text: str) -> str:
    """A release as the command line names it ("1.23" or "go1.23") -> "1.23"."""
    match = _RELEASE_FORM.fullmatch(text.strip())
    if match is None:
        raise GoWorldError(f"{text.strip()!r} is not a Go release; write it like 1.23")
    return match.group(1)


def install_hint(release: str) -> str:
    """The command that installs Go `release` where the project can find it."""
    if release == SYSTEM_GO_RELEASE:
        return INSTALL_HINT
    if release in FETCHABLE_GO_RELEASES:
        return f"{TOOLCHAINS_SCRIPT} {release}"
    return (
        f"install Go {release} as /usr/lib/go-{release} or on PATH "
        f"({TOOLCHAINS_SCRIPT} fetches {', '.join(FETCHABLE_GO_RELEASES)})"
    )


def toolchain_candidates(release: str) -> list[Path]:
    """Where a release's `go` may be, besides PATH: Debian's and the script's Go roots."""
    root = f"usr/lib/go-{release}"
    return [Path("/", root, "bin", "go"), cache_dir("go-toolchains") / release / root / "bin/go"]


def find_toolchain(release: str | None = None) -> tuple[str, str]:
    """(path of `go`, its version) for `release` ("1.23"), or the `go` on PATH for None.

    A `GoWorldError` naming the install command when no toolchain of the release is here.
    """
    on_path = go_toolchain()
    if release is None:
        if on_path is None:
            raise GoWorldError(f"the Go world needs Go: {INSTALL_HINT}")
        version = version_of(on_path)
        if version is None:
            raise GoWorldError(f"{on_path} does not report a version; is it a Go toolchain?")
        return on_path, version
    for go in [on_path, *map(str, toolchain_candidates(release))]:
        if go is None or not os.access(go, os.X_OK):
            continue
        version = version_of(go)
        if version is not None and release_of(version) == release:
            return go, version
    raise GoWorldError(f"Go {release} is not installed here: run `{install_hint(release)}`")


def go_version() -> str | None:
    """The installed toolchain's version, e.g. "go1.19.8", or None without Go."""
    go = go_toolchain()
    return version_of(go) if go else None


def model_runtime(version: str) -> tuple[str, str]:
    """(runtime model, timer) that a Go version's Linux profiler implements.

    go1.17 and older: setitimer only; 1.18-1.25: per-thread timers beside setitimer
    (src/runtime/os_linux.go); 1.26: the same timers, reader woken at half full
    (src/runtime/profbuf.go). An unparsable version (a devel build) is taken as current.
    """
    return model_and_timer_for_go_release(version)


def _go_env(cache: Path, cgo: bool) -> dict[str, str]:
    env = dict(os.environ)
    # Each toolchain finds its own Go root next to its binary; a GOROOT set for another
    # release would make it build against that release's standard library.
    env.pop("GOROOT", None)
    env.update(
        GOCACHE=str(cache / "gocache"),
        GOPATH=str(cache / "gopath"),
        GO111MODULE="on",
        # -mod=mod: the module has no requirements; a user's GOFLAGS (-mod=vendor) must
        # not apply to it.
        GOFLAGS="-mod=mod",
        GOWORK="off",
        GOPROXY="off",  # a single-file program with no requirements: nothing to download
        GOTOOLCHAIN="local",
        CGO_ENABLED="1" if cgo else "0",
    )
    return env


def first_error_line(text: str) -> str:
    """The first line of a tool's output that is not a `#` heading, for a one-line error."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return "no output"


def run_checked(
    command: list[str], what: str, timeout_s: float = 120, env: dict[str, str] | None = None
) -> str:
    """A Go tool or program's standard output; a `GoWorldError` naming `what` and the first
    line of its error output if it fails, does not finish in `timeout_s` or cannot run."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        raise GoWorldError(f"{what} took more than {timeout_s:g} s") from None
    except OSError as error:
        raise GoWorldError(f"cannot run {command[0]}: {error.strerror or error}") from None
    if done.returncode != 0:
        raise GoWorldError(f"{what} failed: {first_error_line(done.stderr)}")
    return done.stdout


def build_program(go: str, version: str, source: str, cgo: bool) -> Path:
    """Build `source` once per (source, toolchain); later runs reuse the binary."""
    cache = cache_dir("go")
    # No requirements; the go line is the toolchain's release (module header).
    go_mod = f"module sigproflab/goworld\n\ngo {release_of(version) or '1.16'}\n"
    key = hashlib.sha256(f"{go}\0{version}\0{cgo}\0{go_mod}\0{source}".encode()).hexdigest()[:24]
    binary = cache / "bin" / key / "goworld"
    if binary.is_file():
        return binary
    (cache / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache / "build") as tmp:
        Path(tmp, "main.go").write_text(source, encoding="utf-8")
        Path(tmp, "go.mod").write_text(go_mod, encoding="utf-8")
        try:
            done = subprocess.run(
                [go, "build", "-o", "goworld", "."],
                cwd=tmp,
                env=_go_env(cache, cgo),
                capture_output=True,
                text=True,
                timeout=_BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise GoWorldError(f"go build took more than {_BUILD_TIMEOUT_S:.0f} s") from None
        except OSError as error:
            raise GoWorldError(f"cannot run {go}: {error.strerror or error}") from None
        if done.returncode != 0:
            hint = " (cgo needs gcc: apt-get install gcc)" if cgo and "gcc" in done.stderr else ""
            raise GoWorldError(f"go build failed: {first_error_line(done.stderr)}{hint}")
        binary.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp, "goworld"), binary)  # atomic: a concurrent build wins or loses whole
    return binary


@dataclass(frozen=True)
class Symbol:
    """One function's address range in a binary: [start, end)."""

    start: int
    end: int
    name: str


def c_symbols(go: str, binary: Path, wanted: Iterable[str]) -> list[Symbol]:
    """Address ranges of the functions named in `wanted`, by address (`go tool nm -size`)."""
    wanted = set(wanted)
    cached = binary.with_name("nm.txt")
    if cached.is_file():
        text = cached.read_text(encoding="utf-8")
    else:
        text = run_checked(
            [go, "tool", "nm", "-size", "-sort", "address", str(binary)],
            "go tool nm",
            env=_go_env(cache_dir("go"), cgo=False),
        )
        temp = cached.with_name(f"nm.{os.getpid()}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, cached)
    symbols = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] in wanted:
            start, size = int(parts[0], 16), int(parts[1])
            symbols.append(Symbol(start, start + size, parts[3]))
    symbols.sort(key=lambda s: s.start)
    return symbols
