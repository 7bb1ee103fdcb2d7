"""A readable summary of a release folder, as printed by `spider data check`."""

from __future__ import annotations

from collections import Counter

from challenge import labels
from challenge.release import SEQUENCES, Release


def summarize(release: Release) -> str:
    lines = [f"Release folder: {release.root}"]
    per_sequence = Counter(s.sequence for s in release.series)
    patients = {s.patient_id for s in release.series}
    lines.append(
        f"Series: {len(release.series)} from {len(patients)} patients ("
        + ", ".join(f"{seq}: {per_sequence.get(seq, 0)}" for seq in SEQUENCES)
        + ")"
    )
    subsets = Counter(s.subset or "unassigned" for s in release.series)
    lines.append("Subsets: " + ", ".join(f"{k}: {v}" for k, v in sorted(subsets.items())))
    for sequence in SEQUENCES:
        members = [s for s in release.series if s.sequence == sequence]
        if not members:
            continue
        lines.append(f"  {sequence:9s} spacing (x, y, z) mm: " + _ranges([s.spacing_mm for s in members])
                     + "   size (x, y, z): " + _ranges([s.size for s in members], digits=0))
    if release.label_counts:
        by_group: Counter = Counter()
        series_with: Counter = Counter()
        for value, voxels in release.label_counts.items():
            by_group[labels.group_of(value).value] += voxels
            series_with[value] += 1
        lines.append("Labels present (value name: voxels):")
        row = []
        for value, voxels in release.label_counts.items():
            row.append(f"{value} {labels.structure(value).name}: {voxels}")
        for start in range(0, len(row), 4):
            lines.append("  " + "; ".join(row[start:start + 4]))
    lines.append(f"Disc gradings: {len(release.gradings)} discs")
    for warning in release.warnings:
        lines.append(f"warning: {warning}")
    if release.problems:
        lines.append(f"Problems found: {len(release.problems)}")
        lines.extend(f"  problem: {p}" for p in release.problems)
    else:
        lines.append("Problems found: none")
    return "\n".join(lines)


def _ranges(values: list[tuple], *, digits: int = 2) -> str:
    columns = list(zip(*values, strict=True))
    return "(" + ", ".join(f"{min(c):.{digits}f}-{max(c):.{digits}f}" for c in columns) + ")"
