"""The core path resolved once: registry.resolve/build, portable.checkpoint_metadata, io_utils.read_weight_file,
and loaded models in inference mode."""

from __future__ import annotations

import numpy as np
import pytest

import interchange
from deepvision import testing
from deepvision.io_utils import WeightFileError, read_state_dict, read_weight_file
from deepvision.portable import checkpoint_metadata, load_portable, save_portable, to_backend
from deepvision.registry import (
    Resolved,
    build,
    build_from_neutral_config,
    find,
    get_architecture,
    resolve,
)
from tests.foundation import composite

X = np.random.default_rng(5).normal(size=(2, 17, 23, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tf_model():
    model = build(get_architecture("TestComposite"), "tensorflow")  # build takes an Architecture
    testing.randomize_weights(model, seed=7)
    return model


def _nchw(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def test_loaded_and_converted_pytorch_models_come_in_inference_mode(tf_model, tmp_path):
    import torch

    fresh = build("TestComposite", "pytorch")
    assert fresh.training  # a freshly built module keeps PyTorch's default training mode
    path = save_portable(tf_model, tmp_path / "m.safetensors")
    expected = np.asarray(tf_model(X, training=False))
    for model in (load_portable(path, backend="pytorch"), to_backend(tf_model, "pytorch")):
        assert model.training is False and not any(m.training for m in model.modules())
        stats = model.norm.running_mean.clone()
        with torch.no_grad():
            logits = model(_nchw(X)).numpy()  # no eval() here: the model must already be in inference mode
        assert testing.max_relative_error(logits, expected) <= 1e-5
        assert torch.equal(model.norm.running_mean, stats)  # BatchNorm statistics untouched by the call


def test_a_model_passed_in_keeps_its_mode(tf_model, tmp_path):
    path = save_portable(tf_model, tmp_path / "m.safetensors")
    target = build("TestComposite", "pytorch")
    assert load_portable(path, model=target) is target and target.training


def test_resolve_reads_the_config_once(tf_model, monkeypatch, tmp_path):
    pt_model = to_backend(tf_model, "pytorch")
    resolved = resolve(pt_model)
    assert isinstance(resolved, Resolved) and resolved.architecture.name == "TestComposite"
    assert resolved.backend == "pytorch" and resolved.config["input_shape"] == [17, 23, 3]  # channels-last
    calls = []
    original = type(pt_model).get_config
    monkeypatch.setattr(type(pt_model), "get_config", lambda self: calls.append(1) or original(self))
    save_portable(pt_model, tmp_path / "m.safetensors")
    assert len(calls) == 1  # save_portable resolves the model once and passes the result down


def test_build_from_neutral_config_keeps_the_variants_fixed_arguments():
    arch = get_architecture("ResNet50V2")
    fixed_key, fixed_value = next(iter(arch.fixed.items()))
    import torch

    with torch.device("meta"):
        model = build_from_neutral_config(arch, {"classes": 10, fixed_key: fixed_value}, "pytorch")
        assert resolve(model).architecture is arch and resolve(model).config["classes"] == 10
        with pytest.raises(TypeError, match="fixes"):  # a stored config contradicting the variant
            build_from_neutral_config(arch, {fixed_key: [1, 1, 1, 1]}, "pytorch")


def test_an_unregistered_module_loads_by_canonical_names(tf_model, tmp_path):
    class Mine(composite.CompositePT):  # not registered: loaded by canonical names alone
        pass

    assert find(Mine()) is None
    with pytest.raises(TypeError, match="not a registered"):
        resolve(Mine())
    path = save_portable(tf_model, tmp_path / "m.safetensors")
    model = load_portable(path, model=Mine())
    assert testing.max_relative_error(testing.forward(model, X), np.asarray(tf_model(X, training=False))) <= 1e-5


def test_checkpoint_metadata_is_the_same_for_every_source(tf_model, tmp_path):
    arch = get_architecture("TestComposite")
    config = {"classes": 5, "width": 8, "input_shape": [17, 23, 3]}
    saved = save_portable(tf_model, tmp_path / "m.safetensors")
    with interchange.open_checkpoint(saved) as ckpt:
        written = ckpt.metadata
    imported = checkpoint_metadata(arch, config=config, source_backend="timm", versions={"timm": "1.0", "torch": None})
    for meta in (written, imported):
        assert meta["preprocessing"]["input_size"] == [17, 23, 3]
        assert meta["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
        assert {"python", "numpy"} <= set(meta["framework_versions"])
        assert meta["schema"] == "TestComposite@1" and meta["library_version"]
    assert {"tensorflow", "keras"} <= set(written["framework_versions"])
    assert imported["framework_versions"]["timm"] == "1.0" and "torch" not in imported["framework_versions"]
    given = checkpoint_metadata(arch, config=config, source_backend="timm", preprocessing={"input_size": [9, 9, 3]},
                                dtype="float16", extra={"timm": {"file": "x"}})
    assert given["preprocessing"] == {"input_size": [9, 9, 3]} and given["dtype"] == "float16"
    assert given["timm"] == {"file": "x"}


def test_read_weight_file_unwraps_every_wrapper_the_same_way(tmp_path):
    import torch

    weights = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a.bias": torch.ones(2)}
    record = {"architecture": "TestComposite", "config": {"classes": 5}}
    files = {
        "plain.pt": weights,
        "lightning.ckpt": {"state_dict": weights, "deepvision": record, "hyper_parameters": {"classes": 5}},
        "timm_train.pth": {"model": {f"module.{k}": v for k, v in weights.items()}, "epoch": 3},
        "ema.bin": {"state_dict_ema": weights},
    }
    for name, payload in files.items():
        torch.save(payload, tmp_path / name)
        got = read_weight_file(tmp_path / name)
        assert sorted(got.tensors) == ["a.bias", "a.weight"], name
        np.testing.assert_array_equal(got.tensors["a.weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
    lightning = read_weight_file(tmp_path / "lightning.ckpt").metadata
    assert lightning == {"deepvision": record, "hyper_parameters": {"classes": 5}}


def test_read_state_dict_reads_safetensors_without_torch_including_bfloat16(tmp_path):
    import ml_dtypes
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.full((2, 2), 1.5, dtype=torch.bfloat16), "b": torch.ones(3)}, str(tmp_path / "m.safetensors"),
              metadata={"timm_architecture": "vit_tiny_patch16_224"})
    got = read_weight_file(tmp_path / "m.safetensors")
    assert got.tensors["w"].dtype == ml_dtypes.bfloat16 and float(got.tensors["w"][0, 0]) == 1.5
    assert got.tensors["b"].dtype == np.float32 and got.metadata["timm_architecture"] == "vit_tiny_patch16_224"
    from safetensors.numpy import save_file as save_numpy

    save_numpy({"x": np.zeros(2, np.float32)}, str(tmp_path / "n.safetensors"))
    assert set(read_state_dict(tmp_path / "n.safetensors")) == {"x"}


def test_read_weight_file_refuses_what_it_cannot_read_with_the_callers_error(tmp_path):
    import torch

    class ImporterError(ValueError):
        pass

    torch.save({"weights": object()}, tmp_path / "evil.pt")
    with pytest.raises(ImporterError, match="weights_only=True"):
        read_weight_file(tmp_path / "evil.pt", error=ImporterError)
    torch.save({"epoch": 3}, tmp_path / "none.pt")
    with pytest.raises(WeightFileError, match="not a state_dict of tensors"):
        read_state_dict(tmp_path / "none.pt")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(WeightFileError, match=r"\.safetensors"):
        read_state_dict(tmp_path / "w.npz")
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.pt")
