"""ONNX export: canonical -> PyTorch -> ONNX, checked with onnx.checker and onnxruntime.

Exports are slow (seconds each), so the folder does six: the composite test model through the CLI
(NCHW, dynamic batch) and from its Keras model (NHWC), one block with a fixed batch, and one model
per family. Every other test reuses those files.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import interchange  # noqa: E402
from deepvision import __version__, onnx_export, testing  # noqa: E402
from deepvision.adapters import iter_slots  # noqa: E402
from deepvision.cli import main  # noqa: E402
from deepvision.onnx_export import OnnxExportError, export_onnx, verify_onnx  # noqa: E402
from deepvision.portable import load_portable, save_portable, to_backend  # noqa: E402
from deepvision.registry import build, build_from_neutral_config, get_architecture, list_architectures  # noqa: E402
from tests.foundation import composite  # noqa: E402,F401

SHAPE = (17, 23, 3)  # TestComposite's reference size: odd, non-square
RTOL = 1e-4


def _images(batch: int, shape=SHAPE, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


def _run(path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def _props(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _check_initializer_map(path, model) -> dict[str, str]:
    """Every mapped initializer is its canonical tensor, bit for bit (PyTorch layout -> canonical)."""
    props = _props(path)
    mapped = json.loads(props["deepvision.initializer_map"])
    slots = {s.name: s for s in iter_slots(model)}
    graph = {init.name: numpy_helper.to_array(init) for init in onnx.load(str(path)).graph.initializer}
    for onnx_name, canonical in mapped.items():
        slot = slots[canonical]
        import torch

        value = slot.to_canonical(torch.from_numpy(graph[onnx_name].copy()))
        np.testing.assert_array_equal(value, slot.read(), err_msg=f"{onnx_name} -> {canonical}")
    folded = json.loads(props["deepvision.folded_initializers"])
    assert not set(mapped) & set(folded)
    return mapped


# ----------------------------------------------------------------------------------------------
# The composite test model, both layouts
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras_model():
    model = build("TestComposite", "tensorflow")
    testing.randomize_weights(model, seed=5)
    return model


@pytest.fixture(scope="module")
def cli_export(keras_model, tmp_path_factory):
    """``deepvision convert m.safetensors m.onnx``: canonical -> PyTorch -> ONNX (NCHW, dynamic batch)."""
    folder = tmp_path_factory.mktemp("onnx_cli")
    ckpt = save_portable(keras_model, folder / "m.safetensors")
    out = folder / "m.onnx"
    start = time.perf_counter()
    rc = main(["convert", str(ckpt), str(out)])
    return {"rc": rc, "ckpt": ckpt, "onnx": out, "folder": folder, "seconds": time.perf_counter() - start}


@pytest.fixture(scope="module")
def nhwc_export(keras_model, tmp_path_factory):
    """From the Keras model itself (through the canonical format), channels-last graph."""
    out = tmp_path_factory.mktemp("onnx_nhwc") / "m_nhwc.onnx"
    return export_onnx(keras_model, out, layout="NHWC")


def test_cli_convert_writes_a_checked_onnx_file(cli_export, capsys):
    assert cli_export["rc"] == 0
    model = onnx.load(str(cli_export["onnx"]))
    onnx.checker.check_model(model)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert model.graph.input[0].name == "input" and dims == ["batch", 3, 17, 23]
    assert [o.name for o in model.graph.output] == ["output"]
    # Written atomically: no temporary files beside it.
    assert sorted(p.name for p in cli_export["folder"].iterdir()) == ["m.onnx", "m.safetensors"]


@pytest.mark.parametrize("batch", [1, 3])
def test_dynamic_batch_matches_both_backends(cli_export, keras_model, batch):
    x = _images(batch)
    (got,) = _run(cli_export["onnx"], np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    pt_model = load_portable(cli_export["ckpt"], backend="pytorch")
    assert got.shape == (batch, 5)
    assert testing.max_relative_error(got, testing.forward(pt_model, x)) <= RTOL
    assert testing.max_relative_error(got, testing.forward(keras_model, x)) <= RTOL


def test_metadata_props_carry_the_checkpoint_facts(cli_export):
    props = _props(cli_export["onnx"])
    with interchange.open_checkpoint(cli_export["ckpt"]) as ckpt:
        config, meta = ckpt.config, ckpt.metadata.to_dict()
    assert props["deepvision.architecture"] == "TestComposite"
    assert props["deepvision.schema"] == "TestComposite@1" and props["deepvision.schema_version"] == "1"
    assert json.loads(props["deepvision.config"]) == config
    assert json.loads(props["deepvision.preprocessing"]) == meta["preprocessing"]
    assert json.loads(props["deepvision.input_shape"]) == list(SHAPE)
    assert props["deepvision.version"] == __version__ and props["deepvision.layout"] == "NCHW"
    assert props["deepvision.source_backend"] == "tensorflow"


def test_initializer_map_names_canonical_tensors(cli_export):
    pt_model = load_portable(cli_export["ckpt"], backend="pytorch")
    mapped = _check_initializer_map(cli_export["onnx"], pt_model)
    # Unfused tensors map; the BatchNorm is folded into the depthwise conv, so neither of them maps.
    assert {"stem.kernel", "stem.bias", "blocks.0.kernel", "head.kernel", "head.bias", "final_norm.gamma"} <= set(
        mapped.values())
    assert not any(v.startswith("norm.") for v in mapped.values())
    folded = json.loads(_props(cli_export["onnx"])["deepvision.folded_initializers"])
    assert folded.get("depthwise.weight") == "depthwise.depthwise_kernel"


def test_nhwc_graph_takes_channels_last_input(nhwc_export, cli_export, keras_model):
    model = onnx.load(str(nhwc_export))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 17, 23, 3]
    assert model.graph.node[0].op_type == "Transpose"  # one transpose at the front
    assert _props(nhwc_export)["deepvision.layout"] == "NHWC"
    for batch in (1, 3):
        x = _images(batch, seed=batch)
        (nhwc,) = _run(nhwc_export, x)
        (nchw,) = _run(cli_export["onnx"], np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        assert testing.max_relative_error(nhwc, testing.forward(keras_model, x)) <= RTOL
        assert testing.max_relative_error(nhwc, nchw) <= 1e-6
    # The map follows the wrapper's names (the model sits under ``model.``).
    mapped = _check_initializer_map(nhwc_export, to_backend(keras_model, "pytorch"))
    assert mapped["model.head.weight"] == "head.kernel"


def test_verify_onnx_reports_per_output(cli_export, keras_model):
    report = verify_onnx(cli_export["onnx"], cli_export["ckpt"])
    assert report.ok and [c.batch for c in report.checks] == [1, 3] and "PASS" in str(report)
    other = build("TestComposite", "tensorflow")
    testing.randomize_weights(other, seed=6)  # different weights: must be caught
    report = verify_onnx(cli_export["onnx"], other)
    assert not report.ok and "FAIL" in str(report) and report.max_rel > 1e-2


def test_cli_onnx_flags_reach_the_exporter(cli_export, tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(src, dst, **options):
        seen.update(options)
        dst.write_bytes(b"onnx")
        return dst

    monkeypatch.setattr(onnx_export, "export_onnx", fake)
    argv = ["convert", str(cli_export["ckpt"]), str(tmp_path / "m.onnx"), "--layout", "nhwc", "--opset", "18",
            "--input-shape", "34,46,3", "--static-batch", "--dynamic-size", "--no-verify"]
    assert main(argv) == 0 and "wrote" in capsys.readouterr().out
    assert seen == {"layout": "NHWC", "opset": 18, "input_shape": (34, 46, 3), "dynamic_batch": False,
                    "dynamic_size": True, "verify": False}


# ----------------------------------------------------------------------------------------------
# A block (token input, fixed batch), and a mismatch that must stop the export
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def block_export(tmp_path_factory):
    programs = []
    original = onnx_export._torch_export

    def recording(*args, **kwargs):
        programs.append(original(*args, **kwargs))
        return programs[-1]

    block = build("TransformerEncoder", "pytorch", project_dim=16, mlp_dim=32, num_heads=4)
    testing.randomize_weights(block, seed=2)
    out = tmp_path_factory.mktemp("onnx_block") / "block.onnx"
    onnx_export._torch_export = recording
    try:
        export_onnx(block, out, input_shape=(5, 16), dynamic_batch=False)
    finally:
        onnx_export._torch_export = original
    return block, out, programs[0]


def test_block_with_token_input_and_fixed_batch(block_export):
    block, out, _ = block_export
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 5, 16]
    x = _images(1, shape=(5, 16))
    (got,) = _run(out, x)
    assert testing.max_relative_error(got, testing.forward(block, x)) <= RTOL
    assert _props(out)["deepvision.architecture"] == "TransformerEncoder"
    _check_initializer_map(out, block)


def test_mismatch_raises_a_report_and_writes_nothing(block_export, tmp_path, monkeypatch):
    block, _, program = block_export
    monkeypatch.setattr(onnx_export, "_torch_export", lambda *a, **k: program)
    real = onnx_export._reference_outputs
    monkeypatch.setattr(onnx_export, "_reference_outputs", lambda *a: [o * 1.01 for o in real(*a)])
    dest = tmp_path / "block.onnx"
    dest.write_text("previous file")
    with pytest.raises(OnnxExportError, match="max rel") as info:
        export_onnx(block, dest, input_shape=(5, 16), dynamic_batch=False)
    assert info.value.report is not None and not info.value.report.ok
    assert "FAIL" in str(info.value) and "output" in str(info.value)
    assert dest.read_text() == "previous file" and [p.name for p in tmp_path.iterdir()] == ["block.onnx"]
    # verify=False skips the comparison (and the checker).
    export_onnx(block, dest, input_shape=(5, 16), dynamic_batch=False, verify=False)
    onnx.checker.check_model(str(dest))


def test_large_models_keep_their_weights_beside_the_graph(block_export, tmp_path, monkeypatch):
    # Above 2 GiB a graph cannot be one protobuf; pretend this one is that large.
    block, _, program = block_export
    monkeypatch.setattr(onnx_export, "_torch_export", lambda *a, **k: program)
    monkeypatch.setattr(onnx_export, "_EXTERNAL_DATA_BYTES", 0)
    out = export_onnx(block, tmp_path / "big.onnx", input_shape=(5, 16), dynamic_batch=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    x = _images(1, shape=(5, 16))
    (got,) = _run(out, x)
    assert testing.max_relative_error(got, testing.forward(block, x)) <= RTOL


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------
def test_non_safetensors_file_says_what_to_do(tmp_path):
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"\x80\x04")
    with pytest.raises(OnnxExportError, match="not a portable checkpoint.*deepvision convert weights.pt"):
        export_onnx(bad, tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError):
        export_onnx(tmp_path / "missing.safetensors", tmp_path / "x.onnx")
    with pytest.raises(OnnxExportError, match="deepvision model"):
        export_onnx(object(), tmp_path / "x.onnx")
    with pytest.raises(OnnxExportError, match="layout"):
        export_onnx(bad, tmp_path / "x.onnx", layout="CHW")
    assert not (tmp_path / "x.onnx").exists()


def test_foreign_safetensors_says_what_to_do(tmp_path):
    from safetensors.numpy import save_file

    foreign = tmp_path / "vit.safetensors"
    save_file({"patch_embed.proj.weight": np.zeros((4, 3, 2, 2), np.float32)}, str(foreign))
    with pytest.raises(OnnxExportError, match="foreign.*--from timm"):
        export_onnx(foreign, tmp_path / "x.onnx")


def test_corrupt_checkpoint_is_reported(cli_export, tmp_path, capsys):
    data = bytearray(cli_export["ckpt"].read_bytes())
    data[-3] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(interchange.InterchangeError, match="(?i)corrupt"):
        export_onnx(bad, tmp_path / "x.onnx")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    assert main(["convert", str(garbage), str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepvision: error:") and "not a safetensors file" in err and err.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


def test_cli_onnx_flags_need_an_onnx_destination(cli_export, tmp_path, capsys):
    assert main(["convert", str(cli_export["ckpt"]), str(tmp_path / "m.pt"), "--layout", "nhwc"]) == 2
    assert ".onnx destinations only" in capsys.readouterr().err
    assert main(["convert", str(cli_export["ckpt"]), str(tmp_path / "m.onnx"), "--input-shape", "a,b"]) == 2
    assert "--input-shape" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Every model family, at its small reference size
# ----------------------------------------------------------------------------------------------
# Smallest variant of each family; a family not listed here is tested with its first variant.
PREFERRED = {"resnetv2": "ResNet18V2", "efficientnetv2": "EfficientNetV2B0", "vit": "ViT"}
# The last BatchNorm of each residual branch, shrunk so random weights are not chaotic
# (see parity-pitfalls "Random initialisation can make a deep network chaotic").
SHRINK = {"resnetv2": ("norm1",), "efficientnetv2": ("project_bn",)}  # ResNet18V2: basic blocks


def _families() -> dict[str, str]:
    names = list_architectures(kind="model")
    first: dict[str, str] = {}
    for name in names:
        first.setdefault(get_architecture(name).family, name)
    first.pop("tests", None)
    first.pop("nerf", None)  # NeRF takes points (N, 6), not images: tests/nerf covers it
    return {family: PREFERRED[family] if PREFERRED.get(family) in names else name for family, name in first.items()}


FAMILIES = _families()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_model_family_exports_and_matches_onnxruntime(family, tmp_path):
    import copy

    import torch

    name = FAMILIES[family]
    config = dict(get_architecture(name).reference_config)
    shape = tuple(config["input_shape"])
    pt_model = build_from_neutral_config(name, config, "pytorch")
    testing.randomize_weights(pt_model, seed=0)
    testing.calibrate_batch_norm(pt_model, _images(4, shape, seed=0), shrink=SHRINK.get(family, ()))
    # The comparison means something only if float32 noise of the model itself is far below RTOL.
    x = _images(3, shape, seed=1)
    pt_model.eval()
    with torch.no_grad():
        y64 = copy.deepcopy(pt_model).double()(torch.from_numpy(x.transpose(0, 3, 1, 2)).double()).numpy()
    assert testing.max_relative_error(testing.forward(pt_model, x), y64) < RTOL / 10

    # The PyTorch route (the composite tests take the checkpoint and Keras routes); export_onnx
    # itself verifies against the model at batch 1 and 3.
    out = export_onnx(pt_model, tmp_path / f"{name}.onnx")
    # The Keras side is covered by the composite model above and by the family's own parity tests.
    report = verify_onnx(out, pt_model)
    assert report.ok, str(report)
    props = _props(out)
    assert props["deepvision.architecture"] == name and props["deepvision.source_backend"] == "pytorch"
    assert json.loads(props["deepvision.preprocessing"])["input_size"] == list(shape)
    mapped = _check_initializer_map(out, pt_model)
    assert "head.kernel" in mapped.values()


# ----------------------------------------------------------------------------------------------
# SegFormer with symbolic batch, height and width (its logits follow the input size)
# ----------------------------------------------------------------------------------------------
def test_segformer_exports_with_dynamic_height_and_width(tmp_path):
    # The small reference encoder, built for any input size.
    config = dict(get_architecture("SegFormer").reference_config, input_shape=[None, None, 3])
    keras_model = build_from_neutral_config("SegFormer", config, "tensorflow")
    testing.randomize_weights(keras_model, seed=3)
    ckpt = save_portable(keras_model, tmp_path / "segformer.safetensors")
    # Checked at 67x93 and 99x109. At the reference 37x45 the last stages' key grids are 1x1, a size
    # torch.export specialises: that would fix the input size, which export_onnx refuses.
    out = export_onnx(ckpt, tmp_path / "segformer.onnx", input_shape=(67, 93, 3), dynamic_size=True)

    graph = onnx.load(str(out)).graph
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == \
        ["batch", 3, "height", "width"]
    out_dims = [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    assert out_dims[:2] == ["batch", config["classes"]] and "height" in out_dims[2] and "width" in out_dims[3]
    limits = json.loads(_props(out)["deepvision.dynamic_size"])
    assert 2 <= limits["min_height"] <= 67 and 2 <= limits["min_width"] <= 93
    # A third size, odd and never seen at export: the patch convolutions floor, so do the logits.
    x = _images(2, (max(50, limits["min_height"]), max(71, limits["min_width"]), 3), seed=11)
    (got,) = _run(out, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    want = testing.forward(keras_model, x).transpose(0, 3, 1, 2)
    assert got.shape == want.shape == (2, config["classes"], (x.shape[1] - 1) // 4 + 1, (x.shape[2] - 1) // 4 + 1)
    assert testing.max_relative_error(got, want) < RTOL
    report = verify_onnx(out, keras_model)  # the two export sizes, batches 1 and 3
    assert report.ok and {c.shape[2:] for c in report.checks} == {(17, 24), (25, 28)}, str(report)


def test_a_model_that_fixes_its_size_is_refused_with_dynamic_size(tmp_path):
    config = dict(get_architecture("SegFormer").reference_config)  # 37x45: 1x1 key grids, see above
    model = build_from_neutral_config("SegFormer", config, "pytorch")
    with pytest.raises(OnnxExportError, match=r"proves the graph only for .*\d+\.\.\d+.*larger input_shape"):
        export_onnx(model, tmp_path / "x.onnx", dynamic_size=True)
    assert not (tmp_path / "x.onnx").exists()


def test_dynamic_size_needs_an_image_input(tmp_path):
    block = build("TransformerEncoder", "pytorch", project_dim=16, mlp_dim=32, num_heads=4)
    with pytest.raises(OnnxExportError, match="dynamic_size applies to image inputs"):
        export_onnx(block, tmp_path / "x.onnx", input_shape=(5, 16), dynamic_size=True)
