"""The static leaderboard site: ranking, stability, breakdowns and a page per submission.

`build_site` takes the phase's submissions as `leaderboard.inputs` records and writes plain
files (HTML, SVG/PNG, CSV, JSON) that work from the file system and any static host: no
server, no external request (a Content-Security-Policy in every page allows only the site's
own images and its own inline style and script, pinned by hash).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Sequence

import jinja2
import numpy as np
from markupsafe import Markup

from challenge import labels, rules
from challenge.ranking import RankedColumn, RankingConfig
from leaderboard import plots
from leaderboard.breakdowns import (
    SEQUENCE_TITLES,
    Breakdown,
    by_case_attribute,
    by_disc_grade,
    case_info_from_name,
    has_known_category,
    read_case_catalog,
)
from leaderboard.cases import PredictionLocator, case_picture, worst_cases
from leaderboard.errors import LeaderboardError
from leaderboard.inputs import SubmissionResults
from leaderboard.ranking import Ranking, aggregate_over_cases, rank, score_table, select_per_team
from leaderboard.stability import Stability, bootstrap, significance_maps
from leaderboard.tables import (
    MISSING_TEXT,
    Cell,
    Column,
    Table,
    metric_cell,
    metric_title,
    number,
    unique_names,
    write_table_files,
)

DISPLAY_METRICS = ("dice", "assd", "hd95", "nsd", "detection_rate", "identification_rate")
LEVEL_METRICS = ("dice", "assd", "hd95", "nsd", "detected", "identified")
GROUPS = tuple(group.value for group in labels.SCORED_GROUPS)
GROUP_TITLES = {"vertebrae": "vertebrae", "discs": "discs", "spinal_canal": "spinal canal"}
RANKED_STATUSES = ("completed",)
WORST_CASE_COUNT = 3
MARKER = ".spider-leaderboard"


@dataclass(frozen=True)
class SiteReport:
    """What `build_site` wrote."""

    out: Path
    index: Path
    pages: tuple[Path, ...]
    ranked: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Image:
    src: str
    alt: str
    caption: str


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("leaderboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )


def _static(name: str) -> str:
    return (resources.files("leaderboard") / "templates" / name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def page_name(submission_id: str) -> str:
    """A file name for a submission's page built from its id only (ids never carry a path)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(submission_id)).lstrip(".")
    return f"{safe or 'submission'}.html"


def _group_title(structure: str) -> str:
    return GROUP_TITLES.get(structure, structure)


def _column_title(column: RankedColumn) -> str:
    return f"{metric_title(column.metric)} {_group_title(column.structure)}"


def _display_columns(submissions: Sequence[SubmissionResults], config: RankingConfig) -> tuple[RankedColumn, ...]:
    """The ranked columns, then each displayed metric of each group that the results hold."""
    present = {(r.metric, r.structure) for s in submissions for r in s.rows if r.level is None}
    columns = list(config.columns)
    for metric in DISPLAY_METRICS:
        for group in GROUPS:
            if (metric, group) in present and all((c.metric, c.structure) != (metric, group) for c in columns):
                columns.append(RankedColumn(metric, group, rules.METRICS[metric].direction.value))
    return tuple(columns)


def _date(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


class _Writer:
    """Renders pages into the output folder and keeps track of what it wrote."""

    def __init__(self, root: Path, *, common: dict):
        self.root = root
        self.environment = _environment()
        self.common = common
        self.pages: list[Path] = []

    def page(self, relative: str, template: str, *, tables: Sequence[Table], **context) -> Path:
        unique_names(tables)
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = Path(relative).stem
        files = {table.name: write_table_files(table, path.parent, page_stem=stem) for table in tables}
        depth = relative.count("/")
        html = self.environment.get_template(template).render(
            **self.common, **context, files=files, root="../" * depth
        )
        path.write_text(html, encoding="utf-8")
        self.pages.append(path)
        return path


def build_site(
    submissions: Sequence[SubmissionResults],
    *,
    out: Path,
    config: RankingConfig,
    cases: Sequence[str] | None = None,
    test_set: Path | None = None,
    predictions: PredictionLocator | None = None,
    draws: int | None = None,
    title: str = "SPIDER leaderboard",
    now: datetime | None = None,
) -> SiteReport:
    """Rank the phase's submissions and write the whole site into `out`.

    `cases` is the phase's test set (default: every case any submission ran). `test_set` is
    the folder of the hidden test set (images/, masks/, overview.csv,
    radiological_gradings.csv): without it there are no case pictures and no scanner or
    grading breakdowns. `predictions` finds a stored prediction when a job record has no
    prediction path. `draws` overrides the config's bootstrap draws. `out` is replaced as a
    whole; a folder that is not empty and was not written by this function is refused.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise LeaderboardError(
            f"{out} exists and is not a leaderboard site built before: choose an empty or new folder"
        )
    building = out.parent / f".{out.name}.building-{os.getpid()}"
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    try:
        report = _build(
            submissions, root=building, config=config, cases=cases, test_set=test_set,
            predictions=predictions, draws=draws, title=title, now=now or datetime.now(timezone.utc),
        )
        (building / MARKER).write_text("written by spider leaderboard build\n", encoding="utf-8")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            building.rename(out)
            shutil.rmtree(old)
        else:
            building.rename(out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    relocate = lambda p: out / p.relative_to(building)  # noqa: E731
    return SiteReport(out, relocate(report.index), tuple(relocate(p) for p in report.pages), report.ranked, report.warnings)


def _build(
    submissions: Sequence[SubmissionResults], *, root: Path, config: RankingConfig, cases: Sequence[str] | None,
    test_set: Path | None, predictions: PredictionLocator | None, draws: int | None, title: str, now: datetime,
) -> SiteReport:
    ids = [s.id for s in submissions]
    if len(set(ids)) != len(ids):
        raise LeaderboardError(f"submission ids must be unique, found {sorted(ids)}")
    if cases is None:
        cases = sorted(set().union(*(s.cases for s in submissions))) if submissions else []
    cases = tuple(cases)
    completed = [s for s in submissions if s.status in RANKED_STATUSES]
    warnings: list[str] = []
    versions = sorted({s.rules_version or "none" for s in completed})
    if any(v != rules.RULES_VERSION for v in versions):
        warnings.append(
            f"Submissions were scored under rules version(s) {', '.join(versions)} but the current rules are "
            f"version {rules.RULES_VERSION}: rescore them before trusting this ranking."
        )
    style, script = _static("site.css"), _static("sort.js")
    (root / "favicon.svg").write_text(_static("favicon.svg"), encoding="utf-8")
    writer = _Writer(root, common={
        "site_title": title, "phase": config.phase, "rules_version": rules.RULES_VERSION,
        "built_at": _date(now), "style": Markup(style), "script": Markup(script),
        "style_hash": _csp_hash(style), "script_hash": _csp_hash(script), "method": config.describe(),
    })
    pages = {s.id: f"submissions/{page_name(s.id)}" for s in completed}
    if len(set(pages.values())) != len(pages):
        raise LeaderboardError("two submission ids give the same page name; ids must differ in letters or digits")

    selected = select_per_team(completed, config, cases=cases) if completed else []
    ranking: Ranking | None = None
    stability: Stability | None = None
    if selected:
        table = score_table(selected, config.columns, cases=cases)
        ranking = rank(table, config)
        stability = bootstrap(table, config, draws=draws) if cases else None
    order = list(ranking.ordered()) if ranking else []
    by_id = {s.id: s for s in submissions}
    ranked = [by_id[i] for i in order]
    rank_of = dict(zip(ranking.submission_ids, ranking.ranks)) if ranking else {}
    display = _display_columns(completed, config)
    stability_note = _stability_note(stability)

    leaderboard = _leaderboard_table(ranked, ranking, config, display, cases, pages) if ranking else None
    others = _others_table([s for s in submissions if s.id not in rank_of], pages, config)
    index = writer.page("index.html", "index.html", tables=[t for t in (leaderboard, others) if t],
                        leaderboard=leaderboard, others=others, warnings=warnings, stability_note=stability_note)
    catalog = read_case_catalog(test_set, cases)
    _rules_page(writer)
    _compare_page(writer, ranked, ranking, stability, config, display, cases, stability_note)
    _breakdowns_page(writer, ranked, catalog, display)
    for submission in completed:
        _submission_page(writer, submission, pages[submission.id], rank_of.get(submission.id), len(ranked), config,
                         display, cases, test_set, predictions, warnings)
    return SiteReport(root, index, tuple(writer.pages), tuple(order), tuple(warnings) + tuple(catalog.warnings))


def _stability_note(stability: Stability | None) -> str:
    if stability is None:
        return "No bootstrap: no cases."
    median, low, high = stability.tau_summary()
    if not np.isfinite(median):
        return (f"Bootstrap over cases ({stability.draws} draws, seed {stability.seed}): Kendall's tau is undefined "
                "because the ranking or every resampled ranking is one tie.")
    return (f"Bootstrap over cases ({stability.draws} draws, seed {stability.seed}): Kendall's tau between the "
            f"ranking on all cases and each resampled ranking has median {median:.3f} (range {low:.3f} to {high:.3f}); "
            "1 means the order never changes.")


def _leaderboard_table(
    ranked: Sequence[SubmissionResults], ranking: Ranking, config: RankingConfig, display: Sequence[RankedColumn],
    cases: Sequence[str], pages: dict[str, str],
) -> Table:
    values = aggregate_over_cases(score_table(ranked, display, cases=cases).values, display, config.case_aggregate)
    ranked_keys = {c.key for c in config.columns}
    position = {sid: i for i, sid in enumerate(ranking.submission_ids)}
    columns = [
        Column("rank", "Rank", numeric=True),
        Column("team", "Team"),
        Column("algorithm", "Algorithm"),
        Column("score", ranking.score_name[:1].upper() + ranking.score_name[1:], numeric=True,
               note="higher is better" if ranking.higher_score_is_better else "lower is better"),
    ]
    for column in display:
        columns.append(Column(column.key.replace(":", "_"), _column_title(column), numeric=True,
                              note=f"{column.direction} is better", highlight=column.key in ranked_keys))
    columns += [
        Column("cases_scored", "Cases scored", numeric=True),
        Column("failed_jobs", "Failed jobs", numeric=True),
        Column("submitted", "Submitted"),
    ]
    rows = []
    for s, submission in enumerate(ranked):
        p = position[submission.id]
        score = ranking.score[p]
        decimals = 3 if config.method != "test-based" else 0
        row = [
            Cell(str(ranking.ranks[p]), ranking.ranks[p]),
            Cell(submission.team, submission.team, href=pages[submission.id]),
            Cell(submission.algorithm, submission.algorithm),
            number(score, decimals=decimals),
        ]
        for c, column in enumerate(display):
            cell = metric_cell(column.metric, float(values[c, s]))
            if column.key in ranked_keys:
                k = [x.key for x in config.columns].index(column.key)
                cell = Cell(cell.text, cell.value, extra=f"#{int(ranking.column_ranks[k, p])}")
            row.append(cell)
        scored = {r.case for r in submission.rows if r.level is None and r.value is not None}
        failed = sum(1 for job in submission.jobs if job.failed)
        row += [
            Cell(f"{len(scored & set(cases))}/{len(cases)}", len(scored & set(cases))),
            Cell(str(failed), failed),
            Cell(_date(submission.created_at), submission.created_at.isoformat()),
        ]
        rows.append(tuple(row))
    return Table("leaderboard", "", tuple(columns), tuple(rows),
                 caption="Click a column title to sort. The small #n beside a ranked column's value is the rank in that column.")


def _others_table(submissions: Sequence[SubmissionResults], pages: dict[str, str], config: RankingConfig) -> Table | None:
    if not submissions:
        return None
    why = {"best": "not the team's best", "latest": "not the team's latest"}[config.per_team]
    rows = []
    for s in sorted(submissions, key=lambda s: (s.team, s.created_at)):
        reason = why if s.status in RANKED_STATUSES else f"not ranked: {s.status}"
        rows.append((
            Cell(s.team, s.team, href=pages.get(s.id)), Cell(s.algorithm, s.algorithm), Cell(s.status, s.status),
            Cell(reason, reason), Cell(_date(s.created_at), s.created_at.isoformat()),
        ))
    columns = (Column("team", "Team"), Column("algorithm", "Algorithm"), Column("status", "Status"),
               Column("ranked", "Why not ranked"), Column("submitted", "Submitted"))
    return Table("others", "", columns, tuple(rows))


def _rules_page(writer: _Writer) -> None:
    titles = rules.EDGE_CASE_TITLES
    edge_columns = [Column("metric", "Metric"), Column("unit", "Unit"), Column("direction", "Better")]
    edge_columns += [Column(case.value, titles[case].capitalize()) for case in rules.EdgeCase]
    rows = []
    for name, spec in sorted(rules.METRICS.items()):
        row = [Cell(name, name), Cell(spec.unit or MISSING_TEXT, spec.unit or None), Cell(spec.direction.value, spec.direction.value)]
        for case in rules.EdgeCase:
            value = spec.edge_values[case]
            row.append(Cell("FOV diagonal", value) if value == rules.FOV_DIAGONAL else Cell(f"{float(value):g}", float(value)))
        rows.append(tuple(row))
    edge_cases = Table("edge-cases", "", tuple(edge_columns), tuple(rows))
    metrics = Table(
        "metrics", "",
        (Column("metric", "Metric"), Column("title", "Title"), Column("definition", "Definition")),
        tuple((Cell(n, n), Cell(s.title, s.title), Cell(s.definition, s.definition)) for n, s in sorted(rules.METRICS.items())),
    )
    meanings = [(titles[case].capitalize(), rules.EDGE_CASE_MEANINGS[case]) for case in rules.EdgeCase]
    tolerances = ", ".join(f"{_group_title(str(g))} {t.tolerance_mm:g} mm" for g, t in rules.NSD_TOLERANCES.items())
    paragraphs = [rules.MATCHING_RULE, rules.PARTIAL_VERTEBRA_RULE, rules.INSTANCE_MEAN_RULE,
                  f"NSD tolerances: {tolerances}. Detection threshold: Dice >= {rules.DETECTION_DICE_THRESHOLD:g}."]
    writer.page("rules.html", "rules.html", tables=[edge_cases, metrics], edge_cases=edge_cases, metrics=metrics,
                meanings=meanings, paragraphs=paragraphs)


def _per_case(submission: SubmissionResults, metric: str, structure: str, cases: Sequence[str]) -> np.ndarray:
    found = {r.case: r.value for r in submission.rows
             if r.level is None and r.metric == metric and r.structure == structure and r.value is not None}
    return np.array([float(found[c]) if c in found else np.nan for c in cases])


def _box_metrics(display: Sequence[RankedColumn]) -> list[str]:
    return [m for m in ("dice", "assd", "hd95", "nsd") if any(c.metric == m for c in display)]


def _compare_page(
    writer: _Writer, ranked: Sequence[SubmissionResults], ranking: Ranking | None, stability: Stability | None,
    config: RankingConfig, display: Sequence[RankedColumn], cases: Sequence[str], stability_note: str,
) -> None:
    if not ranked or ranking is None:
        writer.page("compare.html", "compare.html", tables=[], ranked=False)
        return
    labels_ = [s.team for s in ranked]
    box_images = []
    for metric in _box_metrics(display):
        panels = {
            _group_title(group): {s.team: _per_case(s, metric, group, cases) for s in ranked}
            for group in GROUPS if any(c.metric == metric and c.structure == group for c in display)
        }
        path = plots.box_plots(panels, writer.root / "img" / "compare" / f"box-{metric}.svg", ylabel=metric_title(metric))
        box_images.append(Image(_rel(path, writer.root), f"Box plots of {metric_title(metric)} per structure for every ranked submission",
                                f"{metric_title(metric)} per case, one box per submission, one panel per structure group."))
    tables = []
    blob = None
    stability_table = None
    if stability is not None:
        order = [stability.submission_ids.index(s.id) for s in ranked]
        counts = stability.rank_counts()[order]
        full = [stability.full_ranks[i] for i in order]
        path = plots.blob_plot(labels_, counts, full, writer.root / "img" / "compare" / "blob.svg")
        blob = Image(_rel(path, writer.root), "Blob plot of bootstrap rank distributions",
                     "Each column is a submission in ranking order; circle area is the share of bootstrap draws that "
                     "gave it that rank, the cross its rank on all cases, the line 95 % of draws.")
        rows = []
        for s, submission in zip(order, ranked):
            median, low, high = stability.rank_summary(submission.id)
            share_first = counts[ranked.index(submission)][0] / stability.draws
            rows.append((
                Cell(str(stability.full_ranks[s]), stability.full_ranks[s]), Cell(submission.team, submission.team),
                number(median, decimals=1), Cell(f"{low:g}–{high:g}", f"{low:g}-{high:g}"),
                number(100 * share_first, decimals=1, suffix=" %"),
            ))
        stability_table = Table("stability", "Bootstrap ranks", (
            Column("rank", "Rank", numeric=True), Column("team", "Team"), Column("median_rank", "Median bootstrap rank", numeric=True),
            Column("interval", "95 % of draws"), Column("first_percent", "Ranked first", numeric=True),
        ), tuple(rows))
        tables.append(stability_table)
    significance = []
    table = score_table(ranked, config.columns, cases=cases)
    by_team = {s.id: s.team for s in ranked}
    for smap in significance_maps(table, config, ranking) if cases else []:
        name = f"significance-{smap.column.metric}-{smap.column.structure}"
        teams = [by_team[i] for i in smap.submission_ids]
        path = plots.significance_map(teams, smap.significant, writer.root / "img" / "compare" / f"{name}.svg",
                                      title=_column_title(smap.column))
        columns = (Column("team", "Better than →"),) + tuple(
            Column(f"vs_{k}", f"{t}", numeric=True) for k, t in enumerate(teams))
        rows = []
        for i, team in enumerate(teams):
            row = [Cell(team, team)]
            for j in range(len(teams)):
                p = smap.p_values[i, j]
                if i == j or not np.isfinite(p):
                    row.append(Cell(MISSING_TEXT, None))
                else:
                    row.append(Cell(f"{p:.3g}" + (" ✓" if smap.significant[i, j] else ""), float(p)))
            rows.append(tuple(row))
        sig_table = Table(name, f"{_column_title(smap.column)}: Holm-adjusted p-values", columns, tuple(rows),
                          caption="Row better than column; ✓ marks p below alpha.")
        tables.append(sig_table)
        significance.append({"image": Image(_rel(path, writer.root), f"Significance map for {_column_title(smap.column)}",
                                            f"{_column_title(smap.column)}: filled where the row beats the column."),
                             "table": sig_table})
    writer.page("compare.html", "compare.html", tables=tables, ranked=True, box_plots=box_images, blob=blob,
                stability=stability_table, significance=significance, alpha=f"{config.significance_level:g}",
                stability_note=stability_note)


def _breakdown_table(breakdown: Breakdown, ranked: Sequence[SubmissionResults], title: str) -> Table:
    columns = [Column("team", "Team"), Column("algorithm", "Algorithm")]
    columns += [Column(re.sub(r"[^a-z0-9]+", "_", c.lower()).strip("_") or "unknown", f"{c} (n={n})", numeric=True)
                for c, n in zip(breakdown.categories, breakdown.counts)]
    rows = []
    for s, submission in enumerate(ranked):
        row = [Cell(submission.team, submission.team), Cell(submission.algorithm, submission.algorithm)]
        for k in range(len(breakdown.categories)):
            cell = metric_cell(breakdown.metric, float(breakdown.means[s, k]))
            missing = int(breakdown.missing[s, k])
            row.append(Cell(cell.text, cell.value, extra=f"{missing} missing" if missing else ""))
        rows.append(tuple(row))
    return Table(breakdown.name, title, tuple(columns), tuple(rows))


def _breakdowns_page(writer: _Writer, ranked: Sequence[SubmissionResults], catalog, display: Sequence[RankedColumn]) -> None:
    sections = []
    tables: list[Table] = []
    if ranked:
        metric = "dice" if any(c.metric == "dice" for c in display) else display[0].metric
        for dimension, heading in (("sequence", "By sequence"), ("manufacturer", "By scanner manufacturer"),
                                   ("field strength", "By field strength")):
            section = []
            for group in GROUPS:
                breakdown = by_case_attribute(ranked, catalog, dimension=dimension, metric=metric, structure=group)
                if has_known_category(breakdown):
                    section.append(_breakdown_table(breakdown, ranked, f"{metric_title(metric)} of {_group_title(group)}"))
            if section:
                sections.append({"title": heading, "tables": section})
                tables += section
        grades = by_disc_grade(ranked, catalog, metric=metric)
        if has_known_category(grades):
            table = _breakdown_table(grades, ranked, f"{metric_title(metric)} of each disc by its Pfirrmann grade")
            sections.append({"title": "By disc degeneration (Pfirrmann grade)", "tables": [table]})
            tables.append(table)
    writer.page("breakdowns.html", "breakdowns.html", tables=tables, sections=sections, warnings=list(catalog.warnings))


_LABEL_ORDER = {s.name: v for v, s in labels.LABEL_MAP.items()}


def _level_order(key: tuple[str, str, str]) -> tuple:
    case, structure, level = key
    return (case, GROUPS.index(structure) if structure in GROUPS else len(GROUPS), _LABEL_ORDER.get(level, 10**6), level)


def _submission_page(
    writer: _Writer, submission: SubmissionResults, relative: str, rank_value: int | None, ranked_count: int,
    config: RankingConfig, display: Sequence[RankedColumn], cases: Sequence[str], test_set: Path | None,
    predictions: PredictionLocator | None, site_warnings: Sequence[str],
) -> None:
    image_dir = writer.root / "img" / Path(relative).stem
    page_dir = (writer.root / relative).parent
    jobs_by_case = {job.case: job for job in submission.jobs}
    # Jobs.
    job_rows = []
    for job in sorted(submission.jobs, key=lambda j: j.case):
        job_rows.append((
            Cell(job.case, job.case), Cell(job.status, job.status), Cell(job.reason or "", job.reason),
            number(job.seconds, decimals=1), Cell(job.log_path or "", job.log_path),
        ))
    jobs = Table("jobs", "", (Column("case", "Case"), Column("status", "Status"), Column("reason", "Reason"),
                              Column("seconds", "Seconds", numeric=True), Column("log", "Log")), tuple(job_rows),
                 caption="Every algorithm job of this submission; a failed job's cases take the rules' missing values.")
    failed = sum(1 for job in submission.jobs if job.failed)
    job_summary = f"{len(submission.jobs)} jobs, {failed} failed" if submission.jobs else "no jobs recorded"
    # Per case.
    columns = [Column("case", "Case"), Column("sequence", "Sequence"), Column("job", "Job")]
    columns += [Column(c.key.replace(":", "_"), _column_title(c), numeric=True) for c in display]
    per_case = {c.key: _per_case(submission, c.metric, c.structure, cases) for c in display}
    case_rows = []
    for k, case in enumerate(cases):
        sequence = case_info_from_name(case).sequence
        status = jobs_by_case[case].status if case in jobs_by_case else "no job"
        row = [Cell(case, case), Cell(SEQUENCE_TITLES.get(sequence or "", sequence or MISSING_TEXT), sequence),
               Cell(status, status)]
        row += [metric_cell(c.metric, float(per_case[c.key][k])) for c in display]
        case_rows.append(tuple(row))
    case_table = Table("cases", "", tuple(columns), tuple(case_rows))
    # Per level.
    level_values: dict[tuple[str, str, str], dict[str, float | None]] = {}
    level_status: dict[tuple[str, str, str], set[str]] = {}
    for row in submission.rows:
        if row.level is None:
            continue
        key = (row.case, row.structure, row.level)
        level_values.setdefault(key, {})[row.metric] = row.value
        level_status.setdefault(key, set()).add(row.status)
    metrics = [m for m in LEVEL_METRICS if any(m in v for v in level_values.values())]
    metrics += sorted({m for v in level_values.values() for m in v} - set(metrics))
    level_rows = []
    for (case, structure, level), values in sorted(level_values.items(), key=lambda item: _level_order(item[0])):
        status = ", ".join(sorted(level_status[(case, structure, level)]))
        row = [Cell(case, case), Cell(_group_title(structure), structure), Cell(level, level),
               Cell(status, status)]
        row += [metric_cell(m, values.get(m)) for m in metrics]
        level_rows.append(tuple(row))
    level_table = Table("levels", "", tuple(
        [Column("case", "Case"), Column("structure", "Structure"), Column("level", "Level"), Column("status", "Status")]
        + [Column(m, metric_title(m), numeric=True) for m in metrics]), tuple(level_rows))
    # Box plots per structure.
    box_images = []
    box_metrics = _box_metrics(display)
    if box_metrics and cases:
        panels = {metric_title(m): {_group_title(c.structure): per_case[c.key] for c in display if c.metric == m}
                  for m in box_metrics}
        path = plots.box_plots(panels, image_dir / "box.svg", ylabel="value", sharey=False)
        box_images.append(Image(_rel(path, page_dir), "Box plots per structure of this submission's per-case values",
                                "Per-case values, one panel per metric, one box per structure group."))
    # Worst cases.
    metric = "dice" if any(c.metric == "dice" for c in display) else config.columns[0].metric
    worst = []
    for item in worst_cases(submission, cases, metric=metric, higher_is_better=rules.METRICS[metric].higher_is_better
                            if metric in rules.METRICS else True, count=WORST_CASE_COUNT):
        job = jobs_by_case.get(item.case)
        text = f"mean {metric_title(metric)} {MISSING_TEXT if item.value is None else f'{item.value:.3f}'}"
        if job is not None and job.failed:
            text += f"; job {job.status}: {job.reason or 'no reason recorded'}"
        image = None
        if test_set is not None:
            image_path = Path(test_set) / "images" / f"{item.case}.mha"
            mask_path = Path(test_set) / "masks" / f"{item.case}.mha"
            prediction = _prediction_path(submission, item.case, job, predictions)
            if image_path.is_file() and mask_path.is_file():
                path = case_picture(image_path, mask_path, prediction, image_dir / f"case-{_safe(item.case)}.png",
                                    title=item.case)
                image = Image(_rel(path, page_dir), f"Sagittal slice of {item.case} with reference and prediction outlines",
                              f"{item.case}: {text}." + ("" if prediction else " No prediction was stored."))
            else:
                text += "; the test set holds no image or mask of this case"
        worst.append({"case": item.case, "text": text, "image": image})
    if rank_value is None:
        rank_text = "not ranked (" + ("not the team's best" if config.per_team == "best" else "not the team's latest") + ")"
    else:
        rank_text = f"{rank_value} of {ranked_count}"
    warnings = [w for w in site_warnings]
    if submission.rules_version != rules.RULES_VERSION:
        warnings.append(f"Scored under rules version {submission.rules_version or 'none'}; the current rules are {rules.RULES_VERSION}.")
    writer.page(relative, "submission.html", tables=[jobs, case_table, level_table], submission=submission,
                submitted=_date(submission.created_at), rank_text=rank_text, job_summary=job_summary, jobs=jobs,
                cases=case_table, levels=level_table, box_plots=box_images, worst=worst, worst_metric=metric_title(metric),
                warnings=warnings)


def _prediction_path(submission: SubmissionResults, case: str, job, predictions: PredictionLocator | None) -> Path | None:
    if job is not None and job.failed:
        return None
    if job is not None and job.prediction_path and Path(job.prediction_path).is_file():
        return Path(job.prediction_path)
    return predictions(submission.id, case) if predictions is not None else None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip(".") or "case"


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()
