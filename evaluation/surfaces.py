"""Surface voxels of binary masks and the distances between two surfaces, at a cost bounded by the box.

The distances follow MONAI's `get_edge_surface_distance` (surface = mask XOR its erosion, the
image border counting as outside; distance from each surface voxel of one mask to the nearest
surface voxel of the other). A structure is handled on its own box, and a voxel on both surfaces
is 0 mm away and never searched.

Cost. Whatever the masks hold (any number of components, speckles, a label in every other
voxel), one directed distance costs at most a small constant number of passes over the box of
both surfaces: no method's cost grows faster than linearly with the number of surface voxels.
- `rings` (the default): look lattice offsets up nearest first in a boolean box around the other
  surface; the first hit is the exact distance. Most surface voxels of a segmentation lie within
  a few voxels of the other surface, so this takes a handful of look-ups each. The search stops
  early when what is left would cost more than a distance transform of the box; voxels it has
  not resolved (beyond its radius, or left when it stopped) go to a k-d tree over the other
  surface when they are few and that surface is small, else to the distance transform of their
  box. A surface too large for the search (noise in most of the image) goes to the transform
  at once.
- `kdtree`: a k-d tree over one surface's voxel centres in mm (MONAI 1.6 does the same on CPU).
- `edt`: the `edt` package's distance transform of the box around both surfaces.

Memory. A surface is kept as sorted voxel indices or as a boolean mask of its box, whichever is
smaller, so no surface costs more than one byte per voxel of its box.

Precision. The lattice search and the k-d tree give float64 distances of voxel offsets (exact up
to float64 rounding, below 1e-9 mm). The distance transform computes squared distances in
float32; it runs with the smallest spacing as its unit (so two of the three axes have integer
weights, exact for in-plane isotropic pixels) and the values it returns are within 2e-7 of the
distance relative (below 1e-4 mm up to 500 mm; measured: 5e-6 mm at 180 mm).
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
    """For every voxel, the Euclidean distance in mm to the nearest voxel of `surface` (float64).

    `surface` must hold at least one voxel. One transform on one thread (module docstring: precision).
    """
    if not surface.any():
        raise ValueError("the distance to an empty surface is undefined")
    spacing = _check_spacing(spacing_zyx_mm, surface.ndim)
    squared, unit = _squared_edt(np.ascontiguousarray(~surface).view(np.uint8), spacing)
    return np.sqrt(squared.astype(np.float64)) * unit


def _squared_edt(background: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """`edt`'s squared distances (float32) of a uint8 array that is 0 on the features, in units of
    the smallest spacing (returned with it): axes at that spacing get integer weights, which float32
    holds exactly, so most of the rounding of an anisotropic transform goes away."""
    unit = float(spacing.min())
    anisotropy = tuple(float(s) / unit for s in spacing)
    return edt.edtsq(background, anisotropy=anisotropy, black_border=False, parallel=1), unit


class FieldCache:
    """The last distance field computed, kept for the next distances to the same surface.

    A predicted label that fills the image is matched to every reference level it overlaps; its
    surface (the image border) is then the far target of each of them, and one transform of the
    image serves them all. A field over a box that holds the whole target gives the exact distance
    of every voxel of that box, so it serves any query box inside it. At most one field of at most
    `budget_bytes` is kept.
    """

    def __init__(self, budget_bytes: int = 320 * 1024**2):
        self.budget_bytes = budget_bytes
        self._target: Surface | None = None
        self._low = self._high = np.zeros(3, dtype=np.int64)
        self._field: np.ndarray | None = None
        self._unit = 1.0

    def forget_unless(self, target: "Surface") -> None:
        """Free the kept field unless it is `target`'s (before other large work)."""
        if self._target is not target:
            self._field = self._target = None

    def kept(self, target: "Surface", low, high) -> tuple[np.ndarray, np.ndarray, float] | None:
        """The kept field, if it is `target`'s over a box that holds [low, high)."""
        low, high = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64)
        if (self._field is not None and self._target is target
                and np.all(self._low <= low) and np.all(high <= self._high)):
            return self._field, self._low, self._unit
        return None

    def squared(self, target: "Surface", low, high, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(field, its first voxel, unit): squared distances to `target` over a box holding [low, high)."""
        low, high = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64)
        kept = self.kept(target, low, high)
        if kept is not None:
            return kept
        self._field = self._target = None  # free the old field before the new one is made
        field, unit = _distance_field_squared(target, low, high, spacing)
        if field.nbytes <= self.budget_bytes:
            self._target, self._low, self._high, self._field, self._unit = target, low, high, field, unit
        return field, low, unit


# A mask whose box holds more than this many voxels per mask voxel has its surface found from
# its voxel list (cost per mask voxel) instead of by erosion of the box (cost per box voxel): a
# few stray voxels far from a structure must not make it cost as much as the whole image.
_SPARSE_BOX_RATIO = 64
# Bytes per surface voxel of the index form (int64); the mask form costs one byte per box voxel.
_INDEX_BYTES = 8
_CHUNK_VOXELS = 1 << 20


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


def _tight_box(mask: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(start, stop) of the True voxels of a 3D boolean array, from its projections."""
    starts, stops = [], []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=others))
        if present.size == 0:
            return None
        starts.append(int(present[0]))
        stops.append(int(present[-1]) + 1)
    return tuple(starts), tuple(stops)


def _slices(start, stop) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))


@dataclass(frozen=True, eq=False)
class Surface:
    """The surface voxels of one mask in an image grid of `shape`, inside the box [start, stop).

    Held as sorted linear indices (C order) into the image grid, or as a boolean mask of the box
    when that is smaller (a surface of noise that fills most of its box); either way `indices`,
    `coordinates()`, `sample()` and `placed()` see the voxels in C order.
    """

    shape: tuple[int, ...]
    start: tuple[int, ...]
    stop: tuple[int, ...]
    count: int
    stored_indices: np.ndarray | None = None
    box_mask: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        mask: np.ndarray,
        *,
        offset: tuple[int, ...] = (0, 0, 0),
        image_shape: tuple[int, ...] | None = None,
        connectivity: int = 1,
        voxel_count: int | None = None,
        tight: bool = False,
    ) -> "Surface":
        """The surface of `mask`, a crop at `offset` of an image of `image_shape` (default: the
        crop is the image) that holds the whole mask. `voxel_count`, when known, saves a count;
        `tight` says the crop is the mask's bounding box (so it is the surface's too: the extreme
        voxels of a mask are on its surface), which saves finding it."""
        if connectivity not in _CONNECTIVITIES:
            raise ValueError(f"connectivity must be one of {_CONNECTIVITIES}, found {connectivity}")
        image_shape = tuple(mask.shape) if image_shape is None else tuple(image_shape)
        offset = tuple(int(o) for o in offset)
        count = int(np.count_nonzero(mask)) if voxel_count is None else int(voxel_count)
        if count and mask.size > _SPARSE_BOX_RATIO * count:
            local = _sparse_surface(np.flatnonzero(mask), mask.shape, connectivity)
            return cls._from_local_indices(local, mask.shape, offset, image_shape)
        voxels = surface_voxels(mask, connectivity=connectivity)
        box = ((0, 0, 0), tuple(mask.shape)) if tight and count else _tight_box(voxels)
        if box is None:
            return cls(image_shape, offset, offset, 0, stored_indices=np.zeros(0, dtype=np.int64))
        start, stop = box
        cropped = voxels[_slices(start, stop)]
        found = int(np.count_nonzero(cropped))
        if found * _INDEX_BYTES < cropped.size:
            return cls._from_local_indices(np.flatnonzero(voxels), mask.shape, offset, image_shape)
        return cls(image_shape, tuple(a + o for a, o in zip(start, offset, strict=True)),
                   tuple(b + o for b, o in zip(stop, offset, strict=True)), found,
                   box_mask=np.ascontiguousarray(cropped))

    @classmethod
    def _from_local_indices(cls, local: np.ndarray, local_shape, offset, image_shape) -> "Surface":
        if local.size == 0:
            return cls(image_shape, offset, offset, 0, stored_indices=np.zeros(0, dtype=np.int64))
        coordinates = [c + o for c, o in zip(np.unravel_index(local, local_shape), offset, strict=True)]
        start = tuple(int(c.min()) for c in coordinates)
        stop = tuple(int(c.max()) + 1 for c in coordinates)
        indices = np.ravel_multi_index(coordinates, image_shape).astype(np.int64, copy=False)
        return cls(image_shape, start, stop, int(local.size), stored_indices=indices)

    @property
    def nbytes(self) -> int:
        """Memory held: the stored form, and the indices and coordinates once asked for."""
        held = [self.stored_indices, self.box_mask, self.__dict__.get("_coordinates")]
        if self.stored_indices is None:
            held.append(self.__dict__.get("indices"))
        return sum(int(a.nbytes) for a in held if a is not None)

    @cached_property
    def indices(self) -> np.ndarray:
        """Sorted linear indices (C order) of the surface voxels in the image grid."""
        if self.stored_indices is not None or self.box_mask is None:
            return self.stored_indices if self.stored_indices is not None else np.zeros(0, dtype=np.int64)
        coordinates = [c + o for c, o in zip(np.nonzero(self.box_mask), self.start, strict=True)]
        return np.ravel_multi_index(coordinates, self.shape).astype(np.int64, copy=False)

    def coordinates(self) -> np.ndarray:
        """(n, 3) voxel indices in the image grid, in the order of `indices` (computed once, read-only)."""
        return self._coordinates

    @cached_property
    def _coordinates(self) -> np.ndarray:
        if self.box_mask is not None:
            coordinates = np.stack(np.nonzero(self.box_mask), axis=1) + np.asarray(self.start)
        else:
            coordinates = np.stack(np.unravel_index(self.indices, self.shape), axis=1)
        coordinates.setflags(write=False)
        return coordinates

    def points_mm(self, spacing: np.ndarray) -> np.ndarray:
        """Voxel centres in mm, in the order of `indices`."""
        return self.coordinates() * spacing

    def box(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(start, stop) of the bounding box of the surface voxels."""
        return self.start, self.stop

    def draw(self, canvas: np.ndarray, start, value) -> None:
        """Set `canvas` (a box whose first voxel is `start`, holding this surface) to `value` on the surface."""
        if self.box_mask is not None:
            local = _slices(np.subtract(self.start, start), np.subtract(self.stop, start))
            np.copyto(canvas[local], value, where=self.box_mask)
        else:
            canvas.reshape(-1)[self._in_box(start, canvas.shape)] = value

    def draw_clipped(self, canvas: np.ndarray, start, value) -> int:
        """As `draw`, for the surface voxels inside the box of `canvas` only; returns how many."""
        low = np.asarray(start, dtype=np.int64)
        high = low + np.asarray(canvas.shape)
        inner_low, inner_high = np.maximum(low, self.start), np.minimum(high, self.stop)
        if np.any(inner_low >= inner_high):
            return 0
        if self.box_mask is not None:
            part = self.box_mask[_slices(inner_low - np.asarray(self.start), inner_high - np.asarray(self.start))]
            np.copyto(canvas[_slices(inner_low - low, inner_high - low)], value, where=part)
            return int(np.count_nonzero(part))
        drawn = 0
        flat = canvas.reshape(-1)
        for begin in range(0, self.count, _CHUNK_VOXELS):
            coordinates = np.stack(np.unravel_index(self.indices[begin:begin + _CHUNK_VOXELS], self.shape), axis=1)
            inside = np.all((coordinates >= low) & (coordinates < high), axis=1)
            if inside.any():
                flat[np.ravel_multi_index(tuple((coordinates[inside] - low).T), canvas.shape)] = value
                drawn += int(np.count_nonzero(inside))
        return drawn

    def sample(self, field: np.ndarray, start) -> np.ndarray:
        """`field` (a box whose first voxel is `start`, holding this surface) at the surface voxels,
        in the order of `indices`."""
        if self.box_mask is not None:
            local = _slices(np.subtract(self.start, start), np.subtract(self.stop, start))
            return field[local][self.box_mask]
        return field.reshape(-1)[self._in_box(start, field.shape)]

    def _in_box(self, start, box_shape) -> np.ndarray:
        """Linear indices (C order) of the surface voxels in a box of `box_shape` whose first voxel
        is `start`, converted in chunks (no (n, 3) coordinate array for a large surface)."""
        start = tuple(int(a) for a in start)
        box_shape = tuple(int(n) for n in box_shape)
        if start == (0,) * len(self.shape) and box_shape == tuple(self.shape):
            return self.indices
        local = np.empty(self.count, dtype=np.int64)
        for begin in range(0, self.count, _CHUNK_VOXELS):
            coordinates = np.unravel_index(self.indices[begin:begin + _CHUNK_VOXELS], self.shape)
            local[begin:begin + _CHUNK_VOXELS] = np.ravel_multi_index(
                [c - a for c, a in zip(coordinates, start, strict=True)], box_shape)
        return local

    def also_in(self, other: "Surface") -> np.ndarray:
        """For each of this surface's voxels, whether it is also a voxel of `other`."""
        if other.count == 0 or self.count == 0:
            return np.zeros(self.count, dtype=bool)
        if other.box_mask is not None:
            local = self.coordinates() - np.asarray(other.start)
            inside = np.all((local >= 0) & (local < np.subtract(other.stop, other.start)), axis=1)
            found = np.zeros(self.count, dtype=bool)
            found[inside] = other.box_mask[tuple(local[inside].T)]
            return found
        position = np.minimum(np.searchsorted(other.indices, self.indices), other.count - 1)
        return other.indices[position] == self.indices


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
# Measured costs that decide between the methods (one core): a look-up of one pending voxel at
# one offset, a k-d tree query of a far voxel (3-10 us against a closed anatomical surface; far
# slower against a large flat one, hence the cap on the tree's size), and the distance transform
# per box voxel (with building its input and reading it out).
_RING_NS_PER_LOOKUP = 6.0
_TREE_MAX_TARGET_VOXELS = 300_000
_TREE_NS_PER_FAR_QUERY = 10_000.0
_EDT_NS_PER_VOXEL = 30.0
# A source surface with more voxels than this goes to the distance transform without a search
# (noise over much of the image: most of it would be far anyway, and its coordinates would
# cost 24 bytes per voxel).
_RING_MAX_SOURCE_VOXELS = 500_000


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
    fields: FieldCache | None = None,
) -> SurfaceDistances:
    """Directed distances between two non-empty surfaces of one image grid.

    `method` is "rings" (the default: a nearest-first lattice search around the other surface,
    with a bounded fallback; see the module docstring), "kdtree" or "edt" (a distance transform
    of the box around both). `fields` keeps a distance field for the next call (a case's scorer
    passes one for all its pairs).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, found {method!r}")
    spacing = _check_spacing(spacing_zyx_mm, len(reference.shape))
    if reference.shape != prediction.shape:
        raise ValueError(f"surfaces of different grids: {reference.shape} and {prediction.shape}")
    if reference.count == 0 or prediction.count == 0:
        raise ValueError("surface distances need two non-empty masks")
    return SurfaceDistances(
        prediction_to_reference_mm=directed_distances_mm(prediction, reference, spacing, method=method,
                                                         fields=fields),
        reference_to_prediction_mm=directed_distances_mm(reference, prediction, spacing, method=method,
                                                         fields=fields),
    )


def directed_distances_mm(source: Surface, target: Surface, spacing: np.ndarray, *, method: str = "rings",
                          fields: FieldCache | None = None) -> np.ndarray:
    """For each voxel of `source` (in the order of its indices), the distance in mm to the nearest
    voxel of `target` (0 for voxels of both; float32 where one distance transform gave them all,
    else float64)."""
    fields = FieldCache(budget_bytes=0) if fields is None else fields
    if method == "edt" or (method == "rings" and _transform_at_once(source, target)):
        return _transform_mm(target, source, spacing, fields)
    off_target = ~source.also_in(target)
    if method == "kdtree":
        distances = np.zeros(source.count, dtype=np.float64)
        pending = np.flatnonzero(off_target)
        if pending.size:
            tree = cKDTree(target.points_mm(spacing), leafsize=16, balanced_tree=False, compact_nodes=False)
            distances[pending] = tree.query(source.coordinates()[pending] * spacing, k=1, workers=1)[0]
        return distances
    return _ring_search_mm(target, source, off_target, spacing, fields)


def _union_box(*boxes) -> tuple[np.ndarray, np.ndarray]:
    low = np.min([np.asarray(start) for start, _ in boxes], axis=0)
    high = np.max([np.asarray(stop) for _, stop in boxes], axis=0)
    return low, high


def _transform_cost_ns(*boxes) -> float:
    low, high = _union_box(*boxes)
    return float(np.prod(high - low)) * _EDT_NS_PER_VOXEL


def _transform_at_once(source: Surface, target: Surface) -> bool:
    """Whether `source` is too large for the lattice search: more voxels than a search of a few
    offsets each could visit in the time of one transform of the box."""
    if source.count > _RING_MAX_SOURCE_VOXELS:
        return True
    return source.count * _RING_NS_PER_LOOKUP * 4 > _transform_cost_ns(source.box(), target.box())


def _transform_mm(target: Surface, source: Surface, spacing: np.ndarray, fields: FieldCache) -> np.ndarray:
    """Distances from every voxel of `source` to `target` by one distance transform of their box."""
    low, high = _union_box(source.box(), target.box())
    squared, field_low, unit = fields.squared(target, low, high, spacing)
    values = source.sample(squared, field_low)
    del squared
    return _from_squared(values, unit)


def _from_squared(values: np.ndarray, unit: float) -> np.ndarray:
    """Distances in mm from squared values read out of a transform (a fresh float32 array, turned
    into the distances in place: float32 is all the transform holds)."""
    np.sqrt(values, out=values)
    values *= np.float32(unit)
    return values


def _distance_field_squared(target: Surface, low, high, spacing) -> tuple[np.ndarray, float]:
    """Squared distance to `target` over the box [low, high), in units of the returned `unit` mm,
    built without a boolean copy of the box (memory: one uint8 and one float32 value per box voxel)."""
    background = np.ones(tuple(int(n) for n in np.asarray(high) - np.asarray(low)), dtype=np.uint8)
    target.draw(background, tuple(low), 0)
    return _squared_edt(background, spacing)


def _ring_search_mm(target: Surface, source: Surface, off_target: np.ndarray, spacing: np.ndarray,
                    fields: FieldCache) -> np.ndarray:
    """Distance from each voxel of `source` to the nearest voxel of `target` (0 where not `off_target`).

    Looks the lattice offsets up nearest first in a boolean box around `target`: the first offset
    that lands on `target` gives the exact distance, since every nearer offset was tried. Voxels
    outside the box, with no `target` voxel within the search radius, or left when the search
    would cost more than a distance transform of their box, go to `_far_mm`.
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
        # What the far voxels' fallback costs at most for the voxels left: a transform of about
        # the look-up box (see _nearest_in_growing_boxes).
        budget_ns = float(np.prod(padded)) * _EDT_NS_PER_VOXEL
        lookup = np.zeros(padded, dtype=bool)
        target.draw(lookup, tuple(origin), True)
        lookup = lookup.reshape(-1)
        at = np.ravel_multi_index(tuple(coordinates.T), padded)
        del coordinates
        centre = np.ravel_multi_index(tuple(reach), padded)
        steps = np.ravel_multi_index(tuple((offsets + reach).T), padded) - centre
        spent_ns = 0.0
        for index, (step, length) in enumerate(zip(steps, lengths, strict=True)):
            left = pending.size * _RING_NS_PER_LOOKUP
            if spent_ns + left * (len(steps) - index) > 2 * budget_ns:
                break  # the transform of the box is cheaper than the rest of the search
            spent_ns += left
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
        distances[far_voxels] = _far_mm(target, source.coordinates()[far_voxels], spacing, fields)
    return distances


def _far_mm(target: Surface, coordinates: np.ndarray, spacing: np.ndarray, fields: FieldCache) -> np.ndarray:
    """Distances from voxels (n, 3) to the nearest voxel of `target`, for voxels the lattice search
    left: a kept field if one covers them, a k-d tree for a few of them against a small surface,
    else distance transforms of growing boxes around them (`_nearest_in_growing_boxes`)."""
    query_box = (tuple(int(v) for v in coordinates.min(axis=0)), tuple(int(v) + 1 for v in coordinates.max(axis=0)))
    low, high = _union_box(target.box(), query_box)
    kept = fields.kept(target, low, high)
    if kept is not None:
        squared, field_low, unit = kept
        return _from_squared(squared[tuple((coordinates - field_low).T)], unit)
    transform_ns = _transform_cost_ns(target.box(), query_box)
    if target.count <= _TREE_MAX_TARGET_VOXELS and len(coordinates) * _TREE_NS_PER_FAR_QUERY <= transform_ns:
        tree = cKDTree(target.points_mm(spacing), leafsize=16, balanced_tree=False, compact_nodes=False)
        return tree.query(coordinates * spacing, k=1, workers=1)[0]
    return _nearest_in_growing_boxes(target, coordinates, spacing, fields, (low, high))


def _nearest_in_growing_boxes(target: Surface, coordinates: np.ndarray, spacing: np.ndarray, fields: FieldCache,
                              whole: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Exact distances to `target` from a transform of the queries' box grown by a margin, with
    only the target voxels inside it: a distance no larger than the way out of the box is exact
    (any target voxel outside is at least that far). The others go to a box with twice the margin,
    up to the box of the whole target, which answers all. The nearest target voxel of a voxel in
    noise is a few voxels away, so the first box, about the size of the queries' own, answers
    nearly all; the total cost is at most about twice that of the last box tried."""
    distances = np.empty(len(coordinates), dtype=np.float64)
    pending = np.arange(len(coordinates))
    whole_low, whole_high = whole
    fields.forget_unless(target)
    margin_mm = 4.0 * float(spacing.max())
    while pending.size:
        points = coordinates[pending]
        margin = np.ceil(margin_mm / spacing).astype(np.int64)
        low = np.maximum(points.min(axis=0) - margin, whole_low)
        high = np.minimum(points.max(axis=0) + 1 + margin, whole_high)
        if np.array_equal(low, whole_low) and np.array_equal(high, whole_high):
            squared, field_low, unit = fields.squared(target, low, high, spacing)
            distances[pending] = _from_squared(squared[tuple((points - field_low).T)], unit)
            break
        margin_mm *= 2.0
        background = np.ones(tuple(int(n) for n in high - low), dtype=np.uint8)
        if target.draw_clipped(background, low, 0) == 0:
            continue
        squared, unit = _squared_edt(background, spacing)
        del background
        found = _from_squared(squared[tuple((points - low).T)], unit)
        del squared
        # The way out of the box through each side that does not already hold all of the target.
        way_out = np.full(len(points), np.inf)
        for axis in range(3):
            if low[axis] > whole_low[axis]:
                way_out = np.minimum(way_out, (points[:, axis] - low[axis] + 1) * spacing[axis])
            if high[axis] < whole_high[axis]:
                way_out = np.minimum(way_out, (high[axis] - points[:, axis]) * spacing[axis])
        exact = found <= way_out
        distances[pending[exact]] = found[exact]
        pending = pending[~exact]
    return distances


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


def average_symmetric_surface_distance_mm(distances: SurfaceDistances) -> float:
    """Mean of both directions' distances pooled (MONAI's symmetric average surface distance)."""
    total = distances.prediction_to_reference_mm.sum() + distances.reference_to_prediction_mm.sum()
    return float(total / distances.count)


def directed_percentile_mm(distances: np.ndarray, percentile: float, *, in_place: bool = False) -> float:
    """numpy's linear-interpolation percentile of `distances`, by selection of the two order
    statistics it needs (no sort; `in_place` lets it reorder `distances` instead of copying)."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in 0..100, found {percentile}")
    values = distances if in_place else distances.copy()
    position = (values.size - 1) * percentile / 100.0
    below = int(np.floor(position))
    above = min(below + 1, values.size - 1)
    values.partition((below, above) if above != below else below)
    low, high = float(values[below]), float(values[above])
    return low + (high - low) * (position - below)


def hausdorff_percentile_mm(distances: SurfaceDistances, *, percentile: float = 95.0) -> float:
    """The larger of the two directed `percentile`-th percentiles (linear interpolation)."""
    return max(
        directed_percentile_mm(distances.prediction_to_reference_mm, percentile),
        directed_percentile_mm(distances.reference_to_prediction_mm, percentile),
    )


# A distance counts as within the tolerance up to this relative slack, so that float rounding of a
# distance that equals the tolerance exactly (e.g. 3 voxels of 0.5 mm at 1.5 mm) never decides.
_TOLERANCE_SLACK = 1e-6


def normalized_surface_dice(distances: SurfaceDistances, *, tolerance_mm: float) -> float:
    """Share of both surfaces lying within `tolerance_mm` of the other surface (MONAI's NSD)."""
    if not tolerance_mm >= 0:
        raise ValueError(f"tolerance_mm must be >= 0, found {tolerance_mm}")
    limit = tolerance_mm * (1.0 + _TOLERANCE_SLACK)
    within = (np.count_nonzero(distances.prediction_to_reference_mm <= limit)
              + np.count_nonzero(distances.reference_to_prediction_mm <= limit))
    return float(within / distances.count)


@dataclass(frozen=True)
class DirectedSummary:
    """What the metrics need of one direction's distances: how many, their sum, how many lie
    within the tolerance, and the HD percentile."""

    count: int
    total_mm: float
    within_tolerance: int
    percentile_mm: float

    @classmethod
    def of(cls, distances: np.ndarray, *, tolerance_mm: float, percentile: float) -> "DirectedSummary":
        """The summary of `distances` (non-empty), which this reorders (the percentile selects in place)."""
        if distances.size == 0:
            raise ValueError("a directed distance summary needs at least one distance")
        if not tolerance_mm >= 0:
            raise ValueError(f"tolerance_mm must be >= 0, found {tolerance_mm}")
        limit = tolerance_mm * (1.0 + _TOLERANCE_SLACK)
        return cls(count=int(distances.size), total_mm=float(distances.sum(dtype=np.float64)),
                   within_tolerance=int(np.count_nonzero(distances <= limit)),
                   percentile_mm=directed_percentile_mm(distances, percentile, in_place=True))


@dataclass(frozen=True)
class SurfaceMetrics:
    """What the rows need of two surfaces' distances: ASSD, HD95 and NSD (mm, mm, share)."""

    assd: float
    hd95: float
    nsd: float

    @classmethod
    def of_directions(cls, prediction_to_reference: DirectedSummary,
                      reference_to_prediction: DirectedSummary) -> "SurfaceMetrics":
        """The definitions of `average_symmetric_surface_distance_mm`, `hausdorff_percentile_mm` and
        `normalized_surface_dice`, from each direction's summary."""
        count = prediction_to_reference.count + reference_to_prediction.count
        return cls(
            assd=(prediction_to_reference.total_mm + reference_to_prediction.total_mm) / count,
            hd95=max(prediction_to_reference.percentile_mm, reference_to_prediction.percentile_mm),
            nsd=(prediction_to_reference.within_tolerance + reference_to_prediction.within_tolerance) / count,
        )
