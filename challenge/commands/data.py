"""`spider data check DIR`: read a SPIDER release folder and report what it holds and what is wrong."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="inspect SPIDER data folders")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="check a release folder (images/, masks/, overview.csv, radiological_gradings.csv)",
        description="Print a summary of a SPIDER release folder; exit 1 when problems are found.",
    )
    check.add_argument("folder", type=Path, metavar="DIR")
    check.add_argument("--images-only", action="store_true", help="accept a folder without masks/")
    check.set_defaults(handler=_check)


def _check(arguments: argparse.Namespace) -> int:
    from challenge.release import read_release
    from challenge.release_report import summarize

    release = read_release(arguments.folder, require_masks=not arguments.images_only)
    print(summarize(release))
    return 1 if release.problems else 0
