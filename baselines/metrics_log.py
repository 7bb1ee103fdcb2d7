"""The training metrics log (CSV) and its plot of loss and validation Dice per structure."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

METRICS_FILE = "metrics.csv"
PLOT_FILE = "metrics.png"
BASE_COLUMNS = ("iteration", "elapsed_s", "train_loss", "learning_rate", "val_mean_dice")


def columns_for(groups: Sequence[str]) -> tuple[str, ...]:
    return BASE_COLUMNS + tuple(f"val_dice_{group}" for group in groups)


class MetricsLog:
    """Rows of the log, one per logged iteration; validation columns are empty between validations.

    On resume, rows past the resumed iteration (written after the last checkpoint) are dropped.
    """

    def __init__(self, run_dir: Path, groups: Sequence[str], *, resume_at: int):
        self.path = Path(run_dir) / METRICS_FILE
        self.columns = columns_for(groups)
        rows: list[dict[str, str]] = []
        if self.path.is_file() and resume_at > 0:
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if tuple(reader.fieldnames or ()) == self.columns:
                    rows = [row for row in reader if int(row["iteration"]) <= resume_at]
        self.rows = rows
        self._rewrite()

    def add(self, values: Mapping[str, float | int | None]) -> None:
        unknown = sorted(set(values) - set(self.columns))
        if unknown:
            raise ValueError(f"unknown metrics columns {unknown}; expected some of {list(self.columns)}")
        row = {column: _format(values.get(column)) for column in self.columns}
        self.rows.append(row)
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=self.columns).writerow(row)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)


def _format(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """Columns of a metrics CSV as float arrays (NaN where a row has no value)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or ()}
        for row in reader:
            for name in columns:
                text = row[name]
                columns[name].append(float(text) if text not in ("",) else math.nan)
    return {name: np.asarray(values, dtype=float) for name, values in columns.items()}


def plot_metrics(metrics_csv: Path, out_png: Path, *, title: str = "") -> Path:
    """Two panels: training loss, and validation Dice (mean and per structure) over iterations.

    Raises ImportError when matplotlib is not installed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no global backend state touched
    from matplotlib.figure import Figure

    columns = read_metrics(metrics_csv)
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, dice_axes = figure.subplots(1, 2)
    iterations = columns.get("iteration", np.zeros(0))
    loss = columns.get("train_loss", np.zeros(0))
    has_loss = ~np.isnan(loss)
    loss_axes.plot(iterations[has_loss], loss[has_loss], color="tab:blue")
    loss_axes.set_xlabel("iteration")
    loss_axes.set_ylabel("training loss (Dice + CE)")
    loss_axes.grid(alpha=0.3)
    for name in [c for c in columns if c.startswith("val_")]:
        values = columns[name]
        present = ~np.isnan(values)
        if present.any():
            label = "mean foreground" if name == "val_mean_dice" else name.removeprefix("val_dice_").replace("_", " ")
            dice_axes.plot(iterations[present], values[present], marker="o", markersize=3, label=label,
                           linewidth=2.5 if name == "val_mean_dice" else 1.2)
    dice_axes.set_xlabel("iteration")
    dice_axes.set_ylabel("validation Dice")
    dice_axes.set_ylim(0, 1)
    dice_axes.grid(alpha=0.3)
    if dice_axes.lines:
        dice_axes.legend(loc="upper left", fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out_png)
    return Path(out_png)
