"""ONNX export from the canonical format, verified with onnxruntime.

Every export goes canonical -> PyTorch -> ONNX with the current exporter
(``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``):

* a portable checkpoint is loaded into the PyTorch implementation (``load_portable(..., "pytorch")``);
* a Keras model travels through the canonical tensors (``to_backend(model, "pytorch")``);
* a PyTorch model is exported as it is (in eval mode).

After export the file is checked with ``onnx.checker`` and run with onnxruntime (CPU) on the same
seeded random inputs as the source model (the PyTorch model, or the Keras model itself for a Keras
source); the export fails with :class:`OnnxExportError` and a per-output report when the outputs
differ by more than ``rtol`` (relative error per tensor, ``max|a - b| / max|b|``).

Graph layout: ``layout="NCHW"`` (default) takes ``(batch, C, H, W)`` images like PyTorch;
``layout="NHWC"`` takes ``(batch, H, W, C)`` like Keras (one Transpose in front), and its 4-D outputs
(feature maps) are channels-last too. Token inputs ``(batch, N, D)`` are the same in both layouts.
The graph input is named ``input``; outputs ``output`` (or ``output_0``, ``output_1``, ... for a
backbone's list of stage outputs). The batch dimension is symbolic (``batch``) unless
``dynamic_batch=False`` (then it is 1). With ``dynamic_size=True`` the height and width of an image
input are symbolic too (``height``, ``width``; e.g. SegFormer, whose logits follow the input size),
and the file is checked at the example size and at a second, non-square one.

``metadata_props`` of the file (all values strings, JSON where noted):

==================================== ==========================================================
key                                  value
==================================== ==========================================================
``deepvision.architecture``          registered name, e.g. ``ResNet50V2``
``deepvision.schema``                canonical-name schema, e.g. ``ResNet50V2@1``
``deepvision.schema_version``        its version number
``deepvision.config``                backend-neutral config (JSON, ``input_shape`` channels-last)
``deepvision.preprocessing``         input facts: size, mean, std, value range, ... (JSON)
``deepvision.version``               the deepvision version that exported the file
``deepvision.checkpoint_version``    the deepvision version that wrote the source checkpoint
``deepvision.source_backend``        backend the weights came from (``tensorflow``/``pytorch``)
``deepvision.layout``                ``NCHW`` or ``NHWC``
``deepvision.input_shape``           example input size without batch, channels-last (JSON)
``deepvision.dynamic_size``          with symbolic height and width: the smallest sizes the graph
                                     is valid for, ``{"min_height": h, "min_width": w}`` (JSON)
``deepvision.initializer_map``       ``{onnx initializer: canonical name}`` (JSON), see below
``deepvision.folded_initializers``   ``{onnx initializer: canonical name}`` of tensors the exporter
                                     changed (e.g. a conv with a BatchNorm folded into it) (JSON)
==================================== ==========================================================

The initializer map holds the initializers that are a canonical tensor unchanged, in PyTorch layout
(conv ``(out, in/groups, kh, kw)``, dense ``(out, in)``; the adapters' permutations give the canonical
layout). BatchNorm folded into a convolution leaves no BatchNorm initializers and changes the conv's,
so those appear under ``folded_initializers`` or not at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import interchange
from deepvision import __version__
from deepvision.io_utils import atomic_output, full_suffix

logger = logging.getLogger("deepvision")

LAYOUTS = ("NCHW", "NHWC")
DEFAULT_INPUT_SHAPE = (224, 224, 3)
INPUT_NAME = "input"
# Above this many bytes of weights the file cannot be one protobuf (2 GiB limit): weights go to
# ``<name>.onnx.data`` beside it.
_EXTERNAL_DATA_BYTES = 1_800_000_000


class OnnxExportError(ValueError):
    """An ONNX export failed or does not match its source; ``report`` holds the comparison, if any."""

    def __init__(self, message: str, report: OnnxReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class OutputCheck:
    """One output at one batch size: ``max_abs = max|onnx - ref|``, ``max_rel = max_abs / max|ref|``."""

    batch: int
    output: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float


@dataclass
class OnnxReport:
    """onnxruntime outputs against the source model's, per batch size and output."""

    rtol: float
    checks: list[OutputCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.max_rel <= self.rtol for c in self.checks)

    @property
    def max_rel(self) -> float:
        return max((c.max_rel for c in self.checks), default=0.0)

    def __str__(self) -> str:
        lines = [f"{'batch':>5}  {'output':<12} {'shape':<20} {'max abs':>10} {'max rel':>10}"]
        for c in self.checks:
            flag = "" if c.max_rel <= self.rtol else "  FAIL"
            lines.append(f"{c.batch:>5}  {c.output:<12} {str(c.shape):<20} {c.max_abs:>10.3e} {c.max_rel:>10.3e}{flag}")
        lines.append(f"overall: {'PASS' if self.ok else 'FAIL'} (max rel {self.max_rel:.3e}, rtol {self.rtol:g})")
        return "\n".join(lines)


@dataclass
class _Source:
    """What an export starts from: the PyTorch module to export and the reference to compare with."""

    torch_model: Any
    reference: Any  # the source model: the PyTorch module, or the Keras model for a Keras source
    reference_backend: str
    metadata: dict[str, Any]
    config: dict[str, Any]
    architecture: Any  # registry.Architecture or None


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------
def export_onnx(
    model_or_portable_path: Any,
    path: str | os.PathLike,
    *,
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = True,
    dynamic_size: bool = False,
    opset: int | None = None,
    layout: str = "NCHW",
    verify: bool = True,
    rtol: float = 1e-4,
) -> Path:
    """Export a deepvision model or portable checkpoint as an ONNX file, checked with onnxruntime.

    Args:
        model_or_portable_path: a portable ``.safetensors`` checkpoint, or a deepvision model (or
            block) of either backend.
        path: the ``.onnx`` file to write; written atomically (nothing is left behind on failure).
        input_shape: the example input size without batch, backend-neutral channels-last:
            ``(H, W, C)`` for images, ``(N, D)`` for tokens. Default: the model's config
            ``input_shape`` (``None`` sizes become 224), else 224x224x3. Spatial sizes are fixed in
            the graph (unless ``dynamic_size``); the model must accept this size.
        dynamic_batch: a symbolic batch dimension (checked at batch 1 and 3); ``False`` fixes it at 1.
        dynamic_size: symbolic height and width of an image input, checked at ``input_shape`` and
            at ``(H + 32, W + 16)``; the model must accept any size (SegFormer, convolutional
            backbones, ViT with ``dynamic_img_size``).
        opset: ONNX opset version; ``None`` is the exporter's default.
        layout: ``"NCHW"`` (PyTorch's) or ``"NHWC"`` (Keras's: input and 4-D outputs channels-last).
        verify: run ``onnx.checker`` and compare onnxruntime with the source model.
        rtol: largest allowed relative error per output, ``max|onnx - source| / max|source|``.

    Returns:
        ``Path(path)``.

    Raises:
        OnnxExportError: the input is not something we can export (with what to do instead), the
            exporter failed, or the outputs differ (``err.report`` has the numbers).
    """
    layout = _check_layout(layout)
    _require_onnx_stack()
    import torch

    source = _resolve_source(model_or_portable_path)
    shape = _resolve_input_shape(input_shape, source)
    if dynamic_size and len(shape) != 3:
        raise OnnxExportError(f"dynamic_size applies to image inputs (H, W, C); this input is {list(shape)}.")
    model = source.torch_model
    _check_float32(model)
    was_training = model.training
    model.eval()
    try:
        module = _channels_last(model) if (layout == "NHWC" and len(shape) == 3) else model
        example = _example_input(shape, layout, batch=2 if dynamic_batch else 1)
        with torch.no_grad():
            try:
                outputs = _flatten(module(torch.from_numpy(example)))
            except Exception as err:
                raise OnnxExportError(
                    f"{_label(source)} does not run on input_shape {list(shape)} (channels-last, {layout} graph): "
                    f"{type(err).__name__}: {_first_line(err)}. Pass an input_shape the model accepts."
                ) from err
        output_names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
        start = time.perf_counter()
        program, min_size = _torch_export(module, example, dynamic_batch, dynamic_size, layout, opset, output_names,
                                          source)
        seconds = time.perf_counter() - start
        _set_metadata(program, source, module, model, layout, shape, min_size)
        sizes = _check_shapes(shape, dynamic_size)
        _save_checked(program, Path(path), lambda tmp: _verify_file(tmp, source, sizes, layout, dynamic_batch,
                                                                    rtol, verify))
        logger.info("deepvision: exported %s to %s in %.1f s", _label(source), path, seconds)
    finally:
        model.train(was_training)
    return Path(path)


def verify_onnx(
    onnx_path: str | os.PathLike,
    model_or_portable_path: Any,
    *,
    batch_sizes: Sequence[int] | None = None,
    rtol: float = 1e-4,
    seed: int = 0,
) -> OnnxReport:
    """Compare an exported ONNX file with a model (or portable checkpoint) on seeded random inputs.

    The layout and input size are read from the file (``deepvision.layout`` metadata and the graph
    input; for symbolic height and width, ``deepvision.input_shape`` and a second size as at export).
    ``batch_sizes`` defaults to ``(1, 3)`` for a symbolic batch dimension, else the fixed one.
    Returns the report; it does not raise on a mismatch (see ``report.ok``).
    """
    _require_onnx_stack()
    import onnx

    model_proto = onnx.load(str(onnx_path), load_external_data=False)
    meta = {p.key: p.value for p in model_proto.metadata_props}
    layout = meta.get("deepvision.layout", "NCHW")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in model_proto.graph.input[0].type.tensor_type.shape.dim]
    if layout == "NCHW" and len(dims) == 4:
        shape = (dims[2], dims[3], dims[1])
    else:
        shape = tuple(dims[1:])
    dynamic_size = len(shape) == 3 and None in shape[:2]
    if dynamic_size:
        shape = tuple(json.loads(meta["deepvision.input_shape"]))
    if batch_sizes is None:
        batch_sizes = (1, 3) if dims[0] is None else (dims[0],)
    source = _resolve_source(model_or_portable_path, need_torch=False)
    model = source.reference
    was_training = getattr(model, "training", False)
    if source.reference_backend == "pytorch":
        model.eval()
    try:
        return _compare(onnx_path, source, _check_shapes(shape, dynamic_size), layout, batch_sizes, rtol, seed)
    finally:
        if source.reference_backend == "pytorch":
            model.train(was_training)


# ----------------------------------------------------------------------------------------------
# Source resolution
# ----------------------------------------------------------------------------------------------
def _check_layout(layout: str) -> str:
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS:
        raise OnnxExportError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}.")
    return layout.upper()


def _require_onnx_stack() -> None:
    missing = []
    for module in ("torch", "onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise OnnxExportError(
            f"ONNX export needs {', '.join(missing)}, which cannot be imported. "
            "Install them with: pip install 'deepvision-toolkit[onnx]'"
        )


def _resolve_source(obj: Any, need_torch: bool = True) -> _Source:
    """The PyTorch module to export (only a Keras source needs converting: skipped when
    ``need_torch`` is false) and the model to compare with."""
    if isinstance(obj, (str, os.PathLike)):
        return _source_from_file(Path(obj))
    from deepvision.backend import PYTORCH, TENSORFLOW, backend_of

    try:
        backend = backend_of(obj)
    except Exception as err:
        raise OnnxExportError(
            f"export_onnx takes a portable .safetensors checkpoint or a deepvision model (Keras or PyTorch), "
            f"got {type(obj).__name__}."
        ) from err
    from deepvision.portable import portable_metadata, to_backend
    from deepvision.registry import architecture_of, config_of

    try:
        arch = architecture_of(obj)
    except TypeError:
        arch = None  # a plain torch.nn.Module: exported as it is, without deepvision metadata
    if backend == TENSORFLOW:
        if arch is None:
            raise OnnxExportError(f"{type(obj).__name__} is not a deepvision Keras model; only those convert to PyTorch.")
        torch_model = to_backend(obj, PYTORCH) if need_torch else None
        return _Source(torch_model, obj, TENSORFLOW, portable_metadata(obj), config_of(obj), arch)
    if arch is None:
        return _Source(obj, obj, PYTORCH, {"source_backend": PYTORCH}, {}, None)
    return _Source(obj, obj, PYTORCH, portable_metadata(obj), config_of(obj), arch)


def _source_from_file(path: Path) -> _Source:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.is_dir() or full_suffix(path) != ".safetensors":
        raise OnnxExportError(
            f"{path} is not a portable checkpoint (.safetensors): export_onnx takes a portable checkpoint or a "
            f"deepvision model. Convert other files in one step with `deepvision convert {path.name} out.onnx` "
            "(add --architecture/--config for files that do not record them), or write a portable checkpoint "
            "first with deepvision.convert(..., 'model.safetensors')."
        )
    try:
        ckpt = interchange.open_checkpoint(path)
    except interchange.ForeignCheckpointError as err:
        raise OnnxExportError(
            f"{path} is a safetensors file without deepvision metadata (a foreign checkpoint), so it does not say "
            f"which architecture it holds. Import and export in one step: `deepvision convert {path.name} "
            "out.onnx --from timm` (a timm ViT) or `--from <format> --architecture <name> [--config JSON]`; "
            "or import it to a portable checkpoint first with `deepvision convert ... model.safetensors`."
        ) from err
    with ckpt:
        if ckpt.architecture is None:
            raise OnnxExportError(f"{path} names no architecture; it cannot be rebuilt for export.")
        meta = ckpt.metadata.to_dict()
        config = dict(ckpt.config or {})
        architecture, schema_version = ckpt.architecture, ckpt.schema_version
    from deepvision.portable import load_portable
    from deepvision.registry import get_architecture

    arch = get_architecture(architecture)
    model = load_portable(path, backend="pytorch")
    metadata = {
        "architecture": architecture,
        "schema": f"{architecture}@{schema_version}" if schema_version is not None else arch.schema,
        "config": config,
        "preprocessing": meta.get("preprocessing", {}),
        "source_backend": meta.get("source_backend"),
        "library_version": meta.get("library_version"),
    }
    return _Source(model, model, "pytorch", metadata, config, arch)


def _label(source: _Source) -> str:
    return source.metadata.get("architecture") or type(source.torch_model).__name__


def _resolve_input_shape(input_shape: Sequence[int] | None, source: _Source) -> tuple[int, ...]:
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) not in (2, 3) or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            raise OnnxExportError(f"input_shape must be (H, W, C) or (N, D) positive integers, got {input_shape!r}.")
        return tuple(int(d) for d in shape)
    shape = source.config.get("input_shape")
    if shape is None and source.architecture is not None and source.architecture.build_shape is not None:
        shape = source.architecture.build_shape(source.config)
    if shape is None:
        return DEFAULT_INPUT_SHAPE
    shape = list(shape)
    if len(shape) == 3:
        shape = [d if d is not None else default for d, default in zip(shape, DEFAULT_INPUT_SHAPE)]
    if any(d is None for d in shape):
        raise OnnxExportError(f"{_label(source)} has free input sizes {shape}: pass input_shape.")
    return tuple(int(d) for d in shape)


def _check_float32(model: Any) -> None:
    import torch

    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        raise OnnxExportError(
            f"ONNX export works on float32 models; this one holds {sorted(str(d) for d in dtypes)}. "
            "Export model.float() (or the portable checkpoint, which loads as float32)."
        )


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------
_WRAPPER: type | None = None


def _channels_last(model: Any) -> Any:
    """``model`` behind a transpose: takes NHWC input, returns 4-D outputs NHWC."""
    global _WRAPPER
    if _WRAPPER is None:
        import torch

        class ChannelsLast(torch.nn.Module):
            def __init__(self, model: torch.nn.Module) -> None:
                super().__init__()
                self.model = model

            def forward(self, x: torch.Tensor) -> Any:
                out = self.model(x.permute(0, 3, 1, 2))
                if isinstance(out, (list, tuple)):
                    return [t.permute(0, 2, 3, 1) if t.ndim == 4 else t for t in out]
                return out.permute(0, 2, 3, 1) if out.ndim == 4 else out

        _WRAPPER = ChannelsLast
    return _WRAPPER(model).eval()


def _example_input(shape: tuple[int, ...], layout: str, batch: int, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal input in the graph's layout (``shape`` is channels-last)."""
    x = np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if (len(shape) == 3 and layout == "NCHW") else x


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _flatten(item)]
    if isinstance(out, dict):
        return [t for item in out.values() for t in _flatten(item)]
    return [out]


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's noise that says nothing about this export (missing torchvision ops,
    pytree deprecations, per-pass INFO lines); real failures still raise."""
    names = ("torch.onnx._internal.exporter._registration", "onnxscript", "onnx_ir")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*torchvision.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _check_shapes(shape: tuple[int, ...], dynamic_size: bool) -> list[tuple[int, ...]]:
    """Input sizes an export is checked at: the example, and for symbolic H, W a second, non-square one."""
    if not dynamic_size:
        return [shape]
    return [shape, (shape[0] + 32, shape[1] + 16, *shape[2:])]


def _torch_export(module: Any, example: np.ndarray, dynamic_batch: bool, dynamic_size: bool, layout: str,
                  opset: int | None, output_names: list[str], source: _Source) -> tuple[Any, list[int] | None]:
    """The ONNX program, and with ``dynamic_size`` the smallest (height, width) it is valid for."""
    import torch

    dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1)} if dynamic_batch else {}
    spatial = (2, 3) if layout == "NCHW" else (1, 2)
    if dynamic_size:
        # DYNAMIC, not a fixed range: torch.export narrows the range itself (it specialises sizes
        # that make an inner grid 1, e.g. SegFormer's reduced keys) and fails if it must fix a size.
        dims.update({axis: torch.export.Dim.DYNAMIC for axis in spatial})
    dynamic_shapes = (dims,) if dims else None
    args = (torch.from_numpy(example),)
    min_size = None
    try:
        with _quiet_exporter():
            model: Any = module
            if dynamic_size:
                # Export first, so that a size the model fixes is an error here, not a silent
                # fallback of torch.onnx.export to a static graph.
                model = torch.export.export(module, args, dynamic_shapes=dynamic_shapes)
                min_size = _minimum_sizes(model, spatial)
            program = torch.onnx.export(
                model, args, dynamo=True, dynamic_shapes=None if dynamic_size else dynamic_shapes,
                input_names=[INPUT_NAME], output_names=output_names, opset_version=opset, verbose=False,
                optimize=True,
            )
    except OnnxExportError:
        raise
    except Exception as err:
        hint = " If the model fixes its batch size, try dynamic_batch=False." if dynamic_batch else ""
        if dynamic_size:
            hint += " If the model needs a fixed input size, leave dynamic_size off."
        raise OnnxExportError(
            f"torch.onnx.export (dynamo) failed for {_label(source)}: {type(err).__name__}: {_first_line(err)}.{hint}"
        ) from err
    if program is None:  # only the deprecated TorchScript path returns None
        raise OnnxExportError("torch.onnx.export returned no program; torch >= 2.5 with onnxscript is needed.")
    names = {0: "batch"} if dynamic_batch else {}
    if dynamic_size:
        names.update(dict(zip(spatial, ("height", "width"))))
    _name_input_dims(program, names)
    return program, min_size


def _minimum_sizes(exported: Any, spatial: tuple[int, int]) -> list[int]:
    """The smallest height and width an exported program's range constraints allow; an error when
    they also set a largest one (the traced code path holds only for a band of sizes)."""
    import sympy
    import torch
    from torch.utils._sympy.numbers import int_oo

    placeholder = next(n for n in exported.graph.nodes
                       if n.op == "placeholder" and n.name == exported.graph_signature.user_inputs[0])
    ranges = []
    for axis, what in zip(spatial, ("height", "width")):
        dim = placeholder.meta["val"].shape[axis]
        if not isinstance(dim, torch.SymInt):
            raise OnnxExportError(f"the model fixes its input {what} at {dim}: it cannot take other sizes.")
        bounds = exported.range_constraints[dim.node.expr]
        ranges.append((what, int(bounds.lower), None if bounds.upper in (int_oo, sympy.oo) else int(bounds.upper)))
    bounded = [f"{what} {lo}..{hi}" for what, lo, hi in ranges if hi is not None]
    if bounded:
        raise OnnxExportError(
            f"torch.export proves the graph only for {' and '.join(bounded)}: at this example size an inner grid "
            "is 1x1 (e.g. SegFormer's reduced keys), a size it specialises. Export at a larger input_shape, or "
            "leave dynamic_size off."
        )
    return [lo for _, lo, _ in ranges]


def _name_input_dims(program: Any, names: dict[int, str]) -> None:
    """Rename the exporter's symbols (``s53``) of the input's dims, wherever a shape mentions them."""
    import re

    import onnx_ir as ir

    graph = program.model.graph
    shape = graph.inputs[0].shape
    renames = {str(shape[axis]): name for axis, name in names.items()
               if axis < len(shape) and isinstance(shape[axis], ir.SymbolicDim) and shape[axis].value}
    if not renames:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, renames)) + r")\b")
    values = [*graph.inputs, *graph.outputs, *(out for node in graph.all_nodes() for out in node.outputs)]
    for value in values:
        if value.shape is None:
            continue
        for i, dim in enumerate(value.shape):
            if isinstance(dim, ir.SymbolicDim) and dim.value and pattern.search(dim.value):
                value.shape[i] = ir.SymbolicDim(pattern.sub(lambda m: renames[m.group(1)], dim.value))


def _initializer_maps(program: Any, module: Any, model: Any) -> tuple[dict[str, str], dict[str, str]]:
    """``{initializer: canonical}`` for unchanged canonical tensors, and for those the exporter changed."""
    from deepvision.adapters import iter_slots

    try:
        canonical = {id(slot.variable): slot.name for slot in iter_slots(model)}
    except TypeError:
        return {}, {}  # a module the adapters do not cover: no canonical names
    by_name = module.state_dict(keep_vars=True)  # the exporter names initializers by these paths
    mapped: dict[str, str] = {}
    changed: dict[str, str] = {}
    for name, value in program.model.graph.initializers.items():
        tensor = by_name.get(name)
        if tensor is None or id(tensor) not in canonical:
            continue
        array = value.const_value.numpy() if value.const_value is not None else None
        same = array is not None and np.array_equal(array, tensor.detach().cpu().numpy())
        (mapped if same else changed)[name] = canonical[id(tensor)]
    return mapped, changed


def _set_metadata(program: Any, source: _Source, module: Any, model: Any, layout: str,
                  shape: tuple[int, ...], min_size: list[int] | None = None) -> None:
    meta = source.metadata
    mapped, changed = _initializer_maps(program, module, model)
    schema = meta.get("schema")
    props = {
        "deepvision.architecture": meta.get("architecture"),
        "deepvision.schema": schema,
        "deepvision.schema_version": schema.rpartition("@")[2] if schema else None,
        "deepvision.config": json.dumps(meta.get("config", source.config), sort_keys=True, default=str),
        "deepvision.preprocessing": json.dumps(meta.get("preprocessing") or {}, sort_keys=True, default=str),
        "deepvision.version": __version__,
        "deepvision.checkpoint_version": meta.get("library_version"),
        "deepvision.source_backend": meta.get("source_backend"),
        "deepvision.layout": layout,
        "deepvision.input_shape": json.dumps(list(shape)),
        "deepvision.dynamic_size": json.dumps({"min_height": min_size[0], "min_width": min_size[1]})
        if min_size else None,
        "deepvision.initializer_map": json.dumps(mapped),
        "deepvision.folded_initializers": json.dumps(changed),
    }
    program.model.metadata_props.update({k: str(v) for k, v in props.items() if v is not None})
    graph_shape = _graph_shape(shape, layout)
    if min_size:
        named = dict(zip((1, 2) if layout == "NCHW" else (0, 1), ("height", "width")))
        graph_shape = tuple(named.get(i, d) for i, d in enumerate(graph_shape))
    dims = ", ".join(map(str, graph_shape))
    program.model.doc_string = (
        f"deepvision {meta.get('architecture') or type(model).__name__}: input {INPUT_NAME!r} (batch, {dims}), "
        f"layout {layout}; exported by deepvision {__version__} through PyTorch."
    )


def _graph_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if (len(shape) == 3 and layout == "NCHW") else shape


def _weight_bytes(program: Any) -> int:
    total = 0
    for value in program.model.graph.initializers.values():
        if value.const_value is not None:
            total += value.const_value.nbytes
    return total


def _save_checked(program: Any, path: Path, check: Callable[[Path], None]) -> None:
    """Save, run ``check`` on the saved file, and only then put it at ``path`` (atomic)."""
    if _weight_bytes(program) <= _EXTERNAL_DATA_BYTES:
        with atomic_output(path) as tmp:
            program.save(tmp, external_data=False)
            check(tmp)
        return
    # Too big for one protobuf: the weights go to ``<name>.data``, which the graph names by file
    # name; so write both under their final names in a private folder, check, then move them.
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        staged = folder / path.name
        program.save(staged, external_data=True)
        check(staged)
        for item in sorted(folder.iterdir(), key=lambda p: p.name == path.name):  # the graph last
            os.replace(item, path.parent / item.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Verification
# ----------------------------------------------------------------------------------------------
def _verify_file(file: Path, source: _Source, shapes: list[tuple[int, ...]], layout: str, dynamic_batch: bool,
                 rtol: float, verify: bool) -> None:
    if not verify:
        return
    import onnx

    try:
        onnx.checker.check_model(str(file))
    except onnx.checker.ValidationError as err:
        raise OnnxExportError(f"the exported graph of {_label(source)} fails onnx.checker: {_first_line(err)}") from err
    report = _compare(file, source, shapes, layout, (1, 3) if dynamic_batch else (1,), rtol, seed=0)
    logger.info("deepvision: onnxruntime vs %s source\n%s", source.reference_backend, report)
    if not report.ok:
        raise OnnxExportError(
            f"onnxruntime disagrees with the {source.reference_backend} {_label(source)} by more than "
            f"rtol={rtol:g} (relative error max|a-b|/max|b| per output); nothing was written.\n{report}",
            report,
        )


def _compare(file: str | os.PathLike, source: _Source, shapes: Sequence[tuple[int, ...]], layout: str,
             batch_sizes: Sequence[int], rtol: float, seed: int) -> OnnxReport:
    import onnxruntime as ort

    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_names = [o.name for o in session.get_outputs()]
    report = OnnxReport(rtol)
    image = len(shapes[0]) == 3
    for shape, batch in ((shape, batch) for shape in shapes for batch in batch_sizes):
        x = np.random.default_rng(seed + batch).standard_normal((batch, *shape)).astype(np.float32)
        feed = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if (image and layout == "NCHW") else x
        got = session.run(None, {input_name: feed})
        want = _reference_outputs(source, x, layout if image else "NHWC")
        if len(got) != len(want):
            raise OnnxExportError(f"the ONNX graph has {len(got)} outputs but the source model {len(want)}.")
        for name, a, b in zip(output_names, got, want):
            if a.shape != b.shape:
                raise OnnxExportError(f"ONNX output {name} has shape {a.shape}, the source model {b.shape} (batch {batch}).")
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            max_abs = float(np.max(np.abs(a64 - b64), initial=0.0))
            report.checks.append(OutputCheck(batch, name, tuple(a.shape), max_abs,
                                             max_abs / max(float(np.max(np.abs(b64), initial=0.0)), 1e-30)))
    return report


def _reference_outputs(source: _Source, x_nhwc: np.ndarray, layout: str) -> list[np.ndarray]:
    """The source model's outputs for the channels-last batch ``x_nhwc``, 4-D ones in ``layout``."""
    image = x_nhwc.ndim == 4
    if source.reference_backend == "pytorch":
        import torch

        x = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)) if image else x_nhwc
        with torch.no_grad():
            outs = [t.detach().cpu().float().numpy() for t in _flatten(source.reference(torch.from_numpy(x)))]
        return [o.transpose(0, 2, 3, 1) if (o.ndim == 4 and layout == "NHWC") else o for o in outs]
    import keras

    outs = _flatten(source.reference(keras.ops.convert_to_tensor(x_nhwc), training=False))
    outs = [np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(o, "float32"))) for o in outs]
    return [o.transpose(0, 3, 1, 2) if (o.ndim == 4 and layout == "NCHW") else o for o in outs]
