"""`python -m labs` lists the labs; `python -m labs run N` runs lab N's steps;
`python -m labs check N ...` is `python -m labs.check N ...`."""

from __future__ import annotations

import sys

import yaml

from labs import lab_dirs


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        from labs.steps import main as run_main

        return run_main(argv[1:])
    if argv and argv[0] == "check":
        from labs.check import main as check_main

        return check_main(argv[1:])
    if argv:
        print("usage: python -m labs [run N | check N ARGS...]", file=sys.stderr)
        return 2
    for number, path in sorted(lab_dirs().items()):
        data = yaml.safe_load((path / "steps.yaml").read_text(encoding="utf-8"))
        print(f"{number}. {data.get('title', path.name)}  ({data.get('page', '')})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m labs | head`
        sys.exit(0)
