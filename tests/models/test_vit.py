"""Vision Transformer family: timm's structure, pooling modes, the feature API, training mode,
resampling on load and cross-backend parity of the options.

Counts, canonical names, file formats and small-input parity of every variant are the model
contract's (test_model_contract.py); timm-specific proofs (fixtures, resampling, export) are in
``test_vit_timm.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import count_params, slots_by_name
from deepvision.models.classification.vit import VARIANTS
from deepvision.portable import load_portable, save_portable, to_backend
from deepvision.registry import build_from_neutral_config, config_of, get_architecture

pytest.importorskip("torch")
pytest.importorskip("tensorflow")


SMALL = {"patch_size": 8, "project_dim": 32, "num_layers": 2, "num_heads": 4, "mlp_dim": 64,
         "input_shape": [24, 40, 3], "classes": 7}


def _meta_model(name: str, **kwargs):
    import torch

    with torch.device("meta"):  # shapes only
        return deepvision.models.create_model(name, backend="pytorch", **kwargs)


def _inputs(shape, batch=2, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


def _pair(config, seed=0):
    tf_model = build_from_neutral_config("ViT", config, "tensorflow")
    testing.randomize_weights(tf_model, seed)
    return tf_model, to_backend(tf_model, "pytorch")


def test_registry_lists_the_generic_architecture_first():
    assert deepvision.models.list_models("ViT*") == ["ViT", *VARIANTS]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_timm_architecture(name):
    """Full size on the meta device: timm's depth, heads, epsilons, GELU and patch embedding; all of
    a ViT's parameters are torch parameters (no buffers)."""
    model = _meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == get_architecture(name).parameters
    fixed = get_architecture(name).fixed
    blocks = model.blocks
    assert len(blocks) == fixed["num_layers"]
    block = blocks[0]
    assert block.attn.num_heads == fixed["num_heads"] and block.norm1.eps == 1e-6 and model.norm.eps == 1e-6
    assert block.mlp.act.activation == "gelu"  # exact erf GELU, as timm
    assert model.patch_embed.projection.kernel_size == (fixed["patch_size"],) * 2
    assert model.patch_embed.projection.stride == (fixed["patch_size"],) * 2


def test_seed_model_examples_build():
    """The seed README's ViTB16 lines, at a small class count, in both backends (structure only for speed)."""
    model = _meta_model("ViTB16", include_top=True, classes=10, input_shape=(3, 224, 224))
    assert model.head.out_features == 10
    assert config_of(model)["input_shape"] == [224, 224, 3]


@pytest.mark.parametrize("pooling", ["token", "avg", "max"])
def test_pooling_modes_agree_across_backends(pooling, tmp_path):
    config = {**SMALL, "pooling": pooling}
    tf_model, pt_model = _pair(config)
    x = _inputs(config["input_shape"])
    logits = testing.forward(tf_model, x)
    assert logits.shape == (2, SMALL["classes"])
    assert testing.max_relative_error(testing.forward(pt_model, x), logits) <= 1e-5
    # Same weights, another pooling, different logits: the option is really used.
    other = build_from_neutral_config("ViT", {**config, "pooling": "token" if pooling != "token" else "avg"},
                                      "tensorflow")
    load_portable(save_portable(tf_model, tmp_path / "m.safetensors"), model=other)
    assert testing.max_abs_error(testing.forward(other, x), logits) > 1e-3


def test_pooling_definitions():
    """token: class token after the final norm; avg/max: patch tokens pooled, then the norm (timm's fc_norm)."""
    import torch

    x = _inputs(SMALL["input_shape"])
    for pooling in ("token", "avg", "max"):
        _, pt = _pair({**SMALL, "pooling": pooling})
        pt.eval()
        with torch.no_grad():
            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
            tokens = pt.blocks[1](pt.blocks[0](pt.patch_embed(xt)))
            if pooling == "token":
                pooled = pt.norm(tokens)[:, 0]
            else:
                reduce = tokens[:, 1:].mean(1) if pooling == "avg" else tokens[:, 1:].amax(1)
                pooled = pt.norm(reduce)
            np.testing.assert_allclose(pt.forward_head(pt.forward_features(xt), pre_logits=True).numpy(),
                                       pooled.numpy(), rtol=0, atol=1e-6)
            np.testing.assert_allclose(pt(xt).numpy(), pt.head(pooled).numpy(), rtol=0, atol=1e-5)


def test_headless_outputs_and_feature_api():
    import torch

    shape = SMALL["input_shape"]
    grid = (shape[0] // 8) * (shape[1] // 8)
    x = _inputs(shape)
    for pooling, expected in ((None, (2, 1 + grid, 32)), ("token", (2, 32)), ("avg", (2, 32))):
        tf_model, pt_model = _pair({**SMALL, "include_top": False, "pooling": pooling})
        assert "head.kernel" not in slots_by_name(pt_model)
        a, b = testing.forward(tf_model, x), testing.forward(pt_model, x)
        assert a.shape == b.shape == expected
        assert testing.max_relative_error(b, a) <= 1e-5
    # forward_features: every token after the final norm, in both backends; pre-logits = its class token.
    tf_model, pt_model = _pair(SMALL)
    tf_tokens = np.asarray(tf_model.forward_features(x))
    pt_model.eval()
    with torch.no_grad():
        pt_tokens = pt_model.forward_features(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        pre = pt_model.forward_head(pt_tokens, pre_logits=True).numpy()
    assert tf_tokens.shape == (2, 1 + grid, 32)
    assert testing.max_relative_error(pt_tokens.numpy(), tf_tokens) <= 1e-5
    np.testing.assert_allclose(np.asarray(tf_model.forward_head(tf_tokens, pre_logits=True)), tf_tokens[:, 0])
    np.testing.assert_allclose(pre, pt_tokens.numpy()[:, 0])


def test_features_only_returns_every_block_on_the_patch_grid():
    tf_model, pt_model = _pair({**SMALL, "features_only": True, "out_indices": [0, 1, 2], "num_layers": 3})
    x = _inputs(SMALL["input_shape"])
    tf_out = tf_model(x)
    import torch

    pt_model.eval()
    with torch.no_grad():
        pt_out = pt_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    assert len(tf_out) == len(pt_out) == 3
    for a, b in zip(tf_out, pt_out):
        assert tuple(a.shape) == (2, 3, 5, 32) and tuple(b.shape) == (2, 32, 3, 5)
        assert testing.max_relative_error(b.numpy().transpose(0, 2, 3, 1), np.asarray(a)) <= 1e-5
    # Level i is block i's output tokens (no final norm, class token dropped), row-major on the grid.
    tokens = tf_model.patch_embed(x)
    for block, level in zip(tf_model.blocks, tf_out):
        tokens = block(tokens)
        np.testing.assert_allclose(np.asarray(level).reshape(2, 15, 32), np.asarray(tokens)[:, 1:], atol=1e-6)


def test_training_mode_parity_and_gradients():
    """Dropout and drop path 0: training mode is deterministic; gradients agree per tensor."""
    from tests.blocks.harness import gradient_errors

    tf_model, pt_model = _pair(SMALL)
    x = _inputs(SMALL["input_shape"])
    assert testing.max_relative_error(testing.forward(pt_model, x, training=True),
                                      testing.forward(tf_model, x, training=True)) <= 1e-5
    upstream = np.random.default_rng(4).normal(size=(2, SMALL["classes"])).astype(np.float32)
    _, tf_grads = testing.gradients(tf_model, x, upstream)
    _, pt_grads = testing.gradients(pt_model, x, upstream)
    assert set(tf_grads) == set(pt_grads) == set(slots_by_name(tf_model))
    errors = gradient_errors(pt_grads, tf_grads)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-4, (worst, errors[worst])


def test_stochastic_depth_and_dropout_are_off_in_inference():
    config = {**SMALL, "drop_path_rate": 0.3, "mlp_dropout": 0.2, "attention_dropout": 0.2}
    tf_model, pt_model = _pair(config)
    assert [b.drop_path_rate for b in pt_model.blocks] == [0.0, 0.3]  # linear, as timm
    x = _inputs(SMALL["input_shape"])
    a, b = testing.forward(tf_model, x), testing.forward(pt_model, x)
    assert testing.max_relative_error(b, a) <= 1e-5
    assert np.array_equal(testing.forward(pt_model, x), b)
    assert not np.allclose(testing.forward(pt_model, x, training=True), b)


def test_other_image_size_resamples_on_load(tmp_path, caplog):
    """A checkpoint saved at one size loads into a model of another: position embedding resampled."""
    import logging

    tf_model, _ = _pair(SMALL)
    path = save_portable(tf_model, tmp_path / "small.safetensors")
    with caplog.at_level(logging.INFO, logger="deepvision"):
        bigger = load_portable(path, "pytorch", config_overrides={"input_shape": [48, 32, 3]})
    assert any("resampled patch_embed.position_embedding from a 3x5 to a 6x4 patch grid" in r.message
               for r in caplog.records)
    assert tuple(bigger.patch_embed.position_embedding.shape) == (1, 1 + 6 * 4, 32)
    again = load_portable(path, "tensorflow", config_overrides={"input_shape": [48, 32, 3]})
    a, b = testing.canonical_state(bigger), testing.canonical_state(again)
    for name in a:  # the same numpy resampler for both backends: bit-identical
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    x = _inputs([48, 32, 3])
    assert testing.max_relative_error(testing.forward(bigger, x), testing.forward(again, x)) <= 1e-5


def test_parameters_do_not_depend_on_the_backend_at_any_size():
    for shape in ([32, 32, 3], [24, 40, 1]):
        tf_model, pt_model = _pair({**SMALL, "input_shape": shape})
        assert count_params(tf_model) == count_params(pt_model)
        assert config_of(tf_model) == config_of(pt_model)
