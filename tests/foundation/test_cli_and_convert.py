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


def test_inspect_lists_tensors_versions_and_preprocessing(portable_file, capsys):
    import interchange

    path, _ = portable_file
    assert main(["inspect", "--tensors", "--json", str(path)]) in (0, 1)  # 1: a test model has no schema
    info = json.loads(capsys.readouterr().out)
    with interchange.open_checkpoint(path) as ckpt:
        expected = [{"name": n, "shape": list(ckpt.shape(n)), "dtype": ckpt.dtype(n)} for n in ckpt.names]
        meta = ckpt.metadata
        assert info["tensor_list"] == expected and info["tensors"] == len(expected)
        assert info["library_version"] == meta["library_version"]
        assert info["framework_versions"] == meta["framework_versions"] and "keras" in info["framework_versions"]
        assert info["preprocessing"] == meta.get("preprocessing")
    main(["inspect", "--tensors", str(path)])
    text = capsys.readouterr().out
    first = expected[0]
    row = next(line for line in text.splitlines() if line.startswith(first["name"] + " "))
    assert row.split()[-1] == first["dtype"] and str(first["shape"][-1]) in row
    assert "library_version" in text and "framework_versions" in text


def test_convert_help_lists_the_formats(capsys):
    from deepvision.conversion import FORMATS

    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    for name in FORMATS:
        assert f"\n  {name} " in text, name  # one line per format in the epilog
    assert "--from FORMAT" in text and "--to FORMAT" in text


def test_to_backend_is_a_top_level_name():
    import deepvision
    import deepvision.portable

    assert deepvision.to_backend is deepvision.portable.to_backend and "to_backend" in dir(deepvision)


def _quiet_env() -> dict:
    import os

    # A user's environment: the suite's conftest turns oneDNN off, which would hide its banner.
    return {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "DEEPVISION_VERBOSE")}


def test_verbose_flag_and_variable_restore_the_frameworks_defaults():
    # Framework-free: what deepvision leaves in the environment before TensorFlow would load.
    code = ("import os, sys; from deepvision.cli import main; main(sys.argv[1:]);"
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), os.environ.get('DEEPVISION_VERBOSE'))")
    run = lambda *argv, **env: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
        env={**_quiet_env(), **env}).stdout.split()[-2:]
    assert run("list-models", "ResNet18V2") == ["2", "None"]
    assert run("--verbose", "list-models", "ResNet18V2") == ["None", "1"]
    assert run("list-models", "ResNet18V2", DEEPVISION_VERBOSE="1") == ["None", "1"]
    assert run("list-models", "ResNet18V2", TF_CPP_MIN_LOG_LEVEL="0") == ["0", "None"]  # the user's own value


def test_cli_and_library_are_quiet_and_keras_files_load_with_plain_keras(tmp_path):
    # A fresh process, as a user runs it: no TF_CPP_MIN_LOG_LEVEL, nothing silenced by the test.
    keras_file = tmp_path / "m.keras"
    build_and_save = (
        "import sys, deepvision, numpy as np;"
        "m = deepvision.models.ResNet18V2(classes=10, input_shape=(32, 32, 3), backend='tensorflow');"
        "m.save(sys.argv[1]); x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32);"
        "np.save(sys.argv[1] + '.x.npy', x); np.save(sys.argv[1] + '.y.npy', np.asarray(m(x)));"
        "deepvision.save_portable(m, sys.argv[1] + '.safetensors')"
    )
    made = subprocess.run([sys.executable, "-c", build_and_save, str(keras_file)], capture_output=True, text=True,
                          timeout=300, env=_quiet_env())
    assert made.returncode == 0, made.stderr[-2000:]
    # The CLI importing TensorFlow (a .keras destination), then plain Keras after one import.
    cli = subprocess.run([sys.executable, "-m", "deepvision", "convert", f"{keras_file}.safetensors",
                          str(tmp_path / "again.keras")], capture_output=True, text=True, timeout=300,
                         env=_quiet_env())
    assert cli.returncode == 0, cli.stderr[-2000:]
    load = ("import sys, keras, numpy as np; import deepvision.keras;"
            "m = keras.models.load_model(sys.argv[1]); x = np.load(sys.argv[1] + '.x.npy');"
            "print('MAXDIFF', float(np.abs(np.asarray(m(x)) - np.load(sys.argv[1] + '.y.npy')).max()))")
    loaded = subprocess.run([sys.executable, "-c", load, str(keras_file)], capture_output=True, text=True,
                            timeout=300, env=_quiet_env())
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert float(loaded.stdout.split("MAXDIFF")[1]) < 1e-6
    # (The loading process imports keras itself before deepvision: its start-up lines are Keras's own.)
    for done in (made, cli):
        for needle in ("cpu_feature_guard", "oneDNN", "absl", "To enable the following instructions"):
            assert needle not in done.stderr, (needle, done.stderr[-2000:])
