"""NeRF: the model in both backends, the renderer against closed forms, training and hand-off."""

from __future__ import annotations

import numpy as np
import pytest

import deepvision
from deepvision import nerf, testing
from deepvision.portable import load_portable, save_portable, to_backend

SMALL = {"depth": 3, "width": 32, "skips": [2], "branch_width": 16, "position_frequencies": 4,
         "direction_frequencies": 2}
TOL = 1e-5


@pytest.fixture(scope="module")
def pair():
    tf_model = deepvision.models.NeRF(backend="tensorflow", **SMALL)
    testing.randomize_weights(tf_model, seed=1)
    return tf_model, to_backend(tf_model, "pytorch")


def _rays(count: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3)).astype(np.float32)
    return (rng.normal(size=(count, 3)) * 0.3).astype(np.float32), directions


def _numpy(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def test_output_is_rgb_and_nonnegative_density_in_both_backends(pair):
    x = np.concatenate(_rays(64), axis=1) * 3.0
    tf_out, pt_out = testing.forward(pair[0], x), testing.forward(pair[1], x)
    assert tf_out.shape == pt_out.shape == (64, 4)
    assert testing.max_relative_error(pt_out, tf_out) <= TOL
    for out in (tf_out, pt_out):
        assert out[:, :3].min() >= 0.0 and out[:, :3].max() <= 1.0 and out[:, 3].min() >= 0.0


def test_registered_counts_are_the_papers_network():
    # The contract test checks both backends against these; here: they are the paper's MLP's.
    from deepvision.models.nerf import PARAMETERS

    assert PARAMETERS == {"NeRF": 595_844, "NeRFSmall": 92_612}


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
@pytest.mark.parametrize("bad, message", [
    ({"skips": [0]}, "every skip must be a trunk layer index"),
    ({"density_activation": "exp"}, "density_activation must be one of"),
    ({"width": 0}, "width must be an integer >= 1"),
])
def test_bad_config_raises_the_same_error_in_both_backends(backend, bad, message):
    with pytest.raises(ValueError, match=message):
        deepvision.models.NeRF(backend=backend, **bad)


class _Slab:
    """Analytic field: density ``sigma`` inside ``low < z < high``, colour ``COLOUR`` everywhere."""

    COLOUR = np.array([0.2, 0.5, 0.8], np.float32)

    def __init__(self, backend: str, sigma: float, low: float, high: float) -> None:
        self.backend, self.sigma, self.low, self.high = backend, sigma, low, high

    def __call__(self, x, training=False):
        if self.backend == "pytorch":
            import torch

            z = x[:, 2]
            inside = ((z > self.low) & (z < self.high)).float()
            return torch.cat([torch.from_numpy(self.COLOUR).expand(len(x), 3), (inside * self.sigma)[:, None]], 1)
        import keras

        z = x[:, 2]
        inside = keras.ops.cast(keras.ops.logical_and(z > self.low, z < self.high), "float32")
        colour = keras.ops.broadcast_to(keras.ops.convert_to_tensor(self.COLOUR), (keras.ops.shape(x)[0], 3))
        return keras.ops.concatenate([colour, (inside * self.sigma)[:, None]], axis=1)


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
@pytest.mark.parametrize("white", [False, True])
def test_uniform_slab_matches_closed_form(backend, white):
    # Rays straight down from z = 10 with |d| = 2: samples t = 2.0, 2.1, ..., 6.0 sit at z = 10 - 2t;
    # the slab 2.05 < z < 4.05 holds exactly the ten samples t = 3.0 .. 3.9, each an interval of
    # length 0.1 * 2 = 0.2 in space, so the optical depth is 10 * 0.2 * sigma = 2 sigma.
    sigma = 0.8
    origins = np.tile(np.array([[0.3, -0.2, 10.0]], np.float32), (5, 1))
    directions = np.tile(np.array([[0.0, 0.0, -2.0]], np.float32), (5, 1))
    out = nerf.render_rays(_Slab(backend, sigma, 2.05, 4.05), origins, directions, 2.0, 6.0, 41,
                           white_background=white, backend=backend)
    acc = 1.0 - np.exp(-2.0 * sigma)
    # Transmittance before the k-th slab sample is exp(-0.2 sigma k): an independent geometric sum.
    k = np.arange(10)
    weights = np.exp(-0.2 * sigma * k) * (1.0 - np.exp(-0.2 * sigma))
    depth = float(np.sum(weights * (3.0 + 0.1 * k)))
    rgb = _Slab.COLOUR * acc + (1.0 - acc if white else 0.0)
    np.testing.assert_allclose(_numpy(out["acc"]), acc, atol=TOL)
    np.testing.assert_allclose(_numpy(out["depth"]), depth, atol=TOL * depth)
    np.testing.assert_allclose(_numpy(out["rgb"]), np.tile(rgb, (5, 1)), atol=TOL)


def _reference_render(raw: np.ndarray, t: np.ndarray, directions: np.ndarray) -> dict[str, np.ndarray]:
    # The paper's quadrature with an explicit loop over samples (no cumulative sums), float64.
    raw, t = raw.astype(np.float64), t.astype(np.float64)
    norm = np.linalg.norm(directions.astype(np.float64), axis=-1)
    out = {"rgb": np.zeros((len(t), 3)), "depth": np.zeros(len(t)), "acc": np.zeros(len(t))}
    transmittance = np.ones(len(t))
    for i in range(t.shape[1]):
        delta = (t[:, i + 1] - t[:, i] if i + 1 < t.shape[1] else np.full(len(t), 1e10)) * norm
        alpha = 1.0 - np.exp(-raw[:, i, 3] * delta)
        weight = transmittance * alpha
        out["rgb"] += weight[:, None] * raw[:, i, :3]
        out["depth"] += weight * t[:, i]
        out["acc"] += weight
        transmittance = transmittance * (1.0 - alpha)
    return out


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_compositing_matches_an_explicit_loop_on_a_model(pair, backend):
    model = pair[0] if backend == "tensorflow" else pair[1]
    origins, directions = _rays(30, seed=4)
    t = nerf.stratified_distances(30, 2.0, 6.0, 24, np.random.default_rng(2).random((30, 24), dtype=np.float32))
    out = nerf.render_rays(model, origins, directions, 2.0, 6.0, 24, t_vals=t)
    points = origins[:, None] + directions[:, None] * t[..., None]
    views = np.broadcast_to((directions / np.linalg.norm(directions, axis=-1, keepdims=True))[:, None], points.shape)
    raw = testing.forward(model, np.concatenate([points, views], -1).reshape(-1, 6)).reshape(30, 24, 4)
    for key, value in _reference_render(raw, t, directions).items():
        np.testing.assert_allclose(_numpy(out[key]), value, atol=TOL * max(1.0, np.abs(value).max()), err_msg=key)


@pytest.mark.parametrize("fine", [0, 16])
def test_renders_agree_between_backends(pair, fine):
    origins, directions = _rays(50, seed=1)
    a = nerf.render_rays(pair[0], origins, directions, 2.0, 6.0, 32, jitter=True, seed=3, num_fine_samples=fine)
    b = nerf.render_rays(pair[1], origins, directions, 2.0, 6.0, 32, jitter=True, seed=3, num_fine_samples=fine)
    keys = ["rgb", "depth", "acc"] + (["rgb_coarse", "depth_coarse", "acc_coarse"] if fine else [])
    for key in keys:
        assert testing.max_relative_error(_numpy(b[key]), _numpy(a[key])) <= TOL, key
    if fine:
        assert _numpy(a["weights"]).shape == (50, 32 + fine)


def test_fine_samples_concentrate_where_the_density_is():
    # All the coarse weight in one slab: the fine samples must fall inside it.
    slab = _Slab("pytorch", 5.0, 3.95, 6.05)  # z in (3.95, 6.05) is t in (1.975, 3.025)
    origins = np.array([[0.0, 0.0, 10.0]], np.float32)
    directions = np.array([[0.0, 0.0, -2.0]], np.float32)
    from deepvision.nerf.rendering import ops_for, sample_fine

    ops = ops_for("pytorch")
    t = ops.tensor(nerf.stratified_distances(1, 2.0, 6.0, 41))
    coarse = nerf.composite(ops, nerf.rendering.query(ops, slab, ops.tensor(origins), ops.tensor(directions), t),
                            t, ops.tensor(directions))
    u = ops.tensor(nerf.rendering.fine_quantiles(1, 64))
    samples = _numpy(sample_fine(ops, t, coarse["weights"], 64, u))
    assert np.all(np.diff(samples[0]) >= 0)
    assert np.mean((samples > 1.95) & (samples < 3.1)) > 0.9


def test_render_image_in_chunks_equals_one_pass(pair):
    pose = nerf.orbit_poses(3)[1]
    whole = nerf.render_image(pair[1], pose, 20.0, 12, 10, num_samples=16, chunk=10_000)
    chunks = nerf.render_image(pair[1], pose, 20.0, 12, 10, num_samples=16, chunk=7)
    tf_view = nerf.render_image(pair[0], pose, 20.0, 12, 10, num_samples=16, chunk=7)
    assert whole["rgb"].shape == (12, 10, 3) and whole["depth"].shape == whole["acc"].shape == (12, 10)
    for key in whole:
        np.testing.assert_allclose(chunks[key], whole[key], atol=1e-6)
        assert testing.max_relative_error(tf_view[key], whole[key]) <= TOL


def test_render_rays_rejects_bad_input(pair):
    with pytest.raises(ValueError, match=r"origins must have shape \(R, 3\)"):
        nerf.render_rays(pair[1], np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32), 2.0, 6.0, 8)
    with pytest.raises(ValueError, match="near must be smaller than far"):
        nerf.render_rays(pair[1], *_rays(4), 6.0, 2.0, 8)


def _batch(count: int = 64, seed: int = 5):
    origins, directions = _rays(count, seed)
    colours = np.random.default_rng(seed).random((count, 3), dtype=np.float32)
    return origins, directions, colours


def _keras_step(model, batch, fine: int):
    import tensorflow as tf

    trainer = nerf.NeRFTrainer(model, num_samples=16, num_fine_samples=fine, jitter=False)
    origins, directions, colours = batch
    with tf.GradientTape() as tape:
        rgb = trainer((origins, directions), training=True)
        loss = tf.reduce_mean((rgb - colours) ** 2)
    grads = tape.gradient(loss, [layer.kernel for layer in _dense_layers(model)])
    return float(loss), [g.numpy() for g in grads]


def _dense_layers(model):
    return [*model.trunk, model.density, model.feature, model.view, model.rgb]


@pytest.mark.parametrize("fine", [0, 8])
def test_one_training_step_gives_the_same_loss_and_gradients(pair, fine):
    import torch

    batch = _batch()
    tf_loss, tf_grads = _keras_step(pair[0], batch, fine)
    trainer = nerf.NeRFTrainer(pair[1], num_samples=16, num_fine_samples=fine, jitter=False)
    trainer.train()
    pt_loss = trainer.training_step(tuple(torch.from_numpy(a) for a in batch), 0)
    trainer.nerf.zero_grad()
    pt_loss.backward()
    assert abs(pt_loss.item() - tf_loss) <= TOL * tf_loss
    for tf_grad, layer in zip(tf_grads, _dense_layers(trainer.nerf)):
        pt_grad = layer.weight.grad.numpy().T  # torch (out, in) -> Keras (in, out)
        assert testing.max_relative_error(pt_grad, tf_grad) <= 1e-4
    trainer.nerf.zero_grad()


def test_keras_fit_and_lightning_fit_train_and_log_psnr(tmp_path):
    import pytorch_lightning as pl
    import tensorflow as tf
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    scene = nerf.make_scene(4, 16)
    rays = nerf.image_rays(scene["images"], scene["poses"], float(scene["focal"]))
    tf_model = deepvision.models.NeRF(backend="tensorflow", **SMALL)
    keras_trainer = nerf.NeRFTrainer(tf_model, num_samples=8)
    keras_trainer.compile()
    data = tf.data.Dataset.from_tensor_slices((rays[:2], rays[2])).batch(256)
    history = keras_trainer.fit(data, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    assert np.isfinite(history.history["psnr"]).all()

    path = save_portable(tf_model, tmp_path / "nerf.safetensors")
    pt_model = load_portable(path, backend="pytorch")
    lightning = nerf.NeRFTrainer(pt_model, num_samples=8, learning_rate=1e-3)
    loader = DataLoader(TensorDataset(*(torch.from_numpy(a) for a in rays)), batch_size=256)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(lightning, loader)
    # Logged per step and per epoch, as the classifiers' metrics are.
    assert {"train_loss_step", "train_loss_epoch", "train_psnr_epoch"} <= set(trainer.logged_metrics)
    assert float(trainer.logged_metrics["train_psnr_epoch"]) > 0


def test_tiny_nerf_loader_elements_feed_both_trainers(tmp_path, pair):
    import tensorflow as tf

    from deepvision.datasets import load_tiny_nerf

    scene = nerf.make_scene(5, 8)
    path = nerf.save_scene(scene, tmp_path / "scene.npz")
    kwargs = {"validation_split": 0.2, "pos_embed": 3, "num_ray_samples": 12, "download": False}
    pt_train, _ = load_tiny_nerf(save_path=path, backend="pytorch", **kwargs)
    tf_train, _ = load_tiny_nerf(save_path=path, backend="tensorflow", **kwargs)
    image, (samples, t_vals) = pt_train[0]
    pt_trainer = nerf.NeRFTrainer(pair[1], jitter=False)
    pt_trainer.eval()
    from_samples = pt_trainer(samples[None], t_vals[None])[0].detach().numpy()
    assert from_samples.shape == (8, 8, 3)
    # The same pixels rendered from the camera rays at the loader's own distances.
    origins, directions = (a.reshape(-1, 3) for a in
                           deepvision.datasets.tiny_nerf.common.camera_rays(8, 8, float(scene["focal"]), scene["poses"][0]))
    direct = nerf.render_rays(pair[1], origins, directions, 2.0, 6.0, 12, t_vals=t_vals.numpy().reshape(64, 12))
    np.testing.assert_allclose(from_samples.reshape(-1, 3), _numpy(direct["rgb"]), atol=1e-5)
    tf_image, tf_rays = next(iter(tf_train.batch(1)))
    keras_rgb = nerf.NeRFTrainer(pair[0], jitter=False)(tf_rays, training=False)
    assert testing.max_relative_error(np.asarray(keras_rgb)[0], from_samples) <= TOL
    assert isinstance(tf_image, tf.Tensor) and float(pt_trainer.training_step((image[None], (samples[None], t_vals[None])), 0)) >= 0


def test_pytorch_nerf_refuses_the_classifier_training_step():
    model = deepvision.models.NeRFSmall(backend="pytorch")
    with pytest.raises(TypeError, match="NeRFTrainer"):
        model.training_step((None, None), 0)


def test_handoff_after_training_renders_identically(tmp_path, pair):
    pose = nerf.orbit_poses(5)[2]
    path = save_portable(pair[0], tmp_path / "trained.safetensors")
    resumed = load_portable(path, backend="pytorch")
    a = nerf.render_image(pair[0], pose, 15.0, 9, 11, num_samples=16)
    b = nerf.render_image(resumed, pose, 15.0, 9, 11, num_samples=16)
    for key in a:
        assert testing.max_relative_error(b[key], a[key]) <= TOL
    back = load_portable(save_portable(resumed, tmp_path / "back.safetensors"), backend="tensorflow")
    for w_a, w_b in zip(pair[0].weights, back.weights):
        np.testing.assert_array_equal(np.asarray(w_a), np.asarray(w_b))  # bit-exact round trip


def test_scene_views_pictures_and_demo(tmp_path, pair):
    scene = nerf.make_scene(3, 24)
    assert scene["images"].shape == (3, 24, 24, 3) and scene["poses"].shape == (3, 4, 4)
    covered = (scene["images"] < 1.0).any(-1).mean()
    assert 0.05 < covered < 0.6  # the spheres fill part of every view, the white background the rest
    black = nerf.make_scene(1, 24, background=0.0)["images"]
    assert np.array_equal(black > 0, (scene["images"][:1] < 1.0))  # the same spheres over black
    png = nerf.save_views(pair[1], scene["poses"][:2], float(scene["focal"]), 24, 24, tmp_path / "v.png",
                          truth=scene["images"][:2], num_samples=8)
    gif = nerf.save_orbit(pair[1], float(scene["focal"]), 16, 16, tmp_path / "o.gif", frames=3, num_samples=8)
    from PIL import Image

    assert Image.open(png).size == (48, 48)
    assert Image.open(gif).n_frames == 3


def test_demo_runs_end_to_end_with_identical_handoff(tmp_path, capsys):
    from deepvision.nerf.demo import build_parser, run

    args = build_parser().parse_args(["--steps", "3", "--image-size", "16", "--views", "8", "--batch-size", "128",
                                      "--num-samples", "8", "--out", str(tmp_path)])
    results = run(args)
    first, handoff, _ = results.values()
    assert abs(first - handoff) < 1e-3  # dB: the same network in the other backend
    assert (tmp_path / "heldout_view.png").exists() and (tmp_path / "nerf.safetensors").exists()
    assert "held-out PSNR" in capsys.readouterr().out
