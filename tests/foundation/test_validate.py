"""``deepvision validate``: one line per problem and a non-zero exit; ``--json``; plain-text help.

Files are written with ``interchange`` from the checked-in MLP schema (no framework needed),
then damaged one way each.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import interchange
from deepvision.cli import build_parser, main
from deepvision.demo import build_parser as demo_parser


def _write(path, *, drop=(), reshape=None, config=None, architecture="MLP"):
    """An MLP checkpoint whose tensors follow MLP@1 (optionally with tensors dropped or reshaped)."""
    schema = interchange.load_schema("MLP", 1)
    config = dict(schema.config if config is None else config)
    shapes = dict(schema.expected_shapes(config))
    shapes.update(reshape or {})
    rng = np.random.default_rng(0)
    tensors = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items() if n not in drop}
    meta = {"architecture": architecture, "schema": f"{architecture}@1", "config": config}
    interchange.write_checkpoint(path, tensors, meta)
    return path


def _validate(capsys, *paths, extra=()):
    code = main(["validate", *map(str, paths), *extra])
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err


def test_a_good_file_passes(tmp_path, capsys):
    path = _write(tmp_path / "mlp.safetensors")
    code, lines, _ = _validate(capsys, path)
    assert code == 0 and lines == [f"{path}: OK (MLP@1, 4 tensors, checksums and schema match)"]


def test_foreign_safetensors_file(tmp_path, capsys):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(path))
    code, lines, _ = _validate(capsys, path)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"{path}: foreign: ") and "deepvision convert" in lines[0]


def test_unknown_architecture(tmp_path, capsys):
    path = _write(tmp_path / "nosuch.safetensors", architecture="NoSuchNet")
    code, lines, _ = _validate(capsys, path)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"{path}: unknown-architecture: ") and "NoSuchNet" in lines[0]


def test_schema_mismatch_lists_every_tensor(tmp_path, capsys):
    path = _write(tmp_path / "bad.safetensors", drop=["fc2.bias"], reshape={"fc1.bias": (31,)})
    code, lines, _ = _validate(capsys, path)
    assert code == 1
    assert lines == [
        f"{path}: schema-mismatch: missing tensor 'fc2.bias' (expected by MLP@1)",
        f"{path}: schema-mismatch: tensor 'fc1.bias' has shape [31], MLP@1 expects [32]",
    ]


def test_a_generic_model_with_another_config_is_not_checked_by_name(tmp_path, capsys):
    # ViT@1 describes the reference ViT (12 layers); an 11-layer ViT names other tensors.
    schema = interchange.load_schema("ViT", 1)
    names = [n for n in schema.expected_shapes(schema.config) if ".11." not in n]
    assert len(names) < len(schema.expected_shapes(schema.config))
    path = tmp_path / "vit11.safetensors"
    interchange.write_checkpoint(path, {n: np.zeros(1, np.float32) for n in names},
                                 {"architecture": "ViT", "schema": "ViT@1", "config": {**schema.config, "num_layers": 11}})
    code, lines, _ = _validate(capsys, path)
    assert code == 0 and len(lines) == 1 and "names not checked" in lines[0]


def test_checksum_failure_names_each_corrupt_tensor(tmp_path, capsys):
    from interchange._format import read_header

    path = _write(tmp_path / "corrupt.safetensors")
    header = read_header(path)
    data = bytearray(path.read_bytes())
    for name in ("fc1.kernel", "fc2.bias"):
        data[header.data_start + header.tensors[name].begin] ^= 0xFF
    path.write_bytes(bytes(data))
    code, lines, _ = _validate(capsys, path)
    assert code == 1 and len(lines) == 2
    assert all(line.startswith(f"{path}: checksum: tensor ") and "CRC-32" in line for line in lines)
    assert sorted(line.split()[3] for line in lines) == ["'fc1.kernel'", "'fc2.bias'"]


def test_newer_format_version(tmp_path, capsys):
    path = _write(tmp_path / "future.safetensors")
    raw = path.read_bytes()
    for old in (b'"format_version":"1"', b'"format_version": "1"'):
        raw = raw.replace(old, old[:-2] + b'2"')
    path.write_bytes(raw)
    code, lines, _ = _validate(capsys, path)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"{path}: format-version: ") and "upgrade deepvision-toolkit" in lines[0]


def test_not_a_file_and_not_safetensors(tmp_path, capsys):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    code, lines, _ = _validate(capsys, tmp_path / "missing.safetensors", garbage)
    assert code == 1
    assert [line.split(": ")[1] for line in lines] == ["unreadable", "not-safetensors"]


def test_several_files_and_json(tmp_path, capsys):
    good = _write(tmp_path / "good.safetensors")
    bad = _write(tmp_path / "bad.safetensors", drop=["fc1.bias"])
    code, lines, _ = _validate(capsys, good, bad)
    assert code == 1 and len(lines) == 2 and lines[0].endswith("checksums and schema match)")
    code = main(["validate", "--json", str(good), str(bad)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["ok"] is False
    assert [f["ok"] for f in doc["files"]] == [True, False]
    assert doc["files"][1]["problems"] == [
        {"code": "schema-mismatch", "message": "missing tensor 'fc1.bias' (expected by MLP@1)"}
    ]
    assert doc["files"][0]["schema"] == "MLP@1" and doc["files"][0]["tensors"] == 4
    assert main(["validate", "--json", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_inspect_still_describes_such_files_and_exits_zero(tmp_path, capsys):
    for path in (_write(tmp_path / "nosuch.safetensors", architecture="NoSuchNet"),
                 _write(tmp_path / "bad.safetensors", drop=["fc2.bias"])):
        assert main(["inspect", str(path)]) == 0
        out = capsys.readouterr().out
        assert "unknown architecture" in out or "MISMATCH" in out


def _all_help_texts() -> list[str]:
    parser = build_parser()
    texts = [parser.format_help()]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    texts += [p.format_help() for p in sub.choices.values()]
    return [*texts, demo_parser().format_help()]


@pytest.mark.parametrize("index", range(len(_all_help_texts())))
def test_help_is_plain_text(index):
    text = _all_help_texts()[index]
    assert "``" not in text and ":func:" not in text and ":class:" not in text, text
