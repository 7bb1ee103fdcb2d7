"""`spider synth` end to end through the console script's entry point."""

from __future__ import annotations

import csv

import pytest

from challenge.cli import main


@pytest.mark.timeout(120)
def test_spider_synth_writes_a_release_and_prints_each_series(tmp_path, capsys):
    out = tmp_path / "synthetic"
    code = main(["synth", "--out", str(out), "--cases", "4", "--seed", "2", "--voxel-scale", "3"])
    captured = capsys.readouterr()
    assert code == 0
    with (out / "overview.csv").open(encoding="utf-8", newline="") as handle:
        names = [row["new_file_name"] for row in csv.DictReader(handle)]
    assert len(names) == 4
    for name in names:
        assert (out / "images" / f"{name}.mha").is_file() and (out / "masks" / f"{name}.mha").is_file()
        assert any(line.startswith(f"{name}: ") and "voxels, spacing" in line for line in captured.out.splitlines())
    assert "wrote 4 synthetic series" in captured.out
    assert "spider synth" in captured.err  # the progress bar


def test_spider_synth_restricts_sequences(tmp_path, capsys):
    out = tmp_path / "t1"
    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "--cases",
                "2",
                "--seed",
                "0",
                "--voxel-scale",
                "4",
                "--sequences",
                "t1",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name.split("_", 1)[1] for p in (out / "images").iterdir()) == ["t1.mha", "t1.mha"]
    assert capsys.readouterr().out.count("\n") == 1


def test_spider_synth_refuses_a_foreign_folder_with_a_clear_message(tmp_path, capsys):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "scan.mha").write_bytes(b"not ours")
    assert main(["synth", "--out", str(out), "--cases", "1", "--seed", "0"]) == 2
    error = capsys.readouterr().err
    assert "spider synth: error:" in error and "nothing was changed" in error
    assert [p.name for p in out.iterdir()] == ["scan.mha"]


def test_spider_synth_reports_bad_arguments(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--sequences", "t1,dwi"]) == 2
    assert "dwi" in capsys.readouterr().err
