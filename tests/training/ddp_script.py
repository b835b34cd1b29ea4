"""Lightning DDP on CPU processes (gloo) vs one process with the same global batch.

``python tests/training/ddp_script.py --init INIT.safetensors --out OUT.safetensors --devices 2``
loads a deepvision model from a portable checkpoint, trains it with ``strategy="ddp"`` on
``--devices`` CPU processes and writes the result (rank 0) as a portable checkpoint. Strategy
"ddp" re-launches this script once per extra process, which is why it is a standalone script and
not a pytest test. The data order is fixed: ``use_distributed_sampler=False`` with
:class:`deepvision.training.ShardSampler`, so every optimizer step sees the same global batch as
with ``--devices 1``; Lightning's own DistributedSampler would interleave and always shuffle.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from deepvision.portable import load_portable, save_portable  # noqa: E402
from deepvision.training import ShardSampler  # noqa: E402

SAMPLES, GLOBAL_BATCH, EPOCHS = 32, 8, 2


class OrderedData(pl.LightningDataModule):
    """The same 32 samples every time; each process reads its slice of every global batch."""

    def __init__(self, size: int, devices: int) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.x = torch.from_numpy(rng.random((SAMPLES, 3, size, size), dtype=np.float32))
        self.y = torch.from_numpy(rng.integers(0, 10, SAMPLES))
        self.devices = devices

    def train_dataloader(self) -> DataLoader:
        # Called after the process group exists: ShardSampler reads the rank and world size from it.
        sampler = ShardSampler(SAMPLES, GLOBAL_BATCH)
        return DataLoader(TensorDataset(self.x, self.y), batch_size=GLOBAL_BATCH // self.devices, sampler=sampler)


def train(init: str | Path, devices: int, out: str | Path | None = None) -> torch.nn.Module:
    """Train the model in ``init`` on ``devices`` CPU processes; rank 0 writes it to ``out``."""
    torch.manual_seed(0)
    model = load_portable(init, backend="pytorch")
    model.train()
    model.compile(optimizer=functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    size = model.get_config()["input_shape"][-1]
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        use_distributed_sampler=False,
        max_epochs=EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=OrderedData(size, devices))
    if out is not None and trainer.global_rank == 0:
        save_portable(model, out)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # two processes on two cores
    train(args.init, args.devices, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
