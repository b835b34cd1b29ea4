"""Keras segmentation loss and metric (mirrors ``segmentation_pt.py``); see ``segmentation.py``."""

from __future__ import annotations

import keras
from keras import ops

from deepvision.layers.upsample_tf import resize_bilinear


def _upsampled(logits, labels):
    size = ops.shape(labels)[1:3]
    if tuple(logits.shape[1:3]) == tuple(labels.shape[1:3]) and None not in labels.shape[1:3]:
        return logits
    return resize_bilinear(logits, size)


@keras.saving.register_keras_serializable(package="deepvision")
class SegmentationCrossEntropyTF(keras.losses.Loss):
    """Cross-entropy of logits (N, h, w, C) upsampled to labels (N, H, W), mean over labelled pixels."""

    def __init__(self, ignore_index: int = 255, name: str = "segmentation_cross_entropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.ignore_index = int(ignore_index)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == 4:  # (N, H, W, 1) masks
            labels = labels[..., 0]
        logits = ops.cast(_upsampled(y_pred, labels), "float32")
        valid = ops.not_equal(labels, self.ignore_index)
        safe = ops.where(valid, labels, ops.zeros_like(labels))
        losses = keras.losses.sparse_categorical_crossentropy(safe, logits, from_logits=True)
        weights = ops.cast(valid, "float32")
        # One scalar: the mean over every labelled pixel of the batch (PyTorch's reduction).
        return ops.sum(losses * weights) / ops.maximum(ops.sum(weights), 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "ignore_index": self.ignore_index}


@keras.saving.register_keras_serializable(package="deepvision")
class SegmentationMeanIoUTF(keras.metrics.MeanIoU):
    """``keras.metrics.MeanIoU`` on the argmax of logits upsampled to the labels, ignoring ``ignore_index``."""

    def __init__(self, num_classes: int, ignore_index: int = 255, name: str = "mean_iou", **kwargs) -> None:
        kwargs.pop("ignore_class", None)
        kwargs.pop("sparse_y_pred", None)
        super().__init__(num_classes=int(num_classes), ignore_class=int(ignore_index), sparse_y_pred=True,
                         name=name, **kwargs)
        self.ignore_index = int(ignore_index)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == 4:
            labels = labels[..., 0]
        prediction = ops.argmax(_upsampled(y_pred, labels), axis=-1)
        return super().update_state(labels, prediction, sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("ignore_class", "sparse_y_pred", "sparse_y_true", "target_class_ids", "axis"):
            config.pop(key, None)
        return {**config, "ignore_index": self.ignore_index}
