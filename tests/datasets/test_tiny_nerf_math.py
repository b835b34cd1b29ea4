"""Ray geometry, encoding, sample positions and the split: the NumPy reference, no framework."""

from __future__ import annotations

import numpy as np
import pytest

from deepvision.datasets.tiny_nerf import common

# 90 degrees about z (x -> y, y -> -x) and a translation, to check rotation and origin together.
ROT_Z = np.array([[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]])


def test_identity_pose_centre_and_corner_directions():
    origins, directions = common.camera_rays(4, 4, 2.0, np.eye(4))
    assert origins.shape == directions.shape == (4, 4, 3)
    assert origins.dtype == directions.dtype == np.float32
    np.testing.assert_array_equal(origins, 0.0)
    # Centre pixel (row 2, column 2) of a 4x4 image looks straight down -z.
    np.testing.assert_array_equal(directions[2, 2], [0.0, 0.0, -1.0])
    # Top-left pixel: x = (0 - 2) / 2 = -1, y = -(0 - 2) / 2 = +1 (image rows go down, y goes up).
    np.testing.assert_array_equal(directions[0, 0], [-1.0, 1.0, -1.0])
    # Bottom-right of a non-square image: column 5 of 6, row 2 of 3, focal 4.
    _, directions = common.camera_rays(3, 6, 4.0, np.eye(4))
    np.testing.assert_allclose(directions[2, 5], [(5 - 3) / 4, -(2 - 1.5) / 4, -1.0])


def test_pose_rotates_directions_and_sets_origin():
    origins, directions = common.camera_rays(4, 4, 2.0, ROT_Z)
    np.testing.assert_array_equal(origins[1, 3], [1.0, 2.0, 3.0])
    # R @ (-1, 1, -1) = (-1, -1, -1) for the rotation about z.
    np.testing.assert_array_equal(directions[0, 0], [-1.0, -1.0, -1.0])
    np.testing.assert_array_equal(directions[2, 2], [0.0, 0.0, -1.0])


def test_rays_points_and_encoding_by_hand():
    rays, t_vals = common.rays_for_pose(ROT_Z, 4, 4, 2.0, pos_embed=2, num_samples=3, near=2.0, far=6.0)
    assert rays.shape == (4 * 4 * 3, 3 + 6 * 2) and rays.dtype == np.float32
    assert t_vals.shape == (4, 4, 3) and t_vals.dtype == np.float32
    np.testing.assert_array_equal(t_vals[3, 1], [2.0, 4.0, 6.0])
    # Row-major (row, column, sample): the corner pixel's middle sample is row 1 of the rays.
    # o + t d = (1, 2, 3) + 4 * (-1, -1, -1).
    x = np.array([-3.0, -2.0, -1.0])
    expected = np.concatenate([x, np.sin(x), np.cos(x), np.sin(2 * x), np.cos(2 * x)])
    np.testing.assert_allclose(rays[1], expected, rtol=0, atol=1e-6)
    # Centre pixel (row 2, column 2), last sample: (1, 2, 3) + 6 * (0, 0, -1).
    np.testing.assert_allclose(rays[(2 * 4 + 2) * 3 + 2, :3], [1.0, 2.0, -3.0])


def test_encoding_layout_and_default_width():
    assert common.encoded_dims(16) == 99
    points = np.array([[0.5, -1.25, 2.0]], dtype=np.float32)
    encoded = common.encode_points(points, 3)
    assert encoded.shape == (1, 21)
    for k in range(3):
        np.testing.assert_allclose(encoded[0, 3 + 6 * k : 6 + 6 * k], np.sin(2.0**k * points[0]), atol=1e-6)
        np.testing.assert_allclose(encoded[0, 6 + 6 * k : 9 + 6 * k], np.cos(2.0**k * points[0]), atol=1e-6)
    assert common.encode_points(points, 0).shape == (1, 3)


def test_t_vals_without_jitter_are_linspace():
    t_vals = common.sample_t_vals(2, 3, 5, 2.0, 6.0)
    np.testing.assert_array_equal(t_vals[1, 2], [2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(common.sample_t_vals(1, 1, 1, 2.0, 6.0), [[[2.0]]])


def test_jitter_is_seeded_bounded_and_per_image():
    def draw(seed, index):
        return common.sample_t_vals(6, 5, 8, 2.0, 6.0, jitter=True, seed=seed, index=index)

    base = common.sample_t_vals(6, 5, 8, 2.0, 6.0)
    first = draw(0, 3)
    np.testing.assert_array_equal(first, draw(0, 3))
    assert not np.array_equal(first, draw(1, 3))
    assert not np.array_equal(first, draw(0, 4))
    noise = first - base
    assert noise.min() >= 0.0 and noise.max() < (6.0 - 2.0) / 8 + 1e-6
    assert len(np.unique(noise)) > 200  # every sample of every ray gets its own noise


def test_split_sizes():
    assert common.split_sizes(106, 0.2) == (84, 22)
    assert common.split_sizes(10, 0.2) == (8, 2)
    assert common.split_sizes(10, 0.3) == (7, 3)
    assert common.split_sizes(10, 0.7) == (3, 7)
    assert common.split_sizes(10, 0.0) == (10, 0)
    with pytest.raises(ValueError, match="no training image"):
        common.split_sizes(1, 0.5)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(validation_split=1.0), ValueError),
        (dict(validation_split=-0.1), ValueError),
        (dict(validation_split="0.2"), TypeError),
        (dict(pos_embed=-1), ValueError),
        (dict(pos_embed=2.5), TypeError),
        (dict(num_ray_samples=0), ValueError),
        (dict(seed=-1), ValueError),
        (dict(near=6.0, far=2.0), ValueError),
        (dict(far=float("inf")), ValueError),
    ],
)
def test_bad_options(kwargs, error):
    options = dict(validation_split=0.2, pos_embed=16, num_ray_samples=32, near=2.0, far=6.0, seed=0)
    options.update(kwargs)
    with pytest.raises(error):
        common.check_options(**options)
