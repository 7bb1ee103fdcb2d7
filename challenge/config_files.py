"""Reading the challenge's TOML configuration files with errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

from challenge.errors import ConfigError


def read_named_tables(path: Path, section: str, *, what: str) -> dict[str, dict[str, Any]]:
    """The `[section.NAME]` tables of a TOML file, keyed by NAME; `what` describes NAME in errors."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{section} file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    tables = document.get(section)
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{path}: expected at least one [{section}.{what}] table, found none")
    return tables


def check_keys(table: Mapping[str, Any], *, required: Sequence[str], optional: Sequence[str], where: str) -> None:
    """Raise ConfigError naming `where` for keys outside `required` + `optional` or missing from `required`."""
    unknown = sorted(set(table) - set(required) - set(optional))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected keys are {sorted([*required, *optional])}")
    missing = [key for key in required if key not in table]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
