"""Table tests of the Azure adapter's pure decisions (``mlops.workspace.azure_decisions``)."""

from __future__ import annotations

import pytest
from azure.ai.ml.automl import ForecastingPrimaryMetrics

from mlops.errors import AuthError, ConflictError, NotFoundError, RuleViolation, UsageError, WorkspaceError
from mlops.workspace import automl
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
    ("Scaling", "Updating"),  # an existing deployment changing its instance count: it serves meanwhile
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


@pytest.mark.parametrize(("value", "expected"), [
    ("octo@github/run-7@2026-11-26T14:00:00Z", ReleaseLock("tcn", "octo@github/run-7", "2026-11-26T14:00:00Z")),
    ("no-time", ReleaseLock("tcn", "no-time", "")),
    ("", None),
    (None, None),
])
def test_an_older_versions_lock_tag_parses(value, expected) -> None:
    assert d.parse_lock("tcn", value) == expected


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
    ("auth", "AADSTS700024: Client assertion is not within its valid time range. Current time: "
             "2026-12-01T10:07:00Z, assertion valid from 2026-12-01T10:00:00Z, expiry time of assertion "
             "2026-12-01T10:05:00Z", 401, AuthError, "fresh token whenever Entra ID needs one"),
    ("version_exists", "(UserError) Asset paths cannot be updated.", None, ConflictError, "already exists"),
    ("conflict", "(UserError) The specified endpoint name 'tcn' is not available. Endpoint names must be unique "
                 "within the region.", 409, ConflictError, "name is taken"),
    ("invalid", "There is already an endpoint with this name, Endpoint name needs to be unique within a region",
     400, ConflictError, "name is taken"),
])
def test_translate_names_the_fix(kind, detail, status, cls, needle) -> None:
    error = d.translate(kind, "update traffic of online endpoint tcn", detail, status=status)
    assert type(error) is cls
    assert needle in str(error) and "update traffic of online endpoint tcn" in str(error)
    assert detail.split(":")[0] in str(error), "Azure's own words are kept"


@pytest.mark.parametrize(("status", "detail", "retryable"), [
    (409, "There is an operation in progress for this resource", True),
    (409, "(UserError) The specified endpoint name 'tcn' is not available. Endpoint names must be unique within "
          "the region.", False),
    (409, "(UserError) Asset paths cannot be updated.\nCode: UserError\nMessage: Asset paths cannot be updated.",
     False),  # the version exists with other files: lasting
    (429, "", True), (408, "", True), (500, "", True), (502, "", True), (503, "", True), (504, "", True),
    (400, "", False), (401, "", False), (403, "", False), (404, "", False), (501, "", False), (None, "", False),
])
def test_retryable_statuses_are_azure_cores_transient_ones_and_in_progress(status, detail, retryable) -> None:
    assert d.is_retryable_status(status, detail) is retryable


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (403, "forbidden"), (404, "not_found"), (409, "conflict"),
                                              (429, "conflict"), (400, "invalid"), (500, "other"), (None, "other")])
def test_classify_status(status, kind) -> None:
    assert d.classify_status(status) == kind


@pytest.mark.parametrize(
    ("metric", "name"),
    [
        (ForecastingPrimaryMetrics.R2_SCORE, "r2_score"),  # the enum the SDK returns after its REST round trip
        (str(ForecastingPrimaryMetrics.R2_SCORE), "r2_score"),  # "ForecastingPrimaryMetrics.R2_SCORE"
        ("R2Score", "r2_score"),  # the REST value
        ("NormalizedRootMeanSquaredError", "normalized_root_mean_squared_error"),
        (ForecastingPrimaryMetrics.SPEARMAN_CORRELATION, "spearman_correlation"),
        ("normalized_mean_absolute_error", "normalized_mean_absolute_error"),
        (None, ""),
    ],
)
def test_metric_name(metric: object, name: str) -> None:
    assert automl.metric_name(metric) == name


@pytest.mark.parametrize(
    ("metric", "settings", "child_goal", "goal"),
    [
        ("normalized_root_mean_squared_error", None, None, "minimize"),
        (ForecastingPrimaryMetrics.R2_SCORE, None, None, "maximize"),
        (str(ForecastingPrimaryMetrics.R2_SCORE), None, None, "maximize"),
        (ForecastingPrimaryMetrics.SPEARMAN_CORRELATION, None, None, "maximize"),
        (ForecastingPrimaryMetrics.NORMALIZED_MEAN_ABSOLUTE_ERROR, None, None, "minimize"),
        ("r2_score", '{"metric_operation": "minimize"}', None, "minimize"),  # AutoML's own record wins
        ("r2_score", "not json", None, "maximize"),
        ("r2_score", '{"metric_operation": "minimize"}', "r2_score_max", "maximize"),  # the trial's goal first
        ("my_metric", None, "my_metric_min", "minimize"),
    ],
)
def test_metric_goal(metric: object, settings: str | None, child_goal: str | None, goal: str) -> None:
    assert automl.metric_goal(metric, settings, child_goal=child_goal) == goal


def test_an_unknown_metric_without_a_goal_is_refused() -> None:
    with pytest.raises(UsageError, match="higher or lower my_metric"):
        automl.metric_goal("my_metric")


def trials(*scores: str | None) -> list[automl.ChildRun]:
    return [automl.ChildRun(f"p_{i}", properties={} if s is None else {"score": s}) for i, s in enumerate(scores)]


@pytest.mark.parametrize(
    ("metric", "children", "tags", "best", "reason"),
    [
        # AutoML's own automl_best_child_run_id decides whenever it is set
        (ForecastingPrimaryMetrics.NORMALIZED_ROOT_MEAN_SQUARED_ERROR, trials("0.1", "0.05"),
         {"automl_best_child_run_id": "p_0"}, "p_0", "AutoML's choice"),
        # else the primary metric, in its direction: maximised for R2 and Spearman (the enum form!) ...
        (ForecastingPrimaryMetrics.R2_SCORE, trials("0.5", "0.9", "0.7"), {}, "p_1", "maximize"),
        (str(ForecastingPrimaryMetrics.R2_SCORE), trials("0.5", "0.9", "0.7"), {}, "p_1", "maximize"),
        ("SpearmanCorrelation", trials("0.2", "0.1", "0.8"), {}, "p_2", "maximize"),
        # ... minimised for errors
        (ForecastingPrimaryMetrics.NORMALIZED_ROOT_MEAN_SQUARED_ERROR, trials("0.5", "0.9", "0.3"), {}, "p_2",
         "minimize"),
        ("normalized_mean_absolute_error", trials("0.3", None, "0.3"), {}, "p_0", "minimize"),  # tie: earliest
        # scores from the parent's summary tags when the trials carry none
        ("normalized_root_mean_squared_error", trials(None, None),
         {"iteration_000": "0;1", "score_000": "0.2;0.1"}, "p_1", "minimize"),
    ],
)
def test_choose_best_child(metric: object, children: list, tags: dict, best: str, reason: str) -> None:
    chosen = automl.choose_best_child("p", metric, children, parent_tags=tags)
    assert chosen.name == best
    assert reason in chosen.reason


def test_choose_best_child_skips_failed_and_unparsed_trials_with_a_warning() -> None:
    children = [automl.ChildRun("p_0", properties={"score": "0.5"}), None,
                automl.ChildRun("p_2", status="Failed", properties={"score": "0.99"}), automl.ChildRun("p_setup")]
    best = automl.choose_best_child("p", "r2_score", children)
    assert (best.name, best.score, best.goal) == ("p_0", 0.5, "maximize")
    assert len(best.warnings) == 1 and "could not parse" in best.warnings[0]


def test_the_trials_goal_property_gives_the_direction() -> None:
    children = [automl.ChildRun("p_0", properties={"score": "0.5", "goal": "custom_metric_max"}),
                automl.ChildRun("p_1", properties={"score": "0.9", "goal": "custom_metric_max"})]
    assert automl.choose_best_child("p", "custom_metric", children).name == "p_1"


def test_choose_best_child_without_scores_or_tag_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no trial with a model"):
        automl.choose_best_child("p", "r2_score", [automl.ChildRun("p_0"), None])


def test_choose_best_child_ignores_nan_scores() -> None:
    children = [automl.ChildRun("p_0", properties={"score": "nan"}), automl.ChildRun("p_1", properties={"score": "0.3"})]
    assert automl.choose_best_child("p", "normalized_root_mean_squared_error", children).name == "p_1"


@pytest.mark.parametrize(
    ("status", "metric", "problem"),
    [
        ("Completed", "r2_score", None),
        ("Completed", None, "not an AutoML job"),
        ("Running", ForecastingPrimaryMetrics.R2_SCORE, "is Running, not Completed: wait"),
        ("Failed", "r2_score", "is Failed, not Completed: its best trial"),
        ("Canceled", "r2_score", "is Canceled"),
    ],
)
def test_automl_job_problem(status: str, metric: object, problem: str | None) -> None:
    error = d.automl_job_problem("job-1", status, metric)
    if problem is None:
        assert error is None
    else:
        assert isinstance(error, UsageError) and problem in str(error)


def test_pick_automl_files() -> None:
    files = automl.pick_automl_files(["outputs/model.pkl", "outputs/model.pt", "outputs/conda_env_v_1_0_0.yml",
                                 "outputs/scoring_file_v_1_0_0.py", "outputs/scoring_file_v_2_0_0.py",
                                 "logs/scoring_file_v_9.py"])
    assert files == automl.AutoMLFiles("outputs/model.pt", "outputs/conda_env_v_1_0_0.yml", "outputs/scoring_file_v_2_0_0.py")
    assert automl.pick_automl_files(["artifacts/outputs/model.pkl", "artifacts/outputs/conda_env_v_1_0_0.yml",
                                "artifacts/outputs/scoring_file_v_2_0_0.py"]).model == "artifacts/outputs/model.pkl"
    with pytest.raises(NotFoundError, match="conda_env"):
        automl.pick_automl_files(["outputs/model.pt", "outputs/scoring_file_v_2_0_0.py"])
    # other version suffixes are tolerated; the Power BI scoring file is not an endpoint script
    files = automl.pick_automl_files(["outputs/model.pt", "outputs/conda_env_v_1_1_0.yml", "outputs/scoring_file_v_3_0_0.py",
                                 "outputs/scoring_file_pbi_v_1_0_0.py", "outputs/scoring_file_v_2_0_0.py"])
    assert (files.conda_file, files.scoring_file) == ("outputs/conda_env_v_1_1_0.yml", "outputs/scoring_file_v_3_0_0.py")


@pytest.mark.parametrize(("detail", "taken"), [
    ("(UserError) Asset paths cannot be updated.", True),  # the SDK's ASSET_PATH_ERROR as is
    ("(UserError) Asset paths cannot be updated.\nCode: UserError\nMessage: Asset paths cannot be updated.", True),
    ("There is an operation in progress for this resource", False),
    ("", False),
])
def test_a_conflict_saying_asset_paths_cannot_be_updated_is_a_taken_version(detail, taken) -> None:
    error = d.translate("conflict", "register model tcn:2", detail, status=409, attempts=1)
    assert d.asset_version_taken(detail) is taken
    assert ("already exists with other content" in str(error)) is taken
    assert ("another operation is in progress" in str(error)) is not taken


@pytest.mark.parametrize(("states", "busy"), [
    ({"endpoint e": "Succeeded", "deployment blue": "Succeeded"}, []),
    ({"endpoint e": "Updating", "deployment blue": "Succeeded"}, ["endpoint e is Updating"]),
    ({"endpoint e": "Succeeded", "deployment green": "Creating"}, ["deployment green is Creating"]),
    ({"endpoint e": "Succeeded", "deployment blue": "Scaling"}, ["deployment blue is Updating"]),  # autoscale
    ({"endpoint e": "Deleting"}, ["endpoint e is Deleting"]),
    ({"endpoint e": "Succeeded", "deployment red": "Failed", "deployment x": "Canceled"}, []),  # ended, not running
    ({"endpoint e": None, "deployment blue": ""}, []),  # states nothing: not waited for forever
])
def test_which_resources_have_an_operation_in_flight(states, busy) -> None:
    assert d.operations_in_flight(states) == busy
