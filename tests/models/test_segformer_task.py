"""SegFormer end to end: the loss and mean IoU agree across backends; Keras fit and Lightning fit run."""

from __future__ import annotations

import numpy as np
import pytest

from deepvision import testing
from deepvision.portable import to_backend
from deepvision.registry import build_from_neutral_config
from deepvision.training.segmentation import mean_iou, segmentation_loss

CLASSES = 4
CONFIG = {"input_shape": [33, 41, 3], "classes": CLASSES, "decoder_dim": 8, "embed_dims": [8, 16, 24, 32],
          "depths": [1, 1, 1, 1], "num_heads": [1, 2, 2, 4], "head_dropout": 0.0}
pytestmark = pytest.mark.xdist_group("segformer")


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, 33, 41, 3)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=(2, 33, 41)).astype(np.int64)
    y[:, :5] = 255  # an unlabelled band
    return x, y


@pytest.fixture(scope="module")
def pair():
    tf_model = build_from_neutral_config("SegFormer", CONFIG, "tensorflow")
    testing.randomize_weights(tf_model, seed=1)
    return tf_model, to_backend(tf_model, "pytorch")


def test_loss_and_mean_iou_agree_across_backends(pair):
    import keras
    import torch

    tf_model, pt_model = pair
    x, y = _batch()
    tf_logits = tf_model(keras.ops.convert_to_tensor(x), training=False)
    with torch.no_grad():
        pt_logits = pt_model.eval()(testing.to_framework(x, "pytorch"))
    labels = torch.from_numpy(y)
    tf_loss = float(segmentation_loss("tensorflow")(keras.ops.convert_to_tensor(y), tf_logits))
    pt_loss = float(segmentation_loss("pytorch")(pt_logits, labels))
    assert abs(tf_loss - pt_loss) <= 1e-5 * max(1.0, abs(pt_loss))
    # The ignored pixels do not count: the loss equals the mean over labelled pixels only.
    full = torch.nn.functional.interpolate(pt_logits, size=(33, 41), mode="bilinear", align_corners=False)
    per_pixel = torch.nn.functional.cross_entropy(full, labels.clamp(max=CLASSES - 1), reduction="none")
    assert abs(per_pixel[labels != 255].mean().item() - pt_loss) <= 1e-6
    tf_metric, pt_metric = mean_iou("tensorflow", CLASSES), mean_iou("pytorch", CLASSES)
    tf_metric.update_state(keras.ops.convert_to_tensor(y), tf_logits)
    pt_metric.update(pt_logits, labels)
    assert abs(float(tf_metric.result()) - float(pt_metric.compute())) <= 1e-6


def test_mean_iou_ignores_the_index_and_absent_classes():
    import keras
    import torch

    labels = np.array([[[0, 0, 1, 255]]])
    # Logits whose argmax is [0, 1, 1, 2]: class 0 IoU 1/2, class 1 IoU 1/2, class 2 only on an ignored pixel,
    # class 3 absent: mean over classes 0 and 1 = 0.5.
    pred = np.eye(4, dtype=np.float32)[[0, 1, 1, 2]][None, None]  # (1, 1, 4, 4) channels-last
    tf_metric, pt_metric = mean_iou("tensorflow", 4), mean_iou("pytorch", 4)
    tf_metric.update_state(keras.ops.convert_to_tensor(labels), keras.ops.convert_to_tensor(pred))
    pt_metric.update(torch.from_numpy(pred.transpose(0, 3, 1, 2).copy()), torch.from_numpy(labels))
    assert float(tf_metric.result()) == pytest.approx(0.5)
    assert float(pt_metric.compute()) == pytest.approx(0.5)


def test_keras_fit_and_lightning_fit_give_the_same_loss_on_the_same_batch(pair, tmp_path):
    import keras
    import pytorch_lightning as pl
    import tensorflow as tf
    import torch

    tf_model, _ = pair
    x, y = _batch(seed=4)
    keras_model = to_backend(tf_model, "tensorflow")
    pt_model = to_backend(tf_model, "pytorch")
    keras_model.compile(optimizer=keras.optimizers.SGD(0.0), loss=segmentation_loss("tensorflow"),
                        metrics=[mean_iou("tensorflow", CLASSES)])
    history = keras_model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(2), epochs=1, verbose=0)
    pt_model.compile(loss=segmentation_loss("pytorch"), metrics={"mean_iou": mean_iou("pytorch", CLASSES)},
                     optimizer=torch.optim.SGD(pt_model.parameters(), lr=0.0))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(testing.to_framework(x, "pytorch"), torch.from_numpy(y)), batch_size=2)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(pt_model, loader)
    keras_loss = history.history["loss"][0]
    lightning_loss = float(trainer.callback_metrics["train_loss"])
    # Training mode in both (batch-statistics BatchNorm), learning rate 0: one batch, the same loss.
    assert abs(keras_loss - lightning_loss) <= 1e-5 * max(1.0, abs(keras_loss))
    assert np.isfinite(history.history["mean_iou"][0])
    assert 0.0 <= float(trainer.callback_metrics["train_mean_iou"]) <= 1.0
