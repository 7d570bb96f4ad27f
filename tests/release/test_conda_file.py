"""The serving conda file made from a model's own: pins stripped, canonical bytes, stable hash."""

from __future__ import annotations

import hashlib

import pytest

from mlops.release.conda_file import (
    CondaFileError,
    package_name,
    parse,
    serving_conda_file,
    trailing_dependencies,
)
from tests.release.helpers import AUTOML_CONDA_FILE

AUTOML = AUTOML_CONDA_FILE

# the same file: keys in another order, the trailing conda entries shuffled, other whitespace and
# flow style, a comment
REORDERED = """# written elsewhere
channels: [anaconda, conda-forge]
dependencies:
  - python=3.9.22
  - pip:
      - azureml-train-automl-runtime==1.60.0
      - inference-schema
      - azureml-defaults==1.60.0
  - psutil == 5.9.3
  - holidays==0.70
  - pandas==1.5.3
  - scikit-learn==1.5.1
  - numpy==1.23.5
name: project_environment
"""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_default_unpins_the_trailing_non_pip_dependencies_only() -> None:
    result = serving_conda_file(AUTOML)
    assert [(u.name, u.was, u.now) for u in result.unpinned] == [
        ("numpy", "numpy==1.23.5", "numpy"), ("pandas", "pandas==1.5.3", "pandas"),
        ("scikit-learn", "scikit-learn==1.5.1", "scikit-learn"), ("holidays", "holidays==0.70", "holidays"),
        ("psutil", "psutil==5.9.3", "psutil")]
    data = parse(result.text)
    assert data["dependencies"][0] == "python=3.9.22", "python keeps its pin (pickles need their Python)"
    assert data["dependencies"][-1] == {"pip": ["azureml-train-automl-runtime==1.60.0", "inference-schema",
                                                "azureml-defaults==1.60.0"]}, "the AutoML runtime keeps its pins"
    assert data["channels"] == ["anaconda", "conda-forge"], "channel order is conda's priority: kept"


def test_same_file_in_another_key_order_gives_the_same_bytes() -> None:
    assert serving_conda_file(REORDERED).text == serving_conda_file(AUTOML).text
    assert digest(serving_conda_file(REORDERED).text) == digest(serving_conda_file(AUTOML).text)
    # with named dependencies the list order does not matter at all (conda reads it as a set)
    moved = AUTOML.replace("  - numpy==1.23.5\n", "").replace("  - python=3.9.22\n", "  - python=3.9.22\n  - numpy==1.23.5\n")
    names = ["numpy", "pandas"]
    assert serving_conda_file(moved, names).text == serving_conda_file(AUTOML, names).text


@pytest.mark.parametrize(
    ("change", "same_hash"),
    [
        (("numpy==1.23.5", "numpy==1.24.0"), True),  # an unpinned dependency's pin does not matter
        (("azureml-defaults==1.60.0", "azureml-defaults==1.61.0"), False),  # a kept pin is the identity
        (("python=3.9.22", "python=3.10.4"), False),
        (("  - psutil==5.9.3\n", "  - psutil==5.9.3\n  - tqdm\n"), False),  # a new dependency
    ],
)
def test_a_changed_pin_is_another_environment(change: tuple[str, str], same_hash: bool) -> None:
    changed = AUTOML.replace(*change)
    assert changed != AUTOML
    assert (digest(serving_conda_file(changed).text) == digest(serving_conda_file(AUTOML).text)) is same_hash


@pytest.mark.parametrize(
    ("unpin", "unpinned", "not_found"),
    [
        (["numpy", "inference-schema"], ["numpy"], []),  # inference-schema has no pin to remove
        (["NumPy", "azureml_defaults"], ["azureml-defaults", "numpy"], []),  # names compare like pip's
        (["torch"], [], ["torch"]),
        ([], [], []),
    ],
)
def test_named_dependencies(unpin: list[str], unpinned: list[str], not_found: list[str]) -> None:
    result = serving_conda_file(AUTOML, unpin)
    assert [u.name for u in result.unpinned] == unpinned
    assert list(result.not_found) == not_found


def test_python_cannot_be_unpinned_and_bad_files_are_named() -> None:
    with pytest.raises(CondaFileError, match="python cannot be unpinned"):
        serving_conda_file(AUTOML, ["python"])
    with pytest.raises(CondaFileError, match="model.yml: expected a mapping with a 'dependencies' list"):
        serving_conda_file("name: x\n", source="model.yml")
    with pytest.raises(CondaFileError, match="expected 'trailing'"):
        serving_conda_file(AUTOML, "everything")


@pytest.mark.parametrize(
    ("text", "trailing"),
    [
        (AUTOML, ["numpy", "pandas", "scikit-learn", "holidays", "psutil"]),
        ("dependencies:\n- python=3.11\n- numpy\n- pip:\n  - six\n", []),  # nothing after the pip block
        ("dependencies:\n- python=3.11\n- numpy==1\n", []),  # no pip block
        ("dependencies:\n- pip:\n  - six\n- pip\n- conda-forge::numpy=1\n", ["numpy"]),
    ],
)
def test_trailing_dependencies(text: str, trailing: list[str]) -> None:
    assert trailing_dependencies(parse(text)) == trailing


@pytest.mark.parametrize(("spec", "name"), [("numpy==1", "numpy"), ("Scikit_Learn>=1", "scikit-learn"),
                                            ("conda-forge::py-xgboost=1.3", "py-xgboost"), ("pandas", "pandas")])
def test_package_name(spec: str, name: str) -> None:
    assert package_name(spec) == name
