"""The scoring rules, declared once: metrics, NSD tolerances, matching and the edge-case table.

Everything that decides a score lives here as data, so that the scoring engine, the docs, the
results files and the leaderboard read one source. Any change to a value in this module must
bump RULES_VERSION: organizers rescore every submission when it changes, and every results
file carries the version it was computed under.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from challenge import labels
from challenge.labels import Group
from challenge.phases import DEFAULT_SCORING_TIME_LIMIT_S

RULES_VERSION = "1.1.0"
"""Version of the scoring rules; written into every results file."""


class EdgeCase(str, enum.Enum):
    """The situations in which a metric is not computed from two non-empty masks."""

    BOTH_EMPTY = "both_empty"
    PREDICTION_EMPTY = "prediction_empty"
    REFERENCE_EMPTY = "reference_empty"
    MISSING = "missing"

    def __str__(self) -> str:
        return self.value


EDGE_CASE_TITLES: Mapping[EdgeCase, str] = MappingProxyType({
    EdgeCase.BOTH_EMPTY: "both empty",
    EdgeCase.PREDICTION_EMPTY: "prediction empty",
    EdgeCase.REFERENCE_EMPTY: "reference empty",
    EdgeCase.MISSING: "case missing or invalid",
})

EDGE_CASE_MEANINGS: Mapping[EdgeCase, str] = MappingProxyType({
    EdgeCase.BOTH_EMPTY: (
        "neither the reference nor the prediction holds the structure (e.g. a reference and a "
        "prediction without a spinal canal)"
    ),
    EdgeCase.PREDICTION_EMPTY: (
        "the reference holds the structure and the prediction does not; a reference instance that "
        "no predicted voxel of a candidate label overlaps counts as this (nothing was found for it)"
    ),
    EdgeCase.REFERENCE_EMPTY: (
        "the prediction holds the structure and the reference does not (a group merged mask or a "
        "group without reference instances)"
    ),
    EdgeCase.MISSING: (
        "the case has no prediction, or its prediction breaks the output contract (unreadable, "
        "another voxel grid, labels outside the label map), the algorithm job failed, or its scoring "
        "was stopped (over the scoring time limit, or the scoring process died); every row of the case "
        "takes this value, including structures the reference does not hold"
    ),
})

FOV_DIAGONAL = "fov_diagonal_mm"
"""Marker for the worst possible distance of a case: the diagonal of its field of view in mm,
sqrt(sum((size_i * spacing_i)^2)). No distance between two voxels of the image can be larger."""

EdgeValue = float | str


def fov_diagonal_mm(shape_zyx: tuple[int, ...], spacing_zyx_mm: tuple[float, ...]) -> float:
    """The field-of-view diagonal in mm: the worst value of every distance metric in a case."""
    if len(shape_zyx) != len(spacing_zyx_mm):
        raise ValueError(f"shape {tuple(shape_zyx)} and spacing {tuple(spacing_zyx_mm)} differ in length")
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape_zyx, spacing_zyx_mm, strict=True))))


class Direction(str, enum.Enum):
    HIGHER = "higher"
    LOWER = "lower"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name in results, unit, which way is better, definition and edge values."""

    name: str
    title: str
    unit: str
    direction: Direction
    definition: str
    edge_values: Mapping[EdgeCase, EdgeValue]

    def __post_init__(self) -> None:
        missing = [case.value for case in EdgeCase if case not in self.edge_values]
        if missing:
            raise ValueError(f"metric {self.name!r} declares no value for edge case(s) {missing}")
        for case, value in self.edge_values.items():
            if not (value == FOV_DIAGONAL or (isinstance(value, (int, float)) and math.isfinite(value))):
                raise ValueError(f"metric {self.name!r}: edge value for {case.value} must be a finite number "
                                 f"or {FOV_DIAGONAL!r}, found {value!r}")

    def edge_value(self, case: EdgeCase, *, fov_diagonal_mm: float) -> float:
        """The declared value of this metric in `case`, with the worst distance resolved."""
        value = self.edge_values[EdgeCase(case)]
        return float(fov_diagonal_mm) if value == FOV_DIAGONAL else float(value)

    @property
    def higher_is_better(self) -> bool:
        return self.direction is Direction.HIGHER


def _edges(
    both: EdgeValue, prediction: EdgeValue, reference: EdgeValue, missing: EdgeValue
) -> Mapping[EdgeCase, EdgeValue]:
    return MappingProxyType({
        EdgeCase.BOTH_EMPTY: both,
        EdgeCase.PREDICTION_EMPTY: prediction,
        EdgeCase.REFERENCE_EMPTY: reference,
        EdgeCase.MISSING: missing,
    })


_OVERLAP_EDGES = _edges(1.0, 0.0, 0.0, 0.0)
_DISTANCE_EDGES = _edges(0.0, FOV_DIAGONAL, FOV_DIAGONAL, FOV_DIAGONAL)

HD_PERCENTILE = 95.0
"""HD95 takes this percentile (linear interpolation, numpy's and torch's default) of each
directed set of surface distances and reports the larger of the two, as MONAI and
MetricsReloaded do (MedPy pools both directions instead, giving up to ~1 mm lower values)."""

_SURFACE = (
    "Surface voxels are the voxels of a mask with at least one of their 6 face neighbours outside "
    "the mask (outside the image counts as outside). Distances are Euclidean in mm from voxel "
    "centre to voxel centre with the image spacing in array-axis order, from each surface voxel "
    "of one mask to the nearest surface voxel of the other; they do not depend on the image "
    "direction (a rotation or flip), which must be orthonormal."
)

_METRICS = (
    MetricSpec(
        "dice", "Dice", "", Direction.HIGHER,
        "2|R & P| / (|R| + |P|) on voxel counts (MONAI compute_dice).",
        _OVERLAP_EDGES,
    ),
    MetricSpec(
        "assd", "ASSD", "mm", Direction.LOWER,
        "Average symmetric surface distance: the mean over the distances of both directions pooled "
        "together, (sum d(P->R) + sum d(R->P)) / (|S_P| + |S_R|) (MONAI "
        "compute_average_surface_distance with symmetric=True). " + _SURFACE,
        _DISTANCE_EDGES,
    ),
    MetricSpec(
        "hd95", "HD95", "mm", Direction.LOWER,
        "95th-percentile Hausdorff distance: the larger of the two directed 95th percentiles "
        "(MONAI compute_hausdorff_distance with percentile=95). " + _SURFACE,
        _DISTANCE_EDGES,
    ),
    MetricSpec(
        "nsd", "NSD", "", Direction.HIGHER,
        "Normalized surface Dice at the structure's tolerance tau: (|d(P->R) <= tau| + "
        "|d(R->P) <= tau|) / (|S_P| + |S_R|) (MONAI compute_surface_dice, use_subvoxels=False). "
        + _SURFACE,
        _OVERLAP_EDGES,
    ),
    MetricSpec(
        "asd", "ASD (SPIDER 2024)", "mm", Direction.LOWER,
        "The official SPIDER evaluator's average surface distance: like ASSD, but surface voxels "
        "are those with any of their 26 neighbours outside the mask (full connectivity), and the "
        "spacing is applied in array-axis order (the official script swapped it).",
        _DISTANCE_EDGES,
    ),
    MetricSpec(
        "detected", "detected", "", Direction.HIGHER,
        "1 if the reference instance's matched prediction has Dice >= the detection threshold, "
        "else 0.",
        _OVERLAP_EDGES,
    ),
    MetricSpec(
        "identified", "identified", "", Direction.HIGHER,
        "1 if the instance is detected and its matched prediction carries the reference's own "
        "label (the right level), else 0.",
        _OVERLAP_EDGES,
    ),
    MetricSpec(
        "detection_rate", "detection rate", "", Direction.HIGHER,
        "Detected reference instances of the group / reference instances of the group.",
        _OVERLAP_EDGES,
    ),
    MetricSpec(
        "identification_rate", "identification rate", "", Direction.HIGHER,
        "Identified reference instances of the group / reference instances of the group.",
        _OVERLAP_EDGES,
    ),
)

MERGED_PREFIX = "merged_"
"""Metrics of a whole group's merged mask (every label of the group as one structure) carry this
prefix (merged_dice, merged_assd, merged_hd95, merged_nsd) and the base metric's rules."""
MERGED_BASES = ("dice", "assd", "hd95", "nsd")


def _with_merged(specs: tuple[MetricSpec, ...]) -> Mapping[str, MetricSpec]:
    table = {spec.name: spec for spec in specs}
    for base in MERGED_BASES:
        spec = table[base]
        table[MERGED_PREFIX + base] = MetricSpec(
            MERGED_PREFIX + base, f"{spec.title} (merged group mask)", spec.unit, spec.direction,
            f"{spec.definition} Computed on the group's merged masks: every reference label of the "
            "group as one mask against every predicted label of the group as one mask.",
            spec.edge_values,
        )
    return MappingProxyType(table)


METRICS: Mapping[str, MetricSpec] = _with_merged(_METRICS)
"""Every metric a results file may hold, by name."""

EDGE_CASE_TABLE: Mapping[str, Mapping[EdgeCase, EdgeValue]] = MappingProxyType(
    {name: spec.edge_values for name, spec in sorted(METRICS.items())}
)
"""The edge-case table as data: metric -> edge case -> value (a number, or FOV_DIAGONAL)."""


@dataclass(frozen=True)
class Tolerance:
    """The NSD tolerance of a structure group and why it has that value."""

    group: Group
    tolerance_mm: float
    rationale: str


NSD_TOLERANCES: Mapping[Group, Tolerance] = MappingProxyType({
    Group.VERTEBRAE: Tolerance(
        Group.VERTEBRAE, 2.0,
        "The cortical outline of a vertebral body is sharp, but the posterior elements (pedicles, "
        "laminae, processes) are thin and blurred by partial volume in 3-4 mm sagittal TSE slices. "
        "2 mm is about three in-plane TSE voxels (0.6 mm) and two SPACE voxels across slices "
        "(0.9 mm): a boundary drawn one or two voxels differently counts as correct, a missed "
        "process does not. It stays below one TSE slice (>= 3.15 mm), so a surface off by a "
        "whole slice is not within tolerance.",
    ),
    Group.DISCS: Tolerance(
        Group.DISCS, 1.5,
        "Discs are thin (about 8-12 mm high in the lumbar spine, less when degenerated), so the "
        "tolerance must stay a small fraction of their height; the disc-endplate boundary is "
        "sharp on T2. 1.5 mm is about two and a half in-plane TSE voxels and under half a TSE "
        "slice.",
    ),
    Group.SPINAL_CANAL: Tolerance(
        Group.SPINAL_CANAL, 1.5,
        "The canal's boundary with the surrounding bone and ligaments is high-contrast on T2 but "
        "softer on T1, and its width is only 10-20 mm; 1.5 mm (two and a half in-plane TSE "
        "voxels) accepts the usual one-voxel boundary disagreement without accepting a canal "
        "drawn a slice too wide.",
    ),
})
"""NSD tolerance per scored group. These are the organizers' choices, not measured inter-observer
variability: revisit them when an inter-observer study is available (and bump RULES_VERSION)."""

DETECTION_DICE_THRESHOLD = 0.1
"""A reference instance counts as detected when the Dice with its matched prediction is at least
this (the official SPIDER evaluator's threshold)."""

MATCHING_RULE = (
    "Each reference instance is matched to the predicted label that overlaps it most (most shared "
    "voxels; ties go to the lower label value). The full profile only considers predicted labels of "
    "the instance's own group (a vertebra is never matched to a predicted disc); the spider2024 "
    "profile considers every predicted label, as the official evaluator does. Several reference "
    "instances may match the same predicted label. Overlap and surface metrics of the instance are "
    "computed against its matched label, so a prediction that names a level wrongly keeps its "
    "overlap scores and loses only on identification."
)

OWN_LABEL_RULE = (
    "Full profile: a reference instance that no predicted label of its group overlaps is matched to "
    "the predicted label of its own value when the prediction has it (Dice 0, not detected, surface "
    "metrics measured between the two); only an instance with neither an overlap nor its own label "
    "is prediction-empty. A level segmented a slice off keeps a measured distance instead of the "
    "worst value. The spider2024 profile keeps the official matching (no overlap, no match)."
)

PARTIAL_VERTEBRA_RULE = (
    "Partially visible vertebrae (labels 101-125) are merged with their level before scoring, in "
    "the reference and in the prediction alike: label 100+k is scored as vertebra k. A partially "
    "visible vertebra is still that vertebra, the reference annotates its visible part, and "
    "whether an algorithm writes k or 100+k for it says nothing about the quality of its "
    "segmentation. The official evaluator scored them as separate instances that count only in "
    "the overall Dice and ASD."
)

INSTANCE_MEAN_RULE = (
    "A group's value in a case (level 'all') is the mean over every reference instance of the group, "
    "missed ones included with their prediction-empty values; a group without reference instances "
    "takes the both-empty or reference-empty value, depending on whether the prediction holds the "
    "group. Predicted instances that match no reference instance do not enter the instance mean; "
    "they lower the merged-mask metrics (merged_*)."
)

SCORING_GUARD_RULE = (
    "Each case is scored in a process of its own under a time limit: the phase's "
    f"scoring_time_limit_seconds ({DEFAULT_SCORING_TIME_LIMIT_S} s unless the phase declares another; "
    "`spider score --scoring-time-limit`). A case whose scoring takes longer (its process is then "
    "killed), or whose scoring process dies (killed by a signal, crashed, short of memory, or stopped "
    "by an error other than a broken output contract), is scored as invalid output by the missing-case "
    "rule: every row of the case takes the declared missing value with status invalid, and the reason "
    f"is recorded, e.g. 'scoring took longer than {DEFAULT_SCORING_TIME_LIMIT_S} s (the scoring time "
    "limit)' or 'scoring stopped: the scoring process died (signal 9, SIGKILL)'. The other cases are "
    "scored as usual. A reference mask that cannot be read stops the scoring instead: then the "
    "organizers' data is broken, not the submission."
)
"""What happens to a case whose scoring exceeds its time limit or whose scoring process dies
(evaluation.guard applies it to every case, in `spider score` and in the registry alike)."""


def scored_value(value: int) -> int:
    """The label a mask value is scored as: partial vertebra 100+k -> k, every other value itself."""
    value = int(value)
    structure = labels.structure(value)
    if structure.group is Group.PARTIAL_VERTEBRAE:
        return labels.vertebra_value(structure.level)
    return value


def scored_group(value: int) -> Group:
    """The group a mask value is scored in (partial vertebrae count as vertebrae)."""
    return labels.group_of(scored_value(value))


def tolerance_mm(group: Group) -> float:
    try:
        return NSD_TOLERANCES[Group(group)].tolerance_mm
    except KeyError:
        raise KeyError(f"no NSD tolerance declared for group {group!s}; declared: "
                       f"{[str(g) for g in NSD_TOLERANCES]}") from None


def edge_case_table() -> dict[str, dict[str, EdgeValue]]:
    """The edge-case table as plain data: metric -> edge case -> value (or FOV_DIAGONAL)."""
    return {
        name: {case.value: spec.edge_values[case] for case in EdgeCase}
        for name, spec in sorted(METRICS.items())
    }


def rules_as_data() -> dict:
    """Every rule as JSON-ready data, written into each results file."""
    return {
        "version": RULES_VERSION,
        "edge_cases": edge_case_table(),
        "edge_case_meanings": {case.value: EDGE_CASE_MEANINGS[case] for case in EdgeCase},
        "worst_distance": f"{FOV_DIAGONAL}: the diagonal of the case's field of view in mm",
        "metrics": {
            name: {"title": spec.title, "unit": spec.unit, "direction": spec.direction.value,
                   "definition": spec.definition}
            for name, spec in sorted(METRICS.items())
        },
        "nsd_tolerance_mm": {str(group): tol.tolerance_mm for group, tol in NSD_TOLERANCES.items()},
        "hd_percentile": HD_PERCENTILE,
        "detection_dice_threshold": DETECTION_DICE_THRESHOLD,
        "matching": MATCHING_RULE,
        "own_label": OWN_LABEL_RULE,
        "partial_vertebrae": PARTIAL_VERTEBRA_RULE,
        "instance_mean": INSTANCE_MEAN_RULE,
        "scoring_guard": SCORING_GUARD_RULE,
    }


def edge_case_markdown() -> str:
    """The edge-case table as a Markdown table (docs/scoring.md prints exactly this)."""
    def shown(value: EdgeValue) -> str:
        return "FOV diagonal (mm)" if value == FOV_DIAGONAL else f"{float(value):g}"

    header = "| metric | unit | better | " + " | ".join(EDGE_CASE_TITLES[c] for c in EdgeCase) + " |"
    rule = "| --- | --- | --- | " + " | ".join("---" for _ in EdgeCase) + " |"
    lines = [f"Rules version {RULES_VERSION}.", "", header, rule]
    for name, spec in sorted(METRICS.items()):
        cells = " | ".join(shown(spec.edge_values[c]) for c in EdgeCase)
        lines.append(f"| {name} | {spec.unit or '-'} | {spec.direction.value} | {cells} |")
    return "\n".join(lines) + "\n"
