"""The `spider` console script: assembles the subcommands that packages register.

Each package declares its command groups under the entry-point group `spider.commands`
(see pyproject.toml) as a function `register(subparsers)` that adds its parsers and sets
`handler` on them. The handler receives the parsed arguments and returns an exit code.
This keeps `challenge` free of imports from the packages built on it.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from challenge.errors import SpiderError

ENTRY_POINT_GROUP = "spider.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spider",
        description="Evaluation harness for the SPIDER lumbar-spine MRI segmentation challenge.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register = entry_point.load()
        except ImportError as error:
            # An optional extra (e.g. training) is not installed: keep the other commands working
            # and say what is missing when this group is asked for.
            _register_unavailable(subparsers, entry_point.name, error)
            continue
        register(subparsers)
    return parser


def _register_unavailable(subparsers, name: str, error: ImportError) -> None:
    parser = subparsers.add_parser(name, help=f"(unavailable: {error.name or error} is not installed)")
    parser.add_argument("rest", nargs=argparse.REMAINDER)

    def handler(_arguments) -> int:
        raise SpiderError(
            f"the '{name}' commands need a package that is not installed ({error}). "
            "Install the project with its extras, e.g. `make install` or `pip install -e '.[train]'`."
        )

    parser.set_defaults(handler=handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return int(arguments.handler(arguments) or 0)
    except SpiderError as error:
        print(f"spider {arguments.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spider {arguments.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
