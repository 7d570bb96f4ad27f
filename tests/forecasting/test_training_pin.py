"""Training's behaviour pinned: a tiny seeded training's ``metrics.json`` and ``model.pt`` against a
committed fingerprint (``training_pin.json``).

A refactor of the training code (where its parts live, how they hand results to each other) must
leave both unchanged. The fingerprint is the metrics without the run's clock (``created``,
``training.seconds``) and a sha256 of everything ``model.pt`` holds but its metadata's clock and torch
version: the weights, the calibration residuals and level, the scaling, the context, the network
config. Floats go in rounded to 6 significant digits, so a CPU whose SIMD kernels differ in the last
bit does not fail it while any change of behaviour does (a seed, a split, an epoch: far more than
1e-6 relative). A deliberate change of behaviour rewrites the file:
``.venv/bin/python -m tests.forecasting.test_training_pin``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from mlops.forecasting.artifact import MODEL_FILE
from mlops.forecasting.training import METRICS_FILE, TrainResult
from tests.forecasting.tiny import train_tiny

PIN_FILE = Path(__file__).with_name("training_pin.json")
VARIANTS: dict[str, dict[str, Any]] = {"tiny": {}, "tiny-shuffled": {"shuffle_targets": True}}
"""The pinned runs: ``tiny_config`` as the other tests train it, and its ``shuffle_targets`` run
(one member, the last epoch kept: the other branch of the fit)."""
CLOCK = ("created", "seconds", "torch_version")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items() if k not in CLOCK}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _feed(digest: Any, name: str, value: Any) -> None:
    if isinstance(value, dict):
        for key in sorted(k for k in value if k not in CLOCK):
            _feed(digest, f"{name}.{key}", value[key])
    elif isinstance(value, torch.Tensor):
        values = value.detach().to(torch.float64).flatten().tolist()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}:".encode())
        digest.update(",".join(f"{v:.6g}" for v in values).encode())
    else:
        digest.update(f"{name}={json.dumps(_rounded(value), sort_keys=True)};".encode())


def fingerprint(out_dir: Path) -> dict[str, Any]:
    """A training output folder's ``metrics`` (rounded, no clock), ``model_sha256`` (``model.pt`` but
    its metadata: weights, calibration, scaling, context, network config - none of which holds the
    ``TrainConfig``) and ``metadata_sha256`` (the metadata but its clock and torch version)."""
    metrics = json.loads((out_dir / METRICS_FILE).read_text())
    artifact = torch.load(out_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    model, metadata = hashlib.sha256(), hashlib.sha256()
    for key in sorted(artifact):
        _feed(metadata if key == "metadata" else model, key, artifact[key])
    return {"metrics": _rounded(metrics), "model_sha256": model.hexdigest(), "metadata_sha256": metadata.hexdigest()}


def _train(out_dir: Path, variant: str, **extra: Any) -> Path:
    return train_tiny(out_dir, **{**VARIANTS[variant], **extra}).out_dir


def test_tiny_training_matches_its_pinned_fingerprint(tiny_model: TrainResult, tmp_path: Path) -> None:
    pinned = json.loads(PIN_FILE.read_text())
    assert set(pinned) == set(VARIANTS)
    assert fingerprint(tiny_model.out_dir) == pinned["tiny"]  # the session's tiny model is the "tiny" variant
    assert fingerprint(_train(tmp_path / "shuffled", "tiny-shuffled")) == pinned["tiny-shuffled"]


@pytest.mark.parametrize("change", [{"seed": 2}, {"epochs": 2}, {"validation_days": 35}])
def test_the_fingerprint_sees_a_changed_training(tmp_path: Path, change: dict[str, Any]) -> None:
    """The pin can fail: another seed, one epoch less or another validation split gives other weights and
    other holdout metrics (``model_sha256`` does not hash the ``TrainConfig``, so this is not its echo)."""
    pinned = json.loads(PIN_FILE.read_text())["tiny"]
    changed = fingerprint(_train(tmp_path, "tiny", **change))
    assert changed["model_sha256"] != pinned["model_sha256"]
    assert changed["metrics"]["holdout"] != pinned["metrics"]["holdout"]


if __name__ == "__main__":  # rewrite the pin after a deliberate change of behaviour
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pins = {name: fingerprint(_train(Path(tmp) / name, name)) for name in VARIANTS}
    PIN_FILE.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    print(f"wrote {PIN_FILE.name}: " + ", ".join(f"{k} {v['model_sha256'][:12]}" for k, v in pins.items()),
          file=sys.stderr)
