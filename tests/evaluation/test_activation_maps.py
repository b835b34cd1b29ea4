"""ActivationMaps (Grad-CAM++) in both backends.

Proofs asked for by the issue: (1) the same weights in both backends give the same heatmaps,
(2) on a model whose class evidence can only come from one region the peak falls in that region,
(3) an independent numpy computation for a tiny model matches.
"""

from __future__ import annotations

import numpy as np
import pytest

from . import _models as M

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from deepvision.backend import BackendError  # noqa: E402
from deepvision.evaluation import ActivationMaps  # noqa: E402

TOLERANCE = 1e-4  # cross-backend max abs difference allowed by the issue


def nchw(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def check_heatmaps(heatmaps: np.ndarray, shape: tuple[int, ...]) -> None:
    assert heatmaps.shape == shape
    assert heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0


# --------------------------------------------------------------------------------------------
# (1) cross-backend agreement
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("class_index", [None, 3, [0, 1, 2, 4, 4, 0]])
def test_cnn_same_heatmaps_in_both_backends(class_index):
    keras_model = M.keras_cnn()
    torch_model = M.torch_cnn_mirror(keras_model)
    images = np.random.default_rng(10).random((6, 16, 12, 3)).astype("float32")
    tf_maps = ActivationMaps(keras_model, backend="tensorflow")
    pt_maps = ActivationMaps(torch_model, backend="pytorch")
    tf_heat = tf_maps.compute(images, class_index=class_index)
    pt_heat = pt_maps.compute(torch.from_numpy(nchw(images)), class_index=class_index)
    check_heatmaps(tf_heat, (6, 16, 12))
    check_heatmaps(pt_heat, (6, 16, 12))
    assert np.abs(tf_heat - pt_heat).max() <= TOLERANCE
    np.testing.assert_array_equal(tf_maps.last_result.class_indices, pt_maps.last_result.class_indices)
    assert tf_maps.target_description == "output of conv2"
    assert pt_maps.target_description == "output of relu2"  # the last 4-D map; relu2 is in place


def test_vit_tokens_same_heatmaps_in_both_backends():
    keras_model = M.keras_vit()
    torch_model = M.torch_vit_mirror(keras_model)
    images = np.random.default_rng(11).random((5, 8, 12, 3)).astype("float32")
    tf_maps, pt_maps = ActivationMaps(keras_model), ActivationMaps(torch_model)
    tf_heat = tf_maps.compute(images)
    pt_heat = pt_maps.compute(nchw(images))
    check_heatmaps(tf_heat, (5, 8, 12))
    check_heatmaps(pt_heat, (5, 8, 12))
    assert np.abs(tf_heat - pt_heat).max() <= TOLERANCE
    # The tokens entering the last block: its output's patch tokens never reach the class token.
    assert tf_maps.target_description == "tokens entering block1"
    assert pt_maps.target_description == "tokens entering blocks.1"
    assert (tf_heat.reshape(5, -1).max(axis=1) == 1.0).all()


def test_vit_last_block_output_has_no_patch_gradient():
    # Why the default ViT target is the last block's input: at its output the gradient is zero.
    keras_model = M.keras_vit()
    images = np.random.default_rng(12).random((2, 8, 12, 3)).astype("float32")
    heat = ActivationMaps(keras_model, target_layer="block1").compute(images)
    np.testing.assert_array_equal(heat, 0.0)


@pytest.mark.parametrize("dict_output,softmax", [(True, False), (False, True), (True, True)])
def test_dict_output_and_final_softmax_are_handled(dict_output, softmax):
    plain = M.keras_cnn()
    variant = M.keras_cnn(dict_output=dict_output, softmax=softmax)
    variant.set_weights(plain.get_weights())
    images = np.random.default_rng(13).random((3, 16, 12, 3)).astype("float32")
    expected = ActivationMaps(plain).compute(images)
    np.testing.assert_allclose(ActivationMaps(variant).compute(images), expected, atol=1e-6)
    torch_variant = M.torch_cnn_mirror(plain, dict_output=dict_output, softmax=softmax)
    assert np.abs(ActivationMaps(torch_variant).compute(nchw(images)) - expected).max() <= TOLERANCE


def test_explicit_target_layers_agree():
    keras_model = M.keras_cnn()
    torch_model = M.torch_cnn_mirror(keras_model)
    images = np.random.default_rng(14).random((3, 16, 12, 3)).astype("float32")
    by_name = ActivationMaps(keras_model, target_layer="conv1").compute(images)
    by_layer = ActivationMaps(keras_model, target_layer=keras_model.get_layer("conv1")).compute(images)
    np.testing.assert_array_equal(by_name, by_layer)
    pt_by_name = ActivationMaps(torch_model, target_layer="relu1").compute(nchw(images))
    pt_by_module = ActivationMaps(torch_model, target_layer=torch_model.relu1).compute(nchw(images))
    np.testing.assert_array_equal(pt_by_name, pt_by_module)
    assert np.abs(by_name - pt_by_name).max() <= TOLERANCE


# --------------------------------------------------------------------------------------------
# (2) the peak falls where the class evidence is
# --------------------------------------------------------------------------------------------


def quadrant(corner: str, height: int, width: int) -> tuple[slice, slice]:
    if corner == "top_left":
        return slice(0, height // 2), slice(0, width // 2)
    return slice(height // 2, height), slice(width // 2, width)


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
@pytest.mark.parametrize("corner", ["top_left", "bottom_right"])
def test_peak_in_the_evidence_region(backend, corner):
    height, width = 16, 12
    mask = M.region_mask(height, width, corner)
    model = M.keras_region_model(mask)
    images = np.random.default_rng(15).random((4, height, width, 3)).astype("float32")
    if backend == "pytorch":
        model, images = M.torch_region_mirror(model, mask), nchw(images)
    heatmaps = ActivationMaps(model).compute(images, class_index=0)
    check_heatmaps(heatmaps, (4, height, width))
    rows, cols = quadrant(corner, height, width)
    inside = np.zeros((height, width), bool)
    inside[rows, cols] = True
    for heat in heatmaps:
        assert heat.max() == 1.0  # a real map, not a flat one (whose argmax would be 0, 0)
        peak = np.unravel_index(heat.argmax(), heat.shape)
        assert inside[peak], f"peak {peak} outside the {corner} quadrant"
        assert heat[inside].sum() > 0.9 * heat.sum()


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_each_class_points_at_its_own_evidence(backend):
    # Class 0 reads red, class 1 green: one image, two explanations, two places.
    model = M.keras_colour_model()
    image = M.colour_image()
    if backend == "pytorch":
        model, image = M.torch_colour_mirror(model), M.colour_image(channels_last=False)
    heatmaps = ActivationMaps(model).compute(np.stack([image, image]), class_index=[0, 1])
    red, green = (slice(2, 6), slice(2, 6)), (slice(10, 14), slice(9, 14))
    np.testing.assert_allclose(heatmaps[0][red], 1.0)
    np.testing.assert_array_equal(heatmaps[0][green], 0.0)
    np.testing.assert_allclose(heatmaps[1][green], 1.0)
    np.testing.assert_array_equal(heatmaps[1][red], 0.0)


# --------------------------------------------------------------------------------------------
# (3) independent numpy reference
# --------------------------------------------------------------------------------------------


def _interpolation_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Row o holds the bilinear weights of output pixel o (half-pixel centres, edge clamped)."""
    matrix = np.zeros((size_out, size_in))
    for out in range(size_out):
        source = max((out + 0.5) * size_in / size_out - 0.5, 0.0)
        low = min(int(np.floor(source)), size_in - 1)
        high = min(low + 1, size_in - 1)
        matrix[out, low] += 1.0 - (source - low)
        matrix[out, high] += source - low
    return matrix


def numpy_gradcam_plus_plus(keras_model, image: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Grad-CAM++ of the reference model (valid conv + relu -> flatten -> dense), all by hand."""
    kernel, bias = (np.asarray(w, np.float64) for w in keras_model.get_layer("conv").get_weights())
    dense, dense_bias = (np.asarray(w, np.float64) for w in keras_model.get_layer("logits").get_weights())
    image = image.astype(np.float64)
    height, width, _ = image.shape
    kh, kw, _, channels = kernel.shape
    oh, ow = height - kh + 1, width - kw + 1
    acts = np.zeros((oh, ow, channels))
    for i in range(oh):
        for j in range(ow):
            acts[i, j] = np.tensordot(image[i:i + kh, j:j + kw], kernel, axes=3) + bias
    acts = np.maximum(acts, 0.0)
    logits = acts.reshape(-1) @ dense + dense_bias
    c = int(np.argmax(logits)) if class_index is None else class_index
    grad = dense[:, c].reshape(oh, ow, channels)  # dS_c/dA: the dense weights read A directly
    # The paper's formulas with Y = exp(S), derivatives of a piecewise-linear net.
    y = np.exp(logits[c])
    first, second, third = y * grad, y * grad**2, y * grad**3
    weights = np.zeros(channels)
    for k in range(channels):
        total = acts[:, :, k].sum()
        for i in range(oh):
            for j in range(ow):
                denominator = 2.0 * second[i, j, k] + total * third[i, j, k]
                alpha = second[i, j, k] / denominator if denominator != 0 else 0.0
                weights[k] += alpha * max(first[i, j, k], 0.0)
    cam = np.maximum((acts * weights).sum(axis=2), 0.0)
    cam = _interpolation_matrix(oh, height) @ cam @ _interpolation_matrix(ow, width).T
    return (cam - cam.min()) / (cam.max() - cam.min())


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
@pytest.mark.parametrize("class_index", [None, 2])
def test_matches_numpy_reference(backend, class_index):
    keras_model = M.keras_reference_model()
    images = np.random.default_rng(16).random((3, 6, 5, 2)).astype("float32")
    expected = np.stack([numpy_gradcam_plus_plus(keras_model, image, class_index) for image in images])
    if backend == "tensorflow":
        heatmaps = ActivationMaps(keras_model).compute(images, class_index)
    else:
        heatmaps = ActivationMaps(M.torch_reference_mirror(keras_model)).compute(nchw(images), class_index)
    check_heatmaps(heatmaps, (3, 6, 5))
    np.testing.assert_allclose(heatmaps, expected, atol=1e-5)


# --------------------------------------------------------------------------------------------
# Behaviour and errors
# --------------------------------------------------------------------------------------------


def test_flat_map_gives_zeros():
    keras_model = M.keras_reference_model()
    # A black image: every conv output is relu(bias), the same everywhere.
    heat = ActivationMaps(keras_model).compute(np.zeros((1, 6, 5, 2), "float32"))
    np.testing.assert_array_equal(heat, 0.0)


def test_single_image_and_integer_input():
    keras_model = M.keras_cnn()
    image = (np.random.default_rng(17).random((16, 12, 3)) * 255).astype("uint8")
    heat = ActivationMaps(keras_model).compute(image)
    check_heatmaps(heat, (1, 16, 12))
    torch_model = M.torch_cnn_mirror(keras_model)
    pt_heat = ActivationMaps(torch_model).compute(np.ascontiguousarray(image.transpose(2, 0, 1)))
    assert np.abs(heat - pt_heat).max() <= TOLERANCE


def test_torch_modes_restored_and_frozen_weights_work():
    keras_model = M.keras_cnn()
    torch_model = M.torch_cnn_mirror(keras_model).train()
    torch_model.conv1.eval()  # a mixed state is restored module by module
    for parameter in torch_model.parameters():
        parameter.requires_grad_(False)
    images = np.random.default_rng(18).random((2, 16, 12, 3)).astype("float32")
    heat = ActivationMaps(torch_model).compute(nchw(images))
    assert torch_model.training and torch_model.conv2.training and not torch_model.conv1.training
    assert np.abs(heat - ActivationMaps(keras_model).compute(images)).max() <= TOLERANCE


def test_errors():
    keras_model = M.keras_cnn()
    torch_model = M.torch_cnn_mirror(keras_model)
    images = np.zeros((1, 16, 12, 3), "float32")
    with pytest.raises(BackendError):
        ActivationMaps(keras_model, backend="pytorch")
    with pytest.raises(ValueError, match="No layer named"):
        ActivationMaps(keras_model, target_layer="nope")
    with pytest.raises(ValueError, match="No submodule"):
        ActivationMaps(torch_model, target_layer="nope")
    with pytest.raises(ValueError, match="out of range"):
        ActivationMaps(keras_model).compute(images, class_index=5)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)
            self.head = keras.layers.Dense(2)

        def call(self, x):
            return self.head(keras.ops.mean(self.conv(x), axis=(1, 2)))

    subclassed = Subclassed()
    subclassed(images)
    with pytest.raises(TypeError, match="functional Keras model"):
        ActivationMaps(subclassed)


def test_plot_writes_png(tmp_path):
    keras_model = M.keras_cnn()
    images = np.random.default_rng(19).random((3, 16, 12, 3)).astype("float32")
    maps = ActivationMaps(keras_model)
    path = tmp_path / "figs" / "gradcam.png"
    names = ["zero", "one", "two", "three", "four"]
    fig = maps.plot(images, classnames=names, labels=[1, 2, 3], path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(path).ndim == 3
    assert len(fig.axes) == 2 * 3 + 1  # input and overlay per image, and the colour bar
    colorbar_axes = fig.axes[-1]
    assert "Grad-CAM++" in colorbar_axes.get_ylabel()
    titles = [ax.get_title() for ax in fig.axes[:-1]]
    assert titles[0] == "true: one" and titles[1].startswith("predicted: ")
    pt_fig = ActivationMaps(M.torch_cnn_mirror(keras_model)).plot(nchw(images[:1]), class_index=0,
                                                                 path=tmp_path / "pt.png")
    assert (tmp_path / "pt.png").stat().st_size > 0
    assert pt_fig.axes[1].get_title() == "class: 0"


# --------------------------------------------------------------------------------------------
# deepvision's own models: TensorFlow weights carried to PyTorch through the canonical format
# --------------------------------------------------------------------------------------------



@pytest.mark.parametrize("name,size,expected", [
    ("ResNet18V2", 64, ("output of ", "output of post_act")),
    ("ViTTiny16", 32, ("tokens entering ", "tokens entering blocks.")),
])
def test_deepvision_models_same_heatmaps_in_both_backends(name, size, expected):
    from deepvision.evaluation.activation_maps import to_channels_first_map
    from deepvision.models import create_model, list_models
    from deepvision.portable import to_backend

    if name not in list_models():
        pytest.skip(f"{name} is not registered")
    tf_model = create_model(name, backend="tensorflow", include_top=True, classes=10, input_shape=(size, size, 3))
    pt_model = to_backend(tf_model, "pytorch")
    images = np.random.default_rng(20).random((2, size, size, 3)).astype("float32")
    tf_maps, pt_maps = ActivationMaps(tf_model), ActivationMaps(pt_model)
    tf_heat = tf_maps.compute(images)
    pt_heat = pt_maps.compute(nchw(images))
    check_heatmaps(tf_heat, (2, size, size))
    assert np.abs(tf_heat - pt_heat).max() <= TOLERANCE
    assert tf_maps.target_description.startswith(expected[0])
    assert pt_maps.target_description.startswith(expected[1])
    # An untrained ViT's signed token features can leave relu(sum_k w_k A_k) at zero everywhere,
    # which would make the heatmap comparison empty: compare what both backends captured too.
    argmax = lambda logits: logits.argmax(axis=1)  # noqa: E731
    tf_cap = tf_maps._capture.capture(images, argmax)
    pt_cap = pt_maps._capture.capture(nchw(images), argmax)
    for field in ("activations", "gradients"):
        tf_value, pt_value = (to_channels_first_map(getattr(cap, field), cap.layout, cap.image_size)
                              for cap in (tf_cap, pt_cap))
        assert np.abs(tf_value - pt_value).max() <= 1e-4 * np.abs(tf_value).max()
