"""Container-chosen text becomes one printable, storable line."""

from __future__ import annotations

import os

import pytest

from challenge.text import shown


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain reason", "plain reason"),
        ("nul\x00 inside", "nul inside"),
        ("two\nlines\tand tab", "two lines and tab"),
        ("bell\x07 and escape \x1b[31mred", "bell and escape [31mred"),
        ("ünïcode stays", "ünïcode stays"),
    ],
)
def test_shown_removes_control_characters(text, expected):
    assert shown(text) == expected


def test_undecodable_bytes_from_the_file_system_are_shown_escaped():
    name = os.fsdecode(b"seg\xff\xfe.mha")  # how os.scandir gives a name that is not UTF-8
    with pytest.raises(UnicodeEncodeError):
        name.encode("utf-8")
    assert shown(name) == "seg\\xff\\xfe.mha"
    shown(name).encode("utf-8")


def test_shown_cuts_long_text():
    assert shown("x" * 1000, limit=10) == "xxxxxxx..."
    assert len(shown("y" * 10_000)) == 500


@pytest.mark.parametrize("text, expected", [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
    ("+1", "'+1"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"), ("\tTAB", "'\tTAB"), ("\rCR", "'\rCR"),
    ("team a", "team a"), ("", ""), ("a=b", "a=b"),
])
def test_a_csv_text_cell_that_a_spreadsheet_would_run_is_neutralised(text, expected):
    from challenge.text import spreadsheet_safe

    assert spreadsheet_safe(text) == expected
