"""Helpers that prove two implementations equal: used by the test suite and by ``check_parity``.

Conventions: arrays handed in and out are numpy, images channels-last (NHWC) and tokens
(batch, tokens, dim); PyTorch inputs are transposed to NCHW on the way in and outputs back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from deepvision.adapters import iter_slots
from deepvision.backend import PYTORCH, TENSORFLOW, backend_of


def max_relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Per-tensor relative error ``max|a - b| / max|b|`` (``max|b|`` floored at 1e-30)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1e-30))


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))


def randomize_weights(obj: Any, seed: int = 0) -> None:
    """Give every tensor non-trivial values, so that a mapping error cannot hide behind ones and zeros.

    Kernels ~ N(0, 1/fan_in), biases ~ N(0, 0.1), norm gamma ~ U(0.8, 1.2), beta ~ N(0, 0.1),
    moving mean ~ N(0, 0.1), moving variance ~ U(0.5, 1.5), embeddings ~ N(0, 0.02).
    """
    rng = np.random.default_rng(seed)
    for slot in iter_slots(obj):
        shape = slot.shape
        if slot.role == "weight":
            # Canonical layouts: (kh, kw, in, out) / (in, out) kernels, (kh, kw, channels, multiplier) depthwise.
            depthwise = slot.name.endswith("depthwise_kernel")
            fan_in = int(np.prod(shape[:2])) if depthwise else int(np.prod(shape[:-1]))
            value = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
        elif slot.role == "norm" and slot.name.endswith("gamma"):
            value = rng.uniform(0.8, 1.2, shape)
        elif slot.name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif slot.role == "embedding":
            value = rng.normal(0.0, 0.02, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        slot.write(value.astype(np.float32))


def to_framework(x: np.ndarray, backend: str) -> Any:
    """A channels-last numpy batch as the backend's input tensor (NCHW torch tensor for images);
    a list of arrays (e.g. the feature maps a decoder head takes) becomes a list of tensors."""
    if isinstance(x, (list, tuple)):
        return [to_framework(item, backend) for item in x]
    if backend == PYTORCH:
        import torch

        array = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x
        return torch.from_numpy(np.array(array))
    import keras

    return keras.ops.convert_to_tensor(x)


def from_framework(y: Any, backend: str) -> Any:
    """A backend output as numpy, channels-last for images (a list of them for multi-output models)."""
    if isinstance(y, Mapping):
        y = y["output"]
    if isinstance(y, (list, tuple)):
        return [from_framework(item, backend) for item in y]
    if backend == PYTORCH:
        array = y.detach().cpu().float().numpy()
        return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array
    import keras

    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")))


def call(obj: Any, x: np.ndarray | Sequence[np.ndarray], training: bool = False) -> Any:
    """Run ``obj`` on a channels-last batch in inference (default) or training mode, without
    gradients; the backend's own output (a PyTorch module's mode is restored afterwards).
    The one forward helper of :func:`forward` and :func:`deepvision.parity.check_parity`."""
    backend = backend_of(obj)
    if backend == PYTORCH:
        import torch

        was_training = obj.training
        obj.train(training)
        try:
            with torch.no_grad():
                return obj(to_framework(x, backend))
        finally:
            obj.train(was_training)
    return obj(to_framework(x, backend), training=training)


def forward(obj: Any, x: np.ndarray | Sequence[np.ndarray], training: bool = False) -> Any:
    """Run ``obj`` on a channels-last batch in inference (default) or training mode; the output as
    numpy, channels-last (see :func:`from_framework`)."""
    return from_framework(call(obj, x, training), backend_of(obj))


def gradients(obj: Any, x: np.ndarray, upstream: np.ndarray, training: bool = True) -> tuple[np.ndarray, dict]:
    """Output and gradients of ``sum(output * upstream)`` w.r.t. every trainable tensor.

    Args:
        x: channels-last input batch.
        upstream: an array shaped like the (channels-last) output; the loss is ``sum(y * upstream)``.

    Returns:
        ``(output, {canonical_name: gradient in canonical layout})``.
    """
    backend = backend_of(obj)
    slots = [s for s in iter_slots(obj) if s.trainable]
    if backend == PYTORCH:

        was_training = obj.training
        obj.train(training)
        try:
            for slot in slots:
                slot.variable.grad = None
            y = obj(to_framework(x, backend))
            up = to_framework(upstream, backend).to(y.dtype)
            (y * up).sum().backward()
        finally:
            obj.train(was_training)
        grads = {s.name: s.to_canonical(s.variable.grad) for s in slots if s.variable.grad is not None}
        return from_framework(y, backend), grads
    # Keras 3 has no backend-neutral gradient API; on the TensorFlow backend a tape is the way.
    import tensorflow as tf

    variables = [s.variable for s in slots]
    with tf.GradientTape() as tape:
        y = obj(to_framework(x, backend), training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.constant(upstream, tf.float32))
    grads = tape.gradient(loss, variables)
    return from_framework(y, backend), {
        s.name: s.to_canonical(g) for s, g in zip(slots, grads) if g is not None
    }


def canonical_state(obj: Any) -> dict[str, np.ndarray]:
    """Every tensor of ``obj`` in canonical names and layouts."""
    return {slot.name: slot.read() for slot in iter_slots(obj)}


def other_backend(backend: str) -> str:
    return PYTORCH if backend == TENSORFLOW else TENSORFLOW


def calibrate_batch_norm(model: Any, x: np.ndarray, *, seed: int = 0, shrink: tuple[str, ...] = (),
                         shrink_factor: float = 0.2) -> None:
    """Make a deep network's BatchNorm statistics realistic, so parity tests are not chaotic.

    Sets every BatchNorm's moving statistics from one training-mode pass over ``x`` (momentum 0),
    then multiplies them by U(0.8, 1.2), and scales the gamma of the BatchNorms whose name (Keras
    layer name or canonical path) contains one of ``shrink`` (e.g. the last norm of each residual
    branch) by ``shrink_factor``. Works on any Keras model (keras.applications included) and on
    any PyTorch module.
    """
    rng = np.random.default_rng(seed)
    backend = backend_of(model)
    if backend == PYTORCH:
        import torch

        norms = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [m.momentum for _, m in norms]
        for _, m in norms:
            m.momentum = 1.0  # torch convention: take the batch statistic entirely
        forward(model, x, training=True)
        with torch.no_grad():
            for (name, m), momentum in zip(norms, saved):
                m.momentum = momentum
                m.running_mean.mul_(torch.from_numpy(rng.uniform(0.8, 1.2, m.running_mean.shape).astype(np.float32)))
                m.running_var.mul_(torch.from_numpy(rng.uniform(0.8, 1.2, m.running_var.shape).astype(np.float32)))
                if any(s in name for s in shrink) and m.weight is not None:
                    m.weight.mul_(shrink_factor)
        return
    import keras

    norms = [layer for layer in _keras_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    forward(model, x, training=True)
    for layer, momentum in zip(norms, saved):
        layer.momentum = momentum
        for variable in (layer.moving_mean, layer.moving_variance):
            variable.assign(variable.numpy() * rng.uniform(0.8, 1.2, variable.shape).astype(np.float32))
        if any(s in layer.name or s in layer.path for s in shrink) and layer.gamma is not None:
            layer.gamma.assign(layer.gamma.numpy() * shrink_factor)


def _keras_layers(model: Any) -> list:
    """Every layer inside a Keras model, depth first (functional, sequential or subclassed)."""
    seen, out, stack = set(), [], [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.append(layer)
        stack.extend(reversed(list(layer._flatten_layers(include_self=False, recursive=False))))
    return out
