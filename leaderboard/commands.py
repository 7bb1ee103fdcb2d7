"""`spider leaderboard build`: rank a phase's submissions and write the static site.

The phase is read only through the registry's read API (`submissions.queries.read_phase`): the
registry is opened read-only, and one that is missing or at an older schema is refused with a
RegistryError, which the CLI prints as an error (exit code 2) without creating anything.
"""

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
    build.add_argument("--out", type=Path, required=True, metavar="SITE",
                       help="folder to write the site into (replaced)")
    build.add_argument(
        "--db", metavar="URL",
        help="registry database URL or SQLite file; default $SPIDER_DB, else registry.sqlite in the work folder",
    )
    build.add_argument("--work", type=Path, metavar="DIR", help="registry work folder; default $SPIDER_WORK")
    # The release layout is spelled out here, not taken from challenge.release: importing that at
    # parser build time would load numpy and SimpleITK for every `spider` command.
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
    build.add_argument("--phases", type=Path, metavar="FILE",
                       help="phases file declaring what each phase's public site may show "
                            "(default challenge/phases.toml)")
    build.add_argument("--draws", type=int, metavar="N", help="bootstrap draws (default: the phase's ranking config)")
    build.set_defaults(handler=_build)


def _build(arguments: argparse.Namespace) -> int:
    from challenge.phases import load_phases
    from challenge.ranking import get_ranking
    from leaderboard.cases import predictions_in_folder
    from leaderboard.errors import LeaderboardError
    from leaderboard.site import SiteInput, build_site
    from submissions.queries import read_phase

    if arguments.draws is not None and arguments.draws < 1:
        raise LeaderboardError(f"--draws must be at least 1, found {arguments.draws}")
    phases = load_phases(arguments.phases)
    config = get_ranking(arguments.phase, arguments.ranking, phase_names=set(phases))
    if arguments.phase not in phases:
        raise LeaderboardError(f"phase {arguments.phase!r} is not declared in the phases file: what its public site "
                               f"may show is unknown; phases declared: {sorted(phases)}")
    disclosure = phases[arguments.phase].disclosure
    phase = read_phase(arguments.db, arguments.phase, work=arguments.work)
    test_set = arguments.test_set or (phase.data_dir if phase.data_dir.is_dir() else None)
    if test_set is not None and not test_set.is_dir():
        raise LeaderboardError(f"test set folder not found: {test_set}")
    predictions = predictions_in_folder(arguments.predictions) if arguments.predictions else None
    site = SiteInput(phase.submissions, cases=phase.cases or None, test_set=test_set, predictions=predictions)
    report = build_site(site, out=arguments.out, config=config, disclosure=disclosure, draws=arguments.draws)
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"ranked {len(report.ranked)} submission(s) of phase {arguments.phase!r}; {len(report.pages)} pages")
    print(f"disclosure: {disclosure.describe()}")
    print(f"leaderboard: {report.index.resolve()}")
    print(f"open it with a browser (file://{report.index.resolve()}) or serve the folder: "
          f"python3 -m http.server --directory {report.out.resolve()}")
    return 0
