"""Serving environment specs, read the way Azure ML reads them: config-side, adapter-free.

An environment spec is the Azure CLI v2 YAML (``environments/<name>/environment.yml``: ``$schema``,
``name``, ``image``, ``conda_file``, optional ``description``). ``load_environment_spec`` turns it
into the port's ``EnvironmentSpec``; ``parse_conda_file`` reads the conda file faithfully - the
Python version, the ``pip:`` entries, and the conda packages - and refuses nothing that Azure
accepts. Azure ML builds a conda environment from the file on top of the image, so conda packages
are ordinary there (its docs even prefer the conda build of a package that exists in both:
https://learn.microsoft.com/python/api/azureml-core/azureml.core.conda_dependencies.condadependencies,
"Remarks"); AutoML's own ``conda_env_*.yml`` lists some.

What an adapter cannot honour is that adapter's to refuse, when it builds: the local workspace
(``mlops.workspace.local.registry.environments``) makes a virtualenv of the running interpreter,
so it refuses another Python and any conda package; Azure refuses neither. Keeping those rules out
of this module is what lets ``mlops.config`` load a spec for an Azure release without tripping a
local-only rule.

The one refusal here is project-wide: a Docker ``build`` context. ``EnvironmentSpec`` is image +
conda file, and both adapters create environments from exactly that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlops.errors import ConfigError
from mlops.workspace.port import EnvironmentSpec

_PYTHON_SPEC = re.compile(r"^python\s*(?:={1,2}|>=|~=)?\s*(?P<version>\d+\.\d+)?(?:\.[\d*]+)*\s*$")
_PACKAGE_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)")


def load_environment_spec(path: Path) -> EnvironmentSpec:
    """Read an Azure CLI v2 environment YAML; ``conda_file`` is relative to the YAML's folder.

    Raises ``ConfigError`` naming the file and the key.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read the environment spec: {error.strerror}", file=str(path)) from error
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", file=str(path)) from error
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with name, image and conda_file", file=str(path))
    for key in ("name", "image", "conda_file"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError("missing or empty: expected a string", file=str(path), key=key)
    if "build" in data:
        raise ConfigError("Docker build contexts are not supported: environments are released as image + "
                          "conda_file (by the local workspace and by Azure alike)", file=str(path), key="build")
    conda_file = (path.parent / data["conda_file"]).resolve()
    if not conda_file.is_file():
        raise ConfigError(f"conda file {conda_file} does not exist", file=str(path), key="conda_file")
    description = data.get("description") or ""
    return EnvironmentSpec(name=data["name"], image=data["image"], conda_file=conda_file,
                           description=str(description))


@dataclass(frozen=True)
class CondaRequirements:
    """A conda file's dependencies: the Python version, the ``pip:`` entries and the conda packages."""

    python: str | None
    """``major.minor`` from ``python=X.Y``, or None when the file does not pin Python."""
    pip: tuple[str, ...]
    conda: tuple[str, ...] = ()
    """Conda packages other than ``python`` and ``pip``, as written (e.g. ``numpy=1.26``)."""


def parse_conda_file(text: str, *, file: str = "conda file") -> CondaRequirements:
    """Parse a conda environment file. Raises ``ConfigError`` only for a file Azure could not read
    either: not YAML, no ``dependencies`` list, a nested entry other than ``pip:``, an unreadable
    ``python`` pin."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", file=file) from error
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise ConfigError("expected a 'dependencies' list", file=file, key="dependencies")
    python: str | None = None
    pip: list[str] = []
    conda: list[str] = []
    for entry in data["dependencies"]:
        if isinstance(entry, dict):
            if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
                raise ConfigError(f"unexpected entry {entry!r}: only a 'pip:' list may be nested",
                                  file=file, key="dependencies")
            pip.extend(str(item) for item in entry["pip"])
            continue
        text_entry = str(entry).strip()
        name_match = _PACKAGE_NAME.match(text_entry)
        name = name_match.group(1).lower() if name_match else text_entry
        if name == "python":
            match = _PYTHON_SPEC.match(text_entry)
            if not match or not match.group("version"):
                raise ConfigError(f"cannot read the Python version from {text_entry!r}; write python=X.Y",
                                  file=file, key="dependencies")
            python = match.group("version")
        elif name == "pip":
            continue
        else:
            conda.append(text_entry)
    return CondaRequirements(python, tuple(pip), tuple(conda))
