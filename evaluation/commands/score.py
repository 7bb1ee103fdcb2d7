"""`spider score`: score a folder of predictions against a folder of reference masks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from challenge.phases import DEFAULT_SCORING_TIME_LIMIT_S

PROFILE_CHOICES = ("full", "spider2024")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score predictions against reference masks (writes metrics.json and cases.csv)",
        description=(
            "Match PRED_DIR/<case>.mha to MASKS_DIR/<case>.mha, check each prediction against the "
            "output contract, and score it; a missing or invalid prediction is scored by the declared "
            "edge-case rules with its reason recorded. Writes OUT/metrics.json (grand-challenge layout) "
            "and OUT/cases.csv (one row per case, structure, level and metric)."
        ),
    )
    parser.add_argument("--reference", type=Path, required=True, metavar="MASKS_DIR",
                        help="folder of reference masks <case>.mha (e.g. a release's masks/)")
    parser.add_argument("--predictions", type=Path, required=True, metavar="PRED_DIR",
                        help="folder of predictions named like the reference masks")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT", help="folder for the results files")
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default="full",
                        help="metric set: 'full' (default) or 'spider2024' (the official columns, defects fixed)")
    parser.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                        help="cases scored in parallel, one process each (default 1)")
    parser.add_argument("--scoring-time-limit", type=_positive_int, default=DEFAULT_SCORING_TIME_LIMIT_S,
                        metavar="SECONDS",
                        help="wall clock for scoring one case; a case whose scoring takes longer, or whose "
                             f"scoring process dies, is scored as invalid (default {DEFAULT_SCORING_TIME_LIMIT_S})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.set_defaults(handler=_score)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def _score(arguments: argparse.Namespace) -> int:
    from challenge.statuses import CaseStatus
    from evaluation.report import CASES_FILE, METRICS_FILE
    from evaluation.score import score_folders

    report = score_folders(
        arguments.reference,
        arguments.predictions,
        arguments.out,
        profile=arguments.profile,
        workers=arguments.workers,
        progress=not arguments.quiet,
        scoring_time_limit_s=arguments.scoring_time_limit,
    )
    if not arguments.quiet:
        counts = {status: sum(o.status is status for o in report.cases) for status in CaseStatus}
        print(f"scored {len(report.cases)} cases with profile {report.profile} (rules {report.rules_version}): "
              + ", ".join(f"{n} {status.value}" for status, n in counts.items()))
        for outcome in report.cases:
            if outcome.status is not CaseStatus.SCORED:
                print(f"  {outcome.case}: {outcome.status.value}: {outcome.reason}")
        if report.unmatched_predictions:
            print(f"  ignored {len(report.unmatched_predictions)} prediction(s) without a reference: "
                  + ", ".join(report.unmatched_predictions), file=sys.stderr)
        print(f"wrote {arguments.out / METRICS_FILE} and {arguments.out / CASES_FILE}")
    return 0
