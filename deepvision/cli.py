"""The deepvision command: inspect, validate, convert, verify, list-models, download, demo.

Bad input ends with one clear line on stderr and a non-zero exit code, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _inspect(args: argparse.Namespace) -> int:
    # Framework-free: interchange and the checked-in schemas only.
    import interchange

    with interchange.open_checkpoint(args.file, allow_foreign=True) as ckpt:
        count = ckpt.num_parameters()
        info = {
            "file": str(args.file),
            "format": ckpt.raw_metadata.get("format", "foreign safetensors (no deepvision metadata)"),
            "format_version": ckpt.raw_metadata.get("format_version"),
            "architecture": ckpt.architecture,
            "schema": ckpt.raw_metadata.get("schema"),
            "source_backend": ckpt.raw_metadata.get("source_backend"),
            "dtype": ckpt.raw_metadata.get("dtype") or sorted({ckpt.dtype(n) for n in ckpt.names}),
            "tensors": len(ckpt.names),
            "parameters": count,
            "config": ckpt.config,
            # What the file carries about where it came from and how to feed it.
            "library_version": ckpt.metadata.get("library_version"),
            "framework_versions": ckpt.metadata.get("framework_versions"),
            "preprocessing": ckpt.metadata.get("preprocessing"),
        }
        tensor_list = [{"name": n, "shape": list(ckpt.shape(n)), "dtype": ckpt.dtype(n)} for n in ckpt.names]
        schema_line = "no schema (foreign file)"
        schema_ok = True
        if ckpt.architecture:
            try:
                schema = interchange.load_schema(ckpt.architecture, ckpt.schema_version)
            except interchange.UnknownArchitectureError as err:
                schema_line, schema_ok = f"unknown architecture: {err}", False
            else:
                report = interchange.validate(ckpt, schema, config=ckpt.config or {})
                schema_ok = report.ok or _generic_with_other_config(ckpt, schema)
                schema_line = f"{schema.architecture}@{schema.version}: " + ("OK" if report.ok else f"MISMATCH\n{report}")
                if not report.ok and schema_ok:
                    schema_line = (f"{schema.architecture}@{schema.version} describes the reference config of a "
                                   "generic architecture; this file's config differs, so its names were not checked")
        info["schema_check"] = schema_line
    if args.json:
        if args.tensors:
            info["tensor_list"] = tensor_list
        print(json.dumps(info, indent=1, default=str))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value, sort_keys=True)
            elif key == "parameters":
                value = f"{value:,}"
            print(f"{key:<{width}}  {value}")
        if args.tensors:
            print(_tensor_table(tensor_list))
    # inspect describes any readable file; `deepvision validate` is the pass/fail gate.
    return 0


def _tensor_table(tensors: list[dict]) -> str:
    """One line per tensor: canonical name, shape (channels-last canonical layout), dtype."""
    shapes = ["(" + ", ".join(str(d) for d in t["shape"]) + ("," if len(t["shape"]) == 1 else "") + ")"
              for t in tensors]
    name_width = max([len("name"), *(len(t["name"]) for t in tensors)])
    shape_width = max([len("shape"), *(len(s) for s in shapes)])
    lines = ["", f"{'name':<{name_width}}  {'shape':<{shape_width}}  dtype"]
    lines += [f"{t['name']:<{name_width}}  {shape:<{shape_width}}  {t['dtype']}" for t, shape in zip(tensors, shapes)]
    return "\n".join(lines)


def _generic_with_other_config(ckpt, schema) -> bool:
    from deepvision.validation import names_depend_on_other_config

    return names_depend_on_other_config(ckpt, schema)


def _convert(args: argparse.Namespace) -> int:
    from deepvision.conversion import convert

    onnx_options = _onnx_options(args)
    out = convert(args.src, args.dst, src_format=args.src_format, dst_format=args.dst_format,
                  architecture=args.architecture, config=args.config, dtype=args.dtype, num_heads=args.num_heads,
                  **onnx_options)
    print(f"wrote {out}")
    return 0


def _onnx_options(args: argparse.Namespace) -> dict:
    """The ONNX flags that were given, as ``export_onnx`` keyword arguments (ONNX destinations only)."""
    from deepvision.conversion import ConversionError, detect_format, normalize_format

    options = {"layout": args.layout, "opset": args.opset, "input_shape": args.input_shape,
               "dynamic_batch": False if args.static_batch else None,
               "dynamic_size": True if args.dynamic_size else None, "verify": False if args.no_verify else None}
    options = {k: v for k, v in options.items() if v is not None}
    if options and (normalize_format(args.dst_format) or detect_format(args.dst, destination=True)) != "onnx":
        raise ConversionError("--layout, --opset, --input-shape, --static-batch, --dynamic-size and --no-verify "
                              "apply to .onnx destinations only.")
    if "input_shape" in options:
        try:
            options["input_shape"] = tuple(int(d) for d in options["input_shape"].replace("x", ",").split(","))
        except ValueError as err:
            raise ConversionError(f"--input-shape must look like 224,224,3 (H,W,C), got {args.input_shape!r}") from err
    return options


def _verify(args: argparse.Namespace) -> int:
    from deepvision.parity import check_parity
    from deepvision.portable import load_portable

    model = load_portable(args.file, backend="tensorflow")
    report = check_parity(model, load_portable(args.file, backend="pytorch"), rtol=args.rtol)
    print(report)
    return 0 if report.ok else 1


def _validate(args: argparse.Namespace) -> int:
    from deepvision.validation import validate_files

    text, code = validate_files(args.files, as_json=args.json)
    print(text)
    return code


def _list_models(args: argparse.Namespace) -> int:
    from deepvision.registry import get_architecture, list_architectures

    if args.pretrained:
        from deepvision.pretrained import list_pretrained

        for source in list_pretrained(args.pattern):
            print(source)
        return 0
    for name in list_architectures(args.pattern, kind="block" if args.blocks else "model"):
        arch = get_architecture(name)
        print(f"{name:<24} {arch.family:<16} schema {arch.schema}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from deepvision.pretrained import fetch

    print(fetch(args.name, args.weights))
    return 0


def _demo(argv: list[str]) -> int:
    from deepvision.demo import main as demo_main

    return demo_main(argv)


_FORMATS_HELP = """formats (--from / --to; detected from the file name when omitted):
  portable            .safetensors with deepvision metadata (the canonical checkpoint)
  keras               .weights.h5, .keras, .h5 of a deepvision Keras model
  pytorch             .pt, .pth, .bin: a deepvision PyTorch state_dict
  lightning           .ckpt: a Lightning checkpoint (Trainer.fit's, or written here)
  keras-applications  .h5, .weights.h5 of keras.applications ResNetV2 / EfficientNetV2 / ConvNeXt (needs --architecture)
  timm                .safetensors, .pth, .bin: a timm state_dict (vit_*, convnext_*, tf_efficientnetv2_*)
  huggingface         a transformers SegFormer: a folder (config.json + model.safetensors), or one weight file
                      (--architecture SegFormerB0 when no config.json is beside it); --to writes a folder
  onnx                .onnx (destination only), verified with onnxruntime
aliases: safetensors, canonical = portable; tensorflow, tf = keras; torch, pt = pytorch; ckpt = lightning;
hf, transformers = huggingface

Files that do not record their architecture (plain Keras weights, state_dicts) need --architecture
and, unless the defaults fit, --config."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepvision", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--verbose", action="store_true",
                        help="show the frameworks' start-up and log lines (TensorFlow, absl); also DEEPVISION_VERBOSE=1")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="show a checkpoint's metadata, schema check and size (no framework needed)")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--tensors", action="store_true",
                   help="also list every tensor: canonical name, shape and dtype (JSON: tensor_list)")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("validate", help="check checkpoints (format, version, checksums, schema); non-zero exit on any "
                       "problem", description="Check each file: an interchange checkpoint of a supported format "
                       "version, every tensor matching its CRC-32, names and shapes matching the schema of its "
                       "architecture. Prints one line per problem (FILE: CODE: message) and exits 1 if any file "
                       "has one, else prints one OK line per file and exits 0.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print one JSON document: {ok, files: [{file, ok, problems}]}")
    p.set_defaults(func=_validate)

    from deepvision.conversion import FORMATS
    from interchange import FLOAT_DTYPES

    p = sub.add_parser("convert", help="convert between portable, Keras, PyTorch, keras.applications, timm, ONNX",
                       description="Convert a weight file; every conversion goes through a portable checkpoint.",
                       epilog=_FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--from", dest="src_format", metavar="FORMAT",
                   help=f"source format, one of: {', '.join(FORMATS)} (default: from the file)")
    p.add_argument("--to", dest="dst_format", metavar="FORMAT",
                   help=f"destination format, one of: {', '.join(FORMATS)} (default: from the name)")
    p.add_argument("--architecture", help="e.g. ResNet50V2, for files that do not record it")
    p.add_argument("--config", help="backend-neutral config as JSON text or a JSON file")
    p.add_argument("--dtype", choices=FLOAT_DTYPES, help="cast the floating-point tensors")
    p.add_argument("--num-heads", type=int, help="attention heads, for timm files that do not record them")
    p.add_argument("--layout", type=str.upper, choices=["NCHW", "NHWC"], help="ONNX: graph input layout (default NCHW)")
    p.add_argument("--opset", type=int, help="ONNX: opset version (default: the exporter's)")
    p.add_argument("--input-shape", help="ONNX: input size H,W,C (default: the model's config)")
    p.add_argument("--static-batch", action="store_true", help="ONNX: fix the batch size at 1")
    p.add_argument("--dynamic-size", action="store_true", help="ONNX: symbolic height and width (e.g. SegFormer)")
    p.add_argument("--no-verify", action="store_true", help="ONNX: skip the onnxruntime comparison")
    p.set_defaults(func=_convert)

    p = sub.add_parser("verify", help="load a checkpoint in both backends and compare their outputs")
    p.add_argument("file", type=Path)
    p.add_argument("--rtol", type=float, default=1e-4)
    p.set_defaults(func=_verify)

    p = sub.add_parser("list-models", help="list registered models (or blocks)")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--blocks", action="store_true")
    p.add_argument("--pretrained", action="store_true",
                   help="list the published weights instead: variant, tag, top-1, license")
    p.set_defaults(func=_list_models)

    p = sub.add_parser("download", help="fill the weights cache ahead of time (DEEPVISION_HOME; copy it to "
                       "air-gapped machines)")
    p.add_argument("name", help="a model variant, e.g. ConvNeXtTiny")
    p.add_argument("--weights", default="imagenet", help="a tag from `list-models --pretrained` (default: imagenet)")
    p.set_defaults(func=_download)

    sub.add_parser("demo", help="train in one backend, hand off to the other (see `deepvision demo --help`)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    if "--verbose" in argv:
        # Before any framework is imported: TensorFlow reads its log level once, when it loads.
        from deepvision.backend import set_verbose

        argv.remove("--verbose")
        set_verbose(True)
    if argv and argv[0] == "demo":
        return _demo(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # one clear line for the user; --debug for the traceback
        if debug:
            raise
        message = str(err).strip() or type(err).__name__
        if isinstance(err, KeyError) and err.args:
            message = str(err.args[0])
        message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
        print(f"deepvision: error: {message}", file=sys.stderr)
        return 2
