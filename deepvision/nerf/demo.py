"""``deepvision demo --task nerf``: train a NeRF in one backend, hand it to the other, continue.

Without ``--data`` the scene is made analytically (:mod:`deepvision.nerf.scene`: coloured spheres,
exact ray intersection, views on an orbit) because the real tiny NeRF file must be downloaded; with
``--data tiny_nerf.npz`` the real file is used. Every few views are held out; PSNR on them is printed
after each stage (the same at the hand-off, where the portable file moves the network between
backends) and a held-out view is written next to its prediction as a PNG.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepvision.backend import PYTORCH, TENSORFLOW, require

_NAMES = {TENSORFLOW: "TensorFlow/Keras", PYTORCH: "PyTorch/Lightning"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepvision demo --task nerf",
        description="Train a NeRF in one backend, hand it to the other through the portable file, continue, "
                    "and report held-out PSNR after each stage.",
    )
    parser.add_argument("--task", default="nerf", choices=["nerf"], help=argparse.SUPPRESS)
    parser.add_argument("--data", default=None, help="a tiny NeRF .npz (images, poses, focal); default: a synthetic scene")
    parser.add_argument("--steps", type=int, default=200, help="training steps in each backend (default: 200)")
    parser.add_argument("--backend-order", default="tensorflow,pytorch",
                        help="the first and the second training backend (default: tensorflow,pytorch)")
    parser.add_argument("--out", default="demo-output/nerf", help="output folder (default: ./demo-output/nerf)")
    parser.add_argument("--image-size", type=int, default=100, help="synthetic views are this size (default: 100)")
    parser.add_argument("--views", type=int, default=40, help="synthetic views on the orbit (default: 40)")
    parser.add_argument("--batch-size", type=int, default=1024, help="rays per step (default: 1024)")
    parser.add_argument("--num-samples", type=int, default=32, help="samples per ray (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam (default: 2e-3)")
    parser.add_argument("--position-frequencies", type=int, default=6,
                        help="frequencies of the position encoding (default: 6; the paper uses 10)")
    parser.add_argument("--gif", action="store_true", help="also write an orbit GIF of the final model")
    parser.add_argument("--black-background", dest="white", action="store_false",
                        help="composite over black (for --data files with a black background); default: white, "
                             "as the synthetic scene")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _scene(args: argparse.Namespace) -> dict[str, np.ndarray]:
    if args.data:
        from deepvision.datasets.tiny_nerf.files import read_tiny_nerf_file

        data = read_tiny_nerf_file(args.data)
        return {"images": data.images, "poses": data.poses, "focal": np.float32(data.focal)}
    from deepvision.nerf.scene import make_scene

    return make_scene(args.views, args.image_size)


def held_out_psnr(model: Any, images: np.ndarray, poses: np.ndarray, focal: float, num_samples: int,
                  white_background: bool = False) -> float:
    """Mean PSNR (dB) of ``model``'s renders of ``poses`` against ``images``."""
    from deepvision.nerf.rendering import render_image

    values = []
    for image, pose in zip(images, poses):
        rgb = render_image(model, pose, focal, image.shape[0], image.shape[1], num_samples=num_samples,
                           white_background=white_background)["rgb"]
        values.append(-10.0 * np.log10(np.mean((rgb - image) ** 2)))
    return float(np.mean(values))


def _train_keras(model: Any, rays: tuple, args: argparse.Namespace) -> None:
    import keras
    import tensorflow as tf

    from deepvision.nerf import NeRFTrainer

    origins, directions, colours = rays
    trainer = NeRFTrainer(model, num_samples=args.num_samples, seed=args.seed, white_background=args.white)
    trainer.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    data = (tf.data.Dataset.from_tensor_slices(((origins, directions), colours))
            .shuffle(len(origins), seed=args.seed).batch(args.batch_size, drop_remainder=True).repeat())
    trainer.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)


def _train_lightning(model: Any, rays: tuple, args: argparse.Namespace) -> None:
    import logging

    import pytorch_lightning as pl
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

    from deepvision.nerf import NeRFTrainer

    data = TensorDataset(*(torch.from_numpy(a) for a in rays))
    sampler = BatchSampler(RandomSampler(data, generator=torch.Generator().manual_seed(args.seed)),
                           args.batch_size, drop_last=True)
    # batch_size=None with a batch sampler: each step indexes the tensors once (no per-ray collation).
    loader = DataLoader(data, sampler=sampler, batch_size=None)
    trainer = NeRFTrainer(model, num_samples=args.num_samples, seed=args.seed, learning_rate=args.learning_rate,
                          white_background=args.white)
    for name in ("pytorch_lightning", "lightning_fabric"):  # no accelerator banner, no "max_steps reached"
        logging.getLogger(name).setLevel(logging.WARNING)
    pl.Trainer(max_steps=args.steps, accelerator="cpu", logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(trainer, loader)
    model.eval()


def run(args: argparse.Namespace) -> dict[str, float]:
    """Run the demo; returns the held-out PSNRs (dB) by stage."""
    import deepvision
    from deepvision.nerf.rays import image_rays
    from deepvision.nerf.rendering import render_image
    from deepvision.nerf.visualize import save_orbit

    first, second = (require(b.strip()) for b in args.backend_order.split(","))
    if args.data and args.white:
        print("note: compositing over white; pass --black-background for a scene on black", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scene = _scene(args)
    images, poses, focal = scene["images"], scene["poses"], float(scene["focal"])
    test = np.arange(len(images)) % 8 == 3  # every 8th view is held out
    rays = image_rays(images[~test], poses[~test], focal)
    print(f"scene: {len(images)} views of {images.shape[1]}x{images.shape[2]} "
          f"({'synthetic spheres' if not args.data else args.data}), {int(test.sum())} held out, "
          f"{len(rays[0]):,} training rays", flush=True)

    def report(stage: str, model: Any) -> float:
        value = held_out_psnr(model, images[test], poses[test], focal, args.num_samples, args.white)
        print(f"[{time.perf_counter() - start:6.1f} s] {stage}: held-out PSNR {value:.2f} dB", flush=True)
        return value

    import keras
    import torch

    keras.utils.set_random_seed(args.seed)
    torch.manual_seed(args.seed)
    options = {"position_frequencies": args.position_frequencies, "density_activation": "softplus"}
    model = deepvision.models.create_model("NeRFSmall", backend=first, **options)
    results = {}
    train = {TENSORFLOW: _train_keras, PYTORCH: _train_lightning}
    train[first](model, rays, args)
    results[f"after {args.steps} steps in {first}"] = report(f"{_NAMES[first]}, {args.steps} steps", model)

    path = deepvision.save_portable(model, out / "nerf.safetensors")
    model = deepvision.load_portable(path, backend=second)
    results[f"loaded in {second}"] = report(f"hand-off to {_NAMES[second]} through {path.name}", model)

    train[second](model, rays, args)
    results[f"after {args.steps} more steps in {second}"] = report(f"{_NAMES[second]}, {args.steps} more steps", model)

    from PIL import Image

    view = int(np.flatnonzero(test)[0])
    rgb = render_image(model, poses[view], focal, images.shape[1], images.shape[2], num_samples=args.num_samples,
                       white_background=args.white)["rgb"]
    side_by_side = np.concatenate([images[view], np.clip(rgb, 0, 1)], axis=1)
    png = out / "heldout_view.png"
    from deepvision.io_utils import atomic_output

    with atomic_output(png) as tmp:
        Image.fromarray((side_by_side * 255 + 0.5).astype(np.uint8)).save(tmp, format="PNG")
    print(f"wrote {png} (truth | prediction)", flush=True)
    if args.gif:
        gif = save_orbit(model, focal, images.shape[1], images.shape[2], out / "orbit.gif",
                         num_samples=args.num_samples, white_background=args.white)
        print(f"wrote {gif}", flush=True)
    print(f"done in {time.perf_counter() - start:.1f} s", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``deepvision demo --task nerf``."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    run(args)
    return 0
