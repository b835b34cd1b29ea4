"""numpy arrays -> PyTorch ``DataLoader`` in a known order, and the ordered sampler for DDP."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from deepvision.training.data_tf import epoch_permutation


class PermutationSampler(Sampler[int]):
    """Shuffles with :func:`epoch_permutation`: the same order per epoch as ``to_tf_dataset(shuffle=True)``."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def __iter__(self) -> Iterator[int]:
        order = epoch_permutation(self.n, self.seed, self.epoch)
        self.epoch += 1
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.n


class ShardSampler(Sampler[int]):
    """This process's contiguous slice of every global batch, in dataset order (for DDP).

    With ``global_batch_size = B`` and ``num_replicas = R``, global batch ``k`` holds samples
    ``k*B .. (k+1)*B - 1`` and process ``r`` gets ``k*B + r*B/R .. k*B + (r+1)*B/R - 1``. Use it with
    ``DataLoader(batch_size=B // R)`` and ``Trainer(use_distributed_sampler=False)``: DDP averages
    the processes' gradients, so each step equals a single-process step on the global batch (Lightning's
    injected ``DistributedSampler`` instead interleaves samples and always shuffles). The last
    incomplete global batch is dropped so every process runs the same number of steps.

    Args:
        n: dataset length.
        global_batch_size: samples per optimizer step over all processes; divisible by ``num_replicas``.
        num_replicas, rank: default to the initialised process group (1 and 0 without one).
        shuffle, seed: permute the samples each epoch with :func:`epoch_permutation` first.
    """

    def __init__(self, n: int, global_batch_size: int, num_replicas: int | None = None, rank: int | None = None,
                 *, shuffle: bool = False, seed: int = 0) -> None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.num_replicas = num_replicas if num_replicas is not None else (
            torch.distributed.get_world_size() if distributed else 1)
        self.rank = rank if rank is not None else (torch.distributed.get_rank() if distributed else 0)
        if global_batch_size % self.num_replicas:
            raise ValueError(f"global_batch_size {global_batch_size} is not divisible by {self.num_replicas} processes")
        self.n, self.global_batch_size = n, global_batch_size
        self.local = global_batch_size // self.num_replicas
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def __iter__(self) -> Iterator[int]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else np.arange(self.n)
        self.epoch += 1
        steps = self.n // self.global_batch_size
        start = self.rank * self.local
        for k in range(steps):
            base = k * self.global_batch_size + start
            yield from order[base:base + self.local].tolist()

    def __len__(self) -> int:
        return (self.n // self.global_batch_size) * self.local


def to_dataloader(
    x: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 32,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    channels_last_input: bool = True,
    sampler: Sampler | None = None,
    num_workers: int = 0,
) -> DataLoader:
    """A ``DataLoader`` of ``(x, y)`` (or ``(x,)``) batches in a known order.

    Args:
        x: images; channels-last ``(N, H, W, C)`` by default (the layout ``to_tf_dataset`` takes),
            transposed once here to the ``(N, C, H, W)`` that PyTorch models take. Pass
            ``channels_last_input=False`` for arrays that are already channels-first (or tokens).
        y: labels ``(N,)`` (int64 class indices) or ``(N, classes)``; ``None`` for inputs only.
        shuffle: ``False`` keeps the array order; ``True`` uses :class:`PermutationSampler`
            (the same per-epoch orders as ``to_tf_dataset(shuffle=True, seed=seed)``).
        sampler: an explicit sampler (e.g. :class:`ShardSampler` for DDP); overrides ``shuffle``.

    Returns:
        The DataLoader.
    """
    if channels_last_input and x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    tensors = [torch.from_numpy(np.ascontiguousarray(x))]
    if y is not None:
        labels = torch.from_numpy(np.ascontiguousarray(y))
        tensors.append(labels.long() if not labels.is_floating_point() else labels)
    dataset = TensorDataset(*tensors)
    if sampler is None and shuffle:
        sampler = PermutationSampler(len(dataset), seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, drop_last=drop_last,
                      num_workers=num_workers)
