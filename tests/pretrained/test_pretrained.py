"""Pretrained weights by one argument, offline: a local HTTP server and a pre-populated hub cache.

No test touches the real network. The files served are made here: a keras.applications-format
EfficientNetV2B0 (``weights=None``, calibrated BatchNorm statistics) and a timm-format ViTTiny16
written by deepvision's timm exporter from a model with random weights.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import deepvision
from deepvision import pretrained, testing

pytestmark = pytest.mark.xdist_group("pretrained")  # one worker builds the served files once
TOL = 1e-4


class _Server:
    """``http.server`` on 127.0.0.1 in a thread, serving one folder and counting GET requests."""

    def __init__(self, root: Path) -> None:
        counts: dict[str, int] = {}

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):  # noqa: N802 (http.server's name)
                counts[self.path] = counts.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.counts = counts
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@functools.cache
def _files(root: str) -> dict:
    """The served files and the logits of the models they were made from."""
    import keras

    from deepvision.models.classification.efficientnetv2 import CALIBRATION_SHRINK

    root = Path(root)
    (root / "efficientnet_v2").mkdir(parents=True)
    app = keras.applications.EfficientNetV2B0(weights=None, classifier_activation=None)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    testing.calibrate_batch_norm(app, pixels, shrink=CALIBRATION_SHRINK)
    keras_file = root / "efficientnet_v2" / "efficientnetv2-b0.h5"  # keras.applications' own file name
    app.save(keras_file)  # a legacy .h5 model file: what keras.applications' load_weights reads
    vit = deepvision.models.ViTTiny16(backend="pytorch")
    testing.randomize_weights(vit, seed=3)
    vit.eval()
    portable = deepvision.save_portable(vit, root / "vit.safetensors")
    timm_file = root / "vit_tiny_timm.safetensors"
    deepvision.convert(portable, timm_file, dst_format="timm")
    vit_x = np.random.default_rng(1).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    return {
        "keras": keras_file, "keras_x": pixels[:1], "keras_logits": np.asarray(app(pixels[:1], training=False)),
        "timm": timm_file, "vit_x": vit_x, "vit_logits": testing.forward(vit, vit_x),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return _files(str(tmp_path_factory.mktemp("served")))


@pytest.fixture
def server(files):
    srv = _Server(files["keras"].parent.parent)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVISION_HOME", str(tmp_path / "home"))
    for var in ("DEEPVISION_OFFLINE", "HF_HUB_OFFLINE", "DEEPVISION_KERAS_WEIGHTS_URL"):
        monkeypatch.delenv(var, raising=False)
    catalogue = {name: {"default": e["default"], "sources": dict(e["sources"])}
                 for name, e in pretrained._CATALOGUE["variants"].items()}
    yield tmp_path / "home"
    pretrained._CATALOGUE["variants"] = catalogue  # sources registered by a test end with it


def _logits(model, x_nhwc):
    return testing.forward(model, x_nhwc)  # channels-last in; transposed for PyTorch


def test_registered_keras_source_loads_in_both_backends_and_second_use_is_offline(files, server):
    deepvision.models.register_pretrained("EfficientNetV2B0", "team:b0", url=f"{server.url}/efficientnet_v2/"
                                          "efficientnetv2-b0.h5", sha256=_sha256(files["keras"]),
                                          format="keras-applications", license="internal")
    pt = deepvision.models.EfficientNetV2B0(weights="team:b0", backend="pytorch")
    assert not pt.training  # a loaded model comes in inference mode
    assert testing.max_relative_error(_logits(pt, files["keras_x"]), files["keras_logits"]) <= TOL
    assert pt.pretrained_cfg["tag"] == "team:b0" and pt.pretrained_cfg["license"] == "internal"
    assert pt.pretrained_cfg["mean"] and pt.pretrained_cfg["input_size"] == [224, 224, 3]
    server.stop()  # the second use, in the other backend, needs neither the network nor keras.applications
    tf = deepvision.models.create_model("EfficientNetV2B0", backend="tensorflow", weights="team:b0")
    assert testing.max_relative_error(_logits(tf, files["keras_x"]), files["keras_logits"]) <= TOL
    assert sum(server.counts.values()) == 1


def test_builtin_keras_tag_through_the_mirror_variable(files, server, monkeypatch):
    # The built-in source with its real file name; its published md5 swapped for our file's.
    source = pretrained.get_source("EfficientNetV2B0", "keras:imagenet")
    assert source.md5 == "21ecbf6da12460d5c40bb2f29ceb2188"  # keras' WEIGHTS_HASHES["b0"][0]
    assert source.resolved_url.startswith("https://storage.googleapis.com/tensorflow/keras-applications/")
    pretrained._CATALOGUE["variants"]["EfficientNetV2B0"]["sources"]["keras:imagenet"] = dataclasses.replace(
        source, md5=_md5(files["keras"]))
    monkeypatch.setenv("DEEPVISION_KERAS_WEIGHTS_URL", server.url + "/")
    pt = deepvision.models.EfficientNetV2B0(weights="imagenet", backend="pytorch")
    assert testing.max_relative_error(_logits(pt, files["keras_x"]), files["keras_logits"]) <= TOL
    assert list(server.counts) == ["/efficientnet_v2/efficientnetv2-b0.h5"]


def _seed_hub_cache(root: Path, repo: str, file: Path) -> None:
    # huggingface_hub's cache layout: refs/main names a snapshot; the snapshot holds the file.
    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "model.safetensors").write_bytes(file.read_bytes())


def test_hub_hosted_timm_weights_from_the_hub_cache(files, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    source = pretrained.get_source("ViTTiny16", "imagenet")
    assert source.tag == "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    _seed_hub_cache(tmp_path / "hub", "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", files["timm"])
    # HF_HUB_OFFLINE blocks only the network: the hub file still has to be converted once.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    tf = deepvision.models.ViTTiny16(weights="imagenet", backend="tensorflow")
    assert testing.max_relative_error(_logits(tf, files["vit_x"]), files["vit_logits"]) <= TOL
    assert tf.pretrained_cfg["interpolation"] == "bicubic" and tf.pretrained_cfg["crop_pct"] == 0.9
    # Another class count: the backbone loads, the head stays fresh, one log line says so.
    with caplog.at_level(logging.INFO, logger="deepvision"):
        ten = deepvision.models.ViTTiny16(weights="imagenet", classes=10, backend="pytorch")
    assert any("without its classifier head" in r.getMessage() for r in caplog.records)
    headless = deepvision.models.ViTTiny16(weights="imagenet", include_top=False, pooling="token", backend="pytorch")
    features = testing.forward(headless, files["vit_x"])
    ten_state = testing.canonical_state(ten)
    tf_state = testing.canonical_state(tf)
    assert all(np.array_equal(ten_state[k], tf_state[k]) for k in tf_state if not k.startswith("head."))
    assert features.shape == (2, 192) and ten_state["head.kernel"].shape == (192, 10)


def test_unknown_tag_and_variants_without_weights(cache):
    with pytest.raises(pretrained.PretrainedError, match=r"Available: imagenet, keras:imagenet, timm:convnext_tiny"):
        deepvision.models.ConvNeXtTiny(weights="keras:in21k", backend="pytorch")
    with pytest.raises(pretrained.PretrainedError, match="ResNet18V2 has no published weights"):
        deepvision.models.ResNet18V2(weights="imagenet", backend="pytorch")
    assert not cache.exists()


def test_no_network_names_the_url_the_mirror_and_the_cache(files, server, cache):
    deepvision.models.register_pretrained("ViTTiny16", "team:vit", url=f"{server.url}/vit_tiny_timm.safetensors",
                                          sha256=_sha256(files["timm"]), format="timm")
    server.stop()
    with pytest.raises(pretrained.PretrainedError) as err:
        deepvision.models.ViTTiny16(weights="team:vit", backend="pytorch")
    text = str(err.value)
    assert f"{server.url}/vit_tiny_timm.safetensors" in text and "deepvision download ViTTiny16" in text
    assert "DEEPVISION_HOME" in text
    assert not list((cache / "pretrained").rglob("*.safetensors"))


def test_offline_mode_never_touches_the_network(files, server, monkeypatch):
    deepvision.models.register_pretrained("ViTTiny16", "team:vit", url=f"{server.url}/vit_tiny_timm.safetensors",
                                          sha256=_sha256(files["timm"]), format="timm")
    monkeypatch.setenv("DEEPVISION_OFFLINE", "1")
    with pytest.raises(pretrained.PretrainedError, match="Offline"):
        deepvision.models.ViTTiny16(weights="team:vit", backend="pytorch")
    assert not server.counts


def test_hash_mismatch_removes_the_file_and_caches_nothing(files, server, cache):
    deepvision.models.register_pretrained("ViTTiny16", "team:bad", url=f"{server.url}/vit_tiny_timm.safetensors",
                                          sha256="0" * 64, format="timm")
    with pytest.raises(pretrained.PretrainedError, match="hash does not match"):
        deepvision.models.ViTTiny16(weights="team:bad", backend="pytorch")
    assert not [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_damaged_cache_entry_is_fetched_again_once(files, server, cache):
    deepvision.models.register_pretrained("ViTTiny16", "team:vit", url=f"{server.url}/vit_tiny_timm.safetensors",
                                          sha256=_sha256(files["timm"]), format="timm")
    path = pretrained.fetch("ViTTiny16", "team:vit")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # a flipped byte inside the last tensor: its crc32 fails
    path.write_bytes(bytes(data))
    (cache / "downloads" / "ViTTiny16" / "vit_tiny_timm.safetensors").unlink()
    model = deepvision.models.ViTTiny16(weights="team:vit", backend="pytorch")
    assert testing.max_relative_error(_logits(model, files["vit_x"]), files["vit_logits"]) <= TOL
    assert server.counts["/vit_tiny_timm.safetensors"] == 2


def test_two_processes_first_use_at_once_download_once(files, server, cache):
    code = (
        "import sys, deepvision\n"
        f"deepvision.models.register_pretrained('ViTTiny16', 'team:vit', url='{server.url}/vit_tiny_timm.safetensors',"
        f" sha256='{_sha256(files['timm'])}', format='timm')\n"
        "print(deepvision.pretrained.fetch('ViTTiny16', 'team:vit', progress=False))\n"
    )
    env = {**os.environ, "DEEPVISION_HOME": str(cache)}
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runs]
    assert all(r.returncode == 0 for r in runs), outputs
    assert outputs[0][0] == outputs[1][0]
    assert server.counts["/vit_tiny_timm.safetensors"] == 1


def test_a_path_loads_any_convertible_file(files):
    model = deepvision.models.ViTTiny16(weights=str(files["timm"]), backend="tensorflow")
    assert testing.max_relative_error(_logits(model, files["vit_x"]), files["vit_logits"]) <= TOL


def test_catalogue_lists_every_source_with_license_and_hashes():
    sources = deepvision.models.list_pretrained("*")
    names = {s.architecture for s in sources}
    assert {"ResNet50V2", "EfficientNetV2L", "ConvNeXtXLarge", "ViTB16"} <= names
    assert not names & {"ResNet18V2", "ResNet34V2"}
    for s in sources:
        assert s.license and s.format in ("keras-applications", "timm")
        assert (s.sha256 or s.md5) if s.format == "keras-applications" else s.url.startswith("hf://timm/")
    assert [s.tag for s in deepvision.models.list_pretrained("ConvNeXtTiny")] == [
        "keras:imagenet", "timm:convnext_tiny.in12k_ft_in1k"]


def test_cli_lists_and_downloads(files, server, cache, capsys):
    from deepvision.cli import main

    assert main(["list-models", "--pretrained", "EfficientNetV2B0"]) == 0
    listed = capsys.readouterr().out
    assert "keras:imagenet" in listed and "timm:tf_efficientnetv2_b0.in1k" in listed and "78.7%" in listed
    pretrained._CATALOGUE["variants"]["ViTTiny16"]["sources"]["imagenet-test"] = pretrained.PretrainedSource(
        "ViTTiny16", "imagenet-test", f"{server.url}/vit_tiny_timm.safetensors", "timm", sha256=_sha256(files["timm"]))
    assert main(["download", "ViTTiny16", "--weights", "imagenet-test"]) == 0
    assert Path(capsys.readouterr().out.strip()) == pretrained.cached_path(
        pretrained.get_source("ViTTiny16", "imagenet-test"))
    assert main(["download", "ResNet18V2"]) == 2
    assert "no published weights" in capsys.readouterr().err
