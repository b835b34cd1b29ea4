"""The wheel works when installed: schemas ship inside it, and the CLI and both backends run from it.

Builds the wheel from a copy of the package sources, installs it without dependencies
into a fresh virtual environment outside the source tree, and runs it there. The pinned
dependencies come from this test's own environment through PYTHONPATH, which does not
process ``.pth`` files, so the editable install's import hook stays out and every import
of ``deepvision`` or ``interchange`` must come from the installed wheel. No network is used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "deepvision", "interchange", "schemas")

# Runs inside the installed environment, in one process (one import of each framework): writes a
# portable file with the installed copy (PyTorch layout: input_shape is C,H,W), loads it in both
# backends, and says where everything came from.
SAVE_LOAD_LOCATE = """
import json, sys
import numpy as np
import deepvision, interchange
from interchange.schema import default_schemas_dir
from deepvision.registry import build
deepvision.save_portable(build("ResNet18V2", "pytorch", classes=10, input_shape=(3, 32, 32)), sys.argv[1])
x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype(np.float32)
tf_model = deepvision.load_portable(sys.argv[1], backend="tensorflow")
pt_model = deepvision.load_portable(sys.argv[1], backend="pytorch").eval()
report = deepvision.check_parity(tf_model, pt_model, inputs=x, rtol=1e-4)
print(json.dumps({"deepvision": deepvision.__file__, "interchange": interchange.__file__,
                  "schemas": str(default_schemas_dir()), "schema_count": len(interchange.list_schemas()),
                  "parity": report.ok}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh wheel install: (python, bin folder, subprocess env, work folder, number of shipped schemas)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    dist = base / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(dist), str(src)],
                   check=True, capture_output=True, timeout=180)
    (wheel,) = dist.glob("deepvision_toolkit-*.whl")
    shipped = [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("interchange/schemas/")]
    checked_in = sorted(p.name for p in (src / "schemas").glob("*.json"))
    assert sorted(Path(n).name for n in shipped if n.endswith(".json")) == checked_in

    env_dir = base / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=180)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "DEEPVISION_SCHEMAS_DIR")}
    # The pinned dependencies of this environment, without its .pth files (so without the editable hook).
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    env.update(PYTHONPATH=os.pathsep.join(sorted(deps)), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    work = base / "work"
    work.mkdir()
    return python, env_dir / "bin", env, work, len({p.name.split("@")[0] for p in (src / "schemas").glob("*.json")})


def _run(argv, env, cwd, timeout=240):
    result = subprocess.run([str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv[:3]} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-3000:]}"
    return result.stdout


def test_installed_wheel_inspects_converts_and_loads_in_both_backends(installed):
    python, bin_dir, env, work, architectures = installed
    portable = work / "resnet18v2.safetensors"

    where = json.loads(_run([python, "-c", SAVE_LOAD_LOCATE, portable], env, work).strip().splitlines()[-1])
    site = Path(sysconfig.get_paths(vars={"base": str(python.parent.parent)})["purelib"])
    for key in ("deepvision", "interchange", "schemas"):
        assert Path(where[key]).resolve().is_relative_to(site.resolve()), (key, where[key])
        assert not Path(where[key]).resolve().is_relative_to(ROOT), (key, where[key])
    assert where["schema_count"] == architectures
    assert where["parity"], "load_portable gave different outputs in the two backends"

    listing = _run([bin_dir / "deepvision", "inspect", portable], env, work)
    assert "ResNet18V2@1: OK" in listing

    _run([bin_dir / "deepvision", "convert", portable, work / "resnet18v2.pt"], env, work)
    assert (work / "resnet18v2.pt").stat().st_size > 40_000_000  # 11.2 M float32 parameters
