"""The segmentation demo: its dataset is deterministic and labelled as documented; a tiny run hands off exactly."""

from __future__ import annotations

import numpy as np
import pytest

from deepvision.segmentation_demo import CLASSES, IGNORE, main, make_dataset

pytestmark = pytest.mark.xdist_group("segformer")


def test_dataset_is_deterministic_and_labelled():
    images, labels = make_dataset(12, seed=3)
    again, labels_again = make_dataset(12, seed=3)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert images.shape == (12, 64, 64, 3) and images.min() >= 0 and images.max() <= 1
    assert set(np.unique(labels)) <= {*range(len(CLASSES)), IGNORE}
    assert {1, 2, 3} <= set(np.unique(labels))  # every shape class occurs
    assert (labels == IGNORE).any() and (labels == 0).mean() > 0.3
    assert not np.array_equal(make_dataset(2, seed=4)[0], images[:2])


def test_tiny_run_trains_in_keras_and_fine_tunes_in_lightning(tmp_path, capsys):
    code = main(["--task", "segmentation", "--train", "8", "--test", "4", "--epochs", "1", "--fine-tune-epochs", "1",
                 "--batch-size", "4", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "hand-off exact" in out and "identical predictions" in out
    assert (tmp_path / "segmentation.png").stat().st_size > 0
    assert (tmp_path / "SegFormer_keras.safetensors").is_file()
