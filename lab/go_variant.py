"""go_variant: what one Go run is, in the grid, in `compare` and in `go-fit`.

A Go run differs from another by two things: the Go release that runs it
(`lab.go_toolchain.find_toolchain`: "1.23", or the release of the `go` on PATH) and,
optionally, an emulation of an older Go's profiler that it runs under (`lab.go_seccomp`:
"go1.17", `timer_create` denied, so Go samples with the process timer alone). A
`GoVariant` holds both, and everything that follows from them:

* `world`, the run's key in grid.json and compare.json: the release ("go1.23"), and the
  emulation after it when there is one ("go1.19-as-go1.17");
* `model` and `timer`, what its simulated twin runs: the release's model
  (`lab.go_toolchain.model_runtime`: Go 1.18 to 1.25 the `go1.18` model with both timers,
  1.26 on `go1.26`) or, emulated, the emulation's (`go1.17`, the process timer);
* `twin`, the twin's key ("sim-" and the model: "sim-go1.18", "sim-go1.17"), so releases
  that share a model share a twin;
* `runs_in`, the grid's cells it runs: a release the per-thread cells of busy native
  threads (goroutines have no GIL, Go arms its own timers), an emulation the
  process-timer ones (`lab.go_seccomp.emulates`).

Invariants: every Go world is keyed by a release, the `go` on PATH included
(`path_variant`), and `variant_of_world` reads a key back into the variant that wrote it,
so stored data names its twin without running anything.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from lab.go_seccomp import EMULATIONS, Emulation, emulates
from lab.go_toolchain import GoWorldError, find_toolchain, model_runtime, parse_release, release_of

# A Go world's key: "go1.23", "go1.19-as-go1.17".
WORLD_KEY = re.compile(r"go(?P<release>1\.[0-9]+)(?:-as-(?P<emulate>go[0-9.]+))?")


@dataclass(frozen=True)
class GoVariant:
    """One Go run: which release, under which emulation (None: Go's own profiler)."""

    release: str  # "1.23"
    emulate: Emulation | None = None

    @property
    def world(self) -> str:
        suffix = f"-as-{self.emulate.name}" if self.emulate else ""
        return f"go{self.release}{suffix}"

    @property
    def model(self) -> str:
        return self.emulate.runtime if self.emulate else model_runtime(f"go{self.release}")[0]

    @property
    def timer(self) -> str:
        return self.emulate.timer if self.emulate else model_runtime(f"go{self.release}")[1]

    @property
    def twin(self) -> str:
        return f"sim-{self.model}"

    @property
    def title(self) -> str:
        """The run in words: "Go 1.19", "Go 1.19 as go1.17 (timer_create denied)"."""
        if self.emulate is None:
            return f"Go {self.release}"
        return f"Go {self.release} as {self.emulate.name} ({self.emulate.denied} denied)"

    def runs_in(self, cell: tuple[str, int, int, str]) -> bool:
        """Whether the grid runs this variant in `cell` (module header)."""
        if self.emulate is not None:
            return emulates(cell)
        return cell[0] == "native" and cell[3] == "per-thread"

    def emulated(self, emulate: Emulation | None) -> GoVariant:
        """The same release under `emulate` (None: unchanged)."""
        return dataclasses.replace(self, emulate=emulate) if emulate else self


def go_variants(text: str) -> tuple[GoVariant, ...]:
    """`--go-versions 1.19,1.23` as variants, in the order given, each once."""
    releases = [parse_release(part) for part in text.split(",") if part.strip()]
    if not releases:
        raise GoWorldError("--go-versions takes Go releases like 1.19,1.23")
    return tuple(GoVariant(r) for r in dict.fromkeys(releases))


def path_variant() -> GoVariant:
    """The `go` on PATH as a variant of its release; a `GoWorldError` without one."""
    _go, version = find_toolchain()
    release = release_of(version)
    if release is None:
        raise GoWorldError(f"the go on PATH reports {version!r}, not a Go release")
    return GoVariant(release)


def variant_of_world(world: str) -> GoVariant | None:
    """The variant a world key names ("go1.19-as-go1.17"), or None for another world."""
    match = WORLD_KEY.fullmatch(world)
    if match is None:
        return None
    name = match.group("emulate")
    if name is not None and name not in EMULATIONS:
        return None
    return GoVariant(match.group("release"), EMULATIONS[name] if name else None)
