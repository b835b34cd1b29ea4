"""Keras NeRF training: a ``keras.Model`` whose call renders ray batches (mirrors ``trainer_pt.py``).

Rendering happens in ``call``, so Keras's own ``train_step`` (``compile``/``fit``, XLA, distribution
strategies) trains the NeRF through it with nothing but ``keras.ops``; the wrapped NeRF MLP is the
model to save (``deepvision.save_portable(trainer.nerf, ...)``).
"""

from __future__ import annotations

from typing import Any

import keras

from deepvision.nerf.rays import rays_from_samples
from deepvision.nerf.rendering import fine_quantiles, ops_for, render_with, stratified_distances


@keras.saving.register_keras_serializable(package="deepvision")
class PSNR(keras.metrics.Metric):
    """Peak signal-to-noise ratio of colours in [0, 1]: ``-10 log10(mean squared error)``, over all
    pixels seen since the last reset."""

    def __init__(self, name: str = "psnr", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.squared = self.add_variable(shape=(), initializer="zeros", name="squared")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        error = keras.ops.square(keras.ops.cast(y_true, "float32") - keras.ops.cast(y_pred, "float32"))
        self.squared.assign_add(keras.ops.sum(error))
        self.count.assign_add(keras.ops.cast(keras.ops.size(error), "float32"))

    def result(self):
        mse = self.squared / keras.ops.maximum(self.count, 1.0)
        return -10.0 * keras.ops.log(mse) / keras.ops.log(10.0)

    def reset_state(self) -> None:
        self.squared.assign(0.0)
        self.count.assign(0.0)


class NeRFTrainerTF(keras.Model):
    """Renders ray batches through ``nerf``; same arguments as :class:`deepvision.nerf.NeRFTrainer`.

    Input: ``(origins (B, 3), directions (B, 3))``, or a tiny NeRF loader element's
    ``(rays (B, H*W*S, 3 + 6L), t_vals (B, H, W, S))``. Output: ``rgb (B, 3)`` or ``(B, H, W, 3)``.
    """

    def __init__(self, nerf: keras.Model, near: float = 2.0, far: float = 6.0, num_samples: int = 64,
                 num_fine_samples: int = 0, jitter: bool = True, white_background: bool = False,
                 seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.nerf = nerf
        self.near, self.far, self.num_samples = float(near), float(far), int(num_samples)
        self.num_fine_samples = int(num_fine_samples)
        self.jitter, self.white_background = bool(jitter), bool(white_background)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compile(self, optimizer: Any = None, loss: Any = "mse", metrics: Any = None, **kwargs) -> None:
        """Keras ``compile`` with NeRF's defaults: Adam(5e-4), mean squared error, PSNR."""
        optimizer = keras.optimizers.Adam(5e-4) if optimizer is None else optimizer
        super().compile(optimizer=optimizer, loss=loss, metrics=[PSNR()] if metrics is None else metrics, **kwargs)

    def call(self, inputs, training: bool = False):
        ops = ops_for("tensorflow")
        first, second = inputs
        image_shape = None
        if len(first.shape) == 3:  # a tiny NeRF loader element: encoded samples and their distances
            image_shape = keras.ops.shape(second)[:-1]
            t = keras.ops.reshape(second, (-1, second.shape[-1]))
            points = keras.ops.reshape(first[..., :3], (-1, second.shape[-1], 3))
            origins, directions = rays_from_samples(points, t)
        else:
            origins, directions = first, second
            num_rays = keras.ops.shape(origins)[0]
            t = keras.ops.convert_to_tensor(stratified_distances(1, self.near, self.far, self.num_samples))
            t = keras.ops.broadcast_to(t, (num_rays, self.num_samples))
            if training and self.jitter:
                noise = keras.random.uniform((num_rays, self.num_samples), seed=self.seed_generator)
                t = t + noise * ((self.far - self.near) / self.num_samples)
        quantiles = None
        if self.num_fine_samples:
            rows = keras.ops.shape(t)[0]
            if training and self.jitter:
                quantiles = keras.ops.sort(keras.random.uniform((rows, self.num_fine_samples),
                                                                seed=self.seed_generator))
            else:
                quantiles = keras.ops.broadcast_to(
                    keras.ops.convert_to_tensor(fine_quantiles(1, self.num_fine_samples)),
                    (rows, self.num_fine_samples))
        rgb = render_with(ops, self.nerf, origins, directions, t, white_background=self.white_background,
                          num_fine_samples=self.num_fine_samples, fine_quantiles=quantiles)["rgb"]
        if image_shape is not None:
            rgb = keras.ops.reshape(rgb, (*image_shape, 3))
        return rgb
