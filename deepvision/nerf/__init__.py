"""NeRF: rendering, training and pictures for the ``NeRF`` models, in both backends.

```python
import deepvision
from deepvision import nerf

model = deepvision.models.NeRFSmall(backend="pytorch")            # (N, 6) -> (N, 4): rgb, density
out = nerf.render_rays(model, origins, directions, near=2.0, far=6.0, num_samples=64)
out["rgb"], out["depth"], out["acc"]                               # (R, 3), (R,), (R,)
view = nerf.render_image(model, pose, focal, 100, 100)             # numpy, rendered in chunks
trainer = nerf.NeRFTrainer(model, num_samples=64)                  # LightningModule / keras.Model
```

Nothing here imports a framework until it is used.
"""

from __future__ import annotations

from typing import Any

from deepvision.backend import PYTORCH, backend_of
from deepvision.nerf.rays import image_rays, rays_from_samples
from deepvision.nerf.rendering import composite, render_image, render_rays, stratified_distances
from deepvision.nerf.scene import make_scene, orbit_poses, render_spheres, save_scene
from deepvision.nerf.visualize import save_orbit, save_views


def NeRFTrainer(nerf: Any, near: float = 2.0, far: float = 6.0, num_samples: int = 64, num_fine_samples: int = 0,
                jitter: bool = True, white_background: bool = False, seed: int = 0, **kwargs: Any) -> Any:
    """Wrap a NeRF model for training by rendering ray batches, in the model's backend.

    TensorFlow: a ``keras.Model`` whose call renders ``(origins, directions)`` (or tiny NeRF loader
    samples) into colours: ``compile()`` (defaults: Adam(5e-4), MSE, PSNR) and ``fit`` on a ``tf.data``
    of ``((origins, directions), colours)``. PyTorch: a ``LightningModule`` whose ``training_step``
    renders ``(origins, directions, colours)`` batches and logs ``train_loss`` and ``train_psnr``
    (``learning_rate=`` sets its Adam). Samples are stratified (``jitter``) in training and evenly
    spaced otherwise; ``num_fine_samples`` adds hierarchical sampling.
    """
    if backend_of(nerf) == PYTORCH:
        from deepvision.nerf.trainer_pt import NeRFTrainerPT as cls
    else:
        from deepvision.nerf.trainer_tf import NeRFTrainerTF as cls
    return cls(nerf, near, far, num_samples, num_fine_samples, jitter, white_background, seed, **kwargs)


__all__ = [
    "NeRFTrainer", "composite", "image_rays", "make_scene", "orbit_poses", "rays_from_samples", "render_image",
    "render_rays", "render_spheres", "save_orbit", "save_scene", "save_views", "stratified_distances",
]
