"""``deepvision demo --task segmentation``: SegFormer trained in Keras, fine-tuned in PyTorch.

A synthetic, deterministic numpy dataset (discs, squares and triangles of three classes on striped,
noisy backgrounds; 64x64; a one-pixel unlabelled border (255) around every shape) trains a small
SegFormer in Keras (``fit`` on ``tf.data``); the model is handed to PyTorch through the portable
checkpoint and fine-tuned with Lightning's ``Trainer.fit``. Mean IoU on the test images is printed
after each stage (identical at the hand-off) and a PNG shows images, ground truth and predictions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("background", "disc", "square", "triangle")
IGNORE = 255
# A small generic SegFormer (MiT widths 16..128, one block per stage): a few minutes on 2 cores.
SMALL = {"embed_dims": [16, 32, 64, 128], "depths": [1, 1, 1, 1], "num_heads": [1, 2, 4, 8], "decoder_dim": 64,
         "head_dropout": 0.0}


def make_dataset(count: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images (N, size, size, 3) in [0, 1] and label maps (N, size, size) uint8.

    Deterministic for a seed. Backgrounds: stripes of random frequency and direction plus noise.
    One to three shapes per image (class 1 disc, 2 square, 3 triangle), each tinted towards its
    class's colour; later shapes cover earlier ones; the pixels on each shape's outline are 255.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    tints = np.array([[0.9, 0.3, 0.3], [0.3, 0.9, 0.3], [0.3, 0.3, 0.9]], np.float32)
    images = np.empty((count, size, size, 3), np.float32)
    labels = np.zeros((count, size, size), np.uint8)
    for n in range(count):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(0.1, 0.5)
        stripes = 0.5 + 0.25 * np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy))
        base = rng.uniform(0.2, 0.8, 3).astype(np.float32)
        image = stripes[..., None] * base + rng.normal(0, 0.05, (size, size, 3))
        label = labels[n]
        for _ in range(int(rng.integers(1, 4))):
            cls = int(rng.integers(1, 4))
            cy, cx = rng.uniform(0.2 * size, 0.8 * size, 2)
            r = rng.uniform(0.1 * size, 0.22 * size)
            if cls == 1:
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
            elif cls == 2:
                inside = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
            else:  # upright triangle: below the apex, above the base, within the two sides
                top, bottom = cy - r, cy + r * 0.8
                half = (yy - top) / (bottom - top) * r
                inside = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half)
            colour = tints[cls - 1] * rng.uniform(0.7, 1.0) + rng.normal(0, 0.05, (size, size, 3))
            image = np.where(inside[..., None], colour, image)
            border = inside & ~_erode(inside)
            label[inside] = cls
            label[border] = IGNORE
        images[n] = np.clip(image, 0, 1)
    return images, labels


def _erode(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def _normalize(images: np.ndarray, preprocessing: dict) -> np.ndarray:
    mean, std = np.asarray(preprocessing["mean"], np.float32), np.asarray(preprocessing["std"], np.float32)
    return ((images - mean) / std).astype(np.float32)


def _predict(model: Any, backend: str, x: np.ndarray, batch: int = 32) -> np.ndarray:
    """Class maps (N, H, W) at the input size: argmax of the logits upsampled with the shared helper."""
    from deepvision import testing
    from deepvision.layers.upsample import upsample_bilinear

    out = []
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        if backend == "pytorch":
            import torch

            model.eval()
            with torch.no_grad():
                logits = upsample_bilinear(model(testing.to_framework(chunk, backend)), chunk.shape[1:3])
            out.append(logits.argmax(dim=1).numpy())
        else:
            import keras

            logits = upsample_bilinear(model(keras.ops.convert_to_tensor(chunk), training=False), chunk.shape[1:3])
            out.append(keras.ops.convert_to_numpy(keras.ops.argmax(logits, axis=-1)))
    return np.concatenate(out).astype(np.int64)


def _mean_iou(model: Any, backend: str, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean IoU from the backend's own metric, predicted class maps)."""
    from deepvision.training.segmentation import mean_iou

    prediction = _predict(model, backend, x)
    one_hot = np.eye(len(CLASSES), dtype=np.float32)[prediction]  # argmax-preserving "logits" at full size
    metric = mean_iou(backend, len(CLASSES), IGNORE)
    if backend == "pytorch":
        import torch

        metric.update(torch.from_numpy(one_hot.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y.astype(np.int64)))
        return float(metric.compute()), prediction
    import keras

    metric.update_state(keras.ops.convert_to_tensor(y.astype(np.int32)), keras.ops.convert_to_tensor(one_hot))
    return float(metric.result()), prediction


def _figure(images: np.ndarray, labels: np.ndarray, predictions: list[tuple[str, np.ndarray]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = np.array([[0.1, 0.1, 0.1], [0.9, 0.2, 0.2], [0.2, 0.8, 0.2], [0.2, 0.3, 0.9]], np.float32)

    def colour(label: np.ndarray) -> np.ndarray:
        out = palette[np.clip(label, 0, len(CLASSES) - 1)]
        out[label == IGNORE] = 1.0
        return out

    rows = len(images)
    columns = [("image", images), ("ground truth", [colour(lab) for lab in labels])]
    columns += [(name, [colour(p) for p in pred]) for name, pred in predictions]
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.2 * len(columns), 2.2 * rows), squeeze=False)
    for c, (title, column) in enumerate(columns):
        for r in range(rows):
            axes[r, c].imshow(column[r])
            axes[r, c].axis("off")
        axes[0, c].set_title(title, fontsize=9)
    fig.tight_layout()
    from deepvision.io_utils import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepvision demo --task segmentation", description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="segmentation", choices=["segmentation"])
    parser.add_argument("--model", default="SegFormer",
                        help="SegFormer (a small generic one, default) or SegFormerB0..B5")
    parser.add_argument("--train", type=int, default=256, help="training images (default 256)")
    parser.add_argument("--test", type=int, default=64, help="test images (default 64)")
    parser.add_argument("--epochs", type=int, default=6, help="Keras epochs (default 6)")
    parser.add_argument("--fine-tune-epochs", type=int, default=3, help="Lightning epochs (default 3)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--fine-tune-learning-rate", type=float, default=5e-4)
    parser.add_argument("--out", default="demo-output", help="output folder (default ./demo-output)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def run(args: argparse.Namespace) -> int:
    """The demo; returns 0 when the hand-off is exact (same predictions in both backends), else 1."""
    started = time.perf_counter()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    import keras
    import pytorch_lightning as pl
    import tensorflow as tf
    import torch

    from deepvision.portable import load_portable, save_portable
    from deepvision.registry import build_from_neutral_config, get_architecture
    from deepvision.training.segmentation import mean_iou, segmentation_loss

    def clock() -> str:
        return f"[{time.perf_counter() - started:.0f} s]"

    arch = get_architecture(args.model)
    if arch.family != "segformer" or not args.model.startswith("SegFormer"):
        raise SystemExit(f"--model must be SegFormer or SegFormerB0..B5, got {args.model}")
    print(f"deepvision segmentation demo: {args.model} on synthetic shapes, Keras -> PyTorch. Output: {out}")
    x_train, y_train = make_dataset(args.train, seed=args.seed)
    x_test, y_test = make_dataset(args.test, seed=args.seed + 1000)
    x_train, x_test = _normalize(x_train, arch.preprocessing), _normalize(x_test, arch.preprocessing)
    print(f"[1/5] data: {len(x_train)} training and {len(x_test)} test images 64x64, classes {list(CLASSES)}, "
          f"outlines unlabelled ({IGNORE}) {clock()}")

    keras.utils.set_random_seed(args.seed)
    config = {"classes": len(CLASSES), "input_shape": [64, 64, 3], **(SMALL if args.model == "SegFormer" else {})}
    tf_model = build_from_neutral_config(args.model, config, "tensorflow")
    tf_model.compile(optimizer=keras.optimizers.AdamW(args.learning_rate), loss=segmentation_loss("tensorflow"),
                     metrics=[mean_iou("tensorflow", len(CLASSES))],
                     jit_compile=False)  # XLA's compile time on a CPU would exceed the whole training
    data = tf.data.Dataset.from_tensor_slices((x_train, y_train.astype(np.int32)))
    data = data.shuffle(len(x_train), seed=args.seed).batch(args.batch_size)
    print(f"[2/5] Keras fit on tf.data ({args.epochs} epochs) {clock()}")
    tf_model.fit(data, epochs=args.epochs, verbose=2)
    keras_miou, keras_prediction = _mean_iou(tf_model, "tensorflow", x_test, y_test)
    print(f"      test mIoU after Keras training: {keras_miou:.4f} {clock()}")

    checkpoint = save_portable(tf_model, out / f"{args.model}_keras.safetensors")
    pt_model = load_portable(checkpoint, backend="pytorch")
    handoff_miou, handoff_prediction = _mean_iou(pt_model, "pytorch", x_test, y_test)
    same = bool(np.array_equal(handoff_prediction, keras_prediction))
    print(f"[3/5] hand-off through {checkpoint.name}: PyTorch test mIoU {handoff_miou:.4f} "
          f"({'identical predictions' if same else 'predictions differ'}) {clock()}")

    torch.manual_seed(args.seed + 1)
    pt_model.compile(loss=segmentation_loss("pytorch"), metrics={"mean_iou": mean_iou("pytorch", len(CLASSES))},
                     optimizer=torch.optim.AdamW(pt_model.parameters(), lr=args.fine_tune_learning_rate))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x_train.transpose(0, 3, 1, 2).copy()),
                                       torch.from_numpy(y_train.astype(np.int64))),
        batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(args.seed))
    print(f"[4/5] Lightning Trainer.fit ({args.fine_tune_epochs} epochs) {clock()}")
    from deepvision.demo import _quiet_lightning

    _quiet_lightning()  # no accelerator banner, no "max_epochs reached", as the other demos
    trainer = pl.Trainer(accelerator="cpu", max_epochs=args.fine_tune_epochs, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                         default_root_dir=out)
    trainer.fit(pt_model, loader)
    tuned_miou, tuned_prediction = _mean_iou(pt_model, "pytorch", x_test, y_test)
    print(f"      test mIoU after Lightning fine-tuning: {tuned_miou:.4f} {clock()}")

    figure = _figure(np.clip(x_test[:4] * np.asarray(arch.preprocessing["std"]) + np.asarray(arch.preprocessing["mean"]),
                             0, 1), y_test[:4],
                     [("Keras", keras_prediction[:4]), ("PyTorch fine-tuned", tuned_prediction[:4])],
                     out / "segmentation.png")
    print(f"[5/5] {figure} {clock()}")
    print(f"\nmIoU: Keras {keras_miou:.4f} | hand-off {handoff_miou:.4f} | fine-tuned {tuned_miou:.4f}; "
          f"hand-off {'exact' if same and keras_miou == handoff_miou else 'NOT exact'}; "
          f"{time.perf_counter() - started:.0f} s")
    return 0 if same and keras_miou == handoff_miou else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point (``deepvision demo --task segmentation``)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    os.environ.setdefault("MPLBACKEND", "Agg")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
