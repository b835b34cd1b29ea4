"""PyTorch NeRF MLP (mirrors ``nerf_tf.py``); see the family docstring for the network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepvision.models.base_pt import DeepVisionModulePT
from deepvision.models.nerf import check_arguments, encoded_width


class PositionalEncodingPT(nn.Module):
    """``(N, 6) -> (N, 3 + 6L)``: columns ``offset..offset+2`` encoded as ``[x, sin(2^k x), cos(2^k x)]``."""

    def __init__(self, frequencies: int, offset: int) -> None:
        super().__init__()
        self.frequencies = int(frequencies)
        self.offset = int(offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, self.offset:self.offset + 3]
        parts = [v]
        for k in range(self.frequencies):
            scaled = v * float(2.0 ** k)
            parts += [torch.sin(scaled), torch.cos(scaled)]
        return torch.cat(parts, dim=-1)


class NeRFPT(DeepVisionModulePT):
    """The NeRF MLP: ``(N, 6)`` points and unit view directions -> ``(N, 4)`` rgb in [0, 1] and density >= 0.

    Same arguments as ``NeRFTF`` (see there). Train it through :class:`deepvision.nerf.NeRFTrainer`,
    whose ``training_step`` renders ray batches.
    """

    def __init__(
        self,
        position_frequencies: int = 10,
        direction_frequencies: int = 4,
        depth: int = 8,
        width: int = 256,
        skips: Sequence[int] = (4,),
        branch_width: int = 128,
        density_activation: str = "relu",
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        check_arguments(position_frequencies, direction_frequencies, depth, width, skips, branch_width,
                        density_activation)
        self._skips = tuple(int(s) for s in skips)
        self._density_activation = F.relu if density_activation == "relu" else F.softplus
        pos = encoded_width(position_frequencies)
        self.encode_position = PositionalEncodingPT(position_frequencies, 0)
        self.encode_direction = PositionalEncodingPT(direction_frequencies, 3)
        widths = [pos] + [width] * (depth - 1)
        self.trunk = nn.ModuleList(
            nn.Linear(w + (pos if i in self._skips else 0), width) for i, w in enumerate(widths)
        )
        self.density = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.view = nn.Linear(width + encoded_width(direction_frequencies), branch_width)
        self.rgb = nn.Linear(branch_width, 3)
        self._store_config(arguments)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        position, direction = self.encode_position(x), self.encode_direction(x)
        h = position
        for i, layer in enumerate(self.trunk):
            if i in self._skips:
                h = torch.cat([h, position], dim=-1)
            h = F.relu(layer(h))
        h_view = F.relu(self.view(torch.cat([self.feature(h), direction], dim=-1)))
        rgb = torch.sigmoid(self.rgb(h_view))
        return torch.cat([rgb, self._density_activation(self.density(h))], dim=-1).float()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise TypeError(
            "A NeRF model is trained by rendering rays: wrap it, e.g. "
            "pl.Trainer(...).fit(deepvision.nerf.NeRFTrainer(model), ray_loader)."
        )
