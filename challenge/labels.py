"""The SPIDER label map: mask values, level names and structure groups, declared once."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping

BACKGROUND = 0
SPINAL_CANAL = 100
PARTIAL_VERTEBRA_OFFSET = 100
DISC_OFFSET = 200
MAX_LEVEL = 25

# Vertebrae are numbered from the bottom (1 = L5). SPIDER has no names above 24 (C1);
# value 25 exists in the label range, so it keeps a neutral name.
_VERTEBRA_NAMES = (
    ["L5", "L4", "L3", "L2", "L1"]
    + [f"T{n}" for n in range(12, 0, -1)]
    + [f"C{n}" for n in range(7, 0, -1)]
    + ["V25"]
)
assert len(_VERTEBRA_NAMES) == MAX_LEVEL


class Group(str, enum.Enum):
    """Structure groups scored and reported together."""

    VERTEBRAE = "vertebrae"
    DISCS = "discs"
    SPINAL_CANAL = "spinal_canal"
    PARTIAL_VERTEBRAE = "partial_vertebrae"

    def __str__(self) -> str:
        return self.value


SCORED_GROUPS: tuple[Group, ...] = (Group.VERTEBRAE, Group.DISCS, Group.SPINAL_CANAL)


@dataclass(frozen=True)
class Structure:
    """One mask value: its level (1 = L5 for vertebrae and L5/S1 for discs), name and group."""

    value: int
    level: int
    name: str
    group: Group


def vertebra_name(level: int) -> str:
    """Anatomical name of vertebra `level` counted from the bottom (1 = L5, 6 = T12)."""
    if not 1 <= level <= MAX_LEVEL:
        raise ValueError(f"vertebra level must be in 1..{MAX_LEVEL}, got {level}")
    return _VERTEBRA_NAMES[level - 1]


def disc_name(level: int) -> str:
    """Name of disc `level`: the disc below vertebra `level` (1 = L5/S1, 2 = L4/L5)."""
    below = "S1" if level == 1 else vertebra_name(level - 1)
    return f"{vertebra_name(level)}/{below}"


def _build_label_map() -> Mapping[int, Structure]:
    structures: dict[int, Structure] = {}
    for level in range(1, MAX_LEVEL + 1):
        structures[level] = Structure(level, level, vertebra_name(level), Group.VERTEBRAE)
        partial = PARTIAL_VERTEBRA_OFFSET + level
        structures[partial] = Structure(
            partial, level, f"{vertebra_name(level)} (partial)", Group.PARTIAL_VERTEBRAE
        )
        disc = DISC_OFFSET + level
        structures[disc] = Structure(disc, level, disc_name(level), Group.DISCS)
    structures[SPINAL_CANAL] = Structure(SPINAL_CANAL, 0, "spinal canal", Group.SPINAL_CANAL)
    return MappingProxyType(dict(sorted(structures.items())))


LABEL_MAP: Mapping[int, Structure] = _build_label_map()
"""Every foreground value of a SPIDER mask, in ascending order."""

ALLOWED_VALUES: frozenset[int] = frozenset(LABEL_MAP) | {BACKGROUND}


def _ranges_text(values: Iterable[int]) -> str:
    """Sorted integers as runs: '0, 1-25, 100, 101-125, 201-225'."""
    ordered = sorted(values)
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][1] + 1 and _same_kind(value - 1, value):
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def _same_kind(a: int, b: int) -> bool:
    return a in LABEL_MAP and b in LABEL_MAP and LABEL_MAP[a].group is LABEL_MAP[b].group


FOREGROUND_VALUES_TEXT = _ranges_text(LABEL_MAP)
"""The foreground values of the label map in words: '1-25, 100, 101-125, 201-225'."""

VALID_VALUES_TEXT = _ranges_text(ALLOWED_VALUES)
"""Every value a SPIDER mask may hold: '0, 1-25, 100, 101-125, 201-225'."""


def unknown_values_text(unknown: Iterable[int], *, shown: int = 10) -> str:
    """Values that are not SPIDER labels, for an error message: '42, 150 (expected 0, 1-25, ...)'."""
    values = sorted(unknown)
    listed = ", ".join(str(v) for v in values[:shown]) + (" ..." if len(values) > shown else "")
    return f"{listed} (expected {VALID_VALUES_TEXT})"


def vertebra_value(level: int) -> int:
    return LABEL_MAP[level].value


def disc_value(level: int) -> int:
    """Mask value of the disc below vertebra `level` (disc = vertebra above + 200)."""
    return LABEL_MAP[DISC_OFFSET + level].value


def partial_vertebra_value(level: int) -> int:
    return LABEL_MAP[PARTIAL_VERTEBRA_OFFSET + level].value


def structure(value: int) -> Structure:
    """The structure for a mask value; raises KeyError naming the value if it is not in the map."""
    try:
        return LABEL_MAP[int(value)]
    except KeyError:
        raise KeyError(f"{value} is not a SPIDER label value (expected {FOREGROUND_VALUES_TEXT})") from None


def group_of(value: int) -> Group:
    return structure(value).group


def values_in_group(group: Group) -> tuple[int, ...]:
    return tuple(v for v, s in LABEL_MAP.items() if s.group is group)


def unknown_values(values: Iterable[int]) -> list[int]:
    """The values that are not background or a SPIDER label, sorted."""
    return sorted({int(v) for v in values} - ALLOWED_VALUES)
