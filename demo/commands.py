"""`spider demo`: synthesize data, train, build containers, submit, evaluate, rank."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the main job end to end on synthetic data (what `make demo` runs)",
        description="Synthesize a hidden test set, train the smoke baseline, build its container and three "
                    "flawed variants, submit them as teams, evaluate, and build the leaderboard site.",
    )
    demo.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="demo folder (created; a rerun refreshes it)"
    )
    demo.add_argument("--cases", type=int, default=6, metavar="N", help="hidden test series (default 6)")
    demo.add_argument("--workers", type=int, default=2, metavar="N", help="jobs at once (default 2)")
    demo.set_defaults(handler=_demo)


def _demo(arguments: argparse.Namespace) -> int:
    from demo.run import run_demo

    run_demo(arguments.out, test_cases=arguments.cases, workers=arguments.workers)
    return 0
