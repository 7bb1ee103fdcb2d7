"""The static leaderboard site: ranking, stability, breakdowns and a page per submission.

`build_site` takes the phase's submissions as the registry's read API gives them
(`submissions.records.SubmissionResults`) and writes plain files (HTML, SVG/PNG, CSV, JSON)
that work from the file system and any static host (see leaderboard.writer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from challenge.phases import Disclosure
from challenge.ranking import RankingConfig
from leaderboard.breakdowns import read_case_catalog
from leaderboard.breakdowns_page import write_breakdowns
from leaderboard.cases import CaseFiles, PredictionLocator
from leaderboard.compare_page import write_compare
from leaderboard.index_page import write_index
from leaderboard.leaks import Leak, Secret, find_leaks, host_folders, secrets_of
from leaderboard.publish import publish
from leaderboard.ranked_phase import RankedPhase, page_name, rank_phase
from leaderboard.rules_page import write_rules
from leaderboard.submission_page import write_submission_page
from leaderboard.writer import PageFrame, PageWriter
from submissions.records import SubmissionResults

__all__ = ["PUBLIC", "SITE_TITLE", "SiteInput", "SiteReport", "build_site", "page_name"]

SITE_TITLE = "SPIDER leaderboard"
PUBLIC = Disclosure.default_for("public")
"""The disclosure of a phase on public data: the site may show everything (but never a host path)."""


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

    @property
    def paths(self) -> dict[str, Path | None]:
        """The absolute paths the build was given, by what each is: never shown to any audience."""
        return {"the test set folder": self.test_set}

    @property
    def host_folders(self) -> list[str]:
        """The host folders a page shows as '<host path>' wherever it quotes a job's log."""
        return host_folders(self.submissions, paths=self.paths)


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
    whole; a folder that is not empty and was not written by this package is refused. Before
    it is put in place the site is searched for what the disclosure forbids (leaderboard.leaks):
    if anything is found, nothing is written and a LeaderboardError names each file and leak.
    """
    frame = PageFrame.of(config, title=title, now=now or datetime.now(timezone.utc))
    phase = rank_phase(site.submissions, config, cases=site.cases, draws=draws)

    def write(folder: Path) -> SiteReport:
        return write_site(site, phase, PageWriter(folder, frame), disclosure)

    report = publish(out, write, leak_check(site, phase, disclosure), audience=f"phase {config.phase!r} public site")
    return report.moved(Path(out))


def leak_check(site: SiteInput, phase: RankedPhase, disclosure: Disclosure,
               more: Sequence[Secret] = ()) -> Callable[[Path], list[Leak]]:
    """The check of a written folder against `disclosure`: the case names of the phase and of every
    submission's jobs and rows, the host paths, the containers' text, and `more` secrets."""
    cases = set(phase.cases).union(*(s.cases for s in site.submissions))

    def check(folder: Path) -> list[Leak]:
        secrets = [*secrets_of(disclosure, site.submissions, paths=site.paths), *more]
        return find_leaks(folder, disclosure, cases=cases, secrets=secrets)

    return check


def write_site(site: SiteInput, phase: RankedPhase, writer: PageWriter, disclosure: Disclosure) -> SiteReport:
    writer.copy_static("favicon.svg")
    index = write_index(writer, phase, disclosure)
    catalog = read_case_catalog(site.files.test_set, phase.cases)
    write_rules(writer)
    write_compare(writer, phase, disclosure)
    write_breakdowns(writer, phase, catalog, disclosure)
    folders = site.host_folders
    for submission in phase.completed:
        write_submission_page(writer, phase, submission, site.files, disclosure, host_folders=folders)
    return SiteReport(writer.root, index, tuple(writer.pages), tuple(s.id for s in phase.ranked),
                      phase.warnings + catalog.warnings)
