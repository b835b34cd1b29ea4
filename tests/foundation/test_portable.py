"""save_portable / load_portable / check_parity on a small composite model, both directions."""

from __future__ import annotations

import numpy as np
import pytest

import interchange
from deepvision import testing
from deepvision.adapters import count_params, slots_by_name
from deepvision.parity import check_parity
from deepvision.portable import PortableLoadError, load_portable, save_portable, to_backend
from deepvision.registry import build
from tests.foundation import composite  # noqa: F401  (registers TestComposite)

X = np.random.default_rng(0).normal(size=(2, 17, 23, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tf_model():
    model = build("TestComposite", "tensorflow", input_shape=(17, 23, 3))
    testing.randomize_weights(model, seed=3)
    return model


@pytest.fixture(scope="module")
def pt_model(tf_model):
    return to_backend(tf_model, "pytorch")


def test_canonical_names_agree_and_cover_every_weight(tf_model, pt_model):
    tf_slots, pt_slots = slots_by_name(tf_model), slots_by_name(pt_model)
    assert {n: s.shape for n, s in tf_slots.items()} == {n: s.shape for n, s in pt_slots.items()}
    assert "blocks.1.kernel" in tf_slots and "depthwise.depthwise_kernel" in tf_slots
    assert tf_slots["stem.kernel"].shape == (3, 3, 3, 8)  # (kh, kw, in, out)
    assert count_params(tf_model)["total"] == tf_model.count_params() == pt_model.count_params()


@pytest.mark.parametrize("source", ["tensorflow", "pytorch"])
def test_save_and_load_across_backends(tf_model, pt_model, tmp_path, source):
    model = tf_model if source == "tensorflow" else pt_model
    path = save_portable(model, tmp_path / "m.safetensors")
    target = "pytorch" if source == "tensorflow" else "tensorflow"
    loaded = load_portable(path, backend=target)
    report = check_parity(model, loaded, inputs=X)
    assert report.ok and report.max_rel <= 1e-5, str(report)
    with interchange.open_checkpoint(path) as ckpt:
        assert ckpt.architecture == "TestComposite"
        assert ckpt.metadata["source_backend"] == source
        assert ckpt.config["input_shape"] == [17, 23, 3]  # channels-last whatever the source
        assert ckpt.metadata["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
        assert ckpt.metadata["framework_versions"]["numpy"] == np.__version__


def test_check_parity_builds_the_counterpart(tf_model):
    report = check_parity(tf_model, inputs=X)
    assert report.ok, str(report)
    assert "PASS" in str(report) and "max rel err" in str(report)


def test_check_parity_fails_on_different_weights(tf_model, pt_model):
    other = to_backend(tf_model, "pytorch")
    testing.randomize_weights(other, seed=99)
    report = check_parity(tf_model, other, inputs=X)
    assert not report.ok and "FAIL" in str(report)


def test_strict_load_reports_everything_and_suggests_exclude(tf_model, tmp_path):
    path = save_portable(tf_model, tmp_path / "m.safetensors")
    other = build("TestComposite", "pytorch", classes=7, input_shape=(3, 17, 23))
    with pytest.raises(PortableLoadError, match=r"exclude=\['head\.\*'\]") as info:
        load_portable(path, model=other)
    assert "head.kernel" in str(info.value) and "head.bias" in str(info.value)
    model, report = load_portable(path, model=other, strict=False)
    assert {m[0] for m in report.mismatched} == {"head.kernel", "head.bias"}
    loaded = load_portable(path, model=other, exclude=["head.*"])
    np.testing.assert_array_equal(
        slots_by_name(loaded)["stem.kernel"].read(), slots_by_name(tf_model)["stem.kernel"].read()
    )


def test_missing_and_unexpected_tensors_in_one_report(tf_model, tmp_path):
    path = tmp_path / "partial.safetensors"
    slots = [s for s in slots_by_name(tf_model).values() if s.name != "final_norm.gamma"]
    from deepvision.portable import portable_metadata, write_slots

    write_slots(path, slots, portable_metadata(tf_model))
    model, report = load_portable(path, backend="pytorch", strict=False)
    assert report.missing == ["final_norm.gamma"] and not report.unexpected
    with pytest.raises(PortableLoadError, match="final_norm.gamma"):
        load_portable(path, backend="pytorch")


def test_failed_save_leaves_the_old_file_intact(tf_model, tmp_path, monkeypatch):
    path = save_portable(tf_model, tmp_path / "m.safetensors")
    before = path.read_bytes()
    import deepvision.portable as portable

    real = portable.iter_slots

    def exploding(obj):
        for i, slot in enumerate(real(obj)):
            if i == 3:
                def boom():
                    raise RuntimeError("disk full")
                slot = type(slot)(slot.name, slot.shape, slot.dtype, slot.role, slot.trainable, boom, slot.write)
            yield slot

    monkeypatch.setattr(portable, "iter_slots", exploding)
    with pytest.raises(RuntimeError, match="disk full"):
        save_portable(tf_model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_dtype_option(tf_model, tmp_path, dtype):
    path = save_portable(tf_model, tmp_path / "m.safetensors", dtype=dtype)
    with interchange.open_checkpoint(path) as ckpt:
        assert {ckpt.dtype(n) for n in ckpt.names} == {dtype}
        assert ckpt.metadata["dtype"] == dtype
    loaded = load_portable(path, backend="pytorch")
    assert check_parity(tf_model, loaded, inputs=X, rtol=2e-2).ok


def test_unbuilt_keras_block_and_wrong_backend_are_explained():
    with pytest.raises(ValueError, match="backend"):
        build("TestComposite", "jax")
