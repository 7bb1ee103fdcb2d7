"""What an evaluation image was built with (profile, phase, limits), and where it finds its files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from evaluation.platform.errors import PlatformError

APP_ROOT = PurePosixPath("/opt/evaluation")
CONFIG_PATH = APP_ROOT / "config.json"
BAKED_GROUND_TRUTH = APP_ROOT / "ground-truth"
"""Ground truth baked into the image at build time (`--ground-truth`), as SPIDER's own evaluator does."""
PLATFORM_GROUND_TRUTH = PurePosixPath("/opt/ml/input/data/ground_truth")
"""Where the platform extracts the phase's ground-truth tarball."""
INPUT_ROOT = PurePosixPath("/input")
OUTPUT_ROOT = PurePosixPath("/output")
METRICS_FILE = "metrics.json"
PLATFORM_WORKERS = 2
"""Cases scored at once: the platform's evaluation machines have 2 vCPUs."""
LABEL_PREFIX = "org.spider-harness.evaluation."
MEASURED_MARK = "[spider] measured: "
"""Prefix of the stdout line where the entry point reports its time and peak memory (JSON follows)."""


@dataclass(frozen=True)
class EvaluationConfig:
    """The settings baked into an evaluation image (/opt/evaluation/config.json and image labels)."""

    phase: str
    profile: str
    scoring_time_limit_s: int
    case_values: bool
    rules_version: str
    ground_truth_cases: int = 0
    workers: int = PLATFORM_WORKERS

    def __post_init__(self) -> None:
        for name in ("scoring_time_limit_s", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PlatformError(f"evaluation config: {name} must be a positive integer, found {value!r}")
        if isinstance(self.ground_truth_cases, bool) or not isinstance(self.ground_truth_cases, int) \
                or self.ground_truth_cases < 0:
            raise PlatformError(f"evaluation config: ground_truth_cases must be an integer >= 0, "
                                f"found {self.ground_truth_cases!r}")
        if not isinstance(self.case_values, bool):
            raise PlatformError(f"evaluation config: case_values must be true or false, found {self.case_values!r}")
        for name in ("phase", "profile", "rules_version"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise PlatformError(f"evaluation config: {name} must be non-empty text, found {getattr(self, name)!r}")

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def labels(self) -> dict[str, str]:
        """The image labels that show the settings without running the image."""
        return {LABEL_PREFIX + name.replace("_", "-"): str(value).lower() if isinstance(value, bool) else str(value)
                for name, value in asdict(self).items()}

    @classmethod
    def from_mapping(cls, data: Any, *, source: str) -> "EvaluationConfig":
        names = {field.name for field in fields(cls)}
        if not isinstance(data, dict) or not {"phase", "profile", "scoring_time_limit_s", "case_values",
                                               "rules_version"} <= set(data) or set(data) - names:
            raise PlatformError(f"{source}: expected an object with the keys {sorted(names)}, found "
                                f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
        return cls(**data)

    @classmethod
    def read(cls, path: Path) -> "EvaluationConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PlatformError(f"expected the evaluation settings at {path}, found no such file: "
                                "build the image with `spider gc evaluation-image`") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PlatformError(f"{path}: expected JSON, found text that is not ({error})") from None
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_labels(cls, labels: dict[str, str], *, image: str) -> "EvaluationConfig":
        """The settings of a built image, read back from its labels."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            text = labels.get(LABEL_PREFIX + field.name.replace("_", "-"))
            if text is None:
                continue
            if field.name == "case_values":
                values[field.name] = text == "true"
            elif field.name in ("scoring_time_limit_s", "ground_truth_cases", "workers"):
                values[field.name] = int(text) if text.isdigit() else text
            else:
                values[field.name] = text
        if "profile" not in values:
            raise PlatformError(f"image {image} carries no {LABEL_PREFIX}* labels: expected an evaluation image "
                                "built by `spider gc evaluation-image`")
        return cls.from_mapping(values, source=f"labels of image {image}")
