"""The demo's ranking: the reference first, each flawed variant below it for its flaw's reason.

`make demo` trains the reference for minutes, so CI cannot run it whole. This test runs the
part that decides the order: the demo's flaws (the very functions its images run) applied to a
reference that outlines imperfectly but names levels right, scored by the scoring rules and
ranked by the final phase's ranking config.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
import SimpleITK as sitk

from challenge.ranking import load_rankings
from challenge.statuses import JobStatus, SubmissionStatus
from challenge.synth import make_series
from demo.flaw import refuses, spoil
from demo.run import ENTRIES
from evaluation.score import score_case
from leaderboard.ranking import rank, score_table
from submissions.records import JobRecord, SubmissionResults

SUBMITTED = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
SERIES = (("t1", 3), ("t2", 3), ("t2_SPACE", 3), ("t1", 8), ("t2", 8))


@pytest.fixture(scope="module")
def test_set():
    """(case, reference mask, reference algorithm's prediction, spacing zyx) per series."""
    cases = []
    for sequence, seed in SERIES:
        series = make_series(sequence=sequence, seed=seed, voxel_scale=2.0)
        truth = sitk.GetArrayFromImage(series.mask)
        # Imperfect outlines (everything one voxel off along the long axis), levels named right.
        prediction = np.roll(truth, 1, axis=int(np.argmax(truth.shape)))
        spacing = tuple(reversed(series.mask.GetSpacing()))
        cases.append((f"{seed}_{sequence}", truth, prediction, spacing, series.mask.GetSpacing()))
    return cases


def submission(submission_id, entry, test_set) -> SubmissionResults:
    """The entry's results as the leaderboard reads them from the registry (submissions.queries)."""
    rows, jobs = [], []
    for case, truth, prediction, spacing_zyx, spacing_xyz in test_set:
        crashed = entry.flaw is not None and refuses(entry.flaw, spacing_xyz)
        output = None if crashed else (spoil(prediction, entry.flaw) if entry.flaw else prediction)
        jobs.append(JobRecord(case, JobStatus.FAILED if crashed else JobStatus.SUCCEEDED,
                              "container exited with code 1" if crashed else None, None, None, 1))
        rows.extend(score_case(truth, output, spacing_zyx, case=case))
    return SubmissionResults(id=submission_id, team=entry.team, algorithm_name=entry.algorithm,
                             image_digest="sha256:0", created_at=SUBMITTED, status=SubmissionStatus.COMPLETED,
                             rules_version=None, rows=tuple(rows), jobs=tuple(jobs))


def test_reference_ranks_first_and_each_flaw_costs_what_it_should(test_set):
    config = load_rankings()["final"]
    submissions = [submission(index + 1, entry, test_set) for index, entry in enumerate(ENTRIES)]
    id_of = {entry.tag: s.id for entry, s in zip(ENTRIES, submissions, strict=True)}
    table = score_table(submissions, config.columns)
    ranking = rank(table, config)
    reference, *flawed = (id_of[entry.tag] for entry in ENTRIES)
    assert ranking.rank_of(reference) == 1
    ranks = dict(zip(ranking.submission_ids, ranking.ranks, strict=True))
    assert all(ranking.rank_of(sid) > 1 for sid in flawed), ranks

    def mean(submission_id, metric, structure):
        column = [i for i, c in enumerate(config.columns) if (c.metric, c.structure) == (metric, structure)][0]
        return float(np.nanmean(table.values[column, table.submission_ids.index(submission_id)]))

    by_flaw = {entry.flaw: id_of[entry.tag] for entry in ENTRIES}
    assert mean(by_flaw["drop-discs"], "dice", "discs") == 0.0
    assert mean(by_flaw["drop-discs"], "dice", "vertebrae") == mean(reference, "dice", "vertebrae")
    # Overlap is matched by position: shifted names keep every overlap score, lose identification.
    assert mean(by_flaw["shift-levels"], "dice", "vertebrae") == mean(reference, "dice", "vertebrae")
    assert mean(reference, "identification_rate", "vertebrae") == 1.0
    assert mean(by_flaw["shift-levels"], "identification_rate", "vertebrae") == 0.0
    fragile = next(s for s in submissions if s.id == by_flaw["crash-space"])
    assert [job.case for job in fragile.jobs if job.status == "failed"] == ["3_t2_SPACE"]
    assert mean(by_flaw["crash-space"], "dice", "spinal_canal") < mean(reference, "dice", "spinal_canal")
