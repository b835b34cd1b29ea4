"""The same mistake raises the same error in both backends (``deepvision.checks``, Kornia style).

Each case feeds both implementations of a block the same wrong input (in each backend's layout)
or the same wrong argument, and checks: the same exception type, the same problem statement word
for word, and a message naming the expected and the received shape in that backend's layout.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepvision import checks
from deepvision.backend import PYTORCH, TENSORFLOW
from deepvision.registry import build_from_neutral_config

pytest.importorskip("tensorflow")
pytest.importorskip("torch")


def _channels_first(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[-1], *shape[1:-1]) if len(shape) == 4 else shape


def _call_errors(block: str, config: dict, shape: tuple[int, ...]) -> dict[str, Exception]:
    """Call both backends' ``block`` on zeros of ``shape`` (channels-last; channels-first for PyTorch)."""
    import torch

    errors = {}
    for backend in (TENSORFLOW, PYTORCH):
        layer = build_from_neutral_config(block, config, backend)
        x = np.zeros(shape, np.float32) if backend == TENSORFLOW else torch.zeros(_channels_first(shape))
        with pytest.raises(checks.InputShapeError) as info:
            layer(x)
        if backend == TENSORFLOW:
            assert not layer.built, "a rejected input must not build weights of the wrong shape"
        errors[backend] = info.value
    return errors


# (block, neutral config, wrong channels-last input, words the problem must contain)
CALL_CASES = [
    ("MBConv", {"input_filters": 8, "output_filters": 8, "expand_ratio": 4}, (2, 9, 11, 4), "expected 8 input channels, got 4"),
    ("MBConv", {"input_filters": 8, "output_filters": 8}, (9, 11, 8), "expected a 4D batch of images, got a 3D input"),
    ("FusedMBConv", {"input_filters": 8, "output_filters": 16, "strides": 2}, (2, 9, 11, 3), "expected 8 input channels"),
    ("PreActBottleneck", {"input_filters": 16, "filters": 4}, (2, 9, 11, 8), "expected 16 input channels, got 8"),
    ("PreActBasicBlock", {"input_filters": 8, "filters": 8}, (2, 1, 9, 11, 8), "got a 5D input"),
    ("SqueezeExcitation", {"filters": 8, "bottleneck_filters": 2}, (2, 5, 5, 6), "expected 8 input channels, got 6"),
    ("PatchingAndEmbedding", {"project_dim": 8, "patch_size": 4, "input_shape": [16, 16, 3]}, (2, 16, 16, 1),
     "expected 3 input channels, got 1"),
    ("PatchingAndEmbedding", {"project_dim": 8, "patch_size": 4, "input_shape": [16, 16, 3]}, (2, 3, 16, 3),
     "images of 3x16 are smaller than one 4x4 patch"),
    ("PatchingAndEmbedding", {"project_dim": 8, "patch_size": 4, "input_shape": [16, 16, 3]}, (2, 20, 16, 3),
     "made for a 4x4 patch grid but got images of 20x16"),
    ("PatchingAndEmbedding", {"project_dim": 8, "patch_size": 4, "input_shape": [16, 16, 3], "dynamic_img_size": True},
     (2, 18, 16, 3), "image size 18x16 is not divisible by the patch size 4"),
    ("MultiHeadSelfAttention", {"project_dim": 16, "num_heads": 4}, (2, 9, 12), "expected 16 features per token, got 12"),
    ("MultiHeadSelfAttention", {"project_dim": 16, "num_heads": 4}, (9, 16), "expected a 3D batch of tokens, got a 2D"),
    ("TransformerEncoder", {"project_dim": 16, "mlp_dim": 32, "num_heads": 4}, (2, 9, 8), "expected 16 features per token"),
    ("MLP", {"hidden_dim": 8, "output_dim": 6, "input_dim": 4}, (2, 3, 6), "expected 4 features per token, got 6: set input_dim"),
]


@pytest.mark.parametrize("block, config, shape, problem", CALL_CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[2]))}" for c in CALL_CASES])
def test_a_wrong_input_raises_the_same_error_in_both_backends(block, config, shape, problem):
    errors = _call_errors(block, config, shape)
    tf_message, pt_message = str(errors[TENSORFLOW]), str(errors[PYTORCH])
    assert checks.problem_of(tf_message) == checks.problem_of(pt_message)
    assert problem in tf_message
    # Each names the received shape in its own layout, and the expected one.
    assert str(shape) in tf_message, tf_message
    assert str(_channels_first(shape)) in pt_message and "expected shape (B, " in pt_message, pt_message


def _construction_errors(block: str, config: dict) -> dict[str, Exception]:
    errors = {}
    for backend in (TENSORFLOW, PYTORCH):
        with pytest.raises(ValueError) as info:
            build_from_neutral_config(block, config, backend)
        errors[backend] = info.value
    return errors


ARGUMENT_CASES = [
    ("StochasticDepth", {"drop_prob": 1.5}, "drop_prob must be in [0, 1], got 1.5"),
    ("MultiHeadSelfAttention", {"project_dim": 10, "num_heads": 3}, "project_dim=10 is not divisible by num_heads=3"),
    ("PreActBottleneck", {"input_filters": 16, "filters": 4, "kernel_size": 4}, "kernel_size must be odd"),
    ("PreActBasicBlock", {"input_filters": 8, "filters": 16}, "pass conv_shortcut=True"),
    ("PatchingAndEmbedding", {"project_dim": 8, "patch_size": 4, "input_shape": [None, 16, 3]}, "fixed image size"),
    ("MLP", {"hidden_dim": 8, "output_dim": 6, "activation": "mish"}, "Unknown activation 'mish'"),
]


@pytest.mark.parametrize("block, config, problem", ARGUMENT_CASES, ids=[c[0] for c in ARGUMENT_CASES])
def test_a_wrong_argument_raises_the_same_error_in_both_backends(block, config, problem):
    errors = _construction_errors(block, config)
    assert type(errors[TENSORFLOW]) is type(errors[PYTORCH])
    assert str(errors[TENSORFLOW]) == str(errors[PYTORCH])
    assert problem in str(errors[TENSORFLOW])


def test_symbolic_sizes_are_not_checked():
    import keras

    layer = build_from_neutral_config("MBConv", {"input_filters": 8, "output_filters": 8}, TENSORFLOW)
    out = layer(keras.KerasTensor((None, None, None, 8)))
    assert tuple(out.shape) == (None, None, None, 8)
