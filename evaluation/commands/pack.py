"""`spider pack`: write a starter pack for participants (an example algorithm in both grand-challenge styles)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pack",
        help="write a starter pack for participants: an example algorithm in grand-challenge's exec and invoke styles",
        description=(
            "Write into DIR (new or empty) an example algorithm for the phase, twice: exec/ (the container runs once "
            "per case) and invoke/ (an HTTP server, GET /health and POST /invoke), each with its Dockerfile "
            "(FROM python:3.11-slim), build.sh (offline build), test.sh (`spider try` with the phase's limits and "
            "the organizer's flags) and save.sh (the tarball to upload), and a README.md with the contract and the "
            "phase's limits (docs/grand-challenge.md)."
        ),
    )
    parser.add_argument("--phase", required=True, metavar="NAME",
                        help="phase of phases.toml whose limits the pack's README and test.sh use")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="new or empty folder for the pack")
    parser.set_defaults(handler=_pack)


def _pack(arguments: argparse.Namespace) -> int:
    from challenge.phases import get_phase
    from evaluation.pack.starter import write_starter_pack

    pack = write_starter_pack(phase=get_phase(arguments.phase), out_dir=arguments.out)
    print(f"starter pack for phase {pack.phase.name} ({pack.phase.describe()}) in {pack.out_dir}:")
    for item in pack.files:
        print(f"  {item.path}")
    print(f"next: {pack.out_dir / 'exec' / 'build.sh'}, then test.sh DATA and save.sh (see README.md)")
    return 0
