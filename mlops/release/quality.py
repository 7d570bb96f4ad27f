"""The quality gate's measurement: score a holdout through each deployment over HTTP and take MAPE.

Requests are the same AutoML-shaped payloads the load test sends (``context_days`` rows with
``count``, then ``horizon`` rows to forecast), cut at ``origins`` evenly spaced forecast origins of
the holdout CSV, and sent through ``Workspace.invoke`` with the deployment header - so the numbers
come from the deployed artifact in its pinned environment, not from a model loaded here.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops.errors import WorkspaceError
from mlops.workspace.port import Progress, Workspace, no_progress


@dataclass(frozen=True)
class HoldoutRequest:
    body: bytes
    actuals: tuple[float, ...]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def build_requests(rows: Sequence[dict[str, str]], *, origins: int, context_days: int,
                   horizon: int) -> list[HoldoutRequest]:
    """Evenly spaced origins; each request holds the preceding ``context_days`` actuals."""
    last_start = len(rows) - horizon
    if last_start < context_days:
        raise ValueError(f"the holdout has {len(rows)} rows; it needs at least context_days + horizon = "
                         f"{context_days + horizon}")
    count = min(origins, last_start - context_days + 1)
    if count == 1:
        starts = [context_days]
    else:
        step = (last_start - context_days) / (count - 1)
        starts = sorted({context_days + round(i * step) for i in range(count)})
    requests = []
    for start in starts:
        data = []
        for index, row in enumerate(rows[start - context_days:start + horizon]):
            item: dict[str, object] = {"date": row["date"]}
            for column in ("day_of_week", "month_of_year", "holiday"):
                if row.get(column, "") != "":
                    item[column] = float(row[column])
            if index < context_days:
                item["count"] = float(row["count"])
            data.append(item)
        actuals = tuple(float(row["count"]) for row in rows[start:start + horizon])
        requests.append(HoldoutRequest(json.dumps({"Inputs": {"data": data}}).encode(), actuals))
    return requests


def parse_forecast(body: bytes) -> list[float]:
    """The forecast values of a scoring response (``{"Results": {"forecast": [...]}}`` or ``{"forecast": ...}``)."""
    payload = json.loads(body)
    if isinstance(payload, str):  # a server that JSON-encodes a JSON string
        payload = json.loads(payload)
    if isinstance(payload, dict):
        payload = payload.get("Results", payload)
        if isinstance(payload, dict):
            payload = payload.get("forecast", payload)
    if not isinstance(payload, list):
        raise ValueError(f"no forecast list in the response: {body[:200]!r}")
    return [float(value) for value in payload]


def mape(actuals: Sequence[float], forecasts: Sequence[float]) -> float:
    """Mean absolute percentage error as a fraction (0.05 = 5%); zero actuals are skipped."""
    pairs = [(a, f) for a, f in zip(actuals, forecasts, strict=True) if a != 0]
    if not pairs:
        return math.nan
    return sum(abs(a - f) / abs(a) for a, f in pairs) / len(pairs)


def score_deployment(workspace: Workspace, endpoint: str, deployment: str, requests: Sequence[HoldoutRequest],
                     progress: Progress = no_progress) -> tuple[float, int, int]:
    """``(MAPE, points, failed requests)`` of one deployment over the holdout requests. A request that
    fails (HTTP error, unreadable answer, wrong length) is counted, not raised: the gate judges it."""
    actuals: list[float] = []
    forecasts: list[float] = []
    failures = 0
    for request in requests:
        try:
            values = parse_forecast(workspace.invoke(endpoint, request.body, deployment_name=deployment))
        except (WorkspaceError, ValueError) as error:
            failures += 1
            progress(f"quality: {deployment} failed a holdout request: {str(error)[:200]}")
            continue
        if len(values) != len(request.actuals):
            failures += 1
            progress(f"quality: {deployment} returned {len(values)} values for {len(request.actuals)} dates")
            continue
        actuals.extend(request.actuals)
        forecasts.extend(values)
    result = mape(actuals, forecasts) if actuals else math.nan
    progress(f"quality: {deployment} MAPE {result:.4f} over {len(actuals)} forecast points"
             + (f", {failures} failed requests" if failures else ""))
    return result, len(actuals), failures
