"""Private reports of a phase: one team's own submissions, and the organizer's view of everything.

Both are written like the public site (leaderboard.publish: built beside `out`, checked, swapped
in) with the same pages, but each shows what its audience's disclosure allows
(challenge.phases: `Phase.team_report`, `Phase.organizer_report`):

* a team report (`build_team_report`) holds an index of the team's submissions with their rank on
  the public leaderboard, the rules, and a page per completed submission of the team; it is
  checked for the phase's case names where the disclosure forbids them, for host paths, and for
  everything of other teams (leaderboard.leaks.others_secrets);
* the organizer's report (`build_organizer_report`) is the whole site under the organizer's
  disclosure, plus cases.html: every case across all submissions, flagged where every submission
  failed on it or their mean Dice is below FLAG_DICE_BELOW (a sign of a bad reference).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from challenge.phases import Disclosure
from challenge.ranking import RankingConfig
from leaderboard.breakdowns import case_info_from_name
from leaderboard.errors import LeaderboardError
from leaderboard.index_page import EFFICIENCY_COLUMNS, efficiency_cells, progress_cells
from leaderboard.leaks import others_secrets
from leaderboard.publish import publish
from leaderboard.ranked_phase import GROUPS, RankedPhase, per_case_values, rank_phase
from leaderboard.rules_page import write_rules
from leaderboard.site import SITE_TITLE, SiteInput, SiteReport, leak_check, write_site
from leaderboard.submission_page import rank_text, write_submission_page
from leaderboard.tables import MISSING_TEXT, Cell, Column, Table, number
from leaderboard.titles import SEQUENCE_TITLES
from leaderboard.writer import SITE_NAV, PageFrame, PageWriter
from submissions.names import team_key
from submissions.records import SubmissionResults

FLAG_DICE_BELOW = 0.5
"""A case whose Dice, averaged over the structure groups and then over submissions, is below this is flagged."""
TEAM_NAV = (("index.html", "Your submissions"), ("rules.html", "Rules"))
ORGANIZER_NAV = (*SITE_NAV[:-1], ("cases.html", "Cases"), SITE_NAV[-1])


def build_team_report(site: SiteInput, *, team: str, out: Path, config: RankingConfig, disclosure: Disclosure,
                      draws: int | None = None, now: datetime | None = None) -> SiteReport:
    """Write `team`'s report of the phase into `out`: its submissions only, as `disclosure` allows."""
    own = [s for s in site.submissions if team_key(s.team) == team_key(team)]
    if not own:
        raise LeaderboardError(f"team {team!r} has no submission in phase {config.phase!r}; teams with one: "
                               f"{sorted({s.team for s in site.submissions})}")
    team = own[0].team  # as the registry stores it: `team` may be typed in another case or spacing
    others = [s for s in site.submissions if s.team != team]
    phase = rank_phase(site.submissions, config, cases=site.cases, draws=draws)
    frame = PageFrame.of(config, title=SITE_TITLE, now=now or datetime.now(timezone.utc), nav=TEAM_NAV,
                         audience=f"Private report for team {team}, phase {config.phase}: not for publication.")

    def write(folder: Path) -> SiteReport:
        writer = PageWriter(folder, frame)
        writer.copy_static("favicon.svg")
        table = _team_table(phase, own, disclosure)
        index = writer.page("index.html", "report_tables.html", tables=[table], tables_shown=[table],
                            heading=f"Submissions of team {team}",
                            notes=[disclosure.describe("this report"), *phase.warnings])
        write_rules(writer)
        folders = site.host_folders
        for submission in own:
            if submission.status.ranked:
                write_submission_page(writer, phase, submission, site.files, disclosure, host_folders=folders)
        return SiteReport(folder, index, tuple(writer.pages), tuple(s.id for s in phase.ranked if s.team == team),
                          phase.warnings)

    check = leak_check(site, phase, disclosure, others_secrets(others, known=[s.image_digest for s in own]))
    return publish(out, write, check, audience=f"report of team {team!r}").moved(Path(out))


def _team_table(phase: RankedPhase, own: Sequence[SubmissionResults], disclosure: Disclosure) -> Table:
    rows = []
    for s in sorted(own, key=lambda s: s.created_at):
        rank = phase.rank_of(s.id) if disclosure.ranking else None
        rows.append((Cell(str(s.id), s.id, href=phase.page_of(s)), Cell(s.algorithm_name, s.algorithm_name),
                     Cell(s.status.value, s.status.value),
                     Cell(rank_text(phase, s, disclosure), rank if rank is not None else 10**9),
                     *progress_cells(s, phase.cases), *efficiency_cells(s)))
    columns = (Column("submission", "Submission", numeric=True), Column("algorithm", "Algorithm"),
               Column("status", "Status"), Column("rank", "Rank on the leaderboard"),
               Column("cases_scored", "Cases scored", numeric=True), Column("failed_jobs", "Failed jobs", numeric=True),
               Column("submitted", "Submitted"), *EFFICIENCY_COLUMNS)
    return Table("submissions", "", columns, tuple(rows))


def build_organizer_report(site: SiteInput, *, out: Path, config: RankingConfig, disclosure: Disclosure,
                           draws: int | None = None, now: datetime | None = None) -> SiteReport:
    """Write the organizer's report of the phase into `out`: the whole site under `disclosure`, and cases.html."""
    phase = rank_phase(site.submissions, config, cases=site.cases, draws=draws)
    frame = PageFrame.of(config, title=SITE_TITLE, now=now or datetime.now(timezone.utc), nav=ORGANIZER_NAV,
                         audience=f"Organizer report of phase {config.phase}: not for publication.")

    def write(folder: Path) -> SiteReport:
        writer = PageWriter(folder, frame)
        report = write_site(site, phase, writer, disclosure)
        table = cases_table(phase)
        writer.page("cases.html", "report_tables.html", tables=[table], tables_shown=[table],
                    heading="Cases across submissions",
                    notes=[f"Each case's Dice (the mean over the structure groups) in every completed submission. A "
                           f"case is flagged when every submission failed on it or their mean Dice is below "
                           f"{FLAG_DICE_BELOW}: check its reference.", disclosure.describe("this report")])
        return dataclasses.replace(report, pages=tuple(writer.pages))

    return publish(out, write, leak_check(site, phase, disclosure), audience="organizer report").moved(Path(out))


def flag_reason(case_dice: np.ndarray, failed: int, submissions: int) -> str:
    """Why a case is flagged ('' when it is not): every submission failed on it, or its mean Dice is low."""
    if submissions and failed == submissions:
        return "every submission failed"
    finite = case_dice[np.isfinite(case_dice)]
    if finite.size and float(finite.mean()) < FLAG_DICE_BELOW:
        return f"mean Dice {float(finite.mean()):.3f} below {FLAG_DICE_BELOW}"
    return ""


def cases_table(phase: RankedPhase) -> Table:
    """A row per case: sequence, failures, Dice per completed submission, mean, and the flag; flagged cases first."""
    completed = phase.completed
    groups = [g for g in GROUPS if any(c.metric == "dice" and c.structure == g for c in phase.display)]
    dice = np.full((len(completed), len(phase.cases)), np.nan)
    for i, s in enumerate(completed):
        if groups and phase.cases:
            dice[i] = np.nanmean(np.stack([per_case_values(s, "dice", g, phase.cases) for g in groups]), axis=0)
    succeeded = [{job.case for job in s.jobs if not job.failed} for s in completed]
    rows = []
    for k, case in enumerate(phase.cases):
        failed = sum(1 for cases in succeeded if case not in cases)
        flag = flag_reason(dice[:, k], failed, len(completed))
        finite = dice[:, k][np.isfinite(dice[:, k])]
        sequence = case_info_from_name(case).sequence or ""
        row = [Cell(case, case), Cell(SEQUENCE_TITLES.get(sequence, sequence or MISSING_TEXT), sequence),
               Cell(flag, flag), Cell(f"{failed}/{len(completed)}", failed),
               number(float(finite.mean()) if finite.size else None)]
        row += [number(float(v) if np.isfinite(v) else None) for v in dice[:, k]]
        rows.append(tuple(row))
    rows.sort(key=lambda row: (row[2].text == "", row[0].text))
    columns = [Column("case", "Case"), Column("sequence", "Sequence"), Column("flag", "Flagged"),
               Column("failed", "Failed jobs", numeric=True), Column("mean_dice", "Mean Dice", numeric=True)]
    columns += [Column(f"dice_{s.id}", f"{s.team} ({s.algorithm_name}, #{s.id})", numeric=True) for s in completed]
    return Table("cases", "", tuple(columns), tuple(rows))


