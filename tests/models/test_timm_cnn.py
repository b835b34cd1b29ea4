"""timm convnext_* and tf_efficientnetv2_* <-> deepvision, against real timm checkpoints (no timm needed).

Fixtures (``tests/fixtures/timm/``, written by timm 1.0.31, see the README there): a small ConvNeXt
(depths 1, 1, 2, 1; dims 24..192; 10 classes; layer-scale gammas U(0.2, 1.0), LayerNorms randomised)
at 96x128, and the full tf_efficientnetv2_b0 (calibrated BatchNorm statistics) at 193x227 (odd: "same"
padding is asymmetric there), each with timm's logits, pre-logits, forward_features and every stage
of forward_intermediates. ``manifest-wave2.json`` lists every full-size variant's keys and shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import slots_by_name
from deepvision.importers import timm_cnn
from deepvision.importers.timm import TimmFormatError, export_timm, import_timm
from deepvision.portable import load_portable

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "timm"
CASES = {
    "convnext": ("convnext_tiny-small-cls10", "ConvNeXt", 4),
    "efficientnetv2": ("tf_efficientnetv2_b0", "EfficientNetV2B0", 5),
}
TOLERANCE = 1e-4
ANY_SIZE = {"input_shape": [None, None, 3]}


def _io(stem: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(FIXTURES / f"{stem}.io.safetensors"))


def _nhwc(array: np.ndarray) -> np.ndarray:
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


@pytest.fixture(scope="module", params=list(CASES))
def imported(request, tmp_path_factory):
    stem, architecture, stages = CASES[request.param]
    path = import_timm(FIXTURES / f"{stem}.safetensors", tmp_path_factory.mktemp("timm") / "canonical.safetensors")
    return request.param, stem, architecture, stages, path


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_logits_pre_logits_features_and_stages_match_timm(imported, backend):
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    family, stem, architecture, stages, path = imported
    io = _io(stem)
    x = _nhwc(io["input_nchw"])
    model = load_portable(path, backend, config_overrides=ANY_SIZE)
    assert deepvision.registry.architecture_of(model).name == architecture
    assert testing.max_relative_error(testing.forward(model, x), io["logits"]) <= TOLERANCE
    features = model.forward_features(testing.to_framework(x, backend))
    assert testing.max_relative_error(testing.from_framework(features, backend), _nhwc(io["features"])) <= TOLERANCE
    pre_logits = _pre_logits(model, backend, "head_norm" if family == "convnext" else "pool", x)
    assert testing.max_relative_error(pre_logits, io["pre_logits"]) <= TOLERANCE
    backbone = load_portable(path, backend, config_overrides={**ANY_SIZE, "features_only": True})
    levels = testing.forward(backbone, x)
    assert len(levels) == stages
    for i, level in enumerate(levels):
        assert testing.max_relative_error(level, _nhwc(io[f"stage{i}"])) <= TOLERANCE, f"stage{i}"


def _pre_logits(model, backend: str, layer: str, x: np.ndarray) -> np.ndarray:
    """The classifier's own activation entering the head (timm's pre_logits), read inside the model."""
    module = getattr(model, layer)
    if backend == "tensorflow":
        import keras

        return np.asarray(keras.Model(model.input, module.output)(x, training=False))
    import torch

    seen = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().numpy()))
    try:
        with torch.no_grad():
            model.eval()(testing.to_framework(x, backend))
    finally:
        handle.remove()
    return seen[0]


def test_headless_models_load_the_classifier_file_reporting_the_head(imported):
    pytest.importorskip("torch")
    *_, path = imported
    headless, report = load_portable(path, "pytorch", strict=False,
                                     config_overrides={"include_top": False, "pooling": "avg"})
    assert report.unexpected == ["head.kernel", "head.bias"] and not report.missing


def test_variant_config_and_preprocessing_are_inferred(imported):
    import interchange

    family, stem, architecture, _, path = imported
    with interchange.open_checkpoint(path) as ckpt:
        meta, config = ckpt.metadata, ckpt.config
    assert meta["architecture"] == architecture and meta["source_backend"] == "timm"
    assert config["include_preprocessing"] is False  # timm models take normalised inputs
    pre = meta["preprocessing"]
    assert pre["value_range"] == [0, 1] and pre["mean"] == [0.485, 0.456, 0.406]
    if family == "convnext":
        assert config["depths"] == [1, 1, 2, 1] and config["projection_dims"] == [24, 48, 96, 192]
        assert config["classes"] == 10 and pre["crop_pct"] == 0.95  # timm's convnext_tiny default cfg
        name, kwargs = timm_cnn.timm_model_args(architecture, config)
        assert (name, kwargs) == ("convnext_tiny", {"depths": [1, 1, 2, 1], "dims": [24, 48, 96, 192],
                                                    "num_classes": 10})
    else:
        assert config["min_filter_ratio"] is None and pre["input_size"] == [192, 192, 3]
        assert timm_cnn.timm_model_args(architecture, config) == ("tf_efficientnetv2_b0", {"num_classes": 1000})


def test_import_then_export_is_bit_exact(imported, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    family, stem, _, _, path = imported
    original = load_file(str(FIXTURES / f"{stem}.safetensors"))
    out = export_timm(path, tmp_path / "timm.safetensors")
    exported = load_file(str(out))
    assert exported.keys() == original.keys()
    for key, value in original.items():
        if key.endswith("num_batches_tracked"):
            # A counter, not state deepvision keeps: written as 0 (timm loads it strictly either way).
            assert exported[key].dtype == np.int64 and exported[key].shape == ()
            continue
        assert exported[key].dtype == value.dtype
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    with safe_open(str(out), "np") as handle:
        meta = handle.metadata()
    with safe_open(str(FIXTURES / f"{stem}.safetensors"), "np") as handle:
        source = handle.metadata()
    assert meta["timm_architecture"] == source["timm_architecture"]
    assert json.loads(meta["timm_kwargs"]) == {"num_classes": 1000, **json.loads(source["timm_kwargs"])}


def test_pth_sources_with_wrappers_import_the_same(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.numpy import load_file

    import interchange

    stem = CASES["convnext"][0]
    state = {f"module.{k}": torch.from_numpy(v) for k, v in load_file(str(FIXTURES / f"{stem}.safetensors")).items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "train.pth")
    a = import_timm(FIXTURES / f"{stem}.safetensors", tmp_path / "a.safetensors")
    b = import_timm(tmp_path / "train.pth", tmp_path / "b.safetensors", timm_architecture="convnext_tiny")
    with interchange.open_checkpoint(a) as ca, interchange.open_checkpoint(b) as cb:
        assert list(ca.names) == list(cb.names)
        for name in ca.names:
            np.testing.assert_array_equal(ca.get(name), cb.get(name), err_msg=name)


def _manifest() -> dict:
    return json.loads((FIXTURES / "manifest-wave2.json").read_text())


@pytest.mark.parametrize("timm_name", list(_manifest()))
def test_exported_keys_and_shapes_equal_timm_for_every_full_size_variant(timm_name):
    torch = pytest.importorskip("torch")
    from deepvision.importers import timm_convnext, timm_efficientnetv2

    expected = _manifest()[timm_name]
    family = timm_convnext if timm_name.startswith("convnext") else timm_efficientnetv2
    architecture = family.TIMM_NAMES[timm_name]
    config = {"classes": 1000, "include_preprocessing": False}
    if family is timm_efficientnetv2:
        config["min_filter_ratio"] = None
    with torch.device("meta"):  # shapes only
        model = deepvision.models.create_model(architecture, backend="pytorch", **config)
    shapes = {n: s.shape for n, s in slots_by_name(model).items()}
    neutral = deepvision.registry.config_of(model)
    spec = timm_cnn.timm_state_dict_spec(architecture, neutral, shapes)
    assert spec == {k: tuple(v) for k, v in expected["tensors"].items()}
    assert timm_cnn.timm_model_args(architecture, neutral) == (timm_name, {"num_classes": 1000})
    assert model.count_params() == expected["num_params_with_bn_statistics"]


def test_files_that_are_not_these_networks_are_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    stem = CASES["convnext"][0]
    state = load_file(str(FIXTURES / f"{stem}.safetensors"))
    state["stages.0.blocks.0.extra"] = np.zeros(3, np.float32)
    save_file(state, str(tmp_path / "odd.safetensors"))
    with pytest.raises(TimmFormatError, match="unexpected"):
        import_timm(tmp_path / "odd.safetensors", tmp_path / "out.safetensors")
    state.pop("stages.0.blocks.0.extra")
    state["stages.0.blocks.0.conv_dw.weight"] = np.zeros((24, 1, 5, 5), np.float32)
    save_file(state, str(tmp_path / "k5.safetensors"))
    with pytest.raises(TimmFormatError, match="7x7"):
        import_timm(tmp_path / "k5.safetensors", tmp_path / "out.safetensors")
