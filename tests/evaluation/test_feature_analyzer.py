"""FeatureAnalyzer over every dataset kind, in both backends, and its figure."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from . import _models as M

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from deepvision.evaluation import FeatureAnalyzer  # noqa: E402

CLASSNAMES = ["circle", "square", "star"]


@pytest.fixture(autouse=True)
def one_openmp_thread():
    # t-SNE on 60 points is faster on one thread, and OpenMP's barriers crawl on a busy machine.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield
SAMPLES = 60


def clustered_images(channels_last: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """60 images of 3 classes whose pixels cluster by class, labels 0, 1, 2 in turn."""
    rng = np.random.default_rng(seed)
    labels = np.arange(SAMPLES) % 3
    images = rng.normal(0.0, 0.2, (SAMPLES, 16, 12, 3)) + labels[:, None, None, None] * 1.5
    images = images.astype("float32")
    return (images if channels_last else np.ascontiguousarray(images.transpose(0, 3, 1, 2))), labels


def keras_features_model():
    """The tiny CNN up to its flattened conv features (a functional model, any Keras model works)."""
    cnn = M.keras_cnn()
    return keras.Model(cnn.inputs[0], cnn.get_layer("flatten").output)


class TorchFeatures(torch.nn.Module):
    """A torch model with dropout and batch norm (so train mode would show) returning a dict."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.9)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        return {"output": self.pool(self.drop(torch.relu(self.norm(self.conv(x))))), "aux": x.mean()}


class CountingBatches:
    """An iterable of batches that counts how many were pulled."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch: int) -> None:
        self.images, self.labels, self.batch, self.pulled = images, labels, batch, 0

    def __iter__(self):
        for start in range(0, len(self.images), self.batch):
            self.pulled += 1
            yield self.images[start:start + self.batch], self.labels[start:start + self.batch]


def test_numpy_arrays_partial_batch_and_exact_limit():
    images, labels = clustered_images()
    model = keras_features_model()
    analyzer = FeatureAnalyzer(model, (images, labels), batch_size=16, classnames=CLASSNAMES,
                               backend="tensorflow")
    features, ids = analyzer.extract_features(progress=False)
    assert features.shape == (SAMPLES, 8 * 6 * 6) and features.dtype == np.float32
    np.testing.assert_array_equal(ids, labels)  # 16 + 16 + 16 + 12: the partial batch counts
    np.testing.assert_allclose(features, keras.ops.convert_to_numpy(model(images)), atol=1e-6)
    limited = FeatureAnalyzer(model, (images, labels), limit_batches=2, batch_size=16, backend="tf")
    assert limited.extract_features(progress=False)[0].shape[0] == 32


def test_tf_data_dataset_with_one_hot_labels():
    tf = pytest.importorskip("tensorflow")
    images, labels = clustered_images()
    one_hot = np.eye(3, dtype="float32")[labels]
    dataset = tf.data.Dataset.from_tensor_slices((images, one_hot)).batch(16)
    analyzer = FeatureAnalyzer(keras_features_model(), dataset, limit_batches=3, classnames=CLASSNAMES,
                               backend="tensorflow")
    features, ids = analyzer.extract_features(progress=False)
    assert features.shape[0] == 48
    np.testing.assert_array_equal(ids, labels[:48])


def test_torch_dataloader_dict_output_and_restored_mode():
    images, labels = clustered_images(channels_last=False)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels)), batch_size=16)
    model = TorchFeatures().train()
    analyzer = FeatureAnalyzer(model, loader, classnames=CLASSNAMES, backend="pytorch")
    features, ids = analyzer.extract_features(progress=False)
    assert model.training and model.drop.training  # the caller's mode is back
    assert features.shape == (SAMPLES, 4 * 2 * 2)
    np.testing.assert_array_equal(ids, labels)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(images))["output"].flatten(1).numpy()
    np.testing.assert_allclose(features, expected, atol=1e-5)  # eval mode: no dropout, running stats


def test_framework_tensor_pair_and_exact_pull_count():
    images, labels = clustered_images(channels_last=False)
    model = TorchFeatures()
    analyzer = FeatureAnalyzer(model, (torch.from_numpy(images), torch.from_numpy(labels)), batch_size=25)
    assert analyzer.extract_features(progress=False)[0].shape[0] == SAMPLES
    batches = CountingBatches(images, labels, 8)
    FeatureAnalyzer(model, batches, limit_batches=3).extract_features(progress=False)
    assert batches.pulled == 3


def test_embeddings_figure_2d(tmp_path):
    images, labels = clustered_images()
    analyzer = FeatureAnalyzer(keras_features_model(), (images, labels), classnames=CLASSNAMES,
                               backend="tensorflow")
    analyzer.extract_features(progress=False)
    path = tmp_path / "tsne.png"
    fig = analyzer.feature_analysis(components=2, perplexity=10.0, max_iter=250, path=path)
    assert analyzer.pca_embedding.shape == (SAMPLES, 2)
    assert analyzer.tsne_embedding.shape == (SAMPLES, 2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(path).shape[0] > 100
    pca_ax, tsne_ax = fig.axes
    assert (pca_ax.get_xlabel(), pca_ax.get_ylabel()) == ("PC 1", "PC 2")
    assert (tsne_ax.get_xlabel(), tsne_ax.get_ylabel()) == ("t-SNE 1", "t-SNE 2")
    for ax in fig.axes:
        assert [text.get_text() for text in ax.get_legend().get_texts()] == CLASSNAMES
    # The classes are well apart in these features: class means far from each other in PCA.
    means = np.stack([analyzer.pca_embedding[labels == c].mean(axis=0) for c in range(3)])
    spread = np.mean([analyzer.pca_embedding[labels == c].std(axis=0).max() for c in range(3)])
    assert np.min([np.linalg.norm(means[a] - means[b]) for a, b in [(0, 1), (0, 2), (1, 2)]]) > 3 * spread


def test_embeddings_figure_3d_without_explicit_extraction(tmp_path):
    images, labels = clustered_images(channels_last=False)
    model = TorchFeatures()
    analyzer = FeatureAnalyzer(model, (images, labels), limit_batches=2, batch_size=30, backend="torch",
                               random_state=0)
    # The seed's PyTorch usage calls feature_analysis directly: features are extracted first.
    fig = analyzer.feature_analysis(components=3, figsize=(12, 6), perplexity=10.0, max_iter=250,
                                    path=tmp_path / "tsne3d.png")
    assert analyzer.tsne_embedding.shape == (SAMPLES, 3)
    assert all(ax.name == "3d" for ax in fig.axes)
    assert fig.axes[1].get_zlabel() == "t-SNE 3"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["0", "1", "2"]  # no classnames
    assert (tmp_path / "tsne3d.png").stat().st_size > 0


def test_components_and_state_errors():
    images, labels = clustered_images()
    analyzer = FeatureAnalyzer(keras_features_model(), (images[:20], labels[:20]))
    with pytest.raises(RuntimeError, match="extract_features"):
        _ = analyzer.features
    for components in (1, 4):
        with pytest.raises(ValueError, match="components must be 2 or 3"):
            analyzer.feature_analysis(components=components)
    with pytest.raises(ValueError, match="limit_batches"):
        FeatureAnalyzer(keras_features_model(), (images, labels), limit_batches=0)


def test_perplexity_is_clamped_below_the_sample_count():
    images, labels = clustered_images()
    analyzer = FeatureAnalyzer(keras_features_model(), (images[:20], labels[:20]))
    analyzer.extract_features(progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analyzer.compute_embeddings(perplexity=30.0, max_iter=250)
    assert any("perplexity" in str(w.message) for w in caught)
    assert analyzer.perplexity == pytest.approx(19 / 3)
    assert analyzer.tsne_embedding.shape == (20, 2)


def test_write_demo_figures(tmp_path):
    from deepvision.evaluation import write_demo_figures

    images, labels = clustered_images()
    model = M.keras_cnn(classes=3)
    paths = write_demo_figures(model, images, labels, tmp_path / "demo", classnames=CLASSNAMES,
                               gradcam_count=4, max_iter=250, perplexity=10.0, progress=False)
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------------
# Segmentation models: pooled encoder features, labels from masks
# ----------------------------------------------------------------------------------------------
def test_mask_labels_are_the_dominant_class():
    from deepvision.evaluation.feature_analyzer import _labels_of

    masks = np.zeros((3, 4, 4), np.uint8)
    masks[0, :3] = 2          # 12 pixels of class 2, 4 of background
    masks[1, 0, 0] = 1        # one pixel of class 1, the rest background
    masks[2] = 255            # ignore everywhere but one background pixel
    masks[2, 0, 0] = 0
    np.testing.assert_array_equal(_labels_of(masks), [2, 0, 0])
    np.testing.assert_array_equal(_labels_of(masks, background=0), [2, 1, 0])
    np.testing.assert_array_equal(_labels_of(masks[:, None]), [2, 0, 0])  # (B, 1, H, W)
    with pytest.raises(ValueError, match="only ignore_index"):
        _labels_of(np.full((1, 2, 2), 255))


def test_segformer_features_are_pooled_encoder_maps_in_both_backends():
    from deepvision import testing
    from deepvision.portable import to_backend
    from deepvision.registry import build_from_neutral_config, get_architecture
    from deepvision.segmentation_demo import make_dataset

    config = dict(get_architecture("SegFormer").reference_config, input_shape=[32, 32, 3])
    keras_model = build_from_neutral_config("SegFormer", config, "tensorflow")
    testing.randomize_weights(keras_model, seed=1)
    torch_model = to_backend(keras_model, "pytorch")
    images, masks = make_dataset(12, size=32, seed=3)

    tf_analyzer = FeatureAnalyzer(keras_model, (images, masks), batch_size=5, background=0)
    pt_analyzer = FeatureAnalyzer(torch_model, (images.transpose(0, 3, 1, 2).copy(), masks), batch_size=5,
                                  background=0)
    assert tf_analyzer.feature_mode == pt_analyzer.feature_mode == "pooled"
    tf_features, tf_labels = tf_analyzer.extract_features(progress=False)
    pt_features, pt_labels = pt_analyzer.extract_features(progress=False)
    assert tf_features.shape == (12, config["embed_dims"][-1])  # one vector per image, not per pixel
    np.testing.assert_allclose(tf_features, pt_features, rtol=1e-4, atol=1e-5)
    want = np.asarray(keras_model.forward_features(images[:5])[-1]).mean(axis=(1, 2))
    np.testing.assert_allclose(tf_features[:5], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(tf_labels, pt_labels)
    assert set(tf_labels) <= {1, 2, 3}  # every image has a shape, and background is skipped
    # "output" keeps the old meaning: the flattened logits, one row per image.
    logits = FeatureAnalyzer(keras_model, (images, masks), features="output", background=0)
    assert logits.extract_features(progress=False)[0].shape == (12, 8 * 8 * config["classes"])
    with pytest.raises(ValueError, match="features must be one of"):
        FeatureAnalyzer(keras_model, (images, masks), features="tokens")
