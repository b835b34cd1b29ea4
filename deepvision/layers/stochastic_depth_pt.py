"""PyTorch implementation of ``StochasticDepth`` (mirrors ``stochastic_depth_tf.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision.layers.stochastic_depth import check_arguments


class StochasticDepthPT(nn.Module):
    """Per-sample drop path on (N, ...) input; identity in eval mode or at ``drop_prob == 0``."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = check_arguments(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        if keep == 0.0:
            return torch.zeros_like(x)
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = torch.empty(shape, dtype=torch.float32, device=x.device).bernoulli_(keep)
        return x * (mask / keep).to(x.dtype)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"

    def get_config(self) -> dict:
        return {"drop_prob": self.drop_prob}
