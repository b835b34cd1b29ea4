"""SegFormer / MiT: transformers' numbers, Hugging Face files in and out, TF vs PT at odd sizes.

The registry-driven contract (counts, schemas, factories) lives in test_model_contract.py; this file
tests what is SegFormer's own. Fixtures in tests/fixtures/hf (written by transformers 5.24, see
README.md there): a B0 with 19 classes under transformers 5 names, its outputs on a fixed input, and
every key and shape of B0..B5 (encoder only and with the decode head).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepvision import testing
from deepvision.importers import huggingface as hf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf"
WEIGHTS = FIXTURES / "segformer-b0-cls19.safetensors"  # transformers 5 names
IO = FIXTURES / "segformer-b0-cls19.io.safetensors"
MANIFEST = json.loads((FIXTURES / "manifest-segformer.json").read_text())
SIZES = ["B0", "B1", "B2", "B3", "B4", "B5"]
pytestmark = pytest.mark.xdist_group("segformer")


def _io() -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(IO))


@pytest.fixture(scope="module")
def hub_named(tmp_path_factory) -> Path:
    """The fixture's state_dict under the hub names, renamed with the manifest's own name pairs
    (transformers' lists, not deepvision's renaming) so the hub-name path is tested independently."""
    from safetensors.numpy import load_file, save_file

    entry = MANIFEST["segformer-b0-ade-150"]
    to_hub = dict(zip(entry["tensors"], entry["tensors_hub_names"]))
    state = load_file(str(WEIGHTS))
    path = tmp_path_factory.mktemp("hub") / "model.safetensors"
    save_file({to_hub[k]: v for k, v in state.items()}, str(path), metadata={"format": "pt"})
    return path


@pytest.mark.parametrize("model", list(MANIFEST))
def test_renaming_equals_transformers(model):
    """transformers 5 name -> hub name, for every tensor of B0..B5 as transformers itself lists both."""
    entry = MANIFEST[model]
    assert len(entry["tensors"]) == len(entry["tensors_hub_names"])
    for v5, hub in zip(entry["tensors"], entry["tensors_hub_names"]):
        assert hf.hub_name(v5) == hub
        assert hf.hub_name(hub) == hub
        assert hf.transformers5_name(hub) == v5


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("head", [True, False], ids=["segmentation", "encoder"])
def test_exported_keys_and_shapes_equal_transformers(size, head):
    """What export_huggingface writes for every variant (built on the meta device) is transformers' state_dict."""
    import torch

    from deepvision.adapters import slots_by_name
    from deepvision.models import create_model
    from deepvision.registry import config_of

    name = f"SegFormer{size}" if head else f"MiT{size}"
    with torch.device("meta"):
        model = create_model(name, backend="pytorch")
    shapes = {n: s.shape for n, s in slots_by_name(model).items()}
    spec = hf.state_dict_spec(shapes, config_of(model), name)
    entry = MANIFEST[f"segformer-{size.lower()}-ade-150" if head else f"mit-{size.lower()}"]
    assert {k: list(v) for k, v in spec.items()} == entry["tensors_hub_names"]
    assert model.count_params() == entry["num_params_with_bn_statistics"]


@pytest.mark.parametrize("source", ["transformers5", "hub"])
@pytest.mark.parametrize("backend", ["pytorch", "tensorflow"])
def test_logits_and_stages_equal_transformers(source, backend, hub_named):
    io = _io()
    imported = hf.import_huggingface(WEIGHTS if source == "transformers5" else hub_named)
    assert imported.architecture == "SegFormerB0" and imported.config["classes"] == 19
    model = imported.to_model(backend)
    x = io["input_nchw"].transpose(0, 2, 3, 1)
    logits = testing.forward(model, x)
    assert logits.shape == (2, 32, 40, 19)  # 1/4 of 128x160, before any upsampling
    assert testing.max_relative_error(logits, io["logits"].transpose(0, 2, 3, 1)) <= 1e-4
    maps = model.forward_features(testing.to_framework(x, backend))
    for i, feature in enumerate(maps):
        expected = io[f"encoder_stage{i}"].transpose(0, 2, 3, 1)
        assert testing.max_relative_error(testing.from_framework(feature, backend), expected) <= 1e-4, i


def test_import_export_import_is_bit_exact(tmp_path):
    from safetensors.numpy import load_file

    import interchange

    first = hf.import_huggingface(WEIGHTS, tmp_path / "a.safetensors")
    folder = hf.export_huggingface(first, tmp_path / "export")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    exported = load_file(str(folder / "model.safetensors"))
    original = {hf.hub_name(k): v for k, v in load_file(str(WEIGHTS)).items()}
    assert exported.keys() == original.keys()
    for key, value in original.items():
        if key.endswith("num_batches_tracked"):
            continue
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    second = hf.import_huggingface(folder, tmp_path / "b.safetensors")
    with interchange.open_checkpoint(first) as a, interchange.open_checkpoint(second) as b:
        assert a.names == b.names and a.architecture == b.architecture == "SegFormerB0"
        assert a.config == b.config
        for name in a.names:
            np.testing.assert_array_equal(a.get(name), b.get(name), err_msg=name)


def test_config_json_carries_variant_labels_and_heads(tmp_path):
    """config.json gives the variant, num_labels and id2label; id2label travels in the portable metadata."""
    import interchange
    from deepvision.portable import load_portable

    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(WEIGHTS.read_bytes())
    labels = {str(i): f"class{i}" for i in range(19)}
    config = hf.transformers_config({**hf.infer_config(_shapes(WEIGHTS))[1]}, "SegFormerB0", labels)
    (folder / "config.json").write_text(json.dumps(config))
    path = hf.import_huggingface(folder, tmp_path / "c.safetensors")
    with interchange.open_checkpoint(path) as ckpt:
        assert ckpt.architecture == "SegFormerB0"
        assert ckpt.metadata["id2label"] == labels
        assert ckpt.metadata["source_backend"] == "huggingface"
        assert ckpt.config["classes"] == 19 and ckpt.config["num_heads"] == [1, 2, 5, 8]
    again = hf.export_huggingface(load_portable(path, "pytorch"), tmp_path / "out", id2label=labels)
    written = json.loads((again / "config.json").read_text())
    assert written["id2label"] == labels and written["num_labels"] == 19
    assert written["architectures"] == ["SegformerForSemanticSegmentation"]
    bad = dict(config, num_labels=7)
    (folder / "config.json").write_text(json.dumps(bad))
    with pytest.raises(hf.HuggingFaceFormatError, match="num_labels=7"):
        hf.import_huggingface(folder)


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return {hf.hub_name(k): tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def test_exported_state_dict_loads_strictly_into_the_same_structure(tmp_path):
    """A .bin export holds exactly transformers' keys (num_batches_tracked included), as
    load_state_dict(strict=True) needs; a deepvision PyTorch model reloads from it bit-exactly."""
    import torch

    imported = hf.import_huggingface(WEIGHTS)
    model = imported.to_model("pytorch")
    path = hf.export_huggingface(model, tmp_path / "pytorch_model.bin")
    state = torch.load(path, weights_only=True)
    assert sorted(state) == sorted(MANIFEST["segformer-b0-ade-150"]["tensors_hub_names"])
    assert state["decode_head.batch_norm.num_batches_tracked"].dtype == torch.int64
    back = hf.import_huggingface(path, architecture="SegFormerB0")
    for name, value in imported.tensors.items():
        np.testing.assert_array_equal(back.tensors[name], value, err_msg=name)
    # transformers 5 modules hold the renamed keys: naming="transformers5" writes exactly those.
    v5 = torch.load(hf.export_huggingface(model, tmp_path / "v5.bin", naming="transformers5"), weights_only=True)
    assert sorted(v5) == sorted(MANIFEST["segformer-b0-ade-150"]["tensors"])


def test_not_a_segformer_is_a_clear_error(tmp_path):
    from safetensors.numpy import save_file

    save_file({"conv.weight": np.zeros((2, 3, 3, 3), np.float32)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(hf.HuggingFaceFormatError, match="not a transformers SegFormer"):
        hf.import_huggingface(tmp_path / "x.safetensors")
    with pytest.raises(hf.HuggingFaceFormatError, match="neither model.safetensors"):
        hf.import_huggingface(tmp_path)


def test_tensorflow_equals_pytorch_at_an_odd_size():
    """97x129: every patch embedding floors (25x33, 13x17, 7x9, 4x5); calibrated weights (the fixture's)."""
    imported = hf.import_huggingface(WEIGHTS)
    tf_model, pt_model = imported.to_model("tensorflow"), imported.to_model("pytorch")
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 97, 129, 3)).astype(np.float32)
    tf_logits, pt_logits = testing.forward(tf_model, x), testing.forward(pt_model, x)
    assert tf_logits.shape == (2, 25, 33, 19)
    assert testing.max_relative_error(pt_logits, tf_logits) <= 1e-4
    tf_maps = testing.from_framework(tf_model.forward_features(testing.to_framework(x, "tensorflow")), "tensorflow")
    import torch

    with torch.no_grad():
        pt_maps = testing.from_framework(pt_model.forward_features(testing.to_framework(x, "pytorch")), "pytorch")
    assert [m.shape[1:3] for m in tf_maps] == [(25, 33), (13, 17), (7, 9), (4, 5)]
    for i, (a, b) in enumerate(zip(pt_maps, tf_maps)):
        assert testing.max_relative_error(a, b) <= 1e-4, i


def test_upsample_helper_is_the_same_in_both_backends():
    import keras
    import torch

    from deepvision.layers.upsample import upsample_bilinear

    x = np.random.default_rng(3).normal(size=(2, 7, 9, 5)).astype(np.float32)
    tf_out = keras.ops.convert_to_numpy(upsample_bilinear(keras.ops.convert_to_tensor(x), (29, 35)))
    pt_out = upsample_bilinear(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), (29, 35)).numpy()
    assert tf_out.shape == (2, 29, 35, 5)
    assert testing.max_abs_error(pt_out.transpose(0, 2, 3, 1), tf_out) <= 1e-5
    # Half-pixel centres: 2x upsampling of [0, 1] gives [0, 0.25, 0.75, 1] (edges clamped).
    ramp = torch.tensor([[[[0.0, 1.0]]]])
    np.testing.assert_allclose(upsample_bilinear(ramp, (1, 4))[0, 0, 0].numpy(), [0, 0.25, 0.75, 1])


@pytest.mark.parametrize("backend", ["pytorch", "tensorflow"])
def test_backbone_levels_at_strides_4_to_32(backend):
    from deepvision.models import create_model

    shape = (3, 97, 129) if backend == "pytorch" else (97, 129, 3)
    model = create_model("MiT", backend=backend, input_shape=shape, features_only=True, out_indices=[1, 3],
                         embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4])
    assert model.feature_info.reduction() == [8, 32] and model.feature_info.channels() == [16, 32]
    outputs = testing.forward(model, np.zeros((1, 97, 129, 3), np.float32))
    assert [o.shape for o in outputs] == [(1, 13, 17, 16), (1, 4, 5, 32)]
    full = create_model("SegFormer", backend=backend, input_shape=shape, classes=3, decoder_dim=8,
                        embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4])
    assert full.feature_info.reduction() == [4, 8, 16, 32]
    assert full.feature_info.module_name() == ["stages.0", "stages.1", "stages.2", "stages.3"]


def test_convert_and_cli_read_and_write_huggingface(tmp_path, capsys):
    import interchange
    from deepvision.cli import main
    from deepvision.conversion import convert, detect_format

    assert detect_format(WEIGHTS) == "huggingface"  # foreign safetensors with SegFormer names
    portable = convert(WEIGHTS, tmp_path / "b0.safetensors", src_format="huggingface")
    with interchange.open_checkpoint(portable) as ckpt:
        assert ckpt.architecture == "SegFormerB0"
    folder = convert(portable, tmp_path / "hub", dst_format="hf")
    assert (folder / "config.json").is_file() and detect_format(folder) == "huggingface"
    assert main(["convert", "--from", "huggingface", str(folder), str(tmp_path / "again.safetensors")]) == 0
    assert main(["convert", "--to", "huggingface", str(tmp_path / "again.safetensors"), str(tmp_path / "out")]) == 0
    assert "wrote" in capsys.readouterr().out
    from safetensors.numpy import load_file

    a, b = load_file(str(folder / "model.safetensors")), load_file(str(tmp_path / "out" / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
