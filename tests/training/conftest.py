"""Shared pieces of the training tests: small models, a small slice of the digits, tolerances."""

from __future__ import annotations

import numpy as np
import pytest

# The smallest registered CNN with BatchNorm (the hand-off proofs include BatchNorm statistics).
CNN = "ResNet18V2"
# A tiny ViT (no BatchNorm): DDP must reproduce single-process weights exactly, and per-process
# BatchNorm statistics would differ by design.
TINY_VIT = dict(patch_size=4, project_dim=32, num_layers=2, num_heads=2, mlp_dim=64)


def tiny_vit_config(size: int = 16, classes: int = 10) -> dict:
    """Backend-neutral config of the generic ``ViT`` for tests (channels-last input_shape)."""
    return dict(TINY_VIT, include_top=True, classes=classes, input_shape=[size, size, 3])


@pytest.fixture(scope="session")
def digits16() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The digits at 16x16 (channels-last), fixed split."""
    from deepvision.training import load_digits_images

    return load_digits_images(16)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    from deepvision.testing import max_relative_error

    return max_relative_error(a, b)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run PyTorch single-threaded in these tests.

    ``make test`` runs two pytest workers on two cores; with two OpenMP threads each, spinning
    threads that wait for a descheduled sibling made the CNN steps here 5-10x slower (measured).
    """
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
