"""Run the fit helpers and a default ``pl.Trainer`` as a user would, for ``test_quiet.py``.

``python tests/training/quiet_fit_script.py OUT_DIR`` trains a tiny ViT for two epochs with
:func:`keras_fit` and :func:`lightning_fit` (standard output is a pipe there, not a terminal),
then one epoch with a default ``pl.Trainer`` that writes its own checkpoint, and plots both
histories with :func:`plot_history` as the docs do. It prints ``CKPT <path>`` for the test.
Nothing here silences anything: what reaches stderr is what a user would see.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import deepvision  # noqa: E402
from deepvision.registry import build_from_neutral_config  # noqa: E402
from tests.training.conftest import tiny_vit_config  # noqa: E402


def main(out: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((32, 16, 16, 3), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    config = tiny_vit_config(16)

    from deepvision.training import keras_fit, lightning_fit, plot_history, to_dataloader

    tf_history = keras_fit(build_from_neutral_config("ViT", config, "tensorflow"), x, y, validation_data=(x, y),
                           epochs=2, batch_size=8)
    pt_model = build_from_neutral_config("ViT", config, "pytorch")
    pt_history = lightning_fit(pt_model, x, y, validation_data=(x, y), epochs=2, batch_size=8)
    print("PLOT", plot_history([("Keras", tf_history), ("Lightning", pt_history)], out / "curves.png"))

    import pytorch_lightning as pl

    # The docs' plain Trainer: default logger and checkpointing (progress bar off: not ours).
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, default_root_dir=out, enable_progress_bar=False,
                         log_every_n_steps=1)
    trainer.fit(pt_model, to_dataloader(x, y, 8), to_dataloader(x, y, 8))
    print("CKPT", trainer.checkpoint_callback.best_model_path)
    deepvision.save_portable(pt_model, out / "trained.safetensors")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
