"""FeatureAnalyzer: a model's features over a dataset, embedded with PCA and t-SNE and plotted per class."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from deepvision.backend import TENSORFLOW
from deepvision.evaluation._arrays import is_tf_tensor, is_torch_tensor, model_output_tensor, to_numpy
from deepvision.evaluation.activation_maps import resolve_model_backend


def _is_array_like(obj: Any) -> bool:
    return isinstance(obj, np.ndarray) or is_torch_tensor(obj) or is_tf_tensor(obj)


def _is_in_memory_pair(dataset: Any) -> bool:
    # (x, y) with x of shape (N, ...) and y of shape (N, ...): whole arrays, not a list of batches.
    return (isinstance(dataset, (tuple, list)) and len(dataset) == 2
            and all(_is_array_like(part) for part in dataset)
            and len(dataset[0].shape) >= 2 and int(dataset[0].shape[0]) == int(dataset[1].shape[0]))


def _labels_of(batch_labels: Any, ignore_index: int | None = 255, background: int | None = None) -> np.ndarray:
    """Class ids (B,) from integer labels (B,) / (B, 1), one-hot / probability rows (B, K), or
    segmentation masks (B, H, W) (also (B, H, W, 1) / (B, 1, H, W)).

    A mask's id is its most frequent class, ignoring ``ignore_index`` pixels and, when the mask
    has any other class, the ``background`` class.
    """
    labels = to_numpy(batch_labels)
    if labels.ndim == 4 and 1 in (labels.shape[1], labels.shape[-1]):
        labels = labels.reshape(labels.shape[0], *[d for d in labels.shape[1:] if d != 1][:2])
    if labels.ndim == 3:
        return np.array([_dominant_class(mask, ignore_index, background) for mask in labels], dtype=np.int64)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1:
        raise ValueError(f"Labels must be (B,), (B, 1), one-hot (B, K) or masks (B, H, W); got shape {labels.shape}")
    return labels.astype(np.int64)


def _dominant_class(mask: np.ndarray, ignore_index: int | None, background: int | None) -> int:
    values, counts = np.unique(mask.astype(np.int64), return_counts=True)
    keep = values != ignore_index if ignore_index is not None else np.ones_like(values, dtype=bool)
    if background is not None and np.any(keep & (values != background)):
        keep &= values != background
    if not np.any(keep):
        raise ValueError(f"A mask has only ignore_index ({ignore_index}) pixels: it has no class to colour by.")
    return int(values[keep][np.argmax(counts[keep])])


def _has_dense_head(model: Any) -> bool:
    # A dense-prediction model (SegFormer: per-pixel logits from a decode head) with an encoder to pool.
    return getattr(model, "decode_head", None) is not None and hasattr(model, "forward_features")


FEATURE_MODES = ("auto", "output", "pooled")


class FeatureAnalyzer:
    """Extracts a model's features over a dataset and shows them with PCA and t-SNE, coloured by class.

    ``FeatureAnalyzer(model, dataset, limit_batches=-1, classnames=None, backend=None, random_state=42)``

    Args:
        model: any ``keras.Model`` (channels-last images) or ``torch.nn.Module`` (channels-first
            images) returning a tensor, or a dict with an ``"output"`` tensor. Its output for a
            batch of B images is flattened to (B, D) features.
        dataset: a ``tf.data.Dataset`` of ``(images, labels)`` batches, a PyTorch ``DataLoader``
            (or any iterable) of ``(images, labels)`` batches, or in-memory ``(x, y)`` arrays
            (numpy or framework tensors, x of shape (N, ...), y (N,) or one-hot (N, K)), which are
            cut into batches of ``batch_size``. Batches may differ in size.
        limit_batches: use exactly this many batches (fewer only if the dataset runs out);
            -1 for all. An endless dataset (``.repeat()``) needs a limit.
        classnames: names of the classes, indexed by label, for the legend (default: the ids).
        backend: ``"tensorflow"`` or ``"pytorch"`` (aliases accepted); defaults to the model's.
        random_state: seed of PCA and t-SNE.
        batch_size: batch size for in-memory arrays.
        features: ``"output"``: the model's output flattened to (B, D); ``"pooled"``: the spatial
            mean of the last encoder map (``model.forward_features(x)[-1]``, (B, C)), or of the
            model's own 4-D output when it has no ``forward_features``; ``"auto"`` (default):
            ``"pooled"`` for segmentation models (a ``decode_head`` over an encoder, e.g.
            SegFormer), else ``"output"``.
        ignore_index: mask value left out when segmentation masks are the labels (see below).
        background: the background class of masks (e.g. 0), skipped when a mask has other classes.

    Labels may be class ids, one-hot rows, or segmentation masks (B, H, W): a mask's label is its
    most frequent class (``ignore_index`` pixels and, where others exist, ``background`` left out).

    Features are extracted once, in inference mode (``training=False`` in Keras; ``eval()`` and
    ``torch.no_grad()`` in PyTorch, the previous train/eval state restored), and cached until the
    next :meth:`extract_features`. :meth:`feature_analysis` extracts them first if needed.
    """

    def __init__(self, model: Any, dataset: Any, limit_batches: int = -1,
                 classnames: Sequence[str] | None = None, backend: str | None = None,
                 random_state: int | None = 42, batch_size: int = 32, features: str = "auto",
                 ignore_index: int | None = 255, background: int | None = None) -> None:
        if not isinstance(limit_batches, (int, np.integer)) or (limit_batches != -1 and limit_batches < 1):
            raise ValueError(f"limit_batches must be -1 (all batches) or a positive int; got {limit_batches!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive; got {batch_size}")
        if features not in FEATURE_MODES:
            raise ValueError(f"features must be one of {FEATURE_MODES}; got {features!r}")
        self.model = model
        self.dataset = dataset
        #: What is extracted: "output" or "pooled" ("auto" resolved for this model).
        self.feature_mode = ("pooled" if _has_dense_head(model) else "output") if features == "auto" else features
        self.ignore_index = ignore_index
        self.background = background
        self.limit_batches = int(limit_batches)
        self.classnames = list(classnames) if classnames is not None else None
        self.backend = resolve_model_backend(model, backend)
        self.random_state = random_state
        self.batch_size = int(batch_size)
        self._features: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        #: PCA embedding (N, components) of the last :meth:`compute_embeddings` / :meth:`feature_analysis`.
        self.pca_embedding: np.ndarray | None = None
        #: t-SNE embedding (N, components), likewise.
        self.tsne_embedding: np.ndarray | None = None
        #: Fraction of the variance each PCA component explains, shape (components,).
        self.explained_variance_ratio: np.ndarray | None = None
        #: The perplexity t-SNE ran with (after clamping below the sample count).
        self.perplexity: float | None = None

    # ----------------------------------------------------------------------------------------
    # Extraction
    # ----------------------------------------------------------------------------------------

    @property
    def features(self) -> np.ndarray:
        """Cached features, float32 (N, D); :meth:`extract_features` must have run."""
        if self._features is None:
            raise RuntimeError("No features yet: call extract_features() first.")
        return self._features

    @property
    def labels(self) -> np.ndarray:
        """Cached class ids, int64 (N,); :meth:`extract_features` must have run."""
        if self._labels is None:
            raise RuntimeError("No labels yet: call extract_features() first.")
        return self._labels

    def _batches(self) -> tuple[Iterable[Any], int | None]:
        """The dataset as an iterable of batches, and its length when known."""
        data = self.dataset
        if _is_in_memory_pair(data):
            x, y = data
            count = int(x.shape[0])
            starts = range(0, count, self.batch_size)
            return ((x[s:s + self.batch_size], y[s:s + self.batch_size]) for s in starts), len(starts)
        length = None
        if "tensorflow" in sys.modules:
            import tensorflow as tf

            if isinstance(data, tf.data.Dataset):
                cardinality = int(data.cardinality())
                return data, cardinality if cardinality >= 0 else None
        if not isinstance(data, Iterable):
            raise TypeError(
                f"Unsupported dataset {type(data).__name__}: expected a tf.data.Dataset, a DataLoader "
                "or another iterable of (images, labels) batches, or (x, y) arrays."
            )
        with contextlib.suppress(TypeError):
            length = len(data)
        return data, length

    def _pooled(self, x: Any, channels_axis: int, call: Any) -> np.ndarray:
        """Spatial mean of the last encoder map (or of the 4-D output): (B, C)."""
        if hasattr(self.model, "forward_features"):
            maps = self.model.forward_features(x)
            fmap = to_numpy(maps[-1] if isinstance(maps, (list, tuple)) else maps)
        else:
            fmap = to_numpy(model_output_tensor(call(x)))
        if fmap.ndim != 4:
            raise ValueError(f"features='pooled' needs a 4-D feature map; the model gives shape {fmap.shape}. "
                             "Use features='output'.")
        spatial = (1, 2) if channels_axis == -1 else (2, 3)
        return fmap.mean(axis=spatial)

    def _forward_keras(self, images: Any) -> np.ndarray:
        x = images if is_tf_tensor(images) else to_numpy(images)
        if self.feature_mode == "pooled":
            return self._pooled(x, -1, lambda t: self.model(t, training=False))
        return to_numpy(model_output_tensor(self.model(x, training=False)))

    def _forward_torch(self, images: Any) -> np.ndarray:
        import torch

        from deepvision.evaluation.activation_maps_pt import _module_device_dtype

        x = images if is_torch_tensor(images) else torch.from_numpy(np.ascontiguousarray(to_numpy(images)))
        device, dtype = _module_device_dtype(self.model)
        x = x.to(device=device, dtype=dtype)
        if self.feature_mode == "pooled":
            return self._pooled(x, 1, self.model)
        return to_numpy(model_output_tensor(self.model(x)))

    @contextlib.contextmanager
    def _inference_mode(self) -> Iterator[None]:
        if self.backend == TENSORFLOW:
            yield
            return
        import torch

        modes = {module: module.training for module in self.model.modules()}
        self.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for module, training in modes.items():
                module.training = training

    def extract_features(self, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Run the model over the dataset (in inference mode) and cache the features.

        Returns:
            ``(features, labels)``: float32 (N, D) features (flattened outputs, or pooled encoder
            maps with ``features="pooled"``) and int64 (N,) class ids.
        """
        from tqdm.auto import tqdm

        batches, length = self._batches()
        limit = None if self.limit_batches == -1 else self.limit_batches
        total = length if limit is None else (limit if length is None else min(limit, length))
        forward = self._forward_keras if self.backend == TENSORFLOW else self._forward_torch
        features, labels = [], []
        with self._inference_mode():
            # islice pulls exactly `limit` batches, not one more.
            for batch in tqdm(itertools.islice(batches, limit), total=total, desc="Extracting features",
                              unit="batch", disable=not progress):
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    raise TypeError(
                        f"Each batch must be (images, labels); got a {type(batch).__name__}. "
                        "FeatureAnalyzer colours points by label and needs them."
                    )
                images, batch_labels = batch[0], batch[1]
                output = forward(images)
                batch_features = output.reshape(output.shape[0], -1).astype(np.float32)
                batch_ids = _labels_of(batch_labels, self.ignore_index, self.background)
                if batch_ids.shape[0] != batch_features.shape[0]:
                    raise ValueError(
                        f"A batch has {batch_features.shape[0]} images but {batch_ids.shape[0]} labels."
                    )
                if features and batch_features.shape[1] != features[0].shape[1]:
                    raise ValueError(
                        f"The model's output size changed between batches ({features[0].shape[1]} vs "
                        f"{batch_features.shape[1]} features); use images of one size."
                    )
                features.append(batch_features)
                labels.append(batch_ids)
        if not features:
            raise ValueError("The dataset gave no batches.")
        self._features = np.concatenate(features)
        self._labels = np.concatenate(labels)
        self.pca_embedding = self.tsne_embedding = self.explained_variance_ratio = None
        return self._features, self._labels

    # ----------------------------------------------------------------------------------------
    # Embeddings and figure
    # ----------------------------------------------------------------------------------------

    def compute_embeddings(self, components: int = 2, perplexity: float = 30.0, max_iter: int = 1000,
                           tsne_pca_dims: int | None = 50) -> tuple[np.ndarray, np.ndarray]:
        """PCA and t-SNE embeddings of the cached features (extracted first if needed).

        Args:
            components: 2 or 3, the embedding dimension.
            perplexity: t-SNE perplexity; scikit-learn requires it below the sample count, so a
                larger value is clamped to (N - 1) / 3 with a warning.
            max_iter: t-SNE iterations (scikit-learn's minimum is 250).
            tsne_pca_dims: t-SNE runs on the features reduced to this many principal components
                when they have more (scikit-learn's advice for high-dimensional data: faster, less
                noisy); ``None`` runs it on the raw features.

        Returns:
            ``(pca_embedding, tsne_embedding)``, each float (N, components); also kept as
            :attr:`pca_embedding` and :attr:`tsne_embedding`.
        """
        if isinstance(components, bool) or components not in (2, 3):
            raise ValueError(f"components must be 2 or 3 (a 2-D or 3-D scatter plot); got {components!r}")
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        if self._features is None:
            self.extract_features()
        features = self.features.astype(np.float64)
        count, dims = features.shape
        if count <= components or dims < components:
            raise ValueError(
                f"A {components}-D embedding needs more than {components} samples and at least "
                f"{components} feature dims; got {count} samples of {dims} dims."
            )
        pca = PCA(n_components=components, random_state=self.random_state)
        pca_embedding = pca.fit_transform(features)
        tsne_input = features
        if tsne_pca_dims is not None and min(count, dims) > tsne_pca_dims:
            tsne_input = PCA(n_components=tsne_pca_dims, random_state=self.random_state).fit_transform(features)
        if perplexity >= count:
            clamped = max(1.0, (count - 1) / 3.0)
            warnings.warn(
                f"perplexity={perplexity} is not below the {count} samples (scikit-learn requires it); "
                f"using perplexity={clamped:.3g}.",
                stacklevel=2,
            )
            perplexity = clamped
        tsne = TSNE(n_components=components, perplexity=float(perplexity), max_iter=int(max_iter), init="pca",
                    learning_rate="auto", random_state=self.random_state)
        tsne_embedding = tsne.fit_transform(tsne_input)
        self.pca_embedding, self.tsne_embedding = pca_embedding, tsne_embedding
        self.explained_variance_ratio = pca.explained_variance_ratio_
        self.perplexity = float(perplexity)
        return pca_embedding, tsne_embedding

    def feature_analysis(self, components: int = 2, figsize: tuple[float, float] = (10, 10),
                         perplexity: float = 30.0, max_iter: int = 1000, path: str | os.PathLike | None = None,
                         show: bool = False, dpi: int = 100, marker_size: float = 12.0) -> Any:
        """PCA and t-SNE scatter plots of the features, one colour per class.

        Extracts the features first if :meth:`extract_features` has not run. ``components`` (2 or 3),
        ``perplexity`` and ``max_iter`` are those of :meth:`compute_embeddings`.

        Returns:
            The matplotlib Figure with two panels (PCA, t-SNE), stacked when ``figsize`` is taller
            than wide and side by side otherwise; saved as PNG at ``path`` when given, shown with
            pyplot only when ``show``.
        """
        from deepvision.evaluation import plotting

        pca_embedding, tsne_embedding = self.compute_embeddings(components, perplexity, max_iter)
        fig = plotting.new_figure(figsize, show)
        rows, cols = (2, 1) if figsize[1] >= figsize[0] else (1, 2)
        projection = "3d" if components == 3 else None
        variance = 100.0 * float(np.sum(self.explained_variance_ratio))
        panels = (
            (pca_embedding, f"PCA ({variance:.1f}% of the variance)", "PC"),
            (tsne_embedding, f"t-SNE (perplexity {self.perplexity:g})", "t-SNE"),
        )
        for index, (points, title, axis_name) in enumerate(panels, start=1):
            ax = fig.add_subplot(rows, cols, index, projection=projection)
            plotting.scatter_by_class(ax, points, self.labels, self.classnames, title, axis_name, marker_size)
        count, dims = self.features.shape
        fig.suptitle(f"{type(self.model).__name__} features ({self.backend}): {count} samples, {dims} dims")
        if projection is None:
            fig.tight_layout()
        plotting.finish(fig, path, show, dpi)
        return fig


__all__ = ["FeatureAnalyzer"]
