import pytest

from challenge import labels
from challenge.labels import Group


def test_vertebrae_are_numbered_from_l5_upward():
    assert [labels.structure(v).name for v in (1, 2, 5, 6, 17, 18, 24)] == ["L5", "L4", "L1", "T12", "T1", "C7", "C1"]
    assert all(labels.group_of(v) is Group.VERTEBRAE for v in range(1, 26))


def test_disc_is_vertebra_above_plus_200():
    assert labels.disc_value(1) == 201
    assert labels.structure(201).name == "L5/S1"
    assert labels.structure(202).name == "L4/L5"
    assert labels.structure(206).name == "T12/L1"
    for level in range(1, 26):
        disc = labels.structure(labels.disc_value(level))
        assert disc.value == labels.vertebra_value(level) + 200
        assert disc.name.split("/")[0] == labels.structure(level).name


def test_canal_and_partial_vertebrae():
    assert labels.structure(100).group is Group.SPINAL_CANAL
    assert labels.partial_vertebra_value(3) == 103
    assert labels.structure(103).group is Group.PARTIAL_VERTEBRAE
    assert labels.structure(103).level == 3


def test_label_map_covers_exactly_the_spider_values():
    expected = set(range(1, 26)) | {100} | set(range(101, 126)) | set(range(201, 226))
    assert set(labels.LABEL_MAP) == expected
    assert labels.ALLOWED_VALUES == expected | {0}
    assert list(labels.LABEL_MAP) == sorted(expected)


@pytest.mark.parametrize("value", [26, 99, 126, 200, 226, -1])
def test_unknown_values_are_named(value):
    assert labels.unknown_values([0, 1, value]) == [value]
    with pytest.raises(KeyError, match=str(value)):
        labels.structure(value)


def test_values_in_group():
    assert labels.values_in_group(Group.SPINAL_CANAL) == (100,)
    assert labels.values_in_group(Group.DISCS) == tuple(range(201, 226))
