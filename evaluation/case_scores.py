"""What the scoring profiles share about one case: its census, matches and cropped surfaces."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from challenge import rules
from evaluation.matching import SCORED_VALUE_OF, Box, LabelCensus, Match, match_instances, take_census
from evaluation.surfaces import Surface, SurfaceDistances, distances_between


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
        self._surfaces: dict[tuple, SurfaceDistances] = {}

    @property
    def has_prediction(self) -> bool:
        return self.prediction is not None

    def matches(self, *, same_group_only: bool) -> tuple[Match, ...]:
        if same_group_only not in self._matches:
            self._matches[same_group_only] = match_instances(self.census, same_group_only=same_group_only)
        return self._matches[same_group_only]

    def surfaces(
        self,
        reference_values: Iterable[int],
        prediction_values: Iterable[int],
        *,
        connectivity: int,
    ) -> SurfaceDistances:
        """Surface distances between the reference's `reference_values` (one mask) and the
        prediction's `prediction_values` (one mask), both scored values and both non-empty."""
        reference_values = tuple(sorted(set(reference_values)))
        prediction_values = tuple(sorted(set(prediction_values)))
        key = (reference_values, prediction_values, connectivity)
        if key not in self._surfaces:
            if self.prediction is None:
                raise ValueError("a case without a prediction has no surfaces")
            self._surfaces[key] = distances_between(
                self._surface(self.reference, self.census.box(reference_values, ()), reference_values,
                              connectivity, self.census.reference_count(reference_values)),
                self._surface(self.prediction, self.census.box((), prediction_values), prediction_values,
                              connectivity, self.census.prediction_count(prediction_values)),
                self.spacing_zyx_mm,
            )
        return self._surfaces[key]

    @staticmethod
    def _surface(array: np.ndarray, box: Box | None, values: tuple[int, ...], connectivity: int, count: int) -> Surface:
        if box is None or count == 0:
            raise ValueError(f"labels {values} are not in the case")
        return Surface.of(_mask(array[box.slices], values), offset=box.start, image_shape=array.shape,
                          connectivity=connectivity, voxel_count=count)


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
