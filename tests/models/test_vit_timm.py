"""timm ViT checkpoints in and out, proven against timm's own outputs (fixtures written by timm 1.0.31).

The fixtures (tests/fixtures/timm, see its README) are depth-2 ViT-Tiny models with LayerNorm
parameters drawn away from 1/0, their inputs, and timm's tokens, pre-logits and logits for them;
manifest.json lists every key and shape of the full-size timm models. timm itself is not needed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import deepvision
import interchange
from deepvision import testing
from deepvision.adapters import slots_by_name
from deepvision.importers.timm import (
    ImportedTimm,
    TimmFormatError,
    export_timm,
    import_timm,
    load_timm,
    timm_model_args,
    timm_state_dict_spec,
)
from deepvision.models.classification.vit.resample import (
    antialias_bicubic_weights,
    resample_position_embedding,
    resize_bicubic_antialias,
)
from deepvision.portable import load_portable, save_portable
from deepvision.registry import config_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "timm"
P16 = "vit_tiny_patch16_224-depth2"
P32 = "vit_tiny_patch32_224-depth2-cls10"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
TOLERANCE = 1e-4
# deepvision variant -> timm model in manifest.json, with the kwargs timm.create_model needs.
TIMM_NAMES = {
    "ViTTiny16": ("vit_tiny_patch16_224", {}),
    "ViTS16": ("vit_small_patch16_224", {}),
    "ViTB16": ("vit_base_patch16_224", {}),
    "ViTL16": ("vit_large_patch16_224", {}),
    "ViTTiny32": ("vit_tiny_patch16_224", {"patch_size": 32}),  # timm has no vit_tiny_patch32_224
    "ViTS32": ("vit_small_patch32_224", {}),
    "ViTB32": ("vit_base_patch32_224", {}),
    "ViTL32": ("vit_large_patch32_224", {}),
}


def _manifest_entry(name: str) -> dict:
    """timm's keys and shapes; ViTTiny32 is timm's vit_tiny_patch16_224 with patch_size=32 (README)."""
    timm_name, kwargs = TIMM_NAMES[name]
    entry = json.loads(json.dumps(MANIFEST[timm_name]))
    if kwargs.get("patch_size") == 32:
        entry["tensors"]["patch_embed.proj.weight"] = [192, 3, 32, 32]
        entry["tensors"]["pos_embed"] = [1, 1 + 7 * 7, 192]
        entry["num_params"] = sum(int(np.prod(s)) for s in entry["tensors"].values())
        assert entry["num_params"] == 6_131_560  # the seed's ViTTiny32
    return entry


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    """Each fixture imported once into a canonical checkpoint."""
    root = tmp_path_factory.mktemp("timm")
    return {stem: import_timm(FIXTURES / f"{stem}.safetensors", root / f"{stem}.safetensors") for stem in (P16, P32)}


def _outputs(model, x_nhwc):
    """(logits, pre_logits, tokens) of a deepvision ViT, numpy, in either backend."""
    if deepvision.backend.backend_of(model) == "pytorch":
        import torch

        model.eval()
        with torch.no_grad():
            tokens = model.forward_features(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))))
            pre = model.forward_head(tokens, pre_logits=True)
            logits = model.forward_head(tokens)
        return logits.numpy(), pre.numpy(), tokens.numpy()
    tokens = model.forward_features(x_nhwc)
    return (np.asarray(model.forward_head(tokens)), np.asarray(model.forward_head(tokens, pre_logits=True)),
            np.asarray(tokens))


@pytest.mark.parametrize("backend", ["pytorch", "tensorflow"])
@pytest.mark.parametrize("stem", [P16, P32])
def test_imported_checkpoint_matches_timm_outputs(canonical, stem, backend):
    io = load_file(FIXTURES / f"{stem}.io.safetensors")
    x = io["input_nchw"].transpose(0, 2, 3, 1)
    model = load_portable(canonical[stem], backend)
    logits, pre, tokens = _outputs(model, x)
    errors = {
        "logits": testing.max_relative_error(logits, io["logits"]),
        "pre_logits": testing.max_relative_error(pre, io["pre_logits"]),
        "tokens": testing.max_relative_error(tokens, io["tokens"]),
    }
    assert max(errors.values()) <= TOLERANCE, errors
    # The plain call is the classifier: the same logits.
    assert testing.max_relative_error(testing.forward(model, x), io["logits"]) <= TOLERANCE


def test_imported_config_architecture_and_preprocessing(canonical):
    with interchange.open_checkpoint(canonical[P16]) as ckpt:
        assert ckpt.architecture == "ViT"  # depth 2: the generic architecture
        config = ckpt.config
        meta = ckpt.metadata
    assert {k: config[k] for k in ("patch_size", "project_dim", "num_layers", "num_heads", "mlp_dim", "classes",
                                   "input_shape", "layer_norm_epsilon", "activation", "include_top")} == {
        "patch_size": 16, "project_dim": 192, "num_layers": 2, "num_heads": 3, "mlp_dim": 768, "classes": 1000,
        "input_shape": [224, 224, 3], "layer_norm_epsilon": 1e-6, "activation": "gelu", "include_top": True}
    assert meta["source_backend"] == "timm"
    assert meta["timm"]["architecture"] == "vit_tiny_patch16_224"
    assert meta["framework_versions"]["timm"] == "1.0.31"
    pre = meta["preprocessing"]
    assert pre["mean"] == pre["std"] == [0.5, 0.5, 0.5] and pre["value_range"] == [0, 1]
    assert pre["input_size"] == [224, 224, 3] and pre["interpolation"] == "bicubic" and pre["crop_pct"] == 0.9
    with interchange.open_checkpoint(canonical[P32]) as ckpt:
        assert ckpt.config["patch_size"] == 32 and ckpt.config["classes"] == 10


def test_timm_pretrained_cfg_is_carried_along(tmp_path):
    cfg = {**MANIFEST["vit_base_patch16_224"]["pretrained_cfg"], "mean": [0.485, 0.456, 0.406],
           "std": [0.229, 0.224, 0.225], "input_size": [3, 256, 256], "crop_pct": 0.95}
    imported = import_timm(FIXTURES / f"{P16}.safetensors", pretrained_cfg=cfg)
    assert isinstance(imported, ImportedTimm)
    pre = imported.preprocessing
    assert pre["mean"] == [0.485, 0.456, 0.406] and pre["std"] == [0.229, 0.224, 0.225]
    assert pre["input_size"] == [256, 256, 3] and pre["crop_pct"] == 0.95
    assert pre["timm_hf_hub_id"] == "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"
    # A hub config.json beside the weights is read the same way.
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((FIXTURES / f"{P16}.safetensors").read_bytes())
    (folder / "config.json").write_text(json.dumps({"architecture": "vit_tiny_patch16_224", "pretrained_cfg": cfg}))
    assert import_timm(folder / "model.safetensors").preprocessing["mean"] == [0.485, 0.456, 0.406]


def test_pth_and_bin_files_import_identically(tmp_path):
    import torch

    state = load_file(FIXTURES / f"{P16}.safetensors")
    reference = import_timm(FIXTURES / f"{P16}.safetensors").tensors
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    variants = {
        "plain.pth": tensors,
        "wrapped.pth": {"state_dict": tensors, "epoch": 3},  # a timm training checkpoint
        "ddp.bin": {f"module.{k}": v for k, v in tensors.items()},
    }
    for file, payload in variants.items():
        torch.save(payload, tmp_path / file)
        imported = import_timm(tmp_path / file)
        assert list(imported.tensors) == list(reference)
        for name, value in reference.items():
            np.testing.assert_array_equal(imported.tensors[name], value, err_msg=f"{file}: {name}")


def test_pickled_objects_are_refused(tmp_path):
    import torch

    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")  # a pickled module, not tensors
    with pytest.raises(TimmFormatError, match="weights_only"):
        import_timm(tmp_path / "module.pth")


def test_heads_from_argument_metadata_or_width(tmp_path):
    state = load_file(FIXTURES / f"{P16}.safetensors")
    save_file(state, tmp_path / "bare.safetensors")  # no timm metadata at all
    assert import_timm(tmp_path / "bare.safetensors").config["num_heads"] == 3  # width 192 -> 3
    assert import_timm(tmp_path / "bare.safetensors", num_heads=6).config["num_heads"] == 6
    save_file(state, tmp_path / "meta.safetensors", metadata={"timm_kwargs": json.dumps({"num_heads": 4})})
    assert import_timm(tmp_path / "meta.safetensors").config["num_heads"] == 4
    odd = {k: v for k, v in state.items()}
    save_file(odd, tmp_path / "named.safetensors", metadata={"timm_architecture": "vit_small_patch16_224"})
    assert import_timm(tmp_path / "named.safetensors").config["num_heads"] == 6  # timm's name wins over width


def test_unsupported_timm_options_are_refused(tmp_path):
    state = load_file(FIXTURES / f"{P16}.safetensors")
    save_file({**state, "blocks.0.ls1.gamma": np.ones(192, np.float32)}, tmp_path / "layerscale.safetensors")
    with pytest.raises(TimmFormatError, match="ls1.gamma"):
        import_timm(tmp_path / "layerscale.safetensors")
    save_file({k: v for k, v in state.items() if k != "cls_token"}, tmp_path / "nocls.safetensors")
    with pytest.raises(TimmFormatError, match="cls_token"):
        import_timm(tmp_path / "nocls.safetensors")


# ----------------------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("grid", [(10, 10), (20, 20), (12, 16)])
def test_position_embedding_resampling_matches_timm(grid):
    pos_embed = load_file(FIXTURES / f"{P16}.safetensors")["pos_embed"]
    expected = load_file(FIXTURES / f"{P16}.resample.safetensors")[f"pos_embed_{grid[0]}x{grid[1]}"]
    out = resample_position_embedding(pos_embed, grid)
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], pos_embed[:, 0])  # class token kept
    assert testing.max_relative_error(out, expected) <= 1e-6
    if grid == (20, 20):
        np.testing.assert_array_equal(out, expected)  # upsampling is bit-identical to PyTorch's kernel


def test_resampler_equals_torch_interpolate():
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    for (h, w), (nh, nw) in [((14, 14), (10, 10)), ((7, 9), (23, 5)), ((16, 16), (3, 3)), ((5, 5), (5, 7)),
                             ((24, 24), (14, 14)), ((6, 6), (6, 6))]:
        image = rng.normal(size=(h, w, 5)).astype(np.float32)
        ref = F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None], size=(nh, nw), mode="bicubic",
                            antialias=True, align_corners=False)[0].permute(1, 2, 0).numpy()
        assert testing.max_relative_error(resize_bicubic_antialias(image, (nh, nw)), ref) <= 1e-6, ((h, w), (nh, nw))
    for n, m in [(14, 10), (14, 20), (7, 23), (37, 5), (9, 8)]:
        eye = torch.eye(n)[:, None, None, :]  # one-hot rows: the output is the weight matrix itself
        weights = F.interpolate(eye, size=(1, m), mode="bicubic", antialias=True)[:, 0, 0, :].numpy().T
        np.testing.assert_array_equal(antialias_bicubic_weights(n, m), weights)


@pytest.mark.parametrize("backend", ["pytorch", "tensorflow"])
def test_checkpoint_loads_at_160_like_timm(canonical, backend, caplog):
    data = load_file(FIXTURES / f"{P16}.resample.safetensors")
    with caplog.at_level(logging.INFO, logger="deepvision"):
        model = load_portable(canonical[P16], backend, config_overrides={"input_shape": [160, 160, 3]})
    assert any("14x14 to a 10x10 patch grid" in r.message for r in caplog.records)
    state = testing.canonical_state(model)
    assert testing.max_relative_error(state["patch_embed.position_embedding"], data["pos_embed_10x10"]) <= 1e-6
    logits = testing.forward(model, data["input_nchw_160"].transpose(0, 2, 3, 1))
    assert testing.max_relative_error(logits, data["logits_160"]) <= TOLERANCE


def test_checkpoint_loads_into_a_model_built_at_another_size(canonical):
    data = load_file(FIXTURES / f"{P16}.resample.safetensors")
    model = deepvision.models.ViT(backend="tensorflow", input_shape=(160, 160, 3), patch_size=16, project_dim=192,
                                  num_layers=2, num_heads=3, mlp_dim=768)
    load_portable(canonical[P16], model=model)
    logits = testing.forward(model, data["input_nchw_160"].transpose(0, 2, 3, 1))
    assert testing.max_relative_error(logits, data["logits_160"]) <= TOLERANCE
    # Straight from the timm file, non-square grid (12x16 patches).
    pt = load_timm(FIXTURES / f"{P16}.safetensors", "pytorch", input_shape=[192, 256, 3])
    expected = load_file(FIXTURES / f"{P16}.resample.safetensors")["pos_embed_12x16"]
    assert testing.max_relative_error(testing.canonical_state(pt)["patch_embed.position_embedding"], expected) <= 1e-6


# ----------------------------------------------------------------------------------------- export


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_export_gives_timm_back_bit_exact_and_reimports_bit_exact(canonical, tmp_path, suffix):
    original = load_file(FIXTURES / f"{P32}.safetensors")
    out = export_timm(canonical[P32], tmp_path / f"timm{suffix}")
    if suffix == ".safetensors":
        exported = load_file(out)
        with interchange.open_checkpoint(out, allow_foreign=True, verify=False) as ckpt:
            meta = ckpt.raw_metadata
        assert meta["timm_architecture"] == "vit_tiny_patch16_224"
        assert json.loads(meta["timm_kwargs"]) == {"patch_size": 32, "depth": 2, "num_classes": 10}
    else:
        import torch

        exported = {k: v.numpy() for k, v in torch.load(out, weights_only=True).items()}
    assert sorted(exported) == sorted(original)
    for key, value in original.items():
        assert exported[key].dtype == value.dtype
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    again = import_timm(out, tmp_path / "again.safetensors", num_heads=3)
    with interchange.open_checkpoint(canonical[P32]) as a, interchange.open_checkpoint(again) as b:
        assert a.names == b.names and a.config == b.config
        for name in a.names:
            np.testing.assert_array_equal(a.get(name), b.get(name), err_msg=name)


@pytest.mark.parametrize("name", list(TIMM_NAMES))
def test_export_spec_equals_timm_keys_and_shapes_for_every_full_size_variant(name):
    """What export_timm writes for each full-size variant: exactly timm's keys (in order) and shapes."""
    import torch

    with torch.device("meta"):
        model = deepvision.models.create_model(name, backend="pytorch")
    config = config_of(model)
    spec = timm_state_dict_spec({n: s.shape for n, s in slots_by_name(model).items()}, config)
    entry = _manifest_entry(name)
    assert list(spec) == list(entry["tensors"])
    assert {k: list(v) for k, v in spec.items()} == entry["tensors"]
    assert sum(int(np.prod(s)) for s in spec.values()) == entry["num_params"] == model.count_params()
    timm_name, kwargs = timm_model_args(config)
    expected_name, expected_kwargs = TIMM_NAMES[name]
    assert timm_name == expected_name
    assert kwargs == {**expected_kwargs, "num_classes": 1000}  # vit_large_patch32_224 defaults to 0: always given
    assert entry["layernorm_eps"] == [config["layer_norm_epsilon"]] and entry["gelu_approximate"] == ["none"]


def test_full_size_export_file_for_timm(tmp_path):
    """A real full-size export (ViTTiny16, random weights): the file holds timm's keys, shapes and float32."""
    model = deepvision.models.ViTTiny16(backend="pytorch")
    out = export_timm(save_portable(model, tmp_path / "tiny.safetensors"), tmp_path / "timm.safetensors")
    exported = load_file(out)
    entry = MANIFEST["vit_tiny_patch16_224"]
    assert {k: list(v.shape) for k, v in exported.items()} == entry["tensors"]
    assert all(v.dtype == np.float32 for v in exported.values())
    # and from the model object directly, without a file in between
    direct = load_file(export_timm(model, tmp_path / "direct.safetensors"))
    for key, value in exported.items():
        np.testing.assert_array_equal(direct[key], value, err_msg=key)


def test_avg_pooling_exports_as_timm_fc_norm(tmp_path):
    config = {"patch_size": 8, "project_dim": 32, "num_layers": 1, "num_heads": 4, "mlp_dim": 64,
              "input_shape": [32, 32, 3], "classes": 5, "pooling": "avg"}
    model = deepvision.models.ViT(backend="pytorch", **{**config, "input_shape": (3, 32, 32)})
    out = export_timm(model, tmp_path / "avg.safetensors")
    keys = load_file(out)
    assert "fc_norm.weight" in keys and "norm.weight" not in keys
    name, kwargs = timm_model_args(config_of(model))
    assert kwargs["global_pool"] == "avg" and kwargs["img_size"] == 32 and kwargs["embed_dim"] == 32
    back = import_timm(out)
    assert back.config["pooling"] == "avg" and back.config["num_heads"] == 4
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    tf_model = back.to_model("tensorflow")
    assert testing.max_relative_error(testing.forward(tf_model, x), testing.forward(model, x)) <= 1e-5


def test_headless_and_non_vit_checkpoints(tmp_path):
    headless = deepvision.models.ViT(backend="pytorch", include_top=False, pooling="token", patch_size=8,
                                     project_dim=16, num_layers=1, num_heads=2, mlp_dim=32, input_shape=(3, 16, 16))
    out = load_file(export_timm(headless, tmp_path / "headless.safetensors"))
    assert not any(k.startswith("head.") for k in out)
    assert timm_model_args(config_of(headless))[1]["num_classes"] == 0
    reimported = import_timm(tmp_path / "headless.safetensors")
    assert reimported.config["include_top"] is False and reimported.config["pooling"] == "token"
    block = deepvision.layers.MLP(8, 4, backend="pytorch")
    with pytest.raises(TimmFormatError, match="not a ViT"):
        export_timm(block, tmp_path / "mlp.safetensors")


def test_convert_api_goes_through_the_importer_and_exporter(tmp_path):
    from deepvision.conversion import convert

    dst = convert(FIXTURES / f"{P32}.safetensors", tmp_path / "canonical.safetensors", src_format="timm")
    with interchange.open_checkpoint(dst) as ckpt:
        assert ckpt.metadata["source_backend"] == "timm"
    back = convert(dst, tmp_path / "timm.safetensors", dst_format="timm")
    original = load_file(FIXTURES / f"{P32}.safetensors")
    exported = load_file(back)
    for key, value in original.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
