"""The SPIDER value <-> training class map: derived from challenge.labels, exact both ways."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.classes import ClassMap
from baselines.errors import BaselineConfigError
from challenge import labels
from challenge.errors import UnknownLabelError


def test_full_map_covers_every_spider_value_and_round_trips():
    class_map = ClassMap.from_levels(max_level=labels.MAX_LEVEL, partial_vertebrae=True)
    assert class_map.n_classes == 1 + len(labels.LABEL_MAP) == 77
    values = np.array(sorted(labels.ALLOWED_VALUES), dtype=np.uint8)
    classes = class_map.encode(values)
    assert classes.tolist() == list(range(77))  # ascending SPIDER values, background first
    assert class_map.decode(classes).tolist() == values.tolist()


@pytest.mark.parametrize("max_level, partial, expected", [
    (1, False, (0, 1, 100, 201)),
    (2, False, (0, 1, 2, 100, 201, 202)),
    (2, True, (0, 1, 2, 100, 101, 102, 201, 202)),
])
def test_levels_and_partial_vertebrae_select_values(max_level, partial, expected):
    class_map = ClassMap.from_levels(max_level=max_level, partial_vertebrae=partial)
    assert class_map.values == expected
    assert class_map.names[:2] == ("background", "L5")
    assert class_map.names[-1] == ("L4/L5" if max_level == 2 else "L5/S1")


def test_groups_follow_the_label_map():
    class_map = ClassMap.from_levels(max_level=2, partial_vertebrae=True)
    assert class_map.classes_in_group(labels.Group.VERTEBRAE) == (1, 2)
    assert class_map.classes_in_group(labels.Group.SPINAL_CANAL) == (3,)
    assert class_map.classes_in_group(labels.Group.PARTIAL_VERTEBRAE) == (4, 5)
    assert class_map.classes_in_group(labels.Group.DISCS) == (6, 7)
    assert class_map.group(0) is None


def test_mask_volume_round_trips_exactly():
    class_map = ClassMap.from_levels(max_level=5, partial_vertebrae=False)
    rng = np.random.default_rng(0)
    mask = rng.choice(np.array(class_map.values, dtype=np.int16), size=(4, 5, 6))
    assert np.array_equal(class_map.decode(class_map.encode(mask)), mask)
    assert class_map.encode(mask).dtype == np.uint8


def test_value_without_a_class_names_the_config_key():
    class_map = ClassMap.from_levels(max_level=2, partial_vertebrae=False)
    with pytest.raises(UnknownLabelError, match=r"\[3\].*max_level"):
        class_map.encode(np.array([0, 1, 3]))
    with pytest.raises(UnknownLabelError, match=r"not SPIDER labels: \[26, 300\]"):
        class_map.encode(np.array([0, 26, 300]))
    with pytest.raises(UnknownLabelError, match="integer"):
        class_map.encode(np.array([0.0, 1.0]))


def test_decode_rejects_indices_out_of_range():
    class_map = ClassMap.from_levels(max_level=1, partial_vertebrae=False)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        class_map.decode(np.array([0, 4]))


@pytest.mark.parametrize("values, message", [
    ((1, 2), "background"),
    ((0, 1, 1), "repeated"),
    ((0, 26), "SPIDER labels"),
])
def test_invalid_class_values(values, message):
    with pytest.raises(BaselineConfigError, match=message):
        ClassMap(values)


@pytest.mark.parametrize("max_level", [0, 26, True, 2.0])
def test_invalid_max_level(max_level):
    with pytest.raises(BaselineConfigError, match="max_level"):
        ClassMap.from_levels(max_level=max_level, partial_vertebrae=False)


def test_map_by_group_folds_levels_into_classes_and_keeps_l5_s1_apart():
    class_map = ClassMap.from_groups(partial_vertebrae=True)
    assert class_map.values == (0, 1, 100, 101, 201, 202) and not class_map.by_level
    assert class_map.names == (
        "background", "vertebrae", "spinal_canal", "partial_vertebrae", "discs L5/S1", "discs from L4/L5"
    )
    mask = np.array([0, 1, 7, 25, 100, 103, 125, 201, 202, 209, 225], dtype=np.uint8)
    assert class_map.encode(mask).tolist() == [0, 1, 1, 1, 2, 3, 3, 4, 5, 5, 5]
    assert class_map.decode(class_map.encode(mask)).tolist() == [0, 1, 1, 1, 100, 101, 101, 201, 202, 202, 202]


def test_map_by_group_classes_cover_the_levels_up_to_the_next_class():
    class_map = ClassMap((0, 1, 3, 201), by_level=False)
    assert class_map.encode(np.array([1, 2, 3, 9, 205], dtype=np.uint8)).tolist() == [1, 1, 2, 2, 3]
    assert class_map.names == ("background", "vertebrae L5 to L4", "vertebrae from L3", "discs")


def test_map_by_group_without_partial_vertebrae_names_them_as_unmapped():
    class_map = ClassMap.from_groups(partial_vertebrae=False)
    assert class_map.values == (0, 1, 100, 201, 202)
    with pytest.raises(UnknownLabelError, match=r"without a training class: \[104\]"):
        class_map.encode(np.array([0, 3, 104], dtype=np.uint8))


def test_map_by_group_must_cover_every_level():
    with pytest.raises(BaselineConfigError, match=r"lowest class must be its level-1 value.*found \[2\]"):
        ClassMap((0, 2, 100), by_level=False)
