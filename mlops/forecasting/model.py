"""The temporal convolutional network: dilated causal residual blocks, direct multi-horizon output.

Input: the context window (scaled target + calendar features, channels first). A stack of
residual blocks, each two causal 1-D convolutions with dilation ``d`` (1, 2, 4, 8 by default;
receptive field ``1 + 2 (k - 1) sum(d)`` = 61 days with kernel 3) encodes it; the encoding of the
last day, together with the calendar of the ``horizon`` days ahead (known in advance: weekday,
season, holidays), goes through a small MLP that outputs all ``horizon`` values at once (direct
strategy, no recursion, so errors do not compound).

The output is added to the weekly seasonal-naive forecast (``windows.Samples.naive``). The last
layer starts at zero, so training starts from the baseline and early stopping can only keep a
network that does better on the validation tail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class TCNConfig:
    input_channels: int
    """1 (scaled target) + calendar features."""
    future_features: int
    horizon: int = 14
    window: int = 56
    channels: int = 24
    kernel_size: int = 3
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8))
    head_hidden: int = 64
    dropout: float = 0.1
    seasonal_skip: bool = True
    """Add the network's output to the seasonal-naive forecast (off only for the deliberately bad
    testing model of ``shuffle_targets``: it then starts from a flat forecast at the local level)."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["dilations"] = list(self.dilations)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TCNConfig:
        values = dict(data)
        values["dilations"] = tuple(int(d) for d in values["dilations"])
        return cls(**values)

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * (self.kernel_size - 1) * sum(self.dilations)


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution that only looks back: left padding of ``(k - 1) * dilation``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self._left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self._left, 0)))


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 dropout: float) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = CausalConv1d(out_channels, out_channels, kernel_size, dilation)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(torch.relu(self.conv1(x)))
        y = self.dropout(torch.relu(self.conv2(y)))
        return torch.relu(y + self.skip(x))


class TCN(nn.Module):
    def __init__(self, config: TCNConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        channels = config.input_channels
        for dilation in config.dilations:
            blocks.append(ResidualBlock(channels, config.channels, config.kernel_size, dilation, config.dropout))
            channels = config.channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Linear(config.channels + config.horizon * config.future_features, config.head_hidden),
            nn.ReLU(),
            nn.Linear(config.head_hidden, config.horizon),
        )
        last = self.head[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, past: torch.Tensor, future: torch.Tensor, naive: torch.Tensor) -> torch.Tensor:
        """``past (B, C, L)``, ``future (B, H, F)``, ``naive (B, H)`` -> scaled forecast ``(B, H)``."""
        encoded = self.blocks(past)[:, :, -1]
        features = torch.cat([encoded, future.flatten(start_dim=1)], dim=1)
        out = self.head(features)
        return naive + out if self.config.seasonal_skip else out
