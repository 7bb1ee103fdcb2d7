"""docs/scoring.md prints the declared rules; a change to the rules must reach the docs."""

from __future__ import annotations

from pathlib import Path

from challenge import rules
from challenge.labels import Group

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"


def test_docs_print_the_current_edge_case_table():
    assert rules.edge_case_markdown() in DOCS.read_text(encoding="utf-8")


def test_docs_state_each_nsd_tolerance():
    text = DOCS.read_text(encoding="utf-8")
    names = {Group.VERTEBRAE: "vertebrae", Group.DISCS: "discs", Group.SPINAL_CANAL: "spinal canal"}
    for group, tolerance in rules.NSD_TOLERANCES.items():
        assert f"| {names[group]} | {tolerance.tolerance_mm:.1f} mm |" in text


def test_docs_list_the_official_columns():
    from challenge.official_columns import SPIDER2024_COLUMNS

    text = DOCS.read_text(encoding="utf-8")
    for name in SPIDER2024_COLUMNS:
        assert name in text
