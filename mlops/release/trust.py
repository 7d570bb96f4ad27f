"""Trust follows the source: pickles are trusted only for a model that came from an AutoML job.

An AutoML ``model.pt`` is a pickle (unpickling runs code from the file), so the scoring scripts
load one only with ``MLOPS_TRUST_PICKLED_MODEL=1`` (``mlops.forecasting.loading.load_forecaster``).
The release sets it per deployment, from where the model came from - never from the template:

* ``job:NAME`` - the best trial of an AutoML job the team ran: trusted (``"1"``);
* ``azureml:NAME:VERSION`` - trusted only when that version was registered from an AutoML job
  (it carries the ``mlops.automl_parent_job`` tag ``register_model_from_job`` sets);
* a model folder - never (``"0"``), whatever the deployment template says: a folder is whatever
  file someone put there, and ``mlops train`` writes ``model.pt`` loadable with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlops.config import ModelSource
from mlops.workspace.automl import AUTOML_PARENT_TAG

TRUST_VARIABLE = "MLOPS_TRUST_PICKLED_MODEL"


def pickles_trusted(source: ModelSource, model_tags: Mapping[str, str]) -> bool:
    if source.job is not None:
        return True
    if source.ref is not None:
        return bool(model_tags.get(AUTOML_PARENT_TAG))
    return False


def trust_variables(trusted: bool) -> dict[str, str]:
    """The deployment's environment variable (it overrides the template's)."""
    return {TRUST_VARIABLE: "1" if trusted else "0"}
