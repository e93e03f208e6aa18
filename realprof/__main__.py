"""Command line: `python -m realprof COMMAND` (console script `realprof`), the dispatcher.

The commands, each a module with `main(argv) -> int`:

* ``record`` (`realprof.record`): run a Python program in this process under the
  sampler and write its profile;
* ``show`` (`realprof.show`): summarise a profile (pprof, folded or speedscope) or a
  `report.json`;
* ``flame`` (`realprof.flame`): write a profile as a self-contained HTML flame graph;
* ``scenario`` (`lab.scenario_command`): run a scenario's workload for real and report
  it like `python -m sim`;
* ``compare``, ``calibrate``, ``grid`` (`lab.compare`, `lab.calibrate`, `lab.grid_command`): the
  laboratory's runs: a scenario in the simulator, for real and in Go side by side; this
  machine's kernel parameters measured into a machine profile; the validation grid;
  ``go-fit`` (`lab.go_fit_check`): `python -m sim fit` on real Go profiles against p
  measured in the same sitting.

This module is the front end, above the laboratory: it is the one module of `realprof`
that may import `lab`. Each command is imported only when asked for, so `record` loads
nothing of the laboratory, the simulator or matplotlib before the program it profiles.

Every kind of bad input a command reports as `contract.cli.UsageError` (a missing
script or module, an unknown flag, a bad value, an unwritable output, an unreadable
file) ends here with one line on stderr and exit status 2, never a traceback of ours.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from contract.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, UsageError, err

# The commands named in the error for an unknown one (the laboratory's are in --help).
_COMMANDS = ("record", "show", "flame", "scenario")

_USAGE = """\
usage: python -m realprof COMMAND ...

commands:
  record [options] (script.py | -m module) [args ...]
                       run a Python program under the sampler and write its profile
  show FILE [--sort flat|cum] [--thread NAME] [--process NAME] [--rate-hz HZ] [--top N]
                       summarise a profile (pprof, folded, speedscope) or a report.json
  flame FILE [-o flame.html] [--thread NAME] [--process NAME] [--rate-hz HZ] [--title T]
                       write a profile as a self-contained HTML flame graph (no network)
  scenario SCENARIO.yaml [--out DIR] [--json] [--set PATH=VALUE ...] [--seed N]
                       run a scenario's workload for real and report it like the simulator
  compare SCENARIO.yaml [--worlds sim,real,go] [--repeat N] [--out DIR]
                       run a scenario in the simulator and for real, side by side
  calibrate [--out FILE] [--repeat N] [--duration S]
                       measure this machine's kernel parameters, write a machine profile
  grid [--out DIR] [--quick] [--worlds sim,real,go] ...
                       the validation grid: the model against every real world
  go-samples [--out DIR] [--scale MS]
                       real Go samples for the walkthrough: labels, trace, cgo threads
  go-fit [--out DIR] [--repeat N] [--duration S] | --verdict-only GO_FIT_JSON
                       python -m sim fit on real go1.17-emulated Go profiles vs measured p

`python -m realprof COMMAND --help` explains each command.
"""


def _command(name: str) -> Callable[[list[str]], int] | None:
    """The `main` of command `name`, imported now (see the module docstring), or None."""
    if name == "record":
        from realprof.record import main
    elif name == "show":
        from realprof.show import main
    elif name == "flame":
        from realprof.flame import main
    elif name == "scenario":
        from lab.scenario_command import main
    elif name == "compare":
        from lab.compare import main
    elif name == "calibrate":
        from lab.calibrate import main
    elif name == "grid":
        from lab.grid_command import main
    elif name == "go-samples":
        from lab.go_samples import main
    elif name == "go-fit":
        from lab.go_fit_check import main
    else:
        return None
    return main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "python -m realprof"
    try:
        if not argv:
            raise UsageError(f"no command; commands: {', '.join(_COMMANDS)} ({prog} --help)")
        command, rest = argv[0], argv[1:]
        if command in ("-h", "--help", "help"):
            sys.stdout.write(_USAGE)
            return 0
        handler = _command(command)
        if handler is None:
            raise UsageError(
                f"unknown command {command!r}; commands: {', '.join(_COMMANDS)} ({prog} --help)"
            )
        prog = f"{prog} {command}"
        return handler(rest)
    except UsageError as exc:
        err(f"{prog}: error: {exc}")
        return EXIT_BAD_INPUT
    except SystemExit as exc:
        # argparse's exits (--help: 0, a bad flag: 2); the target's SystemExit never gets
        # here, record turns it into the target's status.
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
