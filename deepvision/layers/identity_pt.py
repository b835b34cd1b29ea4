"""PyTorch implementation of ``Identity`` (mirrors ``identity_tf.py``)."""

from __future__ import annotations

from torch import nn


class IdentityPT(nn.Module):
    """Returns its input unchanged; any shape."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x):
        return x

    def get_config(self) -> dict:
        return {}
