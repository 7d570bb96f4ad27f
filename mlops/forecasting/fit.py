"""The training loop: an ensemble of ``members`` TCNs (``model.TCN``) fitted on the training
samples, early-stopped on the validation tail (``splits``).

Each member learns from its own loss (Huber or L1, ``TrainConfig.huber_delta``); after every epoch
the averaged forecast's L1 loss on the validation tail - a rolling validation: every origin of the
tail, horizons 1..H - of the exponential moving average of the weights decides early stopping (the
weights of the best epoch are kept; epoch 0 is the untrained network, i.e. the seasonal-naive
baseline). Batches are blocks of consecutive origins, encoded by one convolution pass each
(``_encode_blocks``). Deterministic for a seed inside ``Deterministic``; CPU only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .artifact import build_artifact
from .calibration import Calibration
from .data import TargetScaling
from .model import TCN, TCNConfig
from .splits import Prepared, Split, prepare
from .train_config import TrainConfig
from .windows import FUTURE_FEATURES, SEQUENCE_FEATURES, Samples

_L1 = torch.nn.L1Loss()


class Deterministic:
    """Seeded, deterministic, fixed-thread torch for the duration of a ``with`` block (the previous
    thread count and deterministic setting are restored afterwards)."""

    def __init__(self, seed: int, threads: int) -> None:
        self.seed, self.threads = seed, threads

    def __enter__(self) -> Deterministic:
        self._threads = torch.get_num_threads()
        self._deterministic = torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._threads)
        torch.use_deterministic_algorithms(self._deterministic)


def _validation_loss(network: torch.nn.Module, samples: Samples) -> float:
    """L1 of the averaged forecast on ``samples`` (the MAPE-like loss early stopping always judges,
    whatever the training loss)."""
    network.eval()
    with torch.no_grad():
        return float(_L1(_predict(network, samples), torch.from_numpy(samples.target)))


def _predict(network: torch.nn.Module, samples: Samples) -> torch.Tensor:
    return network(torch.from_numpy(samples.sequence), torch.from_numpy(samples.origins),
                   torch.from_numpy(samples.future), torch.from_numpy(samples.naive))


def _blocks(origins: np.ndarray, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` sample ranges of at most ``size`` consecutive origins each."""
    breaks = np.flatnonzero(np.diff(origins) != 1) + 1
    out: list[tuple[int, int]] = []
    for a, b in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [len(origins)]]), strict=True):
        out.extend((int(i), int(min(i + size, b))) for i in range(int(a), int(b), size))
    return out


def _encode_blocks(network: TCN, sequence: torch.Tensor, origins: np.ndarray, blocks: list[tuple[int, int]],
                   reach: int) -> torch.Tensor:
    """The encodings ``(B, K, channels)`` of the blocks' origins, in block order, from one convolution
    pass over just the days they read: each block's segment is its origins plus the ``reach`` days
    before the first (left-padded to a common length; padding lies outside every used receptive field)."""
    length = max(b - a for a, b in blocks) + reach
    segments = []
    for a, b in blocks:
        first, last = int(origins[a]) - reach, int(origins[b - 1]) + 1
        segment = sequence[:, first:last]
        segments.append(torch.nn.functional.pad(segment, (length - segment.shape[1], 0)))
    encoded = network.encode(torch.stack(segments))  # (S, length, K, channels)
    return torch.cat([encoded[i, length - (b - a):] for i, (a, b) in enumerate(blocks)])


def network_config(config: TrainConfig) -> TCNConfig:
    """The ensemble's network (``shuffle_targets``: one member, no seasonal skip - a model that must
    learn everything, and from shuffled counts cannot)."""
    return TCNConfig(input_channels=SEQUENCE_FEATURES, future_features=FUTURE_FEATURES,
                     horizon=config.horizon, window=config.window, channels=config.channels,
                     dilations=tuple(config.dilations), dropout=config.dropout,
                     seasonal_skip=not config.shuffle_targets,
                     members=1 if config.shuffle_targets else config.members)


@dataclass(frozen=True)
class _Epochs:
    """What ``_train_epochs`` ran: the best epoch (0 = untrained), how many ran, the averaged weights
    of the best epoch and their validation loss."""

    best_epoch: int
    epochs_run: int
    best_state: dict[str, torch.Tensor]
    best_loss: float


def _train_epochs(network: TCN, data: Prepared, config: TrainConfig, epochs: int,
                  progress: Callable[[str], None]) -> _Epochs:
    """Train up to ``epochs`` epochs, stopping early on the validation loss (L1, whatever the training
    loss) of the exponential moving average of the weights (``ema_decay``), which is what is kept."""
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    train_loss = torch.nn.HuberLoss(delta=config.huber_delta) if config.huber_delta else _L1
    train, val = data.train, data.val
    sequence = torch.from_numpy(train.sequence)
    tensors = [torch.from_numpy(a) for a in (train.future, train.naive, train.target)]
    n_train = len(train.target)
    blocks = _blocks(train.origins, config.block_days)
    reach = network.config.receptive_field - 1
    members = network.config.members
    best_loss = _validation_loss(network, val)
    best_state, best_epoch, epochs_run, stale = copy.deepcopy(network.state_dict()), 0, 0, 0
    averaged, decay = copy.deepcopy(network), config.ema_decay  # judged and kept: the averaged weights
    progress(f"epoch 0/{epochs}: validation loss {best_loss:.4f} (untrained), {n_train} training and "
             f"{len(val.target)} validation samples, {members} member{'s' if members > 1 else ''}")
    order_gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, epochs + 1):
        network.train()
        order = torch.randperm(len(blocks), generator=order_gen).tolist()
        total = 0.0
        per_step = max(1, config.batch_size // config.block_days)
        for start in range(0, len(order), per_step):
            chosen = [blocks[i] for i in order[start:start + per_step]]
            idx = torch.from_numpy(np.concatenate([np.arange(a, b) for a, b in chosen]))
            future, naive, target = (t[idx] for t in tensors)
            optimizer.zero_grad()
            out = network.head(_encode_blocks(network, sequence, train.origins, chosen, reach), future, naive)
            loss = train_loss(out, target.unsqueeze(1).expand_as(out))
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for kept, current in zip(averaged.parameters(), network.parameters(), strict=True):
                    kept.mul_(decay).add_(current, alpha=1.0 - decay)
            total += float(loss.detach()) * len(idx)
        epochs_run = epoch
        val_loss = _validation_loss(averaged, val)
        improved = val_loss < best_loss - 1e-6
        if improved:
            best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(averaged.state_dict()), epoch, 0
        else:
            stale += 1
        progress(f"epoch {epoch}/{epochs}: train loss {total / n_train:.4f}, validation loss "
                 f"{val_loss:.4f}{' (best)' if improved else ''}")
        if stale >= config.patience:
            progress(f"early stop: no improvement for {config.patience} epochs, keeping epoch {best_epoch}")
            break
    return _Epochs(best_epoch=best_epoch, epochs_run=epochs_run, best_state=best_state, best_loss=best_loss)


@dataclass(frozen=True)
class Fitted:
    """The fitted ensemble, its target scaling, and what the fit did."""

    network: TCN
    scaling: TargetScaling
    validation_residuals: np.ndarray
    """``(horizon, n)`` residuals of the kept network on the validation tail, in ``log1p`` space."""
    epochs_run: int
    best_epoch: int
    validation_loss: float
    training_samples: int
    validation_samples: int

    def facts(self) -> dict[str, Any]:
        """The fit's part of ``metrics.json``'s ``training`` section."""
        return {"members": self.network.config.members, "epochs_run": self.epochs_run,
                "best_epoch": self.best_epoch, "validation_loss": self.validation_loss,
                "training_samples": self.training_samples, "validation_samples": self.validation_samples}

    def artifact(self, *, context: pd.DataFrame, calibration: Calibration, metadata: dict[str, Any]) -> dict[str, Any]:
        """``model.pt``'s dict of this network with ``context``, ``calibration`` and ``metadata``."""
        return build_artifact(config=self.network.config.to_dict(), state_dict=self.network.state_dict(),
                              scaling=self.scaling.to_dict(), context=context, calibration=calibration,
                              metadata=metadata)


def fit(series: pd.DataFrame, config: TrainConfig, split: Split, progress: Callable[[str], None]) -> Fitted:
    """Fit the ensemble on ``split``'s training origins of ``series``, early-stopped on its validation
    tail (run it inside ``Deterministic``).

    Each member learns from its own loss (the mean of the members' losses: no member's gradient
    depends on another's output, so they do not co-adapt); the ensemble's validation loss - L1 of
    the averaged forecast - decides early stopping. ``shuffle_targets`` keeps the last epoch instead:
    the testing aid wants a bad model, and the best may be epoch 0, i.e. the seasonal-naive start."""
    data = prepare(series, config, split)
    network = TCN(network_config(config))
    val = data.val
    epochs = _train_epochs(network, data, config, config.epochs, progress)
    if config.shuffle_targets:
        best_epoch, best_loss = epochs.epochs_run, _validation_loss(network, val)
    else:
        network.load_state_dict(epochs.best_state)
        best_epoch, best_loss = epochs.best_epoch, epochs.best_loss
    network.eval()
    with torch.no_grad():
        z = _predict(network, val).numpy().astype(np.float64)
    residuals = (val.target.astype(np.float64) - z) * data.scaling.scale
    return Fitted(network=network, scaling=data.scaling, validation_residuals=residuals.T,
                  epochs_run=epochs.epochs_run, best_epoch=best_epoch, validation_loss=best_loss,
                  training_samples=int(len(data.train.target)), validation_samples=int(len(val.target)))
