"""interchange must never import a deep-learning framework or deepvision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys
baseline = set(sys.modules)  # interpreter start-up (site, .pth hooks) is not ours to judge
import json, tempfile, pathlib
import numpy as np
import interchange
from interchange import (Checkpoint, Schema, TensorEntry, read_metadata, register_migration,
                         validate, write_checkpoint, list_schemas)

tmp = pathlib.Path(tempfile.mkdtemp())
path = tmp / "m.safetensors"
arr = np.arange(6, dtype=np.float32).reshape(2, 3)
write_checkpoint(path, [TensorEntry("head.kernel", (2, 3), "float32", lambda: arr)],
                 {"architecture": "Iso", "schema": "Iso@1", "config": {"include_top": True}})
register_migration("Iso", 1, 2, {"head.kernel": "fc.kernel"})
with Checkpoint(path) as ckpt:
    ckpt.get("fc.kernel").sum()
    ckpt.verify()
    schema = Schema.from_checkpoint(ckpt)
    assert validate(ckpt, schema).ok
read_metadata(path)
schema.write(tmp)
assert list_schemas(tmp) == {"Iso": [2]}
try:
    Checkpoint(tmp / "missing.safetensors")
except OSError:
    pass
forbidden = ("tensorflow", "torch", "keras", "jax", "deepvision", "h5py", "tf_keras")
bad = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
# Whitelist too: anything new beyond the standard library and the allowed packages.
# SPEC.md "Dependencies": the standard library, numpy and ml_dtypes only (not safetensors).
allowed = set(sys.stdlib_module_names) | {"numpy", "ml_dtypes", "interchange", "__main__"}
new = {m.split(".")[0] for m in set(sys.modules) - baseline}
other = sorted(m for m in new - allowed if not m.startswith("_sysconfigdata"))
print(json.dumps({"forbidden": bad, "other": other}))
"""


# Not marked slow on purpose: it takes well under a second and guards the package's hard rule.
def test_no_framework_imports():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"forbidden": [], "other": []}
