"""Training's behaviour pinned: a tiny seeded training's ``metrics.json`` and ``model.pt`` against a
committed fingerprint (``training_pin.json``).

A refactor of the training code (where its parts live, how they hand results to each other) must
leave both unchanged. The fingerprint is the metrics without the run's clock (``created``,
``training.seconds``), and of everything ``model.pt`` holds but its metadata's clock and torch
version - the weights, the calibration residuals and level, the scaling, the context, the network
config - each tensor's shape, sum of absolute values and sum of squares. Numbers are compared to a relative
1e-4: a CPU whose SIMD kernels round differently in the last bits (a few epochs amplify that to
~1e-6) does not fail it, while any change of behaviour does (a seed, a split, an epoch: percents).
A deliberate change of behaviour rewrites the file: ``.venv/bin/python -m tests.forecasting.test_training_pin``.
"""

from __future__ import annotations

import json
import math
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
RTOL = 1e-4


def _summary(value: Any) -> Any:
    """JSON-able: dicts without the clock, tensors as ``[shape, sum of |x|, sum of x^2]`` - sums that
    cannot cancel, so a relative tolerance means the same for every tensor."""
    if isinstance(value, dict):
        return {k: _summary(v) for k, v in sorted(value.items()) if k not in CLOCK}
    if isinstance(value, torch.Tensor):
        values = value.detach().to(torch.float64)
        return [list(value.shape), float(values.abs().sum()), float(values.square().sum())]
    if isinstance(value, list | tuple):
        return [_summary(v) for v in value]
    return value


def differences(actual: Any, pinned: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``pinned``: numbers beyond ``RTOL``, anything else at all."""
    if isinstance(actual, dict) and isinstance(pinned, dict):
        if set(actual) != set(pinned):
            return [f"{where}: keys {sorted(set(actual) ^ set(pinned))}"]
        return [d for k in actual for d in differences(actual[k], pinned[k], f"{where}.{k}")]
    if isinstance(actual, list) and isinstance(pinned, list):
        if len(actual) != len(pinned):
            return [f"{where}: length {len(actual)} != {len(pinned)}"]
        return [d for i, (a, b) in enumerate(zip(actual, pinned, strict=True)) for d in differences(a, b, f"{where}[{i}]")]
    numbers = (int, float)
    if (isinstance(actual, numbers) and isinstance(pinned, numbers)
            and not isinstance(actual, bool) and not isinstance(pinned, bool)):
        same = math.isclose(actual, pinned, rel_tol=RTOL, abs_tol=1e-9)
        return [] if same else [f"{where}: {actual!r} != {pinned!r}"]
    return [] if actual == pinned else [f"{where}: {actual!r} != {pinned!r}"]


def fingerprint(out_dir: Path) -> dict[str, Any]:
    """A training output folder's ``metrics`` (no clock), ``model`` (``model.pt`` but its metadata:
    weights, calibration, scaling, context, network config - none of which holds the ``TrainConfig``)
    and ``metadata`` (but its clock and torch version)."""
    metrics = json.loads((out_dir / METRICS_FILE).read_text())
    artifact = torch.load(out_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    return {"metrics": _summary(metrics), "metadata": _summary(artifact.get("metadata", {})),
            "model": _summary({k: v for k, v in artifact.items() if k != "metadata"})}


def _train(out_dir: Path, variant: str, **extra: Any) -> Path:
    return train_tiny(out_dir, **{**VARIANTS[variant], **extra}).out_dir


def test_tiny_training_matches_its_pinned_fingerprint(tiny_model: TrainResult, tmp_path: Path) -> None:
    pinned = json.loads(PIN_FILE.read_text())
    assert set(pinned) == set(VARIANTS)
    assert differences(fingerprint(tiny_model.out_dir), pinned["tiny"]) == []  # the session's tiny model
    assert differences(fingerprint(_train(tmp_path / "shuffled", "tiny-shuffled")), pinned["tiny-shuffled"]) == []


@pytest.mark.parametrize("change", [{"seed": 2}, {"epochs": 2}, {"validation_days": 35}])
def test_the_fingerprint_sees_a_changed_training(tmp_path: Path, change: dict[str, Any]) -> None:
    """The pin can fail: another seed, one epoch less or another validation split gives other weights and
    other holdout metrics beyond the tolerance (``model`` does not hold the ``TrainConfig``, so this
    is not its echo)."""
    pinned = json.loads(PIN_FILE.read_text())["tiny"]
    changed = fingerprint(_train(tmp_path, "tiny", **change))
    assert differences(changed["model"], pinned["model"])
    assert differences(changed["metrics"]["holdout"], pinned["metrics"]["holdout"])


if __name__ == "__main__":  # rewrite the pin after a deliberate change of behaviour
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pins = {name: fingerprint(_train(Path(tmp) / name, name)) for name in VARIANTS}
    PIN_FILE.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    print(f"wrote {PIN_FILE.name}: " + ", ".join(pins), file=sys.stderr)
