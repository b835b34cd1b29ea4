"""Lightning DDP (2 CPU processes, gloo) trains a tiny ViT to the weights one process reaches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("pytorch_lightning")


_DISTRIBUTED_ENV = ("LOCAL_RANK", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK",
                    "MASTER_ADDR", "MASTER_PORT")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.subprocess
def test_ddp_two_processes_match_single_process(tmp_path):
    import torch

    from deepvision.portable import load_portable, save_portable
    from deepvision.registry import build_from_neutral_config
    from deepvision.testing import canonical_state, max_relative_error
    from tests.training import ddp_script
    from tests.training.conftest import tiny_vit_config

    torch.manual_seed(0)
    init = save_portable(build_from_neutral_config("ViT", tiny_vit_config(16), "pytorch"), tmp_path / "init.safetensors")
    out = tmp_path / "ddp.safetensors"
    script = Path(ddp_script.__file__)
    # The process-group variables a DDP run in this pytest process left behind (the docs test runs
    # TRAINING.md's strategy="ddp" in-process) would tell Lightning the script is an already launched
    # rank: it would then wait for a second rank it never starts. And a port of our own.
    env = {k: v for k, v in os.environ.items() if k not in _DISTRIBUTED_ENV and not k.startswith(("PL_", "TORCHELASTIC"))}
    env.update({"CUDA_VISIBLE_DEVICES": "", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    try:
        done = subprocess.run([sys.executable, str(script), "--init", str(init), "--out", str(out), "--devices", "2"],
                              capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as err:  # say where it stopped
        tail = ((err.stdout or b"") + (err.stderr or b"")).decode(errors="replace")[-3000:]
        pytest.fail(f"the DDP run did not finish in 300 s; its last output:\n{tail}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MEMBER: 2/2" in done.stdout + done.stderr  # Lightning's line for the second process
    # Epoch-level values are logged with sync_dist=True: no warning asking for it, nor tips.
    for needle in ("sync_dist", "Tip:", "LeafSpec"):
        assert needle not in done.stderr, (needle, done.stderr[-2000:])

    single = ddp_script.train(init, devices=1)
    distributed = canonical_state(load_portable(out, backend="pytorch"))
    reference = canonical_state(single)
    start = canonical_state(load_portable(init, backend="pytorch"))
    errors = {name: max_relative_error(distributed[name], reference[name]) for name in reference}
    worst = max(errors, key=errors.get)
    print(f"DDP vs single process: max per-tensor relative error {errors[worst]:.2e} ({worst})")
    assert errors[worst] < 1e-5, (worst, errors[worst])
    # And training did something: the weights moved well beyond that tolerance.
    moved = max(max_relative_error(reference[n], start[n]) for n in reference)
    assert moved > 1e-3
