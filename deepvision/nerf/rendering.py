"""Volume rendering for NeRF, written once over a small table of array operations per backend.

A ray ``o + t d`` is sampled at distances ``t_1 < ... < t_S`` (stratified: evenly spaced from ``near``
to ``far``, each pushed forward by ``U(0, 1) * (far - near) / S`` with jitter, as the tiny NeRF loader
does). The model gives colour ``c_i`` and density ``sigma_i`` at each sample, and the paper's quadrature
composites them::

    delta_i = (t_{i+1} - t_i) * |d|   (delta_S = 1e10 * |d|: the last sample absorbs what is left)
    alpha_i = 1 - exp(-sigma_i delta_i)
    T_i     = exp(-sum_{j<i} sigma_j delta_j)            (transmittance: an exclusive cumulative sum)
    w_i     = T_i alpha_i
    rgb = sum_i w_i c_i,  depth = sum_i w_i t_i,  acc = sum_i w_i   (+ (1 - acc) for a white background)

Hierarchical sampling draws ``num_fine_samples`` more distances from the piecewise-constant density
given by the coarse weights (inverse transform sampling; the weights are not differentiated through),
merges them with the coarse ones and renders again. The same code runs on TensorFlow tensors (through
``keras.ops``) and on PyTorch tensors; with the same weights and samples both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deepvision.backend import PYTORCH, backend_of, require

FAR_DELTA = 1e10  # the length given to the last interval of every ray


class _TorchOps:
    def __init__(self) -> None:
        import torch

        self.torch = torch

    def tensor(self, x: Any) -> Any:
        t = self.torch
        return x.float() if isinstance(x, t.Tensor) else t.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    def concat(self, xs: list, axis: int) -> Any:
        return self.torch.cat(xs, dim=axis)

    def cumsum(self, x: Any, axis: int) -> Any:
        return self.torch.cumsum(x, dim=axis)

    def sum(self, x: Any, axis: int) -> Any:
        return self.torch.sum(x, dim=axis)

    def norm(self, x: Any) -> Any:
        return self.torch.sqrt(self.torch.sum(x * x, dim=-1, keepdim=True))

    def exp(self, x: Any) -> Any:
        return self.torch.exp(x)

    def reshape(self, x: Any, shape: tuple) -> Any:
        return self.torch.reshape(x, shape)

    def broadcast(self, x: Any, shape: tuple) -> Any:
        return self.torch.broadcast_to(x, shape)

    def shape(self, x: Any, axis: int) -> Any:
        return x.shape[axis]

    def stop_gradient(self, x: Any) -> Any:
        return x.detach()

    def sort(self, x: Any) -> Any:
        return self.torch.sort(x, dim=-1).values

    def take(self, x: Any, index: Any) -> Any:
        return self.torch.gather(x, -1, index)

    def count_at_most(self, cdf: Any, u: Any) -> Any:
        # For each u: how many cdf entries are <= u (the bin index + 1), as int64.
        return self.torch.sum((u[..., None] >= cdf[..., None, :]).long(), dim=-1)

    def clip_index(self, i: Any, low: int, high: int) -> Any:
        return self.torch.clamp(i, low, high)

    def where_small(self, x: Any, threshold: float) -> Any:
        return self.torch.where(x < threshold, self.torch.ones_like(x), x)

    def call(self, model: Callable, x: Any) -> Any:
        return model(x)


class _KerasOps(_TorchOps):
    def __init__(self) -> None:
        import keras

        self.ops = keras.ops

    def tensor(self, x: Any) -> Any:
        return self.ops.cast(self.ops.convert_to_tensor(x), "float32")

    def numpy(self, x: Any) -> np.ndarray:
        return self.ops.convert_to_numpy(x)

    def concat(self, xs: list, axis: int) -> Any:
        return self.ops.concatenate(xs, axis=axis)

    def cumsum(self, x: Any, axis: int) -> Any:
        return self.ops.cumsum(x, axis=axis)

    def sum(self, x: Any, axis: int) -> Any:
        return self.ops.sum(x, axis=axis)

    def norm(self, x: Any) -> Any:
        return self.ops.sqrt(self.ops.sum(x * x, axis=-1, keepdims=True))

    def exp(self, x: Any) -> Any:
        return self.ops.exp(x)

    def reshape(self, x: Any, shape: tuple) -> Any:
        return self.ops.reshape(x, shape)

    def broadcast(self, x: Any, shape: tuple) -> Any:
        return self.ops.broadcast_to(x, shape)

    def shape(self, x: Any, axis: int) -> Any:
        return self.ops.shape(x)[axis]

    def stop_gradient(self, x: Any) -> Any:
        return self.ops.stop_gradient(x)

    def sort(self, x: Any) -> Any:
        return self.ops.sort(x, axis=-1)

    def take(self, x: Any, index: Any) -> Any:
        return self.ops.take_along_axis(x, index, axis=-1)

    def count_at_most(self, cdf: Any, u: Any) -> Any:
        return self.ops.sum(self.ops.cast(u[..., None] >= cdf[..., None, :], "int32"), axis=-1)

    def clip_index(self, i: Any, low: int, high: int) -> Any:
        return self.ops.clip(i, low, high)

    def where_small(self, x: Any, threshold: float) -> Any:
        return self.ops.where(x < threshold, self.ops.ones_like(x), x)

    def call(self, model: Callable, x: Any) -> Any:
        return model(x, training=False) if hasattr(model, "trainable_weights") else model(x)


def ops_for(backend: str) -> _TorchOps:
    """The array operations of ``backend`` used by the renderer."""
    return _TorchOps() if require(backend) == PYTORCH else _KerasOps()


def stratified_distances(num_rays: int, near: float, far: float, num_samples: int,
                         noise: np.ndarray | None = None) -> np.ndarray:
    """Sample distances ``(num_rays, num_samples)`` float32: evenly spaced from ``near`` to ``far``
    inclusive, plus ``noise * (far - near) / num_samples`` when ``noise`` (same shape, in [0, 1)) is given.
    The same numbers as the tiny NeRF loader's ``sample_t_vals``."""
    base = np.linspace(near, far, num_samples, dtype=np.float64).astype(np.float32)
    t = np.broadcast_to(base, (num_rays, num_samples))
    if noise is None:
        return t.copy()
    return t + np.asarray(noise, np.float32) * np.float32((far - near) / num_samples)


def query(ops: _TorchOps, model: Callable, origins: Any, directions: Any, t: Any) -> Any:
    """Run ``model`` on every sample: points ``o + t d`` and unit directions -> raw ``(R, S, 4)``."""
    num_rays, num_samples = ops.shape(t, 0), ops.shape(t, 1)
    points = origins[:, None, :] + directions[:, None, :] * t[..., None]
    unit = directions / ops.norm(directions)
    views = ops.broadcast(unit[:, None, :], (num_rays, num_samples, 3))
    x = ops.reshape(ops.concat([points, views], axis=-1), (-1, 6))
    return ops.reshape(ops.call(model, x), (num_rays, num_samples, 4))


def composite(ops: _TorchOps, raw: Any, t: Any, directions: Any, white_background: bool = False) -> dict[str, Any]:
    """Alpha-composite raw ``(R, S, 4)`` samples at distances ``t (R, S)`` along ``directions (R, 3)``.

    Returns ``rgb (R, 3)``, ``depth (R,)``, ``acc (R,)`` and the per-sample ``weights (R, S)``.
    """
    rgb, sigma = raw[..., :3], raw[..., 3]
    far = t[:, :1] * 0.0 + FAR_DELTA
    deltas = ops.concat([t[:, 1:] - t[:, :-1], far], axis=-1) * ops.norm(directions)
    tau = sigma * deltas
    alpha = 1.0 - ops.exp(-tau)
    # Exclusive cumulative sum: subtracting tau from an inclusive one would cancel against the 1e10 interval.
    before = ops.concat([tau[:, :1] * 0.0, ops.cumsum(tau[:, :-1], axis=-1)], axis=-1)
    weights = alpha * ops.exp(-before)
    out = {
        "rgb": ops.sum(weights[..., None] * rgb, axis=1),
        "depth": ops.sum(weights * t, axis=-1),
        "acc": ops.sum(weights, axis=-1),
        "weights": weights,
    }
    if white_background:
        out["rgb"] = out["rgb"] + (1.0 - out["acc"][..., None])
    return out


def sample_fine(ops: _TorchOps, t: Any, weights: Any, num_fine_samples: int, u: Any) -> Any:
    """Inverse transform sampling of ``num_fine_samples`` distances per ray from the coarse ``weights``.

    The bins are the midpoints between coarse samples; the first and last weights (which touch no
    interior bin) are dropped and 1e-5 keeps empty rays well defined. ``u (R, F)`` in [0, 1) are the
    quantiles (evenly spaced without jitter). The weights are not differentiated through.
    """
    weights = ops.stop_gradient(weights)[:, 1:-1] + 1e-5
    mids = 0.5 * (t[:, 1:] + t[:, :-1])  # (R, S - 1) bin edges
    pdf = weights / ops.sum(weights, axis=-1)[:, None]
    cdf = ops.concat([pdf[:, :1] * 0.0, ops.cumsum(pdf, axis=-1)], axis=-1)  # (R, S - 1)
    last = int(mids.shape[-1]) - 1
    above = ops.clip_index(ops.count_at_most(cdf, u), 0, last)
    below = ops.clip_index(above - 1, 0, last)
    cdf_below, cdf_above = ops.take(cdf, below), ops.take(cdf, above)
    bin_below, bin_above = ops.take(mids, below), ops.take(mids, above)
    span = ops.where_small(cdf_above - cdf_below, 1e-5)
    fraction = (u - cdf_below) / span
    return ops.stop_gradient(bin_below + fraction * (bin_above - bin_below))


def render_with(
    ops: _TorchOps,
    model: Callable,
    origins: Any,
    directions: Any,
    t: Any,
    *,
    white_background: bool = False,
    num_fine_samples: int = 0,
    fine_quantiles: Any = None,
    fine_model: Callable | None = None,
) -> dict[str, Any]:
    """Render rays at the given coarse distances ``t (R, S)`` (backend tensors in and out)."""
    coarse = composite(ops, query(ops, model, origins, directions, t), t, directions, white_background)
    if not num_fine_samples:
        return coarse
    fine_t = sample_fine(ops, t, coarse["weights"], num_fine_samples, fine_quantiles)
    merged = ops.sort(ops.concat([t, fine_t], axis=-1))
    fine = composite(ops, query(ops, fine_model or model, origins, directions, merged), merged, directions,
                     white_background)
    fine.update({f"{k}_coarse": v for k, v in coarse.items() if k != "weights"})
    return fine


def fine_quantiles(num_rays: int, num_fine_samples: int, noise: np.ndarray | None = None) -> np.ndarray:
    """Quantiles ``(R, F)`` for :func:`sample_fine`: evenly spaced in [0, 1], or ``noise`` itself."""
    if noise is not None:
        return np.asarray(noise, np.float32)
    return np.broadcast_to(np.linspace(0.0, 1.0, num_fine_samples, dtype=np.float32),
                           (num_rays, num_fine_samples)).copy()


def render_rays(
    model: Callable,
    origins: Any,
    directions: Any,
    near: float,
    far: float,
    num_samples: int,
    jitter: bool = False,
    white_background: bool = False,
    *,
    num_fine_samples: int = 0,
    fine_model: Callable | None = None,
    t_vals: Any = None,
    seed: int | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """Render rays through a NeRF model.

    Args:
        model: a deepvision NeRF (either backend), or any callable ``(N, 6) -> (N, 4)`` of ``backend``.
        origins: ``(R, 3)`` ray origins (numpy or backend tensors).
        directions: ``(R, 3)`` ray directions (any length; the view direction given to the model is unit).
        near, far: the sampled interval of every ray.
        num_samples: coarse samples per ray.
        jitter: stratified sampling (each sample pushed forward by a uniform fraction of its interval).
            The noise is drawn with numpy from ``seed``, so both backends get the same samples.
        white_background: composite over white instead of black.
        num_fine_samples: hierarchical sampling: this many more samples drawn from the coarse weights.
        fine_model: the model for the fine pass (default: ``model``).
        t_vals: explicit coarse distances ``(R, S)`` (e.g. the tiny NeRF loader's), instead of near/far.
        seed: seed of the jitter noise.
        backend: the backend of a plain callable ``model``; taken from a deepvision model otherwise.

    Returns:
        Backend tensors: ``rgb (R, 3)``, ``depth (R,)``, ``acc (R,)``, ``weights (R, S')``, and with
        fine sampling also ``rgb_coarse``, ``depth_coarse``, ``acc_coarse``.
    """
    if num_samples < 2 and t_vals is None:
        raise ValueError(f"num_samples must be at least 2, got {num_samples}.")
    if not near < far:
        raise ValueError(f"near must be smaller than far, got near={near}, far={far}.")
    ops = ops_for(backend or backend_of(model))
    origins, directions = ops.tensor(origins), ops.tensor(directions)
    for name, value in (("origins", origins), ("directions", directions)):
        if len(value.shape) != 2 or int(value.shape[-1]) != 3:
            raise ValueError(f"render_rays: {name} must have shape (R, 3), got {tuple(value.shape)}.")
    num_rays = int(origins.shape[0])
    rng = np.random.default_rng(seed) if jitter else None
    if t_vals is None:
        noise = rng.random((num_rays, num_samples), dtype=np.float32) if jitter else None
        t_vals = stratified_distances(num_rays, near, far, num_samples, noise)
    quantiles = None
    if num_fine_samples:
        quantiles = ops.tensor(fine_quantiles(
            num_rays, num_fine_samples,
            np.sort(rng.random((num_rays, num_fine_samples), dtype=np.float32), axis=-1) if jitter else None))
    return render_with(ops, model, origins, directions, ops.tensor(t_vals), white_background=white_background,
                       num_fine_samples=num_fine_samples, fine_quantiles=quantiles, fine_model=fine_model)


def render_image(
    model: Callable,
    pose: np.ndarray,
    focal: float,
    height: int,
    width: int,
    near: float = 2.0,
    far: float = 6.0,
    num_samples: int = 64,
    *,
    num_fine_samples: int = 0,
    fine_model: Callable | None = None,
    white_background: bool = False,
    chunk: int = 4096,
    backend: str | None = None,
) -> dict[str, np.ndarray]:
    """Render one view, ``chunk`` rays at a time (memory bounded by the chunk, not the image).

    ``pose`` is a camera-to-world matrix (4, 4) in the tiny NeRF convention. Returns numpy arrays
    ``rgb (H, W, 3)``, ``depth (H, W)``, ``acc (H, W)``. No gradients are kept.
    """
    from deepvision.datasets.tiny_nerf.common import camera_rays

    backend = backend or backend_of(model)
    origins, directions = (a.reshape(-1, 3) for a in camera_rays(height, width, focal, pose))
    ops = ops_for(backend)
    parts: dict[str, list[np.ndarray]] = {"rgb": [], "depth": [], "acc": []}
    context = _no_grad(backend)
    with context:
        for start in range(0, len(origins), chunk):
            out = render_rays(model, origins[start:start + chunk], directions[start:start + chunk], near, far,
                              num_samples, False, white_background, num_fine_samples=num_fine_samples,
                              fine_model=fine_model, backend=backend)
            for key in parts:
                parts[key].append(ops.numpy(out[key]))
    shapes = {"rgb": (height, width, 3), "depth": (height, width), "acc": (height, width)}
    return {k: np.concatenate(v).reshape(shapes[k]) for k, v in parts.items()}


def _no_grad(backend: str) -> Any:
    if backend == PYTORCH:
        import torch

        return torch.no_grad()
    import contextlib

    return contextlib.nullcontext()


__all__ = ["composite", "ops_for", "render_image", "render_rays", "stratified_distances"]
