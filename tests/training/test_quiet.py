"""Quiet by default: the fit helpers and a default Trainer print progress lines and nothing else.

Runs ``quiet_fit_script.py`` in a fresh interpreter whose output is a pipe (as in CI or a log
file), without ``TF_CPP_MIN_LOG_LEVEL`` or ``DEEPVISION_VERBOSE``: what reaches its stderr is
what a user would see. The same run checks what the fit helpers return (``plot_history`` takes
it) and the Lightning checkpoint that ``Trainer.fit`` writes (it records the model, so the plain
``deepvision convert x.ckpt y.safetensors`` works).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")
pytest.importorskip("keras")

# Start-up banners and tips seen before (TensorFlow C++, absl, Lightning), and the DDP warning.
NOISE = ("cpu_feature_guard", "oneDNN", "absl", "Tip:", "litmodels", "litlogger", "tensorboardX", "LeafSpec",
         "sync_dist")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.training import quiet_fit_script

    out = tmp_path_factory.mktemp("quiet")
    # A user's environment: the suite's conftest turns oneDNN off, which would hide its banner.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "DEEPVISION_VERBOSE")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run([sys.executable, str(Path(quiet_fit_script.__file__)), str(out)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=out)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, out


@pytest.mark.subprocess
def test_no_framework_noise_and_one_line_per_epoch(run):
    done, _ = run
    for needle in NOISE:
        assert needle not in done.stderr, (needle, done.stderr[-2000:])
    assert "\r" not in done.stdout and "\r" not in done.stderr  # no redrawn bars in a pipe
    lines = done.stdout.splitlines()
    # lightning_fit: one EpochLineProgress line per epoch, with the epoch's metrics.
    lightning = [line for line in lines if re.match(r"Epoch \d/2 - \d+ steps - ", line)]
    assert len(lightning) == 2, done.stdout
    for line in lightning:
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert f" {key}: " in line, line
    # keras_fit: verbose="auto" is Keras's one line per epoch here.
    assert lines.count("Epoch 1/2") == 1 and lines.count("Epoch 2/2") == 1, done.stdout


@pytest.mark.subprocess
def test_plot_history_takes_what_the_fit_helpers_return(run):
    done, out = run
    assert f"PLOT {out / 'curves.png'}" in done.stdout
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.subprocess
def test_trainer_checkpoint_records_the_model_and_converts(run, tmp_path):
    import torch

    from deepvision.cli import main
    from deepvision.portable import load_portable
    from deepvision.registry import build_from_neutral_config, config_of
    from deepvision.testing import canonical_state, max_relative_error
    from tests.training.conftest import tiny_vit_config

    done, out = run
    ckpt = Path(re.search(r"^CKPT (.+)$", done.stdout, re.M).group(1))
    record = torch.load(ckpt, map_location="cpu", weights_only=True)
    config = config_of(build_from_neutral_config("ViT", tiny_vit_config(16), "pytorch"))
    assert record["deepvision"]["architecture"] == "ViT"
    assert record["deepvision"]["config"] == config
    # Lightning's own reload needs no arguments either.
    trained = load_portable(out / "trained.safetensors", backend="pytorch")
    reloaded = type(trained).load_from_checkpoint(ckpt, map_location="cpu")
    reference = canonical_state(trained)
    again = canonical_state(reloaded)
    assert again.keys() == reference.keys()
    assert max(max_relative_error(again[n], reference[n]) for n in reference) == 0.0
    # The plain command: no --architecture, no --config.
    assert main(["convert", str(ckpt), str(tmp_path / "from_ckpt.safetensors")]) == 0
    converted = canonical_state(load_portable(tmp_path / "from_ckpt.safetensors", backend="pytorch"))
    assert max(max_relative_error(converted[n], reference[n]) for n in reference) == 0.0
