"""timm Vision Transformers <-> canonical checkpoints, both directions.

``import_timm`` reads a timm ``VisionTransformer`` state_dict (``.safetensors``, or ``.pth``/``.bin``
read with ``torch.load(weights_only=True)``), infers the architecture from the tensors, and writes a
canonical checkpoint that ``load_portable`` turns into a deepvision ViT in either backend.
``export_timm`` writes a deepvision ViT checkpoint as a state_dict that
``timm.create_model(name, **kwargs).load_state_dict(sd, strict=True)`` accepts (the name and kwargs
are recorded in the ``.safetensors`` metadata as ``timm_architecture`` / ``timm_kwargs``, and
returned by :func:`timm_model_args`). timm itself is never imported.

The mapping (timm name -> canonical name, layout)::

    cls_token                    patch_embed.class_token              (1, 1, D)      as is
    pos_embed                    patch_embed.position_embedding       (1, 1+N, D)    as is
    patch_embed.proj.weight      patch_embed.projection.kernel        (D, C, p, p) -> (p, p, C, D)
    patch_embed.proj.bias        patch_embed.projection.bias
    blocks.i.norm{1,2}.weight    blocks.i.norm{1,2}.gamma             (and .bias -> .beta)
    blocks.i.attn.qkv.weight     blocks.i.attn.qkv.kernel             (3D, D) -> (D, 3D)
    blocks.i.attn.proj.weight    blocks.i.attn.proj.kernel            (D, D) transposed
    blocks.i.mlp.fc{1,2}.weight  blocks.i.mlp.fc{1,2}.kernel          (out, in) -> (in, out)
    norm.weight | fc_norm.weight norm.gamma                           (fc_norm: avg/max pooling)
    head.weight                  head.kernel                          (classes, D) -> (D, classes)
    (every .bias -> .bias)

timm's fused qkv layout (q, k, v along the output axis, heads contiguous) is the canonical one, so
only the transpose is needed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import interchange

logger = logging.getLogger("deepvision")

# timm ViT sizes: the prefix of timm's model names -> heads; and width -> heads when no name is known.
TIMM_SIZE_HEADS = {"vit_tiny": 3, "vit_small": 6, "vit_base": 12, "vit_large": 16, "vit_huge": 16, "vit_giant": 16}
WIDTH_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
# timm registers these stock names with 224x224 input and 1000 classes (vit_large_patch32_224: 0 by default).
TIMM_STOCK = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_small_patch32_224", "vit_base_patch16_224",
              "vit_base_patch32_224", "vit_large_patch16_224", "vit_large_patch32_224")


class TimmFormatError(ValueError):
    """A file is not a timm ViT state_dict that deepvision can represent."""


# ----------------------------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class _Rule:
    timm: str
    canonical: str
    transpose: tuple[int, ...] | None = None  # canonical = timm.transpose(perm)


_CONV = (2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
_DENSE = (1, 0)  # (out, in) -> (in, out)


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(perm.index(i) for i in range(len(perm)))


def _rules(num_layers: int, pool_mode: str | None, include_top: bool) -> list[_Rule]:
    """Every tensor of a timm ViT with its canonical name, in timm's state_dict order."""
    rules = [
        _Rule("cls_token", "patch_embed.class_token"),
        _Rule("pos_embed", "patch_embed.position_embedding"),
        _Rule("patch_embed.proj.weight", "patch_embed.projection.kernel", _CONV),
        _Rule("patch_embed.proj.bias", "patch_embed.projection.bias"),
    ]
    for i in range(num_layers):
        t, c = f"blocks.{i}.", f"blocks.{i}."
        rules += [
            _Rule(t + "norm1.weight", c + "norm1.gamma"),
            _Rule(t + "norm1.bias", c + "norm1.beta"),
            _Rule(t + "attn.qkv.weight", c + "attn.qkv.kernel", _DENSE),
            _Rule(t + "attn.qkv.bias", c + "attn.qkv.bias"),
            _Rule(t + "attn.proj.weight", c + "attn.proj.kernel", _DENSE),
            _Rule(t + "attn.proj.bias", c + "attn.proj.bias"),
            _Rule(t + "norm2.weight", c + "norm2.gamma"),
            _Rule(t + "norm2.bias", c + "norm2.beta"),
            _Rule(t + "mlp.fc1.weight", c + "mlp.fc1.kernel", _DENSE),
            _Rule(t + "mlp.fc1.bias", c + "mlp.fc1.bias"),
            _Rule(t + "mlp.fc2.weight", c + "mlp.fc2.kernel", _DENSE),
            _Rule(t + "mlp.fc2.bias", c + "mlp.fc2.bias"),
        ]
    # timm normalises all tokens ("norm") for token pooling, the pooled vector ("fc_norm") for avg/max.
    norm = "fc_norm" if pool_mode in ("avg", "max") else "norm"
    rules += [_Rule(f"{norm}.weight", "norm.gamma"), _Rule(f"{norm}.bias", "norm.beta")]
    if include_top:
        rules += [_Rule("head.weight", "head.kernel", _DENSE), _Rule("head.bias", "head.bias")]
    return rules


def _pool_mode(config: Mapping[str, Any]) -> str | None:
    from deepvision.models.classification.vit import resolve_pooling

    return resolve_pooling(bool(config.get("include_top", True)), config.get("pooling"))


def _config_rules(config: Mapping[str, Any]) -> list[_Rule]:
    include_top = bool(config.get("include_top", True)) and not config.get("features_only", False)
    return _rules(int(config["num_layers"]), _pool_mode(config), include_top)


def _timm_shape(shape: tuple[int, ...], rule: _Rule) -> tuple[int, ...]:
    if rule.transpose is None:
        return tuple(shape)
    inverse = _inverse(rule.transpose)
    return tuple(shape[i] for i in inverse)


def timm_state_dict_spec(canonical_shapes: Mapping[str, tuple[int, ...]], config: Mapping[str, Any]) -> dict[str, tuple]:
    """timm's state_dict names and shapes for a deepvision ViT given by its canonical names/shapes and config.

    Cheap (no tensor data): what :func:`export_timm` would write, e.g. to check it against timm's own
    key list. Raises :class:`TimmFormatError` if a canonical tensor has no timm counterpart.
    """
    rules = _config_rules(config)
    by_canonical = {r.canonical: r for r in rules}
    extra = sorted(set(canonical_shapes) - set(by_canonical))
    missing = sorted(set(by_canonical) - set(canonical_shapes))
    if extra or missing:
        raise TimmFormatError(f"not a timm-compatible ViT: no timm name for {extra[:5]}, missing {missing[:5]}")
    return {r.timm: _timm_shape(tuple(canonical_shapes[r.canonical]), r) for r in rules}


# ----------------------------------------------------------------------------------------------- reading


@dataclass
class _Source:
    """A timm state_dict opened for reading: names, shapes, lazy arrays and the file's metadata."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    get: Callable[[str], np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)


@contextmanager
def _open_source(src: str | os.PathLike) -> Iterator[_Source]:
    """The timm state_dict in ``src``, read by the one reader of PyTorch-style files."""
    from deepvision.io_utils import read_weight_file

    weights = read_weight_file(src, error=TimmFormatError)
    state = weights.tensors
    # A .safetensors file's metadata is strings (timm_kwargs, timm_architecture, ...); a torch file's
    # non-tensor entries are not timm's.
    metadata = {k: v for k, v in weights.metadata.items() if isinstance(v, str)}
    yield _Source(
        shapes={n: tuple(v.shape) for n, v in state.items()},
        dtypes={n: str(v.dtype) for n, v in state.items()},
        get=state.__getitem__,
        metadata=metadata,
    )


def _json_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return None


def _sidecar_config(src: Path) -> dict[str, Any]:
    """The Hugging Face hub ``config.json`` timm writes next to its weights, if present."""
    candidate = src.parent / "config.json"
    if not candidate.is_file():
        return {}
    try:
        data = json.loads(candidate.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) and "architecture" in data else {}


# ----------------------------------------------------------------------------------------------- inference


def _default_heads(width: int, timm_architecture: str | None) -> int | None:
    if timm_architecture:
        for prefix, heads in TIMM_SIZE_HEADS.items():
            if timm_architecture.startswith(prefix + "_"):
                return heads
    return WIDTH_HEADS.get(width)


def infer_config(
    shapes: Mapping[str, tuple[int, ...]],
    *,
    num_heads: int | None = None,
    layer_norm_epsilon: float | None = None,
    timm_architecture: str | None = None,
    timm_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The backend-neutral deepvision ViT config of a timm state_dict, from its tensor shapes.

    Patch size, channels, width, depth and MLP width come from the tensors; the image size from
    ``timm_kwargs["img_size"]`` or else the (square) position grid; the heads from ``num_heads``,
    else ``timm_kwargs``, else timm's model name, else the width (192: 3, 384: 6, 768: 12, 1024: 16).
    """
    timm_kwargs = dict(timm_kwargs or {})
    for required in ("patch_embed.proj.weight", "pos_embed", "cls_token"):
        if required not in shapes:
            hint = " (a ViT without class token or position embedding is not supported)" if required != "patch_embed.proj.weight" else ""
            raise TimmFormatError(f"not a timm ViT state_dict: no {required!r}{hint}")
    width, channels, patch_h, patch_w = shapes["patch_embed.proj.weight"]
    if patch_h != patch_w:
        raise TimmFormatError(f"non-square patches ({patch_h}x{patch_w}) are not supported")
    depth = 0
    while f"blocks.{depth}.attn.qkv.weight" in shapes:
        depth += 1
    if depth == 0:
        raise TimmFormatError("not a timm ViT state_dict: no blocks.0.attn.qkv.weight")
    mlp_dim = shapes["blocks.0.mlp.fc1.weight"][0]
    positions = shapes["pos_embed"][1] - 1
    img_size = timm_kwargs.get("img_size")
    if img_size is not None:
        height, width_px = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    else:
        side = math.isqrt(positions)
        if side * side != positions:
            raise TimmFormatError(f"{positions} positions are not a square grid: the file must record img_size")
        height = width_px = side * patch_h
    if (height // patch_h) * (width_px // patch_h) != positions:
        raise TimmFormatError(f"img_size {height}x{width_px} does not match the {positions} positions of pos_embed")
    heads = num_heads or timm_kwargs.get("num_heads") or _default_heads(width, timm_architecture)
    if not heads:
        raise TimmFormatError(f"cannot tell the number of attention heads of a width-{width} ViT: pass num_heads=")
    if width % heads:
        raise TimmFormatError(f"width {width} is not divisible by num_heads={heads}")
    include_top = "head.weight" in shapes
    if "fc_norm.weight" in shapes and "norm.weight" not in shapes:
        pooling = "max" if timm_kwargs.get("global_pool") == "max" else "avg"
    elif "norm.weight" in shapes:
        pooling = None if include_top else "token"
    else:
        raise TimmFormatError("no final norm (norm.weight or fc_norm.weight) in the state_dict")
    from deepvision.models.classification.vit import DEFAULT_CONFIG

    act = timm_kwargs.get("act_layer")
    return {
        **DEFAULT_CONFIG,
        "include_top": include_top,
        "classes": int(shapes["head.weight"][0]) if include_top else int(DEFAULT_CONFIG["classes"]),
        "input_shape": [int(height), int(width_px), int(channels)],
        "pooling": pooling,
        "patch_size": int(patch_h),
        "project_dim": int(width),
        "num_layers": depth,
        "num_heads": int(heads),
        "mlp_dim": int(mlp_dim),
        "layer_norm_epsilon": float(layer_norm_epsilon if layer_norm_epsilon is not None else 1e-6),
        "activation": "gelu_tanh" if act in ("gelu_tanh", "gelu_pytorch_tanh") else "gelu",
    }


def _architecture_for(config: Mapping[str, Any]) -> str:
    """The registered ViT variant whose fixed arguments match ``config``, else the generic ``ViT``."""
    from deepvision.registry import get_architecture, list_architectures

    for name in list_architectures("ViT*", kind="model"):
        fixed = get_architecture(name).fixed
        if fixed and all(config.get(k) == v for k, v in fixed.items()):
            return name
    return "ViT"


def _preprocessing(config: Mapping[str, Any], pretrained_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """deepvision's preprocessing facts from timm's ``pretrained_cfg`` (or the ViT defaults)."""
    from deepvision.models.classification.vit import PREPROCESSING

    out = dict(PREPROCESSING)
    cfg = dict(pretrained_cfg or {})
    for key in ("mean", "std", "interpolation", "crop_pct", "crop_mode"):
        if cfg.get(key) is not None:
            out[key] = list(cfg[key]) if isinstance(cfg[key], (list, tuple)) else cfg[key]
    if cfg.get("input_size"):
        c, h, w = cfg["input_size"]  # timm: (C, H, W)
        out["input_size"] = [int(h), int(w), int(c)]
    else:
        out["input_size"] = list(config["input_shape"])
    out["value_range"] = [0, 1]  # timm normalises images scaled to [0, 1]
    for key in ("hf_hub_id", "tag", "license"):
        if cfg.get(key):
            out[f"timm_{key}"] = cfg[key]
    return out


# ----------------------------------------------------------------------------------------------- import


@dataclass
class ImportedTimm:
    """A timm ViT in canonical form (what :func:`import_timm` returns without ``dst``).

    Attributes:
        tensors: canonical name -> array in canonical layout, in module order.
        architecture: registered deepvision name (``"ViTB16"``, or ``"ViT"`` for other configs).
        config: backend-neutral constructor config.
        preprocessing: input size (channels-last), mean, std, value range, interpolation, crop.
        metadata: the full ``__metadata__`` a canonical checkpoint of it carries.
    """

    tensors: dict[str, np.ndarray]
    architecture: str
    config: dict[str, Any]
    preprocessing: dict[str, Any]
    metadata: dict[str, Any]

    def save(self, dst: str | os.PathLike) -> Path:
        """Write the canonical checkpoint ``dst`` (atomically)."""
        interchange.write_checkpoint(dst, list(self.tensors.items()), self.metadata)
        return Path(dst)

    def to_model(self, backend: str, **config_overrides: Any) -> Any:
        """A deepvision ViT of ``backend`` with these weights; ``config_overrides`` (e.g.
        ``input_shape=[160, 160, 3]``, channels-last) change the build, resampling the position embedding."""
        from deepvision.portable import load_portable

        with tempfile.TemporaryDirectory(prefix="deepvision-timm-") as tmp:
            path = self.save(Path(tmp) / "canonical.safetensors")
            return load_portable(path, backend, config_overrides=config_overrides or None)


def import_timm(
    src: str | os.PathLike,
    dst: str | os.PathLike | None = None,
    *,
    num_heads: int | None = None,
    layer_norm_epsilon: float | None = None,
    pretrained_cfg: Mapping[str, Any] | None = None,
    timm_architecture: str | None = None,
) -> Path | ImportedTimm:
    """Import a timm ViT state_dict as a canonical checkpoint.

    Args:
        src: ``.safetensors``, or ``.pth``/``.pt``/``.bin``/``.ckpt`` (``torch.load(weights_only=True)``;
            ``state_dict``/``model``/``state_dict_ema`` wrappers and ``module.`` prefixes are accepted),
            read by :func:`deepvision.io_utils.read_weight_file`.
        dst: the canonical ``.safetensors`` to write; ``None`` returns the tensors in memory instead.
        num_heads: attention heads, when neither the file's metadata (``timm_kwargs``) nor timm's model
            name (``timm_architecture`` metadata or ``config.json`` beside ``src``) tells them; default by
            width 192: 3, 384: 6, 768: 12, 1024: 16.
        layer_norm_epsilon: timm's ViTs use 1e-6 (the default); the tensors cannot tell.
        pretrained_cfg: timm's ``pretrained_cfg`` (``model.pretrained_cfg``, or the manifest / hub
            ``config.json`` entry): mean, std, input size, crop, interpolation are carried into the
            checkpoint's ``preprocessing``. Read from ``config.json`` beside ``src`` when present;
            otherwise the augreg ViT defaults (mean = std = 0.5 on [0, 1] inputs, bicubic, crop 0.9).
        timm_architecture: timm's model name, if the file does not record it.

    Returns:
        ``Path(dst)`` when ``dst`` is given, else an :class:`ImportedTimm`.

    Raises:
        TimmFormatError: the file is not a plain timm ViT (e.g. layer scale, register tokens,
            qk-norm, no class token): every tensor must map, none may be left over.
    """
    src = Path(src)
    sidecar = _sidecar_config(src)
    with _open_source(src) as source:
        from deepvision.importers import timm_cnn

        family = timm_cnn.family_for_shapes(source.shapes)
        if family is not None:  # convnext_* / tf_efficientnetv2_*: the maps in timm_<family>.py
            return timm_cnn.import_family(src, source, family, dst, timm_architecture=timm_architecture,
                                          pretrained_cfg=pretrained_cfg or sidecar.get("pretrained_cfg"))
        meta = source.metadata
        timm_kwargs = _json_value(meta.get("timm_kwargs")) or dict(sidecar.get("model_args") or {})
        arch_name = timm_architecture or meta.get("timm_architecture") or sidecar.get("architecture")
        config = infer_config(source.shapes, num_heads=num_heads, layer_norm_epsilon=layer_norm_epsilon,
                              timm_architecture=arch_name, timm_kwargs=timm_kwargs)
        rules = _config_rules(config)
        expected = {r.timm for r in rules}
        unexpected = sorted(set(source.shapes) - expected)
        missing = sorted(expected - set(source.shapes))
        if unexpected or missing:
            raise TimmFormatError(
                f"{src} is not a plain timm ViT that deepvision represents: unexpected {unexpected[:8]}, "
                f"missing {missing[:8]} (layer scale, register tokens, qk-norm and similar options are not supported)."
            )
        architecture = _architecture_for(config)
        preprocessing = _preprocessing(config, pretrained_cfg or sidecar.get("pretrained_cfg"))
        from deepvision.portable import checkpoint_metadata

        metadata = checkpoint_metadata(
            architecture, config=config, source_backend="timm", preprocessing=preprocessing,
            versions={"timm": meta.get("timm_version"), "torch": meta.get("torch_version")},
            extra={"timm": {"architecture": arch_name, "kwargs": timm_kwargs, "file": src.name}},
        )

        def fetch(rule: _Rule) -> Callable[[], np.ndarray]:
            def read() -> np.ndarray:
                array = source.get(rule.timm)
                return np.ascontiguousarray(array.transpose(rule.transpose)) if rule.transpose else np.array(array)
            return read

        shapes = {r.canonical: tuple(source.shapes[r.timm][i] for i in (r.transpose or range(len(source.shapes[r.timm]))))
                  for r in rules}
        canonical_order = _canonical_order(config)
        by_canonical = {r.canonical: r for r in rules}
        if dst is not None:
            entries = [interchange.TensorEntry(name, shapes[name], source.dtypes[by_canonical[name].timm],
                                               fetch(by_canonical[name])) for name in canonical_order]
            interchange.write_checkpoint(dst, entries, metadata)
            logger.info("deepvision: imported timm %s as %s (%d tensors) into %s", arch_name or "ViT",
                        architecture, len(entries), dst)
            return Path(dst)
        tensors = {name: fetch(by_canonical[name])() for name in canonical_order}
    return ImportedTimm(tensors, architecture, config, preprocessing, metadata)


def _canonical_order(config: Mapping[str, Any]) -> list[str]:
    """Canonical names in deepvision's module order (patch_embed.projection, class_token, position_embedding, ...)."""
    rules = _config_rules(config)
    names = [r.canonical for r in rules]
    head = names[:4]
    # PatchingAndEmbedding creates projection, class_token, position_embedding, in that order.
    ordered = [head[2], head[3], head[0], head[1]]
    return ordered + names[4:]


def load_timm(src: str | os.PathLike, backend: str, *, num_heads: int | None = None,
              pretrained_cfg: Mapping[str, Any] | None = None, **config_overrides: Any) -> Any:
    """A deepvision ViT of ``backend`` from a timm state_dict (through the canonical format).

    ``config_overrides`` (channels-last ``input_shape=[160, 160, 3]``, ``pooling``, ...) change the
    model that is built; another image size resamples the position embedding as timm does.
    """
    imported = import_timm(src, num_heads=num_heads, pretrained_cfg=pretrained_cfg)
    return imported.to_model(backend, **config_overrides)


# ----------------------------------------------------------------------------------------------- export


def timm_model_args(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` such that ``timm.create_model(name, **kwargs)`` has the tensors of a ViT ``config``.

    Stock sizes map to timm's names (``ViTB16`` -> ``vit_base_patch16_224``; ``ViTTiny32`` ->
    ``vit_tiny_patch16_224`` with ``patch_size=32``, which timm does not register); other configs get
    the nearest name plus the differing ``embed_dim``/``depth``/``num_heads``/``mlp_ratio``/``patch_size``.
    ``num_classes`` is always given (timm's ``vit_large_patch32_224`` defaults to 0).
    """
    from deepvision.models.classification.vit import SIZES, TIMM_SIZE_NAMES

    dim, depth, heads, mlp = (int(config[k]) for k in ("project_dim", "num_layers", "num_heads", "mlp_dim"))
    patch = int(config["patch_size"])
    size = next((s for s, d in SIZES.items() if d["project_dim"] == dim), "B")
    base = SIZES[size]
    base_patch = patch if f"vit_{TIMM_SIZE_NAMES[size]}_patch{patch}_224" in TIMM_STOCK else 16
    name = f"vit_{TIMM_SIZE_NAMES[size]}_patch{base_patch}_224"
    kwargs: dict[str, Any] = {}
    if patch != base_patch:
        kwargs["patch_size"] = patch
    if dim != base["project_dim"]:
        kwargs["embed_dim"] = dim
    if depth != base["num_layers"]:
        kwargs["depth"] = depth
    if heads != base["num_heads"]:
        kwargs["num_heads"] = heads
    if mlp != base["mlp_dim"] or dim != base["project_dim"]:
        if int(dim * (mlp / dim)) != mlp:
            raise TimmFormatError(f"timm cannot express mlp_dim={mlp} for width {dim} as an mlp_ratio")
        kwargs["mlp_ratio"] = mlp / dim
    shape = config.get("input_shape") or [224, 224, 3]
    if (shape[0], shape[1]) != (224, 224):
        kwargs["img_size"] = int(shape[0]) if shape[0] == shape[1] else [int(shape[0]), int(shape[1])]
    if int(shape[2]) != 3:
        kwargs["in_chans"] = int(shape[2])
    include_top = bool(config.get("include_top", True)) and not config.get("features_only", False)
    kwargs["num_classes"] = int(config.get("classes", 1000)) if include_top else 0
    pool_mode = _pool_mode(config)
    if pool_mode in ("avg", "max"):
        kwargs["global_pool"] = pool_mode
    if config.get("activation", "gelu") == "gelu_tanh":
        kwargs["act_layer"] = "gelu_tanh"
    elif config.get("activation", "gelu") != "gelu":
        raise TimmFormatError(f"timm's ViT has no {config['activation']!r} activation option")
    if float(config.get("layer_norm_epsilon", 1e-6)) != 1e-6:
        logger.warning("deepvision: timm's ViT uses LayerNorm eps 1e-6; this model uses %s: the exported "
                       "weights load, but timm will compute slightly different outputs", config["layer_norm_epsilon"])
    return name, kwargs


def _read_model(src: Any) -> tuple[Mapping[str, Any], Callable[[str], np.ndarray], dict[str, tuple], dict[str, str], str]:
    """(config, get(name), shapes, dtypes, architecture) of a canonical checkpoint path or a deepvision model."""
    from deepvision.adapters import slots_by_name
    from deepvision.registry import resolve

    resolved = resolve(src)
    slots = slots_by_name(src)
    return (resolved.config, lambda n: slots[n].read(), {n: s.shape for n, s in slots.items()},
            {n: s.dtype for n, s in slots.items()}, resolved.architecture.name)


def export_timm(src_ckpt: Any, dst: str | os.PathLike) -> Path:
    """Write a deepvision ViT as a timm state_dict.

    Args:
        src_ckpt: a canonical checkpoint (path) of a ViT-family architecture, or a deepvision ViT
            model of either backend.
        dst: ``.safetensors`` (with ``timm_architecture``/``timm_kwargs`` metadata) or ``.pth``/``.pt``/``.bin``
            (``torch.save`` of the state_dict; needs PyTorch). Written atomically.

    Returns:
        ``Path(dst)``. Load it with ``name, kwargs = timm_model_args(config)`` and
        ``timm.create_model(name, **kwargs).load_state_dict(state_dict, strict=True)``.
    """
    from deepvision.importers import timm_cnn
    from deepvision.io_utils import atomic_output
    from deepvision.registry import get_architecture

    if timm_cnn.handles(src_ckpt):  # ConvNeXt / EfficientNetV2: the maps in timm_<family>.py
        return timm_cnn.export_family(src_ckpt, dst)
    dst = Path(dst)
    suffix = dst.suffix.lower()
    if suffix not in (".safetensors", ".pth", ".pt", ".bin"):
        raise TimmFormatError(f"{dst}: timm state_dicts go to .safetensors, .pth, .pt or .bin files.")
    if isinstance(src_ckpt, (str, os.PathLike)):
        ckpt = interchange.open_checkpoint(src_ckpt)
        config, get, architecture = dict(ckpt.config or {}), ckpt.get, ckpt.architecture
        shapes = {n: tuple(ckpt.shape(n)) for n in ckpt.names}
        close = ckpt.close
    else:
        config, get, shapes, _, architecture = _read_model(src_ckpt)
        close = None
    try:
        if architecture is None or get_architecture(architecture).family != "vit":
            raise TimmFormatError(f"{src_ckpt} holds a {architecture}, not a ViT: only ViTs export to timm.")
        config = {**get_architecture(architecture).fixed, **config}
        spec = timm_state_dict_spec(shapes, config)
        rules = {r.timm: r for r in _config_rules(config)}
        name, kwargs = timm_model_args(config)

        def timm_array(key: str) -> np.ndarray:
            rule = rules[key]
            array = get(rule.canonical)
            return np.ascontiguousarray(array.transpose(_inverse(rule.transpose)) if rule.transpose else array)

        with atomic_output(dst) as tmp:
            if suffix == ".safetensors":
                from safetensors.numpy import save_file

                from deepvision import __version__

                save_file({key: timm_array(key) for key in spec}, str(tmp), metadata={
                    "format": "pt",
                    "timm_architecture": name,
                    "timm_kwargs": json.dumps(kwargs, sort_keys=True),
                    "exported_by": f"deepvision-toolkit {__version__}",
                    "deepvision_architecture": architecture,
                })
            else:
                from deepvision.adapters.torch_adapter import from_numpy
                from deepvision.backend import require_pytorch

                torch = require_pytorch()
                torch.save({key: from_numpy(timm_array(key)).clone() for key in spec}, tmp)
    finally:
        if close is not None:
            close()
    logger.info("deepvision: exported %s to %s for timm.create_model(%r, **%s)", architecture, dst, name, kwargs)
    return dst
