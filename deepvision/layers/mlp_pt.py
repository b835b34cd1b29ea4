"""PyTorch implementation of ``MLP`` (mirrors ``mlp_tf.py``)."""

from __future__ import annotations

import torch
from torch import nn

from deepvision import checks
from deepvision.layers.core_pt import Activation, activation_name


class MLPPT(nn.Module):
    """(..., in) -> (..., out): fc1, activation, dropout, fc2, dropout."""

    def __init__(self, hidden_dim: int, output_dim: int, activation: str = "gelu", dropout: float = 0.0,
                 input_dim: int | None = None) -> None:
        super().__init__()
        self.hidden_dim = int(hidden_dim)
        self.output_dim = int(output_dim)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.input_dim = None if input_dim is None else int(input_dim)
        self.fc1 = nn.Linear(self.input_dim or self.output_dim, self.hidden_dim, bias=True)
        self.act = Activation(self.activation)
        self.drop = nn.Dropout(self.dropout)
        self.fc2 = nn.Linear(self.hidden_dim, self.output_dim, bias=True)

    def check_input(self, shape) -> None:
        """Raise ``deepvision.checks.InputShapeError`` unless ``shape`` is ``(..., input_dim)``."""
        checks.check_tokens("MLP", shape, dim=self.input_dim or self.output_dim, rank=None, hint="set input_dim")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x.shape)
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))

    def get_config(self) -> dict:
        return {
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
            "activation": self.activation,
            "dropout": self.dropout,
            "input_dim": self.input_dim,
        }
