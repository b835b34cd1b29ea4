"""The datasets of both backends: shapes, lengths, the split, batching, and TF == PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from deepvision.datasets import load_tiny_nerf
from deepvision.datasets.tiny_nerf import common

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

SMALL = dict(pos_embed=3, num_ray_samples=5, download=False)


def tf_elements(dataset) -> list:
    return list(dataset.as_numpy_iterator())


def pt_elements(dataset) -> list:
    return [(image.numpy(), (rays.numpy(), t_vals.numpy())) for image, (rays, t_vals) in dataset]


def test_tensorflow_dataset_shapes_and_split(make_npz):
    train, valid = load_tiny_nerf(make_npz(n=10, height=6, width=8), 0.2, "tensorflow", **SMALL)
    assert isinstance(train, tf.data.Dataset) and type(train).__name__ == "_ZipDataset"
    assert (len(train), len(valid)) == (8, 2)
    image_spec, (rays_spec, t_spec) = train.element_spec
    assert image_spec.shape == (6, 8, 3) and rays_spec.shape == (6 * 8 * 5, 3 + 6 * 3) and t_spec.shape == (6, 8, 5)
    assert image_spec.dtype == rays_spec.dtype == t_spec.dtype == tf.float32
    batch = next(iter(train.batch(4)))
    assert batch[0].shape == (4, 6, 8, 3) and batch[1][0].shape == (4, 240, 21) and batch[1][1].shape == (4, 6, 8, 5)


def test_pytorch_dataset_shapes_split_and_dataloader(make_npz):
    from deepvision.datasets.tiny_nerf.tiny_nerf_pt import TinyNerfDataset

    train, valid = load_tiny_nerf(make_npz(n=10, height=6, width=8), 0.2, "pytorch", **SMALL)
    assert isinstance(train, TinyNerfDataset) and isinstance(train, torch.utils.data.Dataset)
    assert (len(train), len(valid)) == (8, 2)
    image, (rays, t_vals) = train[0]
    assert image.shape == (6, 8, 3) and rays.shape == (240, 21) and t_vals.shape == (6, 8, 5)
    assert image.dtype == rays.dtype == t_vals.dtype == torch.float32
    loader = torch.utils.data.DataLoader(train, batch_size=3, drop_last=True)
    batches = list(loader)
    assert len(batches) == 2
    images, (rays, t_vals) = batches[0]
    assert images.shape == (3, 6, 8, 3) and rays.shape == (3, 240, 21) and t_vals.shape == (3, 6, 8, 5)
    np.testing.assert_array_equal(valid[-1][0].numpy(), valid[1][0].numpy())
    with pytest.raises(IndexError):
        valid[2]
    assert "TinyNerfDataset(len=8" in repr(train)


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_published_sizes(make_npz, backend):
    # 106 images as in the published file (tiny ones, to stay fast): 84 train, 22 validate.
    train, valid = load_tiny_nerf(make_npz(n=106, height=2, width=2), backend=backend, download=False)
    assert (len(train), len(valid)) == (84, 22)
    # Full 100x100 images with the default options: (320000, 99) rays per element.
    train, valid = load_tiny_nerf(make_npz("big.npz", n=2, height=100, width=100), 0.5, backend, download=False)
    assert (len(train), len(valid)) == (1, 1)
    image, (rays, t_vals) = next(iter(train))
    assert tuple(image.shape) == (100, 100, 3)
    assert tuple(rays.shape) == (320000, 99)
    assert tuple(t_vals.shape) == (100, 100, 32)


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_empty_validation_split(make_npz, backend):
    train, valid = load_tiny_nerf(make_npz(n=3), 0.0, backend, **SMALL)
    assert (len(train), len(valid)) == (3, 0)


@pytest.mark.parametrize("jitter", [False, True])
def test_backends_agree(make_npz, jitter):
    # Realistic poses (cameras ~4 units out) and all 16 frequencies: sin(2^15 x) is the hardest case.
    path = make_npz(n=6, height=5, width=7)
    options = dict(validation_split=0.5, pos_embed=16, num_ray_samples=9, near=1.5, far=7.0, jitter=jitter, seed=11)
    tf_sets = load_tiny_nerf(path, backend="tensorflow", **options)
    pt_sets = load_tiny_nerf(path, backend="pytorch", **options)
    for tf_set, pt_set in zip(tf_sets, pt_sets):
        for (tf_image, (tf_rays, tf_t)), (pt_image, (pt_rays, pt_t)) in zip(tf_elements(tf_set), pt_elements(pt_set)):
            np.testing.assert_array_equal(tf_image, pt_image)
            np.testing.assert_array_equal(tf_t, pt_t)
            np.testing.assert_array_equal(tf_rays[:, :3], pt_rays[:, :3])  # sample points: bit-identical
            assert np.abs(tf_rays - pt_rays).max() <= 1e-5  # sin/cos may differ in the last bit


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_values_match_the_reference_and_the_hand_case(make_npz, backend):
    # Image 1 has the pose of the hand-computed case of test_tiny_nerf_math.
    poses = np.tile(np.eye(4, dtype=np.float32), (2, 1, 1))
    poses[1, :3] = [[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0]]
    path = make_npz(n=2, height=4, width=4, poses=poses, focal=np.array(2.0))
    train, valid = load_tiny_nerf(path, 0.5, backend, pos_embed=2, num_ray_samples=3, download=False)
    (_, (rays0, t0)), (_, (rays1, _)) = (next(iter(ds)) for ds in (train, valid))
    rays0, t0, rays1 = (np.asarray(x) for x in (rays0, t0, rays1))
    reference, _ = common.rays_for_pose(np.eye(4), 4, 4, 2.0, pos_embed=2, num_samples=3)
    np.testing.assert_allclose(rays0, reference, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(t0[0, 0], [2.0, 4.0, 6.0])
    # Identity pose, centre pixel (2, 2), first sample: the point (0, 0, -2).
    np.testing.assert_array_equal(rays0[(2 * 4 + 2) * 3, :3], [0.0, 0.0, -2.0])
    # Rotated pose, corner pixel, middle sample: (1, 2, 3) + 4 * (-1, -1, -1).
    x = np.array([-3.0, -2.0, -1.0])
    expected = np.concatenate([x, np.sin(x), np.cos(x), np.sin(2 * x), np.cos(2 * x)])
    np.testing.assert_allclose(rays1[1], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_jitter_is_deterministic_per_seed(make_npz, backend):
    path = make_npz(n=4)

    def t_vals(seed, jitter=True):
        train, _ = load_tiny_nerf(path, 0.5, backend, jitter=jitter, seed=seed, **SMALL)
        return [np.asarray(t) for _, (_, t) in (train[i] for i in range(2))] if backend == "pytorch" else [
            t for _, (_, t) in tf_elements(train)
        ]

    first = t_vals(0)
    assert all(np.array_equal(a, b) for a, b in zip(first, t_vals(0)))
    assert not any(np.array_equal(a, b) for a, b in zip(first, t_vals(1)))
    assert not np.array_equal(first[0], first[1])  # each image gets its own noise
    base = t_vals(0, jitter=False)[0]
    step = (common.FAR - common.NEAR) / SMALL["num_ray_samples"]
    assert (first[0] >= base).all() and (first[0] - base < step + 1e-6).all()
    if backend == "tensorflow":
        # Re-iterating (a new epoch) gives the same samples.
        train, _ = load_tiny_nerf(path, 0.5, backend, jitter=True, seed=0, **SMALL)
        np.testing.assert_array_equal(tf_elements(train)[1][1][1], tf_elements(train)[1][1][1])
