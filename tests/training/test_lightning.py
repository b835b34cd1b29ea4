"""The PyTorch training API: compile(), the Lightning steps, a manual loop, bf16-mixed, torch.compile."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("pytorch_lightning")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import deepvision  # noqa: E402
from tests.training.conftest import CNN, tiny_vit_config  # noqa: E402

TRAINER = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False)


def _batches(n: int = 16, size: int = 16, classes: int = 10, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 3, size, size, generator=g), torch.randint(0, classes, (n,), generator=g))


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def cnn():
    """The seed's model, small input: ResNet18V2, 10 classes, 16x16."""
    torch.manual_seed(0)
    return deepvision.models.create_model(CNN, backend="pytorch", include_top=True, classes=10,
                                          input_shape=(3, 16, 16))


def test_seed_trainer_example(cnn):
    # The seed README's Lightning example, with a small in-memory dataset instead of CIFAR10.
    train_dataloader = DataLoader(_batches(16), batch_size=8)
    val_dataloader = DataLoader(_batches(8, seed=1), batch_size=8)
    pt_model = cnn
    before = _state(pt_model)
    keys = set(pt_model.state_dict())
    loss = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(pt_model.parameters(), 1e-4)
    assert pt_model.compile(loss=loss, optimizer=optimizer) is pt_model
    trainer = pl.Trainer(max_epochs=1, **TRAINER)
    trainer.fit(pt_model, train_dataloader, val_dataloader)
    metrics = trainer.callback_metrics
    for key in ("train_loss_epoch", "train_accuracy", "val_loss", "val_accuracy"):
        assert key in metrics and np.isfinite(float(metrics[key])), key
    assert trainer.optimizers[0] is optimizer  # the seed's optimizer, not a new one
    after = _state(pt_model)
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    # The metrics are submodules without state: checkpoints and parameter counts are unchanged.
    assert set(pt_model.state_dict()) == keys
    # test / predict steps on (inputs, labels) batches.
    (result,) = trainer.test(pt_model, val_dataloader, verbose=False)
    assert set(result) == {"test_loss", "test_accuracy"}
    (logits,) = trainer.predict(pt_model, val_dataloader)
    assert logits.shape == (8, 10)


def test_manual_loop(cnn):
    # The seed README's manual loop on the plain module.
    model = cnn
    train_loader = DataLoader(_batches(8, seed=2), batch_size=8)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    losses = []
    for _epoch in range(3):
        for batch in train_loader:
            optimizer.zero_grad()
            inputs, labels = batch
            outputs = model(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert losses[-1] < losses[0]
    # The Lightning step is usable outside a Trainer too (self.log is then a no-op).
    model.compile()
    step_loss = model.training_step(next(iter(train_loader)), 0)
    assert step_loss.ndim == 0 and step_loss.requires_grad


def test_compile_options(cnn):
    model = cnn
    # Names, classes and factories for the optimizer; a schedule as object, factory or dict.
    model.compile(optimizer="sgd", learning_rate=0.5)
    opt = model.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == 0.5
    assert model.configure_optimizers() is opt  # built once: repeated fit() continue its state
    model.compile(optimizer=torch.optim.AdamW, learning_rate=0.01)
    assert isinstance(model.configure_optimizers(), torch.optim.AdamW)
    model.compile(optimizer=functools.partial(torch.optim.SGD, lr=0.2, momentum=0.9),
                  lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1))
    config = model.configure_optimizers()
    assert config["optimizer"].param_groups[0]["momentum"] == 0.9
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    model.compile(lr_scheduler={"scheduler": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
                                "interval": "step"})
    config = model.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.Adam) and config["lr_scheduler"]["interval"] == "step"
    # Metrics: names and torchmetrics objects, per stage.
    import torchmetrics

    model.compile(metrics=["accuracy", "top5_accuracy", torchmetrics.classification.MulticlassF1Score(10)])
    assert set(model.val_metrics.keys(keep_base=False)) == {"val_accuracy", "val_top5_accuracy", "val_f1_score"}
    trainer = pl.Trainer(max_steps=1, limit_val_batches=1, num_sanity_val_steps=0, **TRAINER)
    data = DataLoader(_batches(8), batch_size=8)
    trainer.fit(model, data, data)
    assert {"train_top5_accuracy", "val_f1_score"} <= set(trainer.callback_metrics)
    # Mistakes are explained.
    with pytest.raises(TypeError, match="compile_forward"):
        model.compile(mode="max-autotune")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        model.compile(optimizer="lbfgs-ish")
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile(loss="mse")


def test_headless_model_logs_loss_only():
    torch.manual_seed(0)
    model = deepvision.models.create_model(CNN, backend="pytorch", include_top=False, pooling="avg",
                                           input_shape=(3, 16, 16))
    assert not model.has_top
    # e.g. a regression on the pooled features; no accuracy without a top.
    x = torch.rand(4, 3, 16, 16)
    target = torch.zeros(4, 512)
    model.compile(loss=torch.nn.MSELoss(), optimizer="sgd", learning_rate=0.01)
    trainer = pl.Trainer(max_steps=1, **TRAINER)
    trainer.fit(model, DataLoader(TensorDataset(x, target), batch_size=4))
    assert set(trainer.callback_metrics) == {"train_loss", "train_loss_step", "train_loss_epoch"}


def _tiny_vit(seed: int = 0):
    from deepvision.registry import build_from_neutral_config

    torch.manual_seed(seed)
    return build_from_neutral_config("ViT", tiny_vit_config(16), "pytorch")


def test_bf16_mixed():
    # A tiny ViT: bf16 autocast on a CPU is slow for an 11M-parameter CNN (weights cast each step).
    model = _tiny_vit()
    model.compile(optimizer="adam", learning_rate=1e-3)
    trainer = pl.Trainer(max_epochs=2, precision="bf16-mixed", **TRAINER)
    data = DataLoader(_batches(16, seed=3), batch_size=8)
    trainer.fit(model, data, data)
    assert np.isfinite(float(trainer.callback_metrics["train_loss_epoch"]))
    # Mixed precision computes in bf16 but keeps float32 weights and a float32 loss.
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        batch = next(iter(data))
        assert model(batch[0]).dtype == torch.bfloat16
        assert model.training_step(batch, 0).dtype == torch.float32


@pytest.mark.compile
def test_torch_compile_inference_and_training():
    # torch.compile of the network's forward: two graphs (inference, then training forward and
    # backward), about 25 s each on 2 cores; one batch shape so that nothing recompiles.
    eager, compiled = _tiny_vit(), _tiny_vit(seed=1)
    compiled.load_state_dict(eager.state_dict())
    assert compiled.compile_forward(dynamic=False) is compiled
    x = torch.rand(4, 3, 16, 16)
    eager.eval()
    compiled.eval()
    with torch.no_grad():
        ref, out = eager(x), compiled(x)
    assert float((out - ref).abs().max() / ref.abs().max()) < 1e-5
    # Inside Lightning: the steps (with self.log) stay eager, the forward is compiled.
    data = DataLoader(TensorDataset(torch.cat([x, x.flip(-1)]), torch.arange(8) % 10), batch_size=4)
    for model in (eager, compiled):
        model.compile(optimizer="sgd", learning_rate=0.1)
        pl.Trainer(max_epochs=1, **TRAINER).fit(model, data)
    for name, value in eager.state_dict().items():
        other = compiled.state_dict()[name]
        assert float((other - value).abs().max() / value.abs().max().clamp_min(1e-30)) < 1e-4, name
