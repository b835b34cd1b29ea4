"""Gradient capture for PyTorch models: the target feature map and dS_c/d(target).

The target tensor is caught with a hook that hands the rest of the network a copy of a fresh
leaf tensor (``detach().requires_grad_()`` then ``clone()``) and differentiates the class score
with respect to that leaf. Unlike ``retain_grad`` on the module's own output this works when the
weights are frozen (nothing requires grad) and when a later in-place op (``ReLU(inplace=True)``)
would overwrite the captured activation.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from deepvision.backend import require_pytorch
from deepvision.evaluation._arrays import is_torch_tensor, model_output_tensor, to_numpy
from deepvision.evaluation.activation_maps import CHANNELS_FIRST, TOKENS, Captured

OUTPUT = "output"
INPUT = "input"


@dataclasses.dataclass
class _Call:
    """One module call seen during the discovery forward pass."""

    name: str
    module: Any
    start: int
    end: int
    first_input: Any
    output: Any


def _is_descendant(name: str, ancestor: str) -> bool:
    return ancestor == "" or name.startswith(ancestor + ".")


def _module_device_dtype(model: Any) -> tuple[Any, Any]:
    torch = require_pytorch()
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


class TorchGradientCapture:
    """Runs a ``torch.nn.Module`` and returns the target tensor and its class-score gradient."""

    def __init__(self, model: Any, target_layer: Any = None) -> None:
        torch = require_pytorch()
        self._torch = torch
        self.model = model
        self._names = {module: name for name, module in model.named_modules()}
        self._target: tuple[Any, str] | None = None  # (module, INPUT or OUTPUT)
        self._softmax: Any = None
        self._discovered = False
        self.description = "chosen on the first compute()"
        if target_layer is not None:
            if isinstance(target_layer, str):
                try:
                    module = model.get_submodule(target_layer)
                except AttributeError as err:
                    raise ValueError(f"No submodule named {target_layer!r} in {type(model).__name__}: {err}") from err
            elif isinstance(target_layer, torch.nn.Module):
                module = target_layer
            else:
                raise TypeError(
                    f"target_layer must be a torch.nn.Module or a dotted module name; got {type(target_layer).__name__}"
                )
            if module not in self._names:
                raise ValueError(f"target_layer {type(module).__name__} is not a submodule of {type(model).__name__}")
            self._target = (module, OUTPUT)
            self.description = f"output of {self._names[module] or type(model).__name__}"

    # ----------------------------------------------------------------------------------------

    def _record_calls(self, x: Any) -> tuple[list[_Call], Any]:
        """A hooked dry forward (no gradients): every module call in order, and the model output."""
        torch = self._torch
        counter = itertools.count()
        calls: list[_Call] = []
        open_calls: dict[int, list[tuple[int, Any]]] = {}

        def before(module: Any, args: tuple) -> None:
            first = args[0] if args else None
            open_calls.setdefault(id(module), []).append((next(counter), first))

        def after(module: Any, args: tuple, output: Any) -> None:
            start, first = open_calls[id(module)].pop()
            calls.append(_Call(self._names[module], module, start, next(counter), first, output))

        handles = []
        for module in self._names:
            if module is self.model:
                continue
            handles.append(module.register_forward_pre_hook(before))
            handles.append(module.register_forward_hook(after))
        try:
            with torch.no_grad():
                output = model_output_tensor(self.model(x))
        finally:
            for handle in handles:
                handle.remove()
        return calls, output

    def _discover(self, x: Any) -> None:
        torch = self._torch
        calls, output = self._record_calls(x[:1])
        # Look through a final softmax: Grad-CAM++ explains the pre-softmax score.
        for call in reversed(calls):
            if call.output is output and isinstance(call.module, (torch.nn.Softmax, torch.nn.LogSoftmax)):
                self._softmax = call.module
                break
        if self._target is not None:
            module = self._target[0]
            if not any(call.module is module for call in calls):
                raise ValueError(f"target_layer {self.description!r} is not called in the model's forward pass.")
        else:
            self._target, self.description = self._auto_target(calls)
        self._discovered = True

    def _auto_target(self, calls: list[_Call]) -> tuple[tuple[Any, str], str]:
        four_d = [call for call in calls if is_torch_tensor(call.output) and call.output.dim() == 4]
        # (N, K, 1, 1) outputs are pooled vectors (squeeze-excitation, global pooling), not maps.
        maps = [call for call in four_d if call.output.shape[2:].numel() > 1]
        # Whole blocks rather than the convs and pads inside them, as a functional Keras model
        # sees its layers: the two backends then choose the same tensor.
        outer_maps = [call for call in maps
                      if not any(other.name != call.name and _is_descendant(call.name, other.name) for other in four_d)]
        last_map = max(outer_maps or maps, key=lambda call: call.end, default=None)

        # Transformer blocks: modules made of modules that map (N, T, D) tokens to the same shape.
        blocks = [call for call in calls
                  if any(True for _ in call.module.children())
                  and is_torch_tensor(call.first_input) and is_torch_tensor(call.output)
                  and call.output.dim() == 3 and call.first_input.shape == call.output.shape]
        # A container that hands back a child's output (nn.Sequential, an encoder ending in its
        # norm) is not a block: its input is the first block's.
        blocks = [call for call in blocks
                  if not any(other.output is call.output and other.name != call.name
                             and _is_descendant(other.name, call.name) for other in calls)]
        # The attention or MLP inside a block is not a block either: keep the outermost ones.
        blocks = [call for call in blocks
                  if not any(other.name != call.name and _is_descendant(call.name, other.name) for other in blocks)]
        last_block = max(blocks, key=lambda call: call.start, default=None)
        if last_block is not None and (last_map is None or last_block.start > last_map.end):
            return (last_block.module, INPUT), f"tokens entering {last_block.name}"
        if last_map is not None:
            return (last_map.module, OUTPUT), f"output of {last_map.name}"
        raise ValueError(
            f"{type(self.model).__name__} has no module with a spatial feature map (N, K, h, w) or "
            "transformer tokens; pass target_layer= explicitly."
        )

    # ----------------------------------------------------------------------------------------

    def _prepare(self, images: Any) -> Any:
        torch = self._torch
        tensor = images if is_torch_tensor(images) else torch.from_numpy(np.ascontiguousarray(to_numpy(images)))
        device, dtype = _module_device_dtype(self.model)
        tensor = tensor.detach().to(device=device, dtype=dtype)
        if tensor.dim() == 3:
            tensor = tensor[None]
        if tensor.dim() != 4:
            raise ValueError(f"Expected channels-first images (N, C, H, W); got shape {tuple(tensor.shape)}")
        return tensor

    def capture(self, images: Any, choose: Callable[[np.ndarray], np.ndarray]) -> Captured:
        """Forward ``images`` (N, C, H, W), pick the classes with ``choose(logits)``, differentiate."""
        x = self._prepare(images)
        modes = {module: module.training for module in self._names}
        self.model.eval()
        try:
            if not self._discovered:
                self._discover(x)
            return self._capture(x, choose)
        finally:
            for module, training in modes.items():
                module.training = training

    def _capture(self, x: Any, choose: Callable[[np.ndarray], np.ndarray]) -> Captured:
        torch = self._torch
        module, where = self._target
        leaves: list[Any] = []
        pre_softmax: list[Any] = []

        def fresh_leaf(tensor: Any) -> Any:
            if not is_torch_tensor(tensor):
                raise TypeError(f"The target ({self.description}) is a {type(tensor).__name__}, not a tensor.")
            leaf = tensor.detach().requires_grad_(True)
            leaves.append(leaf)
            return leaf.clone()

        def on_input(_module: Any, args: tuple) -> tuple:
            return (fresh_leaf(args[0]), *args[1:])

        def on_output(_module: Any, _args: tuple, output: Any) -> Any:
            return fresh_leaf(output)

        def on_softmax(_module: Any, args: tuple) -> None:
            pre_softmax.append(args[0])

        handles = [module.register_forward_pre_hook(on_input) if where == INPUT
                   else module.register_forward_hook(on_output)]
        if self._softmax is not None:
            handles.append(self._softmax.register_forward_pre_hook(on_softmax))
        try:
            with torch.enable_grad():
                output = model_output_tensor(self.model(x))
                logits = pre_softmax[-1] if pre_softmax else output
                logits_np = to_numpy(logits).astype(np.float64)
                indices = choose(logits_np)
                picked = logits.gather(1, torch.as_tensor(indices, device=logits.device).view(-1, 1))
                # A module called several times per forward pass: its last call is explained.
                (gradients,) = torch.autograd.grad(picked.sum(), leaves[-1], allow_unused=True)
        finally:
            for handle in handles:
                handle.remove()
        if gradients is None:
            raise RuntimeError(f"The class score does not depend on the target ({self.description}).")
        activations = leaves[-1]
        layout = {4: CHANNELS_FIRST, 3: TOKENS}.get(activations.dim())
        if layout is None:
            raise ValueError(
                f"The target ({self.description}) has shape {tuple(activations.shape)}; expected a "
                "feature map (N, K, h, w) or tokens (N, T, D)."
            )
        return Captured(
            activations=to_numpy(activations).astype(np.float64),
            gradients=to_numpy(gradients).astype(np.float64),
            layout=layout,
            logits=logits_np,
            class_indices=indices,
            image_size=(int(x.shape[2]), int(x.shape[3])),
        )
