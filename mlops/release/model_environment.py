"""Which serving environment a release builds: the fixed spec, or one made from the model's conda file.

With ``environment.from_model`` in mlops.yaml, a registered model that carries a conda file
(AutoML's ``conda_env_v_1_0_0.yml``, or another version suffix) gets the environment "curated
image + that file with the pins of ``unpin`` removed", written canonically
(``mlops.release.conda_file``) into the release's artifacts, so its content hash - the
environment's identity on both workspaces - is stable: an unchanged trial builds nothing, a
changed conda file makes the next version. A model without a conda file (``mlops train``'s folder)
uses ``environment.spec``. Either way every deployment, online and batch, gets the pinned
``name:version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.config import Config
from mlops.errors import ConfigError
from mlops.release.conda_file import CondaFileError, Unpinned, serving_conda_file
from mlops.workspace.automl import CONDA_FILE, name_version
from mlops.workspace.port import EnvironmentSpec

CONDA_NAME = "conda.yml"
DESCRIPTION = ("Serving environment made by mlops: the curated image plus a registered model's own conda file, "
               "version pins of the named dependencies removed.")


@dataclass(frozen=True)
class EnvironmentChoice:
    spec: EnvironmentSpec
    source: str
    """``spec <file>`` or ``model <name:version> <conda file name>``."""
    unpinned: tuple[Unpinned, ...] = ()
    not_found: tuple[str, ...] = ()

    @property
    def from_model(self) -> bool:
        return self.source.startswith("model ")


def find_conda_file(folder: Path) -> Path | None:
    """The model's conda file by AutoML's names (``conda_env*.yml``): shallowest, highest version."""
    found = [p for p in Path(folder).rglob("*") if p.is_file() and CONDA_FILE.fullmatch(p.name)]
    if not found:
        return None
    return sorted(found, key=lambda p: (-len(p.relative_to(folder).parts), name_version(p.name), p.name))[-1]


def choose_environment(config: Config, model: str, model_folder: Path | None, out_dir: Path) -> EnvironmentChoice:
    """The environment for ``model`` (``name:version``), whose files are in ``model_folder`` (``None``:
    not looked at, because ``environment.from_model`` is not configured)."""
    settings = config.environment_from_model
    conda = find_conda_file(model_folder) if settings is not None and model_folder is not None else None
    if settings is None or conda is None:
        return EnvironmentChoice(config.environment, f"spec {config.environment_file}")
    try:
        serving = serving_conda_file(conda.read_text(), settings.unpin, source=f"model {model}: {conda.name}")
    except CondaFileError as error:
        raise ConfigError(f"cannot build the serving environment from the model's conda file: {error}",
                          file=str(config.file), key="environment.from_model") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    written = out_dir / CONDA_NAME
    written.write_text(serving.text)
    spec = EnvironmentSpec(name=settings.name, image=settings.image, conda_file=written,
                           description=settings.description or DESCRIPTION)
    return EnvironmentChoice(spec, f"model {model} {conda.name}", serving.unpinned, serving.not_found)
