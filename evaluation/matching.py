"""One pass over a case: the joint label histogram, bounding boxes, and instance matching.

Every Dice of a case, every voxel count and every match come from one joint histogram of
(reference label, predicted label) pairs, counted over the bounding box of all foreground:
no per-structure pass over the whole volume. Labels are counted as scored
(challenge.rules.scored_value: a partial vertebra 100+k counts as vertebra k).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping

import fastremap
import numpy as np
from scipy import ndimage

from challenge import labels, rules
from challenge.labels import Group

N_VALUES = 256
_CHUNK_VOXELS = 1 << 23  # bounds the uint16 temporary of the joint histogram to 16 MiB


def _scoring_lut() -> np.ndarray:
    lut = np.arange(N_VALUES, dtype=np.intp)
    for value in labels.LABEL_MAP:
        lut[value] = rules.scored_value(value)
    return lut


SCORED_VALUE_OF = _scoring_lut()
"""Raw mask value -> the value it is scored as (identity except 101-125 -> 1-25)."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box of array indices, `start` inclusive and `stop` exclusive."""

    start: tuple[int, ...]
    stop: tuple[int, ...]

    def union(self, other: "Box") -> "Box":
        return Box(
            tuple(min(a, b) for a, b in zip(self.start, other.start, strict=True)),
            tuple(max(a, b) for a, b in zip(self.stop, other.stop, strict=True)),
        )

    @property
    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))

    @property
    def voxels(self) -> int:
        return int(np.prod([b - a for a, b in zip(self.start, self.stop, strict=True)]))


def union_box(boxes: Iterable[Box | None]) -> Box | None:
    result: Box | None = None
    for box in boxes:
        if box is not None:
            result = box if result is None else result.union(box)
    return result


def _foreground_box(array: np.ndarray) -> Box | None:
    """The bounding box of all non-zero voxels, from two max-projections (fast on uint8)."""
    along_first = array.reshape(array.shape[0], -1).max(axis=1)
    first = np.flatnonzero(along_first)
    if first.size == 0:
        return None
    plane = array.max(axis=0)
    second = np.flatnonzero(plane.max(axis=1))
    third = np.flatnonzero(plane.max(axis=0))
    return Box((int(first[0]), int(second[0]), int(third[0])),
               (int(first[-1]) + 1, int(second[-1]) + 1, int(third[-1]) + 1))


def _boxes_by_scored_value(array: np.ndarray) -> dict[int, Box]:
    """Bounding box of each scored value; `find_objects` runs on the foreground box only."""
    foreground = _foreground_box(array)
    if foreground is None:
        return {}
    offset = foreground.start
    boxes: dict[int, Box] = {}
    for index, found in enumerate(ndimage.find_objects(array[foreground.slices])):
        if found is None:
            continue
        box = Box(
            tuple(s.start + o for s, o in zip(found, offset, strict=True)),
            tuple(s.stop + o for s, o in zip(found, offset, strict=True)),
        )
        value = int(SCORED_VALUE_OF[index + 1])
        boxes[value] = boxes[value].union(box) if value in boxes else box
    return boxes


def _joint_histogram(reference: np.ndarray, prediction: np.ndarray | None, box: Box | None) -> np.ndarray:
    """Counts of (reference value, predicted value) pairs over the whole array, raw values."""
    joint = np.zeros(N_VALUES * N_VALUES, dtype=np.int64)
    inside = 0
    if box is not None:
        reference_part = reference[box.slices]
        prediction_part = None if prediction is None else prediction[box.slices]
        inside = reference_part.size
        step = max(1, _CHUNK_VOXELS // max(1, reference_part[0].size))
        for begin in range(0, reference_part.shape[0], step):
            codes = reference_part[begin:begin + step].astype(np.uint16)
            codes <<= 8
            if prediction_part is not None:
                codes |= prediction_part[begin:begin + step]
            values, counts = fastremap.unique(codes, return_counts=True)
            joint[values.astype(np.intp)] += counts.astype(np.int64)
    joint[0] += reference.size - inside  # everything outside the foreground box is (0, 0)
    return joint.reshape(N_VALUES, N_VALUES)


@dataclass(frozen=True)
class LabelCensus:
    """Joint voxel counts and bounding boxes of one case, by scored label value.

    `joint[r, p]` is the number of voxels the reference labels r and the prediction labels p
    (0 = background), after folding partial vertebrae onto their level; `raw_joint` holds the
    counts of the values as found. A case without a prediction has every voxel under p = 0.
    """

    shape: tuple[int, ...]
    joint: np.ndarray
    raw_joint: np.ndarray
    reference_boxes: Mapping[int, Box]
    prediction_boxes: Mapping[int, Box]

    def reference_count(self, values: Iterable[int]) -> int:
        return int(self.joint[list(values), :].sum())

    def prediction_count(self, values: Iterable[int]) -> int:
        return int(self.joint[:, list(values)].sum())

    def overlap(self, reference_values: Iterable[int], prediction_values: Iterable[int]) -> int:
        return int(self.joint[np.ix_(list(reference_values), list(prediction_values))].sum())

    def reference_values(self, group: Group | None = None) -> tuple[int, ...]:
        """Scored foreground values present in the reference (of `group`), ascending."""
        return self._present(self.joint.sum(axis=1), group)

    def prediction_values(self, group: Group | None = None) -> tuple[int, ...]:
        return self._present(self.joint.sum(axis=0), group)

    @staticmethod
    def _present(counts: np.ndarray, group: Group | None) -> tuple[int, ...]:
        values = [int(v) for v in np.flatnonzero(counts) if v != labels.BACKGROUND]
        if group is not None:
            values = [v for v in values if rules.scored_group(v) is group]
        return tuple(values)

    def box(self, reference_values: Iterable[int], prediction_values: Iterable[int]) -> Box | None:
        """The bounding box of the reference's `reference_values` and the prediction's `prediction_values`."""
        return union_box(
            [self.reference_boxes.get(v) for v in reference_values]
            + [self.prediction_boxes.get(v) for v in prediction_values]
        )


def take_census(reference: np.ndarray, prediction: np.ndarray | None) -> LabelCensus:
    """The census of a case; `prediction` None stands for a case without a prediction.

    Both arrays hold SPIDER label values (uint8 after validation) on the same grid.
    """
    if reference.dtype != np.uint8 or (prediction is not None and prediction.dtype != np.uint8):
        raise ValueError("label arrays must be uint8 (validated SPIDER masks)")
    if prediction is not None and prediction.shape != reference.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from reference shape {reference.shape}")
    reference_boxes = _boxes_by_scored_value(reference)
    prediction_boxes = {} if prediction is None else _boxes_by_scored_value(prediction)
    foreground = union_box(list(reference_boxes.values()) + list(prediction_boxes.values()))
    raw = _joint_histogram(reference, prediction, foreground)
    # Fold raw values into scored values (partial vertebrae onto their level) on both axes.
    raw.setflags(write=False)
    joint = raw.copy()
    for value in np.flatnonzero(SCORED_VALUE_OF != np.arange(N_VALUES)):
        target = SCORED_VALUE_OF[value]
        joint[target, :] += joint[value, :]
        joint[value, :] = 0
        joint[:, target] += joint[:, value]
        joint[:, value] = 0
    joint.setflags(write=False)
    return LabelCensus(
        shape=tuple(reference.shape),
        joint=joint,
        raw_joint=raw,
        reference_boxes=MappingProxyType(reference_boxes),
        prediction_boxes=MappingProxyType(prediction_boxes),
    )


def dice_from_counts(overlap: int, reference_count: int, prediction_count: int) -> float:
    """2|R & P| / (|R| + |P|); the caller handles two empty masks (the edge-case rules)."""
    total = reference_count + prediction_count
    if total == 0:
        raise ValueError("Dice of two empty masks is decided by the edge-case rules")
    return 2.0 * overlap / total


@dataclass(frozen=True)
class Match:
    """A reference instance and the predicted label that overlaps it most (None: no overlap)."""

    reference: int
    prediction: int | None
    overlap_voxels: int
    dice: float

    @property
    def detected(self) -> bool:
        return self.prediction is not None and self.dice >= rules.DETECTION_DICE_THRESHOLD

    @property
    def identified(self) -> bool:
        return self.detected and self.prediction == self.reference

    @property
    def group(self) -> Group:
        return rules.scored_group(self.reference)


def match_instances(census: LabelCensus, *, same_group_only: bool,
                    own_label_fallback: bool = False) -> tuple[Match, ...]:
    """Match every scored reference instance to the predicted label it overlaps most.

    `same_group_only` restricts the candidates to predicted labels of the instance's group (the
    full profile); otherwise every predicted label is a candidate (the official evaluator).
    Ties go to the lower label value. With `own_label_fallback` (the full profile,
    challenge.rules.OWN_LABEL_RULE), an instance that no candidate overlaps is matched to the
    predicted label of its own value when the prediction has it (overlap 0, Dice 0), so that its
    surface distances are measured. Instances come in ascending label value.
    """
    reference_counts = census.joint.sum(axis=1)
    prediction_counts = census.joint.sum(axis=0)
    candidates_all = np.asarray(census.prediction_values(), dtype=np.intp)
    matches = []
    for value in census.reference_values():
        candidates = candidates_all
        if same_group_only and candidates.size:
            group = rules.scored_group(value)
            candidates = candidates[[rules.scored_group(int(c)) is group for c in candidates]]
        overlaps = census.joint[value, candidates] if candidates.size else np.zeros(0, dtype=np.int64)
        if overlaps.size == 0 or overlaps.max() == 0:
            own = own_label_fallback and prediction_counts[value] > 0
            matches.append(Match(value, value if own else None, 0, 0.0))
            continue
        best = int(candidates[int(np.argmax(overlaps))])  # argmax takes the first: the lower value
        overlap = int(census.joint[value, best])
        dice = dice_from_counts(overlap, int(reference_counts[value]), int(prediction_counts[best]))
        matches.append(Match(value, best, overlap, dice))
    return tuple(matches)
