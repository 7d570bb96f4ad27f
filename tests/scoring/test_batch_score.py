"""The batch scoring script on a staged code snapshot: init() and run(mini_batch) as Azure calls them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlops.forecasting.data import to_csv_text
from mlops.forecasting.synthetic import generate_dau
from tests.forecasting.tiny import TINY_DAYS, TINY_SEED

pytestmark = pytest.mark.slow

# Runs in a fresh interpreter, from the snapshot folder, like a batch worker does.
DRIVER = """
import json, os, sys
import importlib.util
spec = importlib.util.spec_from_file_location("batch_score", os.path.join(sys.argv[1], "score.py"))
score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score)
score.init()
out = score.run(json.loads(sys.argv[2]))
out.to_csv(sys.argv[3], index=False)
errors = []
for bad in json.loads(sys.argv[4]):
    try:
        score.run([bad])
        errors.append("no error")
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
print(json.dumps({"mlops": sys.modules["mlops"].__file__, "errors": errors}))
"""


def test_batch_run_scores_each_csv_and_names_bad_files(tmp_path: Path, batch_code: Path,
                                                       azure_model_dir: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    continuation = generate_dau(TINY_DAYS + 30, seed=TINY_SEED).iloc[TINY_DAYS:]
    (inputs / "recent.csv").write_text(to_csv_text(continuation))  # continues the training data
    (inputs / "elsewhere.csv").write_text(to_csv_text(generate_dau(42, start="2031-01-01")))
    (inputs / "notes.txt").write_text("not a forecast input")
    (inputs / "no-count.csv").write_text("date,value\n2020-01-01,1\n")
    (inputs / "gappy.csv").write_text("date,count\n2020-01-01,1\n2020-01-03,2\n")
    (inputs / "garbage.csv").write_bytes(b"\x00\xff\x00")
    mini_batch = [str(inputs / n) for n in ("recent.csv", "notes.txt", "elsewhere.csv")] + [str(inputs)]
    bad = [str(inputs / n) for n in ("no-count.csv", "gappy.csv", "garbage.csv")]
    output = tmp_path / "out.csv"
    env = {"AZUREML_MODEL_DIR": str(azure_model_dir), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", DRIVER, str(batch_code), json.dumps(mini_batch), str(output),  # noqa: S603
                             json.dumps(bad)], capture_output=True, text=True, timeout=180, cwd=batch_code, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["mlops"]).is_relative_to(batch_code)  # the snapshot's copy, not the repo's

    frame = pd.read_csv(output)
    assert list(frame.columns) == ["date", "forecast_origin", "predicted", "count", "file"]
    assert set(frame["file"]) == {"recent.csv", "elsewhere.csv"}  # notes.txt and the folder were skipped
    recent = frame[frame["file"] == "recent.csv"]
    assert recent["forecast_origin"].iloc[0] == generate_dau(TINY_DAYS, seed=TINY_SEED)["date"].iloc[-1].strftime(
        "%Y-%m-%d")  # the stored training tail is the context of the first origin
    assert len(recent) == (30 - 14 + 1) * 14
    lead = (pd.to_datetime(recent["date"]) - pd.to_datetime(recent["forecast_origin"])).dt.days
    assert (lead.min(), lead.max()) == (1, 14)
    actual = continuation.set_index(continuation["date"].dt.strftime("%Y-%m-%d"))["count"]
    assert (recent["count"].to_numpy() == actual[recent["date"]].to_numpy()).all()
    assert (frame["predicted"] > 0).all()

    no_count, gappy, garbage = report["errors"]
    assert f"{inputs / 'no-count.csv'}: missing required column 'count'" in no_count
    assert str(inputs / "gappy.csv") in gappy and "2020-01-01 is followed by 2020-01-03" in gappy
    assert str(inputs / "garbage.csv") in garbage


def test_batch_quantile_columns_when_the_deployment_asks(tmp_path: Path, batch_code: Path,
                                                         azure_model_dir: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    continuation = generate_dau(TINY_DAYS + 20, seed=TINY_SEED).iloc[TINY_DAYS:]
    (inputs / "recent.csv").write_text(to_csv_text(continuation))
    output = tmp_path / "out.csv"
    env = {"AZUREML_MODEL_DIR": str(azure_model_dir), "PATH": "/usr/bin:/bin", "MLOPS_BATCH_QUANTILES": "0.9, 0.1"}
    result = subprocess.run([sys.executable, "-c", DRIVER, str(batch_code), json.dumps([str(inputs / "recent.csv")]),  # noqa: S603
                             str(output), "[]"], capture_output=True, text=True, timeout=180, cwd=batch_code, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    frame = pd.read_csv(output)
    assert list(frame.columns) == ["date", "forecast_origin", "predicted", "q0.1", "q0.9", "count", "file"]
    assert (frame["q0.1"] <= frame["predicted"]).all() and (frame["predicted"] <= frame["q0.9"]).all()
    assert (frame["q0.1"] < frame["q0.9"]).all()

    env["MLOPS_BATCH_QUANTILES"] = "0.1,1.5"
    refused = subprocess.run([sys.executable, "-c", DRIVER, str(batch_code), "[]", str(output), "[]"],  # noqa: S603
                             capture_output=True, text=True, timeout=180, cwd=batch_code, env=env)
    assert refused.returncode != 0
    assert "MLOPS_BATCH_QUANTILES='0.1,1.5': level[1] is 1.5; a quantile level must be strictly between 0 and 1" in refused.stderr
