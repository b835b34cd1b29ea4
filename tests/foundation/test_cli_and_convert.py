"""The command line and deepvision.convert: formats, clear one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from deepvision import testing
from deepvision.cli import main
from deepvision.conversion import ConversionError, convert
from deepvision.parity import check_parity
from deepvision.portable import load_portable, save_portable
from deepvision.registry import build
from tests.foundation import composite  # noqa: F401

X = np.random.default_rng(1).normal(size=(2, 17, 23, 3)).astype(np.float32)
CONFIG = json.dumps({"input_shape": [17, 23, 3], "classes": 5})


@pytest.fixture(scope="module")
def portable_file(tmp_path_factory):
    model = build("TestComposite", "tensorflow")
    testing.randomize_weights(model, seed=4)
    path = save_portable(model, tmp_path_factory.mktemp("cli") / "m.safetensors")
    return path, model


def test_inspect_prints_metadata_without_frameworks(portable_file):
    path, model = portable_file
    code = (
        "import sys; from deepvision.cli import main; rc = main(['inspect', sys.argv[1], '--json']);"
        "print('LOADED', sorted(m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules)); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    # TestComposite has no checked-in schema (it is a test model): inspect says so and exits 1.
    info = json.loads(result.stdout.split("LOADED")[0])
    assert info["architecture"] == "TestComposite" and info["parameters"] == model.count_params()
    assert "LOADED []" in result.stdout


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".weights.h5", ".keras", ".h5"])
def test_convert_round_trips_through_every_framework_format(portable_file, tmp_path, suffix):
    path, model = portable_file
    out = convert(path, tmp_path / f"m{suffix}")
    back = convert(out, tmp_path / "back.safetensors", architecture="TestComposite", config=CONFIG)
    reloaded = load_portable(back, backend="pytorch")
    assert check_parity(model, reloaded, inputs=X, rtol=1e-5).ok


def test_convert_dtype_without_a_framework(portable_file, tmp_path):
    path, _ = portable_file
    out = convert(path, tmp_path / "half.safetensors", dtype="float16")
    import interchange

    with interchange.open_checkpoint(out) as ckpt:
        assert {ckpt.dtype(n) for n in ckpt.names} == {"float16"}


def test_state_dict_without_architecture_is_explained(portable_file, tmp_path):
    path, _ = portable_file
    out = convert(path, tmp_path / "m.pt")
    with pytest.raises(ConversionError, match="--architecture"):
        convert(out, tmp_path / "x.safetensors")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["inspect", "missing.safetensors"], "error"),
        (["convert", "missing.pt", "out.safetensors"], "does not exist"),
        (["convert", "{garbage}", "out.safetensors", "--from", "nonsense"], "Unknown format"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.startswith("deepvision: error:") and needle in err and err.count("\n") == 1


def test_corrupt_file_is_reported(portable_file, tmp_path, capsys):
    path, _ = portable_file
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    assert main(["inspect", str(bad)]) == 2
    assert "corrupt" in capsys.readouterr().err.lower()
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    assert main(["inspect", str(garbage)]) == 2
    assert "not a safetensors file" in capsys.readouterr().err


def test_verify_runs_both_backends(portable_file, capsys):
    path, _ = portable_file
    assert main(["verify", str(path)]) == 0
    assert "overall: PASS" in capsys.readouterr().out


def test_list_models_and_blocks(capsys):
    assert main(["list-models", "--blocks", "Identity"]) == 0
    assert "Identity" in capsys.readouterr().out


def test_pickled_objects_are_refused(tmp_path):
    import torch

    bad = tmp_path / "evil.pt"
    torch.save({"weights": object()}, bad)
    with pytest.raises(ConversionError, match="weights_only=True"):
        convert(bad, tmp_path / "x.safetensors", architecture="TestComposite")


def test_lightning_checkpoint_converts_with_the_plain_command(portable_file, tmp_path):
    import torch

    path, model = portable_file
    ckpt = convert(path, tmp_path / "m.ckpt")
    record = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert record["deepvision"]["architecture"] == "TestComposite"
    assert record["deepvision"]["config"]["input_shape"] == [17, 23, 3]
    assert main(["convert", str(ckpt), str(tmp_path / "back.safetensors")]) == 0
    assert check_parity(model, load_portable(tmp_path / "back.safetensors", backend="tensorflow"), inputs=X,
                        rtol=1e-5).ok


@pytest.mark.parametrize("suffix", [".pt", ".ckpt"])
def test_wrong_class_count_is_the_librarys_error_naming_the_fix(portable_file, tmp_path, suffix):
    path, _ = portable_file
    out = convert(path, tmp_path / f"m{suffix}")  # 5 classes
    with pytest.raises(ConversionError) as info:
        convert(out, tmp_path / "x.safetensors", architecture="TestComposite",
                config={"input_shape": [17, 23, 3], "classes": 3})
    message = str(info.value)
    assert "shape mismatch head.weight: model (3, 8), file (5, 8)" in message
    assert "--config '{\"classes\": 5}'" in message and "exclude=['head.*']" in message
    assert not (tmp_path / "x.safetensors").exists()
