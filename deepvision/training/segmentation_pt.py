"""PyTorch segmentation loss and metric (mirrors ``segmentation_tf.py``); see ``segmentation.py``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from deepvision.layers.upsample_pt import resize_bilinear


def _upsampled(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    size = labels.shape[-2:]
    return logits if logits.shape[-2:] == size else resize_bilinear(logits, size)


class SegmentationCrossEntropyPT:
    """``(logits (N, C, h, w), labels (N, H, W)) -> loss``: cross-entropy on upsampled logits, ignoring a label."""

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = int(ignore_index)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.dim() == 4:  # (N, 1, H, W) masks
            labels = labels[:, 0]
        return F.cross_entropy(_upsampled(logits, labels).float(), labels.long(), ignore_index=self.ignore_index)

    def __repr__(self) -> str:
        return f"SegmentationCrossEntropyPT(ignore_index={self.ignore_index})"


class SegmentationMeanIoUPT(MulticlassJaccardIndex):
    """torchmetrics' ``MulticlassJaccardIndex`` (macro) on the argmax of logits upsampled to the labels."""

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs) -> None:
        super().__init__(num_classes=int(num_classes), ignore_index=int(ignore_index), average="macro", **kwargs)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if target.dim() == 4:
            target = target[:, 0]
        super().update(_upsampled(preds, target).argmax(dim=1), target.long())
