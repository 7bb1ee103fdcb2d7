"""The official SPIDER evaluator's per-series columns (and the two this harness adds), declared once.

The spider2024 scoring profile computes them; a row whose metric is one of these names is
stored under that name as its results column (see challenge.results.column_name).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from challenge.labels import Group


@dataclass(frozen=True)
class OfficialColumn:
    """A per-series column of the spider2024 profile and the metric whose rules it follows."""

    name: str
    metric: str
    group: Group | None
    official: bool
    definition: str


_OFFICIAL_COLUMNS = (
    OfficialColumn("DiceScoreVertebrae", "dice", Group.VERTEBRAE, True,
                   "mean Dice over the detected vertebrae (Dice >= threshold), as the official script"),
    OfficialColumn("DiceScoreDiscs", "dice", Group.DISCS, True,
                   "mean Dice over the detected discs (Dice >= threshold), as the official script"),
    OfficialColumn("DiceScoreSpinalCanal", "dice", Group.SPINAL_CANAL, True, "Dice of the spinal canal"),
    OfficialColumn("OveralDiceScore", "dice", None, True, "mean Dice over every reference instance"),
    OfficialColumn("DetectionRateVertebrae", "detection_rate", Group.VERTEBRAE, True,
                   "detected vertebrae / reference vertebrae"),
    OfficialColumn("DetectionRateDiscs", "detection_rate", Group.DISCS, True, "detected discs / reference discs"),
    OfficialColumn("ASDVertebrae", "asd", Group.VERTEBRAE, True, "mean ASD over the reference vertebrae"),
    OfficialColumn("ASDDiscs", "asd", Group.DISCS, True, "mean ASD over the reference discs"),
    OfficialColumn("ASDSpinalCanal", "asd", Group.SPINAL_CANAL, True, "ASD of the spinal canal"),
    OfficialColumn("OveralASD", "asd", None, True, "mean ASD over every reference instance"),
    OfficialColumn("IdentificationRateVertebrae", "identification_rate", Group.VERTEBRAE, False,
                   "added: vertebrae detected and carrying their own level label / reference vertebrae"),
    OfficialColumn("IdentificationRateDiscs", "identification_rate", Group.DISCS, False,
                   "added: discs detected and carrying their own level label / reference discs"),
)
SPIDER2024_COLUMNS: Mapping[str, OfficialColumn] = MappingProxyType({c.name: c for c in _OFFICIAL_COLUMNS})
