"""Static figures of the leaderboard, drawn with matplotlib and written as SVG or PNG files.

Every function takes plain numbers and labels and writes one file; nothing here knows about
submissions or pages. Files are reproducible: no dates in the metadata, a fixed SVG id salt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "spider-leaderboard", "svg.fonttype": "path", "font.size": 9})

_LABEL_CHARS = 28
REFERENCE_COLOUR = "#00c853"
PREDICTION_COLOUR = "#ff1744"


def plain_label(text: str) -> str:
    """A label matplotlib draws as written (no mathtext), shortened to fit an axis."""
    text = text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"
    return text.replace("$", r"\$")


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix == ".svg" else {"Software": None}
    figure.savefig(path, metadata=metadata, bbox_inches="tight", dpi=110)
    plt.close(figure)
    return path


BoxValues = Sequence[float] | np.ndarray
"""One box's values: NaN where a case has none."""


def _label_ticks(axis, labels: Sequence[str]) -> None:
    """One tick per label at x = 1, 2, ...; slanted where more than three would crowd."""
    crowded = len(labels) > 3
    axis.set_xticks(range(1, len(labels) + 1), labels, rotation=30 if crowded else 0,
                    ha="right" if crowded else "center")


def box_plots(
    panels: Mapping[str, Mapping[str, BoxValues]], path: Path, *, ylabel: str, title: str = "",
    sharey: bool = True,
) -> Path:
    """One panel per key of `panels`, each with a box per label over its finite values.

    Missing (NaN) values are not drawn; the label says how many there were, so a box never
    hides that cases are missing.
    """
    names = list(panels)
    boxes_per_panel = max((len(panels[n]) for n in names), default=1)
    width = min(14.0, 1.0 + len(names) * (0.6 + 0.55 * boxes_per_panel))
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=(width, 3.4), squeeze=False, sharey=sharey)
    for axis, name in zip(axes[0], names, strict=False):  # without panels, one empty axis
        labels, data = [], []
        for label, given in panels[name].items():
            values = np.asarray(given, dtype=float)
            finite = values[np.isfinite(values)]
            missing = values.size - finite.size
            labels.append(plain_label(label) + (f"\n({missing} missing)" if missing else ""))
            data.append(finite if finite.size else np.array([np.nan]))
        axis.boxplot(data, showfliers=True, widths=0.6)
        _label_ticks(axis, labels)
        axis.set_title(plain_label(name))
        axis.grid(axis="y", alpha=0.3)
    if sharey:
        axes[0][0].set_ylabel(plain_label(ylabel))
    if title:
        figure.suptitle(plain_label(title))
    figure.tight_layout()
    return _save(figure, path)


def blob_plot(labels: Sequence[str], rank_counts: np.ndarray, full_ranks: Sequence[int], path: Path) -> Path:
    """challengeR's blob plot: per submission (x, in ranking order) the share of draws at each rank.

    `rank_counts[s, r - 1]` counts draws at rank r; the circle area is proportional to that share,
    the black line spans the 2.5-97.5 % quantiles, a cross marks the rank on all cases.
    """
    n = len(labels)
    draws = max(1, int(rank_counts[0].sum())) if n else 1
    figure, axis = plt.subplots(figsize=(max(4.0, 1.0 + 0.8 * n), 3.6))
    for s in range(n):
        share = rank_counts[s] / draws
        ranks = np.arange(1, n + 1)
        shown = share > 0
        axis.scatter(np.full(shown.sum(), s + 1), ranks[shown], s=600 * share[shown], color="#1565c0", alpha=0.6,
                     linewidths=0)
        cumulative = np.cumsum(share)
        low = int(np.searchsorted(cumulative, 0.025 - 1e-12) + 1)
        high = int(np.searchsorted(cumulative, 0.975 - 1e-12) + 1)
        axis.plot([s + 1, s + 1], [low, high], color="black", linewidth=1)
        axis.scatter([s + 1], [full_ranks[s]], marker="x", color="black", s=30, zorder=3)
    axis.plot([0.5, n + 0.5], [0.5, n + 0.5], color="grey", linewidth=0.5, linestyle=":")
    axis.set_xlim(0.5, n + 0.5)
    axis.set_ylim(n + 0.5, 0.5)
    _label_ticks(axis, [plain_label(label) for label in labels])
    axis.set_yticks(range(1, n + 1))
    axis.set_ylabel("rank")
    axis.legend(
        handles=[
            Line2D([], [], marker="o", linestyle="", color="#1565c0", alpha=0.6, label="share of bootstrap draws"),
            Line2D([], [], marker="x", linestyle="", color="black", label="rank on all cases"),
            Line2D([], [], color="black", label="95 % of draws"),
        ],
        loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
    )
    figure.tight_layout()
    return _save(figure, path)


def significance_map(labels: Sequence[str], significant: np.ndarray, path: Path, *, title: str) -> Path:
    """A grid: cell (i, j) is filled where submission i (row) is significantly better than j (column)."""
    n = len(labels)
    figure, axis = plt.subplots(figsize=(max(3.2, 1.6 + 0.45 * n), max(2.8, 1.2 + 0.45 * n)))
    grid = np.where(np.eye(n, dtype=bool), 0.5, significant.astype(float))
    axis.imshow(grid, cmap="Greys", vmin=0, vmax=1.4 if n else 1, interpolation="nearest")
    shown = [plain_label(label) for label in labels]
    axis.set_xticks(range(n), shown, rotation=45, ha="right")
    axis.set_yticks(range(n), shown)
    axis.set_xlabel("is beaten")
    axis.set_ylabel("beats")
    axis.set_title(plain_label(title))
    figure.tight_layout()
    return _save(figure, path)


def slice_with_contours(
    image: np.ndarray, reference: np.ndarray, prediction: np.ndarray | None, path: Path, *,
    aspect: float, title: str,
) -> Path:
    """A 2D slice in grey with the outline of each reference label and each predicted label.

    Arrays are (rows, columns) with row 0 drawn at the top; `aspect` is row spacing / column spacing.
    """
    height, width = image.shape
    scale = 4.5 / max(height * aspect, width, 1)
    figure, axis = plt.subplots(figsize=(max(2.5, width * scale + 0.4), max(2.5, height * aspect * scale + 0.6)))
    low, high = np.percentile(image, [1, 99]) if image.size else (0, 1)
    axis.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1, aspect=aspect,
                interpolation="nearest")
    for mask, colour in ((reference, REFERENCE_COLOUR), (prediction, PREDICTION_COLOUR)):
        if mask is None:
            continue
        for value in np.unique(mask):
            if value == 0:
                continue
            axis.contour(mask == value, levels=[0.5], colors=[colour], linewidths=0.8)
    axis.set_axis_off()
    axis.set_title(plain_label(title), fontsize=8)
    handles = [Line2D([], [], color=REFERENCE_COLOUR, label="reference")]
    prediction_label = "prediction" if prediction is not None else "no prediction"
    handles.append(Line2D([], [], color=PREDICTION_COLOUR, label=prediction_label))
    axis.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False, fontsize=7)
    figure.tight_layout()
    return _save(figure, path)
