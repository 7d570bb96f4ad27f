"""The serving environment's conda file, made from a model's own conda file: pins removed, canonical.

An AutoML trial ships the conda file it was trained with (``outputs/conda_env_v_1_0_0.yml``). Its
shape, as AutoML writes it: ``name: project_environment``; ``dependencies`` - the pinned
``python=3.9.22``, a ``pip:`` block with the AutoML runtime (``azureml-train-automl-runtime==1.60.0``,
``inference-schema``, ``azureml-defaults==1.60.0``), then the training image's conda packages, pinned
(``numpy==1.23.5``, ``pandas==1.5.3``, ``scikit-learn==1.5.1``, ``holidays==0.70``, ``psutil==5.9.3``);
``channels: [anaconda, conda-forge]``. (The whole file: ``tests/release/helpers.py``
``AUTOML_CONDA_FILE``; the local workspace's trials write one of the same shape,
``mlops.forecasting.sweep.automl_conda_file``.)

The serving environment is "the curated image + this file", with the version pins of named
dependencies removed. The default (``unpin: trailing``) removes the pins of the **trailing
non-pip dependencies**: the conda packages listed after the ``pip:`` block (above: numpy, pandas,
scikit-learn, holidays, psutil). Why those and only those:

* they are the training image's own conda solve, pinned to the exact builds that image had;
  against another image (the curated inference image, another channel order, a newer platform)
  those exact pins often have no joint solution and the image build fails, while any recent
  version of them serves the model;
* the ``pip:`` block is the AutoML runtime the pickled model was made with
  (``azureml-train-automl-runtime``, ``azureml-defaults``): unpickling needs exactly those
  versions, so its pins stay;
* ``python`` stays pinned: a pickle is only loadable by the Python it was written with, and pip
  and python themselves are never "dependencies" to unpin.

``unpin:`` may instead name the dependencies (conda or pip entries, by package name), or be empty.

The result is written canonically so its content hash (the environment's identity) depends only on
what it says: top-level keys in a fixed order (``name``, ``channels``, ``dependencies``, then the
rest sorted), conda dependencies sorted by package name with ``python`` first and the ``pip:`` list
last (conda treats the list as a set; channel order is kept - it is conda's priority order - and
the pip entries keep theirs, since pip options such as ``--extra-index-url`` are positional),
whitespace inside specs normalised, comments dropped. The same file in another key order gives the
same bytes; a changed pin gives other bytes, hence the next environment version.

Pure: text in, text and a report out. The release step (``steps.prepare.step_environment``) does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

TRAILING = "trailing"
"""The default of ``unpin``: the conda dependencies after the ``pip:`` block."""

HEADER = ("# The serving environment's conda file, written by mlops from the registered model's own\n"
          "# conda file (version pins removed as mlops.yaml's environment.from_model.unpin says).\n")
_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+(?:::[A-Za-z0-9_.\-]+)?)")
_KEY_ORDER = ("name", "channels", "dependencies")
_NEVER_UNPINNED = {"python", "pip"}


class CondaFileError(ValueError):
    """The model's conda file cannot be read as a conda environment file (the message says why)."""


def package_name(spec: str) -> str:
    """``numpy==1.23.5`` / ``numpy=1.23`` / ``numpy >=1.2`` / ``conda-forge::numpy=1`` -> ``numpy``
    (lower case, ``_`` as ``-``: the form both conda and pip compare names in)."""
    match = _NAME.match(spec)
    if not match:
        raise CondaFileError(f"cannot read a package name from {spec!r}")
    name = match.group(1).rsplit("::", 1)[-1]
    return re.sub(r"[-_.]+", "-", name).lower().rstrip("-")


def _normalise(spec: str) -> str:
    """Whitespace around version operators removed, runs of spaces collapsed."""
    text = " ".join(str(spec).split())
    return re.sub(r"\s*(===|==|>=|<=|~=|!=|=|<|>|,)\s*", r"\1", text)


def unpinned(spec: str) -> str:
    """The entry without its version (and build string): ``channel::name[extras]`` kept."""
    text = _normalise(spec)
    match = re.match(r"^([A-Za-z0-9_.\-]+(?:::[A-Za-z0-9_.\-]+)?(?:\[[^\]]*\])?)", text)
    if not match:
        raise CondaFileError(f"cannot read a package name from {spec!r}")
    return match.group(1)


def is_pinned(spec: str) -> bool:
    return unpinned(spec) != _normalise(spec)


@dataclass(frozen=True)
class Unpinned:
    """One dependency whose pin was removed."""

    name: str
    was: str
    now: str
    section: str
    """``conda`` or ``pip``."""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "was": self.was, "now": self.now, "section": self.section}


@dataclass(frozen=True)
class ServingCondaFile:
    text: str
    """The canonical YAML."""
    unpinned: tuple[Unpinned, ...]
    not_found: tuple[str, ...]
    """Names ``unpin`` asked for that the file does not list."""


def parse(text: str, *, source: str = "conda file") -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CondaFileError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise CondaFileError(f"{source}: expected a mapping with a 'dependencies' list")
    for entry in data["dependencies"]:
        if isinstance(entry, dict):
            if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
                raise CondaFileError(f"{source}: unexpected dependency {entry!r}: only a 'pip:' list may be nested")
        elif not isinstance(entry, str | int | float):
            raise CondaFileError(f"{source}: unexpected dependency {entry!r}")
    if "channels" in data and not isinstance(data["channels"], list):
        raise CondaFileError(f"{source}: 'channels' must be a list")
    return data


def trailing_dependencies(data: dict[str, Any]) -> list[str]:
    """Names of the conda dependencies listed after the ``pip:`` block (python and pip excluded)."""
    entries = data["dependencies"]
    pip_at = next((i for i, entry in enumerate(entries) if isinstance(entry, dict)), None)
    if pip_at is None:
        return []
    names = [package_name(str(entry)) for entry in entries[pip_at + 1:] if not isinstance(entry, dict)]
    return [name for name in names if name not in _NEVER_UNPINNED]


def _unpin_names(data: dict[str, Any], unpin: str | Sequence[str]) -> list[str]:
    if isinstance(unpin, str):
        if unpin != TRAILING:
            raise CondaFileError(f"unpin: expected {TRAILING!r} or a list of dependency names, got {unpin!r}")
        return trailing_dependencies(data)
    return [package_name(str(name)) for name in unpin]


def serving_conda_file(text: str, unpin: str | Sequence[str] = TRAILING, *,
                       source: str = "conda file") -> ServingCondaFile:
    """The model's conda file ``text`` with the pins of ``unpin`` removed, in canonical form."""
    data = parse(text, source=source)
    wanted = set(_unpin_names(data, unpin))
    refused = sorted(wanted & _NEVER_UNPINNED)
    if refused:
        raise CondaFileError(f"unpin: {', '.join(refused)} cannot be unpinned (a pickled model needs the Python "
                             "it was written with)")
    removed: list[Unpinned] = []
    seen: set[str] = set()
    conda: list[str] = []
    pip: list[str] | None = None
    for entry in data["dependencies"]:
        if isinstance(entry, dict):
            pip = (pip or []) + [_strip(str(item), "pip", wanted, removed, seen) for item in entry["pip"]]
        else:
            conda.append(_strip(str(entry), "conda", wanted, removed, seen))
    canonical = _canonical(data, conda, pip)
    not_found = tuple(sorted(wanted - seen))
    return ServingCondaFile(canonical, tuple(removed), not_found)


def _strip(entry: str, section: str, wanted: set[str], removed: list[Unpinned], seen: set[str]) -> str:
    text = _normalise(entry)
    if text.startswith("-"):  # a pip option (-r, --extra-index-url ...)
        return text
    name = package_name(text)
    if name not in wanted:
        return text
    seen.add(name)
    if not is_pinned(text):
        return text
    bare = unpinned(text)
    removed.append(Unpinned(name, text, bare, section))
    return bare


def _conda_sort_key(entry: str) -> tuple[int, str, str]:
    name = package_name(entry)
    return (0 if name == "python" else 1, name, entry)


def _canonical(data: dict[str, Any], conda: Iterable[str], pip: list[str] | None) -> str:
    dependencies: list[Any] = sorted(conda, key=_conda_sort_key)
    if pip is not None:
        dependencies.append({"pip": pip})
    ordered: dict[str, Any] = {}
    for key in _KEY_ORDER:
        if key == "dependencies":
            ordered[key] = dependencies
        elif key in data:
            ordered[key] = [_normalise(str(c)) for c in data[key]] if key == "channels" else data[key]
    for key in sorted(k for k in data if k not in _KEY_ORDER):
        ordered[key] = data[key]
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True)
    return HEADER + body


__all__ = ["TRAILING", "CondaFileError", "ServingCondaFile", "Unpinned", "package_name", "parse",
           "serving_conda_file", "trailing_dependencies", "unpinned", "is_pinned"]
