"""`spider phase set`, `spider submit`, `spider evaluate`, `spider rescore`, `spider status`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from challenge.phases import SUBMISSION_PERIODS


def _add_registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", metavar="URL",
        help="database URL (sqlite:///PATH or postgresql+psycopg://...) or SQLite file; "
             "default $SPIDER_DB, else registry.sqlite in the work folder",
    )
    parser.add_argument(
        "--work", type=Path, metavar="DIR",
        help="work folder for images, job outputs and logs; default $SPIDER_WORK, else ~/.local/share/spider",
    )


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=["local", "ray"], default="local", help="where tasks run (default local)")
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="tasks in flight at once (local default 1; ray default: the cluster's CPU count)",
    )
    parser.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)"
    )


def register(subparsers) -> None:
    phase = subparsers.add_parser("phase", help="register challenge phases in the submission registry")
    actions = phase.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_ = actions.add_parser(
        "set",
        help="register or update a phase with its hidden test set and limits",
        description="Register phase NAME (declared in challenge/phases.toml) with the folder of its hidden "
                    "test set (SPIDER layout with masks, checked now), or update it. A new phase takes the "
                    "declared limits; an update keeps the registered limits that are not given.",
    )
    set_.add_argument("name", metavar="NAME")
    set_.add_argument("--data", type=Path, required=True, metavar="DIR", help="hidden test set (images/, masks/)")
    set_.add_argument("--time-limit", type=int, metavar="S", help="seconds per case")
    set_.add_argument("--memory", metavar="SIZE", help='memory per case, e.g. "8g"')
    set_.add_argument("--cpus", type=float, metavar="N", help="CPU quota per case (also what a Ray task asks for)")
    set_.add_argument("--max-submissions", type=int, metavar="N", help="submissions per team per period")
    set_.add_argument("--per", choices=SUBMISSION_PERIODS, help="the period of --max-submissions")
    set_.add_argument("--scoring-time-limit", type=int, metavar="S",
                      help="seconds scoring one case may take; longer (or a dying scorer) makes the case invalid")
    _add_registry_options(set_)
    set_.set_defaults(handler=_phase_set)

    submit = subparsers.add_parser(
        "submit",
        help="register a team's algorithm image for evaluation; prints the submission id",
        description="Load the image (a `docker save` tarball or a local tag), pin it by digest, check the "
                    "phase's rules and create one job per case. Prints the submission id.",
    )
    submit.add_argument("--team", required=True, help="team name (stored as given)")
    submit.add_argument("--name", required=True, help="algorithm name (stored as given)")
    submit.add_argument("--image", required=True, metavar="TAR_OR_TAG")
    submit.add_argument("--phase", metavar="P", help="phase name (default: the challenge's default phase)")
    _add_registry_options(submit)
    submit.set_defaults(handler=_submit)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="run and score every job not done yet (resumable)",
        description="Run every job not done yet, score each case as it ends and write metrics.json when a "
                    "submission's last job ends. Safe to stop at any moment and to run again; several "
                    "engines may run at once on one registry.",
    )
    which = evaluate.add_mutually_exclusive_group(required=True)
    which.add_argument("--submission", type=int, metavar="ID", help="one submission")
    which.add_argument("--pending", action="store_true", help="every submission not completed")
    _add_executor_options(evaluate)
    evaluate.add_argument("--lease-seconds", type=float, default=60.0, metavar="S", help=argparse.SUPPRESS)
    _add_registry_options(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    rescore = subparsers.add_parser(
        "rescore",
        help="score stored outputs again under the current rules (no container runs)",
        description="Recompute results from the stored outputs of finished jobs, without running any "
                    "container. Without --all, only cases scored under another rules version.",
    )
    rescore.add_argument("--all", action="store_true", help="every finished case, not only stale ones")
    rescore.add_argument("--submission", type=int, metavar="ID", help="only this submission")
    rescore.add_argument("--phase", metavar="P", help="only this phase")
    _add_executor_options(rescore)
    _add_registry_options(rescore)
    rescore.set_defaults(handler=_rescore)

    status = subparsers.add_parser("status", help="submissions and their job counts per status")
    status.add_argument("--json", action="store_true", help="print JSON for scripts")
    status.add_argument("--phase", metavar="P", help="only this phase")
    _add_registry_options(status)
    status.set_defaults(handler=_status)


def _open(arguments):
    from submissions.db import open_registry

    return open_registry(arguments.db, work=arguments.work)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _phase_set(arguments) -> int:
    from challenge.phases import format_size
    from submissions.intake import set_phase

    registry = _open(arguments)
    try:
        summary = set_phase(
            registry, arguments.name, data_dir=arguments.data, time_limit_seconds=arguments.time_limit,
            memory=arguments.memory, cpus=arguments.cpus, max_submissions=arguments.max_submissions, per=arguments.per,
            scoring_time_limit_seconds=arguments.scoring_time_limit,
        )
    finally:
        registry.dispose()
    phase = summary.phase
    limit = "no submission limit" if phase.max_submissions is None else (
        f"{phase.max_submissions} submission(s) per team per {phase.submission_period}"
    )
    print(
        f"phase {summary.name} {'registered' if summary.created else 'updated'}: {len(summary.cases)} cases in "
        f"{summary.data_dir}; {phase.time_limit_seconds} s and {format_size(phase.memory_bytes)} per case, "
        f"{phase.cpus:g} CPUs, {phase.gpus} GPU; {limit}; scoring {phase.scoring_time_limit_seconds} s per case"
    )
    return 0


def _submit(arguments) -> int:
    from submissions.intake import submit

    registry = _open(arguments)
    try:
        receipt = submit(
            registry, team=arguments.team, name=arguments.name, image=arguments.image, phase=arguments.phase
        )
    finally:
        registry.dispose()
    _stderr(f"submission {receipt.id} to phase {receipt.phase}: image {receipt.image_digest}, {receipt.jobs} jobs")
    print(receipt.id)
    return 0


def _scope(registry, arguments) -> list[int] | None:
    from submissions.claims import scope_of_pending
    from submissions.errors import UnknownRecordError
    from submissions.models import Submission

    if getattr(arguments, "submission", None) is not None:
        with registry.session() as session:
            if session.get(Submission, arguments.submission) is None:
                raise UnknownRecordError(f"no submission {arguments.submission} in the registry")
        return [arguments.submission]
    if getattr(arguments, "pending", False):
        return scope_of_pending(registry)
    return None


def _executor(arguments):
    from submissions.executors import opened_executor

    return opened_executor(arguments.executor, workers=arguments.workers, ray_address=arguments.ray_address)


def _evaluate(arguments) -> int:
    from submissions.engine import evaluate

    registry = _open(arguments)
    try:
        scope = _scope(registry, arguments)
        with _executor(arguments) as executor:
            report = evaluate(
                registry, executor, submission_ids=scope, lease_seconds=arguments.lease_seconds, progress=_stderr
            )
    finally:
        registry.dispose()
    print(
        f"{report.runs} jobs run, {report.scored} cases scored, {len(report.completed)} submissions completed "
        f"in {report.seconds:.1f} s"
        + (f"; {report.retried_later} jobs given back for a retry" if report.retried_later else "")
        + (f"; {report.held_by_others} jobs held by other engines (run again after their leases expire)"
           if report.held_by_others else "")
    )
    return 0


def _rescore(arguments) -> int:
    from submissions.rescore import rescore

    registry = _open(arguments)
    try:
        scope = _scope(registry, arguments)
        with _executor(arguments) as executor:
            report = rescore(
                registry,
                executor,
                submission_ids=scope,
                phase=arguments.phase,
                everything=arguments.all,
                progress=_stderr,
            )
    finally:
        registry.dispose()
    print(
        f"{report.cases} cases rescored under rules {report.rules_version}; "
        f"{len(report.submissions)} submissions updated"
    )
    return 0


def _status(arguments) -> int:
    from submissions.queries import submission_summaries

    registry = _open(arguments)
    try:
        summaries = submission_summaries(registry, arguments.phase)
    finally:
        registry.dispose()
    if arguments.json:
        print(json.dumps([summary.as_json() for summary in summaries], indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    if not summaries:
        print("no submissions")
        return 0
    for summary in summaries:
        counts = ", ".join(f"{count} {status}" for status, count in summary.job_counts.items())
        # Names are user input: repr() shows control or escape characters instead of sending them
        # to the terminal.
        print(
            f"{summary.id:>5}  {summary.phase}  {summary.status:<10}  team {summary.team!r}  "
            f"algorithm {summary.algorithm_name!r}  {summary.image_digest[:19]}  jobs: {counts}"
        )
    return 0
