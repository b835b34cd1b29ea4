"""Call-time input checks shared by both backends (no framework import), in Kornia's
``KORNIA_CHECK_SHAPE`` style: a wrong input fails at the block or model that cannot take it, with
a message naming the problem, the expected and the received shape, instead of deep inside a conv.

Both backends call the same function with the received shape and their layout, so the same mistake
raises the same exception type and the same message; only the two shapes at the end are written in
the backend's own layout::

    MBConv: expected 8 input channels, got 4; expected shape (B, 8, H, W), got (2, 4, 9, 11)
    MBConv: expected 8 input channels, got 4; expected shape (B, H, W, 8), got (2, 9, 11, 4)

Unknown sizes (``None``, as in a symbolic Keras input) are never checked.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

CHANNELS_LAST = "channels_last"  # Keras: (B, H, W, C)
CHANNELS_FIRST = "channels_first"  # PyTorch: (B, C, H, W)
_SEPARATOR = "; expected shape "


class InputShapeError(ValueError):
    """An input a block or model cannot take (a ``ValueError``, so existing handlers still catch it)."""


def problem_of(message: str) -> str:
    """The layout-free part of a check's message (what both backends say word for word)."""
    return message.split(_SEPARATOR)[0]


def _shape(shape: Any) -> tuple[int | None, ...] | None:
    """A shape as a tuple of ints / ``None``; ``None`` for anything without a shape (e.g. a list of inputs)."""
    if shape is None or isinstance(shape, (str, bytes)):
        return None
    try:
        dims = tuple(shape)
    except TypeError:
        return None
    # Only plain integers are checked: a symbolic size (None, torch.export's SymInt for a dynamic
    # batch) stays unknown, so a check never specialises or guards a traced dimension.
    return tuple(int(d) if isinstance(d, numbers.Integral) else None for d in dims)


def _format(dims: Sequence[Any]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in dims) + ")"


def fail(name: str, problem: str, expected: Sequence[Any], shape: Sequence[Any]) -> None:
    """Raise :class:`InputShapeError` as every check does: ``"{name}: {problem}; expected shape E, got S"``."""
    raise InputShapeError(f"{name}: {problem}{_SEPARATOR}{_format(expected)}, got {_format(shape)}")


def image_dims(height: Any, width: Any, channels: Any, layout: str) -> tuple[Any, ...]:
    """An image batch's axes in ``layout``: ``("B", H, W, C)`` or ``("B", C, H, W)``."""
    return ("B", height, width, channels) if layout == CHANNELS_LAST else ("B", channels, height, width)


def check_image(
    name: str,
    shape: Any,
    layout: str,
    *,
    channels: int | None = None,
    min_size: int | None = None,
    multiple_of: int | None = None,
    size: Sequence[int | None] | None = None,
    unit: str = "patch",
) -> None:
    """Check a batch of images ``(B, H, W, C)`` (``channels_last``) or ``(B, C, H, W)`` (``channels_first``).

    Args:
        name: the block or model, first word of the message.
        shape: the received shape, batch axis included (anything without a shape is not checked).
        layout: :data:`CHANNELS_LAST` or :data:`CHANNELS_FIRST`.
        channels: the channel count C the weights were made for.
        min_size: the smallest height and width the strides allow (e.g. one patch).
        multiple_of: height and width must be multiples of it (e.g. the patch size).
        size: the (H, W) the weights were made for (``None`` entries: any).
        unit: what ``min_size`` / ``multiple_of`` measure, for the message (``"patch"``).

    Raises:
        InputShapeError: naming the problem, the expected and the received shape.
    """
    if channels is not None and min_size is None and multiple_of is None and size is None:
        # The common case in every block's forward, answered without building tuples (8 us -> <1 us
        # a call); a plain int only, so a symbolic size is never compared (no guard in torch.export).
        try:
            got = shape[1 if layout == CHANNELS_FIRST else 3] if len(shape) == 4 else None
        except (TypeError, IndexError):
            got = None
        if type(got) is int and got == channels:
            return
    dims = _shape(shape)
    if dims is None:
        return
    height = size[0] if size is not None else "H"
    width = size[1] if size is not None else "W"
    c = channels if channels is not None else "C"
    expected = image_dims(height, width, c, layout)
    if len(dims) != 4:
        fail(name, f"expected a 4D batch of images, got a {len(dims)}D input", expected, dims)
    h, w, got = (dims[1], dims[2], dims[3]) if layout == CHANNELS_LAST else (dims[2], dims[3], dims[1])
    if channels is not None and got is not None and got != channels:
        fail(name, f"expected {channels} input channels, got {got}", expected, dims)
    known = [s for s in (h, w) if s is not None]
    if min_size is not None and any(s < min_size for s in known):
        fail(name, f"images of {h}x{w} are smaller than one {min_size}x{min_size} {unit}", expected, dims)
    if multiple_of is not None and any(s % multiple_of for s in known):
        fail(name, f"image size {h}x{w} is not divisible by the {unit} size {multiple_of}", expected, dims)
    if size is not None and any(a is not None and b is not None and a != b for a, b in zip(size, (h, w))):
        fail(name, f"made for images of {size[0]}x{size[1]} (input_shape), got {h}x{w}", expected, dims)


def check_tokens(name: str, shape: Any, *, dim: int | None = None, rank: int | None = 3, hint: str = "") -> None:
    """Check tokens ``(B, N, D)`` (the same layout in both backends), or ``(..., D)`` with ``rank=None``.

    Args:
        name: the block or model, first word of the message.
        shape: the received shape, batch axis included (anything without a shape is not checked).
        dim: the feature width D the weights were made for.
        rank: the number of axes (3 for ``(B, N, D)``); ``None`` accepts any rank of at least 2.
        hint: appended to a wrong-width message (the fix, e.g. ``"set input_dim"``).

    Raises:
        InputShapeError: naming the problem, the expected and the received shape.
    """
    dims = _shape(shape)
    if dims is None:
        return
    d = dim if dim is not None else "D"
    expected = ("B", "N", d) if rank == 3 else ("B", "...", d)
    if rank is not None and len(dims) != rank:
        fail(name, f"expected a {rank}D batch of tokens, got a {len(dims)}D input", expected, dims)
    if len(dims) < 2:
        fail(name, f"expected a batch of feature vectors, got a {len(dims)}D input", expected, dims)
    if dim is not None and dims[-1] is not None and dims[-1] != dim:
        fail(name, f"expected {dim} features per token, got {dims[-1]}{': ' + hint if hint else ''}", expected, dims)


def check_model_input(name: str, config: dict[str, Any], shape: Any, layout: str) -> None:
    """The call-time check every image model runs before its first layer (both backends' base classes).

    An image model is one whose config has an ``input_shape`` (image shape without the batch, in the
    backend's layout, or ``None`` for 3 channels at any size): its input must be a 4D batch with that
    many channels. Other models (e.g. NeRF's rays) are not checked here. Sizes are the families' own
    business (a ViT's patch embedding checks its patch grid).

    Raises:
        InputShapeError: naming the problem, the expected and the received shape.
    """
    if "input_shape" not in config:
        return
    image = config["input_shape"]
    if image is not None and len(image) != 3:
        return
    channels = 3 if image is None else (image[-1] if layout == CHANNELS_LAST else image[0])
    check_image(name, shape, layout, channels=None if channels is None else int(channels))
