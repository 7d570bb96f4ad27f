"""``mlops train`` run as a user runs it (a real process)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mlops.forecasting.training import TrainResult
from tests.conftest import run_cli


def test_train_on_synthetic_writes_model_and_metrics(tmp_path: Path) -> None:
    out = tmp_path / "v1"
    result = run_cli("train", "--data", "synthetic", "--out", str(out), "--synthetic-days", "340",
                     "--epochs", "2", "--seed", "3", "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 0/2", "epoch 1/2", "epoch 2/2"]
    summary = json.loads(result.stdout)
    assert summary["model_path"] == str(out / "model.pt")
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["metrics"] == metrics
    assert metrics["config"]["seed"] == 3 and metrics["data"]["source"] == "synthetic"
    assert torch.load(out / "model.pt", weights_only=True)["metadata"]["seed"] == 3


def test_text_summary_names_both_mapes(tiny_model: TrainResult) -> None:
    text = tiny_model.summary()
    assert f"model:    {tiny_model.model_path}" in text
    assert "model           MAPE" in text and "seasonal naive  MAPE" in text


def test_bad_input_exits_2_naming_file_and_column(tmp_path: Path) -> None:
    missing = run_cli("train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'nope.csv'}: file not found" in missing.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("date,value\n2020-01-01,1\n")
    no_count = run_cli("train", "--data", str(bad), "--out", str(tmp_path / "x"))
    assert no_count.returncode == 2
    assert f"{bad}: missing required column 'count'" in no_count.stderr
    assert not (tmp_path / "x").exists()
    flags = run_cli("train", "--data", "synthetic", "--out", str(tmp_path / "x"), "--epochs", "0")
    assert flags.returncode == 2 and "positive integer" in flags.stderr
