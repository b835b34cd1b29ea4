"""Grad-CAM++ activation maps for TensorFlow/Keras and PyTorch models.

The backend modules (``activation_maps_tf``, ``activation_maps_pt``) only run the model and return
the target feature map ``A`` and the gradient ``g = dY_c/dA`` of the class score as numpy arrays.
Everything after that (Grad-CAM++ weights, the weighted sum, the upsampling, the normalisation)
is computed here, once, in float64 numpy: the two backends cannot drift apart in the maths, and
their heatmaps differ only by the float32 rounding of their forward and backward passes.

Grad-CAM++ (Chattopadhyay et al., 2018, "Grad-CAM++: Generalized Gradient-based Visual
Explanations for Deep Convolutional Networks"), closed form. With the class score ``Y = exp(S)``
of the pre-softmax logit ``S`` and a piecewise-linear network, the higher derivatives of ``Y``
are ``exp(S) * g**n`` with ``g = dS/dA``, so

    alpha_kij = g_kij**2 / (2 * g_kij**2 + sum_ab(A_kab) * g_kij**3)
    w_k       = sum_ij alpha_kij * relu(g_kij)          (times exp(S), dropped: see below)
    cam_ij    = relu(sum_k w_k * A_kij)

``exp(S)`` cancels in ``alpha`` and is a common factor of every ``w_k`` of an image, which the
per-image min-max normalisation removes; computing it would only overflow float32 for logits
above about 88.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepvision.backend import TENSORFLOW, BackendError, backend_of, require, resolve_backend
from deepvision.evaluation._arrays import to_numpy

# Layouts a backend can hand its raw target feature map back in.
CHANNELS_LAST = "channels_last"  # (N, h, w, K): Keras feature maps
CHANNELS_FIRST = "channels_first"  # (N, K, h, w): PyTorch feature maps
TOKENS = "tokens"  # (N, T, D): transformer tokens, both backends


# --------------------------------------------------------------------------------------------
# Shared maths (numpy, float64)
# --------------------------------------------------------------------------------------------


def gradcam_plus_plus_weights(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++ channel weights ``w_k`` from a feature map and the gradient of the class score.

    Args:
        activations: ``A``, shape (N, K, h, w), channels first.
        gradients: ``dS_c/dA`` of the pre-softmax class score, same shape.

    Returns:
        Weights of shape (N, K).
    """
    a = np.asarray(activations, dtype=np.float64)
    g = np.asarray(gradients, dtype=np.float64)
    if a.shape != g.shape or a.ndim != 4:
        raise ValueError(f"activations and gradients must both be (N, K, h, w); got {a.shape} and {g.shape}")
    g2 = g * g
    sum_a = a.sum(axis=(2, 3), keepdims=True)
    denominator = 2.0 * g2 + sum_a * g2 * g
    # Where the denominator vanishes the numerator does too when g == 0 (0/0 -> 0); otherwise the
    # original authors' guard applies: divide by 1 instead of 0.
    alpha = g2 / np.where(denominator != 0.0, denominator, 1.0)
    alpha = np.where(g != 0.0, alpha, 0.0)
    return (alpha * np.maximum(g, 0.0)).sum(axis=(2, 3))


def weighted_cam(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``relu(sum_k w_k A_k)``: (N, K, h, w) activations and (N, K) weights -> (N, h, w) maps."""
    a = np.asarray(activations, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    return np.maximum(np.einsum("nkhw,nk->nhw", a, w), 0.0)


def _bilinear_axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Half-pixel centres (align_corners=False): source = (dst + 0.5) * in/out - 0.5, clamped at 0,
    # exactly as torch's F.interpolate and TensorFlow's resize compute it.
    scale = in_size / out_size
    source = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, source - low


def bilinear_resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (N, h, w) maps to (N, H, W): half-pixel centres, no antialiasing.

    This is the resize of ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
    antialias=False)`` and of ``keras.ops.image.resize(interpolation="bilinear", antialias=False)``.
    It is implemented once here so that both backends' heatmaps go through the very same code.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, h, w); got shape {maps.shape}")
    out_h, out_w = (int(s) for s in size)
    _, in_h, in_w = maps.shape
    low, high, frac = _bilinear_axis(in_h, out_h)
    maps = maps[:, low, :] * (1.0 - frac)[None, :, None] + maps[:, high, :] * frac[None, :, None]
    low, high, frac = _bilinear_axis(in_w, out_w)
    return maps[:, :, low] * (1.0 - frac)[None, None, :] + maps[:, :, high] * frac[None, None, :]


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Per-image min-max normalisation of (N, H, W) maps to [0, 1]; a constant map becomes zeros."""
    maps = np.asarray(maps, dtype=np.float64)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0.0, (maps - low) / np.where(span > 0.0, span, 1.0), 0.0)


def gradcam_plus_plus(activations: np.ndarray, gradients: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grad-CAM++ heatmaps: (N, K, h, w) activations and gradients -> (N, H, W) float32 in [0, 1]."""
    cam = weighted_cam(activations, gradcam_plus_plus_weights(activations, gradients))
    return normalize_maps(bilinear_resize(cam, size)).astype(np.float32)


def token_grid(num_tokens: int, image_size: tuple[int, int], prefix_tokens: int | None = None,
               grid: tuple[int, int] | None = None) -> tuple[int, tuple[int, int]]:
    """How (N, T, D) tokens map onto the image: ``(prefix_tokens, (grid_h, grid_w))``.

    The prefix tokens (a class token, perhaps a distillation token) come first and are dropped.
    Unless given, the prefix is 1 (a class token), else 0, else 2, whichever leaves a patch count
    that factors into a grid with the image's aspect ratio (square patches).
    """
    height, width = image_size
    prefixes = (prefix_tokens,) if prefix_tokens is not None else (1, 0, 2)
    for prefix in prefixes:
        patches = num_tokens - prefix
        if patches <= 0:
            continue
        if grid is not None:
            if grid[0] * grid[1] == patches:
                return prefix, (int(grid[0]), int(grid[1]))
            continue
        for grid_h in range(1, patches + 1):
            grid_w, rest = divmod(patches, grid_h)
            if rest == 0 and grid_h * width == grid_w * height:
                return prefix, (grid_h, grid_w)
    raise ValueError(
        f"Cannot lay {num_tokens} tokens out on a patch grid for a {height}x{width} image; pass "
        "prefix_tokens= (tokens before the patch tokens, e.g. 1 for a class token) and/or "
        "token_grid=(grid_h, grid_w) to ActivationMaps."
    )


def to_channels_first_map(array: np.ndarray, layout: str, image_size: tuple[int, int],
                          prefix_tokens: int | None = None,
                          grid: tuple[int, int] | None = None) -> np.ndarray:
    """A captured target tensor in ``layout`` as an (N, K, h, w) feature map.

    Tokens (N, T, D) lose their prefix tokens and are laid out row-major on the patch grid, which
    is how both backends flatten a patch embedding: (N, D, grid_h, grid_w).
    """
    array = np.asarray(array, dtype=np.float64)
    if layout == CHANNELS_FIRST:
        return array
    if layout == CHANNELS_LAST:
        return array.transpose(0, 3, 1, 2)
    if layout == TOKENS:
        prefix, (grid_h, grid_w) = token_grid(array.shape[1], image_size, prefix_tokens, grid)
        patches = array[:, prefix:, :]
        return patches.reshape(array.shape[0], grid_h, grid_w, array.shape[2]).transpose(0, 3, 1, 2)
    raise ValueError(f"Unknown layout {layout!r}")


def layout_of_shape(shape: Sequence[Any], channels_last: bool) -> str | None:
    """The layout of a target tensor of ``shape``: tokens for rank 3, a feature map for rank 4."""
    if len(shape) == 3:
        return TOKENS
    if len(shape) == 4:
        return CHANNELS_LAST if channels_last else CHANNELS_FIRST
    return None


def resolve_class_indices(class_index: int | Sequence[int] | np.ndarray | None, logits: np.ndarray) -> np.ndarray:
    """Per-image class indices (N,): the argmax of the logits for None, else the given class(es)."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"ActivationMaps needs class scores of shape (N, classes); the model gave {logits.shape}")
    count, classes = logits.shape
    if class_index is None:
        return logits.argmax(axis=1).astype(np.int64)
    indices = np.asarray(class_index)
    if indices.ndim == 0:
        indices = np.full((count,), int(indices), dtype=np.int64)
    elif indices.shape != (count,):
        raise ValueError(f"class_index must be an int or one index per image ({count}); got shape {indices.shape}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"class_index must hold integers; got {indices.dtype}")
    if (indices < 0).any() or (indices >= classes).any():
        raise ValueError(f"class_index {indices.tolist()} out of range for {classes} classes")
    return indices.astype(np.int64)


@dataclasses.dataclass
class Captured:
    """What a backend hands back for one batch.

    ``activations`` and ``gradients`` are the target tensor and ``dS_c/d(target)`` in ``layout``;
    ``logits`` are (N, classes); ``class_indices`` (N,); ``image_size`` is the input's (H, W).
    """

    activations: np.ndarray
    gradients: np.ndarray
    layout: str
    logits: np.ndarray
    class_indices: np.ndarray
    image_size: tuple[int, int]


@dataclasses.dataclass
class ActivationResult:
    """Heatmaps (N, H, W) in [0, 1], the explained class of each image (N,) and the logits (N, classes)."""

    heatmaps: np.ndarray
    class_indices: np.ndarray
    logits: np.ndarray


# --------------------------------------------------------------------------------------------
# Public tool
# --------------------------------------------------------------------------------------------


def resolve_model_backend(model: Any, backend: str | None) -> str:
    """The backend of ``model``; ``backend`` (when given) must agree with it."""
    if backend is None:
        name = backend_of(model)
    else:
        name = resolve_backend(backend)
        found = backend_of(model)
        if found != name:
            raise BackendError(f"backend={backend!r} but the model is a {found} model ({type(model).__name__}).")
    return require(name)


class ActivationMaps:
    """Grad-CAM++ heatmaps of a TensorFlow/Keras or PyTorch classifier.

    ``ActivationMaps(model, target_layer=None, backend=None)``; ``backend`` defaults to the model's.

    Args:
        model: a ``keras.Model`` (functional: it needs ``model.inputs`` and layer outputs; deepvision
            TensorFlow models are functional) taking channels-last (N, H, W, C) images, or a
            ``torch.nn.Module`` taking channels-first (N, C, H, W) images. It must return
            pre-softmax class scores (N, classes), or a dict with such an ``"output"``. A final
            softmax layer (Keras ``Dense(activation="softmax")``, ``Activation("softmax")``,
            ``Softmax``; PyTorch ``nn.Softmax``/``nn.LogSoftmax``) is looked through.
        target_layer: the layer whose output is explained: a Keras layer or layer name, a PyTorch
            module or dotted module name (``model.get_submodule``). Its output must be a feature map
            (N, h, w, K) in Keras, (N, K, h, w) in PyTorch, or tokens (N, T, D) in either.
            ``None`` picks the last spatial feature map (spatial size above 1x1; in PyTorch a
            whole block's output rather than a conv inside it, which is what a functional Keras
            model shows as its layers, so both backends pick the same tensor), or for a ViT-like
            model the tokens entering its last transformer block (see below). A Keras target
            must be a top-level layer: one inside a nested model has no tensor in the outer graph.
        backend: ``"tensorflow"`` or ``"pytorch"`` (aliases accepted); must match the model.
        prefix_tokens: for token maps, how many tokens precede the patch tokens (default: found
            from the token count and image size; 1 for a class token).
        token_grid: for token maps, the patch grid (grid_h, grid_w) (default: found likewise).

    ViT-like models: the head reads the class token only, so the patch tokens at the *output* of
    the last block no longer reach the class score and have zero gradient. The default target is
    therefore the input of the last transformer block (the output of the one before): the last
    tokens whose patch entries still feed the class token, through the last block's attention.
    The class token is dropped and the patch tokens are reshaped to the patch grid.
    """

    def __init__(self, model: Any, target_layer: Any = None, backend: str | None = None, *,
                 prefix_tokens: int | None = None, token_grid: tuple[int, int] | None = None) -> None:
        self.model = model
        self.backend = resolve_model_backend(model, backend)
        self.prefix_tokens = prefix_tokens
        self.token_grid = token_grid
        if self.backend == TENSORFLOW:
            from deepvision.evaluation.activation_maps_tf import KerasGradientCapture

            self._capture = KerasGradientCapture(model, target_layer)
        else:
            from deepvision.evaluation.activation_maps_pt import TorchGradientCapture

            self._capture = TorchGradientCapture(model, target_layer)
        self.last_result: ActivationResult | None = None

    @property
    def target_description(self) -> str:
        """Which tensor is explained, in words (resolved on the first ``compute`` for PyTorch)."""
        return self._capture.description

    def explain(self, images: Any, class_index: int | Sequence[int] | None = None) -> ActivationResult:
        """Heatmaps plus the explained class indices and the logits; see :meth:`compute`."""
        captured: Captured = self._capture.capture(images, lambda logits: resolve_class_indices(class_index, logits))
        activations = to_channels_first_map(captured.activations, captured.layout, captured.image_size,
                                            self.prefix_tokens, self.token_grid)
        gradients = to_channels_first_map(captured.gradients, captured.layout, captured.image_size,
                                          self.prefix_tokens, self.token_grid)
        heatmaps = gradcam_plus_plus(activations, gradients, captured.image_size)
        self.last_result = ActivationResult(heatmaps, captured.class_indices, captured.logits)
        return self.last_result

    def compute(self, images: Any, class_index: int | Sequence[int] | None = None) -> np.ndarray:
        """Grad-CAM++ heatmaps at input resolution.

        Args:
            images: a batch in the model's own layout, (N, H, W, C) for Keras or (N, C, H, W) for
                PyTorch, as a numpy array or framework tensor (a single image without the batch
                axis is accepted too). Integer images are cast to float32.
            class_index: the class explained: ``None`` for each image's top logit, an int for all
                images, or one int per image.

        Returns:
            float32 numpy array (N, H, W) with values in [0, 1] (all zeros where the map is flat).
        """
        return self.explain(images, class_index).heatmaps

    def plot(self, images: Any, class_index: int | Sequence[int] | None = None,
             classnames: Sequence[str] | None = None, *, labels: Any = None, alpha: float = 0.5, cmap: str = "jet",
             ncols: int | None = None, figsize: tuple[float, float] | None = None,
             path: str | os.PathLike | None = None, show: bool = False, dpi: int = 100) -> Any:
        """Overlay the heatmaps on the images; returns the matplotlib Figure (saved as PNG at ``path``).

        Each image gets two panels: the input, and the input under its heatmap (``alpha`` opacity),
        titled with the explained class; one colour bar gives the heatmap scale. ``labels``
        (N,) class ids or (N, K) one-hot, when given, title the input panels with the true class.
        """
        from deepvision.evaluation import plotting

        result = self.explain(images, class_index)
        pictures = plotting.display_images(images, channels_last=self.backend == TENSORFLOW)
        titles = [
            ("predicted" if class_index is None else "class") + ": " + plotting.class_label(int(c), classnames)
            for c in result.class_indices
        ]
        count = len(pictures)
        truth = None
        if labels is not None:
            truth = np.asarray(to_numpy(labels))
            truth = truth.argmax(axis=1) if truth.ndim == 2 else truth.reshape(-1)
            if truth.shape[0] != count:
                raise ValueError(f"labels has {truth.shape[0]} entries for {count} images")
        ncols = max(1, min(ncols or min(count, 8), count))
        rows = math.ceil(count / ncols)
        if figsize is None:
            figsize = (2.2 * ncols + 1.2, 4.4 * rows)
        fig = plotting.new_figure(figsize, show)
        grid = fig.add_gridspec(2 * rows, ncols)
        for i, (picture, heatmap, title) in enumerate(zip(pictures, result.heatmaps, titles)):
            row, col = divmod(i, ncols)
            top = fig.add_subplot(grid[2 * row, col])
            plotting.show_image(top, picture)
            top.set_title(f"true: {plotting.class_label(int(truth[i]), classnames)}" if truth is not None
                          else f"input {i}", fontsize=9)
            bottom = fig.add_subplot(grid[2 * row + 1, col])
            plotting.show_image(bottom, picture)
            bottom.imshow(heatmap, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
            bottom.set_title(title, fontsize=9)
        # An opaque scale: the overlays' transparency would wash the colour bar out.
        colorbar = fig.colorbar(plotting.heat_scale(cmap), ax=fig.axes, shrink=0.8)
        colorbar.set_label("Grad-CAM++ relevance (0 to 1)")
        fig.suptitle(f"Grad-CAM++ ({self.target_description})", fontsize=10)
        plotting.finish(fig, path, show, dpi)
        return fig


__all__ = [
    "ActivationMaps",
    "ActivationResult",
    "gradcam_plus_plus",
    "gradcam_plus_plus_weights",
    "weighted_cam",
    "bilinear_resize",
    "normalize_maps",
    "token_grid",
]
