"""The model contract (shared/notes/model-contract.md), checked for every registered model variant."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import count_params, slots_by_name
from deepvision.parity import check_parity
from deepvision.portable import load_portable, save_portable, to_backend
from deepvision.registry import build_from_neutral_config, get_architecture
from deepvision.schema_gen import is_generic, schema_for

# The seed README's tables: include_top=True, classes=1000, every weight counted (Keras's count_params()).
SEED_PARAMETERS = {
    "EfficientNetV2B0": 7_200_312, "EfficientNetV2B1": 8_212_124, "EfficientNetV2B2": 10_178_374,
    "EfficientNetV2B3": 14_486_374, "EfficientNetV2S": 21_612_360, "EfficientNetV2M": 54_431_388,
    "EfficientNetV2L": 119_027_848,
    "ViTTiny16": 5_717_416, "ViTS16": 22_050_664, "ViTB16": 86_567_656, "ViTL16": 304_326_632,
    "ViTTiny32": 6_131_560, "ViTS32": 22_878_952, "ViTB32": 88_224_232, "ViTL32": 306_535_400,
    "ResNet18V2": 11_696_488, "ResNet34V2": 21_812_072, "ResNet50V2": 25_613_800,
    "ResNet101V2": 44_675_560, "ResNet152V2": 60_380_648,
}
MODELS = [name for name in deepvision.models.list_models() if get_architecture(name).family != "tests"]
VARIANTS = [name for name in MODELS if name in SEED_PARAMETERS]
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
# Variants of a family share one implementation class per backend: file formats and fit are checked
# on the first registered variant of each family, numbers and names on every variant.
REPRESENTATIVES = {next(n for n in MODELS if get_architecture(n).family == f)
                   for f in {get_architecture(n).family for n in MODELS}}


def _per_model(names):
    # One worker per model, and consecutive tests, so only one model pair is alive at a time.
    return [pytest.param(n, marks=pytest.mark.xdist_group(f"contract-{n}")) for n in names]


def test_every_seed_model_is_registered():
    assert sorted(SEED_PARAMETERS) == sorted(VARIANTS)


@pytest.mark.parametrize("name", [n for n in deepvision.registry.list_architectures()
                                  if get_architecture(n).family != "tests"])
def test_schema_file_is_up_to_date(name):
    schema = schema_for(name)
    path = SCHEMAS / f"{schema.architecture}@{schema.version}.json"
    assert path.exists(), f"{path.name} missing: run python tools/generate_schemas.py"
    assert path.read_text() == schema.to_json(), f"{path.name} is stale: run python tools/generate_schemas.py"


@pytest.mark.parametrize("name", VARIANTS)
def test_pytorch_parameter_count_equals_the_seed(name):
    import torch

    with torch.device("meta"):  # shapes only: full-size models cost nothing here
        model = deepvision.models.create_model(name, backend="pytorch")
    assert model.count_params() == SEED_PARAMETERS[name]
    split = model.count_params_split()
    assert split["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", _per_model(VARIANTS))
def test_keras_full_size_count_and_canonical_names(name):
    import keras

    model = deepvision.models.create_model(name, backend="tensorflow")
    try:
        assert model.count_params() == SEED_PARAMETERS[name]
        split = count_params(model)
        assert split["non_trainable"] == sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
        # The Keras model's canonical tensors are exactly the checked-in schema's (made from PyTorch).
        import interchange

        actual = {n: s.shape for n, s in slots_by_name(model).items()}
        report = interchange.validate(actual, interchange.load_schema(name), config={"include_top": True})
        assert report.ok, str(report)
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


@pytest.fixture(scope="module", params=_per_model(MODELS))
def pair(request):
    """A calibrated small Keras model and its PyTorch twin through the canonical format."""
    import keras

    name = request.param
    config = dict(get_architecture(name).reference_config)
    tf_model = build_from_neutral_config(name, config, "tensorflow")
    x = np.random.default_rng(0).normal(size=(4, *config["input_shape"])).astype(np.float32)
    # Shrinking the last norm of each residual branch keeps deep nets out of the chaotic regime
    # (parity-pitfalls.md); only EfficientNetV2 names it so, other families are unaffected.
    testing.calibrate_batch_norm(tf_model, x, shrink=("project_bn",))
    yield name, config, tf_model, to_backend(tf_model, "pytorch")
    keras.backend.clear_session()
    gc.collect()


def _representative(name: str) -> None:
    if name not in REPRESENTATIVES:
        pytest.skip("file formats and fit are checked on one variant per family (same implementation class)")


def _inputs(config, seed=1):
    return np.random.default_rng(seed).normal(size=(2, *config["input_shape"])).astype(np.float32)


def test_small_model_parity_through_the_canonical_format(pair):
    name, config, tf_model, pt_model = pair
    report = check_parity(tf_model, pt_model, inputs=_inputs(config), rtol=1e-4)
    assert report.ok, str(report)
    original, returned = testing.canonical_state(tf_model), testing.canonical_state(to_backend(pt_model, "tensorflow"))
    assert original.keys() == returned.keys()
    for tensor, value in original.items():
        np.testing.assert_array_equal(value, returned[tensor], err_msg=tensor)


def test_outputs_are_logits_and_plain_tensors(pair):
    name, config, tf_model, pt_model = pair
    y = testing.forward(pt_model, _inputs(config))
    assert y.shape == (2, config.get("classes", 1000))
    assert not np.allclose(y.sum(-1), 1.0, atol=1e-3), "looks like softmax probabilities"
    import keras

    assert keras.ops.is_tensor(tf_model(_inputs(config)))


def test_keras_files_reload_through_deepvision(pair, tmp_path):
    from deepvision.models.keras_io import load_keras_model

    name, config, tf_model, _ = pair
    _representative(name)
    x = _inputs(config)
    expected = testing.forward(tf_model, x)
    for file in ("m.keras", "m.h5"):
        tf_model.save(tmp_path / file)
        reloaded = load_keras_model(tmp_path / file)
        assert testing.max_abs_error(testing.forward(reloaded, x), expected) <= 1e-6, file
    tf_model.save_weights(tmp_path / "m.weights.h5")
    fresh = build_from_neutral_config(name, config, "tensorflow")
    fresh.load_weights(tmp_path / "m.weights.h5")
    assert testing.max_abs_error(testing.forward(fresh, x), expected) <= 1e-6


def test_torch_state_dict_and_portable_reload(pair, tmp_path):
    import torch

    name, config, _, pt_model = pair
    _representative(name)
    torch.save(pt_model.state_dict(), tmp_path / "m.pt")
    fresh = build_from_neutral_config(name, config, "pytorch")
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = _inputs(config)
    assert testing.max_abs_error(testing.forward(fresh, x), testing.forward(pt_model, x)) == 0.0
    path = save_portable(pt_model, tmp_path / "m.safetensors")
    import interchange

    with interchange.open_checkpoint(path) as ckpt:
        # A generic architecture's names depend on its config: check against the schema at that config.
        schema = schema_for(name, ckpt.config) if is_generic(name) else interchange.load_schema(name)
        report = interchange.validate(ckpt, schema, config=ckpt.config)
        assert report.ok, str(report)
        assert ckpt.metadata["preprocessing"], "preprocessing facts travel with the checkpoint"
    assert check_parity(load_portable(path, backend="tensorflow"), pt_model, inputs=x).ok


def test_config_round_trip(pair):
    name, config, tf_model, pt_model = pair
    _representative(name)
    rebuilt = type(tf_model).from_config(tf_model.get_config())
    assert count_params(rebuilt) == count_params(tf_model)
    assert json.dumps(type(pt_model).from_config(pt_model.get_config()).get_config(), sort_keys=True, default=str) == \
        json.dumps(pt_model.get_config(), sort_keys=True, default=str)


def test_keras_fit_runs_on_tf_data(pair):
    import keras
    import tensorflow as tf

    name, config, _, _ = pair
    _representative(name)
    model = build_from_neutral_config(name, config, "tensorflow")
    x = _inputs(config)
    y = np.array([0, 1])
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
