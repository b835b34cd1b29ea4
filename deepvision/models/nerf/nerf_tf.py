"""Keras NeRF MLP (mirrors ``nerf_pt.py``); see the family docstring for the network."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from deepvision.models.base_tf import DeepVisionModelTF
from deepvision.models.nerf import check_arguments


@keras.saving.register_keras_serializable(package="deepvision")
class PositionalEncodingTF(keras.layers.Layer):
    """``(N, 6) -> (N, 3 + 6L)``: columns ``offset..offset+2`` encoded as ``[x, sin(2^k x), cos(2^k x)]``.

    The sine and cosine of every frequency are interleaved per frequency, as in the tiny NeRF
    loader's ``encode_points``; scaling by powers of two is exact, so both backends take sin/cos of
    the same numbers.
    """

    def __init__(self, frequencies: int, offset: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frequencies = int(frequencies)
        self.offset = int(offset)

    def call(self, x):
        v = x[:, self.offset:self.offset + 3]
        parts = [v]
        for k in range(self.frequencies):
            scaled = v * float(2.0 ** k)
            parts += [keras.ops.sin(scaled), keras.ops.cos(scaled)]
        return keras.ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3 + 6 * self.frequencies)

    def get_config(self) -> dict:
        return {**super().get_config(), "frequencies": self.frequencies, "offset": self.offset}


@keras.saving.register_keras_serializable(package="deepvision")
class NeRFTF(DeepVisionModelTF):
    """The NeRF MLP: ``(N, 6)`` points and unit view directions -> ``(N, 4)`` rgb in [0, 1] and density >= 0.

    Args:
        position_frequencies: frequencies ``L`` of the position encoding (10 in the paper).
        direction_frequencies: frequencies of the view-direction encoding (4 in the paper).
        depth: trunk layers (8 in the paper).
        width: trunk width (256).
        skips: trunk layer indices whose input gets the encoded position concatenated again ((4,)).
        branch_width: width of the view-dependent colour branch (128).
        density_activation: ``"relu"`` (the paper) or ``"softplus"`` (smoother at the start of training).
    """

    def __init__(
        self,
        position_frequencies: int = 10,
        direction_frequencies: int = 4,
        depth: int = 8,
        width: int = 256,
        skips: Sequence[int] = (4,),
        branch_width: int = 128,
        density_activation: str = "relu",
        **kwargs,
    ) -> None:
        arguments = dict(locals())
        check_arguments(position_frequencies, direction_frequencies, depth, width, skips, branch_width,
                        density_activation)
        skips = tuple(int(s) for s in skips)
        encode_position = PositionalEncodingTF(position_frequencies, 0)
        encode_direction = PositionalEncodingTF(direction_frequencies, 3)
        trunk = [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
        density = keras.layers.Dense(1, activation=density_activation)
        feature = keras.layers.Dense(width)
        view = keras.layers.Dense(branch_width, activation="relu")
        rgb = keras.layers.Dense(3, activation="sigmoid")

        inputs = keras.Input(shape=(6,))
        position, direction = encode_position(inputs), encode_direction(inputs)
        h = position
        for i, layer in enumerate(trunk):
            if i in skips:
                h = keras.layers.Concatenate()([h, position])
            h = layer(h)
        h_view = view(keras.layers.Concatenate()([feature(h), direction]))
        # float32 outputs under mixed precision: the renderer integrates them.
        outputs = keras.layers.Concatenate(dtype="float32")([rgb(h_view), density(h)])
        kwargs.setdefault("name", "nerf")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # Public attributes in the same order as NeRFPT: they define the canonical names.
        self.encode_position = encode_position
        self.encode_direction = encode_direction
        self.trunk = trunk
        self.density = density
        self.feature = feature
        self.view = view
        self.rgb = rgb
        self._store_config(arguments)
