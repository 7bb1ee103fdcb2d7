"""Inference shared by `spider baseline predict` and the reference container.

Sliding-window inference in numpy over the preprocessed volume, with any window model: the
exported ONNX network (onnxruntime; what the container runs, no torch needed) or the trained
PyTorch network (`baselines.model.TorchWindowModel`). Labels go back onto the input's grid.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol

import numpy as np
import SimpleITK as sitk

from baselines.classes import ClassMap, class_map_from_values
from baselines.errors import BaselineError, RunError
from baselines.levels import LEVEL_NAMING, count_from_sacrum
from baselines.preprocess import Preprocessing, prepare_image, to_input_grid
from challenge.contract import IMAGE_SUFFIX
from challenge.images import read_image

SPEC_SCHEMA_VERSION = 1
SPEC_FILE = "inference.json"
GAUSSIAN_SIGMA_SCALE = 0.125  # as MONAI's sliding_window_inference(mode="gaussian")


class WindowModel(Protocol):
    """Maps a batch of windows (N, 1, *window) float32 to logits (N, n_classes, *window)."""

    def __call__(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class InferenceSpec:
    """Everything inference needs besides the network: written next to an exported model."""

    class_values: tuple[int, ...]
    preprocessing: Preprocessing
    window_size: tuple[int, int, int]
    overlap: float
    window_batch_size: int
    level_naming: str = "network"
    classes_by_level: bool = True
    model_file: str = "model.onnx"
    model_sha256: str = ""

    @property
    def class_map(self) -> ClassMap:
        return class_map_from_values(self.class_values, by_level=self.classes_by_level)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SPEC_SCHEMA_VERSION,
            "class_values": list(self.class_values),
            "preprocessing": self.preprocessing.to_dict(),
            "window_size": list(self.window_size),
            "overlap": self.overlap,
            "window_batch_size": self.window_batch_size,
            "level_naming": self.level_naming,
            "classes_by_level": self.classes_by_level,
            "model_file": self.model_file,
            "model_sha256": self.model_sha256,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> "InferenceSpec":
        version = document.get("schema_version")
        if version != SPEC_SCHEMA_VERSION:
            raise RunError(f"inference spec schema_version must be {SPEC_SCHEMA_VERSION}, found {version!r}")
        try:
            return cls(
                class_values=tuple(int(v) for v in document["class_values"]),
                preprocessing=Preprocessing.from_dict(document["preprocessing"]),
                window_size=_three_ints(document["window_size"]),
                overlap=float(document["overlap"]),
                window_batch_size=int(document["window_batch_size"]),
                # Specs written before level naming was configurable kept the network's names.
                level_naming=str(document.get("level_naming", "network")),
                classes_by_level=bool(document.get("classes_by_level", True)),
                model_file=str(document["model_file"]),
                model_sha256=str(document["model_sha256"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(f"inference spec is incomplete or malformed: {error!r}") from error

    def __post_init__(self) -> None:
        if self.level_naming not in LEVEL_NAMING:
            raise RunError(
                f"inference spec level_naming must be one of {list(LEVEL_NAMING)}, found {self.level_naming!r}"
            )
        if not self.classes_by_level and self.level_naming != "count-from-sacrum":
            raise RunError("inference spec: classes by group carry no level, level_naming must be 'count-from-sacrum'")

    def write(self, folder: Path) -> Path:
        path = Path(folder) / SPEC_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> "InferenceSpec":
        path = Path(folder) / SPEC_FILE
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(
                f"no {SPEC_FILE} in {folder}: export the run first (spider baseline container does)"
            ) from None
        except json.JSONDecodeError as error:
            raise RunError(f"{path}: not valid JSON ({error})") from error
        return cls.from_dict(document)


def _three_ints(values: Iterable[Any]) -> tuple[int, int, int]:
    """Raises ValueError unless there are exactly three."""
    z, y, x = (int(v) for v in values)
    return z, y, x


# --- sliding window ---------------------------------------------------------------------------

def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start indices of windows covering `size` voxels (as MONAI's dense_patch_slices): the
    step is window * (1 - overlap) and the last window ends at the border."""
    if size <= window:
        return [0]
    step = max(int(window * (1.0 - overlap)), 1)
    count = math.ceil((size - window) / step) + 1
    return sorted({min(i * step, size - window) for i in range(count)})


def gaussian_weights(window: tuple[int, int, int], sigma_scale: float = GAUSSIAN_SIGMA_SCALE) -> np.ndarray:
    """Importance of each voxel of a window, as MONAI's compute_importance_map(mode="gaussian"):
    a Gaussian centred on the window (sigma = sigma_scale * side), floored at max(min, 1e-3)."""
    weights = np.ones((), dtype=np.float64)
    for n in window:
        offsets = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        weights = np.multiply.outer(weights, np.exp(-(offsets**2) / (2.0 * (n * sigma_scale) ** 2)))
    return np.maximum(weights, max(float(weights.min()), 1e-3)).astype(np.float32)


def sliding_window_logits(
    volume: np.ndarray,
    model: WindowModel,
    *,
    window: tuple[int, int, int],
    overlap: float,
    batch_size: int,
) -> np.ndarray:
    """Gaussian-weighted mean of the window logits at every voxel: (n_classes, *volume.shape).

    A volume smaller than the window is padded with zeros (centred, as MONAI does) and the
    padding is cut off again.
    """
    if volume.ndim != 3:
        raise ValueError(f"expected a 3D (z, y, x) volume, found shape {volume.shape}")
    pads = [max(w - s, 0) for w, s in zip(window, volume.shape, strict=True)]
    before = [p // 2 for p in pads]
    padded = np.pad(volume.astype(np.float32, copy=False), [(b, p - b) for b, p in zip(before, pads, strict=True)])
    starts = [window_starts(s, w, overlap) for s, w in zip(padded.shape, window, strict=True)]
    corners = [(z, y, x) for z in starts[0] for y in starts[1] for x in starts[2]]
    weights = gaussian_weights(window)
    total: np.ndarray | None = None
    weight_sum = np.zeros(padded.shape, dtype=np.float32)
    for first in range(0, len(corners), batch_size):
        batch_corners = corners[first : first + batch_size]
        windows = np.stack([padded[_box(c, window)][None] for c in batch_corners])
        logits = np.asarray(model(windows), dtype=np.float32)
        expected = (len(batch_corners), logits.shape[1] if logits.ndim == 5 else -1, *window)
        if logits.ndim != 5 or logits.shape[0] != len(batch_corners) or tuple(logits.shape[2:]) != tuple(window):
            raise BaselineError(f"the model returned logits of shape {logits.shape}, expected {expected}")
        if total is None:
            total = np.zeros((logits.shape[1], *padded.shape), dtype=np.float32)
        for corner, window_logits in zip(batch_corners, logits, strict=True):
            box = _box(corner, window)
            total[(slice(None), *box)] += window_logits * weights
            weight_sum[box] += weights
    assert total is not None  # at least one window always exists
    total /= weight_sum
    crop = tuple(slice(b, b + s) for b, s in zip(before, volume.shape, strict=True))
    return total[(slice(None), *crop)]


def _box(corner: tuple[int, int, int], window: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    (z, y, x), (depth, height, width) = corner, window
    return slice(z, z + depth), slice(y, y + height), slice(x, x + width)


# --- whole images -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    """A segmentation on the input's grid (SPIDER values, uint8) and how long each step took."""

    labels: sitk.Image
    seconds_preprocess: float
    seconds_network: float
    seconds_postprocess: float


def predict_image(image: sitk.Image, model: WindowModel, spec: InferenceSpec) -> Prediction:
    """Segment one image: preprocess, sliding window, argmax, SPIDER values on the input grid."""
    start = time.perf_counter()
    prepared = prepare_image(image, spec.preprocessing)
    after_preprocess = time.perf_counter()
    logits = sliding_window_logits(
        prepared.array, model, window=spec.window_size, overlap=spec.overlap, batch_size=spec.window_batch_size
    )
    class_map = spec.class_map
    if logits.shape[0] != class_map.n_classes:
        raise BaselineError(
            f"the model predicts {logits.shape[0]} classes but its spec names {class_map.n_classes}"
        )
    classes = np.argmax(logits, axis=0).astype(np.uint8)
    del logits
    after_network = time.perf_counter()
    values = class_map.decode(classes)
    if spec.level_naming == "count-from-sacrum":
        values = count_from_sacrum(values, prepared.grid)
    labels = to_input_grid(values, prepared.grid, image)
    return Prediction(
        labels=labels,
        seconds_preprocess=after_preprocess - start,
        seconds_network=after_network - after_preprocess,
        seconds_postprocess=time.perf_counter() - after_network,
    )


def predict_folder(
    input_dir: Path,
    output_dir: Path,
    model: WindowModel,
    spec: InferenceSpec,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Segment every .mha in `input_dir` into `output_dir` under the same file name."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise RunError(f"input folder not found: {input_dir}")
    images = sorted(p for p in input_dir.iterdir() if p.suffix == IMAGE_SUFFIX and not p.name.startswith("."))
    if not images:
        raise RunError(f"no {IMAGE_SUFFIX} images in {input_dir}")
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in images:
        prediction = predict_image(read_image(path), model, spec)
        target = output_dir / path.name
        sitk.WriteImage(prediction.labels, str(target), True)
        written.append(target)
        if progress is not None:
            seconds = prediction.seconds_preprocess + prediction.seconds_network + prediction.seconds_postprocess
            progress(f"{path.name}: {seconds:.1f} s")
    return written


# --- the exported network ---------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup CPU quota (containers)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpu_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _cgroup_cpu_quota() -> float | None:
    try:  # cgroup v2
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


class OnnxWindowModel:
    """The exported network run by onnxruntime on the CPU."""

    def __init__(self, path: Path, *, threads: int | None = None, expected_sha256: str | None = None):
        path = Path(path)
        if not path.is_file():
            raise RunError(f"model file not found: {path}")
        if expected_sha256:
            found = sha256_of(path)
            if found != expected_sha256:
                raise RunError(f"{path.name}: sha256 {found} does not match the recorded {expected_sha256}")
        import onnxruntime  # imported here: only the ONNX path needs it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or available_cpus()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: np.ascontiguousarray(windows, dtype=np.float32)})[0]


def load_exported(folder: Path, *, threads: int | None = None) -> tuple[OnnxWindowModel, InferenceSpec]:
    """The ONNX model and spec of an export folder, the model's sha256 checked against the spec."""
    spec = InferenceSpec.read(folder)
    model = OnnxWindowModel(Path(folder) / spec.model_file, threads=threads, expected_sha256=spec.model_sha256)
    return model, spec
