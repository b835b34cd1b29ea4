"""Gradient capture for Keras 3 (TensorFlow) models: the target feature map and dS_c/d(target).

Keras 3 has no backend-neutral gradient API in ``keras.ops``, so the gradient is taken with
``tf.GradientTape``; everything else uses Keras. The intermediate tensor is reached by building
``keras.Model(model.inputs, [target, logits])`` over the model's own graph, which needs a
functional model (deepvision's TensorFlow models are functional ``keras.Model`` subclasses).
A subclassed model without a graph has no intermediate tensor to ask for: it is refused with an
error that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deepvision.backend import require_tensorflow
from deepvision.evaluation._arrays import is_tf_tensor, model_output_tensor, to_numpy
from deepvision.evaluation.activation_maps import Captured, layout_of_shape


def _single_tensor(value: Any) -> Any | None:
    return None if isinstance(value, (list, tuple, dict)) else value


def _has_sublayers(layer: Any) -> bool:
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is None:
        return False
    return any(True for _ in flatten(include_self=False, recursive=False))


def _is_token_block(layer: Any) -> bool:
    # A transformer block maps (N, T, D) tokens to tokens of the same shape and is made of layers
    # (a LayerNormalization or Dropout on tokens is not a block).
    try:
        inputs, outputs = _single_tensor(layer.input), _single_tensor(layer.output)
    except (AttributeError, ValueError):
        return False
    if inputs is None or outputs is None or len(outputs.shape) != 3:
        return False
    return tuple(inputs.shape) == tuple(outputs.shape) and _has_sublayers(layer)


def _is_spatial_map(tensor: Any) -> bool:
    shape = tuple(tensor.shape)
    return len(shape) == 4 and not (shape[1] == 1 and shape[2] == 1)


class KerasGradientCapture:
    """Runs a functional Keras model and returns the target tensor and its class-score gradient."""

    def __init__(self, model: Any, target_layer: Any = None) -> None:
        keras = require_tensorflow()
        self._keras = keras
        self.model = model
        try:
            inputs = list(model.inputs)
            output = model_output_tensor(model.output)
        except (AttributeError, ValueError, TypeError) as err:
            if isinstance(err, TypeError) and "output" in str(err):
                raise
            raise TypeError(
                f"ActivationMaps needs a functional Keras model (built with keras.Model(inputs, "
                f"outputs), as deepvision's models are) to reach an intermediate layer's output; "
                f"{type(model).__name__} has no graph ({err}). Wrap it in a functional model, e.g. "
                "inputs = keras.Input(shape); model = keras.Model(inputs, net(inputs))."
            ) from err
        target, self.description = self._resolve_target(target_layer)
        self.layout = layout_of_shape(target.shape, channels_last=True)
        if self.layout is None:
            raise ValueError(
                f"The target {self.description} has shape {tuple(target.shape)}; expected a feature "
                "map (N, h, w, K) or tokens (N, T, D)."
            )
        pre_softmax, self._to_logits = self._pre_softmax(output)
        graph_inputs = inputs[0] if len(inputs) == 1 else inputs
        self._graph = keras.Model(graph_inputs, [target, pre_softmax])

    # ----------------------------------------------------------------------------------------

    def _resolve_target(self, target_layer: Any) -> tuple[Any, str]:
        keras = self._keras
        layers = list(self.model.layers)
        if target_layer is None:
            return self._auto_target(layers)
        if isinstance(target_layer, str):
            try:
                layer = self.model.get_layer(target_layer)
            except ValueError as err:
                names = [layer.name for layer in layers]
                raise ValueError(f"No layer named {target_layer!r} in {self.model.name}; layers: {names}") from err
        elif isinstance(target_layer, keras.layers.Layer):
            layer = target_layer
        else:
            raise TypeError(f"target_layer must be a Keras layer or a layer name; got {type(target_layer).__name__}")
        if not any(layer is candidate for candidate in layers):
            raise ValueError(
                f"Layer {layer.name!r} is not a top-level layer of {self.model.name} (a layer inside a "
                "nested model has no output in this model's graph); pick a top-level layer."
            )
        output = _single_tensor(layer.output)
        if output is None:
            raise ValueError(f"Layer {layer.name!r} has several outputs; pick a layer with one tensor output.")
        return output, f"output of {layer.name}"

    def _auto_target(self, layers: list[Any]) -> tuple[Any, str]:
        keras = self._keras
        last_map = last_block = None
        for index, layer in enumerate(layers):
            if isinstance(layer, keras.layers.InputLayer):
                continue
            try:
                output = _single_tensor(layer.output)
            except (AttributeError, ValueError):
                continue
            if output is None:
                continue
            if _is_spatial_map(output):
                last_map = (index, layer)
            elif _is_token_block(layer):
                last_block = (index, layer)
        if last_block is not None and (last_map is None or last_block[0] > last_map[0]):
            layer = last_block[1]
            return layer.input, f"tokens entering {layer.name}"
        if last_map is not None:
            layer = last_map[1]
            return layer.output, f"output of {layer.name}"
        raise ValueError(
            f"{self.model.name} has no layer with a spatial feature map (N, h, w, K) or transformer "
            "tokens; pass target_layer= explicitly."
        )

    def _pre_softmax(self, output: Any) -> tuple[Any, Callable[[Any], Any]]:
        # Grad-CAM++ explains the pre-softmax score: look through a final softmax.
        keras = self._keras
        history = getattr(output, "_keras_history", None)
        layer = getattr(history, "operation", None)
        softmax = keras.activations.softmax
        if isinstance(layer, keras.layers.Softmax) or (
            isinstance(layer, keras.layers.Activation) and layer.activation is softmax
        ):
            return layer.input, lambda tensor: tensor
        if isinstance(layer, keras.layers.Dense) and layer.activation is softmax:
            def dense_logits(tensor: Any) -> Any:
                logits = keras.ops.matmul(tensor, layer.kernel)
                return logits if layer.bias is None else logits + layer.bias

            return layer.input, dense_logits
        return output, lambda tensor: tensor

    # ----------------------------------------------------------------------------------------

    def _prepare(self, images: Any) -> Any:
        import tensorflow as tf

        tensor = images if is_tf_tensor(images) else tf.convert_to_tensor(np.asarray(to_numpy(images)))
        if not tensor.dtype.is_floating:
            tensor = tf.cast(tensor, tf.float32)
        if len(tensor.shape) == 3:
            tensor = tensor[None]
        if len(tensor.shape) != 4:
            raise ValueError(f"Expected channels-last images (N, H, W, C); got shape {tuple(tensor.shape)}")
        return tensor

    def capture(self, images: Any, choose: Callable[[np.ndarray], np.ndarray]) -> Captured:
        """Forward ``images`` (N, H, W, C), pick the classes with ``choose(logits)``, differentiate."""
        import tensorflow as tf

        x = self._prepare(images)
        with tf.GradientTape() as tape:
            # Watching the input records every op, even where the weights are frozen.
            tape.watch(x)
            target, pre_softmax = self._graph(x, training=False)
            logits = self._to_logits(pre_softmax)
            logits_np = to_numpy(logits).astype(np.float64)
            indices = choose(logits_np)
            score = tf.reduce_sum(tf.gather(logits, tf.constant(indices), axis=1, batch_dims=1))
        gradients = tape.gradient(score, target)
        if gradients is None:
            raise RuntimeError(f"The class score does not depend on the target ({self.description}).")
        return Captured(
            activations=to_numpy(target).astype(np.float64),
            gradients=to_numpy(gradients).astype(np.float64),
            layout=self.layout,
            logits=logits_np,
            class_indices=indices,
            image_size=(int(x.shape[1]), int(x.shape[2])),
        )
