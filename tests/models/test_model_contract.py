"""The model contract (shared/notes/model-contract.md), checked for every registered model variant.

This is the one place for what every variant promises: its parameter count (``Architecture.parameters``,
in both backends and in README.md's table), its canonical tensor names (equal in both backends and to
the checked-in schema, which evolves only by version bump and migration), its public factory, file
formats and small-input parity. A new family joins by registering its architectures (with
``parameters=`` and a small ``reference_config``); its own test file tests only its own behaviour.

Variants of a family share one implementation class per backend, so the default suite (``make
test``) proves each check on representatives and leaves the repeats on the other variants to
``make test-all`` (marker ``slow``): small-input parity, file formats and fit on one variant per
implementation class (the generic entry when there is one; ResNet's bottleneck variant too, a
different block), Keras's full-size count and names on the two smallest variants of each class.
Counts in PyTorch (meta tensors, free), factories and schemas are checked on every variant.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deepvision
from deepvision import testing
from deepvision.adapters import count_params, slots_by_name
from deepvision.parity import check_parity
from deepvision.portable import load_into, load_portable, save_portable, to_backend
from deepvision.registry import (
    build_from_neutral_config,
    constructor_arguments,
    get_architecture,
    list_architectures,
)
from deepvision.schema_gen import is_generic, schema_for
from interchange.evolution import check_evolution

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
MODELS = [name for name in deepvision.models.list_models() if get_architecture(name).family != "tests"]
# Variants with a count: include_top=True, classes=1000 (the default config), Keras's count_params().
COUNTED = [name for name in MODELS if get_architecture(name).parameters is not None]


def _class_representatives() -> set[str]:
    """One variant per implementation class: the generic entry if the class has one, else its
    smallest variant; plus ResNet50V2, whose bottleneck blocks are another code path than ResNet18V2's."""
    chosen: dict[str, str] = {}
    for name in MODELS:
        arch, current = get_architecture(name), chosen.get(get_architecture(name).pytorch)
        if current is None or _rank(name) < _rank(current):
            chosen[arch.pytorch] = name
    return set(chosen.values()) | ({"ResNet50V2"} & set(MODELS))


def _rank(name: str) -> tuple[int, int]:
    arch = get_architecture(name)
    return (1 if arch.fixed else 0, arch.parameters or 0)


def _smallest_per_class(count: int) -> set[str]:
    by_class: dict[str, list[str]] = {}
    for name in COUNTED:
        by_class.setdefault(get_architecture(name).pytorch, []).append(name)
    return {n for names in by_class.values() for n in sorted(names, key=_rank)[:count]}


# File formats, fit and small-input parity: these variants by default, every variant with `slow`.
REPRESENTATIVES = _class_representatives()
# Keras's full-size build costs up to 40 s (EfficientNetV2L): the two smallest of each class by default.
KERAS_COUNTED = _smallest_per_class(2)


def _per_model(names, default=None):
    # One worker per model, and consecutive tests, so only one model pair is alive at a time; the
    # variants outside `default` are repeats of the same code path, run by `make test-all`.
    return [pytest.param(n, marks=[pytest.mark.xdist_group(f"contract-{n}")]
                         + ([] if default is None or n in default else [pytest.mark.slow]))
            for n in names]


def _family_package(name: str):
    # The package that registers the architecture and defines its factory (its implementations live there).
    return importlib.import_module(get_architecture(name).pytorch.partition(":")[0].rpartition(".")[0])


def _readme_parameters() -> dict[str, int]:
    """README.md's parameter table: ``| model | parameters | model | parameters | ...`` rows."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*model\s*\|\s*parameters\s*\|", line))
    table: dict[str, int] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for model, count in zip(cells[::2], cells[1::2]):
            if model:
                assert model not in table, f"{model} is listed twice in README.md's parameter table"
                table[model] = int(count.replace(",", ""))
    return table


def test_every_variant_declares_its_parameter_count():
    """A variant (an architecture that fixes arguments) carries its count; generic entries need not."""
    missing = [n for n in MODELS if get_architecture(n).fixed and get_architecture(n).parameters is None]
    assert not missing, f"register these with parameters=<count at the default config>: {missing}"


def test_readme_parameter_table_equals_the_registry():
    """README.md lists exactly the registered counts (the seed's table included: every seed model is registered)."""
    assert _readme_parameters() == {n: get_architecture(n).parameters for n in COUNTED}


def test_list_models_filters_by_pattern_in_registration_order():
    assert deepvision.models.list_models() == list_architectures(kind="model")
    assert deepvision.models.list_models("ViT*16") == ["ViTTiny16", "ViTS16", "ViTB16", "ViTL16"]
    assert "MBConv" not in deepvision.models.list_models()  # blocks are not models
    with pytest.raises(KeyError, match="is a block"):
        deepvision.models.create_model("MBConv", backend="pytorch")


@pytest.mark.parametrize("name", MODELS)
def test_public_factory_is_discoverable(name):
    """``deepvision.models.<name>`` is defined literally in its family package, listed by dir(), and
    its signature and help() are the variant's own (the mirror test checks the arguments)."""
    factory = getattr(deepvision.models, name)
    package = _family_package(name)
    assert getattr(package, name) is factory and factory.__name__ == name
    assert re.search(rf"^{name} = variant_factory\(\s*\"{name}\"", inspect.getsource(package), re.MULTILINE), \
        f"define `{name} = variant_factory(\"{name}\", ARGUMENTS, ...)` in {package.__name__}"
    assert name in deepvision.models.__all__ and name in dir(deepvision.models)
    signature = inspect.signature(factory)
    assert signature.parameters["backend"].kind is inspect.Parameter.KEYWORD_ONLY
    assert not set(signature.parameters) & set(get_architecture(name).fixed), "fixed arguments are not the user's"
    doc = factory.__doc__
    assert doc.startswith(f"Build {name}") and "Args:" in doc
    if get_architecture(name).parameters is not None:
        assert f"{get_architecture(name).parameters:,}" in doc
    for key in get_architecture(name).fixed:
        assert f"{key}=" in doc, key


@pytest.mark.parametrize("name", [n for n in list_architectures(kind="block") if get_architecture(n).family != "tests"])
def test_public_block_factory_is_discoverable(name):
    """``deepvision.layers.<name>`` is a function of that name defined in its block module, with a docstring."""
    factory = getattr(deepvision.layers, name)
    module = importlib.import_module(f"deepvision.layers.{deepvision.layers.BLOCKS[name]}")
    assert factory is getattr(module, name) and factory.__name__ == name
    assert re.search(rf"^def {name}\(", inspect.getsource(module), re.MULTILINE)
    assert name in deepvision.layers.__all__ and name in dir(deepvision.layers)
    assert "backend" in inspect.signature(factory).parameters and factory.__doc__


def test_factories_stay_framework_free():
    code = ("import sys, inspect, deepvision, deepvision.models as m; m.list_models(); "
            "[(inspect.signature(getattr(m, n)), getattr(m, n).__doc__) for n in m.list_models()]; "
            "print([k for k in sys.modules if k.startswith(('torch', 'tensorflow', 'keras'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_factory_rejects_what_the_variant_fixes():
    with pytest.raises(TypeError, match="ViTB16 fixes \\['patch_size'\\]"):
        deepvision.models.ViTB16(patch_size=32, backend="pytorch")


@pytest.mark.parametrize("name", [n for n in list_architectures() if get_architecture(n).family != "tests"])
def test_schema_files_evolve_by_version_and_migration(name):
    """The checked-in schema equals the live model's; a changed name or shape needs a version bump,
    the old file kept and a migration (interchange.evolution), not just regenerating the file."""
    report = check_evolution(schema_for(name), SCHEMAS)
    assert not report.problems, str(report)
    assert not report.stale, str(report)


@pytest.mark.parametrize("name", COUNTED)
def test_pytorch_parameter_count(name):
    import torch

    with torch.device("meta"):  # shapes only: full-size models cost nothing here
        model = deepvision.models.create_model(name, backend="pytorch")
    expected = get_architecture(name).parameters
    assert model.count_params() == expected
    split = model.count_params_split()
    assert split["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    # Counted by torch itself: the floating-point state (preprocessing constants are not state).
    assert sum(v.numel() for v in model.state_dict().values() if v.is_floating_point()) == expected


@pytest.mark.parametrize("name", _per_model(COUNTED, KERAS_COUNTED))
def test_keras_full_size_count_and_canonical_names(name):
    import keras
    import torch

    model = deepvision.models.create_model(name, backend="tensorflow")
    with torch.device("meta"):
        pt_model = deepvision.models.create_model(name, backend="pytorch")
    try:
        assert model.count_params() == get_architecture(name).parameters
        split = count_params(model)
        # Keras's own split agrees with the canonical one (moving statistics are the non-trainable part).
        assert split["non_trainable"] == sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
        assert split == count_params(pt_model)
        # Same canonical names, shapes and order in both backends, and exactly the checked-in schema's.
        tf_shapes = [(n, s.shape) for n, s in slots_by_name(model).items()]
        assert tf_shapes == [(n, s.shape) for n, s in slots_by_name(pt_model).items()]
        import interchange

        report = interchange.validate(dict(tf_shapes), interchange.load_schema(name), config={"include_top": True})
        assert report.ok, str(report)
    finally:
        del model, pt_model
        keras.backend.clear_session()
        gc.collect()


def _calibration_shrink(name: str) -> tuple[str, ...]:
    # A family names the last norm of each residual branch in CALIBRATION_SHRINK (a tuple, or a
    # variant -> tuple mapping): shrinking it keeps deep nets out of the chaotic regime (parity-pitfalls.md).
    shrink = getattr(_family_package(name), "CALIBRATION_SHRINK", ())
    return tuple(shrink.get(name, ())) if isinstance(shrink, dict) else tuple(shrink)


@pytest.fixture(scope="module", params=_per_model(MODELS, REPRESENTATIVES))
def pair(request):
    """A calibrated small PyTorch model (inference mode) and its Keras twin through the canonical format."""
    import keras

    name = request.param
    config = dict(get_architecture(name).reference_config)
    pt_model = build_from_neutral_config(name, config, "pytorch")
    x = np.random.default_rng(0).normal(size=(4, *_input_shape(name, config))).astype(np.float32)
    # Non-trivial values everywhere (a mapping error cannot hide behind ones and zeros), then
    # realistic BatchNorm statistics. Calibrated in PyTorch, ResNet152V2 agrees to 5e-7 (1.6e-4 when
    # calibrated in Keras, where the shrunk norms are not found by name).
    testing.randomize_weights(pt_model, seed=3)
    testing.calibrate_batch_norm(pt_model, x, shrink=_calibration_shrink(name))
    pt_model.eval()
    yield name, config, to_backend(pt_model, "tensorflow"), pt_model
    keras.backend.clear_session()
    gc.collect()


def _representative(name: str) -> None:
    if name not in REPRESENTATIVES:
        pytest.skip("file formats and fit are checked on one variant per implementation class")


def _input_shape(name, config) -> tuple:
    # Image models take their configured input_shape; others (NeRF's points) declare theirs.
    return tuple(config.get("input_shape") or get_architecture(name).build_shape(config))


def _inputs(name, config, seed=1):
    return np.random.default_rng(seed).normal(size=(2, *_input_shape(name, config))).astype(np.float32)


def _classifier(name: str) -> None:
    if "classes" not in constructor_arguments(get_architecture(name).implementation("pytorch")):
        pytest.skip(f"{name} has no classes: it is not trained on labels (its own tests train it)")


def test_small_model_parity_through_the_canonical_format(pair):
    name, config, tf_model, pt_model = pair
    report = check_parity(tf_model, pt_model, inputs=_inputs(name, config), rtol=1e-4)
    assert report.ok, str(report)
    original, returned = testing.canonical_state(tf_model), testing.canonical_state(to_backend(pt_model, "tensorflow"))
    assert original.keys() == returned.keys()
    for tensor, value in original.items():
        np.testing.assert_array_equal(value, returned[tensor], err_msg=tensor)


def test_outputs_are_logits_and_plain_tensors(pair):
    name, config, tf_model, pt_model = pair
    _classifier(name)
    y = testing.forward(pt_model, _inputs(name, config))
    # Classifiers return (N, classes); segmentation models per-pixel logits (N, h, w, classes).
    classes = config.get("classes", 1000)
    assert y.shape == ((2, classes) if y.ndim == 2 else (2, *y.shape[1:3], classes)) and y.ndim in (2, 4)
    assert not np.allclose(y.sum(-1), 1.0, atol=1e-3), "looks like softmax probabilities"
    import keras

    assert keras.ops.is_tensor(tf_model(_inputs(name, config)))


def test_keras_files_reload_through_deepvision(pair, tmp_path):
    from deepvision.models.keras_io import load_keras_model

    name, config, tf_model, _ = pair
    _representative(name)
    x = _inputs(name, config)
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
    x = _inputs(name, config)
    assert testing.max_abs_error(testing.forward(fresh, x), testing.forward(pt_model, x)) == 0.0
    path = save_portable(pt_model, tmp_path / "m.safetensors")
    import interchange

    with interchange.open_checkpoint(path) as ckpt:
        # A generic architecture's names depend on its config: check against the schema at that config.
        schema = schema_for(name, ckpt.config) if is_generic(name) else interchange.load_schema(name)
        report = interchange.validate(ckpt, schema, config=ckpt.config)
        assert report.ok, str(report)
        if get_architecture(name).preprocessing:
            assert ckpt.metadata["preprocessing"], "preprocessing facts travel with the checkpoint"
    assert check_parity(load_portable(path, backend="tensorflow"), pt_model, inputs=x).ok


def test_pytorch_channels_last_memory_format(pair, tmp_path):
    """``model.to(memory_format=torch.channels_last)`` on a channels_last input (timm's
    ``--channels-last``; faster convolutions on GPUs) computes the same outputs and gradients, and
    the portable file moves weights in and out of such a model unchanged."""
    import copy

    import torch

    import interchange

    name, config, _, pt_model = pair
    if len(_input_shape(name, config)) != 3:
        pytest.skip(f"{name} does not take images")
    plain = copy.deepcopy(pt_model)
    fast = copy.deepcopy(pt_model).to(memory_format=torch.channels_last)
    # Not a no-op: the 4-D weights really are stored channels-last now.
    strided = lambda model: any(p.dim() == 4 and p.shape[1] > 1 and not p.is_contiguous()  # noqa: E731
                                for p in model.parameters())
    assert strided(fast)
    x = _inputs(name, config)
    upstream = np.random.default_rng(2).normal(size=np.shape(testing.forward(plain, x))).astype(np.float32)
    expected, expected_grads = testing.gradients(plain, x, upstream, training=False)
    got, grads = testing.gradients(fast, x, upstream, training=False)
    assert testing.max_relative_error(got, expected) <= 1e-5
    # Gradients against float64: some are float32 rounding noise (a first attention block's query in
    # MiT: 1e-7, relative error O(1) between any two float32 runs), so each channels-last gradient
    # must be as close to the exact one as the contiguous model's own, within 10x.
    _, exact = testing.gradients(copy.deepcopy(pt_model).double(), x.astype(np.float64),
                                 upstream.astype(np.float64), training=False)
    assert grads.keys() == expected_grads.keys() == exact.keys()
    for tensor, value in exact.items():
        noise = testing.max_relative_error(expected_grads[tensor], value)
        assert testing.max_relative_error(grads[tensor], value) <= 10 * noise + 1e-6, tensor
    with torch.no_grad():  # a channels_last input as well as the contiguous one above
        y = fast(testing.to_framework(x, "pytorch").contiguous(memory_format=torch.channels_last))
    assert testing.max_relative_error(testing.from_framework(y, "pytorch"), expected) <= 1e-5
    # Export reads the strided weights as their canonical values; import writes into them in place.
    state = testing.canonical_state(fast)
    assert state.keys() == testing.canonical_state(plain).keys()
    for tensor, value in testing.canonical_state(plain).items():
        np.testing.assert_array_equal(state[tensor], value, err_msg=tensor)
    path = save_portable(fast, tmp_path / "cl.safetensors")
    target = build_from_neutral_config(name, config, "pytorch").to(memory_format=torch.channels_last)
    with interchange.open_checkpoint(path) as ckpt:
        load_into(target, ckpt)
    assert strided(target), "loading kept the model's memory format"
    assert testing.max_relative_error(testing.forward(target.eval(), x), expected) <= 1e-5


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
    _classifier(name)
    model = build_from_neutral_config(name, config, "tensorflow")
    x = _inputs(name, config)
    # Class ids per image, or per output pixel for segmentation models (logits (N, h, w, classes)).
    logits_shape = testing.forward(model, x).shape
    y = np.array([0, 1]) if len(logits_shape) == 2 else np.arange(np.prod(logits_shape[:3])).reshape(logits_shape[:3]) % 2
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
