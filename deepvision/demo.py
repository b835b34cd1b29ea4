"""``deepvision demo`` / ``make demo``: train in one backend, hand off to the other, fine-tune there.

On scikit-learn's handwritten digits (shipped with it, no download), upscaled to 32x32:

1. train a deepvision model (default ResNet18V2, from scratch) in the first backend;
2. save it as a portable checkpoint and load it in the second backend;
3. print the parity table of the two models on test images (exit code 1 if it fails);
4. fine-tune in the second backend (Keras ``fit`` / Lightning ``Trainer.fit``);
5. print test loss and accuracy after training, at the hand-off and after fine-tuning;
6. write the figures (training curves; t-SNE of the features and Grad-CAM++ heatmaps).

It takes about a minute on two CPU cores once the environment exists (imports included).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deepvision.backend import PYTORCH, TENSORFLOW, resolve_backend

_NAMES = {TENSORFLOW: "TensorFlow/Keras", PYTORCH: "PyTorch/Lightning"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepvision demo",
        description="Train a model in one backend, hand it to the other through the portable format, "
                    "check parity, fine-tune, and write figures.",
    )
    parser.add_argument("--backend-order", default="tensorflow,pytorch",
                        help="the training backend, then the fine-tuning backend (default: tensorflow,pytorch)")
    parser.add_argument("--model", default="ResNet18V2", help="a registered model (deepvision list-models)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs in each backend (default: 2)")
    parser.add_argument("--out", default="demo-output", help="output folder (default: ./demo-output)")
    parser.add_argument("--image-size", type=int, default=32, help="digits are upscaled to this size (default: 32)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam, first backend (default: 1e-3)")
    parser.add_argument("--fine-tune-learning-rate", type=float, default=3e-4,
                        help="Adam, second backend (default: 3e-4)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only this many training and test images (a quick run)")
    parser.add_argument("--no-figures", action="store_true", help="skip the t-SNE and Grad-CAM++ figures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", default="classification", choices=sorted(TASKS),
                        help="the demo to run: classification (default), or another task's own demo "
                             "(`deepvision demo --task nerf --help`)")
    return parser


def _prepare_process() -> None:
    """Environment the frameworks read when they load; call before importing them."""
    from deepvision.backend import quiet_frameworks

    # TensorFlow's start-up lines would bury the demo's own output (DEEPVISION_VERBOSE=1 shows them).
    quiet_frameworks()
    os.environ.setdefault("MPLBACKEND", "Agg")
    # OpenMP threads that spin while they wait made PyTorch 12x slower here (10 Lightning steps:
    # 30 s instead of 2.5 s) as soon as anything else ran on the two cores; sleeping costs little.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import warnings

    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
    warnings.filterwarnings("ignore", module="keras")


def _quiet_lightning() -> None:
    import logging

    import pytorch_lightning  # noqa: F401  (it sets its loggers' levels when imported)

    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _normalize(images: np.ndarray, preprocessing: Mapping[str, Any]) -> np.ndarray:
    """[0, 1] images -> the model's expected input, from its registered preprocessing facts."""
    low, high = preprocessing.get("value_range", (0, 1))
    x = images * (float(high) - float(low)) + float(low)
    if "mean" in preprocessing and "std" in preprocessing:
        x = (x - np.asarray(preprocessing["mean"], np.float32)) / np.asarray(preprocessing["std"], np.float32)
    return x.astype(np.float32)


def _seed(seed: int) -> None:
    import keras
    import torch

    keras.utils.set_random_seed(seed)
    torch.manual_seed(seed)


_CLOCK = {"start": 0.0}


def _step(index: int, text: str) -> None:
    elapsed = time.perf_counter() - _CLOCK["start"]
    print(f"\n[{index}/6] {text}   [{elapsed:.0f} s]", flush=True)


def _train(model: Any, backend: str, train: tuple, test: tuple, *, epochs: int, batch_size: int,
           learning_rate: float) -> dict[str, list[float]]:
    """Fit with the backend's own pipeline; returns the Keras-style history.

    Progress: bars on a terminal, one line per epoch when the output goes to a file or a pipe.
    """
    if backend == TENSORFLOW:
        import keras

        from deepvision.training.fit_tf import default_compile, keras_fit

        default_compile(model, keras.optimizers.Adam(learning_rate))
        return keras_fit(model, *train, validation_data=test, epochs=epochs, batch_size=batch_size,
                         shuffle=True, verbose="auto").history
    from deepvision.training.fit_pt import lightning_fit

    _quiet_lightning()
    model.compile(optimizer="adam", learning_rate=learning_rate)
    return lightning_fit(model, *train, validation_data=test, epochs=epochs, batch_size=batch_size,
                         shuffle=True, progress_bar=True, num_sanity_val_steps=0).history


def _table(rows: list[tuple[str, str, dict[str, float]]]) -> str:
    header = f"{'stage':<26} {'backend':<18} {'test loss':>10} {'test accuracy':>14}"
    lines = [header, "-" * len(header)]
    for stage, backend, scores in rows:
        lines.append(f"{stage:<26} {_NAMES[backend]:<18} {scores['loss']:>10.4f} {scores['accuracy']:>14.2%}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The demo itself; returns the exit code (1 when the parity check fails)."""
    started = _CLOCK["start"] = time.perf_counter()
    order = [resolve_backend(b.strip()) for b in args.backend_order.split(",")]
    if len(order) != 2 or order[0] == order[1]:
        raise SystemExit("--backend-order takes two different backends, e.g. pytorch,tensorflow")
    first, second = order
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    from deepvision.parity import check_parity
    from deepvision.portable import load_portable, save_portable
    from deepvision.registry import build_from_neutral_config, get_architecture
    from deepvision.training.digits import load_digits_images
    from deepvision.training.plots import plot_history
    from deepvision.training.scoring import evaluate

    arch = get_architecture(args.model)
    if arch.kind != "model":
        raise SystemExit(f"{args.model} is a block, not a model; see `deepvision list-models`.")
    print(f"deepvision demo: {args.model} on scikit-learn's handwritten digits, trained in {_NAMES[first]}, "
          f"fine-tuned in {_NAMES[second]}. Output: {out}")

    _step(1, f"Data: the 1,797 digits (8x8) upscaled to {args.image_size}x{args.image_size}, fixed split")
    (x_train, y_train), (x_test, y_test) = load_digits_images(args.image_size)
    if args.limit:
        x_train, y_train, x_test, y_test = x_train[:args.limit], y_train[:args.limit], x_test[:args.limit], y_test[:args.limit]
    x_train, x_test = _normalize(x_train, arch.preprocessing), _normalize(x_test, arch.preprocessing)
    print(f"      {len(x_train)} training and {len(x_test)} test images, 10 classes; "
          f"inputs normalised as {args.model} expects")

    epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    _step(2, f"Train {args.model} from scratch in {_NAMES[first]} ({epochs})")
    _seed(args.seed)
    config = {"include_top": True, "classes": 10, "input_shape": [args.image_size, args.image_size, 3]}
    model_a = build_from_neutral_config(args.model, config, first)
    history_a = _train(model_a, first, (x_train, y_train), (x_test, y_test), epochs=args.epochs,
                       batch_size=args.batch_size, learning_rate=args.learning_rate)
    trained = evaluate(model_a, x_test, y_test)

    _step(3, f"Hand-off: save_portable -> load_portable(backend={second!r}) -> parity check")
    checkpoint = save_portable(model_a, out / f"{args.model}_{first}.safetensors")
    model_b = load_portable(checkpoint, backend=second)
    print(f"      wrote {checkpoint.name} ({checkpoint.stat().st_size / 1e6:.1f} MB); loaded it in {_NAMES[second]}")
    report = check_parity(model_a, model_b, inputs=x_test[:16], rtol=1e-4)
    print("\n".join("      " + line for line in str(report).splitlines()))
    handed_off = evaluate(model_b, x_test, y_test)

    _step(4, f"Fine-tune in {_NAMES[second]} ({epochs})")
    _seed(args.seed + 1)
    history_b = _train(model_b, second, (x_train, y_train), (x_test, y_test), epochs=args.epochs,
                       batch_size=args.batch_size, learning_rate=args.fine_tune_learning_rate)
    tuned = evaluate(model_b, x_test, y_test)
    final = save_portable(model_b, out / f"{args.model}_{second}_finetuned.safetensors")

    _step(5, "Results on the test set (inference mode)")
    print(_table([("trained", first, trained), ("at hand-off", second, handed_off), ("after fine-tuning", second, tuned)]))
    gap = abs(handed_off["loss"] - trained["loss"]) / max(abs(trained["loss"]), 1e-30)
    print(f"hand-off: test loss relative difference {gap:.1e}, accuracy {trained['accuracy']:.2%} in both")

    _step(6, "Figures")
    figures = [plot_history([(_NAMES[first], history_a), (_NAMES[second], history_b)], out / "training_curves.png",
                            title=f"{args.model} on digits: {_NAMES[first]} -> {_NAMES[second]}")]
    if not args.no_figures:
        figures += _evaluation_figures(model_b, second, x_test, y_test, out)
    for path in figures:
        print(f"      {path}")

    elapsed = time.perf_counter() - started
    print(f"\nParity {'PASS' if report.ok else 'FAIL'} (max relative error {report.max_rel:.1e}); "
          f"files in {out}: {final.name}, {checkpoint.name}, {', '.join(p.name for p in figures)}; "
          f"{elapsed:.0f} s")
    return 0 if report.ok else 1


def _evaluation_figures(model: Any, backend: str, x_test: np.ndarray, y_test: np.ndarray, out: Path) -> list[Path]:
    """t-SNE/PCA of the model's outputs and Grad-CAM++ overlays (``deepvision.evaluation``)."""
    try:
        from deepvision.evaluation import ActivationMaps, FeatureAnalyzer
    except (ImportError, AttributeError) as err:  # the evaluation package is optional here
        print(f"      (no evaluation figures: {err})")
        return []
    from deepvision.training.digits import DIGIT_CLASSES

    classnames = list(DIGIT_CLASSES)
    images = x_test if backend == TENSORFLOW else np.ascontiguousarray(x_test.transpose(0, 3, 1, 2))
    analyzer = FeatureAnalyzer(model, (images, y_test), classnames=classnames, backend=backend, batch_size=32)
    from deepvision.training.console import is_terminal

    analyzer.extract_features(progress=is_terminal(sys.stderr))  # tqdm's redraws only on a terminal
    tsne = out / "feature_tsne.png"
    analyzer.feature_analysis(components=2, max_iter=500, path=tsne)
    # One of each of the first six digits, explained at the finest block output of at least 4x4.
    firsts = [int(np.flatnonzero(y_test == digit)[0]) for digit in range(10) if np.any(y_test == digit)][:6]
    maps = ActivationMaps(model, target_layer=_gradcam_target(model, backend, images[:1]), backend=backend)
    gradcam = out / "gradcam.png"
    maps.plot(images[firsts], classnames=classnames, labels=y_test[firsts], path=gradcam)
    return [tsne, gradcam]


def _gradcam_target(model: Any, backend: str, image: np.ndarray) -> Any:
    """The last of ``model.blocks`` whose output is a feature map of at least 4x4, else ``None``.

    ``None`` lets ActivationMaps choose (the last map above 1x1; a ViT's tokens). On the demo's
    32x32 digits a ResNet's last usable map is 2x2, which says little about where a digit is.
    """
    blocks = list(getattr(model, "blocks", None) or [])
    if not blocks:
        return None
    try:
        if backend == PYTORCH:
            import torch

            shapes: dict[int, tuple] = {}
            hooks = [b.register_forward_hook(lambda _m, _i, o, k=k: shapes.__setitem__(k, tuple(o.shape)))
                     for k, b in enumerate(blocks)]
            was_training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    model(torch.from_numpy(image))
            finally:
                model.train(was_training)
                for hook in hooks:
                    hook.remove()
            spatial = {k: s[2:] for k, s in shapes.items() if len(s) == 4}
        else:
            spatial = {k: tuple(b.output.shape)[1:3] for k, b in enumerate(blocks) if len(b.output.shape) == 4}
    except (AttributeError, ValueError, RuntimeError, TypeError):
        return None
    usable = [k for k, hw in spatial.items() if all(d is not None and d >= 4 for d in hw)]
    return blocks[max(usable)] if usable else None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``deepvision demo`` / ``python -m deepvision demo`` / ``make demo``.

    Returns:
        0 when the parity check passes, 1 when it fails (2 for bad arguments, from argparse).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    task = _task_of(argv)
    if task != "classification":
        import importlib

        _prepare_process()
        return importlib.import_module(TASKS[task]).main(argv)
    args = build_parser().parse_args(argv)
    _prepare_process()
    return run(args)


# ``--task NAME``: the module whose ``main(argv)`` runs that demo (classification is this module's).
TASKS = {"classification": __name__, "nerf": "deepvision.nerf.demo", "segmentation": "deepvision.segmentation_demo"}


def _task_of(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--task", default="classification", choices=sorted(TASKS))
    known, _ = parser.parse_known_args(argv)
    return known.task


if __name__ == "__main__":
    sys.exit(main())
