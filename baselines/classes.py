"""SPIDER mask values <-> training class indices, derived from challenge.labels.

Two kinds of class map:
- by level: class k is one SPIDER value (vertebra L4, disc L5/S1, the canal ...), so decoding
  a prediction gives the level-specific mask values back (exact both ways);
- by group: a class stands for its value and the levels above it, up to the group's next
  class; a group's lowest class is its level-1 value. The default (`from_groups`) has one class
  for vertebrae (1), the canal (100), partial vertebrae (101) and the discs above L5/S1 (202),
  and one for L5/S1 (201): the disc just above the sacrum anchors `baselines.levels`, which
  counts the other levels. Decoding gives each class's own value, a placeholder that counting
  renames.
This module needs only numpy: it runs inside the reference container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from baselines.errors import BaselineConfigError
from challenge import labels
from challenge.errors import UnknownLabelError

_UNMAPPED = np.uint8(255)  # never a class index: at most 1 + 3 * 25 + 1 = 77 classes
_GROUP_VALUE = {
    labels.Group.VERTEBRAE: labels.vertebra_value(1),
    labels.Group.SPINAL_CANAL: labels.SPINAL_CANAL,
    labels.Group.PARTIAL_VERTEBRAE: labels.PARTIAL_VERTEBRA_OFFSET + 1,
    labels.Group.DISCS: labels.disc_value(1),
}


@dataclass(frozen=True)
class ClassMap:
    """`values[k]` is the SPIDER mask value of training class k; class 0 is background.

    With `by_level` false a class stands for its value and the levels above it, up to the next
    class of its group (see the module's docstring).
    """

    values: tuple[int, ...]
    by_level: bool = True

    def __post_init__(self) -> None:
        values = tuple(int(v) for v in self.values)
        if not values or values[0] != labels.BACKGROUND:
            raise BaselineConfigError(f"class 0 must be background (value 0), found values {values[:3]} ...")
        if len(set(values)) != len(values):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            raise BaselineConfigError(f"a SPIDER value may name one class only; repeated: {duplicates}")
        unknown = [v for v in values[1:] if v not in labels.LABEL_MAP]
        if unknown:
            raise BaselineConfigError(
                f"class values must be SPIDER labels ({labels.FOREGROUND_VALUES_TEXT}), found {unknown}"
            )
        if not self.by_level:
            lowest: dict[labels.Group, int] = {}
            for value in values[1:]:
                group = labels.group_of(value)
                lowest[group] = min(lowest.get(group, value), value)
            uncovered = sorted(v for g, v in lowest.items() if v != _GROUP_VALUE[g])
            if uncovered:
                raise BaselineConfigError(
                    f"in a class map by group each group's lowest class must be its level-1 value "
                    f"{sorted(_GROUP_VALUE.values())}, so that every level has a class; found {uncovered}"
                )
        object.__setattr__(self, "values", values)

    @classmethod
    def from_groups(cls, *, partial_vertebrae: bool) -> "ClassMap":
        """Background, vertebrae, the canal, (partial vertebrae,) disc L5/S1, the discs above it."""
        values = [labels.BACKGROUND, _GROUP_VALUE[labels.Group.VERTEBRAE], labels.SPINAL_CANAL]
        if partial_vertebrae:
            values.append(_GROUP_VALUE[labels.Group.PARTIAL_VERTEBRAE])
        values += [labels.disc_value(1), labels.disc_value(2)]
        return cls(tuple(values), by_level=False)

    @classmethod
    def from_levels(cls, *, max_level: int, partial_vertebrae: bool) -> "ClassMap":
        """Every vertebra and disc of levels 1..`max_level`, the canal and, optionally, partial vertebrae.

        Classes follow the ascending SPIDER values: background, vertebrae by level, the canal,
        partial vertebrae by level, discs by level.
        """
        if isinstance(max_level, bool) or not isinstance(max_level, int) or not 1 <= max_level <= labels.MAX_LEVEL:
            raise BaselineConfigError(f"max_level must be an integer in 1..{labels.MAX_LEVEL}, found {max_level!r}")
        kept = []
        for value, structure in labels.LABEL_MAP.items():
            if structure.group is labels.Group.SPINAL_CANAL:
                kept.append(value)
            elif structure.level <= max_level and (
                partial_vertebrae or structure.group is not labels.Group.PARTIAL_VERTEBRAE
            ):
                kept.append(value)
        return cls((labels.BACKGROUND, *kept))

    @property
    def n_classes(self) -> int:
        return len(self.values)

    @property
    def names(self) -> tuple[str, ...]:
        if not self.by_level:
            return ("background",) + tuple(self._group_class_name(v) for v in self.values[1:])
        return ("background",) + tuple(labels.structure(v).name for v in self.values[1:])

    def group(self, class_index: int) -> labels.Group | None:
        """The structure group of a class (None for background)."""
        value = self.values[class_index]
        return None if value == labels.BACKGROUND else labels.group_of(value)

    def classes_in_group(self, group: labels.Group) -> tuple[int, ...]:
        return tuple(k for k in range(1, self.n_classes) if self.group(k) is group)

    def class_of(self, value: int) -> int:
        try:
            return self.values.index(int(value))
        except ValueError:
            raise UnknownLabelError(f"SPIDER value {value} has no training class in this class map") from None

    def encode(self, mask: np.ndarray) -> np.ndarray:
        """Class indices (uint8) of a SPIDER mask; raises UnknownLabelError naming unmapped values."""
        mask = np.asarray(mask)
        if not np.issubdtype(mask.dtype, np.integer):
            raise UnknownLabelError(f"expected an integer mask, found {mask.dtype}")
        present = np.unique(mask)
        unmapped = sorted(int(v) for v in present if int(v) not in self._value_set)
        if unmapped:
            unknown = labels.unknown_values(unmapped)
            reason = (
                f"values that are not SPIDER labels: {unknown[:10]}"
                if unknown
                else f"SPIDER values without a training class: {unmapped[:10]} "
                "(raise [classes] max_level or set partial_vertebrae = true in the config)"
            )
            raise UnknownLabelError(f"the mask holds {reason}")
        return self._encode_table[mask.astype(np.intp, copy=False)]

    def decode(self, classes: np.ndarray) -> np.ndarray:
        """SPIDER values (uint8) of a class-index array; raises ValueError for indices out of range."""
        classes = np.asarray(classes)
        if classes.size and (int(classes.min()) < 0 or int(classes.max()) >= self.n_classes):
            raise ValueError(
                f"class indices must be in 0..{self.n_classes - 1}, found {int(classes.min())}..{int(classes.max())}"
            )
        return self._decode_table[classes.astype(np.intp, copy=False)]

    def _group_class_name(self, value: int) -> str:
        group = labels.group_of(value)
        starts = sorted(v for v in self.values[1:] if labels.group_of(v) is group)
        if len(starts) == 1:
            return group.value
        following = [v for v in starts if v > value]
        if not following:
            return f"{group.value} from {labels.structure(value).name}"
        if following[0] == value + 1:
            return f"{group.value} {labels.structure(value).name}"
        return f"{group.value} {labels.structure(value).name} to {labels.structure(following[0] - 1).name}"

    @property
    def _value_set(self) -> frozenset[int]:
        if self.by_level:
            return frozenset(self.values)
        kept = {labels.group_of(v) for v in self.values[1:]}
        return frozenset([labels.BACKGROUND, *(v for v in labels.LABEL_MAP if labels.group_of(v) in kept)])

    @property
    def _encode_table(self) -> np.ndarray:
        table = np.full(256, _UNMAPPED, dtype=np.uint8)
        if self.by_level:
            table[list(self.values)] = np.arange(self.n_classes, dtype=np.uint8)
            return table
        table[labels.BACKGROUND] = 0
        for value in self._value_set - {labels.BACKGROUND}:
            group = labels.group_of(value)
            start = max(v for v in self.values[1:] if labels.group_of(v) is group and v <= value)
            table[value] = self.values.index(start)
        return table

    @property
    def _decode_table(self) -> np.ndarray:
        return np.asarray(self.values, dtype=np.uint8)


def class_map_from_values(values: Iterable[int], *, by_level: bool = True) -> ClassMap:
    """The class map recorded in a run or an export (validated against the label map)."""
    return ClassMap(tuple(int(v) for v in values), by_level=by_level)
