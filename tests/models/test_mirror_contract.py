"""The mirror contract (docs/ARCHITECTURE.md, rules 1 and 5), checked over the whole registry.

For every registered model and block: the public factory (``deepvision.models.X`` /
``deepvision.layers.X``), the Keras class and the PyTorch class take the same parameters in the
same order with the same defaults (``backend`` aside, and the ``**kwargs`` Keras passes on to
its base layer), and ``get_config()`` returns exactly those parameters with the values the object
was built with. Every norm layer's epsilon (and BatchNorm momentum), in both backends, equals the
config's number: a layer that ignores its configured epsilon barely moves a random-input parity
test, so it is checked here structurally.
"""

from __future__ import annotations

import gc
import inspect
import json
from typing import Any

import pytest

import deepvision
from deepvision.registry import from_neutral_config, get_architecture, list_architectures

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

ARCHITECTURES = [n for n in list_architectures() if get_architecture(n).family != "tests"]
BLOCKS = [n for n in ARCHITECTURES if get_architecture(n).kind == "block"]
MODELS = [n for n in ARCHITECTURES if get_architecture(n).kind == "model"]
# Variants of a family share one class per backend: Keras objects (slow to build) are made for the
# first variant of each family; PyTorch objects for every variant (on the meta device, free).
REPRESENTATIVES = [next(n for n in MODELS if get_architecture(n).family == f)
                   for f in dict.fromkeys(get_architecture(n).family for n in MODELS)]
_EMPTY = inspect.Parameter.empty


def _parameters(fn: Any) -> list[tuple[str, Any]]:
    """(name, default) of a callable's parameters, without ``self``, ``backend``, ``weights`` (a factory's
    load option), ``*args``, ``**kwargs``."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    return [
        (p.name, p.default)
        for p in inspect.signature(target).parameters.values()
        if p.name not in ("self", "backend", "weights") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _json(value: Any) -> str:
    # Configs pass through JSON (tuples become lists), so compare JSON forms.
    return json.dumps(value, sort_keys=True, default=repr)


def _same_parameters(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> bool:
    return [n for n, _ in a] == [n for n, _ in b] and all(
        (da is _EMPTY) == (db is _EMPTY) and (da is _EMPTY or _json(da) == _json(db)) for (_, da), (_, db) in zip(a, b)
    )


def _factory(name: str) -> Any:
    module = deepvision.layers if get_architecture(name).kind == "block" else deepvision.models
    return getattr(module, name)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_keras_and_pytorch_classes_take_the_same_parameters(name):
    arch = get_architecture(name)
    tf_cls, pt_cls = arch.implementation("tensorflow"), arch.implementation("pytorch")
    tf_params, pt_params = _parameters(tf_cls), _parameters(pt_cls)
    assert _same_parameters(tf_params, pt_params), (tf_params, pt_params)
    # Only Keras passes extra keyword arguments (name, dtype, trainable) on to its base class.
    pt_kinds = {p.kind for p in inspect.signature(pt_cls.__init__).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in pt_kinds and inspect.Parameter.VAR_POSITIONAL not in pt_kinds


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_public_factory_takes_the_classes_parameters(name):
    """A variant's factory takes the class's parameters minus those the variant fixes, same order and defaults."""
    arch = get_architecture(name)
    expected = [(n, d) for n, d in _parameters(arch.implementation("pytorch")) if n not in arch.fixed]
    factory = _factory(name)
    actual = _parameters(factory)
    assert _same_parameters(actual, expected), (actual, expected)
    assert "backend" in inspect.signature(factory).parameters
    if arch.kind == "model":
        assert inspect.signature(factory).parameters["weights"].default is None


def _expected_config(name: str, config: dict[str, Any], backend: str) -> dict[str, Any]:
    """What ``get_config()`` must return when built from neutral ``config``: every parameter, in order."""
    arch = get_architecture(name)
    given = from_neutral_config({**config, **arch.fixed}, backend)
    return {n: given.get(n, default) for n, default in _parameters(arch.implementation(backend))}


def _check_config(obj: Any, name: str, config: dict[str, Any], backend: str) -> None:
    expected = _expected_config(name, config, backend)
    actual = obj.get_config()
    extra = set(actual) - set(expected)
    if backend == "tensorflow":
        import keras

        # Keras adds its base layer's own keys (name, trainable, dtype): nothing else.
        extra -= set(keras.layers.Layer().get_config())
    assert not extra, f"get_config() returns keys that are not constructor parameters: {sorted(extra)}"
    assert [k for k in actual if k in expected] == list(expected), "get_config() keys differ from the parameters"
    for key, value in expected.items():
        assert _json(actual[key]) == _json(value), (key, actual[key], value)


def _build(name: str, config: dict[str, Any], backend: str) -> Any:
    from deepvision.portable import ensure_built
    from deepvision.registry import build_from_neutral_config

    obj = build_from_neutral_config(name, config, backend)
    return ensure_built(obj, get_architecture(name), config)


# ------------------------------------------------------------------------------------------------
# Every norm layer's epsilon (and BatchNorm momentum) is the config's number, in both backends.
# ------------------------------------------------------------------------------------------------
def _odd_numbers(name: str) -> dict[str, float]:
    """Unusual values for every epsilon and momentum parameter, so a hard-coded default cannot pass."""
    out, factor = {}, 3.7
    for key, default in _parameters(get_architecture(name).implementation("pytorch")):
        if "epsilon" in key:
            out[key] = float(default if isinstance(default, float) else 1e-5) * factor
            factor += 1.3  # distinct per key: a layer reading the wrong key is caught too
        elif "momentum" in key:
            out[key] = 0.77
    return out


def _norm_layers(obj: Any, backend: str) -> list[tuple[str, bool, float, float | None]]:
    """(path, is_batch_norm, epsilon, Keras-convention momentum or None) of every norm layer of ``obj``."""
    found = []
    if backend == "pytorch":
        from torch import nn

        for path, module in obj.named_modules():
            if isinstance(getattr(module, "eps", None), float):
                batch = isinstance(module, nn.modules.batchnorm._BatchNorm)
                found.append((path, batch, module.eps, 1.0 - module.momentum if batch else None))
    else:
        import keras

        for layer in obj._flatten_layers(include_self=True, recursive=True):
            if isinstance(getattr(layer, "epsilon", None), float):
                batch = isinstance(layer, keras.layers.BatchNormalization)
                found.append((layer.path, batch, layer.epsilon, layer.momentum if batch else None))
    return found


def _expected_epsilon(numbers: dict[str, float], batch: bool) -> float | None:
    epsilons = {k: v for k, v in numbers.items() if "epsilon" in k}
    if len(epsilons) == 1:
        return next(iter(epsilons.values()))
    kind = [v for k, v in epsilons.items() if (k.startswith("bn") or "batch" in k) == batch]
    return kind[0] if len(kind) == 1 else None


def _check_norms(obj: Any, name: str, backend: str, numbers: dict[str, float]) -> None:
    norms = _norm_layers(obj, backend)
    if not norms:
        return
    assert any("epsilon" in k for k in numbers), f"{name} has norm layers but no epsilon parameter"
    momentum = next((v for k, v in numbers.items() if "momentum" in k), None)
    for path, batch, epsilon, keras_momentum in norms:
        expected = _expected_epsilon(numbers, batch)
        assert expected is not None, f"{path}: cannot tell which epsilon parameter it takes"
        assert epsilon == pytest.approx(expected, rel=1e-6), f"{path}: epsilon {epsilon}, config {expected}"
        if batch and momentum is not None:
            assert keras_momentum == pytest.approx(momentum, rel=1e-6), f"{path}: momentum {keras_momentum}"


def _check(obj: Any, name: str, config: dict[str, Any], numbers: dict[str, float], backend: str) -> None:
    _check_config(obj, name, config, backend)
    _check_norms(obj, name, backend, numbers)


# One object per (architecture, backend) serves both checks: built with unusual epsilons and momenta.
@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
@pytest.mark.parametrize("name", BLOCKS)
def test_block_config_and_norm_numbers(name, backend):
    numbers = _odd_numbers(name)
    config = {**get_architecture(name).reference_config, **numbers}
    _check(_build(name, config, backend), name, config, numbers, backend)


@pytest.mark.parametrize("name", MODELS)
def test_pytorch_model_config_and_norm_numbers(name):
    import torch

    numbers = _odd_numbers(name)
    config = {**get_architecture(name).reference_config, **numbers}
    with torch.device("meta"):
        model = _build(name, config, "pytorch")
    _check(model, name, config, numbers, "pytorch")


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_keras_model_config_and_norm_numbers(name):
    import keras

    numbers = _odd_numbers(name)
    config = {**get_architecture(name).reference_config, **numbers}
    try:
        _check(_build(name, config, "tensorflow"), name, config, numbers, "tensorflow")
    finally:
        keras.backend.clear_session()
        gc.collect()


# ------------------------------------------------------------------------------------------------
# The same mistake raises the same error in both backends (models; blocks: tests/blocks/test_input_checks.py).
# ------------------------------------------------------------------------------------------------
def _channels_first(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], shape[-1], *shape[1:-1]) if len(shape) == 4 else shape


# (architecture, neutral config overrides, wrong channels-last input, words of the problem)
MODEL_INPUT_CASES = [
    ("ResNet18V2", {}, (2, 64, 64, 1), "ResNet18V2: expected 3 input channels, got 1"),
    ("ResNet18V2", {}, (64, 64, 3), "ResNet18V2: expected a 4D batch of images, got a 3D input"),
    ("ViT", {}, (2, 4, 32, 3), "PatchingAndEmbedding: images of 4x32 are smaller than one 8x8 patch"),
    ("ViT", {}, (2, 40, 32, 3), "PatchingAndEmbedding: made for a 4x4 patch grid but got images of 40x32"),
    ("ViT", {"dynamic_img_size": True}, (2, 36, 32, 3),
     "PatchingAndEmbedding(dynamic_img_size=True): image size 36x32 is not divisible by the patch size 8"),
]


@pytest.mark.parametrize("name, overrides, shape, problem", MODEL_INPUT_CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[2]))}" for c in MODEL_INPUT_CASES])
def test_a_wrong_model_input_raises_the_same_error_in_both_backends(name, overrides, shape, problem):
    import keras
    import numpy as np
    import torch

    from deepvision import checks
    from deepvision.registry import build_from_neutral_config

    config = {**get_architecture(name).reference_config, **overrides}
    messages = {}
    try:
        for backend in ("tensorflow", "pytorch"):
            model = build_from_neutral_config(name, config, backend)
            x = np.zeros(shape, np.float32) if backend == "tensorflow" else torch.zeros(_channels_first(shape))
            with pytest.raises(checks.InputShapeError) as info:
                model(x)
            messages[backend] = str(info.value)
    finally:
        keras.backend.clear_session()
        gc.collect()
    assert checks.problem_of(messages["tensorflow"]) == checks.problem_of(messages["pytorch"])
    assert messages["tensorflow"].startswith(problem), messages["tensorflow"]
    assert messages["tensorflow"].endswith(f"got {shape}") and messages["pytorch"].endswith(f"got {_channels_first(shape)}")


@pytest.mark.parametrize("name, overrides, problem", [
    ("ResNet18V2", {"pooling": "mean"}, "pooling must be None, 'avg' or 'max', got 'mean'"),
    ("EfficientNetV2B0", {"pooling": "mean"}, "pooling must be None, 'avg' or 'max', got 'mean'"),
    ("ViT", {"pooling": "mean"}, "pooling must be None, 'token', 'avg' or 'max', got 'mean'"),
    ("ResNet18V2", {"drop_path_rate": 2.0}, "drop_prob must be in [0, 1], got"),
])
def test_a_wrong_model_argument_raises_the_same_error_in_both_backends(name, overrides, problem):
    import keras

    from deepvision.registry import build_from_neutral_config

    config = {**get_architecture(name).reference_config, **overrides}
    errors = {}
    try:
        for backend in ("tensorflow", "pytorch"):
            with pytest.raises(ValueError) as info:
                build_from_neutral_config(name, config, backend)
            errors[backend] = info.value
    finally:
        keras.backend.clear_session()
        gc.collect()
    assert type(errors["tensorflow"]) is type(errors["pytorch"])
    assert str(errors["tensorflow"]) == str(errors["pytorch"])
    assert problem in str(errors["tensorflow"])
