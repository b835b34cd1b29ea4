"""`import deepvision.evaluation` (and naming its tools) imports no heavy framework."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "torch", "keras", "sklearn", "matplotlib", "tqdm")


def test_import_is_light():
    code = (
        "import sys, deepvision, deepvision.evaluation as ev\n"
        "ev.FeatureAnalyzer, ev.ActivationMaps, ev.write_demo_figures, ev.gradcam_plus_plus\n"
        "import deepvision.evaluation.plotting, deepvision.evaluation.activation_maps_pt\n"
        "import deepvision.evaluation.activation_maps_tf\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert sorted(dir(ev)) == sorted(ev.__all__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
