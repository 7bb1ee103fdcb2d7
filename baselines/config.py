"""The baseline's training configuration: packaged defaults, a user file on top, validated and saved."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from baselines.classes import ClassMap
from baselines.errors import BaselineConfigError
from baselines.levels import LEVEL_NAMING

MODEL_NAMES = ("unetr",)
UNETR_PATCH = 16  # UNETR splits the input into 16^3 patches: every crop side must be a multiple


@dataclass(frozen=True)
class DataConfig:
    orientation: str
    spacing_mm: tuple[float, float, float]
    intensity_percentiles: tuple[float, float]
    validation_fraction: float
    cache_workers: int
    loader_workers: int


@dataclass(frozen=True)
class ClassesConfig:
    max_level: int
    partial_vertebrae: bool
    by_level: bool = True

    def class_map(self) -> ClassMap:
        if not self.by_level:
            return ClassMap.from_groups(partial_vertebrae=self.partial_vertebrae)
        return ClassMap.from_levels(max_level=self.max_level, partial_vertebrae=self.partial_vertebrae)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    patch_size: tuple[int, int, int]
    feature_size: int
    hidden_size: int
    mlp_dim: int
    num_heads: int
    dropout_rate: float


@dataclass(frozen=True)
class TrainConfig:
    max_iterations: int
    learning_rate: float
    weight_decay: float
    crops_per_iteration: int
    foreground_fraction: float
    validation_interval: int
    log_interval: int
    augment: bool
    amp: bool


@dataclass(frozen=True)
class InferenceConfig:
    overlap: float
    window_batch_size: int
    level_naming: str


@dataclass(frozen=True)
class BaselineConfig:
    seed: int
    data: DataConfig
    classes: ClassesConfig
    model: ModelConfig
    train: TrainConfig
    inference: InferenceConfig

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def with_max_iterations(self, max_iterations: int) -> "BaselineConfig":
        value = _check_int(max_iterations, "train.max_iterations", minimum=1)
        return dataclasses.replace(self, train=dataclasses.replace(self.train, max_iterations=value))

    def to_toml(self) -> str:
        return dump_toml(self.to_dict())


def default_config_path() -> Path:
    return Path(str(resources.files("baselines") / "default_config.toml"))


def smoke_config_path() -> Path:
    """A configuration that learns in minutes on a CPU (for CI and first tries; not for results)."""
    return Path(str(resources.files("baselines") / "smoke_config.toml"))


def load_config(path: Path | str | None = None, *, base: Path | str | None = None) -> BaselineConfig:
    """The defaults (or the file `base`) with the keys of `path` on top, validated.

    A file that is itself a complete configuration (such as a run's saved config.toml) loads
    the same way: every key it sets wins.
    """
    document = _read_toml(Path(base) if base is not None else default_config_path())
    source = "defaults"
    if path is not None:
        path = Path(path)
        document = _merge(document, _read_toml(path), where="")
        source = str(path)
    return config_from_mapping(document, source=source)


def save_config(config: BaselineConfig, path: Path) -> None:
    Path(path).write_text(config.to_toml(), encoding="utf-8")


def config_from_mapping(document: Mapping[str, Any], *, source: str = "config") -> BaselineConfig:
    sections = ("data", "classes", "model", "train", "inference")
    _no_unknown(document, ("seed", *sections), f"{source}: top level")
    for name in sections:
        if not isinstance(document.get(name), Mapping):
            raise BaselineConfigError(f"{source}: missing table [{name}]")
    d, c, m, t, i = (document[name] for name in sections)
    where = lambda section: f"{source}: [{section}]"  # noqa: E731
    data = DataConfig(
        orientation=_orientation(_get(d, "orientation", where("data")), f"{source}: data.orientation"),
        spacing_mm=_floats(_get(d, "spacing_mm", where("data")), f"{source}: data.spacing_mm", 3, positive=True),
        intensity_percentiles=_percentiles(_get(d, "intensity_percentiles", where("data")), source),
        validation_fraction=_fraction(_get(d, "validation_fraction", where("data")), f"{source}: data.validation_fraction", open_low=True),
        cache_workers=_check_int(_get(d, "cache_workers", where("data")), f"{source}: data.cache_workers", minimum=0),
        loader_workers=_check_int(_get(d, "loader_workers", where("data")), f"{source}: data.loader_workers", minimum=0),
    )
    _no_unknown(d, [f.name for f in dataclasses.fields(DataConfig)], where("data"))
    classes = ClassesConfig(
        max_level=_check_int(_get(c, "max_level", where("classes")), f"{source}: classes.max_level", minimum=1),
        partial_vertebrae=_bool(_get(c, "partial_vertebrae", where("classes")), f"{source}: classes.partial_vertebrae"),
        # Runs and checkpoints saved before classes by group existed had a class per level.
        by_level=_bool(c.get("by_level", True), f"{source}: classes.by_level"),
    )
    _no_unknown(c, [f.name for f in dataclasses.fields(ClassesConfig)], where("classes"))
    classes.class_map()  # validates max_level against the label map
    model = ModelConfig(
        name=_choice(_get(m, "name", where("model")), f"{source}: model.name", MODEL_NAMES),
        patch_size=_patch(_get(m, "patch_size", where("model")), f"{source}: model.patch_size"),
        feature_size=_check_int(_get(m, "feature_size", where("model")), f"{source}: model.feature_size", minimum=1),
        hidden_size=_check_int(_get(m, "hidden_size", where("model")), f"{source}: model.hidden_size", minimum=1),
        mlp_dim=_check_int(_get(m, "mlp_dim", where("model")), f"{source}: model.mlp_dim", minimum=1),
        num_heads=_check_int(_get(m, "num_heads", where("model")), f"{source}: model.num_heads", minimum=1),
        dropout_rate=_fraction(_get(m, "dropout_rate", where("model")), f"{source}: model.dropout_rate", open_high=True),
    )
    _no_unknown(m, [f.name for f in dataclasses.fields(ModelConfig)], where("model"))
    if model.hidden_size % model.num_heads:
        raise BaselineConfigError(
            f"{source}: model.hidden_size ({model.hidden_size}) must be a multiple of model.num_heads ({model.num_heads})"
        )
    train = TrainConfig(
        max_iterations=_check_int(_get(t, "max_iterations", where("train")), f"{source}: train.max_iterations", minimum=1),
        learning_rate=_floats([_get(t, "learning_rate", where("train"))], f"{source}: train.learning_rate", 1, positive=True)[0],
        weight_decay=_floats([_get(t, "weight_decay", where("train"))], f"{source}: train.weight_decay", 1, positive=False)[0],
        crops_per_iteration=_check_int(_get(t, "crops_per_iteration", where("train")), f"{source}: train.crops_per_iteration", minimum=1),
        foreground_fraction=_fraction(_get(t, "foreground_fraction", where("train")), f"{source}: train.foreground_fraction"),
        validation_interval=_check_int(_get(t, "validation_interval", where("train")), f"{source}: train.validation_interval", minimum=1),
        log_interval=_check_int(_get(t, "log_interval", where("train")), f"{source}: train.log_interval", minimum=1),
        augment=_bool(_get(t, "augment", where("train")), f"{source}: train.augment"),
        amp=_bool(_get(t, "amp", where("train")), f"{source}: train.amp"),
    )
    _no_unknown(t, [f.name for f in dataclasses.fields(TrainConfig)], where("train"))
    inference = InferenceConfig(
        overlap=_fraction(_get(i, "overlap", where("inference")), f"{source}: inference.overlap", open_high=True),
        window_batch_size=_check_int(_get(i, "window_batch_size", where("inference")), f"{source}: inference.window_batch_size", minimum=1),
        # Runs and checkpoints saved before level naming was configurable kept the network's names.
        level_naming=_choice(i.get("level_naming", "network"), f"{source}: inference.level_naming", LEVEL_NAMING),
    )
    _no_unknown(i, [f.name for f in dataclasses.fields(InferenceConfig)], where("inference"))
    if not classes.by_level and inference.level_naming != "count-from-sacrum":
        raise BaselineConfigError(
            f"{source}: classes.by_level = false predicts no levels, so inference.level_naming must be "
            f"'count-from-sacrum', found {inference.level_naming!r}"
        )
    seed = _check_int(document.get("seed", 0), f"{source}: seed", minimum=0)
    return BaselineConfig(seed=seed, data=data, classes=classes, model=model, train=train, inference=inference)


# --- reading, merging and writing -------------------------------------------------------------

def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise BaselineConfigError(f"{path}: not valid TOML: {error}") from error


def _merge(base: Mapping[str, Any], top: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        name = f"{where}.{key}" if where else key
        if key not in base:
            raise BaselineConfigError(f"unknown config key {name!r}; known keys here: {sorted(base)}")
        if isinstance(base[key], Mapping):
            if not isinstance(value, Mapping):
                raise BaselineConfigError(f"config key {name!r} must be a table, found {value!r}")
            merged[key] = _merge(base[key], value, where=name)
        else:
            merged[key] = value
    return merged


def dump_toml(document: Mapping[str, Any]) -> str:
    """TOML text of a two-level mapping of scalars and flat lists (what a config holds)."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in document.items() if not isinstance(value, Mapping)]
    for key, value in document.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{key}]"] + [f"{k} = {_toml_value(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a TOML value")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --- checks -----------------------------------------------------------------------------------

def _get(table: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise BaselineConfigError(f"{where}: missing key {key!r}")
    return table[key]


def _no_unknown(table: Mapping[str, Any], known, where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise BaselineConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")


def _check_int(value: Any, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BaselineConfigError(f"{what} must be an integer >= {minimum}, found {value!r}")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise BaselineConfigError(f"{what} must be true or false, found {value!r}")
    return value


def _choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BaselineConfigError(f"{what} must be one of {list(choices)}, found {value!r}")
    return value


def _floats(value: Any, what: str, count: int, *, positive: bool) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise BaselineConfigError(f"{what} must be a list of {count} numbers, found {value!r}")
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise BaselineConfigError(f"{what} must hold finite numbers, found {value!r}")
        if (positive and item <= 0) or item < 0:
            raise BaselineConfigError(f"{what} must be {'> 0' if positive else '>= 0'}, found {value!r}")
        numbers.append(float(item))
    return tuple(numbers)


def _fraction(value: Any, what: str, *, open_low: bool = False, open_high: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > 0 if open_low else value >= 0) and (value < 1 if open_high else value <= 1)
    if not ok:
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise BaselineConfigError(f"{what} must be a number in {interval}, found {value!r}")
    return float(value)


def _percentiles(value: Any, source: str) -> tuple[float, float]:
    what = f"{source}: data.intensity_percentiles"
    low, high = _floats(value, what, 2, positive=False)
    if not low < high <= 100:
        raise BaselineConfigError(f"{what} must be [low, high] with 0 <= low < high <= 100, found {value!r}")
    return low, high


def _patch(value: Any, what: str) -> tuple[int, int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise BaselineConfigError(f"{what} must be a list of 3 integers, found {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0 or item % UNETR_PATCH:
            raise BaselineConfigError(f"{what} must hold positive multiples of {UNETR_PATCH}, found {value!r}")
    return tuple(value)


def _orientation(value: Any, what: str) -> str:
    axes = {"L": "LR", "R": "LR", "A": "AP", "P": "AP", "S": "SI", "I": "SI"}
    if not isinstance(value, str) or len(value) != 3 or any(ch not in axes for ch in value) or len({axes[ch] for ch in value}) != 3:
        raise BaselineConfigError(
            f"{what} must be three letters naming each anatomical axis once (e.g. \"PIR\", \"LPS\"), found {value!r}"
        )
    return value
