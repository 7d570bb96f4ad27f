"""Deployment metrics on Azure: the traffic-log queries the adapter makes, bound to azure-monitor-query's
real ``LogsQueryClient.query_workspace``, and what their answers are judged to mean."""

from __future__ import annotations

import inspect
import math
from datetime import UTC, datetime

import pytest
from azure.monitor.query import LogsQueryClient

from mlops.errors import WorkspaceError
from mlops.workspace import azure_monitor
from tests.azure.fake_mlclient import make_workspace
from tests.azure.fake_monitor import FakeLogsQueryClient, LogRow

BASE = 1_800_000_000.0  # epoch seconds of the fake clock's 0


class Wall:
    """Epoch wall clock driven by the adapter's fake monotonic clock (its sleeps advance both)."""

    rig = None

    def __call__(self) -> float:
        return BASE + self.rig.clock.now


def rig_with_logs(**options):
    wall = Wall()
    logs = FakeLogsQueryClient(clock=wall)
    rig = make_workspace(logs_client=logs, log_workspace_id=logs.workspace_id, wall_clock=wall, **options)
    wall.rig = rig
    return rig, logs, wall


def _traffic(logs: FakeLogsQueryClient, start: float, *, ok: int, failed: int, deployment: str = "green",
             ms: int = 40, ingestion_s: float = 60.0) -> None:
    for i in range(ok):
        logs.rows.append(LogRow(start + i * 0.1, "tcn-dau", deployment, 200, ms + i % 10, ingestion_s))
    for i in range(failed):
        logs.rows.append(LogRow(start + i * 0.1, "tcn-dau", deployment, 500, 5, ingestion_s))


def test_every_query_binds_to_the_real_query_workspace_signature():
    rig, logs, wall = rig_with_logs()
    since = wall()
    _traffic(logs, since, ok=50, failed=2)
    rig.clock.sleep(30)
    rig.workspace.deployment_metrics("tcn-dau", "green", since)
    real = inspect.signature(LogsQueryClient.query_workspace)
    assert len(logs.calls) == 2
    for call in logs.calls:
        real.bind(None, *call.args, **call.kwargs)  # TypeError if the adapter drifts from the SDK
    fake_params = inspect.signature(FakeLogsQueryClient.query_workspace).parameters
    for name, param in fake_params.items():
        assert name in real.parameters and real.parameters[name].kind == param.kind, name


def test_queries_name_the_table_columns_and_the_window():
    rig, logs, wall = rig_with_logs(wait_for_ingestion=False)
    since = wall() - 600
    until = since + 60
    rig.workspace.deployment_metrics("tcn-dau", "green", since, until)
    codes, latency = (call.args[1] for call in logs.calls)
    for query in (codes, latency):
        assert query.startswith("AmlOnlineEndpointTrafficLog\n")
        assert 'EndpointName == "tcn-dau" and DeploymentName == "green"' in query
    assert "summarize Requests = count() by ResponseCode" in codes
    assert "percentile(TotalDurationMs, 50)" in latency and "percentile(TotalDurationMs, 99)" in latency
    for call in logs.calls:
        assert call.args[0] == logs.workspace_id
        assert call.kwargs["timespan"] == (datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(until, UTC))


def test_results_are_judged_per_deployment_after_the_ingestion_delay():
    rig, logs, wall = rig_with_logs()
    since = wall()
    _traffic(logs, since, ok=95, failed=5, ms=40)
    _traffic(logs, since, ok=300, failed=0, deployment="blue", ms=10)
    rig.clock.sleep(20)  # the bake window: 20 s
    metrics = rig.workspace.deployment_metrics("tcn-dau", "green", since)
    # the adapter waited out the rest of the documented ingestion delay before querying
    assert sum(rig.clock.slept[-1:]) == pytest.approx(azure_monitor.INGESTION_DELAY_S)
    assert metrics.complete and metrics.note == ""
    assert metrics.requests == 100 and metrics.status_codes == {200: 95, 500: 5}
    assert metrics.failures == 5 and metrics.error_rate == pytest.approx(0.05)
    assert 40 <= metrics.p50_ms <= metrics.p95_ms <= metrics.p99_ms <= 49
    assert metrics.source == "Azure Monitor AmlOnlineEndpointTrafficLog"


def test_rows_not_yet_ingested_make_the_window_incomplete_never_passed():
    rig, logs, wall = rig_with_logs(wait_for_ingestion=False)
    since = wall()
    _traffic(logs, since, ok=40, failed=0, ingestion_s=150)
    rig.clock.sleep(20)
    metrics = rig.workspace.deployment_metrics("tcn-dau", "green", since)
    assert not metrics.complete and metrics.requests == 0 and math.isnan(metrics.p95_ms)
    assert "ingests log rows 20 s - 3 min" in metrics.note


def test_a_partial_result_is_incomplete():
    rig, logs, wall = rig_with_logs()
    logs.partial = "query exceeded the row limit"
    metrics = rig.workspace.deployment_metrics("tcn-dau", "green", wall() - 1000, wall() - 900)
    assert not metrics.complete and "row limit" in metrics.note


def test_without_a_log_analytics_workspace_nothing_is_known():
    rig = make_workspace()
    metrics = rig.workspace.deployment_metrics("tcn-dau", "green", 0.0, 10.0)
    assert not metrics.complete and metrics.requests == 0
    assert azure_monitor.LOG_WORKSPACE_ENV in metrics.note


def test_a_wrong_workspace_id_is_a_workspace_error_naming_the_table():
    rig, logs, wall = rig_with_logs(wait_for_ingestion=False)
    rig.workspace._log_workspace_id = "11111111-0000-0000-0000-000000000000"
    with pytest.raises(WorkspaceError, match="AmlOnlineEndpointTrafficLog"):
        rig.workspace.deployment_metrics("tcn-dau", "green", wall() - 600, wall() - 500)


@pytest.mark.parametrize("name", ['green" or 1==1', "a b", "", "x" * 70])
def test_names_that_are_not_azure_names_never_reach_a_query(name: str):
    with pytest.raises(ValueError):
        azure_monitor.traffic_log_queries("tcn-dau", name)
