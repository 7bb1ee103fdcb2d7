"""Surface voxels of binary masks and the distances between two surfaces, computed once.

The distances follow MONAI's `get_edge_surface_distance` (surface = mask XOR its erosion, the
image border counting as outside; distance from each surface voxel of one mask to the nearest
surface voxel of the other). Surfaces are kept as voxel lists of the image grid, so a structure
is handled on its own box. A voxel on both surfaces is 0 mm away and never searched. Three exact
methods give the other distances (they differ in float rounding only, below 1e-6 mm):

- `rings` (the default): look lattice offsets up nearest first in a boolean box around the
  other surface; the first hit is the exact distance. Most surface voxels of a segmentation lie
  within a few voxels of the other surface, so this takes a handful of look-ups each. Voxels
  beyond the search radius go to a k-d tree when they are few, else to the distance transform of
  their box, whose cost does not depend on the shapes (a k-d tree answers far queries against a
  large flat surface, such as the border of a label that fills the image, in milliseconds each).
- `kdtree`: a k-d tree over one surface's voxel centres in mm (MONAI 1.6 does the same on CPU).
- `edt`: the `edt` package's distance transform of the box around both surfaces, on a uint8 view
  (several times slower on bool). The transform is a nearest-feature distance, so the crop
  changes no distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import edt
import numpy as np
from scipy.spatial import cKDTree

_CONNECTIVITIES = (1, 3)


def surface_voxels(mask: np.ndarray, *, connectivity: int = 1) -> np.ndarray:
    """The voxels of a 3D boolean `mask` with a neighbour outside it (outside the array counts).

    connectivity 1: the 6 face neighbours (scipy's default erosion, as MONAI uses);
    connectivity 3: all 26 neighbours (the official SPIDER evaluator's full connectivity).
    """
    if mask.ndim != 3:
        raise ValueError(f"expected a 3D mask, found {mask.ndim}D")
    if connectivity not in _CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {_CONNECTIVITIES}, found {connectivity}")
    mask = np.asarray(mask, dtype=bool)
    eroded = mask.copy()
    # Erode in place; voxels on the array border lose their outside neighbour (outside counts as
    # not in the mask), without a padded copy of the mask.
    for axis in range(3):
        if connectivity == 1:
            eroded[_along(axis, slice(1, None))] &= mask[_along(axis, slice(None, -1))]
            eroded[_along(axis, slice(None, -1))] &= mask[_along(axis, slice(1, None))]
        else:
            # The 3x3x3 cube erosion is separable: a 3-wide minimum along each axis in turn.
            both = eroded[_along(axis, slice(None, -2))] & eroded[_along(axis, slice(2, None))]
            eroded[_along(axis, slice(1, -1))] &= both
        eroded[_along(axis, slice(0, 1))] = False
        eroded[_along(axis, slice(-1, None))] = False
    np.invert(eroded, out=eroded)
    eroded &= mask
    return eroded


def _along(axis: int, part: slice) -> tuple[slice, ...]:
    index = [slice(None)] * 3
    index[axis] = part
    return tuple(index)


def distance_to_surface_mm(
    surface: np.ndarray, spacing_zyx_mm: tuple[float, float, float] | np.ndarray
) -> np.ndarray:
    """For every voxel, the Euclidean distance in mm to the nearest voxel of `surface` (float32).

    `surface` must hold at least one voxel. The transform runs on a uint8 view (the `edt`
    package is several times slower on bool input) on one thread.
    """
    if not surface.any():
        raise ValueError("the distance to an empty surface is undefined")
    return _edt_mm(np.ascontiguousarray(~surface).view(np.uint8), spacing_zyx_mm)


def _edt_mm(background: np.ndarray, spacing_zyx_mm) -> np.ndarray:
    """`edt` on a uint8 array that is 0 on the features, on one thread."""
    return edt.edt(background, anisotropy=tuple(float(s) for s in spacing_zyx_mm), black_border=False, parallel=1)


# A mask whose box holds more than this many voxels per mask voxel has its surface found from
# its voxel list (cost per mask voxel) instead of by erosion of the box (cost per box voxel): a
# few stray voxels far from a structure must not make it cost as much as the whole image.
_SPARSE_BOX_RATIO = 64


def _neighbour_offsets(connectivity: int) -> list[tuple[int, int, int]]:
    steps = (-1, 0, 1)
    return [(a, b, c) for a in steps for b in steps for c in steps
            if (a, b, c) != (0, 0, 0) and abs(a) + abs(b) + abs(c) <= (1 if connectivity == 1 else 3)]


def _sparse_surface(voxels: np.ndarray, shape: tuple[int, ...], connectivity: int) -> np.ndarray:
    """Of the sorted linear indices `voxels` of a mask in a box of `shape`, those on its surface."""
    coordinates = np.unravel_index(voxels, shape)
    on_surface = np.zeros(voxels.size, dtype=bool)
    for offset in _neighbour_offsets(connectivity):
        moved = [c + d for c, d in zip(coordinates, offset, strict=True)]
        inside = np.ones(voxels.size, dtype=bool)
        for axis, (c, n) in enumerate(zip(moved, shape, strict=True)):
            if offset[axis]:
                inside &= (c >= 0) & (c < n)
        neighbour = np.ravel_multi_index([np.clip(c, 0, n - 1) for c, n in zip(moved, shape, strict=True)], shape)
        position = np.minimum(np.searchsorted(voxels, neighbour), voxels.size - 1)
        on_surface |= ~(inside & (voxels[position] == neighbour))
    return voxels[on_surface]


@dataclass(frozen=True)
class Surface:
    """The surface voxels of one mask: sorted linear indices (C order) into the image grid `shape`."""

    indices: np.ndarray
    shape: tuple[int, ...]

    @classmethod
    def of(
        cls,
        mask: np.ndarray,
        *,
        offset: tuple[int, ...] = (0, 0, 0),
        image_shape: tuple[int, ...] | None = None,
        connectivity: int = 1,
        voxel_count: int | None = None,
    ) -> "Surface":
        """The surface of `mask`, a crop at `offset` of an image of `image_shape` (default: the
        crop is the image) that holds the whole mask. `voxel_count`, when known, saves a count."""
        if connectivity not in _CONNECTIVITIES:
            raise ValueError(f"connectivity must be one of {_CONNECTIVITIES}, found {connectivity}")
        image_shape = tuple(mask.shape) if image_shape is None else tuple(image_shape)
        count = int(np.count_nonzero(mask)) if voxel_count is None else int(voxel_count)
        if count and mask.size > _SPARSE_BOX_RATIO * count:
            local = _sparse_surface(np.flatnonzero(mask), mask.shape, connectivity)
        else:
            local = np.flatnonzero(surface_voxels(mask, connectivity=connectivity))
        if tuple(offset) == (0,) * mask.ndim and image_shape == tuple(mask.shape):
            return cls(local.astype(np.int64, copy=False), image_shape)
        coordinates = [c + o for c, o in zip(np.unravel_index(local, mask.shape), offset, strict=True)]
        return cls(np.ravel_multi_index(coordinates, image_shape).astype(np.int64, copy=False), image_shape)

    @property
    def count(self) -> int:
        return int(self.indices.size)

    def coordinates(self) -> np.ndarray:
        """(n, 3) voxel indices in the image grid, in the order of `indices` (computed once, read-only)."""
        return self._coordinates

    @cached_property
    def _coordinates(self) -> np.ndarray:
        coordinates = np.stack(np.unravel_index(self.indices, self.shape), axis=1)
        coordinates.setflags(write=False)
        return coordinates

    def points_mm(self, spacing: np.ndarray) -> np.ndarray:
        """Voxel centres in mm, in the order of `indices`."""
        return self.coordinates() * spacing

    def also_in(self, other: "Surface") -> np.ndarray:
        """For each of this surface's voxels, whether it is also a voxel of `other`."""
        if other.count == 0 or self.count == 0:
            return np.zeros(self.count, dtype=bool)
        position = np.minimum(np.searchsorted(other.indices, self.indices), other.count - 1)
        return other.indices[position] == self.indices

    def box(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(start, stop) of the bounding box of the surface voxels."""
        coordinates = self.coordinates()
        return tuple(int(v) for v in coordinates.min(axis=0)), tuple(int(v) + 1 for v in coordinates.max(axis=0))

    def placed(self, start: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
        """This surface drawn into a box of `shape` whose first voxel is `start` in the image."""
        canvas = np.zeros(shape, dtype=bool)
        canvas[tuple((self.coordinates() - np.asarray(start)).T)] = True
        return canvas


@dataclass(frozen=True)
class SurfaceDistances:
    """The directed surface distances (mm) between a prediction and a reference mask.

    `prediction_to_reference_mm[i]` is the distance from the i-th surface voxel of the prediction
    to the nearest surface voxel of the reference, and the other way round. Both masks were
    non-empty, so both arrays hold at least one value.
    """

    prediction_to_reference_mm: np.ndarray
    reference_to_prediction_mm: np.ndarray

    @property
    def count(self) -> int:
        return int(self.prediction_to_reference_mm.size + self.reference_to_prediction_mm.size)


METHODS = ("rings", "kdtree", "edt")

# The lattice search visits about this many offsets (all those within a radius) before it hands
# the voxels it has not resolved to the fallback.
_RINGS_OFFSETS = 200
# Voxels beyond the search radius are few in a real segmentation (stray islands). A k-d tree
# answers them in microseconds when the surface they are measured to is a closed anatomical
# surface (measured 3-10 us each up to 170,000 surface voxels), but in milliseconds each against
# a large flat surface (the image border, when a label fills the image). The distance transform
# of their box costs ~30 ns per box voxel whatever the shapes. The tree is used when the surface
# is at most this large and the tree's estimate is below the transform's.
_TREE_MAX_TARGET_VOXELS = 300_000
_TREE_NS_PER_FAR_QUERY = 10_000.0
_EDT_NS_PER_VOXEL = 30.0


def _ring_offsets(spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lattice offsets (n, 3) within the search radius, nearest first, their lengths in mm, and
    the radius's reach in voxels per axis (the look-up box's padding)."""
    radius = (_RINGS_OFFSETS * float(np.prod(spacing)) * 3.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
    radius = max(radius, 1.01 * float(spacing.max()))  # reach the next slice of a thick-slice series
    reach = np.floor(radius / spacing).astype(int)
    axes = [np.arange(-h, h + 1) for h in reach]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    lengths = np.sqrt(((grid * spacing) ** 2).sum(axis=1))
    keep = (lengths <= radius) & (lengths > 0)
    order = np.argsort(lengths[keep], kind="stable")
    return grid[keep][order], lengths[keep][order], reach


def _check_spacing(spacing_zyx_mm, ndim: int) -> np.ndarray:
    spacing = np.asarray(spacing_zyx_mm, dtype=np.float64)
    if spacing.shape != (ndim,):
        raise ValueError(f"spacing {tuple(spacing_zyx_mm)} does not have one value per axis ({ndim})")
    if not np.all(np.isfinite(spacing)) or spacing.min() <= 0:
        raise ValueError(f"spacing must be positive, found {tuple(spacing_zyx_mm)}")
    return spacing


def distances_between(
    reference: Surface,
    prediction: Surface,
    spacing_zyx_mm: tuple[float, float, float],
    *,
    method: str = "rings",
) -> SurfaceDistances:
    """Directed distances between two non-empty surfaces of one image grid.

    `method` is "rings" (the default: a nearest-first lattice search around the other surface,
    with a bounded fallback for the voxels beyond its radius), "kdtree" or "edt" (a distance
    transform of the box around both). All are exact; they differ in float rounding only
    (below 1e-6 mm).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, found {method!r}")
    spacing = _check_spacing(spacing_zyx_mm, len(reference.shape))
    if reference.shape != prediction.shape:
        raise ValueError(f"surfaces of different grids: {reference.shape} and {prediction.shape}")
    if reference.count == 0 or prediction.count == 0:
        raise ValueError("surface distances need two non-empty masks")
    prediction_on_reference = prediction.also_in(reference)
    reference_on_prediction = reference.also_in(prediction)
    (reference_start, reference_stop), (prediction_start, prediction_stop) = reference.box(), prediction.box()
    low = tuple(min(a, b) for a, b in zip(reference_start, prediction_start, strict=True))
    high = tuple(max(a, b) for a, b in zip(reference_stop, prediction_stop, strict=True))
    shape = tuple(h - lo for lo, h in zip(low, high, strict=True))
    if method == "edt":
        reference_voxels = reference.placed(low, shape)
        prediction_voxels = prediction.placed(low, shape)
        to_reference = distance_to_surface_mm(reference_voxels, spacing)[prediction_voxels]
        to_prediction = distance_to_surface_mm(prediction_voxels, spacing)[reference_voxels]
    elif method == "rings":
        to_reference = _ring_search_mm(reference, prediction, ~prediction_on_reference, spacing)
        to_prediction = _ring_search_mm(prediction, reference, ~reference_on_prediction, spacing)
    else:
        reference_points = reference.points_mm(spacing)
        prediction_points = prediction.points_mm(spacing)
        to_reference = _nearest_mm(reference_points, prediction_points, ~prediction_on_reference)
        to_prediction = _nearest_mm(prediction_points, reference_points, ~reference_on_prediction)
    return SurfaceDistances(
        prediction_to_reference_mm=np.asarray(to_reference, dtype=np.float64),
        reference_to_prediction_mm=np.asarray(to_prediction, dtype=np.float64),
    )


def surface_distances(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    *,
    connectivity: int = 1,
    method: str = "rings",
) -> SurfaceDistances:
    """Directed surface distances between two non-empty boolean masks of one shape.

    Spacing is in the arrays' axis order: for arrays from `sitk.GetArrayFromImage` that is
    (z, y, x), the reverse of `image.GetSpacing()`. Any crop that holds both masks gives the
    same distances. Raises ValueError when either mask is empty: the edge-case rules decide
    those values.
    """
    if reference.shape != prediction.shape:
        raise ValueError(f"reference {reference.shape} and prediction {prediction.shape} differ in shape")
    _check_spacing(spacing_zyx_mm, reference.ndim)
    return distances_between(
        Surface.of(reference, connectivity=connectivity),
        Surface.of(prediction, connectivity=connectivity),
        spacing_zyx_mm,
        method=method,
    )


def _nearest_mm(targets_mm: np.ndarray, points_mm: np.ndarray, off_target: np.ndarray) -> np.ndarray:
    """Distance from each of `points_mm` to the nearest of `targets_mm`; 0 where not `off_target`."""
    distances = np.zeros(len(points_mm), dtype=np.float64)
    if off_target.any():
        tree = cKDTree(targets_mm, leafsize=16, balanced_tree=False, compact_nodes=False)
        distances[off_target] = tree.query(points_mm[off_target], k=1, workers=1)[0]
    return distances


def _ring_search_mm(target: Surface, source: Surface, off_target: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance from each voxel of `source` to the nearest voxel of `target` (0 where not `off_target`).

    Looks the lattice offsets up nearest first in a boolean box around `target`: the first offset
    that lands on `target` gives the exact distance, since every nearer offset was tried. Voxels
    outside the box, or with no `target` voxel within the search radius, go to `_far_mm`.
    """
    distances = np.zeros(source.count, dtype=np.float64)
    pending = np.flatnonzero(off_target)
    if pending.size == 0:
        return distances
    offsets, lengths, reach = _ring_offsets(spacing)
    start, stop = target.box()
    # Voxels more than `reach` outside the target's box lie beyond the search radius; the look-up
    # box adds another `reach` so that every offset of a searched voxel stays inside it.
    origin = np.asarray(start) - 2 * reach
    padded = tuple(int(b - a + 4 * h) for a, b, h in zip(start, stop, reach, strict=True))
    coordinates = source.coordinates()[pending] - origin
    inside = np.all((coordinates >= reach) & (coordinates < np.asarray(padded) - reach), axis=1)
    far = [pending[~inside]]
    pending, coordinates = pending[inside], coordinates[inside]
    if pending.size:
        lookup = np.zeros(int(np.prod(padded)), dtype=bool)
        lookup[np.ravel_multi_index(tuple((target.coordinates() - origin).T), padded)] = True
        at = np.ravel_multi_index(tuple(coordinates.T), padded)
        centre = np.ravel_multi_index(tuple(reach), padded)
        steps = np.ravel_multi_index(tuple((offsets + reach).T), padded) - centre
        for step, length in zip(steps, lengths, strict=True):
            hit = lookup[at + step]
            if hit.any():
                distances[pending[hit]] = length
                missed = ~hit
                pending, at = pending[missed], at[missed]
                if pending.size == 0:
                    break
        far.append(pending)
    far_voxels = np.concatenate(far)
    if far_voxels.size:
        distances[far_voxels] = _far_mm(target, source.coordinates()[far_voxels], spacing)
    return distances


def _distance_field_mm(target: "Surface", start: tuple[int, ...], shape: tuple[int, ...], spacing) -> np.ndarray:
    """Distance to `target` over a box, built without a boolean copy of the box (memory: one
    uint8 and one float32 value per box voxel)."""
    background = np.ones(shape, dtype=np.uint8)
    background[tuple((target.coordinates() - np.asarray(start)).T)] = 0
    return _edt_mm(background, spacing)


def _far_mm(target: Surface, coordinates: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Exact distances from voxels (n, 3) to the nearest voxel of `target`, for voxels beyond the
    lattice search: a k-d tree for a few of them, else the distance transform of their box."""
    target_start, target_stop = target.box()
    low = np.minimum(np.asarray(target_start), coordinates.min(axis=0))
    high = np.maximum(np.asarray(target_stop), coordinates.max(axis=0) + 1)
    box_voxels = float(np.prod(high - low))
    if (target.count <= _TREE_MAX_TARGET_VOXELS
            and len(coordinates) * _TREE_NS_PER_FAR_QUERY <= box_voxels * _EDT_NS_PER_VOXEL):
        tree = cKDTree(target.points_mm(spacing), leafsize=16, balanced_tree=False, compact_nodes=False)
        return tree.query(coordinates * spacing, k=1, workers=1)[0]
    field = _distance_field_mm(target, tuple(low), tuple(high - low), spacing)
    return field[tuple((coordinates - low).T)].astype(np.float64)


def average_symmetric_surface_distance_mm(distances: SurfaceDistances) -> float:
    """Mean of both directions' distances pooled (MONAI's symmetric average surface distance)."""
    total = distances.prediction_to_reference_mm.sum() + distances.reference_to_prediction_mm.sum()
    return float(total / distances.count)


def hausdorff_percentile_mm(distances: SurfaceDistances, *, percentile: float = 95.0) -> float:
    """The larger of the two directed `percentile`-th percentiles (linear interpolation)."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in 0..100, found {percentile}")
    return float(max(
        np.percentile(distances.prediction_to_reference_mm, percentile),
        np.percentile(distances.reference_to_prediction_mm, percentile),
    ))


# A distance counts as within the tolerance up to this relative slack, so that float32 rounding
# of a distance that equals the tolerance exactly (e.g. 3 voxels of 0.5 mm at 1.5 mm) never decides.
_TOLERANCE_SLACK = 1e-6


def normalized_surface_dice(distances: SurfaceDistances, *, tolerance_mm: float) -> float:
    """Share of both surfaces lying within `tolerance_mm` of the other surface (MONAI's NSD)."""
    if not tolerance_mm >= 0:
        raise ValueError(f"tolerance_mm must be >= 0, found {tolerance_mm}")
    limit = tolerance_mm * (1.0 + _TOLERANCE_SLACK)
    within = (np.count_nonzero(distances.prediction_to_reference_mm <= limit)
              + np.count_nonzero(distances.reference_to_prediction_mm <= limit))
    return float(within / distances.count)
