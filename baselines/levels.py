"""Name vertebra and disc levels by counting up from the sacrum, as a radiologist does.

A network that sees a window of a few vertebrae at a time outlines them well but cannot tell
L3 from L4: every lumbar vertebra looks alike. SPIDER's series always show the sacrum, and the
sacrum is never labelled, so the lowest disc with a vertebra on it is L5/S1 (201), and
vertebra k sits on disc k. This step keeps the network's outlines and renames the levels:

1. only the spine is kept: the largest connected piece of vertebrae, discs and canal (and any
   piece at least half as large), and the largest piece of canal even where the network left a
   gap between canal and bone; blobs elsewhere in the body are removed (measured on the demo's
   test set: Dice of vertebrae 0.61 -> 0.67, of the canal 0.70 -> 0.81);
2. disc voxels are grouped into discs by height: pieces of one disc lie within a few
   millimetres of each other, two discs a vertebral body apart. Groups much smaller than the
   largest are noise and are removed, and so is a disc squeezed between two others at well
   under the usual spacing (a bright patch inside a vertebral body);
3. L5/S1 is the disc with the most voxels the network calls L5/S1 (201), among those it calls
   so for a good share of their voxels; a network
   that names no level (classes by group) is trained to mark just that disc, since the sacrum
   below it is what tells it apart. Without such a vote, discs with no vertebra on them at the
   bottom are taken for sacral remnants (S1/S2 often looks like a disc). Discs below L5/S1 are
   removed, and the others count up from it (a gap of about two disc spacings counts the disc
   it hides, so one missed disc does not shift every level above it);
4. each disc's mid-plane (its centroid and, when the disc is clearly flat, its thinnest
   direction) splits the spine: a vertebra voxel above the mid-planes of discs 1..k belongs to
   vertebra k; below disc 1 is the sacrum, which is not segmented, so vertebra voxels there
   are removed;
5. each vertebra component takes the level most of its voxels have, unless it clearly spans
   several levels (touching vertebrae), then its voxels keep their own.

Partial vertebrae (101-125) stay partial. Without any disc the network's names are kept:
there is nothing to count from.
This module needs only numpy and SimpleITK: it runs inside the reference container.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from challenge import labels
from challenge.geometry import Geometry

LEVEL_NAMING = ("network", "count-from-sacrum")
MIN_SPINE_FRACTION = 0.5  # of the largest piece of spine: smaller pieces are not spine
SAME_DISC_MM = 10.0  # disc pieces closer in height are one disc; adult discs are >= 20 mm apart
MIN_DISC_FRACTION = 0.15  # of the largest disc: smaller groups of disc voxels are noise
MIN_ANCHOR_VOTE = 0.3  # share of a disc's voxels called L5/S1 that makes it a candidate for L5/S1
MIN_VERTEBRA_ON_DISC = 0.25  # of the median vertebra volume per disc: less means a sacral disc
SOLID_DISC_SHARE = 0.5  # of the median disc volume: the discs that set the usual spacing
SAME_DISC_GAP = 0.35  # a disc this close (in usual spacings) to a larger one is a piece of it
MIN_GAP_SHARE = 0.65  # ... and one closer than this, but not that close, is an extra
FLAT_DISC_RATIO = 0.5  # a disc is flat when its thickness is under this share of its depth
MAX_DISC_TILT_COS = 0.7  # mid-plane normals tilted more than about 45 degrees are not trusted
WIDE_GAP = 1.3  # gaps this many median spacings or more may hide a missed disc
MERGED_SHARE = 0.75  # a vertebra component whose main level holds less is split per voxel


@dataclass(frozen=True)
class Disc:
    """Disc voxels grouped as one disc: their indices, centroid and mid-plane normal (mm)."""

    voxels: np.ndarray  # (n, 3) array indices
    centroid: np.ndarray
    normal: np.ndarray
    height: float


def superior_direction(grid: Geometry) -> np.ndarray:
    """Unit vector pointing superior in (z, y, x) array-index millimetres of `grid`."""
    direction = grid.direction_matrix  # columns: physical direction of index axes x, y, z
    superior_xyz = direction[2, :]  # LPS: the third physical axis points superior
    return np.asarray(superior_xyz[::-1], dtype=float)


def count_from_sacrum(values_zyx: np.ndarray, grid: Geometry) -> np.ndarray:
    """SPIDER values on `grid` with the levels renamed by counting discs from the sacrum up."""
    values_zyx = np.asarray(values_zyx)
    masks = _group_masks(values_zyx)
    if not masks[0].any():
        return values_zyx.copy()
    labelled = masks[3].copy()
    canal = values_zyx == labels.SPINAL_CANAL
    masks &= _spine(labelled, canal)[None]
    disc_mask, vertebra_mask, partial_mask, spine = masks
    if not disc_mask.any():
        return np.where(labelled & ~spine, 0, values_zyx).astype(values_zyx.dtype)
    spacing_zyx = np.asarray(grid.spacing_mm[::-1], dtype=float)
    superior = superior_direction(grid)

    discs = _discs(disc_mask, spacing_zyx, superior)
    vertebra_components, _sizes = _components(vertebra_mask)
    vertebra_voxels = np.argwhere(vertebra_mask)  # every vertebra voxel, in one pass
    components = vertebra_components[tuple(vertebra_voxels.T)]
    discs = _from_lowest_lumbar_disc(discs, values_zyx, vertebra_voxels * spacing_zyx)
    disc_levels = _levels_with_gaps(np.array([disc.height for disc in discs]))

    result = np.where(labelled & ~(spine & canal), 0, values_zyx).astype(values_zyx.dtype)
    for disc, level in zip(discs, disc_levels, strict=True):
        result[tuple(disc.voxels.T)] = labels.disc_value(min(level, labels.MAX_LEVEL))
    if len(vertebra_voxels):
        levels_here = _component_levels(components, _levels_above(vertebra_voxels * spacing_zyx, discs, disc_levels))
        # A piece is a component's voxels of one level: partial when most of its voxels are.
        pieces = components * (int(levels_here.max()) + 1) + levels_here
        partial_share = (np.bincount(pieces, weights=partial_mask[tuple(vertebra_voxels.T)])
                         / np.maximum(np.bincount(pieces), 1))
        offset = np.where(partial_share[pieces] > 0.5, labels.PARTIAL_VERTEBRA_OFFSET, 0)
        named = levels_here > 0
        result[tuple(vertebra_voxels[named].T)] = np.minimum(levels_here[named], labels.MAX_LEVEL) + offset[named]
    return result


def _group_masks(values: np.ndarray) -> np.ndarray:
    """Boolean masks (disc, any vertebra, partial vertebra, any structure) stacked on a first axis."""
    lut = np.zeros((4, 256), dtype=bool)
    for value, structure in labels.LABEL_MAP.items():
        lut[0, value] = structure.group is labels.Group.DISCS
        lut[1, value] = structure.group in (labels.Group.VERTEBRAE, labels.Group.PARTIAL_VERTEBRAE)
        lut[2, value] = structure.group is labels.Group.PARTIAL_VERTEBRAE
        lut[3, value] = True
    return lut[:, values.astype(np.intp)]


def _spine(structures: np.ndarray, canal: np.ndarray) -> np.ndarray:
    """The largest connected piece of labelled voxels, any piece at least half as large, and the
    largest piece of canal, touching the rest or not (step 1)."""
    spine = _largest_pieces(structures, MIN_SPINE_FRACTION)
    if canal.any():
        spine |= _largest_pieces(canal, 1.0)
    return spine


def _largest_pieces(mask: np.ndarray, fraction: float) -> np.ndarray:
    """The pieces of `mask` (touching by a corner counts) at least `fraction` of the largest."""
    components, sizes = _components(mask, full_connectivity=True)
    keep = sizes >= fraction * sizes.max()
    keep[0] = False
    return keep[components]


def _components(mask: np.ndarray, *, full_connectivity: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Connected components (0 = outside; face-connected unless `full_connectivity`) and the
    voxel count of each (index 0 unused)."""
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    components = sitk.GetArrayFromImage(sitk.ConnectedComponent(image, full_connectivity))
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components, sizes


def _discs(disc_mask: np.ndarray, spacing_zyx: np.ndarray, superior: np.ndarray) -> list[Disc]:
    """The discs among the disc voxels, bottom first (step 2 of the module's docstring).

    A few passes over the disc voxels whatever their number of pieces: each piece's height from
    one weighted count, the grouping by height on those numbers alone, the voxels of the kept
    groups gathered by one sort.
    """
    components, sizes = _components(disc_mask)
    voxels = np.argwhere(disc_mask)
    owner = components[tuple(voxels.T)]
    summed = np.bincount(owner, weights=(voxels * spacing_zyx) @ superior, minlength=len(sizes))[1:]
    heights = summed / np.maximum(sizes[1:], 1)
    group_of = np.zeros(len(sizes), dtype=np.int64)  # component -> group (1-based; 0 for outside)
    volumes: list[int] = []
    group_weight = group_sum = 0.0
    for index in np.argsort(heights):
        size, height = int(sizes[index + 1]), float(heights[index])
        if volumes and abs(height - group_sum / group_weight) < SAME_DISC_MM:
            volumes[-1] += size
            group_weight, group_sum = group_weight + size, group_sum + size * height
        else:
            volumes.append(size)
            group_weight, group_sum = float(size), size * height
        group_of[index + 1] = len(volumes)
    if not volumes:
        return []
    kept = [g + 1 for g, volume in enumerate(volumes) if volume >= MIN_DISC_FRACTION * max(volumes)]
    groups = group_of[owner]
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(len(volumes) + 2))
    discs = [_disc(voxels[order[bounds[g]:bounds[g + 1]]], spacing_zyx, superior) for g in kept]
    return _without_extra_discs(discs, spacing_zyx, superior)


def _disc(voxels: np.ndarray, spacing_zyx: np.ndarray, superior: np.ndarray) -> Disc:
    points_mm = voxels * spacing_zyx
    centroid = points_mm.mean(axis=0)
    return Disc(voxels=voxels, centroid=centroid, normal=_mid_plane_normal(points_mm, superior),
                height=float(centroid @ superior))


def _without_extra_discs(discs: list[Disc], spacing_zyx: np.ndarray, superior: np.ndarray) -> list[Disc]:
    """The discs that keep the usual spacing; pieces of a disc merged into it, extras removed.

    The usual spacing is the median gap between the solid discs (at least half the median disc
    volume: noise and the pieces of a split disc are small). Discs are then taken largest first; one closer than
    `MIN_GAP_SHARE` spacings to a disc already taken is a piece of that disc when very close,
    else an extra (a bright patch inside a vertebral body).
    """
    if len(discs) < 3:
        return discs
    volumes = np.array([len(disc.voxels) for disc in discs])
    solid_volume = SOLID_DISC_SHARE * np.median(volumes)
    solid = [disc for disc, volume in zip(discs, volumes, strict=True) if volume >= solid_volume]
    if len(solid) < 2:
        return discs
    spacing = float(np.median(np.diff(sorted(disc.height for disc in solid))))
    taken: list[list[np.ndarray]] = []
    heights: list[float] = []
    for disc in sorted(discs, key=lambda disc: len(disc.voxels), reverse=True):
        distances = np.abs(np.array(heights) - disc.height)
        if not heights or distances.min() >= MIN_GAP_SHARE * spacing:
            taken.append([disc.voxels])
            heights.append(disc.height)
        elif distances.min() < SAME_DISC_GAP * spacing:
            taken[int(np.argmin(distances))].append(disc.voxels)
    merged = [_disc(np.concatenate(parts), spacing_zyx, superior) for parts in taken]
    return sorted(merged, key=lambda disc: disc.height)


def _mid_plane_normal(points_mm: np.ndarray, superior: np.ndarray) -> np.ndarray:
    """A disc's mid-plane normal: its thinnest direction, turned to point superior.

    A blob that is not clearly flat, or whose thin direction is tilted far from the spine's
    axis, says nothing about the plane: the straight superior direction is used then.
    """
    if len(points_mm) < 4:
        return superior
    values, vectors = np.linalg.eigh(np.cov((points_mm - points_mm.mean(axis=0)).T))
    thickness, depth = np.sqrt(np.maximum(values[:2], 0.0))
    normal = vectors[:, 0]
    if thickness >= FLAT_DISC_RATIO * depth or abs(normal @ superior) < MAX_DISC_TILT_COS:
        return superior
    return normal if normal @ superior > 0 else -normal


def _from_lowest_lumbar_disc(discs: list[Disc], values: np.ndarray, vertebra_points_mm: np.ndarray) -> list[Disc]:
    """The discs from L5/S1 upwards (step 3): the one the network calls L5/S1, or else the
    lowest one with a vertebra on it."""
    if len(discs) < 2:
        return discs
    votes = [int(np.count_nonzero(values[tuple(disc.voxels.T)] == labels.disc_value(1))) for disc in discs]
    candidates = [k for k, disc in enumerate(discs) if votes[k] >= MIN_ANCHOR_VOTE * len(disc.voxels)]
    if candidates:
        return discs[max(candidates, key=lambda k: votes[k]):]
    if not len(vertebra_points_mm):
        return discs
    between = _levels_above(vertebra_points_mm, discs, list(range(1, len(discs) + 1)))
    on_disc = np.bincount(between, minlength=len(discs) + 1)[1:]  # vertebra voxels resting on each disc
    typical = float(np.median(on_disc))
    first = next((k for k, volume in enumerate(on_disc) if volume >= MIN_VERTEBRA_ON_DISC * typical), 0)
    return discs[first:]


def _levels_with_gaps(heights: np.ndarray) -> list[int]:
    """Levels of discs at `heights` (ascending): 1, 2, ... with the levels a wide gap hides.

    The usual spacing is the median of the gaps that are not themselves wide (a missed disc
    doubles a gap); each gap then counts as its rounded number of spacings.
    """
    if len(heights) < 3:
        return list(range(1, len(heights) + 1))
    gaps = np.diff(heights)
    typical = float(np.median(gaps))
    typical = float(np.median(gaps[gaps < WIDE_GAP * typical]))
    levels = [1]
    for gap in gaps:
        levels.append(levels[-1] + max(1, int(round(gap / typical))))
    return levels


def _levels_above(points_mm: np.ndarray, discs: list[Disc], disc_levels: list[int]) -> np.ndarray:
    """For each point, the level of the highest disc whose mid-plane it lies above (0: none)."""
    levels = np.zeros(len(points_mm), dtype=np.int64)
    for disc, level in zip(discs, disc_levels, strict=True):
        above = (points_mm - disc.centroid) @ disc.normal > 0
        levels = np.where(above, np.maximum(levels, level), levels)
    return levels


def _component_levels(components: np.ndarray, voxel_levels: np.ndarray) -> np.ndarray:
    """Per voxel: its component's main level, or its own where the component spans several levels
    (its main level holds less than MERGED_SHARE of it). One count over (component, level) pairs."""
    width = int(voxel_levels.max()) + 1
    counts = np.bincount(components * width + voxel_levels,
                         minlength=(int(components.max()) + 1) * width).reshape(-1, width)
    main = np.argmax(counts, axis=1)
    merged = counts[np.arange(len(counts)), main] < MERGED_SHARE * counts.sum(axis=1)
    return np.where(merged[components], voxel_levels, main[components])
