"""The temporal convolutional network: dilated causal residual blocks, direct multi-horizon output.

Input: a day-by-day feature sequence (``windows.sequence_features``, channels first). A stack of
residual blocks, each two causal 1-D convolutions with dilation ``d`` (1, 2, 4, 8, 16 by default;
receptive field ``1 + 2 (k - 1) sum(d)`` = 125 days with kernel 3) encodes every day from the days
before it; the encoding of an origin, together with the calendar of the ``horizon`` days ahead
(known in advance: weekday, season, holidays), goes through a small MLP that outputs all
``horizon`` values at once (direct strategy, no recursion, so errors do not compound).

The output is added to the weekly seasonal-naive forecast (``windows.Samples.naive``). The last
layer starts at zero, so training starts from the baseline and early stopping can only keep a
network that does better on the validation tail.

``TCN`` is an ensemble of ``members`` such networks with their own initial weights, averaged
(in the scaled log space, i.e. a geometric mean of the forecasts). One TCN's accuracy depends on
its seed by more than half a MAPE point on GitHub's DAU (issue 11); the mean of a few is better
and stable. ``model.pt`` stays a plain state dict of tensors.
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
    window: int = 138
    """Days of context an origin needs: ``windows.context_days(receptive_field)``."""
    channels: int = 24
    kernel_size: int = 3
    dilations: tuple[int, ...] = field(default=(1, 2, 4, 8, 16))
    head_hidden: int = 64
    dropout: float = 0.1
    seasonal_skip: bool = True
    """Add the network's output to the seasonal-naive forecast (off only for the deliberately bad
    testing model of ``shuffle_targets``: it then starts from a flat forecast at the local level)."""
    members: int = 1
    """Networks in the ensemble, each of this shape (``TCN``)."""

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
    """A 1-D convolution that only looks back: left padding of ``(k - 1) * dilation``. ``groups``
    keeps the ensemble's members apart (member ``k`` owns channel group ``k``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups)
        self._left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self._left, 0)))


def member_conv(conv: nn.Conv1d, x: torch.Tensor, members: int) -> torch.Tensor:
    """``conv(x)`` for one sequence ``x (1, members * in, L)`` of a grouped convolution (one group per
    member), as one batched matrix product over the members (im2col + ``baddbmm``). On CPU torch's
    grouped ``conv1d`` took ~2x as long for these sizes (issue 11's serving profile: 1.7 vs 1.2 ms for
    the whole stack at batch 1); the result is the same up to float32 rounding (~1e-6)."""
    weight = conv.weight  # (members * out, in, k)
    out_channels, in_channels, k = weight.shape
    out_channels //= members
    dilation = conv.dilation[0]
    left = getattr(conv, "_left", 0)
    if left:
        x = nn.functional.pad(x, (left, 0))
    length = x.shape[-1] - dilation * (k - 1)
    grouped = x.reshape(members, in_channels, -1)
    columns = torch.stack([grouped[:, :, j * dilation:j * dilation + length] for j in range(k)], dim=2)
    y = torch.baddbmm(conv.bias.reshape(members, out_channels, 1), weight.reshape(members, out_channels, -1),
                      columns.reshape(members, in_channels * k, length))
    return y.reshape(1, members * out_channels, length)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 dropout: float, groups: int = 1) -> None:
        super().__init__()
        self.conv1 = CausalConv1d(in_channels, out_channels, kernel_size, dilation, groups)
        self.conv2 = CausalConv1d(out_channels, out_channels, kernel_size, dilation, groups)
        self.dropout = nn.Dropout(dropout)
        self.skip = (nn.Conv1d(in_channels, out_channels, 1, groups=groups) if in_channels != out_channels
                     else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(torch.relu(self.conv1(x)))
        y = self.dropout(torch.relu(self.conv2(y)))
        return torch.relu(y + self.skip(x))

    def forward_one(self, x: torch.Tensor, members: int) -> torch.Tensor:
        """``forward`` for one sequence without autograd or dropout (scoring), via ``member_conv``."""
        y = torch.relu(member_conv(self.conv1, x, members))
        y = torch.relu(member_conv(self.conv2, y, members))
        skip = x if isinstance(self.skip, nn.Identity) else member_conv(self.skip, x, members)
        return torch.relu(y + skip)


class GroupedLinear(nn.Module):
    """``members`` independent linear layers applied at once: ``(B, K, in) -> (B, K, out)``."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / in_features ** 0.5  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bki,kio->bko", x, self.weight) + self.bias


class TCN(nn.Module):
    """An ensemble of ``config.members`` TCNs of one shape, computed together: their convolutions are
    grouped (one group per member) and their heads are ``GroupedLinear``, so the members share no
    weights but one tensor pass trains or scores them all - on a small CPU the per-operation
    overhead, not the arithmetic, dominates, and five members cost little more than one."""

    def __init__(self, config: TCNConfig) -> None:
        super().__init__()
        self.config = config
        k = config.members
        blocks: list[nn.Module] = []
        channels = config.input_channels
        for dilation in config.dilations:
            blocks.append(ResidualBlock(k * channels, k * config.channels, config.kernel_size, dilation,
                                        config.dropout, groups=k))
            channels = config.channels
        self.blocks = nn.Sequential(*blocks)
        self.hidden = GroupedLinear(k, config.channels + config.horizon * config.future_features,
                                    config.head_hidden)
        self.out = GroupedLinear(k, config.head_hidden, config.horizon)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def encode(self, sequences: torch.Tensor) -> torch.Tensor:
        """``sequences (S, C, L)`` -> every day's encoding by every member ``(S, L, K, channels)``:
        causal, so day ``i``'s depends on days ``i - receptive_field + 1 .. i`` only."""
        k = self.config.members
        if sequences.shape[0] == 1 and not self.training and not torch.is_grad_enabled():
            encoded = sequences.repeat(1, k, 1)
            for block in self.blocks:
                encoded = block.forward_one(encoded, k)
        else:
            encoded = self.blocks(sequences.repeat(1, k, 1))  # (S, K * channels, L)
        return encoded.transpose(1, 2).reshape(sequences.shape[0], sequences.shape[2], k, self.config.channels)

    def head(self, encoded: torch.Tensor, future: torch.Tensor, naive: torch.Tensor) -> torch.Tensor:
        """``encoded (B, K, channels)`` of the origins, ``future (B, H, F)``, ``naive (B, H)`` -> each
        member's scaled forecast ``(B, K, H)``."""
        flat = future.flatten(start_dim=1).unsqueeze(1).expand(-1, self.config.members, -1)
        out = self.out(torch.relu(self.hidden(torch.cat([encoded, flat], dim=2))))
        return naive.unsqueeze(1) + out if self.config.seasonal_skip else out

    def forward_members(self, sequence: torch.Tensor, origins: torch.Tensor, future: torch.Tensor,
                        naive: torch.Tensor) -> torch.Tensor:
        """``sequence (C, N)``, ``origins (B,)`` indices into it -> each member's forecast ``(B, K, H)``."""
        return self.head(self.encode(sequence.unsqueeze(0))[0][origins], future, naive)

    def forward(self, sequence: torch.Tensor, origins: torch.Tensor, future: torch.Tensor,
                naive: torch.Tensor) -> torch.Tensor:
        """The ensemble's forecast ``(B, H)``: the mean of its members' (in the scaled log space)."""
        return self.forward_members(sequence, origins, future, naive).mean(dim=1)
