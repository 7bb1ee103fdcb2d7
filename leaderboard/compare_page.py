"""compare.html: per-case distributions, the bootstrap's rank distributions and the significance maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from challenge.phases import Disclosure
from leaderboard import plots
from leaderboard.ranked_phase import GROUPS, RankedPhase, box_metrics, per_case_values
from leaderboard.ranking import Ranking, score_table
from leaderboard.stability import SignificanceMap, Stability, significance_maps
from leaderboard.tables import MISSING_TEXT, Cell, Column, Table, number
from leaderboard.titles import column_title, group_title, metric_title
from leaderboard.writer import Image, PageWriter, link

_FOLDER = ("img", "compare")


@dataclass(frozen=True)
class Significance:
    """One ranked column's significance map and its p-values as a table."""

    image: Image
    table: Table


def write_compare(writer: PageWriter, phase: RankedPhase, disclosure: Disclosure) -> None:
    """Box plots draw per-case values point by point (outliers): only where the disclosure allows case values."""
    if not phase.ranked or phase.ranking is None or not disclosure.ranking:
        writer.page("compare.html", "compare.html", tables=[], ranked=False)
        return
    box_images = _box_plots(writer, phase) if disclosure.case_values else []
    stable = disclosure.stability and phase.stability is not None
    blob, stability_table = _stability(writer, phase, phase.stability) if stable and phase.stability else (None, None)
    significance = _significance(writer, phase, phase.ranking) if phase.cases and disclosure.stability else []
    tables = ([stability_table] if stability_table else []) + [item.table for item in significance]
    writer.page("compare.html", "compare.html", tables=tables, ranked=True, box_plots=box_images, blob=blob,
                stability=stability_table, significance=significance, alpha=f"{phase.config.significance_level:g}",
                stability_note=phase.stability_note)


def _box_plots(writer: PageWriter, phase: RankedPhase) -> list[Image]:
    """Per metric: a panel per structure group, a box per ranked submission over its per-case values."""
    images = []
    for metric in box_metrics(phase.display):
        panels = {
            group_title(group): {s.team: per_case_values(s, metric, group, phase.cases) for s in phase.ranked}
            for group in GROUPS if any(c.metric == metric and c.structure == group for c in phase.display)
        }
        title = metric_title(metric)
        path = plots.box_plots(panels, writer.root.joinpath(*_FOLDER, f"box-{metric}.svg"), ylabel=title)
        images.append(Image(link(path, writer.root), f"Box plots of {title} per structure for every ranked submission",
                            f"{title} per case, one box per submission, one panel per structure group."))
    return images


def _stability(writer: PageWriter, phase: RankedPhase, stability: Stability) -> tuple[Image, Table]:
    """The blob plot of the bootstrap ranks and the table of each submission's rank distribution."""
    order = [stability.submission_ids.index(s.id) for s in phase.ranked]
    counts = stability.rank_counts()[order]
    full = [stability.full_ranks[i] for i in order]
    path = plots.blob_plot([s.team for s in phase.ranked], counts, full, writer.root.joinpath(*_FOLDER, "blob.svg"))
    blob = Image(link(path, writer.root), "Blob plot of bootstrap rank distributions",
                 "Each column is a submission in ranking order; circle area is the share of bootstrap draws that "
                 "gave it that rank, the cross its rank on all cases, the line 95 % of draws.")
    rows = []
    for position, submission in enumerate(phase.ranked):
        full_rank = stability.full_ranks[order[position]]
        median, low, high = stability.rank_summary(submission.id)
        share_first = counts[position][0] / stability.draws
        rows.append((
            Cell(str(full_rank), full_rank), Cell(submission.team, submission.team),
            number(median, decimals=1), Cell(f"{low:g}–{high:g}", f"{low:g}-{high:g}"),
            number(100 * share_first, decimals=1, suffix=" %"),
        ))
    table = Table("stability", "Bootstrap ranks", (
        Column("rank", "Rank", numeric=True), Column("team", "Team"),
        Column("median_rank", "Median bootstrap rank", numeric=True),
        Column("interval", "95 % of draws"), Column("first_percent", "Ranked first", numeric=True),
    ), tuple(rows))
    return blob, table


def _significance(writer: PageWriter, phase: RankedPhase, ranking: Ranking) -> list[Significance]:
    """A significance map and p-value table per ranked column, submissions in ranking order."""
    table = score_table(phase.ranked, phase.config.columns, cases=phase.cases)
    team_of = {s.id: s.team for s in phase.ranked}
    found = []
    for smap in significance_maps(table, phase.config, ranking):
        name = f"significance-{smap.column.metric}-{smap.column.structure}"
        teams = [team_of[i] for i in smap.submission_ids]
        title = column_title(smap.column)
        path = plots.significance_map(teams, smap.significant, writer.root.joinpath(*_FOLDER, f"{name}.svg"),
                                      title=title)
        columns = (Column("team", "Better than →"),) + tuple(
            Column(f"vs_{k}", f"{team}", numeric=True) for k, team in enumerate(teams))
        p_values = Table(name, f"{title}: Holm-adjusted p-values", columns, _p_value_rows(smap, teams),
                         caption="Row better than column; ✓ marks p below alpha.")
        image = Image(link(path, writer.root), f"Significance map for {title}",
                      f"{title}: filled where the row beats the column.")
        found.append(Significance(image, p_values))
    return found


def _p_value_rows(smap: SignificanceMap, teams: list[str]) -> tuple[tuple[Cell, ...], ...]:
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
    return tuple(rows)
