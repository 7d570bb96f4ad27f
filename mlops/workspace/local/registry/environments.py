"""Serving environments of the local workspace: real virtualenvs built from Azure ML environment specs.

An environment spec is the Azure CLI v2 YAML, read config-side (``mlops.specs.environment``: the
spec and its conda file as Azure reads them). Azure builds a Docker image from it; locally there
is no Docker, so the conda file's ``python=X.Y`` and ``pip:`` entries become a virtualenv of *this*
interpreter (``python -m venv`` + ``pip install``). Conda packages that have a PyPI equivalent
(numpy, pandas, pytorch -> torch, ...: ``CONDA_TO_PYPI``, as AutoML's conda files list them) are
installed from PyPI. What cannot be honoured is refused here, when a venv is built
(``venv_requirements``), with a clear error rather than silently ignored: another Python than the
running one, or conda packages without a PyPI equivalent, named. These are local-only rules:
loading a spec for an Azure release never meets them.

Identity is the spec's content hash (image + conda file bytes, ``EnvironmentSpec.content_hash``):

* versions are per workspace (next integer, tagged with the hash): an unchanged spec finds its
  version and builds nothing - a database lookup and a ``stat``, well under a second;
* venvs are machine-wide, keyed by the hash (``$MLOPS_VENV_CACHE``, default
  ``~/.cache/mlops/venvs``), so every workspace and every test on the machine shares one build.

A build happens in ``builds/<hash>-<random>/`` under an exclusive ``fcntl`` lock (a second process
asking for the same hash waits, then finds it done) and is published by atomically renaming a
symlink ``<hash>`` onto it. The venv is built at its final real path because venvs are not
relocatable (pip writes absolute shebangs); a killed build leaves only an unpublished folder,
which the next build under the lock removes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlops.errors import ConfigError, EnvironmentBuildError
from mlops.specs.environment import CondaRequirements, parse_conda_file
from mlops.workspace.local.registry.store import Store, dumps, file_lock, loads, now
from mlops.workspace.port import Environment, EnvironmentSpec, Progress, no_progress
from mlops.workspace.rules import check_asset_name


def default_venv_cache() -> Path:
    """``$MLOPS_VENV_CACHE``, else ``$XDG_CACHE_HOME/mlops/venvs`` (``~/.cache/mlops/venvs``)."""
    configured = os.environ.get("MLOPS_VENV_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "mlops" / "venvs"


# ---------------------------------------------------------------------------------------------
# What a virtualenv can be built from (the local-only rules; the spec itself is read config-side)


CONDA_TO_PYPI: dict[str, str] = {
    "numpy": "numpy", "pandas": "pandas", "pytorch": "torch", "scipy": "scipy", "scikit-learn": "scikit-learn",
    "psutil": "psutil", "holidays": "holidays", "py-xgboost": "xgboost", "tqdm": "tqdm", "pyyaml": "pyyaml",
    "joblib": "joblib", "cloudpickle": "cloudpickle", "setuptools": "setuptools", "wheel": "wheel",
}
"""Conda packages (as AutoML's conda files list them) with a PyPI distribution of the same code:
the local workspace installs those with pip. Every other conda package is refused by name."""

_CONDA_SPEC = re.compile(r"^(?:[A-Za-z0-9_.\-]+::)?(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<version>.*)$")


def conda_to_pip(entry: str) -> str | None:
    """A conda dependency as a pip requirement, or ``None`` when it has no PyPI equivalent.

    conda ``name=1.2`` means "1.2, any patch" (pip ``==1.2.*``); ``==``, ``>=``, ``<`` ... and
    comma-separated ranges mean the same in both. A build string (``numpy 1.23.5 py39h_0``) has no
    pip form: ``ValueError``."""
    match = _CONDA_SPEC.match(entry.strip())
    if not match:
        return None
    name = re.sub(r"[-_.]+", "-", match["name"]).lower()
    pypi = CONDA_TO_PYPI.get(name)
    if pypi is None:
        return None
    raw = match["version"].strip()
    version = "".join(raw.split())
    if not version:
        return pypi
    if " " in raw and not re.match(r"^[<>=!~]", raw):
        raise ValueError(f"{entry!r}: a conda build string has no pip equivalent; write name==version")
    if re.fullmatch(r"=[^=<>!~,]+", version):
        return f"{pypi}={version}" if version.endswith(".*") else f"{pypi}=={version[1:]}.*"
    return pypi + version


def venv_requirements(text: str, *, file: str) -> CondaRequirements:
    """The conda file's requirements as a venv installs them, if this workspace can build them;
    else why not.

    Both refusals are the local workspace's own (Azure builds a conda environment and honours
    both), so they are applied here, when a venv is built, and never when a spec is loaded:
    conda packages without a PyPI equivalent raise ``ConfigError`` naming them (those with one
    join the pip requirements); another Python than the running one raises ``EnvironmentBuildError``.
    """
    requirements = parse_conda_file(text, file=file)
    mapped: list[str] = []
    refused: list[str] = []
    for entry in requirements.conda:
        try:
            requirement = conda_to_pip(entry)
        except ValueError as error:
            raise ConfigError(str(error), file=file, key="dependencies") from None
        (refused.append(entry) if requirement is None else mapped.append(requirement))
    if refused:
        raise ConfigError(
            f"conda-only packages cannot be installed by the local workspace: {', '.join(refused)}; "
            f"list them under 'pip:' instead (conda packages with a PyPI equivalent are installed with pip: "
            f"{', '.join(sorted(CONDA_TO_PYPI))})",
            file=file, key="dependencies",
        )
    check_python(requirements, file=file)
    return CondaRequirements(requirements.python, requirements.pip + tuple(mapped))


def check_python(requirements: CondaRequirements, *, file: str) -> None:
    """The venv is made by this interpreter, so the spec must ask for its major.minor."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if requirements.python is not None and requirements.python != running:
        raise EnvironmentBuildError(
            f"{file}: the conda file asks for python={requirements.python}, but the local workspace "
            f"builds virtualenvs with this interpreter, Python {running}; set python={running} or run "
            f"mlops with Python {requirements.python}"
        )


TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
"""PyTorch's CPU wheel index, as a conda file's ``pip:`` section names it for Azure's image build."""
_INDEX_OPTIONS = ("--index-url", "--extra-index-url", "-i")


def pip_arguments(entries: tuple[str, ...] | list[str], environ: Mapping[str, str]) -> list[str]:
    """The ``pip install`` arguments of a conda file's ``pip:`` entries on *this* machine.

    An ``--extra-index-url``/``--index-url`` naming PyTorch's CPU index (Azure's image build reaches
    it) is mapped the way the Makefile and the workflows already reach torch's CPU wheel: to
    ``$TORCH_CPU_INDEX`` when it is set (an empty value drops the option), else dropped when
    ``$PIP_FIND_LINKS`` names a folder of wheels that pip searches anyway (this offline machine),
    else kept. The spec, and so its content hash, is unchanged."""
    arguments = [arg for entry in entries for arg in shlex.split(entry)]
    result: list[str] = []
    index = 0
    while index < len(arguments):
        arg = arguments[index]
        option, value = arg, None
        if "=" in arg and arg.split("=", 1)[0] in _INDEX_OPTIONS:
            option, value = arg.split("=", 1)
        elif arg in _INDEX_OPTIONS and index + 1 < len(arguments):
            value = arguments[index + 1]
            index += 1
        index += 1
        if value is None:
            result.append(arg)
            continue
        if value.rstrip("/") == TORCH_CPU_INDEX:
            if "TORCH_CPU_INDEX" in environ:
                value = environ["TORCH_CPU_INDEX"].strip()
            elif environ.get("PIP_FIND_LINKS", "").strip():
                value = ""
        if value:
            result.extend([option, value])
    return result


# ---------------------------------------------------------------------------------------------
# The machine-wide venv cache


class VenvCache:
    """Virtualenvs keyed by environment content hash, shared by every workspace on the machine."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_venv_cache()

    def venv(self, content_hash: str) -> Path:
        return self.root / content_hash

    def python(self, content_hash: str) -> Path:
        return self.venv(content_hash) / "bin" / "python"

    def is_built(self, content_hash: str) -> bool:
        return self.python(content_hash).exists()

    def ensure(self, content_hash: str, requirements: CondaRequirements, *, label: str,
               cwd: Path | None = None, progress: Progress = no_progress) -> Path:
        """Return the venv for ``content_hash``, building it first if no process has yet."""
        if self.is_built(content_hash):
            return self.venv(content_hash)
        with file_lock(self.root / f"{content_hash}.lock"):
            if self.is_built(content_hash):  # another process built it while we waited
                progress(f"environment {label}: built by another process, reusing it")
                return self.venv(content_hash)
            self._remove_unpublished(content_hash)
            builds = self.root / "builds"
            builds.mkdir(parents=True, exist_ok=True)
            target = Path(tempfile.mkdtemp(prefix=f"{content_hash}-", dir=builds))
            try:
                self._build(target, requirements, label=label, cwd=cwd, progress=progress)
                link = self.root / f".{content_hash}.link"
                link.unlink(missing_ok=True)
                link.symlink_to(target.relative_to(self.root))
                os.replace(link, self.venv(content_hash))  # atomic publication
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
        return self.venv(content_hash)

    def _remove_unpublished(self, content_hash: str) -> None:
        builds = self.root / "builds"
        if builds.is_dir():
            for leftover in builds.glob(f"{content_hash}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        stale = self.venv(content_hash)
        if stale.is_symlink() or stale.exists():  # published but broken (its build was removed)
            stale.unlink() if stale.is_symlink() else shutil.rmtree(stale, ignore_errors=True)

    def _build(self, target: Path, requirements: CondaRequirements, *, label: str, cwd: Path | None,
               progress: Progress) -> None:
        packages = pip_arguments(requirements.pip, os.environ)
        progress(f"building environment {label}: python -m venv, then pip install {len(requirements.pip)} "
                 f"requirement(s) into {target}")
        self._run([sys.executable, "-m", "venv", str(target)], label=label, cwd=cwd, progress=progress)
        if packages:
            self._run([str(target / "bin" / "python"), "-m", "pip", "install", "--no-input", *packages],
                      label=label, cwd=cwd, progress=progress)
        progress(f"environment {label}: built")

    @staticmethod
    def _run(command: list[str], *, label: str, cwd: Path | None, progress: Progress) -> None:
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        tail: list[str] = []
        try:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # noqa: S603
                                    cwd=cwd, env=env, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise EnvironmentBuildError(f"environment {label}: cannot run {command[0]}: {error}") from error
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                progress(f"  {line}")
                tail = (tail + [line])[-30:]
        if proc.wait() != 0:
            raise EnvironmentBuildError(
                f"environment {label}: `{' '.join(command[1:4])} ...` failed with exit code {proc.returncode}:\n"
                + "\n".join(tail)
            )


# ---------------------------------------------------------------------------------------------
# Versions in the workspace store


def _environment(row: object) -> Environment:
    return Environment(row["name"], str(row["version"]), row["content_hash"], row["image"],  # type: ignore[index]
                       loads(row["tags"]))  # type: ignore[index]


def ensure_environment(store: Store, cache: VenvCache, spec: EnvironmentSpec, *,
                       progress: Progress = no_progress) -> Environment:
    """The version of ``spec.name`` whose content hash matches, else build the venv and add the next version."""
    check_asset_name("environment", spec.name)
    try:
        conda_text = spec.conda_file.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read the conda file: {error.strerror}", file=str(spec.conda_file)) from error
    digest = spec.content_hash()
    with store.read() as conn:
        row = conn.execute("SELECT * FROM environments WHERE name = ? AND content_hash = ?",
                           (spec.name, digest)).fetchone()
    if row is not None and cache.is_built(digest):
        progress(f"environment {spec.name}:{row['version']} matches the spec (sha256 {digest[:12]}); reusing it")
        return _environment(row)
    requirements = venv_requirements(conda_text, file=str(spec.conda_file))
    venv = cache.ensure(digest, requirements, label=f"{spec.name} (sha256 {digest[:12]})",
                        cwd=spec.conda_file.parent, progress=progress)
    with store.transaction() as conn:
        row = conn.execute("SELECT * FROM environments WHERE name = ? AND content_hash = ?",
                           (spec.name, digest)).fetchone()
        if row is not None:
            return _environment(row)
        (latest,) = conn.execute("SELECT MAX(version) FROM environments WHERE name = ?", (spec.name,)).fetchone()
        version = (latest or 0) + 1
        tags = {"content_hash": digest}
        conn.execute(
            "INSERT INTO environments (name, version, content_hash, image, conda_file, venv, tags, created_at) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (spec.name, version, digest, spec.image, conda_text, str(venv), dumps(tags), now()),
        )
    progress(f"created environment {spec.name}:{version} (sha256 {digest[:12]})")
    return Environment(spec.name, str(version), digest, spec.image, tags)


def get_environment(store: Store, name: str, version: str) -> Environment:
    from mlops.errors import NotFoundError

    with store.read() as conn:
        if version == "latest":
            row = conn.execute("SELECT * FROM environments WHERE name = ? ORDER BY version DESC LIMIT 1",
                               (name,)).fetchone()
        elif str(version).isdigit():
            row = conn.execute("SELECT * FROM environments WHERE name = ? AND version = ?",
                               (name, int(version))).fetchone()
        else:
            row = None
    if row is None:
        raise NotFoundError(f"environment {name}:{version} does not exist in this workspace "
                            "(create it from its spec first)")
    return _environment(row)


def environment_python(store: Store, cache: VenvCache, name: str, version: str, *,
                       progress: Progress = no_progress) -> Path:
    """The interpreter of a pinned environment version; rebuilt from the stored conda file if the
    machine-wide cache lost it (e.g. ``~/.cache`` was cleared)."""
    env = get_environment(store, name, version)
    if not cache.is_built(env.content_hash):
        with store.read() as conn:
            (conda_text,) = conn.execute("SELECT conda_file FROM environments WHERE name = ? AND version = ?",
                                         (name, int(env.version))).fetchone()
        requirements = venv_requirements(conda_text, file=f"environment {env.ref}")
        cache.ensure(env.content_hash, requirements, label=f"{env.ref} (sha256 {env.content_hash[:12]})",
                     progress=progress)
    return cache.python(env.content_hash)
