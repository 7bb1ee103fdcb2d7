"""Name vertebra and disc levels by counting up from the sacrum, as a radiologist does.

A network that sees a window of a few vertebrae at a time outlines them well but cannot tell
L3 from L4: every lumbar vertebra looks alike. SPIDER's series always show the sacrum, and the
sacrum is never labelled, so the lowest disc is L5/S1 (201) and vertebra k sits on disc k.
This step keeps the network's outlines and renames the levels:

1. the disc voxels' connected components, bottom first, are discs 1, 2, 3 ... (a gap of about
   two disc spacings or more counts the discs it skips, so one missed disc does not shift every
   level above it);
2. each disc's mid-plane (its centroid and its thinnest direction) splits the spine: a vertebra
   voxel above the mid-planes of discs 1..k belongs to vertebra k; below disc 1 is the sacrum,
   which is not segmented;
3. each vertebra component takes the level most of its voxels have, unless it clearly spans
   several levels (touching vertebrae), then its voxels keep their own;
4. a small disc component is a disc of its own when it lies far from the others (cut by the
   edge of the field of view), else a fragment that takes the level of the nearest disc.

Partial vertebrae (101-125) stay partial. The canal is untouched. Without any disc the
network's names are kept: there is nothing to count from.
This module needs only numpy and SimpleITK: it runs inside the reference container.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from challenge import labels
from challenge.geometry import Geometry

LEVEL_NAMING = ("network", "count-from-sacrum")
MIN_DISC_FRACTION = 0.15  # of the largest disc component: smaller ones may be fragments
MIN_EDGE_DISC_FRACTION = 0.03  # ... but one at least this large, far from the others, is a disc
SKIPPED_DISC_GAP = 1.6  # a gap this many median disc spacings (or more) hides missed discs
MERGED_SHARE = 0.75  # a vertebra component whose main level holds less is split per voxel


def superior_direction(grid: Geometry) -> np.ndarray:
    """Unit vector pointing superior in (z, y, x) array-index millimetres of `grid`."""
    direction = grid.direction_matrix  # columns: physical direction of index axes x, y, z
    superior_xyz = direction[2, :]  # LPS: the third physical axis points superior
    return np.asarray(superior_xyz[::-1], dtype=float)


def count_from_sacrum(values_zyx: np.ndarray, grid: Geometry) -> np.ndarray:
    """SPIDER values on `grid` with the levels renamed by counting discs from the sacrum up."""
    values_zyx = np.asarray(values_zyx)
    scored = _group_masks(values_zyx)
    disc_mask, vertebra_mask, partial_mask = scored
    if not disc_mask.any():
        return values_zyx.copy()
    spacing_zyx = np.asarray(grid.spacing_mm[::-1], dtype=float)
    superior = superior_direction(grid)

    disc_components, disc_sizes = _components(disc_mask)
    components = range(1, len(disc_sizes))
    planes = {k: _mid_plane(np.argwhere(disc_components == k) * spacing_zyx, superior) for k in components}
    height = {k: float(planes[k][0] @ superior) for k in components}
    counted = _counted_discs(disc_sizes, height)
    counted.sort(key=height.get)
    counted_heights = np.array([height[k] for k in counted])
    disc_levels = _levels_with_gaps(counted_heights)

    result = np.where(scored.any(axis=0), 0, values_zyx).astype(values_zyx.dtype)
    for component in components:
        nearest = int(np.argmin(np.abs(counted_heights - height[component])))
        result[disc_components == component] = labels.DISC_OFFSET + disc_levels[nearest]

    vertebra_components, vertebra_sizes = _components(vertebra_mask)
    for component in range(1, len(vertebra_sizes)):
        voxels = np.argwhere(vertebra_components == component)
        voxel_levels = _levels_above(voxels * spacing_zyx, [planes[k] for k in counted], disc_levels)
        levels_here = _component_levels(voxel_levels)
        partial_here = partial_mask[tuple(voxels.T)]
        for level in np.unique(levels_here[levels_here > 0]):
            piece = voxels[levels_here == level]
            partial = partial_here[levels_here == level].mean() > 0.5
            offset = labels.PARTIAL_VERTEBRA_OFFSET if partial else 0
            result[tuple(piece.T)] = min(int(level), labels.MAX_LEVEL) + offset
    return result


def _group_masks(values: np.ndarray) -> np.ndarray:
    """Boolean masks (disc, any vertebra, partial vertebra) stacked on a first axis."""
    lut = np.zeros((3, 256), dtype=bool)
    for value, structure in labels.LABEL_MAP.items():
        lut[0, value] = structure.group is labels.Group.DISCS
        lut[1, value] = structure.group in (labels.Group.VERTEBRAE, labels.Group.PARTIAL_VERTEBRAE)
        lut[2, value] = structure.group is labels.Group.PARTIAL_VERTEBRAE
    return lut[:, values.astype(np.intp)]


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected components (0 = outside) and the voxel count of each (index 0 unused)."""
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    components = sitk.GetArrayFromImage(sitk.ConnectedComponent(image, False))
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components, sizes


def _mid_plane(points_mm: np.ndarray, superior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A disc's centroid and unit normal (its thinnest direction, turned to point superior)."""
    centroid = points_mm.mean(axis=0)
    normal = superior
    if len(points_mm) >= 4:
        _, vectors = np.linalg.eigh(np.cov((points_mm - centroid).T))
        candidate = vectors[:, 0]
        # A blob too round to have a thin direction, or a 'normal' lying in the spine's axis
        # plane, says nothing: keep the straight superior direction then.
        if abs(candidate @ superior) >= 0.5:
            normal = candidate
    return centroid, normal if normal @ superior > 0 else -normal


def _counted_discs(sizes: np.ndarray, height: dict[int, float]) -> list[int]:
    """The components that are discs of their own; the others are fragments of a counted disc.

    A large component is a disc. A small one is a disc too when it lies far from every large
    one (a disc cut by the edge of the field of view), else it is a piece of its neighbour.
    """
    largest = sizes.max()
    large = [k for k in height if sizes[k] >= MIN_DISC_FRACTION * largest]
    large_heights = np.array(sorted(height[k] for k in large))
    spacing = float(np.median(np.diff(large_heights))) if len(large) >= 2 else 0.0
    edge = [
        k
        for k in height
        if k not in large
        and sizes[k] >= MIN_EDGE_DISC_FRACTION * largest
        and spacing > 0
        and np.min(np.abs(large_heights - height[k])) > 0.5 * spacing
    ]
    return large + edge


def _levels_with_gaps(heights: np.ndarray) -> list[int]:
    """Levels of discs at `heights` (ascending): 1, 2, ... with levels skipped over wide gaps."""
    if len(heights) < 3:
        return list(range(1, len(heights) + 1))
    gaps = np.diff(heights)
    typical = float(np.median(gaps))
    levels = [1]
    for gap in gaps:
        skipped = int(round(gap / typical)) - 1 if typical > 0 and gap >= SKIPPED_DISC_GAP * typical else 0
        levels.append(levels[-1] + 1 + skipped)
    return levels


def _levels_above(points_mm: np.ndarray, planes: list[tuple[np.ndarray, np.ndarray]], disc_levels: list[int]) -> np.ndarray:
    """For each point, the level of the highest disc whose mid-plane it lies above (0: none)."""
    levels = np.zeros(len(points_mm), dtype=np.int64)
    for (centroid, normal), level in zip(planes, disc_levels):
        above = (points_mm - centroid) @ normal > 0
        levels = np.where(above, np.maximum(levels, level), levels)
    return levels


def _component_levels(voxel_levels: np.ndarray) -> np.ndarray:
    """One level for the whole component, or each voxel's own when it spans two levels."""
    counts = np.bincount(voxel_levels)
    main = int(np.argmax(counts))
    if counts[main] < MERGED_SHARE * len(voxel_levels):
        return voxel_levels
    return np.full_like(voxel_levels, main)
