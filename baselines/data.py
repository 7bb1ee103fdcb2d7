"""Training data: the cases of a release folder, their split, and the MONAI transform pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.data import CacheDataset
from monai.transforms import (
    Compose,
    FgBgToIndicesd,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandCropByPosNegLabeld,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)

from baselines.classes import ClassMap
from baselines.config import BaselineConfig
from baselines.errors import RunError
from baselines.preprocess import Preprocessing, prepare_image, prepare_mask
from challenge.errors import DataError, GeometryMismatchError
from challenge.geometry import Geometry
from challenge.images import read_image
from challenge.release import read_release

IMAGE, LABEL = "image", "label"
SUBSET_TRAINING, SUBSET_VALIDATION = "training", "validation"


@dataclass(frozen=True)
class Case:
    """One series with its mask, as listed in the release folder."""

    name: str
    patient_id: int
    image_path: str
    mask_path: str
    subset: str | None


@dataclass(frozen=True)
class Split:
    """Training and validation cases and how they were chosen."""

    training: tuple[Case, ...]
    validation: tuple[Case, ...]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "training": [case.name for case in self.training],
            "validation": [case.name for case in self.validation],
        }

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def list_cases(data_dir: Path | str) -> list[Case]:
    """Every series of a release folder that has a mask; raises DataError listing the problems."""
    release = read_release(Path(data_dir), check_masks=False, require_masks=True).raise_for_problems()
    return [
        Case(s.name, s.patient_id, str(s.image_path), str(s.mask_path), s.subset)
        for s in release.series
        if s.mask_path is not None
    ]


def split_cases(cases: Sequence[Case], *, validation_fraction: float, seed: int) -> Split:
    """The release's own split (its `subset` column) when it names validation series; else a
    held-out fraction of the patients (never one patient on both sides), drawn with `seed`."""
    if not cases:
        raise DataError("no cases to train on")
    if any(case.subset == SUBSET_VALIDATION for case in cases):
        training = tuple(c for c in cases if c.subset != SUBSET_VALIDATION)
        validation = tuple(c for c in cases if c.subset == SUBSET_VALIDATION)
        if not training:
            raise DataError("every series is in the validation subset: nothing left to train on")
        return Split(training, validation, "the release's subset column")
    patients = sorted({case.patient_id for case in cases})
    if len(patients) < 2:
        raise DataError(
            f"cannot hold out validation patients: the data has {len(patients)} patient and no validation subset"
        )
    count = min(len(patients) - 1, max(1, round(len(patients) * validation_fraction)))
    rng = np.random.default_rng(seed)
    held_out = set(rng.choice(patients, size=count, replace=False).tolist())
    training = tuple(c for c in cases if c.patient_id not in held_out)
    validation = tuple(c for c in cases if c.patient_id in held_out)
    return Split(
        training,
        validation,
        f"{count} of {len(patients)} patients held out at random (seed {seed}; no validation subset in the release)",
    )


class LoadPreparedCased(MapTransform):
    """Reads a case's image and mask and puts both on the canonical grid (baselines.preprocess):
    image (1, z, y, x) float32 normalized, label (1, z, y, x) uint8 training classes."""

    def __init__(self, preprocessing: Preprocessing, class_map: ClassMap):
        super().__init__(keys=(IMAGE, LABEL))
        self.preprocessing = preprocessing
        self.class_map = class_map

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        image = read_image(data[IMAGE])
        mask = read_image(data[LABEL], what="mask")
        differences = Geometry.of(image).differences(Geometry.of(mask))
        if differences:
            raise GeometryMismatchError(
                f"{Path(data[LABEL]).name} is not on its image's grid: " + "; ".join(differences)
            )
        prepared = prepare_image(image, self.preprocessing)
        try:
            classes = self.class_map.encode(prepare_mask(mask, prepared.grid))
        except DataError as error:
            raise type(error)(f"{Path(data[LABEL]).name}: {error}") from error
        result = dict(data)
        result[IMAGE] = torch.from_numpy(prepared.array[None])
        result[LABEL] = torch.from_numpy(classes[None])
        return result


def preprocessing_of(config: BaselineConfig) -> Preprocessing:
    return Preprocessing(
        orientation=config.data.orientation,
        spacing_mm=config.data.spacing_mm,
        intensity_percentiles=config.data.intensity_percentiles,
    )


def deterministic_transforms(config: BaselineConfig, *, pad: bool) -> list:
    """Load + preprocess (cached); for training also pad to the crop size and index foreground."""
    transforms: list = [LoadPreparedCased(preprocessing_of(config), config.classes.class_map())]
    if pad:
        transforms += [
            SpatialPadd(keys=(IMAGE, LABEL), spatial_size=config.model.patch_size, mode="constant"),
            FgBgToIndicesd(keys=LABEL),
        ]
    return transforms


def random_transforms(config: BaselineConfig) -> list:
    """Crops biased to foreground, then augmentations that suit sagittal spine MR.

    No flips: a left-right flip changes nothing useful for sagittal slices, and an up-down or
    front-back flip would produce anatomy that never occurs. Rotations stay in the sagittal
    plane (about the left-right axis, array axis 0).
    """
    fraction = config.train.foreground_fraction
    transforms: list = [
        RandCropByPosNegLabeld(
            keys=(IMAGE, LABEL),
            label_key=LABEL,
            spatial_size=config.model.patch_size,
            pos=fraction,
            neg=1.0 - fraction,
            num_samples=config.train.crops_per_iteration,
            fg_indices_key=f"{LABEL}_fg_indices",
            bg_indices_key=f"{LABEL}_bg_indices",
        )
    ]
    if config.train.augment:
        transforms += [
            RandAffined(
                keys=(IMAGE, LABEL),
                prob=0.3,
                rotate_range=(np.deg2rad(10.0), 0.0, 0.0),
                scale_range=(0.1, 0.1, 0.1),
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            RandBiasFieldd(keys=IMAGE, prob=0.2, coeff_range=(0.0, 0.2)),
            RandAdjustContrastd(keys=IMAGE, prob=0.2, gamma=(0.7, 1.5)),
            RandScaleIntensityd(keys=IMAGE, prob=0.3, factors=0.1),
            RandShiftIntensityd(keys=IMAGE, prob=0.3, offsets=0.1),
            RandGaussianSmoothd(keys=IMAGE, prob=0.1, sigma_x=(0.25, 0.75), sigma_y=(0.25, 0.75), sigma_z=(0.25, 0.75)),
            RandGaussianNoised(keys=IMAGE, prob=0.2, std=0.03),
        ]
    return transforms


def case_dicts(cases: Sequence[Case]) -> list[dict[str, Any]]:
    return [{IMAGE: c.image_path, LABEL: c.mask_path, "name": c.name} for c in cases]


def training_dataset(cases: Sequence[Case], config: BaselineConfig, *, progress: bool = False) -> CacheDataset:
    """Preprocessed, padded training cases held in memory; indexing one applies the random part."""
    transform = Compose(deterministic_transforms(config, pad=True) + random_transforms(config))
    return CacheDataset(
        case_dicts(cases), transform=transform, cache_rate=1.0, num_workers=max(config.data.cache_workers, 1),
        progress=progress,
    )


def validation_dataset(cases: Sequence[Case], config: BaselineConfig, *, progress: bool = False) -> CacheDataset:
    transform = Compose(deterministic_transforms(config, pad=False))
    return CacheDataset(
        case_dicts(cases), transform=transform, cache_rate=1.0, num_workers=max(config.data.cache_workers, 1),
        progress=progress,
    )


class IterationSamples(torch.utils.data.Dataset):
    """Sample k is the crops of training iteration k: which case and which random draws it gets
    depend only on (seed, k). Training is therefore the same with any number of loader workers,
    and a resumed run sees exactly the crops it would have seen without the interruption."""

    def __init__(self, cases: CacheDataset, *, seed: int, first: int, count: int):
        if len(cases) == 0:
            raise RunError("no training cases")
        self.cases, self.seed, self.first, self.count = cases, seed, first, count

    def __len__(self) -> int:
        return self.count

    def case_index(self, iteration: int) -> int:
        n = len(self.cases)
        epoch, position = divmod(iteration, n)
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        return int(order[position])

    def __getitem__(self, index: int) -> list[dict[str, Any]]:
        iteration = self.first + index
        seed = int(np.random.default_rng([self.seed, iteration, 1]).integers(2**31))
        self.cases.transform.set_random_state(seed=seed)
        crops = self.cases[self.case_index(iteration)]
        return crops if isinstance(crops, list) else [crops]


def describe_split(split: Split) -> str:
    return f"{len(split.training)} training and {len(split.validation)} validation series ({split.method})"
