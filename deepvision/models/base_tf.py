"""Base class of every Keras deepvision model (mirrors ``base_pt.py``)."""

from __future__ import annotations

from typing import Any

import keras


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

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DeepVisionModelTF:
        return cls(**config)

    def count_params_split(self) -> dict[str, int]:
        """Total, trainable and non-trainable parameter counts (Keras's meaning)."""
        from deepvision.adapters import count_params

        return count_params(self)
