"""Backend names, lazy imports and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from deepvision.backend import BackendError, resolve_backend

HEAVY = ("tensorflow", "torch", "keras", "jax", "sklearn", "matplotlib")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize("name,expected", [("tensorflow", "tensorflow"), ("tf", "tensorflow"), ("keras", "tensorflow"),
                                           ("pytorch", "pytorch"), ("torch", "pytorch"), ("PyTorch", "pytorch")])
def test_backend_aliases(name, expected):
    assert resolve_backend(name) == expected


@pytest.mark.parametrize("bad", ["jax", "", "tensorflw", 3])
def test_unknown_backend_lists_valid_names(bad):
    with pytest.raises(ValueError, match="Valid names: 'tensorflow', 'tf', 'keras', 'pytorch', 'torch'"):
        resolve_backend(bad)


def test_missing_backend_is_explained(monkeypatch):
    monkeypatch.delenv("DEEPVISION_BACKEND", raising=False)
    with pytest.raises(BackendError, match="No backend given"):
        resolve_backend(None)


def test_import_deepvision_imports_no_framework():
    code = (
        "import sys, json, deepvision, deepvision.models, deepvision.layers, deepvision.portable;"
        "deepvision.models.list_models(); deepvision.save_portable; deepvision.check_parity;"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_interchange_imports_no_framework_or_deepvision():
    result = _python("import sys, json, interchange; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert not loaded & {*HEAVY, "deepvision"}


def test_uninstalled_framework_names_the_extra():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import deepvision\n"
        "try:\n    deepvision.layers.Identity(backend='pytorch')\n"
        "except ImportError as err:\n    print(type(err).__name__, err)\n"
    )
    result = _python(code)
    assert "BackendNotInstalledError" in result.stdout and "deepvision-toolkit[pytorch]" in result.stdout, result


def test_keras_on_another_backend_is_refused():
    code = (
        "import deepvision\n"
        "try:\n    deepvision.backend.require_tensorflow()\n"
        "except ValueError as err:\n    print(type(err).__name__, err)\n"
    )
    result = _python(code, KERAS_BACKEND="torch")
    assert "Keras uses 'torch'" in result.stdout, result.stdout + result.stderr


def test_every_listed_block_and_family_exists():
    import importlib

    import deepvision

    for name, module in deepvision.layers.BLOCKS.items():
        assert getattr(importlib.import_module(f"deepvision.layers.{module}"), name) is getattr(deepvision.layers, name)
    # Every listed family registers models, and every registered model comes from a listed family.
    families = {deepvision.registry.get_architecture(n).pytorch.partition(":")[0].rpartition(".")[0]
                for n in deepvision.models.list_models()
                if deepvision.registry.get_architecture(n).family != "tests"}  # tests register their own
    assert families == set(deepvision.models.FAMILIES)


def test_top_level_functions_survive_submodule_imports():
    import deepvision
    import deepvision.conversion
    import deepvision.parity
    import deepvision.portable  # noqa: F401

    assert callable(deepvision.convert) and callable(deepvision.check_parity)
    assert callable(deepvision.save_portable) and callable(deepvision.load_portable)
