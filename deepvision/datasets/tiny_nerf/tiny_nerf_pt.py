"""PyTorch side of the tiny NeRF loader: a map-style ``torch.utils.data.Dataset``.

Rays are computed with the NumPy reference code of :mod:`.common` in ``__getitem__``, one
image at a time: at the default sizes one element holds 126 MB of rays, so they are never
precomputed for the whole file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepvision.backend import require_pytorch
from deepvision.datasets.tiny_nerf import common
from deepvision.datasets.tiny_nerf.files import TinyNerfData

torch = require_pytorch()


class TinyNerfDataset(torch.utils.data.Dataset):
    """Images of the tiny NeRF scene with the encoded sample points of their camera rays.

    Element ``k`` is ``(image, (rays, t_vals))``, all float32 tensors:

    - image: (H, W, 3) in [0, 1], channels last as in the file;
    - rays: (H * W * num_ray_samples, 3 + 6 * pos_embed), encoded points in (row, column,
      sample) order;
    - t_vals: (H, W, num_ray_samples), the distance of each sample along its ray.

    The default ``collate_fn`` of a ``DataLoader`` batches the nested tuple as is.

    Args:
        images: float32 (N, H, W, 3).
        poses: float32 (N, 4, 4) camera-to-world matrices.
        focal: focal length in pixels.
        indices: which images of the file this dataset serves (default: all), in order; the
            jitter of an image depends on its index in the file, not its position here.
        pos_embed, num_ray_samples, near, far, jitter, seed: see ``load_tiny_nerf``.
    """

    def __init__(
        self,
        images: np.ndarray,
        poses: np.ndarray,
        focal: float,
        indices: Sequence[int] | None = None,
        *,
        pos_embed: int = 16,
        num_ray_samples: int = 32,
        near: float = common.NEAR,
        far: float = common.FAR,
        jitter: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.images = np.asarray(images, dtype=np.float32)
        self.poses = np.asarray(poses, dtype=np.float32)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.poses.shape != (len(self.images), 4, 4):
            raise ValueError(
                f"Expected images (N, H, W, 3) and poses (N, 4, 4), got {self.images.shape} and {self.poses.shape}."
            )
        self.focal = float(focal)
        self.indices = np.arange(len(self.images)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.pos_embed = int(pos_embed)
        self.num_ray_samples = int(num_ray_samples)
        self.near = float(near)
        self.far = float(far)
        self.jitter = bool(jitter)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        """Return ``(image (H, W, 3), (rays (H*W*S, 3 + 6*pos_embed), t_vals (H, W, S)))``."""
        if not -len(self) <= item < len(self):
            # IndexError also ends iteration for code that loops with dataset[i].
            raise IndexError(f"index {item} out of range for a TinyNerfDataset of length {len(self)}")
        index = int(self.indices[item])
        height, width = self.images.shape[1:3]
        rays, t_vals = common.rays_for_pose(
            self.poses[index],
            height,
            width,
            self.focal,
            pos_embed=self.pos_embed,
            num_samples=self.num_ray_samples,
            near=self.near,
            far=self.far,
            jitter=self.jitter,
            seed=self.seed,
            index=index,
        )
        # copy(): the image must not share memory with the array of the whole file.
        image = torch.from_numpy(self.images[index].copy())
        return image, (torch.from_numpy(rays), torch.from_numpy(t_vals))

    def __repr__(self) -> str:
        height, width = self.images.shape[1:3]
        return (
            f"TinyNerfDataset(len={len(self)}, image=({height}, {width}, 3), "
            f"rays=({height * width * self.num_ray_samples}, {common.encoded_dims(self.pos_embed)}), "
            f"t_vals=({height}, {width}, {self.num_ray_samples}))"
        )


def make_datasets(data: TinyNerfData, splits: Sequence[Sequence[int]], **options) -> tuple[TinyNerfDataset, ...]:
    """One :class:`TinyNerfDataset` per list of file indices in ``splits``."""
    return tuple(TinyNerfDataset(data.images, data.poses, data.focal, indices, **options) for indices in splits)
