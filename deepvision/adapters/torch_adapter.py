"""PyTorch adapter: converts torch layouts to the canonical (Keras) layouts and back."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import ml_dtypes
import numpy as np
import torch
from torch import nn

from deepvision.adapters import Slot

# Permutations from torch layout to canonical layout; the inverse permutation goes back.
_CONV_TO_CANONICAL = (2, 3, 1, 0)  # (out, in/g, kh, kw) -> (kh, kw, in/g, out)
_DEPTHWISE_TO_CANONICAL = (2, 3, 0, 1)  # (in, mult, kh, kw) -> (kh, kw, in, mult)
_DENSE_TO_CANONICAL = (1, 0)  # (out, in) -> (in, out)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A torch tensor as a numpy array (bfloat16 through ml_dtypes)."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def from_numpy(array: np.ndarray) -> torch.Tensor:
    """A numpy array (possibly read-only, possibly bfloat16) as a torch tensor without a copy."""
    if array.dtype == ml_dtypes.bfloat16:
        return from_numpy(array.view(np.int16)).view(torch.bfloat16)
    with warnings.catch_warnings():
        # Memory-mapped checkpoint views are read-only; we only ever copy out of them.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(perm.index(i) for i in range(len(perm)))


def _slot(name: str, tensor: torch.Tensor, role: str, trainable: bool, perm=None, view=None) -> Slot:
    """A slot for ``tensor``; canonical = ``tensor.view(view).permute(perm)``."""
    source_shape = tuple(tensor.shape)
    canonical_shape = tuple(tensor.shape) if view is None else view
    if perm is not None:
        canonical_shape = tuple(canonical_shape[i] for i in perm)

    def to_canonical(value: torch.Tensor) -> np.ndarray:
        value = value.detach().view(view) if view is not None else value.detach()
        value = value.permute(perm) if perm is not None else value
        dense = value.contiguous()
        # A fresh array either way: copy only when contiguous() handed back the live storage.
        return to_numpy(dense).copy() if dense.data_ptr() == value.data_ptr() else to_numpy(dense)

    def read() -> np.ndarray:
        return to_canonical(tensor)

    def write(array: np.ndarray) -> None:
        if tuple(array.shape) != canonical_shape:
            raise ValueError(f"{name}: expected canonical shape {canonical_shape}, got {tuple(array.shape)}")
        source = from_numpy(np.asarray(array))
        if perm is not None:
            source = source.permute(_inverse(perm))
        with torch.no_grad():
            tensor.copy_(source.reshape(source_shape))

    dtype = "bfloat16" if tensor.dtype == torch.bfloat16 else str(tensor.dtype).replace("torch.", "")
    return Slot(name, canonical_shape, dtype, role, trainable, read, write, tensor, to_canonical)


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels


def _leaf_slots(module: nn.Module, prefix: str) -> list[Slot] | None:
    if isinstance(module, nn.Conv2d):
        slots = []
        if _is_depthwise(module):
            out, _, kh, kw = module.weight.shape
            view = (module.in_channels, out // module.in_channels, kh, kw)
            slots.append(_slot(prefix + "depthwise_kernel", module.weight, "weight",
                               module.weight.requires_grad, _DEPTHWISE_TO_CANONICAL, view))
        else:
            slots.append(_slot(prefix + "kernel", module.weight, "weight", module.weight.requires_grad,
                               _CONV_TO_CANONICAL))
        if module.bias is not None:
            slots.append(_slot(prefix + "bias", module.bias, "bias", module.bias.requires_grad))
        return slots
    if isinstance(module, nn.Linear):
        slots = [_slot(prefix + "kernel", module.weight, "weight", module.weight.requires_grad,
                       _DENSE_TO_CANONICAL)]
        if module.bias is not None:
            slots.append(_slot(prefix + "bias", module.bias, "bias", module.bias.requires_grad))
        return slots
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
        slots = []
        if module.weight is not None:
            slots.append(_slot(prefix + "gamma", module.weight, "norm", module.weight.requires_grad))
            slots.append(_slot(prefix + "beta", module.bias, "norm", module.bias.requires_grad))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            slots.append(_slot(prefix + "moving_mean", module.running_mean, "statistic", False))
            slots.append(_slot(prefix + "moving_variance", module.running_var, "statistic", False))
        return slots
    return None


def _walk(module: nn.Module, prefix: str, seen: set[int]) -> Iterator[Slot]:
    leaf = _leaf_slots(module, prefix)
    if leaf is not None:
        yield from leaf
        for tensor in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
            seen.add(id(tensor))
        return
    for name, param in module.named_parameters(recurse=False):
        if id(param) not in seen:
            seen.add(id(param))
            yield _slot(prefix + name, param, "embedding", param.requires_grad)
    for name, buffer in module.named_buffers(recurse=False):
        # Only persistent floating buffers are state (Keras has no integer counters).
        if name in module._non_persistent_buffers_set or not buffer.is_floating_point():
            continue
        if id(buffer) not in seen:
            seen.add(id(buffer))
            yield _slot(prefix + name, buffer, "statistic", False)
    for name, child in module.named_children():
        if id(child) not in seen:
            seen.add(id(child))
            yield from _walk(child, f"{prefix}{name}.", seen)


def iter_slots(module: nn.Module) -> Iterator[Slot]:
    """Every parameter and persistent floating buffer of ``module`` under its canonical name."""
    seen: set[int] = {id(module)}
    slots = list(_walk(module, "", seen))
    missed = [n for n, p in module.named_parameters() if id(p) not in seen]
    if missed:
        raise TypeError(f"{type(module).__name__} holds parameters no leaf converter covers: {missed[:5]}")
    return iter(slots)
