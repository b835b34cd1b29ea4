"""The main job, ``deepvision demo``, end to end on a slice of the digits."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("keras")
pytest.importorskip("sklearn")


def test_demo_quick_run_and_exit_code(tmp_path, monkeypatch, capsys):
    import deepvision.parity
    from deepvision import demo

    # The real parity report is recorded; the demo gets a failing copy, so one run shows both
    # that the hand-off is exact and that a parity failure gives exit code 1.
    seen = []
    real = deepvision.parity.check_parity

    def failing_check(*args, **kwargs):
        report = real(*args, **kwargs)
        seen.append(report)
        return real(*args, **{**kwargs, "rtol": -1.0})

    monkeypatch.setattr(deepvision.parity, "check_parity", failing_check)
    code = demo.main(["--limit", "48", "--epochs", "1", "--batch-size", "16", "--image-size", "16",
                      "--backend-order", "pytorch,tensorflow", "--out", str(tmp_path)])
    output = capsys.readouterr().out
    assert seen and seen[0].ok and seen[0].max_rel < 1e-4
    assert code == 1 and "Parity FAIL" in output
    assert "at hand-off" in output and "after fine-tuning" in output
    names = {p.name for p in tmp_path.iterdir()}
    assert {"ResNet18V2_pytorch.safetensors", "ResNet18V2_tensorflow_finetuned.safetensors",
            "training_curves.png", "feature_tsne.png", "gradcam.png"} <= names


def test_demo_rejects_bad_backend_order(tmp_path):
    from deepvision import demo

    with pytest.raises(SystemExit):
        demo.main(["--backend-order", "pytorch,pytorch", "--out", str(tmp_path)])
