"""Base class of every PyTorch deepvision model (mirrors ``base_tf.py``).

Every PyTorch model is a ``pytorch_lightning.LightningModule`` taking channels-first input and
returning a plain tensor (logits when it has a top). Besides the config API it carries the
training API of the seed README::

    pt_model.compile(loss=torch.nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(pt_model.parameters(), 1e-4))
    pl.Trainer(accelerator="cpu", max_epochs=1).fit(pt_model, train_dataloader, val_dataloader)

``compile`` here is the Keras-style *training configuration* (loss, optimizer, metrics, schedule);
it deliberately shadows ``torch.nn.Module.compile``. For ``torch.compile`` use
:meth:`DeepVisionModulePT.compile_forward`, which is what ``nn.Module.compile`` would have done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch

from deepvision import checks
from deepvision.models.features import FeatureInfo, FeatureLevel

# Names accepted by ``compile(optimizer="...")``, built with ``learning_rate``.
_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
# Names accepted by ``compile(loss="...")``: all mean softmax cross-entropy on logits, mean over the
# batch, which is Keras's ``SparseCategoricalCrossentropy(from_logits=True)`` (integer labels) and
# ``CategoricalCrossentropy(from_logits=True)`` (one-hot / soft labels).
_LOSSES = ("cross_entropy", "crossentropy", "sparse_categorical_crossentropy", "categorical_crossentropy")
# Arguments of torch.compile: passing them to compile() means the caller wanted nn.Module.compile.
_TORCH_COMPILE_ARGS = {"fullgraph", "dynamic", "backend", "mode", "options", "disable"}
_STAGES = ("train", "val", "test")


class DeepVisionModulePT(pl.LightningModule):
    """A LightningModule whose config is its constructor arguments.

    Subclasses call ``super().__init__()``, then :meth:`_store_config` with ``locals()``, and assign
    submodules to public attributes with the same names as the Keras implementation.

    Training: :meth:`compile` stores the loss, optimizer, metrics and learning-rate schedule;
    ``training_step``/``validation_step``/``test_step``/``predict_step`` take ``(inputs, labels)``
    batches (inputs ``(N, C, H, W)``; labels ``(N,)`` class indices or ``(N, classes)`` one-hot/soft
    targets) and log ``{stage}_loss`` and, for a model with a top, ``{stage}_accuracy`` (top-1,
    torchmetrics), with ``stage`` in ``train``/``val``/``test``. An uncompiled model trains with
    softmax cross-entropy and Adam(1e-3).
    """

    def _store_config(self, arguments: dict[str, Any]) -> None:
        """Record the constructor arguments (pass ``locals()``); they are what ``get_config`` returns."""
        self._dv_config = {k: v for k, v in arguments.items() if k not in ("self", "__class__", "kwargs")}

    def get_config(self) -> dict[str, Any]:
        return dict(self._dv_config)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Checked before the first layer, with the same message as the Keras model.
        if args:
            self.check_input(getattr(args[0], "shape", None))
        return super().__call__(*args, **kwargs)

    def check_input(self, shape: Any) -> None:
        """Raise ``deepvision.checks.InputShapeError`` for an input the model cannot take (wrong rank or channels)."""
        name = getattr(self, "dv_architecture", None) or type(self).__name__.removesuffix("PT")
        checks.check_model_input(name, self.__dict__.get("_dv_config", {}), shape, checks.CHANNELS_FIRST)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeepVisionModulePT:
        return cls(**config)

    def count_params_split(self) -> dict[str, int]:
        """Total, trainable and non-trainable counts with Keras's meaning (BatchNorm statistics count)."""
        from deepvision.adapters import count_params

        return count_params(self)

    def count_params(self) -> int:
        """Parameters plus persistent floating-point buffers, as Keras's ``count_params()``."""
        return self.count_params_split()["total"]

    # ------------------------------------------------------------------------------------------
    # Backbone API (features_only / out_indices / feature_info), see deepvision.models.features
    # ------------------------------------------------------------------------------------------
    def _dv_init_features(self, levels: Sequence[FeatureLevel], positions: Sequence[int] | None,
                          pruned: Sequence[str] = ()) -> None:
        """Record the family's feature levels (mirrors ``DeepVisionModelTF._dv_init_features``).

        Args:
            levels: every level the network has, in forward order.
            positions: the indices of the levels this features-only model returns; ``None`` for a
                classifier.
            pruned: canonical prefixes of the classifier's modules this model does not build.
        """
        object.__setattr__(self, "_dv_levels", tuple(levels))
        object.__setattr__(self, "_dv_feature_positions", None if positions is None else tuple(positions))
        object.__setattr__(self, "_dv_pruned", tuple(pruned))

    @property
    def feature_info(self) -> FeatureInfo:
        """The levels this features-only model returns, or every level a classifier could return."""
        levels = self.__dict__.get("_dv_levels", ())
        positions = self.__dict__.get("_dv_feature_positions")
        positions = range(len(levels)) if positions is None else positions
        return FeatureInfo([levels[p] for p in positions], positions)

    @property
    def pruned_modules(self) -> tuple[str, ...]:
        """Canonical prefixes of the classifier's modules a features-only model does not build."""
        return self.__dict__.get("_dv_pruned", ())

    def set_grad_checkpointing(self, enable: bool = True) -> DeepVisionModulePT:
        """Recompute each block's activations in the backward pass instead of keeping them.

        Blocks run through ``torch.utils.checkpoint`` (non-reentrant, RNG state preserved, so
        dropout and drop path draw the same masks) whenever gradients are being recorded. The
        recomputation restores the block's buffers afterwards, so BatchNorm moving statistics are
        updated once per step, as without checkpointing.

        Returns:
            The model itself.
        """
        object.__setattr__(self, "_dv_grad_checkpointing", bool(enable))
        return self

    @property
    def grad_checkpointing(self) -> bool:
        """Whether :meth:`set_grad_checkpointing` is on."""
        return bool(self.__dict__.get("_dv_grad_checkpointing", False))

    def _dv_run_block(self, block: torch.nn.Module, *args: Any) -> Any:
        """``block(*args)``, checkpointed when :meth:`set_grad_checkpointing` is on and grads are recorded."""
        if not (self.grad_checkpointing and torch.is_grad_enabled()):
            return block(*args)
        from torch.utils.checkpoint import checkpoint

        return checkpoint(block, *args, use_reentrant=False,
                          context_fn=lambda: (contextlib.nullcontext(), _buffers_restored(block)))

    # ------------------------------------------------------------------------------------------
    # Training configuration
    # ------------------------------------------------------------------------------------------
    def compile(  # the seed's API; shadows nn.Module.compile on purpose
        self,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | str | None = None,
        optimizer: torch.optim.Optimizer | type | Callable[..., torch.optim.Optimizer] | str | None = None,
        metrics: Iterable[Any] | Mapping[str, Any] | None = None,
        lr_scheduler: Any = None,
        *,
        learning_rate: float = 1e-3,
        **torch_compile_kwargs: Any,
    ) -> DeepVisionModulePT:
        """Configure training, as Keras's ``model.compile`` does (this is NOT ``torch.compile``).

        This method shadows ``torch.nn.Module.compile``; to ``torch.compile`` the network use
        :meth:`compile_forward`. Calling ``compile`` again replaces the configuration and the
        optimizer state.

        Args:
            loss: ``loss(logits, labels) -> scalar`` (e.g. ``torch.nn.CrossEntropyLoss()``), or
                ``"cross_entropy"`` / ``"sparse_categorical_crossentropy"`` /
                ``"categorical_crossentropy"``; ``None`` means softmax cross-entropy (batch mean).
                Logits are cast to float32 before the loss, also under bf16 autocast.
            optimizer: a ``torch.optim.Optimizer`` built on ``model.parameters()`` (the seed's
                form); an optimizer class (``torch.optim.SGD``) or any callable taking the
                parameters (``functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)``); a name
                (``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``) built with ``learning_rate``;
                ``None`` means Adam with ``learning_rate``. A class or name is built once, on
                first use, and then kept, so repeated ``Trainer.fit`` calls continue with the
                same optimizer state, as repeated Keras ``fit`` calls do.
            metrics: ``None`` means ``["accuracy"]`` for a model with a top and none otherwise;
                else a list of ``"accuracy"`` (top-1), ``"top5_accuracy"`` or
                ``torchmetrics.Metric`` instances, or a dict ``{name: Metric}``. Each is tracked
                separately for train/val/test and logged as ``{stage}_{name}``.
            lr_scheduler: a ``torch.optim.lr_scheduler.LRScheduler`` built on ``optimizer``, a
                callable ``optimizer -> scheduler``, or Lightning's scheduler dict
                (``{"scheduler": ..., "interval": "step"}``) whose scheduler may be either.
            learning_rate: used when ``optimizer`` is a class, a name or ``None``.

        Returns:
            The model itself, so ``model.compile(...)`` can be chained.
        """
        unexpected = set(torch_compile_kwargs)
        if unexpected:
            hint = (
                " Those are torch.compile arguments: deepvision's compile() configures training "
                "(Keras style); use model.compile_forward(...) for torch.compile."
                if unexpected & _TORCH_COMPILE_ARGS else ""
            )
            raise TypeError(f"compile() got unexpected keyword arguments {sorted(unexpected)}.{hint}")
        if isinstance(loss, str) and loss.lower() not in _LOSSES:
            raise ValueError(f"Unknown loss {loss!r}. Valid names: {list(_LOSSES)}, or pass a callable.")
        if isinstance(optimizer, str) and optimizer.lower() not in _OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {optimizer!r}. Valid names: {sorted(_OPTIMIZERS)}, "
                             "or pass a torch.optim.Optimizer, its class, or a factory.")
        # Plain attributes set with object.__setattr__: a loss or optimizer must never become a
        # submodule, or its tensors (e.g. class weights) would enter state_dict and the checkpoint.
        object.__setattr__(self, "_dv_loss", loss)
        object.__setattr__(self, "_dv_optimizer_spec", optimizer)
        object.__setattr__(self, "_dv_optimizer", optimizer if isinstance(optimizer, torch.optim.Optimizer) else None)
        object.__setattr__(self, "_dv_lr_scheduler", lr_scheduler)
        object.__setattr__(self, "_dv_learning_rate", float(learning_rate))
        object.__setattr__(self, "_dv_metrics_spec", metrics)
        self._dv_build_metrics()
        return self

    def compile_forward(self, **kwargs: Any) -> DeepVisionModulePT:
        """``torch.compile`` this model's forward in place (what ``nn.Module.compile`` does).

        The Lightning hooks (``training_step`` with its ``self.log`` calls, the optimizer steps)
        stay eager; only ``model(x)`` runs the compiled graph, in inference, in a manual loop
        and inside ``Trainer.fit``. Compiling the whole LightningModule instead
        (``torch.compile(model)``) breaks on ``self.log``. ``kwargs`` go to ``torch.compile``
        (``mode=``, ``dynamic=``, ``backend=``, ...). The first call compiles (tens of seconds on
        a CPU); later calls with the same shapes reuse the graph.

        Returns:
            The model itself.
        """
        torch.nn.Module.compile(self, **kwargs)
        return self

    # ------------------------------------------------------------------------------------------
    # What the configuration resolves to
    # ------------------------------------------------------------------------------------------
    @property
    def has_top(self) -> bool:
        """Whether the model returns class logits (``include_top`` and a class count)."""
        config = getattr(self, "_dv_config", {})
        return bool(config.get("include_top", True)) and not config.get("features_only", False) \
            and config.get("classes") is not None

    def _dv_setting(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def _dv_loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        loss = self._dv_setting("_dv_loss")
        if loss is None or isinstance(loss, str):
            return torch.nn.functional.cross_entropy
        if isinstance(loss, torch.nn.Module):
            loss.to(self.device)  # e.g. class weights; a no-op when already there
        return loss

    def _dv_build_metrics(self) -> None:
        import torchmetrics

        spec = self._dv_setting("_dv_metrics_spec")
        if spec is None:
            spec = ["accuracy"] if self.has_top else []
        named = dict(spec) if isinstance(spec, Mapping) else {}
        if not isinstance(spec, Mapping):
            for item in spec:
                if isinstance(item, str):
                    named[item] = item
                else:
                    named[_snake(type(item).__name__)] = item
        built: dict[str, Any] = {}
        for name, item in named.items():
            if isinstance(item, str):
                built[name] = self._dv_named_metric(item)
            elif isinstance(item, torchmetrics.Metric):
                built[name] = item
            else:
                raise TypeError(f"metric {name!r}: expected 'accuracy', 'top5_accuracy' or a torchmetrics.Metric, "
                                f"got {type(item).__name__}")
        # One independent copy per stage (train/val/test accumulate separately). The collections
        # hold no parameters or persistent state, so state_dict and checkpoints are unchanged.
        for stage in _STAGES:
            collection = torchmetrics.MetricCollection({k: m.clone() for k, m in built.items()}, prefix=f"{stage}_")
            setattr(self, f"{stage}_metrics", collection.to(self.device))
        # Lightning caches where each logged Metric lives; new Metric objects need a fresh lookup.
        self._metric_attributes = None

    def _dv_named_metric(self, name: str) -> Any:
        import torchmetrics

        top_k = {"accuracy": 1, "acc": 1, "top1_accuracy": 1, "top5_accuracy": 5}.get(name.lower())
        if top_k is None:
            raise ValueError(f"Unknown metric {name!r}: use 'accuracy', 'top5_accuracy' or a torchmetrics.Metric.")
        classes = self._dv_config.get("classes") if self.has_top else None
        if classes is None:
            raise ValueError(f"metric {name!r} needs a model with a top (include_top=True and classes).")
        return torchmetrics.classification.MulticlassAccuracy(
            num_classes=int(classes), top_k=min(top_k, int(classes)), average="micro"
        )

    def _dv_metrics(self, stage: str) -> Any:
        if f"{stage}_metrics" not in self._modules:
            self._dv_build_metrics()
        return self._modules[f"{stage}_metrics"]

    def _dv_build_optimizer(self) -> torch.optim.Optimizer:
        spec = self._dv_setting("_dv_optimizer_spec")
        lr = self._dv_setting("_dv_learning_rate", 1e-3)
        if spec is None:
            return torch.optim.Adam(self.parameters(), lr=lr)
        if isinstance(spec, str):
            return _OPTIMIZERS[spec.lower()](self.parameters(), lr=lr)
        if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
            return spec(self.parameters(), lr=lr)
        if callable(spec):
            return spec(self.parameters())
        raise TypeError(f"optimizer: expected a torch.optim.Optimizer, its class, a factory or a name, got {spec!r}")

    # ------------------------------------------------------------------------------------------
    # LightningModule hooks
    # ------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        """The compiled optimizer (built once), with the learning-rate schedule if one was given."""
        optimizer = self._dv_setting("_dv_optimizer")
        if optimizer is None:
            optimizer = self._dv_build_optimizer()
            object.__setattr__(self, "_dv_optimizer", optimizer)
        schedule = self._dv_setting("_dv_lr_scheduler")
        if schedule is None:
            return optimizer
        config = dict(schedule) if isinstance(schedule, Mapping) else {"scheduler": schedule}
        scheduler = config["scheduler"]
        if not hasattr(scheduler, "step") and callable(scheduler):
            config["scheduler"] = scheduler(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": config}

    def setup(self, stage: str) -> None:
        """Create the metrics of an uncompiled model before Lightning moves it to its device."""
        if "train_metrics" not in self._modules:
            self._dv_build_metrics()

    def on_fit_start(self) -> None:
        """Train in training mode, as Keras's ``fit`` does.

        ``load_portable``/``to_backend`` hand PyTorch models over in inference mode (``eval()``),
        and Lightning keeps the mode it finds: such a model would train with frozen BatchNorm
        statistics and without dropout. A model whose root is in eval mode is switched to
        ``train()``; submodules deliberately put in eval mode under a training root (e.g. frozen
        BatchNorm for fine-tuning) are left as they are.
        """
        if not self.training:
            self.train()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record which deepvision model this is in every Lightning checkpoint (``Trainer.fit``'s too).

        ``checkpoint["deepvision"]`` holds ``architecture``, the backend-neutral ``config``
        (``input_shape`` channels-last) and ``library_version``: what
        ``deepvision convert x.ckpt y.safetensors`` reads, so it needs no ``--architecture`` or
        ``--config``. ``checkpoint["hyper_parameters"]`` holds the constructor arguments (what
        ``save_hyperparameters`` would record; hyperparameters a subclass saved itself are kept),
        so ``ModelClass.load_from_checkpoint(path)`` rebuilds the model without arguments. All are
        plain lists, numbers and strings: the file loads with ``torch.load(weights_only=True)``.
        """
        from deepvision import __version__
        from deepvision.registry import architecture_of, config_of

        checkpoint["deepvision"] = {"architecture": architecture_of(self).name, "config": config_of(self),
                                    "library_version": __version__}
        checkpoint.setdefault(self.CHECKPOINT_HYPER_PARAMS_KEY, self.get_config())

    def _dv_step(self, batch: Any, stage: str) -> torch.Tensor:
        inputs, labels = _split_batch(batch)
        logits = self(inputs)
        # float32 loss also under bf16/fp16 autocast, as Keras computes it.
        loss = self._dv_loss_fn()(logits.float(), labels)
        if not self._dv_logging():
            return loss  # a manual loop calling the step: nothing to log into
        train = stage == "train"
        size = int(inputs.shape[0])
        # sync_dist: the epoch loss is the mean over every DDP process's batches, as the docs say
        # (and as Lightning asks for epoch-level values). For train's per-step value this adds one
        # scalar all-reduce per step, next to DDP's all-reduce of every gradient.
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=train, on_epoch=True, batch_size=size,
                 sync_dist=True)
        metrics = self._dv_metrics(stage)
        if len(metrics) and labels is not None:
            target = labels.argmax(dim=-1) if labels.is_floating_point() and labels.dim() == 2 else labels
            metrics.update(logits.detach().float(), target)
            # Logging the Metric objects lets Lightning compute them over the epoch (synchronised
            # across processes under DDP) and reset them.
            self.log_dict(dict(metrics.items()), prog_bar=True, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def _dv_logging(self) -> bool:
        # self.log works inside a Trainer loop (or under Fabric); elsewhere, e.g. a manual loop
        # calling training_step on a model that a Trainer used before, it would raise.
        if getattr(self, "_fabric", None) is not None:
            return True
        trainer = getattr(self, "_trainer", None)
        return trainer is not None and not trainer.barebones and trainer._results is not None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Loss on an ``(inputs, labels)`` batch (logged as ``train_loss``, plus ``train_accuracy``)."""
        return self._dv_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Logs ``val_loss`` and ``val_accuracy`` (epoch means) for an ``(inputs, labels)`` batch."""
        return self._dv_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Logs ``test_loss`` and ``test_accuracy`` (epoch means) for an ``(inputs, labels)`` batch."""
        return self._dv_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """The model's output (logits for a model with a top) for ``inputs`` or ``(inputs, labels)``."""
        inputs, _ = _split_batch(batch)
        return self(inputs)


@contextlib.contextmanager
def _buffers_restored(module: torch.nn.Module) -> Iterator[None]:
    # The backward pass re-runs the block's forward: without this, BatchNorm would update its
    # moving statistics (and num_batches_tracked) a second time per step.
    saved = [(buffer, buffer.detach().clone()) for buffer in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2):
        return batch[0], (batch[1] if len(batch) == 2 else None)
    raise TypeError("Expected a batch of (inputs, labels) or inputs alone; "
                    f"got {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}.")


def _snake(name: str) -> str:
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out.replace("multiclass_", "")
