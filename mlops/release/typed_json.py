"""Dataclasses <-> JSON, driven by the type hints: the release record's sections are plain
dataclasses, and this is the only code that turns them into JSON and back.

Rules (small on purpose):

* a dataclass becomes an object of its fields; a field named ``extra`` (``dict[str, Any]``) keeps
  keys the type does not know, so a record written by another version survives a load/save round
  trip unchanged;
* a class with ``to_dict()`` / ``from_dict()`` of its own (the gate ``Verdict``) uses them;
* enums are stored as their values, ``Path`` as a string, tuples as lists;
* reading is lenient where JSON is loose: a missing key takes the field's default, ``null`` an
  optional field's ``None``, an integer where a float is expected becomes a float.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, Union

T = TypeVar("T")
EXTRA = "extra"


def to_json(value: Any) -> Any:
    """The JSON-able form of ``value`` (dataclasses, enums, paths, containers, scalars)."""
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return fields_to_json(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def fields_to_json(value: Any) -> dict[str, Any]:
    """A dataclass instance as a JSON object of its fields (plus its ``extra`` keys)."""
    data = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)
            if f.name != EXTRA and f.metadata.get("json", True)}
    extra = getattr(value, EXTRA, None)
    if isinstance(extra, dict):
        data.update({key: item for key, item in extra.items() if key not in data})
    return data


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(kind: Any, data: Any) -> Any:
    """``data`` (parsed JSON) read as ``kind`` (a type hint)."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [option for option in typing.get_args(kind) if option is not type(None)]
        if data is None:
            return None
        return from_json(options[0], data) if len(options) == 1 else data
    if kind is Any:
        return data
    if origin in (dict, typing.get_origin(dict[str, int])):
        _key, item = typing.get_args(kind) or (str, Any)
        return {str(k): from_json(item, v) for k, v in (data or {}).items()}
    if origin in (list, tuple):
        args = typing.get_args(kind)
        item = args[0] if args else Any
        values = [from_json(item, v) for v in (data or [])]
        return tuple(values) if origin is tuple else values
    if isinstance(kind, type):
        if hasattr(kind, "from_dict"):
            return kind.from_dict(data)
        if dataclasses.is_dataclass(kind):
            return _dataclass(kind, data)
        if issubclass(kind, Enum):
            return kind(data)
        if kind is float:
            return float(data)
        if kind is int and not isinstance(data, bool):
            return int(data)
        if kind is str:
            return str(data)
        if kind is Path:
            return Path(data)
    return data


def _dataclass(cls: type[T], data: Any) -> T:
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == EXTRA or not f.metadata.get("json", True) or f.name not in data:
            continue
        values[f.name] = from_json(hints[f.name], data[f.name])
    if EXTRA in known:
        values[EXTRA] = {key: value for key, value in data.items() if key not in known}
    return cls(**values)
