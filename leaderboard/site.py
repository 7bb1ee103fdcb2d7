"""The static leaderboard site: ranking, stability, breakdowns and a page per submission.

`build_site` takes the phase's submissions as the registry's read API gives them
(`submissions.records.SubmissionResults`) and writes plain files (HTML, SVG/PNG, CSV, JSON)
that work from the file system and any static host (see leaderboard.writer).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from challenge.phases import Disclosure
from challenge.ranking import RankingConfig
from leaderboard.breakdowns import read_case_catalog
from leaderboard.breakdowns_page import write_breakdowns
from leaderboard.cases import CaseFiles, PredictionLocator
from leaderboard.compare_page import write_compare
from leaderboard.errors import LeaderboardError
from leaderboard.index_page import write_index
from leaderboard.leaks import find_leaks, secrets_of
from leaderboard.ranked_phase import page_name, rank_phase
from leaderboard.rules_page import write_rules
from leaderboard.submission_page import write_submission_page
from leaderboard.writer import PageFrame, PageWriter
from submissions.records import SubmissionResults

__all__ = ["MARKER", "PUBLIC", "SITE_TITLE", "SiteInput", "SiteReport", "build_site", "page_name"]

SITE_TITLE = "SPIDER leaderboard"
MARKER = ".spider-leaderboard"
PUBLIC = Disclosure.default_for("public")
"""The disclosure of a phase on public data: the site may show everything (but never a host path)."""
_LEAKS_LISTED = 10


@dataclass(frozen=True)
class SiteInput:
    """What the site shows: a phase's submissions, its cases, and where the case pictures come from.

    `cases` is the phase's test set (None: every case any submission ran). `test_set` is the
    folder of the hidden test set (images/, masks/, overview.csv, radiological_gradings.csv):
    without it there are no case pictures and no scanner or grading breakdowns. `predictions`
    finds a stored prediction when a job record names no output.
    """

    submissions: Sequence[SubmissionResults]
    cases: Sequence[str] | None = None
    test_set: Path | None = None
    predictions: PredictionLocator | None = None

    @property
    def files(self) -> CaseFiles:
        return CaseFiles(None if self.test_set is None else Path(self.test_set), self.predictions)


@dataclass(frozen=True)
class SiteReport:
    """What `build_site` wrote; `ranked` holds the ranked submissions' ids, best first."""

    out: Path
    index: Path
    pages: tuple[Path, ...]
    ranked: tuple[int, ...]
    warnings: tuple[str, ...]

    def moved(self, out: Path) -> SiteReport:
        """The same report for the site moved from `self.out` to `out`."""
        def move(path: Path) -> Path:
            return out / path.relative_to(self.out)

        return dataclasses.replace(self, out=out, index=move(self.index), pages=tuple(move(p) for p in self.pages))


def build_site(site: SiteInput, *, out: Path, config: RankingConfig, disclosure: Disclosure,
               draws: int | None = None, title: str = SITE_TITLE, now: datetime | None = None) -> SiteReport:
    """Rank the phase's submissions and write the whole site into `out`, showing what `disclosure` allows.

    `disclosure` is the phase's (challenge.phases: `Phase.disclosure`). `draws` overrides the
    config's bootstrap draws; `now` is the build time the pages show. `out` is replaced as a
    whole; a folder that is not empty and was not written by this function is refused. Before
    it is put in place the site is searched for what the disclosure forbids (leaderboard.leaks):
    if anything is found, nothing is written and a LeaderboardError names each file and leak.
    """
    out = Path(out)
    _refuse_foreign(out)
    frame = PageFrame.of(config, title=title, now=now or datetime.now(timezone.utc))
    building = out.parent / f".{out.name}.building-{os.getpid()}"
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    try:
        report, cases = _write_site(site, PageWriter(building, frame), config, disclosure, draws=draws)
        (building / MARKER).write_text("written by spider leaderboard build\n", encoding="utf-8")
        _check_leaks(building, site, disclosure, cases)
        _replace(out, building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return report.moved(out)


def _check_leaks(building: Path, site: SiteInput, disclosure: Disclosure, cases: Sequence[str]) -> None:
    every_case = set(cases).union(*(s.cases for s in site.submissions))  # s.cases: its jobs' and rows' cases
    secrets = secrets_of(disclosure, site.submissions, paths={"the test set folder": site.test_set})
    leaks = find_leaks(building, disclosure, cases=every_case, secrets=secrets)
    if leaks:
        listed = "; ".join(str(leak) for leak in leaks[:_LEAKS_LISTED])
        more = f" (and {len(leaks) - _LEAKS_LISTED} more)" if len(leaks) > _LEAKS_LISTED else ""
        raise LeaderboardError(
            f"the site would publish what phase {disclosure.test_data!r} disclosure forbids, so nothing was "
            f"written: {listed}{more}"
        )


def _refuse_foreign(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise LeaderboardError(
            f"{out} exists and is not a leaderboard site built before: choose an empty or new folder"
        )


def _replace(out: Path, building: Path) -> None:
    """Put the finished site in place of `out` (a site built before, or nothing)."""
    if not out.exists():
        building.rename(out)
        return
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    out.rename(old)
    building.rename(out)
    shutil.rmtree(old)


def _write_site(site: SiteInput, writer: PageWriter, config: RankingConfig, disclosure: Disclosure, *,
                draws: int | None) -> tuple[SiteReport, tuple[str, ...]]:
    phase = rank_phase(site.submissions, config, cases=site.cases, draws=draws)
    writer.copy_static("favicon.svg")
    index = write_index(writer, phase, disclosure)
    catalog = read_case_catalog(site.files.test_set, phase.cases)
    write_rules(writer)
    write_compare(writer, phase, disclosure)
    write_breakdowns(writer, phase, catalog, disclosure)
    for submission in phase.completed:
        write_submission_page(writer, phase, submission, site.files, disclosure)
    report = SiteReport(writer.root, index, tuple(writer.pages), tuple(s.id for s in phase.ranked),
                        phase.warnings + catalog.warnings)
    return report, phase.cases
