"""Backend names and lazy framework imports.

``import deepvision`` imports neither TensorFlow nor PyTorch: a framework is imported the first
time something asks for it through :func:`require_tensorflow` or :func:`require_pytorch`.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

TENSORFLOW = "tensorflow"
PYTORCH = "pytorch"
BACKENDS = (TENSORFLOW, PYTORCH)
_ALIASES = {
    "tensorflow": TENSORFLOW,
    "tf": TENSORFLOW,
    "keras": TENSORFLOW,
    "pytorch": PYTORCH,
    "torch": PYTORCH,
}
_EXTRA = {TENSORFLOW: "tensorflow", PYTORCH: "pytorch"}


class BackendError(ValueError):
    """An unknown backend name, or a backend whose framework cannot be used."""


class BackendNotInstalledError(BackendError, ImportError):
    """The framework of the requested backend is not installed."""


def resolve_backend(backend: str | None) -> str:
    """Return the canonical backend name (``"tensorflow"`` or ``"pytorch"``) for ``backend``.

    ``None`` falls back to the ``DEEPVISION_BACKEND`` environment variable.
    """
    if backend is None:
        backend = os.environ.get("DEEPVISION_BACKEND")
        if backend is None:
            raise BackendError(
                "No backend given: pass backend='tensorflow' (aliases 'tf', 'keras') or "
                "backend='pytorch' (alias 'torch'), or set DEEPVISION_BACKEND."
            )
    if not isinstance(backend, str) or backend.lower() not in _ALIASES:
        valid = ", ".join(repr(name) for name in _ALIASES)
        raise BackendError(f"Unknown backend {backend!r}. Valid names: {valid}.")
    return _ALIASES[backend.lower()]


def _import_or_explain(module: str, backend: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise BackendNotInstalledError(
            f"backend={backend!r} needs the '{module}' package, which cannot be imported ({err}). "
            f"Install it with: pip install 'deepvision-toolkit[{_EXTRA[backend]}]'"
        ) from err


def require_tensorflow() -> ModuleType:
    """Import and return ``keras`` after checking that Keras 3 runs on TensorFlow."""
    _import_or_explain("tensorflow", TENSORFLOW)
    keras = _import_or_explain("keras", TENSORFLOW)
    active = keras.backend.backend()
    if active != "tensorflow":
        raise BackendError(
            f"backend='tensorflow' needs Keras running on TensorFlow, but Keras uses {active!r} "
            f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}). Unset KERAS_BACKEND or set it to "
            "'tensorflow' before anything imports keras."
        )
    return keras


def require_pytorch() -> ModuleType:
    """Import and return ``torch``."""
    return _import_or_explain("torch", PYTORCH)


def require(backend: str | None) -> str:
    """Resolve ``backend`` and make sure its framework is usable; returns the canonical name."""
    name = resolve_backend(backend)
    (require_tensorflow if name == TENSORFLOW else require_pytorch)()
    return name


def backend_of(obj: object) -> str:
    """Tell which backend a model, layer or tensor belongs to, without importing a framework."""
    if "torch" in sys.modules:
        import torch

        if isinstance(obj, (torch.nn.Module, torch.Tensor)):
            return PYTORCH
    if "keras" in sys.modules:
        import keras

        if isinstance(obj, (keras.layers.Layer, keras.Variable)):
            return TENSORFLOW
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if isinstance(obj, (tf.Tensor, tf.Variable)):
            return TENSORFLOW
    raise BackendError(
        f"Cannot tell the backend of a {type(obj).__module__}.{type(obj).__name__}: expected a "
        "keras.layers.Layer / keras.Model or a torch.nn.Module."
    )
