"""docs/grand-challenge.md lists the leaderboard columns the code gives, and both commands."""

from __future__ import annotations

from pathlib import Path

from evaluation.platform.columns import leaderboard_columns

DOCS = Path(__file__).resolve().parents[2] / "docs" / "grand-challenge.md"


def test_docs_list_the_spider2024_leaderboard_columns_in_order():
    text = DOCS.read_text(encoding="utf-8")
    rows = "\n".join(f"| `{column.path}` | {column.direction} |" for column in leaderboard_columns("spider2024"))
    assert rows in text


def test_docs_show_both_commands():
    text = DOCS.read_text(encoding="utf-8")
    assert "spider gc evaluation-image --phase NAME --tag TAG [--profile full|spider2024] [--ground-truth DIR]" in text
    assert "spider gc evaluate-locally --image TAG --predictions-from TRY_OUT [--ground-truth DIR] [--out DIR]" in text
