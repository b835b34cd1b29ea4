"""The demo's dataset: scikit-learn's 1,797 handwritten digits (8x8, shipped with it), upscaled.

No download: ``sklearn.datasets.load_digits`` reads a file inside the scikit-learn package.
"""

from __future__ import annotations

import numpy as np

DIGIT_CLASSES = tuple(str(d) for d in range(10))


def _linear_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) bilinear interpolation matrix, half-pixel centres, edges clamped.

    The same sampling as ``tf.image.resize(method="bilinear")`` and PyTorch's
    ``interpolate(mode="bilinear", align_corners=False)`` without antialiasing.
    """
    src = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    src = np.clip(src, 0.0, size_in - 1)
    low = np.floor(src).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    frac = src - low
    weights = np.zeros((size_out, size_in))
    np.add.at(weights, (np.arange(size_out), low), 1.0 - frac)
    np.add.at(weights, (np.arange(size_out), high), frac)
    return weights


def resize_images(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a batch of single-channel images ``(N, h, w)`` to ``(N, H, W)`` (numpy)."""
    height, width = (size, size) if isinstance(size, int) else size
    rows = _linear_weights(images.shape[1], height)
    cols = _linear_weights(images.shape[2], width)
    return np.einsum("Hh,nhw,Ww->nHW", rows, images.astype(np.float64), cols)


def load_digits_images(
    size: int = 32,
    *,
    channels: int = 3,
    test_fraction: float = 0.2,
    seed: int = 0,
    channels_first: bool = False,
    dtype: str = "float32",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The digits as ``(x_train, y_train), (x_test, y_test)``, like ``keras.datasets.*.load_data()``.

    Args:
        size: output height and width (the originals are 8x8; bilinear upscaling).
        channels: 1, or 3 (the grey image repeated, for models that expect RGB).
        test_fraction: share of the 1,797 images held out (0.2 -> 1,438 train / 359 test).
        seed: the split is a fixed permutation drawn with ``numpy.random.default_rng(seed)``,
            the same on every machine and numpy version.
        channels_first: ``False`` gives ``(N, size, size, channels)`` (Keras layout), ``True``
            gives ``(N, channels, size, size)`` (PyTorch layout).
        dtype: dtype of the images; values lie in [0, 1].

    Returns:
        Images as above and labels ``(N,)`` int64 in 0..9.
    """
    from sklearn.datasets import load_digits

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    digits = load_digits()
    images = resize_images(digits.images / 16.0, size)  # the originals hold 0..16
    images = np.clip(images, 0.0, 1.0)[..., None].repeat(channels, axis=-1).astype(dtype)
    if channels_first:
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])
