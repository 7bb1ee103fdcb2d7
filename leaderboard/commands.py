"""`spider leaderboard build`: rank a phase's submissions and write the static site."""

from __future__ import annotations

import argparse
from pathlib import Path

from challenge.phases import DEFAULT_PHASE


def register(subparsers) -> None:
    leaderboard = subparsers.add_parser("leaderboard", help="rank submissions and build the static leaderboard site")
    actions = leaderboard.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="write the leaderboard site of a phase from the registry",
        description="Rank the completed submissions of a phase as challenge/ranking.toml declares, analyse the "
                    "ranking's stability, and write a static site (HTML, SVG/PNG, CSV, JSON) that works from the "
                    "file system or any static host.",
    )
    build.add_argument("--phase", default=DEFAULT_PHASE, help=f"phase to rank (default {DEFAULT_PHASE})")
    build.add_argument("--out", type=Path, required=True, metavar="SITE", help="folder to write the site into (replaced)")
    build.add_argument(
        "--db", metavar="URL",
        help="registry database URL or SQLite file; default $SPIDER_DB, else registry.sqlite in the work folder",
    )
    build.add_argument("--work", type=Path, metavar="DIR", help="registry work folder; default $SPIDER_WORK")
    build.add_argument(
        "--test-set", type=Path, metavar="DIR",
        help="hidden test set folder (images/, masks/, overview.csv, radiological_gradings.csv); "
             "default the phase's folder in the registry",
    )
    build.add_argument(
        "--predictions", type=Path, metavar="DIR",
        help="stored predictions as DIR/<submission id>/<case>.mha, for jobs whose output the registry does not know",
    )
    build.add_argument("--ranking", type=Path, metavar="FILE", help="ranking config (default challenge/ranking.toml)")
    build.add_argument("--draws", type=int, metavar="N", help="bootstrap draws (default: the phase's ranking config)")
    build.set_defaults(handler=_build)

    demo = subparsers.add_parser(
        "demo", help="run the main job end to end on synthetic data (what `make demo` runs)",
        description="Synthesize a hidden test set, train the smoke baseline, build its container and three "
                    "flawed variants, submit them as teams, evaluate, and build the leaderboard site.",
    )
    demo.add_argument("--out", type=Path, required=True, metavar="DIR", help="demo folder (created; a rerun refreshes it)")
    demo.add_argument("--cases", type=int, default=6, metavar="N", help="hidden test series (default 6)")
    demo.add_argument("--workers", type=int, default=2, metavar="N", help="jobs at once (default 2)")
    demo.set_defaults(handler=_demo)


def _demo(arguments: argparse.Namespace) -> int:
    from leaderboard.demo import run_demo

    run_demo(arguments.out, test_cases=arguments.cases, workers=arguments.workers)
    return 0


def _build(arguments: argparse.Namespace) -> int:
    from challenge.phases import load_phases
    from challenge.ranking import get_ranking
    from leaderboard.cases import predictions_in_folder
    from leaderboard.errors import LeaderboardError
    from leaderboard.site import build_site
    from leaderboard.source import load_phase

    if arguments.draws is not None and arguments.draws < 1:
        raise LeaderboardError(f"--draws must be at least 1, found {arguments.draws}")
    config = get_ranking(arguments.phase, arguments.ranking, phase_names=set(load_phases()))
    data = load_phase(arguments.db, arguments.phase, work=arguments.work)
    test_set = arguments.test_set or data.test_set
    if test_set is not None and not test_set.is_dir():
        raise LeaderboardError(f"test set folder not found: {test_set}")
    report = build_site(
        data.submissions, out=arguments.out, config=config, cases=data.cases or None, test_set=test_set,
        predictions=predictions_in_folder(arguments.predictions) if arguments.predictions else None,
        draws=arguments.draws,
    )
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"ranked {len(report.ranked)} submission(s) of phase {arguments.phase!r}; {len(report.pages)} pages")
    print(f"leaderboard: {report.index.resolve()}")
    print(f"open it with a browser (file://{report.index.resolve()}) or serve the folder: "
          f"python3 -m http.server --directory {report.out.resolve()}")
    return 0
