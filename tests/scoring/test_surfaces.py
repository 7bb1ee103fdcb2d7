"""Surface voxels and surface distances: hand-computed values on uneven spacing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from evaluation.surfaces import (
    METHODS,
    average_symmetric_surface_distance_mm,
    hausdorff_percentile_mm,
    normalized_surface_dice,
    surface_distances,
    surface_voxels,
)

from .conftest import SPACING_ZYX, box_pair


def _blobs(seed: int, shape=(9, 14, 11)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5


@pytest.mark.parametrize("connectivity", [1, 3])
@pytest.mark.parametrize("seed", range(4))
def test_surface_voxels_equal_mask_minus_scipy_erosion(connectivity, seed):
    mask = _blobs(seed)
    mask[0, 3, 3] = True  # a voxel on the image border is a surface voxel
    footprint = ndimage.generate_binary_structure(3, connectivity)
    expected = mask & ~ndimage.binary_erosion(mask, structure=footprint, border_value=0)
    np.testing.assert_array_equal(surface_voxels(mask, connectivity=connectivity), expected)


def test_full_connectivity_finds_more_surface_than_face_connectivity():
    mask = np.zeros((7, 7, 7), dtype=bool)
    mask[1:6, 1:6, 1:6] = True
    mask[3, 1, 1] = False  # a notch on an edge: its diagonal neighbours become surface only at connectivity 3
    face, full = surface_voxels(mask, connectivity=1), surface_voxels(mask, connectivity=3)
    assert (face & ~full).sum() == 0
    assert full[3, 2, 2] and not face[3, 2, 2]


def test_rejects_unknown_connectivity():
    with pytest.raises(ValueError, match="connectivity"):
        surface_voxels(np.ones((3, 3, 3), bool), connectivity=2)


# Two 4x4x4 cubes, one moved one voxel along the coarse z axis (3.0 mm); y 0.5 mm, x 0.7 mm.
# Each cube has 56 surface voxels. From the moved cube to the other: its 16 voxels of the top
# layer are one z step (3.0 mm) away, the 4 inner voxels of its bottom layer are one y step
# (0.5 mm) from the other cube's side faces, the remaining 36 lie on the other surface (0 mm).
# The other direction is the mirror image.
_DIRECTED = np.sort(np.array([3.0] * 16 + [0.5] * 4 + [0.0] * 36))


@pytest.mark.parametrize("method", METHODS)
def test_hand_computed_directed_distances_of_boxes_offset_along_coarse_axis(method):
    reference, prediction = box_pair(offset_z=1)
    distances = surface_distances(reference, prediction, SPACING_ZYX, method=method)
    np.testing.assert_allclose(np.sort(distances.prediction_to_reference_mm), _DIRECTED, atol=1e-6)
    np.testing.assert_allclose(np.sort(distances.reference_to_prediction_mm), _DIRECTED, atol=1e-6)


def test_hand_computed_assd_hd95_nsd_of_boxes_offset_along_coarse_axis():
    reference, prediction = box_pair(offset_z=1)
    distances = surface_distances(reference, prediction, SPACING_ZYX)
    assert average_symmetric_surface_distance_mm(distances) == pytest.approx(2 * (16 * 3.0 + 4 * 0.5) / 112, abs=1e-6)
    assert hausdorff_percentile_mm(distances, percentile=95) == pytest.approx(3.0, abs=1e-6)
    # 95th percentile of 56 sorted values sits at index 52.25: inside the 3.0 mm block (40..55);
    # the 65th percentile (index 35.75) lies 3/4 of the way from the last 0 (35) to the first 0.5 (36).
    assert hausdorff_percentile_mm(distances, percentile=65) == pytest.approx(0.375, abs=1e-6)
    assert normalized_surface_dice(distances, tolerance_mm=1.5) == pytest.approx(80 / 112, abs=1e-9)
    assert normalized_surface_dice(distances, tolerance_mm=0.4) == pytest.approx(72 / 112, abs=1e-9)
    # A tolerance equal to a distance counts it as within (ties are inside).
    assert normalized_surface_dice(distances, tolerance_mm=3.0) == pytest.approx(1.0)
    assert normalized_surface_dice(distances, tolerance_mm=0.5) == pytest.approx(80 / 112)


def test_spacing_is_taken_in_array_axis_order():
    reference, prediction = box_pair(offset_z=1)
    swapped = SPACING_ZYX[::-1]  # SimpleITK's (x, y, z) order: the official evaluator's defect
    right = hausdorff_percentile_mm(surface_distances(reference, prediction, SPACING_ZYX))
    wrong = hausdorff_percentile_mm(surface_distances(reference, prediction, swapped))
    assert right == pytest.approx(3.0, abs=1e-6)
    assert wrong == pytest.approx(0.7, abs=1e-6)


def test_identical_masks_have_zero_distances():
    reference, _ = box_pair()
    distances = surface_distances(reference, reference, SPACING_ZYX)
    assert average_symmetric_surface_distance_mm(distances) == 0.0
    assert hausdorff_percentile_mm(distances) == 0.0
    assert normalized_surface_dice(distances, tolerance_mm=0.0) == 1.0


def test_cropping_does_not_change_distances():
    reference, prediction = _blobs(7, (12, 16, 14)), _blobs(8, (12, 16, 14))
    padded_reference = np.pad(reference, ((3, 5), (2, 0), (0, 4)))
    padded_prediction = np.pad(prediction, ((3, 5), (2, 0), (0, 4)))
    a = surface_distances(reference, prediction, SPACING_ZYX)
    b = surface_distances(padded_reference, padded_prediction, SPACING_ZYX)
    np.testing.assert_allclose(np.sort(a.prediction_to_reference_mm), np.sort(b.prediction_to_reference_mm))
    np.testing.assert_allclose(np.sort(a.reference_to_prediction_mm), np.sort(b.reference_to_prediction_mm))


def test_distances_match_scipy_distance_transform():
    reference, prediction = _blobs(3), _blobs(4)
    distances = surface_distances(reference, prediction, SPACING_ZYX)
    reference_surface = reference & ~ndimage.binary_erosion(reference)
    prediction_surface = prediction & ~ndimage.binary_erosion(prediction)
    expected = ndimage.distance_transform_edt(~reference_surface, sampling=SPACING_ZYX)[prediction_surface]
    np.testing.assert_allclose(distances.prediction_to_reference_mm, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("which", ["reference", "prediction"])
def test_empty_mask_is_left_to_the_edge_case_rules(which):
    reference, prediction = box_pair()
    empty = np.zeros_like(reference)
    with pytest.raises(ValueError, match="non-empty"):
        if which == "reference":
            surface_distances(empty, prediction, SPACING_ZYX)
        else:
            surface_distances(reference, empty, SPACING_ZYX)


def test_rejects_mismatched_shapes_and_bad_spacing():
    reference, prediction = box_pair()
    with pytest.raises(ValueError, match="shape"):
        surface_distances(reference, prediction[:-1], SPACING_ZYX)
    with pytest.raises(ValueError, match="positive"):
        surface_distances(reference, prediction, (0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="one value per axis"):
        surface_distances(reference, prediction, (1.0, 1.0))


@pytest.mark.parametrize("connectivity", [1, 3])
@pytest.mark.parametrize("seed", range(3))
def test_kdtree_and_distance_transform_give_the_same_distances(seed, connectivity):
    reference, prediction = _blobs(10 + seed, (11, 17, 13)), _blobs(20 + seed, (11, 17, 13))
    by_tree = surface_distances(reference, prediction, SPACING_ZYX, connectivity=connectivity, method="kdtree")
    by_edt = surface_distances(reference, prediction, SPACING_ZYX, connectivity=connectivity, method="edt")
    np.testing.assert_allclose(by_tree.prediction_to_reference_mm, by_edt.prediction_to_reference_mm, atol=1e-5)
    np.testing.assert_allclose(by_tree.reference_to_prediction_mm, by_edt.reference_to_prediction_mm, atol=1e-5)


def test_unknown_method_is_rejected():
    reference, prediction = box_pair()
    with pytest.raises(ValueError, match="method"):
        surface_distances(reference, prediction, SPACING_ZYX, method="fast")


@pytest.mark.parametrize("connectivity", [1, 3])
def test_sparse_masks_get_the_same_surface_as_dense_ones(connectivity):
    from evaluation.surfaces import Surface

    mask = np.zeros((30, 40, 50), dtype=bool)
    mask[3:9, 4:12, 5:11] = _blobs(5, (6, 8, 6))
    mask[29, 0, 49] = mask[0, 39, 0] = mask[15, 20, 25] = True  # strays: the box is nearly all empty
    mask[15, 20, 26] = True
    expected = np.flatnonzero(surface_voxels(mask, connectivity=connectivity))
    sparse = Surface.of(mask, connectivity=connectivity)  # box / voxels > the sparse ratio
    assert mask.size > 64 * mask.sum()
    np.testing.assert_array_equal(sparse.indices, expected)
    dense = Surface.of(mask, connectivity=connectivity, voxel_count=mask.size)  # forces erosion of the box
    np.testing.assert_array_equal(dense.indices, expected)


def test_surfaces_of_crops_are_placed_in_the_image_grid():
    from evaluation.surfaces import Surface, distances_between

    reference, prediction = box_pair(offset_z=1)
    whole = surface_distances(reference, prediction, SPACING_ZYX)
    cropped = distances_between(
        Surface.of(reference[2:6, 2:6, 2:6], offset=(2, 2, 2), image_shape=reference.shape),
        Surface.of(prediction[3:7, 1:7, 2:6], offset=(3, 1, 2), image_shape=reference.shape),
        SPACING_ZYX,
    )
    np.testing.assert_allclose(np.sort(cropped.prediction_to_reference_mm), np.sort(whole.prediction_to_reference_mm))
    np.testing.assert_allclose(np.sort(cropped.reference_to_prediction_mm), np.sort(whole.reference_to_prediction_mm))


@pytest.mark.parametrize("offset_z", [1, 3])
def test_lattice_search_hands_far_voxels_to_the_tree(offset_z):
    reference = np.zeros((16, 10, 10), dtype=bool)
    reference[2:6, 2:6, 2:6] = True
    prediction = np.zeros_like(reference)
    prediction[2 + 3 * offset_z:6 + 3 * offset_z, 2:6, 2:6] = True  # up to 27 mm away: beyond the search radius
    rings = surface_distances(reference, prediction, SPACING_ZYX, method="rings")
    tree = surface_distances(reference, prediction, SPACING_ZYX, method="kdtree")
    np.testing.assert_allclose(rings.prediction_to_reference_mm, tree.prediction_to_reference_mm, atol=1e-9)
    np.testing.assert_allclose(rings.reference_to_prediction_mm, tree.reference_to_prediction_mm, atol=1e-9)
    assert rings.prediction_to_reference_mm.max() == pytest.approx(3.0 * 3 * offset_z)


def test_many_far_voxels_go_to_the_distance_transform_with_the_same_result():
    reference = np.zeros((20, 60, 60), dtype=bool)
    reference[2:8, 5:20, 5:20] = True
    prediction = np.zeros_like(reference)
    prediction[12:19, 30:55, 30:55] = True  # over 512 surface voxels, all far from the reference
    rings = surface_distances(reference, prediction, SPACING_ZYX, method="rings")
    transform = surface_distances(reference, prediction, SPACING_ZYX, method="edt")
    np.testing.assert_allclose(rings.prediction_to_reference_mm, transform.prediction_to_reference_mm, atol=1e-4)
    np.testing.assert_allclose(rings.reference_to_prediction_mm, transform.reference_to_prediction_mm, atol=1e-4)


@pytest.mark.timeout(60)
def test_a_label_filling_the_image_is_scored_quickly_and_exactly():
    """Far queries against the image border (the surface of a full mask) defeat a k-d tree."""
    reference = np.zeros((40, 120, 120), dtype=bool)
    reference[15:25, 50:70, 50:70] = True
    prediction = np.ones_like(reference)
    rings = surface_distances(reference, prediction, SPACING_ZYX, method="rings")
    transform = surface_distances(reference, prediction, SPACING_ZYX, method="edt")
    np.testing.assert_allclose(rings.prediction_to_reference_mm, transform.prediction_to_reference_mm, atol=1e-4)
    np.testing.assert_allclose(rings.reference_to_prediction_mm, transform.reference_to_prediction_mm, atol=1e-4)
