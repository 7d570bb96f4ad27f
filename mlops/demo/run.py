"""``mlops demo``: the whole product on one machine, in a few minutes.

Trains two model versions on the seeded synthetic series (``sample_data``), releases the first
(``blue``: an empty endpoint gets it at once), then the second (``green``: side-by-side load test,
gates, quality gate, stepwise traffic shift with health checks, batch refresh), then walks the
AutoML path (``mlops.demo.automl``: trials -> the best -> environment from its conda file ->
release, into an endpoint of its own), and prints the report and where things are. The local endpoint keeps running (``mlops local down`` stops it).
Training uses the library API (``mlops.forecasting.training.train_model``); a model folder that
already holds ``model.pt`` is reused, so a second demo run is quick and says "nothing to release".
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlops.config import Config, ModelSource, with_profile
from mlops.release.pipeline import run_release
from mlops.release.record import Record
from mlops.release.report import console_report
from mlops.workspace.port import Progress, Workspace, no_progress

FIRST_EPOCHS = 2
SECOND_EPOCHS = 6


@dataclass
class DemoResult:
    records: list[Record]
    scoring_uri: str
    endpoint: str
    batch_endpoint: str
    batch_output: str | None
    forecast_svg: str | None
    seconds: float
    workspace: str
    traffic: dict[str, int] = field(default_factory=dict)
    request_file: str = ""
    smoke_input: str = "DIR"
    automl: Any = None
    """``mlops.demo.automl.AutoMLDemo`` (``None`` with ``--no-automl``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "endpoint": self.endpoint, "scoring_uri": self.scoring_uri,
                "traffic": self.traffic, "key_command": f"mlops keys {self.endpoint}",
                "batch_endpoint": self.batch_endpoint, "batch_output": self.batch_output,
                "forecast_svg": self.forecast_svg, "request_file": self.request_file,
                "seconds": round(self.seconds, 1),
                "releases": [{"release_id": r.release_id, "status": str(r.status), "record": str(r.path)}
                             for r in self.records],
                "automl": self.automl.to_dict() if self.automl is not None else None}

    def text(self) -> str:
        last = self.records[-1]
        lines = [console_report(last), "",
                 f"demo finished in {self.seconds:.0f}s",
                 f"  live endpoint   {self.endpoint}  {self.scoring_uri}  traffic "
                 + " ".join(f"{k}={v}%" for k, v in sorted(self.traffic.items())),
                 f"  its key         mlops keys {self.endpoint}",
                 f"  try it          mlops invoke {self.endpoint} --request {self.request_file}",
                 f"  batch endpoint  {self.batch_endpoint}  "
                 f"(mlops batch invoke {self.batch_endpoint} --input {self.smoke_input} --wait)"]
        if self.batch_output:
            lines.append(f"  batch output    {self.batch_output}")
        if self.forecast_svg:
            lines.append(f"  forecast plot   {self.forecast_svg}")
        if self.automl is not None:
            lines += self.automl.lines()
        lines += [f"  release records {', '.join(str(r.path.with_name(r.release_id + '.json')) for r in self.records)}",
                  "  status          mlops status",
                  "  stop it all     mlops local down"]
        return "\n".join(lines)


def _train(out: Path, *, epochs: int, seed: int, progress: Progress) -> Path:
    if (out / "model.pt").is_file():
        progress(f"demo: reusing the model in {out}")
        return out
    from mlops.demo.sample_data import demo_split
    from mlops.forecasting.training import train_model

    train, _holdout = demo_split()
    started = time.monotonic()
    progress(f"demo: training {out.name} ({epochs} epochs) on {len(train)} days of synthetic DAU")
    result = train_model(train, out, horizon=14, seed=seed, epochs=epochs, source="synthetic")
    progress(f"demo: trained {out.name} in {time.monotonic() - started:.0f}s - {result.summary()}")
    return out


def run_demo(config: Config, workspace: Workspace, *, workdir: Path | None = None, epochs: int | None = None,
             profile: str = "fast", automl: bool = True, progress: Progress = no_progress) -> DemoResult:
    started = time.monotonic()
    workdir = workdir or config.records.parent / "demo"
    config = with_profile(config, profile) if config.profile != profile else config
    first = _train(workdir / "model-v1", epochs=FIRST_EPOCHS, seed=1, progress=progress)
    second = _train(workdir / "model-v2", epochs=epochs or SECOND_EPOCHS, seed=0, progress=progress)
    records: list[Record] = []
    state_file = workdir / "demo-state.json"
    done_before = state_file.is_file() and json.loads(state_file.read_text()).get("completed")
    endpoint = workspace.get_online_endpoint(config.online.endpoint.name)
    if not (done_before and endpoint is not None and any(endpoint.traffic.values())):
        progress("demo: release 1 - the first model into an empty endpoint (blue)")
        records.append(run_release(replace(config, model=ModelSource(config.model.name, path=first)), workspace,
                                   config.records / "current.json", progress=progress))
    progress("demo: release 2 - the second model as the candidate (green): gates, stepwise shift, batch")
    records.append(run_release(replace(config, model=ModelSource(config.model.name, path=second)), workspace,
                               config.records / "current.json", progress=progress))
    automl_result = None
    if automl and workspace.uri.startswith("local:"):  # on Azure, AutoML itself trains (mlops jobs submit)
        from mlops.demo.automl import run_automl_demo

        automl_result = run_automl_demo(config, workspace, progress=progress)
    state_file.write_text(json.dumps({"completed": True}) + "\n")
    request_file = workdir / "request.json"
    body = _sample_request(config)
    if body:
        request_file.write_bytes(body)
    endpoint = workspace.get_online_endpoint(config.online.endpoint.name)
    batch = None
    svg = None
    for record in reversed(records):
        if record.batch is not None and record.batch.smoke_output:
            batch, svg = record.batch.smoke_output, record.batch.forecast_svg
            break
    return DemoResult(records=records, scoring_uri=endpoint.scoring_uri if endpoint else "",
                      endpoint=config.online.endpoint.name, batch_endpoint=config.batch.endpoint.name,
                      batch_output=batch, forecast_svg=svg, seconds=time.monotonic() - started,
                      workspace=workspace.uri, traffic=dict(endpoint.traffic) if endpoint else {},
                      request_file=str(request_file) if body else "", smoke_input=_relative(config.batch.smoke_input),
                      automl=automl_result)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _sample_request(config: Config) -> bytes:
    """One forecast request cut from the holdout: 56 days of actuals, then 7 dates to forecast."""
    from mlops.release.quality import build_requests, read_rows

    holdout = config.load_test.gates.quality.holdout or config.load_test.profile.data
    if not holdout:
        return b""
    return build_requests(read_rows(Path(holdout)), origins=1, context_days=56, horizon=7)[0].body
