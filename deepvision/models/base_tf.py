"""Base class of every Keras deepvision model (mirrors ``base_pt.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from deepvision import checks
from deepvision.models.features import FeatureInfo, FeatureLevel


class DeepVisionModelTF(keras.Model):
    """A functional ``keras.Model`` subclass whose config is its constructor arguments.

    Subclasses build their layers as locals, wire them on ``keras.Input``, call
    ``super().__init__(inputs, outputs, name=...)``, then assign the layers to public attributes
    (the canonical tensor names come from those attribute names) and call :meth:`_store_config`.
    Weights therefore exist right after ``__init__``, which legacy ``.h5`` reloading needs.
    """

    def _store_config(self, arguments: dict[str, Any]) -> None:
        """Record the constructor arguments (pass ``locals()``); they are what ``get_config`` returns."""
        config = {k: v for k, v in arguments.items() if k not in ("self", "__class__", "kwargs")}
        # A private attribute: Keras must not try to track a plain dict of arguments.
        object.__setattr__(self, "_dv_config", config)

    def get_config(self) -> dict[str, Any]:
        return {**self._dv_config, "name": self.name}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # deepvision's input check before Keras's input-spec check: the same message as PyTorch's.
        inputs = args[0] if args else kwargs.get("inputs")
        self.check_input(getattr(inputs, "shape", None))
        return super().__call__(*args, **kwargs)

    def check_input(self, shape: Any) -> None:
        """Raise ``deepvision.checks.InputShapeError`` for an input the model cannot take (wrong rank or channels)."""
        name = getattr(self, "dv_architecture", None) or type(self).__name__.removesuffix("TF")
        checks.check_model_input(name, self.__dict__.get("_dv_config", {}), shape, checks.CHANNELS_LAST)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeepVisionModelTF:
        return cls(**config)

    def count_params_split(self) -> dict[str, int]:
        """Total, trainable and non-trainable parameter counts (Keras's meaning)."""
        from deepvision.adapters import count_params

        return count_params(self)

    # ------------------------------------------------------------------------------------------
    # Backbone API (features_only / out_indices / feature_info), see deepvision.models.features
    # ------------------------------------------------------------------------------------------
    def _dv_init_features(self, levels: Sequence[FeatureLevel], positions: Sequence[int] | None,
                          pruned: Sequence[str] = ()) -> None:
        """Record the family's feature levels (call after ``super().__init__``).

        Args:
            levels: every level the network has, in forward order.
            positions: the indices of the levels this features-only model returns (from
                :func:`~deepvision.models.features.select_levels`); ``None`` for a classifier.
            pruned: canonical prefixes (``"head"``, ``"blocks.7"``) of the classifier's modules this
                model does not build; loading a classifier checkpoint reports them as excluded.
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

    def _dv_checkpoint_layers(self) -> list:
        """The layers ``set_grad_checkpointing`` rematerialises: the family's blocks by default."""
        return [block for block in (getattr(self, "blocks", None) or []) if block is not None]

    def set_grad_checkpointing(self, enable: bool = True) -> DeepVisionModelTF:
        """Recompute each block's activations in the backward pass instead of keeping them.

        Each block's ``call`` runs under ``keras.remat`` (``tf.recompute_grad`` on TensorFlow: what
        ``keras.RematScope(mode="full")`` gives a layer created under it). The recomputation in the
        backward pass runs with every BatchNorm's momentum at 1, so moving statistics are updated
        once per step, as without checkpointing. Gradients are unchanged (up to float32 summation
        order); the compiled train/test/predict functions are reset so the next ``fit`` traces the
        new setting.

        Returns:
            The model itself.
        """
        for layer in self._dv_checkpoint_layers():
            layer.__dict__.pop("call", None)  # back to the class's call
            if enable:
                object.__setattr__(layer, "call", _rematerialized_call(layer))
        object.__setattr__(self, "_dv_grad_checkpointing", bool(enable))
        for name in ("train_function", "test_function", "predict_function"):
            if getattr(self, name, None) is not None:
                setattr(self, name, None)
        return self

    @property
    def grad_checkpointing(self) -> bool:
        """Whether :meth:`set_grad_checkpointing` is on."""
        return bool(self.__dict__.get("_dv_grad_checkpointing", False))


def _rematerialized_call(layer: keras.layers.Layer) -> Any:
    """``layer.call`` under ``keras.remat``, whose recomputation leaves BatchNorm statistics alone."""
    call = type(layer).call.__get__(layer)
    norms = [sub for sub in layer._flatten_layers(include_self=True, recursive=True)
             if isinstance(sub, keras.layers.BatchNormalization)]
    forward = {"active": False}

    def run(*args: Any, **kwargs: Any) -> Any:
        if forward["active"] or not norms:
            return call(*args, **kwargs)
        # The backward pass's recomputation (outside the forward call): momentum 1 keeps the moving
        # statistics (moving * 1 + batch * 0), which the forward pass has already updated.
        saved = [norm.momentum for norm in norms]
        for norm in norms:
            norm.momentum = 1.0
        try:
            return call(*args, **kwargs)
        finally:
            for norm, momentum in zip(norms, saved):
                norm.momentum = momentum

    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        # Keyword arguments (``training``) are closed over: TensorFlow's custom_gradient takes them
        # only in eager mode, not inside fit's tf.function.
        forward["active"] = True
        try:
            return keras.remat(lambda *inputs: run(*inputs, **kwargs))(*args)
        finally:
            forward["active"] = False

    return checkpointed
