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
    d, c, m, t, i = (_Table(document[name], name, source) for name in sections)
    data = _data_config(d)
    classes = _classes_config(c)
    model = _model_config(m)
    train = _train_config(t)
    inference = _inference_config(i)
    if not classes.by_level and inference.level_naming != "count-from-sacrum":
        raise BaselineConfigError(
            f"{source}: classes.by_level = false predicts no levels, so inference.level_naming must be "
            f"'count-from-sacrum', found {inference.level_naming!r}"
        )
    seed = _check_int(document.get("seed", 0), f"{source}: seed", minimum=0)
    return BaselineConfig(seed=seed, data=data, classes=classes, model=model, train=train, inference=inference)


@dataclass(frozen=True)
class _Table:
    """One [section] of a configuration document, and the names its error messages give."""

    values: Mapping[str, Any]
    section: str
    source: str

    @property
    def where(self) -> str:
        return f"{self.source}: [{self.section}]"

    def get(self, key: str) -> Any:
        """A required key's value."""
        return _get(self.values, key, self.where)

    def what(self, key: str) -> str:
        return f"{self.source}: {self.section}.{key}"

    def check_known(self, config_class: type) -> None:
        _no_unknown(self.values, [f.name for f in dataclasses.fields(config_class)], self.where)


def _data_config(table: _Table) -> DataConfig:
    data = DataConfig(
        orientation=_orientation(table.get("orientation"), table.what("orientation")),
        spacing_mm=_spacing(table.get("spacing_mm"), table.what("spacing_mm")),
        intensity_percentiles=_percentiles(table.get("intensity_percentiles"), table.source),
        validation_fraction=_fraction(table.get("validation_fraction"), table.what("validation_fraction"),
                                      open_low=True),
        cache_workers=_check_int(table.get("cache_workers"), table.what("cache_workers"), minimum=0),
        loader_workers=_check_int(table.get("loader_workers"), table.what("loader_workers"), minimum=0),
    )
    table.check_known(DataConfig)
    return data


def _classes_config(table: _Table) -> ClassesConfig:
    classes = ClassesConfig(
        max_level=_check_int(table.get("max_level"), table.what("max_level"), minimum=1),
        partial_vertebrae=_bool(table.get("partial_vertebrae"), table.what("partial_vertebrae")),
        # Runs and checkpoints saved before classes by group existed had a class per level.
        by_level=_bool(table.values.get("by_level", True), table.what("by_level")),
    )
    table.check_known(ClassesConfig)
    classes.class_map()  # validates max_level against the label map
    return classes


def _model_config(table: _Table) -> ModelConfig:
    model = ModelConfig(
        name=_choice(table.get("name"), table.what("name"), MODEL_NAMES),
        patch_size=_patch(table.get("patch_size"), table.what("patch_size")),
        feature_size=_check_int(table.get("feature_size"), table.what("feature_size"), minimum=1),
        hidden_size=_check_int(table.get("hidden_size"), table.what("hidden_size"), minimum=1),
        mlp_dim=_check_int(table.get("mlp_dim"), table.what("mlp_dim"), minimum=1),
        num_heads=_check_int(table.get("num_heads"), table.what("num_heads"), minimum=1),
        dropout_rate=_fraction(table.get("dropout_rate"), table.what("dropout_rate"), open_high=True),
    )
    table.check_known(ModelConfig)
    if model.hidden_size % model.num_heads:
        raise BaselineConfigError(
            f"{table.source}: model.hidden_size ({model.hidden_size}) must be a multiple of "
            f"model.num_heads ({model.num_heads})"
        )
    return model


def _train_config(table: _Table) -> TrainConfig:
    def count(key: str) -> int:
        return _check_int(table.get(key), table.what(key), minimum=1)

    train = TrainConfig(
        max_iterations=count("max_iterations"),
        learning_rate=_floats([table.get("learning_rate")], table.what("learning_rate"), 1, positive=True)[0],
        weight_decay=_floats([table.get("weight_decay")], table.what("weight_decay"), 1, positive=False)[0],
        crops_per_iteration=count("crops_per_iteration"),
        foreground_fraction=_fraction(table.get("foreground_fraction"), table.what("foreground_fraction")),
        validation_interval=count("validation_interval"),
        log_interval=count("log_interval"),
        augment=_bool(table.get("augment"), table.what("augment")),
        amp=_bool(table.get("amp"), table.what("amp")),
    )
    table.check_known(TrainConfig)
    return train


def _inference_config(table: _Table) -> InferenceConfig:
    inference = InferenceConfig(
        overlap=_fraction(table.get("overlap"), table.what("overlap"), open_high=True),
        window_batch_size=_check_int(table.get("window_batch_size"), table.what("window_batch_size"), minimum=1),
        # Runs and checkpoints saved before level naming was configurable kept the network's names.
        level_naming=_choice(table.values.get("level_naming", "network"), table.what("level_naming"), LEVEL_NAMING),
    )
    table.check_known(InferenceConfig)
    return inference


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


def _spacing(value: Any, what: str) -> tuple[float, float, float]:
    z, y, x = _floats(value, what, 3, positive=True)
    return z, y, x


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
    named_once = isinstance(value, str) and len(value) == 3 and all(ch in axes for ch in value)
    if not named_once or len({axes[ch] for ch in value}) != 3:
        raise BaselineConfigError(
            f"{what} must be three letters naming each anatomical axis once (e.g. \"PIR\", \"LPS\"), "
            f"found {value!r}"
        )
    return value
