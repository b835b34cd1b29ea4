"""File helpers: every file deepvision writes is written whole or not at all; the one reader of
PyTorch-style weight files (:func:`read_state_dict`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def full_suffix(path: str | os.PathLike) -> str:
    """``.weights.h5`` for ``x.weights.h5``, else the last suffix (``.pt``)."""
    name = Path(path).name.lower()
    return ".weights.h5" if name.endswith(".weights.h5") else Path(name).suffix


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, which some writers insist on); on success
    it replaces ``path`` in one rename, on failure it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=full_suffix(path), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # writers such as Keras refuse to overwrite, or open the file their own way
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise RuntimeError(f"nothing was written for {path}")
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# ----------------------------------------------------------------------------------------------- reading


class WeightFileError(ValueError):
    """A file is not a weight file deepvision reads (not tensors, or pickled objects)."""


# Training checkpoints (Lightning, timm's train.py, DeiT-style scripts) keep the weights under one of
# these keys; the first that holds a dict wins, in this order.
STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


@dataclass
class WeightFile:
    """The tensors of a PyTorch-style weight file, and what the file says about them.

    Attributes:
        tensors: name -> numpy array in the file's own layout (PyTorch's: ``(out, in, kh, kw)``
            convolutions, ``(out, in)`` dense kernels); ``module.`` prefixes removed.
        metadata: a ``.safetensors`` file's ``__metadata__`` (strings); for a torch file the
            non-tensor entries beside the weights that deepvision reads: ``deepvision`` (architecture
            and neutral config recorded by ``DeepVisionModulePT.on_save_checkpoint``) and
            ``hyper_parameters`` (Lightning's ``save_hyperparameters``), when present.
    """

    tensors: dict[str, np.ndarray]
    metadata: dict[str, Any] = field(default_factory=dict)


def read_weight_file(path: str | os.PathLike, *, error: type[Exception] = WeightFileError) -> WeightFile:
    """Read a ``.safetensors`` or ``.pt``/``.pth``/``.bin``/``.ckpt`` file as numpy arrays.

    ``.safetensors`` goes through safetensors' numpy API (no torch needed; bfloat16 through
    ml_dtypes). Torch files load with ``torch.load(weights_only=True)``, so pickled objects are
    never executed; a ``state_dict``/``model``/``state_dict_ema`` wrapper is unwrapped and the
    ``module.`` prefix DistributedDataParallel adds is removed. Problems raise ``error`` (an
    importer passes its own exception type) with a message naming the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(path, error)
    if suffix not in TORCH_SUFFIXES:
        raise error(f"{path}: PyTorch-style weights come as .safetensors, {', '.join(TORCH_SUFFIXES)} files.")
    return _read_torch(path, error)


def read_state_dict(path: str | os.PathLike, *, error: type[Exception] = WeightFileError) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch-style weight file (see :func:`read_weight_file`), name -> numpy array."""
    return read_weight_file(path, error=error).tensors


def _read_safetensors(path: Path, error: type[Exception]) -> WeightFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)
    except SafetensorError as err:
        raise error(f"{path} is not a readable safetensors file ({err}).") from err
    except TypeError as err:
        # numpy has no bfloat16, so safetensors' numpy API refuses such files: interchange's reader
        # views them through ml_dtypes.
        if "bfloat16" not in str(err):
            raise
        import interchange

        with interchange.open_checkpoint(path, allow_foreign=True, verify=False) as ckpt:
            metadata = dict(ckpt.raw_metadata)
            tensors = {name: np.array(ckpt.get(name)) for name in ckpt.names}
    return WeightFile(_strip_module_prefix(tensors), metadata)


def _read_torch(path: Path, error: type[Exception]) -> WeightFile:
    from deepvision.adapters.torch_adapter import to_numpy
    from deepvision.backend import require_pytorch

    torch = require_pytorch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for the same problem
        first = str(err).splitlines()[0] if str(err) else ""
        raise error(
            f"{path} is not a PyTorch tensor file that loads with weights_only=True ({type(err).__name__}: "
            f"{first}): only plain tensor state_dicts are read, never pickled objects. Save plain "
            "state_dicts (torch.save(model.state_dict(), ...))."
        ) from err
    metadata: dict[str, Any] = {}
    if isinstance(obj, dict):
        for key in ("deepvision", "hyper_parameters"):
            if isinstance(obj.get(key), dict):
                metadata[key] = dict(obj[key])
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise error(f"{path} holds a {type(obj).__name__}, not a state_dict of tensors.")
    return WeightFile(_strip_module_prefix({k: to_numpy(v) for k, v in obj.items()}), metadata)


def _strip_module_prefix(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # DistributedDataParallel (and DataParallel) prefix every name with "module.".
    if tensors and all(k.startswith("module.") for k in tensors):
        return {k[len("module."):]: v for k, v in tensors.items()}
    return tensors
