"""``deepvision.convert`` (module ``deepvision.conversion``): any weight file -> canonical checkpoint -> any file.

Formats (detected from the file name and, for ``.safetensors``, the metadata):

==================== ================================== =========================================
format               files                              notes
==================== ================================== =========================================
portable             ``.safetensors`` with our metadata the canonical checkpoint
keras                ``.weights.h5``, ``.keras``, ``.h5`` a deepvision Keras model's files
pytorch              ``.pt``, ``.pth``, ``.bin``        a deepvision PyTorch ``state_dict``
lightning            ``.ckpt``                          a Lightning checkpoint (records the model)
keras-applications   ``.h5``, ``.weights.h5``, model    keras.applications ResNetV2/EfficientNetV2
timm                 ``.safetensors``, ``.pth``, ``.bin`` a timm ViT ``state_dict``
huggingface          folder, ``.safetensors``, ``.bin``  a transformers SegFormer (folder: config.json + weights)
onnx                 ``.onnx`` (destination only)       through PyTorch, verified with onnxruntime
==================== ================================== =========================================

Files without our metadata (Keras weights, plain state_dicts) need ``architecture`` and, unless the
defaults fit, ``config``; a Lightning checkpoint of a deepvision model (``Trainer.fit``'s too) records
both. PyTorch-style files are read by :func:`deepvision.io_utils.read_weight_file`. Every conversion
goes through a canonical checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import interchange
from deepvision.io_utils import atomic_output, full_suffix

FORMATS = ("portable", "keras", "pytorch", "lightning", "keras-applications", "timm", "huggingface", "onnx")
_ALIASES = {"safetensors": "portable", "canonical": "portable", "tensorflow": "keras", "tf": "keras",
            "torch": "pytorch", "pt": "pytorch", "ckpt": "lightning", "keras_applications": "keras-applications",
            "hf": "huggingface", "transformers": "huggingface"}


class ConversionError(ValueError):
    """A conversion cannot be done as asked; the message says what to pass instead."""


def normalize_format(name: str | None) -> str | None:
    if name is None:
        return None
    name = _ALIASES.get(name.lower(), name.lower())
    if name not in FORMATS:
        raise ConversionError(f"Unknown format {name!r}. Valid: {', '.join(FORMATS)}.")
    return name


def detect_format(path: str | os.PathLike, *, destination: bool = False) -> str:
    """Guess a file's format from its name (and, for an existing ``.safetensors``, its metadata)."""
    if not destination and Path(path).is_dir() and (Path(path) / "config.json").is_file():
        return "huggingface"  # a transformers model folder
    suffix = full_suffix(path)
    if suffix == ".safetensors":
        if destination or not Path(path).exists():
            return "portable"
        meta = interchange.read_metadata(path, allow_foreign=True)
        if meta.get("format") == interchange.FORMAT_NAME:
            return "portable"
        with interchange.open_checkpoint(path, allow_foreign=True, verify=False) as ckpt:
            names = set(ckpt.names)
        if "patch_embed.proj.weight" in names:
            return "timm"
        from deepvision.importers.timm_cnn import family_for_shapes

        if family_for_shapes({n: () for n in names}) is not None:  # timm convnext_* / tf_efficientnetv2_*
            return "timm"
        from deepvision.importers.huggingface import hub_name

        if any(hub_name(n).startswith(("segformer.encoder.", "encoder.patch_embeddings.")) for n in names):
            return "huggingface"
        raise interchange.ForeignCheckpointError(
            f"{path} is a safetensors file without deepvision metadata. Import it with "
            "--from timm (timm ViT) or give --from and --architecture."
        )
    by_suffix = {".weights.h5": "keras", ".keras": "keras", ".h5": "keras", ".pt": "pytorch",
                 ".pth": "pytorch", ".bin": "pytorch", ".ckpt": "lightning", ".onnx": "onnx"}
    if suffix not in by_suffix:
        raise ConversionError(f"Cannot tell the format of {path} from its name; pass src_format/dst_format.")
    return by_suffix[suffix]


def _parse_config(config: dict | str | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, str):
        text = Path(config).read_text() if Path(config).is_file() else config
        try:
            config = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConversionError(f"--config must be JSON (or a JSON file): {err}") from err
    return dict(config)


def _need_architecture(architecture: str | None, src: Any, fmt: str) -> str:
    if architecture is None:
        raise ConversionError(
            f"{src} ({fmt}) does not say which architecture it holds: pass architecture= "
            "(CLI: --architecture ResNet50V2) and, if not the defaults, config= (CLI: --config JSON)."
        )
    from deepvision.registry import get_architecture

    return get_architecture(architecture).name


def _torch_record(metadata: dict[str, Any], architecture: str | None) -> tuple[str | None, dict[str, Any]]:
    """The architecture and neutral config a torch file records, if any.

    ``deepvision`` (written by ``DeepVisionModulePT.on_save_checkpoint``: every Lightning checkpoint
    of a deepvision model, ``Trainer.fit``'s too) names both; ``hyper_parameters`` alone
    (``save_hyperparameters``: PyTorch constructor arguments, channels-first) gives the config of
    the architecture the caller names.
    """
    from deepvision.registry import to_neutral_config

    record = metadata.get("deepvision") or {}
    if record.get("architecture"):
        return architecture or record["architecture"], dict(record.get("config") or {})
    hparams = metadata.get("hyper_parameters")
    if architecture is not None and hparams:
        return architecture, to_neutral_config(hparams, "pytorch")
    return architecture, {}


def _load_torch_weights(model: Any, state: dict[str, Any], src: Any, name: str, config: dict[str, Any]) -> None:
    """Copy a PyTorch ``state_dict`` (numpy arrays) into ``model``, or raise a :class:`ConversionError`
    naming what does not fit and the fix (before torch's own size-mismatch error can happen)."""
    from deepvision.adapters.torch_adapter import from_numpy

    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(own[k].shape), tuple(state[k].shape)) for k in own
                  if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mismatched:
        lines = [f"{src} does not fit {name} with config {config}:"]
        if missing:
            lines.append(f"missing {missing[:5]}")
        if unexpected:
            lines.append(f"unexpected {unexpected[:5]}")
        lines += [f"shape mismatch {k}: model {m}, file {f}" for k, m, f in mismatched[:5]]
        head = [f for k, _, f in mismatched if k.startswith("head.") and k.endswith(".bias")]
        if head:
            lines.append(
                f"The file's classifier has {head[0][0]} classes: pass config={{'classes': {head[0][0]}}} "
                f"(CLI: --config '{{\"classes\": {head[0][0]}}}'), or convert with the file's class count and "
                "load with load_portable(..., exclude=['head.*'], config_overrides={'classes': N}) for a new head."
            )
        else:
            lines.append("Check --architecture and --config.")
        raise ConversionError("\n".join(lines))
    model.load_state_dict({k: from_numpy(v) for k, v in state.items()}, strict=True)


def to_canonical(src: Any, fmt: str, out: Path, *, architecture: str | None, config: dict, dtype: str | None,
                 num_heads: int | None = None) -> Path:
    """Write ``src`` (of format ``fmt``) as a canonical checkpoint at ``out``."""
    from deepvision.portable import save_portable
    from deepvision.registry import build_from_neutral_config

    if fmt == "portable":
        return src if dtype is None else recast(src, out, dtype)
    if fmt == "keras-applications":
        from deepvision.importers.keras_applications import import_keras_application

        return import_keras_application(src, _need_architecture(architecture, src, fmt), out, config=config or None)
    if fmt == "timm":
        from deepvision.importers.timm import import_timm

        return Path(import_timm(src, out, num_heads=num_heads))
    if fmt == "huggingface":
        from deepvision.importers.huggingface import import_huggingface

        canonical = Path(import_huggingface(src, out, architecture=architecture))
        return canonical if dtype is None else recast(canonical, out.with_name("recast.safetensors"), dtype)
    if fmt == "keras":
        from deepvision.models.keras_io import load_keras_model

        suffix = full_suffix(src)
        if suffix == ".weights.h5":
            name = _need_architecture(architecture, src, fmt)
            model = build_from_neutral_config(name, config, "tensorflow")
            model.load_weights(str(src))
        else:
            model = load_keras_model(src)
        return save_portable(model, out, dtype=dtype)
    if fmt in ("pytorch", "lightning"):
        from deepvision.io_utils import read_weight_file

        weights = read_weight_file(src, error=ConversionError)
        recorded, stored_config = _torch_record(weights.metadata, architecture)
        name = _need_architecture(recorded, src, fmt)
        build_config = {**stored_config, **config}
        model = build_from_neutral_config(name, build_config, "pytorch")
        _load_torch_weights(model, weights.tensors, src, name, build_config)
        return save_portable(model, out, dtype=dtype)
    raise ConversionError(f"Cannot read {fmt!r} files.")


def recast(src: str | os.PathLike, dst: str | os.PathLike, dtype: str) -> Path:
    """Copy a canonical checkpoint with its floating-point tensors cast to ``dtype`` (no framework needed)."""
    from deepvision.portable import cast_array, stored_dtype

    with interchange.open_checkpoint(src) as ckpt:
        def entry(name: str) -> interchange.TensorEntry:
            stored = stored_dtype(ckpt.dtype(name), dtype)
            return interchange.TensorEntry(name, tuple(ckpt.shape(name)), stored,
                                           lambda: cast_array(ckpt.get(name), stored))

        meta = {**ckpt.raw_metadata, "dtype": dtype}
        interchange.write_checkpoint(dst, [entry(n) for n in ckpt.names], meta)
    return Path(dst)


def from_canonical(canonical: Path, dst: str | os.PathLike, fmt: str, **onnx_options: Any) -> Path:
    """Write the canonical checkpoint ``canonical`` as ``dst`` in format ``fmt``."""
    from deepvision.portable import load_portable
    from deepvision.registry import resolve

    dst = Path(dst)
    if fmt == "portable":
        with atomic_output(dst) as tmp:
            tmp.write_bytes(Path(canonical).read_bytes())
        return dst
    if fmt == "keras-applications":
        from deepvision.importers.keras_applications import export_keras_application

        return export_keras_application(canonical, dst)
    if fmt == "timm":
        from deepvision.importers.timm import export_timm

        return Path(export_timm(canonical, dst))
    if fmt == "huggingface":
        from deepvision.importers.huggingface import export_huggingface

        return Path(export_huggingface(canonical, dst))
    if fmt == "onnx":
        from deepvision.onnx_export import export_onnx

        return Path(export_onnx(canonical, dst, **onnx_options))
    if fmt == "keras":
        model = load_portable(canonical, backend="tensorflow")
        with atomic_output(dst) as tmp:
            (model.save_weights if full_suffix(dst) == ".weights.h5" else model.save)(tmp)
        return dst
    if fmt in ("pytorch", "lightning"):
        import torch

        model = load_portable(canonical, backend="pytorch")
        payload: Any = model.state_dict()
        if fmt == "lightning":
            # The same records Trainer.fit's checkpoints carry (architecture, config, hyperparameters).
            payload = {"state_dict": payload}
            if hasattr(model, "on_save_checkpoint"):  # a LightningModule: as Trainer.fit writes it
                model.on_save_checkpoint(payload)
            else:  # a block: the architecture and config alone
                resolved = resolve(model)
                payload["deepvision"] = {"architecture": resolved.architecture.name, "config": resolved.config}
        with atomic_output(dst) as tmp:
            torch.save(payload, tmp)
        return dst
    raise ConversionError(f"Cannot write {fmt!r} files.")


def convert(
    src: Any,
    dst: str | os.PathLike,
    *,
    src_format: str | None = None,
    dst_format: str | None = None,
    architecture: str | None = None,
    config: dict | str | None = None,
    dtype: str | None = None,
    num_heads: int | None = None,
    **onnx_options: Any,
) -> Path:
    """Convert a weight file (or a keras.applications model object) into another format.

    Args:
        src: source file, or a keras.applications model object with ``src_format="keras-applications"``.
        dst: destination file; written atomically.
        src_format, dst_format: one of :data:`FORMATS` (aliases allowed); detected from names when omitted.
        architecture: deepvision architecture name, for sources that do not record it.
        config: backend-neutral config (dict, JSON text or JSON file) for such sources.
        dtype: cast floating-point tensors of the canonical checkpoint (``"float16"``, ...).
        num_heads: for timm imports whose file does not record it.

    Returns:
        ``Path(dst)``.
    """
    src_format = normalize_format(src_format) or detect_format(src)
    dst_format = normalize_format(dst_format) or detect_format(dst, destination=True)
    if src_format == "onnx":
        raise ConversionError("ONNX files are a destination only: convert from the portable checkpoint instead.")
    if not isinstance(src, (str, os.PathLike)) and src_format != "keras-applications":
        raise ConversionError("Only keras.applications sources may be model objects; pass a file path.")
    if isinstance(src, (str, os.PathLike)) and not Path(src).exists():
        raise FileNotFoundError(f"{src} does not exist.")
    parsed = _parse_config(config)
    with tempfile.TemporaryDirectory(prefix="deepvision-convert-") as tmpdir:
        canonical = to_canonical(src, src_format, Path(tmpdir) / "canonical.safetensors",
                                 architecture=architecture, config=parsed, dtype=dtype, num_heads=num_heads)
        return from_canonical(canonical, dst, dst_format, **onnx_options)
