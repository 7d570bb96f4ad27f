"""Serving environments: real venvs from Azure ML environment specs, built once per content hash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.errors import ConfigError, EnvironmentBuildError
from mlops.specs.environment import CondaRequirements, load_environment_spec, parse_conda_file
from mlops.workspace.local import LocalWorkspace
from mlops.workspace.local.registry.environments import VenvCache, conda_to_pip, venv_requirements
from tests.conftest import REPO

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SCHEMA = "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"


def write_spec(folder: Path, *, name: str = "tiny", image: str = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
               dependencies: str = f"  - python={PYTHON}\n  - pip\n  - pip:\n      - six==1.17.0\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conda.yml").write_text(f"name: {name}\nchannels:\n  - conda-forge\ndependencies:\n{dependencies}")
    spec = folder / "environment.yml"
    spec.write_text(f"{SCHEMA}name: {name}\nimage: {image}\nconda_file: conda.yml\n")
    return spec


@pytest.fixture(scope="module")
def venv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of its own, so these tests really build (the product's default is machine-wide)."""
    return tmp_path_factory.mktemp("venvs")


def test_build_reuse_and_next_version(tmp_path: Path, venv_cache: Path) -> None:
    workspace = LocalWorkspace(tmp_path / "ws", venv_cache=venv_cache)
    spec = load_environment_spec(write_spec(tmp_path / "env"))
    messages: list[str] = []
    first = workspace.ensure_environment(spec, progress=messages.append)
    assert (first.name, first.version, first.content_hash) == ("tiny", "1", spec.content_hash())
    assert first.tags["content_hash"] == spec.content_hash()
    assert any(m.startswith("building environment tiny") for m in messages)
    assert any("Successfully installed six" in m for m in messages), messages  # pip's output is streamed
    python = VenvCache(venv_cache).python(spec.content_hash())
    check = subprocess.run([str(python), "-c", "import six, sys; print(six.__version__, sys.prefix != sys.base_prefix)"],  # noqa: S603 - our own test commands
                           capture_output=True, text=True, check=True)
    assert check.stdout.split() == ["1.17.0", "True"]

    # unchanged spec, even from another workspace on the machine: no build, no new version, < 1 s
    other = LocalWorkspace(tmp_path / "other-ws", venv_cache=venv_cache)
    for ws, expected in ((workspace, "1"), (other, "1")):
        messages.clear()
        started = time.perf_counter()
        again = ws.ensure_environment(load_environment_spec(tmp_path / "env" / "environment.yml"),
                                      progress=messages.append)
        elapsed = time.perf_counter() - started
        assert again.version == expected
        assert not any("building" in m for m in messages), messages
        if ws is workspace:
            assert elapsed < 1.0, f"reusing an unchanged environment took {elapsed:.2f}s"
            assert "reusing it" in messages[0]

    # a changed spec is the next version
    changed = load_environment_spec(write_spec(tmp_path / "env", image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py311-cpu-inference:latest"))
    second = workspace.ensure_environment(changed)
    assert second.version == "2" and second.content_hash != first.content_hash
    assert workspace.get_environment("tiny", "1").content_hash == first.content_hash
    assert workspace.get_environment("tiny", "latest").version == "2"
    # nothing half-built is left behind
    builds = sorted(p.name.split("-")[0] for p in (venv_cache / "builds").iterdir())
    assert builds == sorted([first.content_hash, second.content_hash])


def test_two_processes_wait_for_one_build(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = write_spec(tmp_path / "env", name="tiny-concurrent")
    env = {**os.environ, "MLOPS_VENV_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.local.env_worker", str(tmp_path / "ws"), str(spec)],  # noqa: S603 - our own test commands
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert sum(out.count("building environment") for out in outputs) == 1, outputs
    assert all(out.strip().endswith("version=1") for out in outputs), outputs
    assert len(list((cache / "builds").iterdir())) == 1


def test_a_killed_build_leaves_no_half_venv(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = write_spec(tmp_path / "env", name="tiny-killed")
    env = {**os.environ, "MLOPS_VENV_CACHE": str(cache)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.local.env_worker", str(tmp_path / "ws"), str(spec)],  # noqa: S603
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("building environment"):
                time.sleep(0.2)  # inside `python -m venv`
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its `python -m venv` child, by process group
        proc.wait()
    loaded = load_environment_spec(spec)
    assert not VenvCache(cache).is_built(loaded.content_hash())  # nothing half-built was published
    workspace = LocalWorkspace(tmp_path / "ws", venv_cache=cache)
    assert workspace.ensure_environment(loaded).version == "1"  # the next build cleans up and succeeds
    assert len(list((cache / "builds").iterdir())) == 1


def test_a_failed_build_names_pip_and_leaves_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = load_environment_spec(write_spec(tmp_path / "env", name="killed",
                                            dependencies=f"  - python={PYTHON}\n  - pip:\n      - ./no-such-dir\n"))
    workspace = LocalWorkspace(tmp_path / "ws", venv_cache=cache)
    with pytest.raises(EnvironmentBuildError, match=r"environment killed \(sha256 \w+\): .*failed with exit code"):
        workspace.ensure_environment(spec)
    assert not VenvCache(cache).is_built(spec.content_hash())
    assert list((cache / "builds").iterdir()) == []
    with pytest.raises(Exception, match="does not exist"):
        workspace.get_environment("killed", "1")


def test_another_python_is_refused(tmp_path: Path, venv_cache: Path) -> None:
    spec = load_environment_spec(write_spec(tmp_path / "env", dependencies="  - python=3.8\n  - pip\n"))
    workspace = LocalWorkspace(tmp_path / "ws", venv_cache=venv_cache)
    with pytest.raises(EnvironmentBuildError, match=f"asks for python=3.8, but .* Python {PYTHON}; set python={PYTHON}"):
        workspace.ensure_environment(spec)
    with workspace.store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM environments").fetchone()[0] == 0


def test_conda_only_packages_are_named(tmp_path: Path) -> None:
    text = (f"dependencies:\n  - python={PYTHON}\n  - pip=23.0\n  - numpy=1.26\n  - libgcc-ng\n  - cudatoolkit=11.1\n"
            "  - pip:\n      - six\n")
    with pytest.raises(ConfigError, match=r"conda.yml: dependencies: conda-only packages .*: libgcc-ng, cudatoolkit=11.1;"):
        venv_requirements(text, file="conda.yml")


@pytest.mark.parametrize(
    ("entry", "pip"),
    [
        ("numpy", "numpy"),
        ("numpy=1.23.5", "numpy==1.23.5.*"),  # conda's single '=' is a prefix match
        ("numpy==1.23.5", "numpy==1.23.5"),
        ("numpy=1.23.*", "numpy==1.23.*"),
        ("pytorch>=2,<3", "torch>=2,<3"),  # the conda name of torch
        ("conda-forge::pandas=3.1", "pandas==3.1.*"),
        ("psutil>=5.2.2,<6.0.0", "psutil>=5.2.2,<6.0.0"),
        ("py-xgboost==1.3.3", "xgboost==1.3.3"),
        ("scikit_learn", "scikit-learn"),
        ("libgcc-ng", None),
        ("cudatoolkit=11.1", None),
    ],
)
def test_conda_packages_with_a_pypi_equivalent_map_to_pip(entry: str, pip: str | None) -> None:
    assert conda_to_pip(entry) == pip


def test_an_automl_shaped_conda_file_becomes_pip_requirements() -> None:
    text = (f"name: project_environment\ndependencies:\n- python={PYTHON}\n- pip:\n  - torch==2.13.0\n"
            "- numpy==2.4.6\n- pandas\nchannels:\n- anaconda\n- conda-forge\n")
    assert venv_requirements(text, file="conda_env_v_1_0_0.yml") == CondaRequirements(
        PYTHON, ("torch==2.13.0", "numpy==2.4.6", "pandas"))


def test_a_conda_build_string_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="numpy 1.23.5 py39h_0.*build string"):
        venv_requirements(f"dependencies:\n- python={PYTHON}\n- numpy 1.23.5 py39h_0\n", file="conda.yml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"dependencies:\n  - python={PYTHON}\n  - pip\n  - pip:\n      - six\n      - --pre\n", (PYTHON, ("six", "--pre"))),
        ("dependencies:\n  - python==3.11.7\n", ("3.11", ())),
        ("dependencies:\n  - pip:\n      - six\n", (None, ("six",))),
    ],
)
def test_conda_file_parsing(text: str, expected: tuple[str | None, tuple[str, ...]]) -> None:
    parsed = parse_conda_file(text)
    assert (parsed.python, parsed.pip) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\nimage: i\n", "environment.yml: conda_file: missing or empty"),
        ("image: i\nconda_file: conda.yml\n", "environment.yml: name: missing or empty"),
        ("name: x\nimage: i\nconda_file: nope.yml\n", "environment.yml: conda_file: conda file .*nope.yml does not exist"),
        ("name: [x\n", "environment.yml: not valid YAML"),
        ("- a\n", "expected a mapping"),
    ],
)
def test_bad_environment_specs(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "environment.yml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_environment_spec(tmp_path / "environment.yml")


@pytest.mark.filterwarnings("ignore::Warning:marshmallow.*")
def test_the_tcn_inference_spec_loads_with_both_loaders() -> None:
    from azure.ai.ml import load_environment

    path = REPO / "environments" / "tcn-inference" / "environment.yml"
    spec = load_environment_spec(path)
    azure = load_environment(path)
    assert (spec.name, spec.image) == (azure.name, azure.image)
    requirements = parse_conda_file(spec.conda_file.read_text())
    assert requirements.python == PYTHON
    assert any(p.startswith("torch==2.13.0") for p in requirements.pip)


@pytest.mark.slow
def test_the_tcn_inference_environment_builds(tmp_path: Path) -> None:
    """Builds in the machine-wide cache (~40 s the first time on a machine, then reused)."""
    workspace = LocalWorkspace(tmp_path / "ws")
    env = workspace.ensure_environment(load_environment_spec(REPO / "environments" / "tcn-inference" / "environment.yml"),
                                       progress=lambda line: print(line, file=sys.stderr))
    python = VenvCache().python(env.content_hash)
    check = subprocess.run([str(python), "-c", "import torch, pandas, numpy, azureml_inference_server_http; "  # noqa: S603 - our own test commands
                            "print(torch.__version__)"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().startswith("2.13.0")


@pytest.mark.parametrize(("entries", "environ", "arguments"), [
    # the shipped conda file's line: kept where the index is reachable, mapped like the Makefile does
    (["--extra-index-url https://download.pytorch.org/whl/cpu", "torch==2.13.0"], {},
     ["--extra-index-url", "https://download.pytorch.org/whl/cpu", "torch==2.13.0"]),
    (["--extra-index-url https://download.pytorch.org/whl/cpu", "torch==2.13.0"], {"PIP_FIND_LINKS": "/opt/wheels"},
     ["torch==2.13.0"]),
    (["--extra-index-url https://download.pytorch.org/whl/cpu/", "torch==2.13.0"],
     {"TORCH_CPU_INDEX": "https://mirror.example/torch-cpu", "PIP_FIND_LINKS": "/opt/wheels"},
     ["--extra-index-url", "https://mirror.example/torch-cpu", "torch==2.13.0"]),
    (["--index-url=https://download.pytorch.org/whl/cpu", "torch==2.13.0"], {"TORCH_CPU_INDEX": ""},
     ["torch==2.13.0"]),
    (["--extra-index-url https://other.example/simple", "six==1.17.0"], {"PIP_FIND_LINKS": "/opt/wheels"},
     ["--extra-index-url", "https://other.example/simple", "six==1.17.0"]),
    (["azureml-dataset-runtime[fuse]==1.62.0.post1"], {}, ["azureml-dataset-runtime[fuse]==1.62.0.post1"]),
])
def test_pip_arguments_map_the_torch_cpu_index_to_what_this_machine_reaches(entries, environ, arguments) -> None:
    from mlops.workspace.local.registry.environments import pip_arguments

    assert pip_arguments(entries, environ) == arguments
