"""Hugging Face transformers SegFormer <-> canonical checkpoints, both directions.

``import_huggingface`` reads a transformers SegFormer state_dict (``model.safetensors``, or
``pytorch_model.bin`` read with ``torch.load(weights_only=True)``), or a hub folder holding one of
them beside ``config.json``, and writes a canonical checkpoint that ``load_portable`` turns into a
deepvision ``SegFormer*`` / ``MiT*`` model in either backend. ``export_huggingface`` writes a folder
(``config.json`` + ``model.safetensors``, hub names) that transformers' ``from_pretrained`` loads, or
a single state_dict file that ``load_state_dict(strict=True)`` accepts. transformers is never imported.

Three transformers classes are understood: ``SegformerForSemanticSegmentation`` (``segformer.`` +
``decode_head.`` -> ``SegFormer*``), ``SegformerModel`` (no prefix -> ``MiT*``) and
``SegformerForImageClassification`` (``segformer.`` + ``classifier.`` -> ``MiT*`` with ``include_top``).

Two namings exist: the *hub names* of the published checkpoints and of transformers 4, and the
names transformers 5 uses in memory. Both are read (v5 names are first renamed to hub names,
:func:`hub_name`); the exporter writes hub names, which both generations load.

The mapping (hub name -> canonical name, layout; stage ``i``, block ``j``)::

    encoder.patch_embeddings.i.proj.weight     stages.i.patch_embed.projection.kernel  (D, C, k, k) -> (k, k, C, D)
    encoder.patch_embeddings.i.layer_norm.*    stages.i.patch_embed.norm.gamma/beta
    encoder.block.i.j.layer_norm_1.*           stages.i.blocks.j.norm1.gamma/beta
    encoder.block.i.j.attention.self.query     stages.i.blocks.j.attn.query            (out, in) -> (in, out)
      (key, value likewise; .sr -> attn.reduction (conv), .layer_norm -> attn.reduction_norm)
    encoder.block.i.j.attention.output.dense   stages.i.blocks.j.attn.proj
    encoder.block.i.j.layer_norm_2.*           stages.i.blocks.j.norm2
    encoder.block.i.j.mlp.dense1 / dense2      stages.i.blocks.j.mlp.fc1 / fc2
    encoder.block.i.j.mlp.dwconv.dwconv        stages.i.blocks.j.mlp.dwconv            (C, 1, 3, 3) -> (3, 3, C, 1)
    encoder.layer_norm.i.*                     stages.i.norm
    decode_head.linear_c.i.proj                decode_head.projections.i
    decode_head.linear_fuse.weight             decode_head.fuse.kernel
    decode_head.batch_norm.*                   decode_head.fuse_norm.gamma/beta/moving_mean/moving_variance
    decode_head.classifier                     decode_head.classifier
    classifier                                 head                                    (image classification)

``decode_head.batch_norm.num_batches_tracked`` has no canonical counterpart: it is dropped on import
and written as 0 on export (``load_state_dict(strict=True)`` expects the key).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import interchange

logger = logging.getLogger("deepvision")

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SEGMENTATION = "SegformerForSemanticSegmentation"
ENCODER = "SegformerModel"
CLASSIFICATION = "SegformerForImageClassification"


class HuggingFaceFormatError(ValueError):
    """A file or folder is not a transformers SegFormer checkpoint that deepvision can represent."""


# ----------------------------------------------------------------------------------------------- names

# transformers 5 -> hub names (the inverse of transformers 5's conversion mapping for SegFormer).
_V5_TO_HUB = (
    (re.compile(r"(^|\.)stages\.(\d+)\.patch_embeddings\."), r"\1encoder.patch_embeddings.\2."),
    (re.compile(r"(^|\.)stages\.(\d+)\.blocks\."), r"\1encoder.block.\2."),
    (re.compile(r"(^|\.)stages\.(\d+)\.layer_norm\."), r"\1encoder.layer_norm.\2."),
    (re.compile(r"\.attention\.(q|k|v)_proj\."), None),
    (re.compile(r"\.attention\.sequence_reduction\.sequence_reduction\."), ".attention.self.sr."),
    (re.compile(r"\.attention\.sequence_reduction\.layer_norm\."), ".attention.self.layer_norm."),
    (re.compile(r"\.attention\.o_proj\."), ".attention.output.dense."),
    (re.compile(r"\.mlp\.fc1\."), ".mlp.dense1."),
    (re.compile(r"\.mlp\.fc2\."), ".mlp.dense2."),
    (re.compile(r"\.layernorm_before\."), ".layer_norm_1."),
    (re.compile(r"\.layernorm_after\."), ".layer_norm_2."),
    (re.compile(r"(^|\.)decode_head\.linear_projections\."), r"\1decode_head.linear_c."),
)
_QKV = {"q": "query", "k": "key", "v": "value"}


def hub_name(name: str) -> str:
    """The hub (transformers 4) name of a transformers 5 SegFormer tensor name; hub names pass unchanged."""
    for pattern, replacement in _V5_TO_HUB:
        if replacement is None:
            name = pattern.sub(lambda m: f".attention.self.{_QKV[m.group(1)]}.", name)
        else:
            name = pattern.sub(replacement, name)
    return name


# hub names -> transformers 5 (what transformers 5 applies when loading a published checkpoint).
_HUB_TO_V5 = (
    (re.compile(r"(^|\.)encoder\.patch_embeddings\.(\d+)\."), r"\1stages.\2.patch_embeddings."),
    (re.compile(r"(^|\.)encoder\.block\.(\d+)\."), r"\1stages.\2.blocks."),
    (re.compile(r"(^|\.)encoder\.layer_norm\.(\d+)\."), r"\1stages.\2.layer_norm."),
    (re.compile(r"\.attention\.self\.query\."), ".attention.q_proj."),
    (re.compile(r"\.attention\.self\.key\."), ".attention.k_proj."),
    (re.compile(r"\.attention\.self\.value\."), ".attention.v_proj."),
    (re.compile(r"\.attention\.self\.sr\."), ".attention.sequence_reduction.sequence_reduction."),
    (re.compile(r"\.attention\.self\.layer_norm\."), ".attention.sequence_reduction.layer_norm."),
    (re.compile(r"\.attention\.output\.dense\."), ".attention.o_proj."),
    (re.compile(r"\.mlp\.dense1\."), ".mlp.fc1."),
    (re.compile(r"\.mlp\.dense2\."), ".mlp.fc2."),
    (re.compile(r"\.layer_norm_1\."), ".layernorm_before."),
    (re.compile(r"\.layer_norm_2\."), ".layernorm_after."),
    (re.compile(r"(^|\.)decode_head\.linear_c\."), r"\1decode_head.linear_projections."),
)
NAMINGS = ("hub", "transformers5")


def transformers5_name(name: str) -> str:
    """The transformers 5 (in-memory) name of a hub-named SegFormer tensor."""
    for pattern, replacement in _HUB_TO_V5:
        name = pattern.sub(replacement, name)
    return name


@dataclass(frozen=True)
class _Rule:
    hub: str
    canonical: str | None  # None: no canonical counterpart (num_batches_tracked)
    transpose: tuple[int, ...] | None = None  # canonical = hub.transpose(perm)


_CONV = (2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
_DEPTHWISE = (2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)
_DENSE = (1, 0)  # (out, in) -> (in, out)


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(perm.index(i) for i in range(len(perm)))


def _dense(hub: str, canonical: str) -> list[_Rule]:
    return [_Rule(f"{hub}.weight", f"{canonical}.kernel", _DENSE), _Rule(f"{hub}.bias", f"{canonical}.bias")]


def _conv(hub: str, canonical: str, perm: tuple[int, ...] = _CONV, bias: bool = True) -> list[_Rule]:
    rules = [_Rule(f"{hub}.weight", f"{canonical}.kernel" if perm == _CONV else f"{canonical}.depthwise_kernel", perm)]
    return rules + ([_Rule(f"{hub}.bias", f"{canonical}.bias")] if bias else [])


def _norm(hub: str, canonical: str) -> list[_Rule]:
    return [_Rule(f"{hub}.weight", f"{canonical}.gamma"), _Rule(f"{hub}.bias", f"{canonical}.beta")]


def _rules(config: Mapping[str, Any], kind: str) -> list[_Rule]:
    """Every tensor of a transformers SegFormer of ``kind`` with its canonical name, in transformers' order."""
    prefix = "" if kind == ENCODER else "segformer."
    rules: list[_Rule] = []
    for i, depth in enumerate(config["depths"]):
        e = f"{prefix}encoder."
        rules += _conv(f"{e}patch_embeddings.{i}.proj", f"stages.{i}.patch_embed.projection")
        rules += _norm(f"{e}patch_embeddings.{i}.layer_norm", f"stages.{i}.patch_embed.norm")
        for j in range(int(depth)):
            h, c = f"{e}block.{i}.{j}.", f"stages.{i}.blocks.{j}."
            rules += _norm(h + "layer_norm_1", c + "norm1")
            for part in ("query", "key", "value"):
                rules += _dense(h + f"attention.self.{part}", c + f"attn.{part}")
            if int(config["sr_ratios"][i]) > 1:
                rules += _conv(h + "attention.self.sr", c + "attn.reduction")
                rules += _norm(h + "attention.self.layer_norm", c + "attn.reduction_norm")
            rules += _dense(h + "attention.output.dense", c + "attn.proj")
            rules += _norm(h + "layer_norm_2", c + "norm2")
            rules += _dense(h + "mlp.dense1", c + "mlp.fc1")
            rules += _conv(h + "mlp.dwconv.dwconv", c + "mlp.dwconv", _DEPTHWISE)
            rules += _dense(h + "mlp.dense2", c + "mlp.fc2")
        rules += _norm(f"{e}layer_norm.{i}", f"stages.{i}.norm")
    if kind == SEGMENTATION:
        for i in range(len(config["depths"])):
            rules += _dense(f"decode_head.linear_c.{i}.proj", f"decode_head.projections.{i}")
        rules += _conv("decode_head.linear_fuse", "decode_head.fuse", bias=False)
        rules += _norm("decode_head.batch_norm", "decode_head.fuse_norm")
        rules += [_Rule("decode_head.batch_norm.running_mean", "decode_head.fuse_norm.moving_mean"),
                  _Rule("decode_head.batch_norm.running_var", "decode_head.fuse_norm.moving_variance"),
                  _Rule("decode_head.batch_norm.num_batches_tracked", None)]
        rules += _conv("decode_head.classifier", "decode_head.classifier")
    elif kind == CLASSIFICATION:
        rules += _dense("classifier", "head")
    return rules


def _hub_shape(shape: tuple[int, ...], rule: _Rule) -> tuple[int, ...]:
    if rule.transpose is None:
        return tuple(shape)
    return tuple(shape[i] for i in _inverse(rule.transpose))


def _kind_of(names: set[str]) -> str:
    if any(n.startswith("decode_head.") for n in names):
        return SEGMENTATION
    if "classifier.weight" in names:
        return CLASSIFICATION
    if any(n.startswith("encoder.") for n in names):
        return ENCODER
    raise HuggingFaceFormatError(
        "not a transformers SegFormer state_dict: no encoder.patch_embeddings / segformer.encoder / "
        "decode_head tensors (hub names) or stages.* (transformers 5 names)."
    )


def state_dict_spec(canonical_shapes: Mapping[str, tuple[int, ...]], config: Mapping[str, Any],
                    architecture: str) -> dict[str, tuple[int, ...]]:
    """transformers' hub names and shapes for a deepvision SegFormer/MiT given by its canonical shapes and config.

    Cheap (no tensor data): what :func:`export_huggingface` writes. Raises
    :class:`HuggingFaceFormatError` if a canonical tensor has no transformers counterpart.
    """
    kind = _export_kind(config, architecture)
    rules = _rules(config, kind)
    expected = {r.canonical for r in rules if r.canonical}
    extra, missing = sorted(set(canonical_shapes) - expected), sorted(expected - set(canonical_shapes))
    if extra or missing:
        raise HuggingFaceFormatError(f"not a transformers-compatible SegFormer: no transformers name for "
                                     f"{extra[:5]}, missing {missing[:5]}")
    return {r.hub: (() if r.canonical is None else _hub_shape(tuple(canonical_shapes[r.canonical]), r))
            for r in rules}


# ----------------------------------------------------------------------------------------------- reading


@dataclass
class _Source:
    shapes: dict[str, tuple[int, ...]]  # hub names
    dtypes: dict[str, str]
    get: Callable[[str], np.ndarray]
    file: Path


def _weights_in(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise HuggingFaceFormatError(f"{folder} holds neither {' nor '.join(WEIGHT_FILES)}: point at the weight file "
                                 "or a transformers model folder.")


@contextmanager
def _open_source(path: Path) -> Iterator[_Source]:
    if path.suffix.lower() not in (".safetensors", ".bin", ".pt", ".pth"):
        raise HuggingFaceFormatError(f"{path}: transformers weights come as .safetensors or .bin files.")
    if path.suffix.lower() == ".safetensors":
        # Zero-copy, no torch: the tensors are read one by one when written.
        with interchange.Checkpoint(path, allow_foreign=True) as ckpt:
            names = {hub_name(n): n for n in ckpt.names}
            yield _Source({h: tuple(ckpt.shape(n)) for h, n in names.items()},
                          {h: ckpt.dtype(n) for h, n in names.items()}, lambda h: ckpt.get(names[h]), path)
        return
    state = {hub_name(k): v for k, v in _read_state_dict(path).items()}
    yield _Source({k: tuple(v.shape) for k, v in state.items()}, {k: str(v.dtype) for k, v in state.items()},
                  lambda h: state[h], path)


def _read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """A torch weight file as numpy arrays (``torch.load(weights_only=True)``, never pickled objects)."""
    from deepvision import io_utils

    shared = getattr(io_utils, "read_state_dict", None)
    if shared is not None:  # the one agreed reader, once it exists
        return shared(path)
    from deepvision.adapters.torch_adapter import to_numpy
    from deepvision.backend import require_pytorch

    torch = require_pytorch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise HuggingFaceFormatError(f"{path} does not load with torch.load(weights_only=True) "
                                     f"({type(err).__name__}): only plain tensor state_dicts are read.") from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise HuggingFaceFormatError(f"{path} does not hold a state_dict of tensors.")
    return {re.sub(r"^module\.", "", k): to_numpy(v) for k, v in obj.items()}


def _read_config(folder: Path) -> dict[str, Any]:
    candidate = folder / "config.json"
    if not candidate.is_file():
        return {}
    try:
        data = json.loads(candidate.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HuggingFaceFormatError(f"{candidate} is not valid JSON ({err}).") from err
    if not isinstance(data, dict) or data.get("model_type", "segformer") != "segformer":
        raise HuggingFaceFormatError(f"{candidate} is not a SegFormer config (model_type "
                                     f"{data.get('model_type') if isinstance(data, dict) else None!r}).")
    return data


def _same_everywhere(values: Any, what: str) -> int:
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if len(set(values)) != 1:
        raise HuggingFaceFormatError(f"{what} differ between stages ({values}); deepvision's MiT uses one value.")
    return int(values[0])


def infer_config(shapes: Mapping[str, tuple[int, ...]], hf_config: Mapping[str, Any] | None = None,
                 architecture: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(transformers class, backend-neutral deepvision config)`` of a SegFormer state_dict (hub names).

    Widths, depths, reductions, patch sizes, MLP ratio, decoder width and classes come from the
    tensors; heads and strides (which the tensors cannot tell) and dropout rates from ``hf_config``
    (``config.json``), else from ``architecture``'s fixed arguments, else MiT's (1, 2, 5, 8) / (4, 2, 2, 2).
    """
    from deepvision.models.segmentation.segformer import MIT_DEFAULT_CONFIG, SEGFORMER_DEFAULT_CONFIG

    names = set(shapes)
    kind = _kind_of(names)
    prefix = "" if kind == ENCODER else "segformer."
    hf = dict(hf_config or {})
    dims, patch_sizes, depths, srs = [], [], [], []
    i = 0
    while f"{prefix}encoder.patch_embeddings.{i}.proj.weight" in names:
        width, channels, kh, kw = shapes[f"{prefix}encoder.patch_embeddings.{i}.proj.weight"]
        if kh != kw:
            raise HuggingFaceFormatError(f"stage {i}: non-square patch kernel {kh}x{kw} is not supported")
        if i == 0:
            in_channels = int(channels)
        dims.append(int(width))
        patch_sizes.append(int(kh))
        depth = 0
        while f"{prefix}encoder.block.{i}.{depth}.layer_norm_1.weight" in names:
            depth += 1
        depths.append(depth)
        sr = shapes.get(f"{prefix}encoder.block.{i}.0.attention.self.sr.weight")
        srs.append(int(sr[-1]) if sr else 1)
        i += 1
    if not dims:
        raise HuggingFaceFormatError(f"no {prefix}encoder.patch_embeddings.0.proj.weight: not a SegFormer encoder")
    mlp_ratios = [shapes[f"{prefix}encoder.block.{s}.0.mlp.dense1.weight"][0] // dims[s] for s in range(len(dims))]
    fixed: dict[str, Any] = {}
    if architecture is not None:
        from deepvision.registry import get_architecture

        fixed = dict(get_architecture(architecture).fixed)
    defaults = SEGFORMER_DEFAULT_CONFIG if kind == SEGMENTATION else MIT_DEFAULT_CONFIG
    heads = hf.get("num_attention_heads") or fixed.get("num_heads") or defaults["num_heads"]
    strides = hf.get("strides") or fixed.get("strides") or defaults["strides"]
    config: dict[str, Any] = {
        **defaults,
        "input_shape": [None, None, in_channels],
        "embed_dims": dims,
        "depths": depths,
        "num_heads": [int(h) for h in heads],
        "sr_ratios": srs,
        "patch_sizes": patch_sizes,
        "strides": [int(s) for s in strides],
        "mlp_ratio": _same_everywhere(hf.get("mlp_ratios") or mlp_ratios, "mlp_ratios"),
        "dropout": float(hf.get("hidden_dropout_prob", 0.0)),
        "attention_dropout": float(hf.get("attention_probs_dropout_prob", 0.0)),
        "drop_path_rate": float(hf.get("drop_path_rate", 0.0)),
    }
    if hf.get("hidden_act", "gelu") != "gelu":
        raise HuggingFaceFormatError(f"hidden_act {hf['hidden_act']!r}: deepvision's MiT uses exact GELU")
    if kind == SEGMENTATION:
        config["include_top"] = True
        config["classes"] = int(shapes["decode_head.classifier.weight"][0])
        config["decoder_dim"] = int(shapes["decode_head.linear_fuse.weight"][0])
        config["head_dropout"] = float(hf.get("classifier_dropout_prob", 0.1))
    elif kind == CLASSIFICATION:
        config["include_top"] = True
        config["classes"] = int(shapes["classifier.weight"][0])
    else:
        config["include_top"] = False
    if "num_labels" in hf and kind != ENCODER and int(hf["num_labels"]) != config["classes"]:
        raise HuggingFaceFormatError(f"config.json says num_labels={hf['num_labels']} but the classifier has "
                                     f"{config['classes']} outputs")
    return kind, config


def architecture_for(config: Mapping[str, Any], kind: str) -> str:
    """The registered SegFormer/MiT variant whose fixed arguments match ``config``, else the generic one."""
    from deepvision.registry import get_architecture, list_architectures

    family = "SegFormer" if kind == SEGMENTATION else "MiT"
    for name in list_architectures(f"{family}B*", kind="model"):
        fixed = get_architecture(name).fixed
        if all(list(config.get(k)) == list(v) if isinstance(v, (list, tuple)) else config.get(k) == v
               for k, v in fixed.items()):
            defaults = {"num_heads": [1, 2, 5, 8], "sr_ratios": [8, 4, 2, 1], "patch_sizes": [7, 3, 3, 3],
                        "strides": [4, 2, 2, 2]}
            if all(list(config[k]) == v for k, v in defaults.items()) and config["mlp_ratio"] == 4:
                return name
    return family


def _id2label(hf: Mapping[str, Any]) -> dict[str, str] | None:
    labels = hf.get("id2label")
    if not isinstance(labels, Mapping):
        return None
    return {str(int(k)): str(v) for k, v in sorted(labels.items(), key=lambda kv: int(kv[0]))}


def _metadata(architecture: str, config: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    from deepvision import portable
    from deepvision.registry import get_architecture

    arch = get_architecture(architecture)
    preprocessing = dict(arch.preprocessing)
    builder = getattr(portable, "checkpoint_metadata", None)
    if builder is not None:
        return builder(arch, config=dict(config), source_backend="huggingface", preprocessing=preprocessing,
                       extra=dict(extra))
    # Until the shared builder lands: the same fields portable_metadata writes.
    from deepvision import __version__

    return {"architecture": arch.name, "schema": arch.schema, "config": dict(config),
            "source_backend": "huggingface", "library_version": __version__,
            "framework_versions": {"numpy": np.__version__}, "preprocessing": preprocessing, **extra}


# ----------------------------------------------------------------------------------------------- import


@dataclass
class ImportedHuggingFace:
    """A transformers SegFormer in canonical form (what :func:`import_huggingface` returns without ``dst``).

    Attributes:
        tensors: canonical name -> array in canonical layout, in module order.
        architecture: registered deepvision name (``"SegFormerB0"``, ``"MiTB2"``, or the generic one).
        config: backend-neutral constructor config.
        id2label: class index (as a string) -> label, from ``config.json``, or ``None``.
        metadata: the full ``__metadata__`` a canonical checkpoint of it carries.
    """

    tensors: dict[str, np.ndarray]
    architecture: str
    config: dict[str, Any]
    id2label: dict[str, str] | None
    metadata: dict[str, Any]

    def save(self, dst: str | os.PathLike) -> Path:
        """Write the canonical checkpoint ``dst`` (atomically)."""
        interchange.write_checkpoint(dst, list(self.tensors.items()), self.metadata)
        return Path(dst)

    def to_model(self, backend: str, **config_overrides: Any) -> Any:
        """A deepvision model of ``backend`` with these weights (``config_overrides`` channels-last)."""
        from deepvision.portable import load_portable

        with tempfile.TemporaryDirectory(prefix="deepvision-hf-") as tmp:
            path = self.save(Path(tmp) / "canonical.safetensors")
            return load_portable(path, backend, config_overrides=config_overrides or None)


def import_huggingface(
    src: str | os.PathLike,
    dst: str | os.PathLike | None = None,
    *,
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path | ImportedHuggingFace:
    """Import a transformers SegFormer checkpoint as a canonical checkpoint.

    Args:
        src: a transformers model folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``),
            or one weight file (``config.json`` beside it is read when present). Hub names and
            transformers 5 names are both accepted.
        dst: the canonical ``.safetensors`` to write; ``None`` returns the tensors in memory.
        architecture: a registered ``SegFormerB*`` / ``MiTB*`` whose heads and strides to assume when no
            ``config.json`` tells them (the tensors give everything else).
        config: a transformers config dict to use instead of ``config.json``.

    Returns:
        ``Path(dst)`` when ``dst`` is given, else an :class:`ImportedHuggingFace`.

    Raises:
        HuggingFaceFormatError: not a SegFormer state_dict, or tensors left over / missing.
    """
    src = Path(src)
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist.")
    weights = _weights_in(src) if src.is_dir() else src
    hf = dict(config) if config is not None else _read_config(weights.parent)
    with _open_source(weights) as source:
        kind, model_config = infer_config(source.shapes, hf, architecture)
        rules = _rules(model_config, kind)
        expected = {r.hub for r in rules}
        unexpected = sorted(set(source.shapes) - expected)
        missing = sorted(expected - set(source.shapes) - {"decode_head.batch_norm.num_batches_tracked"})
        if unexpected or missing:
            raise HuggingFaceFormatError(f"{weights} is not a SegFormer deepvision represents: unexpected "
                                         f"{unexpected[:8]}, missing {missing[:8]}.")
        name = architecture or architecture_for(model_config, kind)
        labels = _id2label(hf)
        extra: dict[str, Any] = {"huggingface": {"architecture": kind, "file": weights.name}}
        if labels is not None:
            extra["id2label"] = labels
        metadata = _metadata(name, model_config, extra)
        mapped = [r for r in rules if r.canonical is not None]

        def fetch(rule: _Rule) -> Callable[[], np.ndarray]:
            def read() -> np.ndarray:
                array = source.get(rule.hub)
                return np.ascontiguousarray(array.transpose(rule.transpose)) if rule.transpose else np.array(array)
            return read

        def shape(rule: _Rule) -> tuple[int, ...]:
            hub = source.shapes[rule.hub]
            return tuple(hub[i] for i in rule.transpose) if rule.transpose else tuple(hub)

        order = mapped  # _rules lists them in deepvision's module order
        if dst is not None:
            entries = [interchange.TensorEntry(r.canonical, shape(r), source.dtypes[r.hub], fetch(r)) for r in order]
            interchange.write_checkpoint(dst, entries, metadata)
            logger.info("deepvision: imported transformers %s as %s (%d tensors) into %s", kind, name,
                        len(entries), dst)
            return Path(dst)
        tensors = {r.canonical: fetch(r)() for r in order}
    return ImportedHuggingFace(tensors, name, model_config, labels, metadata)


def load_huggingface(src: str | os.PathLike, backend: str, *, architecture: str | None = None,
                     **config_overrides: Any) -> Any:
    """A deepvision SegFormer/MiT of ``backend`` from a transformers checkpoint (through the canonical format)."""
    imported = import_huggingface(src, architecture=architecture)
    return imported.to_model(backend, **config_overrides)


# ----------------------------------------------------------------------------------------------- export


def _export_kind(config: Mapping[str, Any], architecture: str) -> str:
    from deepvision.registry import get_architecture

    if get_architecture(architecture).family != "segformer":
        raise HuggingFaceFormatError(f"{architecture} is not a SegFormer/MiT: only those export to transformers.")
    if config.get("features_only"):
        raise HuggingFaceFormatError("a features_only model has no transformers counterpart: export the full model.")
    if architecture.startswith("SegFormer"):
        if not config.get("include_top", True):
            return ENCODER
        return SEGMENTATION
    return CLASSIFICATION if config.get("include_top") else ENCODER


def transformers_config(config: Mapping[str, Any], architecture: str,
                        id2label: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``config.json`` transformers' ``SegformerConfig`` reads for a deepvision SegFormer/MiT ``config``."""
    kind = _export_kind(config, architecture)
    stages = len(config["depths"])
    out: dict[str, Any] = {
        "architectures": [kind],
        "model_type": "segformer",
        "num_channels": int((config.get("input_shape") or [None, None, 3])[-1]),
        "num_encoder_blocks": stages,
        "depths": [int(d) for d in config["depths"]],
        "sr_ratios": [int(s) for s in config["sr_ratios"]],
        "hidden_sizes": [int(d) for d in config["embed_dims"]],
        "patch_sizes": [int(p) for p in config["patch_sizes"]],
        "strides": [int(s) for s in config["strides"]],
        "num_attention_heads": [int(h) for h in config["num_heads"]],
        "mlp_ratios": [int(config["mlp_ratio"])] * stages,
        "hidden_act": "gelu",
        "hidden_dropout_prob": float(config.get("dropout", 0.0)),
        "attention_probs_dropout_prob": float(config.get("attention_dropout", 0.0)),
        "classifier_dropout_prob": float(config.get("head_dropout", 0.1)),
        "drop_path_rate": float(config.get("drop_path_rate", 0.0)),
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-6,  # unused by transformers' SegFormer layers (they use LayerNorm's 1e-5)
        "decoder_hidden_size": int(config.get("decoder_dim", 256)),
        "semantic_loss_ignore_index": 255,
        "reshape_last_stage": True,
        "torch_dtype": "float32",
    }
    if float(config.get("layer_norm_epsilon", 1e-5)) != 1e-5:
        logger.warning("deepvision: transformers' SegFormer uses LayerNorm eps 1e-5; this model uses %s",
                       config["layer_norm_epsilon"])
    if kind != ENCODER:
        classes = int(config["classes"])
        labels = dict(id2label) if id2label else {str(i): f"LABEL_{i}" for i in range(classes)}
        out["id2label"] = {str(k): v for k, v in labels.items()}
        out["label2id"] = {v: int(k) for k, v in labels.items()}
        out["num_labels"] = classes
    return out


def _read_model(src: Any) -> tuple[dict, Callable[[str], np.ndarray], dict, str, dict | None, Callable | None]:
    if isinstance(src, (str, os.PathLike)):
        ckpt = interchange.open_checkpoint(src)
        return (dict(ckpt.config or {}), ckpt.get, {n: tuple(ckpt.shape(n)) for n in ckpt.names},
                ckpt.architecture, ckpt.metadata.get("id2label"), ckpt.close)
    from deepvision.adapters import slots_by_name
    from deepvision.registry import architecture_of, config_of

    slots = slots_by_name(src)
    return (config_of(src), lambda n: slots[n].read(), {n: s.shape for n, s in slots.items()},
            architecture_of(src).name, None, None)


def export_huggingface(src: Any, dst: str | os.PathLike, *, id2label: Mapping[str, str] | None = None,
                       naming: str = "hub") -> Path:
    """Write a deepvision SegFormer/MiT for transformers.

    Args:
        src: a canonical checkpoint (path) of a SegFormer-family architecture, or such a model of either backend.
        dst: a folder (``config.json`` + ``model.safetensors``, for ``from_pretrained``), or a file:
            ``.safetensors`` or ``.bin``/``.pt``/``.pth`` (``torch.save`` of the state_dict, needs PyTorch)
            for ``load_state_dict(strict=True)``. Hub names. Written atomically.
        id2label: class names for ``config.json``; default the checkpoint's ``id2label`` metadata, else
            ``LABEL_i``.
        naming: ``"hub"`` (published checkpoints, transformers 4's modules; both generations'
            ``from_pretrained`` read it) or ``"transformers5"`` (the names a transformers 5 module's
            ``load_state_dict(strict=True)`` expects). Folders are always written with hub names.

    Returns:
        ``Path(dst)``.
    """
    from deepvision.io_utils import atomic_output
    from deepvision.registry import get_architecture

    if naming not in NAMINGS:
        raise HuggingFaceFormatError(f"naming must be one of {NAMINGS}, got {naming!r}")
    dst = Path(dst)
    suffix = dst.suffix.lower()
    as_folder = suffix not in (".safetensors", ".bin", ".pt", ".pth")
    rename = transformers5_name if naming == "transformers5" and not as_folder else (lambda key: key)
    config, get, shapes, architecture, stored_labels, close = _read_model(src)
    try:
        if architecture is None:
            raise HuggingFaceFormatError(f"{src} names no architecture.")
        config = {**get_architecture(architecture).fixed, **config}
        spec = state_dict_spec(shapes, config, architecture)
        rules = {r.hub: r for r in _rules(config, _export_kind(config, architecture))}

        def hub_array(key: str) -> np.ndarray:
            rule = rules[key]
            if rule.canonical is None:
                return np.zeros((), dtype=np.int64)  # num_batches_tracked
            array = get(rule.canonical)
            return np.ascontiguousarray(array.transpose(_inverse(rule.transpose)) if rule.transpose else array)

        if as_folder:
            dst.mkdir(parents=True, exist_ok=True)
            hf_config = transformers_config(config, architecture, id2label or stored_labels)
            _save_safetensors({key: hub_array(key) for key in spec}, dst / "model.safetensors", architecture,
                              atomic_output)
            with atomic_output(dst / "config.json") as tmp:
                tmp.write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
        elif suffix == ".safetensors":
            _save_safetensors({rename(key): hub_array(key) for key in spec}, dst, architecture, atomic_output)
        else:
            from deepvision.adapters.torch_adapter import from_numpy
            from deepvision.backend import require_pytorch

            torch = require_pytorch()
            with atomic_output(dst) as tmp:
                torch.save({rename(key): from_numpy(hub_array(key)).clone() for key in spec}, tmp)
    finally:
        if close is not None:
            close()
    logger.info("deepvision: exported %s to %s for transformers", architecture, dst)
    return dst


def _save_safetensors(tensors: dict[str, np.ndarray], path: Path, architecture: str, atomic_output: Any) -> None:
    from safetensors.numpy import save_file

    from deepvision import __version__

    with atomic_output(path) as tmp:
        # transformers' from_pretrained requires format "pt" in the metadata.
        save_file(tensors, str(tmp), metadata={"format": "pt", "exported_by": f"deepvision-toolkit {__version__}",
                                               "deepvision_architecture": architecture})
