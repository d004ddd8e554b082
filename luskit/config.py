"""params.yaml -> frozen dataclasses, with errors that name the file, the key and the fix.

Each stage declares a frozen dataclass for its section; `load_section(path, "synth", SynthParams)`
converts the YAML mapping recursively (nested dataclasses, tuples, dicts), rejects unknown or
mistyped keys, and lets the dataclass's own `__post_init__` check ranges.

Every key a stage reads is recorded (`recording()` in-process; LUSKIT_PARAMS_READS=<file> appends "stage<TAB>key"
lines from any process): tests/luskit/test_dvc_params.py checks that each dvc.yaml stage lists what it reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad value in params.yaml (the message says which key and what to do)."""


_sinks: list[set[str]] = []  # open recording() contexts
stage_label = ""  # the running stage (set by luskit.stages.entry) for LUSKIT_PARAMS_READS lines


def note_read(key: str) -> None:
    """Record that the running code read the dotted params key `key` (a whole section or mapping: its name)."""
    for sink in _sinks:
        sink.add(key)
    log = os.environ.get("LUSKIT_PARAMS_READS")
    if log:  # one short O_APPEND write per key: lines from parallel stage processes do not interleave
        with open(log, "a") as fh:
            fh.write(f"{stage_label or '?'}\t{key}\n")


@contextlib.contextmanager
def recording() -> Iterator[set[str]]:
    """Collect the dotted params keys read inside the block."""
    sink: set[str] = set()
    _sinks.append(sink)
    try:
        yield sink
    finally:
        _sinks.remove(sink)


class _Tracked(dict):
    """A params mapping that records each leaf key read from it ("clips.length"); iterating it reads it whole."""

    def __init__(self, data: dict, prefix: str) -> None:
        super().__init__(data)
        self._prefix = prefix

    def _wrap(self, key: Any, value: Any) -> Any:
        dotted = f"{self._prefix}{key}"
        if isinstance(value, dict):
            return _Tracked(value, dotted + ".")
        note_read(dotted)
        return value

    def __getitem__(self, key: Any) -> Any:
        return self._wrap(key, super().__getitem__(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return self._wrap(key, super().__getitem__(key)) if key in self else default

    def _whole(self) -> None:
        note_read(self._prefix.rstrip(".") or "*")

    def __iter__(self):
        self._whole()
        return super().__iter__()

    def items(self):
        self._whole()
        return super().items()

    def values(self):
        self._whole()
        return super().values()

    def keys(self):
        self._whole()
        return super().keys()


def read_params(path: Path) -> dict[str, Any]:
    """The whole params file as a mapping; the keys read from it are recorded (see `recording`)."""
    return _Tracked(_read(path), "")


def _read(path: Path) -> dict[str, Any]:
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
    data = _read(path)
    if section not in data:
        raise ConfigError(f"{path}: section '{section}:' is missing; copy it from the repository's params.yaml")
    for key in data[section] or {}:  # every key given is converted, so read (a mapping counts whole)
        note_read(f"{section}.{key}")
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
