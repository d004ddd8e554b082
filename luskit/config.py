"""params.yaml -> frozen dataclasses, with errors that name the file, the key and the fix.

Each stage declares a frozen dataclass for its section; `load_section(path, "synth", SynthParams)`
converts the YAML mapping recursively (nested dataclasses, tuples, dicts), rejects unknown or
mistyped keys, and lets the dataclass's own `__post_init__` check ranges.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad value in params.yaml (the message says which key and what to do)."""


def read_params(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found: run from the project folder or pass --params")
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_section(path: Path, section: str, cls: type[T]) -> T:
    """Read `section` of the params file at `path` into the frozen dataclass `cls`."""
    data = read_params(path)
    if section not in data:
        raise ConfigError(f"{path}: section '{section}:' is missing; copy it from the repository's params.yaml")
    try:
        return convert(data[section], cls, section)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def convert(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type `tp`; `where` is the dotted key for messages."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _to_dataclass(value, tp, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} is not one of {options}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {convert(k, key_tp, where): convert(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    return _scalar(value, tp, where)


def _scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _to_dataclass(value: Any, cls: type[T], where: str) -> T:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {name: convert(v, hints[name], f"{where}.{name}") for name, v in value.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def require(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless `condition`; for dataclass __post_init__ range checks."""
    if not condition:
        raise ValueError(message)
