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
    _add_phase_arguments(build)
    build.set_defaults(handler=_build)

    report = subparsers.add_parser("report", help="write a private report of a phase: for one team, or the organizer")
    audiences = report.add_subparsers(dest="report_command", metavar="AUDIENCE", required=True)
    team = audiences.add_parser(
        "team", help="one team's own submissions, as the phase's [team_report] allows",
        description="Write a static report (same look as the site) of one team's submissions: per-case results, "
                    "which cases failed and why, and logs where the phase allows them; never another team's data.",
    )
    team.add_argument("--team", required=True, help="the team's name as registered")
    _add_phase_arguments(team)
    team.set_defaults(handler=_report)
    organizer = audiences.add_parser(
        "organizer", help="everything of a phase, as the phase's [organizer_report] allows (default: everything)",
        description="Write the whole site with per-case values, failure reasons and case pictures, plus every case "
                    "across submissions with the cases flagged where every submission fails.",
    )
    _add_phase_arguments(organizer)
    organizer.set_defaults(handler=_report)


def _add_phase_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phase", default=DEFAULT_PHASE, help=f"phase to rank (default {DEFAULT_PHASE})")
    parser.add_argument("--out", type=Path, required=True, metavar="SITE",
                       help="folder to write into (replaced)")
    parser.add_argument(
        "--db", metavar="URL",
        help="registry database URL or SQLite file; default $SPIDER_DB, else registry.sqlite in the work folder",
    )
    parser.add_argument("--work", type=Path, metavar="DIR", help="registry work folder; default $SPIDER_WORK")
    # The release layout is spelled out here, not taken from challenge.release: importing that at
    # parser build time would load numpy and SimpleITK for every `spider` command.
    parser.add_argument(
        "--test-set", type=Path, metavar="DIR",
        help="hidden test set folder (images/, masks/, overview.csv, radiological_gradings.csv); "
             "default the phase's folder in the registry",
    )
    parser.add_argument(
        "--predictions", type=Path, metavar="DIR",
        help="stored predictions as DIR/<submission id>/<case>.mha, for jobs whose output the registry does not know",
    )
    parser.add_argument("--ranking", type=Path, metavar="FILE", help="ranking config (default challenge/ranking.toml)")
    parser.add_argument("--phases", type=Path, metavar="FILE",
                       help="phases file declaring what each phase's public site may show "
                            "(default challenge/phases.toml)")
    parser.add_argument("--draws", type=int, metavar="N", help="bootstrap draws (default: the phase's ranking config)")


def _load(arguments: argparse.Namespace):
    """The phase declared in the phases file, its ranking config, and its submissions as the site reads them."""
    from challenge.phases import load_phases
    from challenge.ranking import get_ranking
    from leaderboard.cases import predictions_in_folder
    from leaderboard.errors import LeaderboardError
    from leaderboard.site import SiteInput
    from submissions.queries import read_phase

    if arguments.draws is not None and arguments.draws < 1:
        raise LeaderboardError(f"--draws must be at least 1, found {arguments.draws}")
    phases = load_phases(arguments.phases)
    config = get_ranking(arguments.phase, arguments.ranking, phase_names=set(phases))
    if arguments.phase not in phases:
        raise LeaderboardError(f"phase {arguments.phase!r} is not declared in the phases file: what each audience "
                               f"may see is unknown; phases declared: {sorted(phases)}")
    phase = read_phase(arguments.db, arguments.phase, work=arguments.work)
    test_set = arguments.test_set or (phase.data_dir if phase.data_dir.is_dir() else None)
    if test_set is not None and not test_set.is_dir():
        raise LeaderboardError(f"test set folder not found: {test_set}")
    predictions = predictions_in_folder(arguments.predictions) if arguments.predictions else None
    site = SiteInput(phase.submissions, cases=phase.cases or None, test_set=test_set, predictions=predictions)
    return phases[arguments.phase], config, site


def _build(arguments: argparse.Namespace) -> int:
    from leaderboard.site import build_site

    phase, config, site = _load(arguments)
    report = build_site(site, out=arguments.out, config=config, disclosure=phase.disclosure, draws=arguments.draws)
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"ranked {len(report.ranked)} submission(s) of phase {arguments.phase!r}; {len(report.pages)} pages")
    print(f"disclosure: {phase.disclosure.describe()}")
    _print_where(report, "leaderboard")
    return 0


def _report(arguments: argparse.Namespace) -> int:
    from leaderboard.reports import build_organizer_report, build_team_report

    phase, config, site = _load(arguments)
    if arguments.report_command == "team":
        what, disclosure = "team report", phase.team_report
        report = build_team_report(site, team=arguments.team, out=arguments.out, config=config,
                                   disclosure=disclosure, draws=arguments.draws)
    else:
        what, disclosure = "organizer report", phase.organizer_report
        report = build_organizer_report(site, out=arguments.out, config=config, disclosure=disclosure,
                                        draws=arguments.draws)
    print(f"{what} of phase {arguments.phase!r}: {len(report.pages)} pages")
    print(f"disclosure: {disclosure.describe(what)}")
    _print_where(report, what)
    return 0


def _print_where(report, what: str) -> None:
    print(f"{what}: {report.index.resolve()}")
    print(f"open it with a browser (file://{report.index.resolve()}) or serve the folder: "
          f"python3 -m http.server --directory {report.out.resolve()}")
