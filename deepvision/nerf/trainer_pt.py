"""Lightning NeRF training: a LightningModule whose ``training_step`` renders ray batches
(mirrors ``trainer_tf.py``)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from deepvision.nerf.rays import rays_from_samples
from deepvision.nerf.rendering import fine_quantiles, ops_for, render_with, stratified_distances


def psnr(mse: torch.Tensor) -> torch.Tensor:
    """``-10 log10(mse)`` for colours in [0, 1]."""
    return -10.0 * torch.log10(mse)


class NeRFTrainerPT(pl.LightningModule):
    """Renders ray batches through ``nerf``; same arguments as :class:`deepvision.nerf.NeRFTrainer`,
    plus ``learning_rate`` of its Adam optimizer.

    Batches: ``(origins (B, 3), directions (B, 3), colours (B, 3))``, or a tiny NeRF loader element
    ``(images (B, H, W, 3), (rays (B, H*W*S, 3 + 6L), t_vals (B, H, W, S)))``. Logs ``train_loss``
    (mean squared error) and ``train_psnr`` (``val_`` in validation).
    """

    def __init__(self, nerf: torch.nn.Module, near: float = 2.0, far: float = 6.0, num_samples: int = 64,
                 num_fine_samples: int = 0, jitter: bool = True, white_background: bool = False,
                 seed: int = 0, learning_rate: float = 5e-4) -> None:
        super().__init__()
        self.nerf = nerf
        self.near, self.far, self.num_samples = float(near), float(far), int(num_samples)
        self.num_fine_samples = int(num_fine_samples)
        self.jitter, self.white_background = bool(jitter), bool(white_background)
        self.learning_rate = float(learning_rate)
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Rendered colours of ``(origins, directions)`` or of loader samples ``(rays, t_vals)``."""
        ops = ops_for("pytorch")
        image_shape = None
        if first.dim() == 3:
            image_shape = second.shape[:-1]
            t = second.reshape(-1, second.shape[-1]).float()
            origins, directions = rays_from_samples(first[..., :3].reshape(t.shape[0], t.shape[1], 3).float(), t)
        else:
            origins, directions = first.float(), second.float()
            t = torch.from_numpy(stratified_distances(origins.shape[0], self.near, self.far, self.num_samples))
            t = t.to(origins.device)
            if self.training and self.jitter:
                noise = torch.rand(t.shape, generator=self.generator).to(origins.device)
                t = t + noise * ((self.far - self.near) / self.num_samples)
        quantiles = None
        if self.num_fine_samples:
            if self.training and self.jitter:
                quantiles = torch.sort(torch.rand((t.shape[0], self.num_fine_samples), generator=self.generator),
                                       dim=-1).values.to(t.device)
            else:
                quantiles = torch.from_numpy(fine_quantiles(t.shape[0], self.num_fine_samples)).to(t.device)
        rgb = render_with(ops, self.nerf, origins, directions, t, white_background=self.white_background,
                          num_fine_samples=self.num_fine_samples, fine_quantiles=quantiles)["rgb"]
        return rgb if image_shape is None else rgb.reshape(*image_shape, 3)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        if len(batch) == 3:
            origins, directions, target = batch
            rgb = self(origins, directions)
        else:
            target, (rays, t_vals) = batch
            rgb = self(rays, t_vals)
        loss = torch.mean((rgb - target.float()) ** 2)
        if self._trainer is not None:
            size = int(target.shape[0])
            self.log(f"{stage}_loss", loss, prog_bar=True, on_step=stage == "train", on_epoch=True, batch_size=size)
            self.log(f"{stage}_psnr", psnr(loss.detach()), prog_bar=True, on_step=stage == "train",
                     on_epoch=True, batch_size=size)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.nerf.parameters(), lr=self.learning_rate)


__all__ = ["NeRFTrainerPT", "psnr"]
