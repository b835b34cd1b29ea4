"""Backend names and lazy framework imports.

``import deepvision`` imports neither TensorFlow nor PyTorch: a framework is imported the first
time something asks for it through :func:`require_tensorflow` or :func:`require_pytorch`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

TENSORFLOW = "tensorflow"
PYTORCH = "pytorch"
BACKENDS = (TENSORFLOW, PYTORCH)
#: Set to 1 (or true/yes/on) to see the frameworks' start-up and log lines; ``--verbose`` sets it.
VERBOSE_ENV = "DEEPVISION_VERBOSE"
_ALIASES = {
    "tensorflow": TENSORFLOW,
    "tf": TENSORFLOW,
    "keras": TENSORFLOW,
    "pytorch": PYTORCH,
    "torch": PYTORCH,
}
_EXTRA = {TENSORFLOW: "tensorflow", PYTORCH: "pytorch"}
# What quiet_frameworks changed (so that set_verbose can undo exactly that).
_QUIETED: set[str] = set()


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


def verbose() -> bool:
    """Whether the user asked for the frameworks' own log lines (``DEEPVISION_VERBOSE=1`` / ``--verbose``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def quiet_frameworks() -> None:
    """Keep TensorFlow's C++ start-up lines and absl's Python warnings off stderr, unless verbose.

    Runs on ``import deepvision`` and again before deepvision imports TensorFlow: TensorFlow's C++
    logger reads ``TF_CPP_MIN_LOG_LEVEL`` once, when its library loads, so it must be set before the
    first ``import tensorflow`` / ``import keras`` (it has no effect later). A value the user set is
    kept. Level 2 hides INFO and WARNING (the CPU-instructions and oneDNN banners, XLA's "service
    initialized" lines) and keeps errors. Keras's saving code warns through absl's Python logger
    ("WARNING:absl:..."), which is lowered to errors the same way; nothing is imported here.
    TensorFlow 2.21 writes two start-up lines (absl's "All log messages before absl::InitializeLog()"
    and oneDNN's notice) before its logger reads that variable: an import hook takes them out of
    stderr while ``tensorflow`` loads, whoever imports it; any other line it writes passes.
    """
    if verbose():
        return
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        _QUIETED.add("TF_CPP_MIN_LOG_LEVEL")
    _install_tensorflow_hook()
    absl_logger = logging.getLogger("absl")
    if absl_logger.level == logging.NOTSET:  # a level the user chose stays
        absl_logger.setLevel(logging.ERROR)
        _QUIETED.add("absl")
    _quiet_lightning()


# Lightning's advertisements and a deprecation inside Lightning itself (its _pytree helper calls
# torch's deprecated LeafSpec check on every fit): nothing a deepvision user can act on. Each is
# matched by its own text, so every other warning and log line still shows.
_LIGHTNING_TIPS = ("💡 Tip:",)
_LIGHTNING_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"Starting from v1\.9\.0, `tensorboardX` has been removed",
)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LIGHTNING_TIPS)


_TIP_FILTER = _DropTips()


def _quiet_lightning() -> None:
    # Filters attach to the loggers by name, so nothing of Lightning is imported here.
    import warnings

    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_TIP_FILTER)  # adding the same filter twice is a no-op
    for message in _LIGHTNING_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    _QUIETED.add("lightning")


def set_verbose(on: bool = True) -> None:
    """Turn the frameworks' log lines on (or off again) for this process and its children.

    Effective for TensorFlow's C++ lines only before TensorFlow is imported; what
    :func:`quiet_frameworks` changed is undone, settings of the user's own are kept.
    """
    if not on:
        os.environ.pop(VERBOSE_ENV, None)
        quiet_frameworks()
        return
    os.environ[VERBOSE_ENV] = "1"
    _remove_tensorflow_hook()
    if "TF_CPP_MIN_LOG_LEVEL" in _QUIETED:
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    if "absl" in _QUIETED:
        logging.getLogger("absl").setLevel(logging.NOTSET)
    if "lightning" in _QUIETED:
        import warnings

        for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
            logging.getLogger(name).removeFilter(_TIP_FILTER)
        warnings.filters[:] = [f for f in warnings.filters
                               if not (f[0] == "ignore" and f[1] is not None
                                       and f[1].pattern in _LIGHTNING_WARNINGS)]
    _QUIETED.clear()


def _import_or_explain(module: str, backend: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise BackendNotInstalledError(
            f"backend={backend!r} needs the '{module}' package, which cannot be imported ({err}). "
            f"Install it with: pip install 'deepvision-toolkit[{_EXTRA[backend]}]'"
        ) from err


# TensorFlow 2.21 logs these two lines through absl before its logger is set up, so
# TF_CPP_MIN_LOG_LEVEL does not hide them (only TF_ENABLE_ONEDNN_OPTS=0 would, and costs speed).
_BANNER = (b"All log messages before absl::InitializeLog() is called are written to STDERR",
           b"oneDNN custom operations are on")


@contextlib.contextmanager
def _without_start_up_banner() -> Iterator[None]:
    """Run the block with file descriptor 2 in a temporary file, then pass on every line but the banner."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. some notebook kernels): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True)
                    if not any(needle in line for needle in _BANNER)]
            if kept:
                sys.stderr.write(b"".join(kept).decode(errors="replace"))
                sys.stderr.flush()


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Loads ``tensorflow`` (whoever imports it first: deepvision, keras, the user) with its start-up
    banner filtered out of stderr; installed by :func:`quiet_frameworks`, removed by verbose mode."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        _remove_tensorflow_hook()  # once: find the real spec without this finder
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            with _without_start_up_banner():
                original(module)

        spec.loader.exec_module = exec_module  # this spec's own loader instance
        return spec


def _install_tensorflow_hook() -> None:
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def _remove_tensorflow_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowImport)]


def require_tensorflow() -> ModuleType:
    """Import and return ``keras`` after checking that Keras 3 runs on TensorFlow."""
    if "tensorflow" not in sys.modules:
        quiet_frameworks()
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
