"""A fake ``azure.monitor.query.LogsQueryClient`` over an in-memory ``AmlOnlineEndpointTrafficLog``.

As strict as the real service where the judge depends on it:

* only ``query_workspace(workspace_id, query, *, timespan=...)`` - the real method's signature
  (``tests/azure/test_monitor_contract.py`` binds every recorded call to it); a wrong workspace id
  is an ``HttpResponseError`` (the service answers 400/404 for a workspace it does not know);
* ``timespan=(start, end)`` filters ``TimeGenerated`` (the real API's timespan semantics);
* a row is visible only once it is *ingested*: each row carries the time Azure Monitor makes it
  queryable (``TimeGenerated`` + its own ingestion latency; Azure documents 20 s - 3 min), against
  the same fake clock the adapter sleeps on;
* answers are the SDK's own ``LogsQueryResult`` / ``LogsQueryPartialResult`` with ``LogsTable`` rows.

It evaluates only the two query shapes ``mlops.workspace.azure_monitor`` writes (it reads the table,
the endpoint/deployment filters and the summarize clause from the text); anything else fails the test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsQueryError, LogsQueryPartialResult, LogsQueryResult, LogsTable


@dataclass(frozen=True)
class LogRow:
    time_generated: float
    endpoint: str
    deployment: str
    response_code: int
    total_duration_ms: int
    ingestion_s: float = 60.0


@dataclass
class Call:
    args: tuple
    kwargs: dict


@dataclass
class FakeLogsQueryClient:
    clock: Any
    """Epoch-seconds clock shared with the adapter (its sleeps advance it)."""
    workspace_id: str = "00000000-0000-0000-0000-00000000cafe"
    rows: list[LogRow] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    partial: str = ""

    def query_workspace(self, workspace_id: str, query: str, *, timespan: Any, server_timeout: int | None = None,
                        include_statistics: bool = False, include_visualization: bool = False,
                        additional_workspaces: Any = None, **kwargs: Any) -> Any:
        self.calls.append(Call((workspace_id, query), {"timespan": timespan, **kwargs}))
        if workspace_id != self.workspace_id:
            raise HttpResponseError(message=f"workspace {workspace_id} not found")
        assert query.startswith("AmlOnlineEndpointTrafficLog\n"), query
        endpoint = re.search(r'EndpointName == "([^"]+)"', query).group(1)
        deployment = re.search(r'DeploymentName == "([^"]+)"', query).group(1)
        start, end = timespan
        assert start.tzinfo is not None and end.tzinfo is not None, "timespan must be timezone-aware"
        now = self.clock()
        visible = [r for r in self.rows
                   if r.endpoint == endpoint and r.deployment == deployment
                   and start.timestamp() <= r.time_generated < end.timestamp()
                   and r.time_generated + r.ingestion_s <= now]
        if "by ResponseCode" in query:
            counts: dict[int, int] = {}
            for row in visible:
                counts[row.response_code] = counts.get(row.response_code, 0) + 1
            table = LogsTable(name="PrimaryResult", columns=["ResponseCode", "Requests"], columns_types=["int", "long"],
                              rows=[[code, count] for code, count in sorted(counts.items())])
        else:
            assert "where ResponseCode between (200 .. 399)" in query and "percentile(TotalDurationMs, 95)" in query
            ok = [r.total_duration_ms for r in visible if 200 <= r.response_code <= 399]
            values = [float(v) for v in np.percentile(ok, [50, 95, 99])] if ok else [None, None, None]
            table = LogsTable(name="PrimaryResult", columns=["P50", "P95", "P99"],
                              columns_types=["real", "real", "real"], rows=[values])
        if self.partial:
            return LogsQueryPartialResult(partial_data=[table], partial_error=LogsQueryError(
                code="PartialError", message=self.partial))
        return LogsQueryResult(tables=[table])
