"""Semantic segmentation training pieces, the same in both backends (no framework import here).

- :func:`segmentation_loss`: softmax cross-entropy on logits upsampled (bilinear, half-pixel centres)
  to the label size, ignoring ``ignore_index`` (255 by default, as transformers' SegFormer and ADE20K),
  averaged over the labelled pixels of the batch (PyTorch's ``cross_entropy(ignore_index=...)``).
- :func:`mean_iou`: mean intersection over union of the argmax of the upsampled logits, ignoring the
  same index; classes that occur in neither prediction nor label are left out of the mean.
  PyTorch: torchmetrics' ``MulticlassJaccardIndex``; Keras: ``keras.metrics.MeanIoU``.

Labels are integer maps (N, H, W); logits are the model's output at any resolution (Keras
(N, h, w, classes), PyTorch (N, classes, h, w))::

    model.compile(optimizer="adam", loss=segmentation_loss("tensorflow"),
                  metrics=[mean_iou("tensorflow", classes)])                      # Keras fit on tf.data
    pt_model.compile(loss=segmentation_loss("pytorch"),
                     metrics={"mean_iou": mean_iou("pytorch", classes)})          # Lightning Trainer.fit
"""

from __future__ import annotations

from typing import Any

from deepvision.backend import PYTORCH, require

IGNORE_INDEX = 255


def segmentation_loss(backend: str, ignore_index: int = IGNORE_INDEX) -> Any:
    """The cross-entropy loss of ``backend``: a ``keras.losses.Loss`` or a callable ``(logits, labels) -> loss``."""
    if require(backend) == PYTORCH:
        from deepvision.training.segmentation_pt import SegmentationCrossEntropyPT

        return SegmentationCrossEntropyPT(ignore_index)
    from deepvision.training.segmentation_tf import SegmentationCrossEntropyTF

    return SegmentationCrossEntropyTF(ignore_index)


def mean_iou(backend: str, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Any:
    """The mean-IoU metric of ``backend`` (a torchmetrics ``Metric`` or a ``keras.metrics.Metric``)."""
    if require(backend) == PYTORCH:
        from deepvision.training.segmentation_pt import SegmentationMeanIoUPT

        return SegmentationMeanIoUPT(num_classes, ignore_index)
    from deepvision.training.segmentation_tf import SegmentationMeanIoUTF

    return SegmentationMeanIoUTF(num_classes, ignore_index)
