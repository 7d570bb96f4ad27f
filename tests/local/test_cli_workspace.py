"""The people's CLI for a workspace: output shapes, usage errors, the local host's up/down."""

from __future__ import annotations

import json
from pathlib import Path

from mlops.cli.workspace import status_table
from mlops.workspace.local.online.client import LocalHostClient
from tests.conftest import run_cli

DOCUMENT = {
    "workspace": "local:/w",
    "online_endpoints": [{
        "name": "tcn-online", "scoring_uri": "http://127.0.0.1:5000/score",
        "traffic": {"blue": 90, "green": 10}, "mirror_traffic": {},
        "deployments": [
            {"name": "blue", "model": "tcn:1", "environment": "tcn-inference:1", "state": "Succeeded"},
            {"name": "green", "model": "tcn:2", "environment": "tcn-inference:1", "state": "Succeeded"},
        ],
    }, {"name": "empty-online", "scoring_uri": "http://127.0.0.1:5001/score", "traffic": {}, "mirror_traffic": {},
        "deployments": []}],
    "batch_endpoints": [{
        "name": "tcn-batch", "default_deployment": "batch-v2",
        "deployments": [{"name": "batch-v2", "model": "tcn:2", "environment": "tcn-inference:1", "state": "Succeeded"}],
    }],
}


def test_status_table() -> None:
    assert status_table(DOCUMENT) == "\n".join([
        "workspace local:/w",
        "",
        "online endpoint tcn-online  http://127.0.0.1:5000/score",
        "  DEPLOYMENT  MODEL  ENVIRONMENT      STATE      TRAFFIC  MIRROR",
        "  blue        tcn:1  tcn-inference:1  Succeeded  90%      -",
        "  green       tcn:2  tcn-inference:1  Succeeded  10%      -",
        "",
        "online endpoint empty-online  http://127.0.0.1:5001/score",
        "  no deployments",
        "",
        "batch endpoint tcn-batch  default: batch-v2",
        "  DEPLOYMENT  MODEL  ENVIRONMENT      STATE      DEFAULT",
        "  batch-v2    tcn:2  tcn-inference:1  Succeeded  yes",
    ])


def test_status_of_an_empty_workspace(tmp_path: Path) -> None:
    uri = f"local:{tmp_path / 'ws'}"
    text = run_cli("--workspace", uri, "status")
    assert (text.returncode, text.stdout) == (0, f"workspace {uri}\nno endpoints yet\n")
    as_json = run_cli("--workspace", uri, "status", "--json")
    assert json.loads(as_json.stdout) == {"workspace": uri, "online_endpoints": [], "batch_endpoints": []}
    assert not LocalHostClient(tmp_path / "ws").is_running()  # looking does not start a host


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    uri = f"local:{tmp_path / 'ws'}"
    local = run_cli("--workspace", "azureml://subscriptions/s/resourceGroups/r/workspaces/w", "local", "status")
    assert local.returncode == 2 and "manages the host of a local: workspace" in local.stderr
    group = run_cli("--workspace", uri, "batch")
    assert group.returncode == 2 and "mlops batch invoke" in group.stderr
    missing = run_cli("--workspace", uri, "invoke", "tcn-online", "--request", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read the request file" in missing.stderr
    keys = run_cli("--workspace", uri, "keys", "tcn-online")
    assert keys.returncode == 1 and "online endpoint 'tcn-online' does not exist" in keys.stderr
    job = run_cli("--workspace", uri, "batch", "status", "no-such-job")
    assert job.returncode == 1 and "batch job 'no-such-job' does not exist" in job.stderr
    untouched = tmp_path / "untouched"
    no_wait = run_cli("--workspace", f"local:{untouched}", "batch", "invoke", "tcn-batch", "--input", str(tmp_path),
                      "--output", "out")
    assert no_wait.returncode == 2 and "--output needs --wait" in no_wait.stderr
    assert not untouched.exists(), "a usage error must touch nothing"


def test_local_up_status_down(tmp_path: Path) -> None:
    uri = f"local:{tmp_path / 'ws'}"
    try:
        up = run_cli("--workspace", uri, "local", "up", timeout=60)
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip() == f"local host of {uri} is running; serving 0 endpoint(s)"
        status = json.loads(run_cli("--workspace", uri, "local", "status", "--json").stdout)
        assert status["running"] is True and isinstance(status["pid"], int) and status["endpoints"] == {}
        down = run_cli("--workspace", uri, "local", "down")
        assert (down.returncode, down.stdout.strip()) == (0, f"local host of {uri} stopped")
        assert run_cli("--workspace", uri, "local", "status").stdout.strip() == f"local host of {uri}: not running"
    finally:
        LocalHostClient(tmp_path / "ws").stop()
