"""Schema files, lookup and validation."""

from __future__ import annotations

import importlib.resources
import json
import os
from pathlib import Path

import numpy as np
import pytest

from interchange import (
    Checkpoint,
    Schema,
    SchemaFileError,
    SchemaMismatchError,
    TensorSpec,
    UnknownArchitectureError,
    list_schemas,
    load_schema,
    register_migration,
    resolve_schemas_dir,
    unregister_migration,
    validate,
    validate_checkpoint,
    write_checkpoint,
)
from interchange.evolution import check_evolution
from interchange.schema import default_schemas_dir, infer_role


def _tiny_schema(version: int = 1) -> Schema:
    return Schema(
        "TinyNet",
        version,
        [
            TensorSpec("stem.conv.kernel", (3, 3, 3, 8), "weight"),
            TensorSpec("stem.bn.gamma", (8,), "norm"),
            TensorSpec("stem.bn.beta", (8,), "norm"),
            TensorSpec("stem.bn.moving_mean", (8,), "statistic"),
            TensorSpec("stem.bn.moving_variance", (8,), "statistic"),
            TensorSpec("blocks.0.attn.qkv.kernel", (8, 24), "weight"),
            TensorSpec("blocks.0.attn.qkv.bias", (24,), "bias"),
            TensorSpec("head.kernel", (8, None), "weight", "include_top=false"),
            TensorSpec("head.bias", (None,), "bias", "include_top=false"),
            TensorSpec("step", (), "parameter"),
        ],
        config={"include_top": True, "input_shape": (32, 32, 3), "num_classes": 10},
    )


@pytest.fixture
def schemas_dir(tmp_path):
    directory = tmp_path / "schemas"
    directory.mkdir()
    _tiny_schema(1).write(directory)
    _tiny_schema(2).write(directory)
    Schema("ResNet50V2", 1, [TensorSpec("a", (1,))]).write(directory)
    (directory / "README.md").write_text("not a schema")
    return directory


def test_json_is_deterministic_and_round_trips(tmp_path):
    schema = _tiny_schema()
    text = schema.to_json()
    assert text.endswith("}\n")
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert text == json.dumps(data, sort_keys=True, indent=1) + "\n"
    again = Schema.from_json(text)
    assert again == schema and again.to_json() == text
    path = schema.write(tmp_path / "x.json")
    assert Schema.read(path) == schema
    assert data["tensors"][7] == {"name": "head.kernel", "shape": [8, None], "role": "weight", "optional_when": "include_top=false"}


def test_list_and_load(schemas_dir):
    assert list_schemas(schemas_dir) == {"ResNet50V2": [1], "TinyNet": [1, 2]}
    assert load_schema("TinyNet", schemas_dir=schemas_dir).version == 2
    one = load_schema("TinyNet", 1, schemas_dir)
    assert one.id == "TinyNet@1" and one == _tiny_schema(1)


def test_unknown_architecture_lists_close_matches_first(schemas_dir):
    with pytest.raises(UnknownArchitectureError) as info:
        load_schema("resnet50v2", schemas_dir=schemas_dir)
    assert "Known architectures: ResNet50V2, TinyNet" in str(info.value)
    with pytest.raises(UnknownArchitectureError) as info:
        load_schema("tinynett", schemas_dir=schemas_dir)
    assert "Known architectures: TinyNet, ResNet50V2" in str(info.value)
    assert "DEEPVISION_SCHEMAS_DIR" in str(info.value)
    with pytest.raises(UnknownArchitectureError, match=r"available: \[1, 2\]"):
        load_schema("TinyNet", 7, schemas_dir)


def test_schemas_dir_resolution(schemas_dir, monkeypatch):
    monkeypatch.delenv("DEEPVISION_SCHEMAS_DIR", raising=False)
    assert resolve_schemas_dir() == default_schemas_dir()
    assert default_schemas_dir().name == "schemas"
    # The schemas are the data package interchange.schemas; in a checkout (editable install)
    # that package is the top-level schemas/ folder (test_wheel covers the installed wheel).
    assert default_schemas_dir() == Path(os.fspath(importlib.resources.files("interchange.schemas")))
    assert (default_schemas_dir().parent / "interchange" / "__init__.py").exists()
    assert (default_schemas_dir() / "ResNet50V2@1.json").is_file()

    monkeypatch.setenv("DEEPVISION_SCHEMAS_DIR", str(schemas_dir))
    assert resolve_schemas_dir() == schemas_dir
    assert load_schema("ResNet50V2").architecture == "ResNet50V2"
    assert resolve_schemas_dir(schemas_dir / "elsewhere") == schemas_dir / "elsewhere"
    assert list_schemas(schemas_dir / "missing") == {}


def test_bare_checkout_without_install_falls_back_to_the_folder(monkeypatch):
    import interchange.schema as schema_module

    def not_installed(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(schema_module.importlib.resources, "files", not_installed)
    assert schema_module.default_schemas_dir() == Path(schema_module.__file__).resolve().parent.parent / "schemas"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"architecture": "TinyNet", "version": 1}', "missing key 'tensors'"),
        ('{"architecture": "TinyNet", "version": 1, "tensors": [{"name": "a", "shape": [-1]}]}', "invalid shape"),
        ('{"architecture": "TinyNet", "version": 1, "tensors": [{"name": "a", "shape": [1], "role": "x"}]}', "unknown role"),
        ('{"architecture": "TinyNet", "version": 1, "tensors": [{"name": "a", "shape": [1], "optional_when": "??"}]}', "key=value"),
        ('{"architecture": "TinyNet", "version": 1, "tensors": [{"name": "a", "shape": [1]}, {"name": "a", "shape": [1]}]}', "more than once"),
        ('{"architecture": "Other", "version": 1, "tensors": []}', "does not match its file name"),
    ],
)
def test_malformed_schema_files(tmp_path, content, match):
    (tmp_path / "TinyNet@1.json").write_text(content)
    with pytest.raises(SchemaFileError, match=match):
        load_schema("TinyNet", schemas_dir=tmp_path)


def test_validate_reports_everything_at_once(tensors):
    actual = {name: arr.shape for name, arr in tensors.items()}
    del actual["stem.bn.gamma"], actual["step"]
    actual["stem.conv.kernel"] = (3, 3, 3, 16)
    actual["blocks.0.attn.qkv.kernel"] = (24, 8)
    actual["blocks.0.attn.proj.kernel"] = (8, 8)
    report = validate(actual, _tiny_schema())
    assert not report.ok
    assert report.missing == ["stem.bn.gamma", "step"]
    assert report.unexpected == ["blocks.0.attn.proj.kernel"]
    assert report.mismatched == [
        ("stem.conv.kernel", (3, 3, 3, 8), (3, 3, 3, 16)),
        ("blocks.0.attn.qkv.kernel", (8, 24), (24, 8)),
    ]
    text = str(report)
    assert "5 problem(s)" in text
    for name in ("stem.bn.gamma", "step", "blocks.0.attn.proj.kernel", "stem.conv.kernel"):
        assert name in text
    assert "expected (8, 24), got (24, 8)" in text
    with pytest.raises(SchemaMismatchError) as info:
        validate(actual, _tiny_schema(), raise_on_error=True)
    assert info.value.report.missing == report.missing
    assert "stem.bn.gamma" in str(info.value) and "blocks.0.attn.proj.kernel" in str(info.value)


def test_null_dims_and_plain_mappings():
    assert validate({"head.kernel": (8, 1000)}, {"head.kernel": (8, None)}).ok
    assert validate({"x": np.zeros((2, 3))}, {"x": None}).ok
    report = validate({"x": (2, 3)}, {"x": (2, None, None)})
    assert report.mismatched == [("x", (2, None, None), (2, 3))]
    assert "expected (2, ?, ?)" in str(report)
    assert "all 1 expected" in str(validate({"x": (1,)}, {"x": (1,)}))


def test_optional_when_include_top(tensors):
    schema = _tiny_schema()
    full = {n: a.shape for n, a in tensors.items()}
    headless = {n: s for n, s in full.items() if not n.startswith("head.")}
    assert validate(full, schema).ok  # schema default: include_top true
    assert validate(full, schema, config={"include_top": True}).ok
    assert validate(headless, schema, config={"include_top": False}).ok
    report = validate(headless, schema, config={"include_top": True})
    assert report.missing == ["head.kernel", "head.bias"]
    # With include_top false the head does not exist, so a present head is unexpected.
    report = validate(full, schema, config={"include_top": False})
    assert report.unexpected == ["head.kernel", "head.bias"] and not report.missing


def test_condition_language():
    spec = [TensorSpec("a", (1,), optional_when="pooling!=avg"), TensorSpec("b", (1,), optional_when="pooling=avg")]
    schema = Schema("P", 1, spec, {"pooling": "avg"})
    assert list(schema.expected_shapes()) == ["a"]
    assert list(schema.expected_shapes({"pooling": "max"})) == ["b"]
    assert list(Schema("P", 1, spec).expected_shapes()) == ["a", "b"]  # unknown key: kept


def test_validate_checkpoint_uses_its_config(tmp_path, schemas_dir, tensors, sample_meta):
    headless = {n: a for n, a in tensors.items() if not n.startswith("head.")}
    path = tmp_path / "headless.safetensors"
    sample_meta["config"]["include_top"] = False
    write_checkpoint(path, headless, sample_meta)
    ckpt = Checkpoint(path)
    assert validate_checkpoint(ckpt, schemas_dir=schemas_dir).ok  # TinyNet@1, include_top false
    assert validate(ckpt, _tiny_schema()).ok
    assert validate(ckpt, _tiny_schema(), config={"include_top": True}).missing == ["head.kernel", "head.bias"]


def test_schema_from_checkpoint_regenerates_identically(ckpt_path, tmp_path):
    ckpt = Checkpoint(ckpt_path)
    schema = Schema.from_checkpoint(ckpt, optional_when={"head.kernel": "include_top=false", "head.bias": "include_top=false"})
    assert schema.id == "TinyNet@1"
    assert schema.config == ckpt.config
    assert validate(ckpt, schema).ok
    written = schema.write(tmp_path)
    assert written.name == "TinyNet@1.json"
    regenerated = Schema.from_checkpoint(ckpt, optional_when={"head.kernel": "include_top=false", "head.bias": "include_top=false"})
    assert written.read_text() == regenerated.to_json()
    roles = {t.name: t.role for t in schema.tensors}
    assert roles["stem.bn.moving_mean"] == "statistic" and roles["head.bias"] == "bias"


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("stem.conv.kernel", "weight"),
        ("blocks.1.dw.depthwise_kernel", "weight"),
        ("head.bias", "bias"),
        ("norm.gamma", "norm"),
        ("bn.moving_variance", "statistic"),
        ("cls_token", "embedding"),
        ("pos_embed", "embedding"),
        ("blocks.0.ls1", "parameter"),
    ],
)
def test_infer_role(name, role):
    assert infer_role(name) == role


# --------------------------------------------------------------------------- evolution (SPEC sections 4, 5)


def _renamed(schema: Schema, old: str, new: str, version: int | None = None) -> Schema:
    tensors = [TensorSpec(new, t.shape, t.role, t.optional_when) if t.name == old else t for t in schema.tensors]
    return Schema(schema.architecture, schema.version if version is None else version, tensors, schema.config)


@pytest.fixture
def evolution_dir(tmp_path):
    """A schemas folder holding TinyNet@1 only; migrations registered by a test are removed after it."""
    _tiny_schema(1).write(tmp_path)
    yield tmp_path
    unregister_migration("TinyNet", 1)


def test_unchanged_schema_passes_and_config_changes_only_need_regenerating(evolution_dir):
    assert check_evolution(_tiny_schema(1), evolution_dir).ok
    changed_config = _tiny_schema(1)
    changed_config.config["features_only"] = False
    report = check_evolution(changed_config, evolution_dir)
    assert report.stale and not report.problems
    assert "generate_schemas.py" in str(report)


def test_a_rename_without_a_version_bump_fails(evolution_dir):
    """Regenerating the file is not a fix: checkpoints written as TinyNet@1 name the old tensors."""
    report = check_evolution(_renamed(_tiny_schema(1), "stem.conv.kernel", "stem_conv.kernel"), evolution_dir)
    assert not report.ok and not report.stale
    (problem,) = report.problems
    assert "gone: stem.conv.kernel" in problem and "new: stem_conv.kernel" in problem
    assert "schema_version to 2" in problem and "register a migration TinyNet v1->v2" in problem
    reshaped = _tiny_schema(1)
    reshaped.tensors[0] = TensorSpec("stem.conv.kernel", (3, 3, 3, 16), "weight")
    (problem,) = check_evolution(reshaped, evolution_dir).problems
    assert "changed: stem.conv.kernel (3, 3, 3, 8) -> (3, 3, 3, 16)" in problem


def test_a_bump_needs_the_old_file_and_a_migration_that_produces_the_new_names(evolution_dir):
    bumped = _renamed(_tiny_schema(1), "stem.conv.kernel", "stem_conv.kernel", version=2)
    bumped.write(evolution_dir)
    (problem,) = check_evolution(bumped, evolution_dir).problems
    assert "no registered migration leads from TinyNet v1 to v2" in problem
    register_migration("TinyNet", 1, 2, {"stem.bn.gamma": "stem.bn.weight"})  # the wrong tensor
    (problem,) = check_evolution(bumped, evolution_dir).problems
    assert "do not produce the v2 tensors" in problem and "stem_conv.kernel" in problem
    unregister_migration("TinyNet", 1)
    register_migration("TinyNet", 1, 2, {"stem.conv.kernel": "stem_conv.kernel"})
    assert check_evolution(bumped, evolution_dir).ok
    (evolution_dir / "TinyNet@1.json").unlink()
    (problem,) = check_evolution(bumped, evolution_dir).problems
    assert "TinyNet@1.json is missing" in problem


def test_a_schema_file_newer_than_the_architecture_fails(evolution_dir):
    _tiny_schema(2).write(evolution_dir)
    report = check_evolution(_tiny_schema(1), evolution_dir)
    assert any("newer than the architecture's schema_version 1" in p for p in report.problems)
