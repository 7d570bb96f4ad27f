"""Table tests of the Azure adapter's pure decisions (``mlops.workspace.azure_decisions``)."""

from __future__ import annotations

import pytest

from mlops.errors import AuthError, ConflictError, NotFoundError, RuleViolation, WorkspaceError
from mlops.workspace import azure_decisions as d
from mlops.workspace.port import AssetRef, ReleaseLock


@pytest.mark.parametrize(("text", "expected"), [
    ("azureml:tcn:3", AssetRef("tcn", "3")),
    ("tcn-inference:12", AssetRef("tcn-inference", "12")),
    ("/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w/models/tcn/versions/7",
     AssetRef("tcn", "7")),
    ("azureml://registries/shared/environments/tcn-inference/versions/2", AssetRef("tcn-inference", "2")),
    ("azureml://locations/westeurope/workspaces/abc/models/tcn/versions/4", AssetRef("tcn", "4")),
])
def test_parse_asset_id(text: str, expected: AssetRef) -> None:
    assert d.parse_asset_id(text) == expected


@pytest.mark.parametrize(("versions", "expected"), [([], "1"), (["1", "2", "10"], "11"), (["3", "beta"], "4")])
def test_next_version(versions: list[str], expected: str) -> None:
    assert d.next_version(versions) == expected


def test_version_with_hash_picks_the_first_matching_version() -> None:
    tagged = [("10", {d.CONTENT_HASH_TAG: "aa"}), ("2", {d.CONTENT_HASH_TAG: "aa"}), ("3", {"other": "aa"}), ("4", None)]
    assert d.version_with_hash(tagged, "aa") == "2"
    assert d.version_with_hash(tagged, "bb") is None


@pytest.mark.parametrize(("azure", "port"), [
    ("Succeeded", "Succeeded"), ("Failed", "Failed"), ("Canceled", "Failed"), ("Creating", "Creating"),
    ("Updating", "Updating"), ("Deleting", "Deleting"), (None, "Creating"),
])
def test_deployment_state(azure: str | None, port: str) -> None:
    assert d.deployment_state(azure) == port


def test_deployment_state_reads_sdk_enums() -> None:
    from azure.ai.ml._restclient.arm_ml_service.models import DeploymentProvisioningState

    assert d.deployment_state(DeploymentProvisioningState.SUCCEEDED) == "Succeeded"


@pytest.mark.parametrize(("azure", "port"), [
    ("NotStarted", "Queued"), ("Preparing", "Queued"), ("Running", "Running"), ("Finalizing", "Running"),
    ("Completed", "Completed"), ("Failed", "Failed"), ("NotResponding", "Failed"), ("Canceled", "Canceled"),
])
def test_job_status(azure: str, port: str) -> None:
    assert d.job_status(azure) == port


@pytest.mark.parametrize(("reported", "desired", "same"), [
    ({"blue": 100}, {"blue": 100, "green": 0}, True),
    ({"blue": 90, "green": 10}, {"blue": 100}, False),
    ({}, {"blue": 0}, True),
    (None, {}, True),
])
def test_traffic_reported_ignores_zero_entries(reported, desired, same) -> None:
    assert d.traffic_reported(reported, desired) is same


def test_lock_format_round_trip_and_conflicts() -> None:
    value = d.format_lock("octo@github/run-7", "2026-11-26T14:00:00Z")
    lock = d.parse_lock("tcn", value)
    assert lock == ReleaseLock("tcn", "octo@github/run-7", "2026-11-26T14:00:00Z")
    assert d.lock_conflict(None, "x") is None
    assert d.lock_conflict(lock, "octo@github/run-7") is None
    error = d.lock_conflict(lock, "laptop")
    assert isinstance(error, ConflictError)
    assert "octo@github/run-7" in str(error) and "2026-11-26T14:00:00Z" in str(error)
    assert d.parse_lock("tcn", "") is None


def test_backoff_is_exponential_and_capped() -> None:
    assert list(d.backoff_delays(8)) == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert list(d.backoff_delays(1)) == []


@pytest.mark.parametrize(("kind", "detail", "status", "cls", "needle"), [
    ("forbidden", "AuthorizationFailed: does not have authorization", 403, AuthError, "AzureML Data Scientist"),
    ("auth", "AADSTS70021: No matching federated identity record found for presented assertion subject "
             "'repo:acme/forecast:environment:production'", 401, AuthError, "federated credential"),
    ("auth", "AADSTS700016: Application with identifier 'x' was not found", 401, AuthError, "client-id"),
    ("credential", "DefaultAzureCredential failed to retrieve a token", None, AuthError, "az login"),
    ("not_found", "ResourceNotFound", 404, NotFoundError, "not found"),
    ("conflict", "There is an operation in progress", 409, ConflictError, "in progress"),
    ("conflict", "Too many requests", 429, ConflictError, "throttled"),
    ("invalid", "BadRequest: traffic must sum to 100", 400, RuleViolation, "nothing was changed"),
    ("network", "Name or service not known", None, WorkspaceError, "cannot reach"),
    ("other", "InternalServerError", 500, WorkspaceError, "HTTP 500"),
])
def test_translate_names_the_fix(kind, detail, status, cls, needle) -> None:
    error = d.translate(kind, "update traffic of online endpoint tcn", detail, status=status)
    assert type(error) is cls
    assert needle in str(error) and "update traffic of online endpoint tcn" in str(error)
    assert detail.split(":")[0] in str(error), "Azure's own words are kept"


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (403, "forbidden"), (404, "not_found"), (409, "conflict"),
                                              (429, "conflict"), (400, "invalid"), (500, "other"), (None, "other")])
def test_classify_status(status, kind) -> None:
    assert d.classify_status(status) == kind


def test_metric_goal() -> None:
    assert d.metric_goal("normalized_root_mean_squared_error") == "minimize"
    assert d.metric_goal("r2_score") == "maximize"
    assert d.metric_goal("spearman_correlation") == "maximize"
    assert d.metric_goal("r2_score", '{"metric_operation": "minimize"}') == "minimize", "AutoML's own record wins"
    assert d.metric_goal("r2_score", "not json") == "maximize"


def test_choose_best_child_maximizes_when_the_metric_says_so() -> None:
    children = [d.ChildRun("p_0", properties={"score": "0.5"}), d.ChildRun("p_1", properties={"score": "0.9"}),
                d.ChildRun("p_2", status="Failed", properties={"score": "0.99"}), d.ChildRun("p_setup")]
    best = d.choose_best_child("p", "r2_score", children)
    assert (best.name, best.score, best.goal) == ("p_1", 0.9, "maximize")
    best = d.choose_best_child("p", "normalized_mean_absolute_error", children)
    assert (best.name, best.goal) == ("p_0", "minimize")


def test_choose_best_child_without_scores_or_tag_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="has it finished"):
        d.choose_best_child("p", "r2_score", [d.ChildRun("p_0")])


def test_choose_best_child_ignores_nan_scores() -> None:
    children = [d.ChildRun("p_0", properties={"score": "nan"}), d.ChildRun("p_1", properties={"score": "0.3"})]
    assert d.choose_best_child("p", "normalized_root_mean_squared_error", children).name == "p_1"


def test_pick_automl_files() -> None:
    files = d.pick_automl_files(["outputs/model.pkl", "outputs/model.pt", "outputs/conda_env_v_1_0_0.yml",
                                 "outputs/scoring_file_v_1_0_0.py", "outputs/scoring_file_v_2_0_0.py",
                                 "logs/scoring_file_v_9.py"])
    assert files == d.AutoMLFiles("outputs/model.pt", "outputs/conda_env_v_1_0_0.yml", "outputs/scoring_file_v_2_0_0.py")
    assert d.pick_automl_files(["artifacts/outputs/model.pkl", "artifacts/outputs/conda_env_v_1_0_0.yml",
                                "artifacts/outputs/scoring_file_v_2_0_0.py"]).model == "artifacts/outputs/model.pkl"
    with pytest.raises(NotFoundError, match="conda_env"):
        d.pick_automl_files(["outputs/model.pt", "outputs/scoring_file_v_2_0_0.py"])
