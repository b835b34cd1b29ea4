"""Every code block of README.md, docs/*.md and interchange/SPEC.md runs (or is checked) here.

The blocks of one file run in order in one namespace, as a reader would paste them, in a fresh
folder. What a reader supplies themselves (``train_dataloader``, ``images``, ...) comes from a
small prelude. The few changes the test makes to the text are listed in ``EDITS`` with their
reason: downloads replaced by local files, 224x224 inputs shrunk to 32x32 (same models, quick),
hardware this machine lacks replaced by one CPU. Each edit must still match its file, so an
edited doc cannot silently bypass a stale edit. ``console`` blocks run their ``deepvision``
lines through the CLI; the ``json`` block of SPEC.md is checked against the real schema file.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import deepvision  # before any framework, as the docs' blocks do (it keeps TensorFlow's start-up quiet)

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "interchange" / "SPEC.md"]
HANDLED = {"python", "console", "json", "text"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*$")

# (old, new, why) per file: applied to that file's code blocks before they run.
SMALL = "inputs 224x224 shrunk to 32x32: the same full-size models, quick on a CPU"
EDITS: dict[str, list[tuple[str, str, str]]] = {
    "README.md": [
        ("ViTB16", "ViTTiny16", "the same code on the smallest ViT: ViT-B/16 takes minutes on a loaded CPU"),
        ("(224, 224, 3)", "(32, 32, 3)", SMALL),
        ("(3, 224, 224)", "(3, 32, 32)", SMALL),
        ('weights="imagenet"', "weights=None", "no download: keras.applications' architecture without ImageNet weights"),
        ("tf.ones([1, 224, 224, 3])", "tf.ones([1, 32, 32, 3])", SMALL),
    ],
    "TRAINING.md": [
        ("(224, 224, 3)", "(32, 32, 3)", SMALL),
        ("(3, 224, 224)", "(3, 32, 32)", SMALL),
        ('accelerator="gpu", devices=8, num_nodes=2, strategy="ddp", precision="bf16-mixed"',
         'accelerator="cpu", devices=1, num_nodes=1, strategy="ddp", precision="bf16-mixed", max_epochs=1',
         "no GPUs here: the same DDP strategy and precision on one CPU process, one epoch (not 1000)"),
        ("train_set.batch(global_batch_size)", "train_set.unbatch().batch(global_batch_size)",
         "the prelude's train_set is already batched for the earlier fit examples"),
    ],
}
# Blocks that need hardware this machine does not have: compiled (syntax), not run.
NEEDS_HARDWARE = {"TPUClusterResolver": "needs a TPU"}
# Console lines that are not deepvision commands and have their own tests.
OTHER_COMMANDS = {"make demo": "tests/training/test_demo.py", "make test": "the test suite itself"}


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    code: str


def code_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file (indented fences inside lists included)."""
    blocks, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, start, body = len(match["indent"]), i + 1, []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        blocks.append(Block(path, start, match["lang"], "\n".join(body) + "\n"))
        i += 1
    return blocks


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_block_has_a_handled_language():
    for path in DOCS:
        for block in code_blocks(path):
            assert block.lang in HANDLED, f"{_id(path)}:{block.line}: fence language {block.lang!r} not run here"


def test_edits_still_match():
    for path in DOCS:
        text = "".join(b.code for b in code_blocks(path))
        for old, _, why in EDITS.get(path.name, []):
            assert old in text, f"{_id(path)}: the docs test edit {old!r} ({why}) no longer matches: update EDITS"


def _prelude(tmp: Path) -> dict:
    """The objects a reader brings: small data in both layouts, a device, class names."""
    import keras
    import pytorch_lightning as pl
    import tensorflow as tf
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    rng = np.random.default_rng(0)
    x = rng.random((40, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, 40)
    nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(y)
    train = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(8)
    test = tf.data.Dataset.from_tensor_slices((x[16:24], y[16:24])).batch(8)
    _tiny_nerf_file(tmp / "tiny_nerf.npz", rng)
    return dict(
        np=np, tf=tf, keras=keras, torch=torch, pl=pl, deepvision=deepvision, device="cpu",
        train_dataloader=DataLoader(TensorDataset(nchw[:16], labels[:16]), batch_size=8),
        val_dataloader=DataLoader(TensorDataset(nchw[16:24], labels[16:24]), batch_size=8),
        dataset=DataLoader(TensorDataset(nchw, labels), batch_size=8), images=nchw[:4].numpy(),
        names=[str(k) for k in range(10)], train_set=train, test_set=test, global_batch_size=8,
    )


def _tiny_nerf_file(path: Path, rng: np.random.Generator) -> None:
    # The published file's format (106 images, as the README's 84 / 22 split), 8x8 pixels.
    from tests.datasets.conftest import tiny_nerf_arrays

    np.savez(path, **tiny_nerf_arrays(n=106, height=8, width=8))


def _files_for_commands(tmp: Path) -> None:
    """Local stand-ins for the files the README's commands start from (no downloads)."""
    import keras
    import torch

    model = deepvision.models.create_model("ResNet50V2", backend="pytorch", classes=10)
    torch.save(model.state_dict(), tmp / "model.pt")
    keras.applications.ResNet50V2(weights=None, classifier_activation=None).save(tmp / "resnet50v2.h5")
    shutil.copy(ROOT / "tests" / "fixtures" / "timm" / "vit_tiny_patch16_224-depth2.safetensors",
                tmp / "vit_base_patch16_224.safetensors")


def _run_console(block: Block, tmp: Path) -> None:
    from deepvision.cli import main

    for line in block.code.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] != "deepvision":
            assert any(line.startswith(c) for c in OTHER_COMMANDS), f"{_id(block.path)}:{block.line}: {line}"
            continue
        if "--from" in words and "timm" in words or "model.pt" in words:
            _files_for_commands(tmp)
        assert main(words[1:]) == 0, f"{_id(block.path)}:{block.line}: `{line}` failed"


def _run_file(path: Path, tmp: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp)
    namespace = _prelude(tmp)
    try:
        _run_blocks(path, tmp, namespace)
    finally:
        # The DDP example leaves a process group (and Keras a global state) behind: later tests
        # in this worker must not inherit them.
        import keras
        import torch

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        keras.mixed_precision.set_global_policy("float32")


def _run_blocks(path: Path, tmp: Path, namespace: dict) -> None:
    for block in code_blocks(path):
        code = block.code
        for old, new, _ in EDITS.get(path.name, []):
            code = code.replace(old, new)
        where = f"{_id(path)}:{block.line}"
        if block.lang == "console":
            _run_console(block, tmp)
        elif block.lang == "python":
            compiled = compile(code, where, "exec")
            if not any(marker in code for marker in NEEDS_HARDWARE):
                exec(compiled, namespace)  # noqa: S102  (the docs' own code)


@pytest.mark.parametrize("name", ["README.md", "TRAINING.md"])
def test_python_and_console_blocks_run(name, tmp_path, monkeypatch):
    import os

    (path,) = [p for p in DOCS if p.name == name]
    saved = dict(os.environ)
    try:
        _run_file(path, tmp_path, monkeypatch)
    finally:
        # A documented DDP run sets LOCAL_RANK, WORLD_SIZE, MASTER_* in this process: later tests
        # (and their subprocesses) must not inherit them.
        os.environ.clear()
        os.environ.update(saved)


def test_docs_without_runnable_blocks_are_listed():
    # A new doc with python or console blocks must join the parametrisation above.
    runnable = {p.name for p in DOCS if any(b.lang in ("python", "console") for b in code_blocks(p))}
    assert runnable <= {"README.md", "TRAINING.md"}, runnable


def test_spec_schema_example_is_the_real_schema():
    (spec,) = [p for p in DOCS if p.name == "SPEC.md"]
    (block,) = [b for b in code_blocks(spec) if b.lang == "json"]
    example = json.loads(block.code)
    real = json.loads((ROOT / "schemas" / f"{example['architecture']}@{example['version']}.json").read_text())
    assert set(example) == set(real)
    for key in ("architecture", "format_version", "version"):
        assert example[key] == real[key]
    for key, value in example["config"].items():
        assert key in real["config"] and real["config"][key] == value, key
    by_name = {t["name"]: t for t in real["tensors"]}
    for tensor in example["tensors"]:
        assert by_name.get(tensor["name"]) == tensor, tensor


def test_tensor_names_in_the_docs_exist():
    # Every backticked dotted name ending like a tensor (kernel, bias, gamma, ...) is in some schema.
    known = set()
    for schema in (ROOT / "schemas").glob("*.json"):
        known |= {t["name"] for t in json.loads(schema.read_text())["tensors"]}
    leaf = r"(kernel|depthwise_kernel|bias|gamma|beta|moving_mean|moving_variance|class_token|position_embedding)"
    pattern = re.compile(r"`((?:[a-z_]\w*|\d+)(?:\.(?:[a-z_]\w*|\d+))*\." + leaf + r")`")
    found = {(p.name, m.group(1)) for p in DOCS for m in pattern.finditer(p.read_text())}
    assert found, "the pattern finds nothing: the test would pass vacuously"
    wrong = sorted((doc, name) for doc, name in found if name not in known)
    assert not wrong, wrong
