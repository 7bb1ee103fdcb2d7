"""What the scoring profiles share about one case: its census, matches and cropped surfaces."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from challenge import rules
from evaluation.matching import SCORED_VALUE_OF, LabelCensus, Match, match_instances, take_census
from evaluation.surfaces import (
    DirectedSummary,
    FieldCache,
    Surface,
    SurfaceMetrics,
    directed_distances_mm,
)

SURFACE_CACHE_BYTES = 160 * 1024**2
"""Surfaces a case keeps for reuse (each costs at most one byte per voxel of its box)."""


class CaseScorer:
    """One case's reference and prediction, with every derived quantity computed at most once.

    `prediction` None stands for a case without a usable prediction: the census then counts every
    voxel as predicted background and no surface is ever computed.
    """

    def __init__(
        self,
        reference: np.ndarray,
        prediction: np.ndarray | None,
        spacing_zyx_mm: tuple[float, float, float],
    ):
        if reference.ndim != 3:
            raise ValueError(f"expected a 3D reference, found {reference.ndim}D")
        spacing = tuple(float(s) for s in spacing_zyx_mm)
        if len(spacing) != 3 or not all(s > 0 and np.isfinite(s) for s in spacing):
            raise ValueError(f"spacing_zyx_mm must be three positive numbers, found {tuple(spacing_zyx_mm)}")
        self.reference = reference
        self.prediction = prediction
        self.spacing_zyx_mm = spacing
        self.census: LabelCensus = take_census(reference, prediction)
        self.fov_diagonal_mm = rules.fov_diagonal_mm(reference.shape, spacing)
        self._matches: dict[bool, tuple[Match, ...]] = {}
        self._directed: dict[Direction, DirectedSummary] = {}
        self._surface_cache = _SurfaceCache(SURFACE_CACHE_BYTES)
        self._fields = FieldCache()

    @property
    def has_prediction(self) -> bool:
        return self.prediction is not None

    def matches(self, *, same_group_only: bool) -> tuple[Match, ...]:
        """The full profile's matching (`same_group_only`, with the own-label fallback of
        challenge.rules.OWN_LABEL_RULE) or the official evaluator's (every predicted label)."""
        if same_group_only not in self._matches:
            self._matches[same_group_only] = match_instances(
                self.census, same_group_only=same_group_only, own_label_fallback=same_group_only)
        return self._matches[same_group_only]

    def surface_metrics(
        self,
        reference_values: Iterable[int],
        prediction_values: Iterable[int],
        *,
        connectivity: int,
        tolerance_mm: float,
    ) -> SurfaceMetrics:
        """ASSD, HD95 and NSD of the reference's `reference_values` (one mask) against the prediction's
        `prediction_values` (one mask), scored values, both non-empty; computed once per pair."""
        pair = SurfacePair.of(reference_values, prediction_values, connectivity, tolerance_mm)
        self.prepare([pair])
        return SurfaceMetrics.of_directions(self._directed[pair.prediction_to_reference],
                                            self._directed[pair.reference_to_prediction])

    def prepare(self, pairs: Iterable["SurfacePair"]) -> None:
        """Compute the distances of all `pairs` (both directions), grouped by the surface they are
        measured to: a predicted label matched to several levels is the far target of each, and
        one distance field of it serves them all (evaluation.surfaces.FieldCache)."""
        if self.prediction is None:
            raise ValueError("a case without a prediction has no surfaces")
        wanted = {d for pair in pairs for d in (pair.prediction_to_reference, pair.reference_to_prediction)
                  if d not in self._directed}
        for direction in sorted(wanted, key=lambda d: (d.target_key, d.source_key)):
            source = self._surface(*direction.source_key)
            target = self._surface(*direction.target_key)
            distances = directed_distances_mm(source, target, np.asarray(self.spacing_zyx_mm), fields=self._fields)
            self._directed[direction] = DirectedSummary.of(distances, tolerance_mm=direction.tolerance_mm,
                                                           percentile=rules.HD_PERCENTILE)
            del distances
            self._surface_cache.fit()

    def _surface(self, side: str, values: tuple[int, ...], connectivity: int) -> Surface:
        key = (side, values, connectivity)
        found = self._surface_cache.get(key)
        if found is not None:
            return found
        array = self.reference if side == "reference" else self.prediction
        if array is None:
            raise ValueError("a case without a prediction has no predicted surfaces")
        census = self.census
        box = census.box(values, ()) if side == "reference" else census.box((), values)
        count = census.reference_count(values) if side == "reference" else census.prediction_count(values)
        if box is None or count == 0:
            raise ValueError(f"labels {values} are not in the case's {side}")
        surface = Surface.of(_mask(array[box.slices], values), offset=box.start, image_shape=array.shape,
                             connectivity=connectivity, voxel_count=count, tight=True)
        self._surface_cache.put(key, surface)
        return surface


@dataclass(frozen=True)
class Direction:
    """Distances from the surface of one side's labels to the surface of the other side's labels."""

    source_key: tuple[str, tuple[int, ...], int]
    target_key: tuple[str, tuple[int, ...], int]
    tolerance_mm: float


@dataclass(frozen=True)
class SurfacePair:
    """A reference mask and a predicted mask (scored label values) whose surfaces are compared."""

    reference_values: tuple[int, ...]
    prediction_values: tuple[int, ...]
    connectivity: int
    tolerance_mm: float

    @classmethod
    def of(cls, reference_values: Iterable[int], prediction_values: Iterable[int], connectivity: int,
           tolerance_mm: float) -> "SurfacePair":
        return cls(tuple(sorted(set(reference_values))), tuple(sorted(set(prediction_values))),
                   int(connectivity), float(tolerance_mm))

    @property
    def prediction_to_reference(self) -> Direction:
        return Direction(("prediction", self.prediction_values, self.connectivity),
                         ("reference", self.reference_values, self.connectivity), self.tolerance_mm)

    @property
    def reference_to_prediction(self) -> Direction:
        return Direction(("reference", self.reference_values, self.connectivity),
                         ("prediction", self.prediction_values, self.connectivity), self.tolerance_mm)


class _SurfaceCache:
    """The most recently used surfaces, up to `budget_bytes` in all: the profiles ask for a
    predicted label's surface once per reference level it is matched to, in a row."""

    def __init__(self, budget_bytes: int):
        self.budget_bytes = budget_bytes
        self._held: OrderedDict[tuple, Surface] = OrderedDict()

    def get(self, key: tuple) -> Surface | None:
        found = self._held.get(key)
        if found is not None:
            self._held.move_to_end(key)
        return found

    def put(self, key: tuple, surface: Surface) -> None:
        self._held[key] = surface
        while len(self._held) > 1 and sum(s.nbytes for s in self._held.values()) > self.budget_bytes:
            self._held.popitem(last=False)

    def fit(self) -> None:
        """Evict again after held surfaces grew (a surface keeps its coordinates once asked for them)."""
        while len(self._held) > 1 and sum(s.nbytes for s in self._held.values()) > self.budget_bytes:
            self._held.popitem(last=False)


def _mask(crop: np.ndarray, scored_values: tuple[int, ...]) -> np.ndarray:
    """Voxels of `crop` whose scored value is one of `scored_values`.

    Built from runs of consecutive raw values, one vectorised comparison per run (a table
    look-up by fancy indexing is several times slower on uint8 crops).
    """
    raw = np.flatnonzero(np.isin(SCORED_VALUE_OF, scored_values))
    mask: np.ndarray | None = None
    start = 0
    for end in range(1, len(raw) + 1):
        if end == len(raw) or raw[end] != raw[end - 1] + 1:
            low, high = int(raw[start]), int(raw[end - 1])
            run = crop == low if low == high else (crop - np.uint8(low)) <= np.uint8(high - low)
            mask = run if mask is None else mask | run
            start = end
    if mask is None:
        return np.zeros(crop.shape, dtype=bool)
    return mask
