"""``check_parity``: prove that two models (or a model and its other-backend twin) compute the same."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepvision.backend import backend_of


@dataclass(frozen=True)
class OutputParity:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool


@dataclass
class ParityReport:
    """Per-output errors (``max|a - b|`` and ``max|a - b| / max|b|``) and the verdict."""

    backend_a: str
    backend_b: str
    rtol: float
    outputs: list[OutputParity] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.outputs) and all(o.passed for o in self.outputs)

    @property
    def max_rel(self) -> float:
        return max((o.max_rel for o in self.outputs), default=float("nan"))

    def __str__(self) -> str:
        header = f"{'output':<12} {'shape':<20} {'max abs err':>12} {'max rel err':>12}  result"
        lines = [f"parity {self.backend_a} vs {self.backend_b} (rtol {self.rtol:g})", header, "-" * len(header)]
        for o in self.outputs:
            lines.append(
                f"{o.name:<12} {str(o.shape):<20} {o.max_abs:>12.3e} {o.max_rel:>12.3e}  {'PASS' if o.passed else 'FAIL'}"
            )
        lines.append(f"overall: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.ok


def _outputs(y: Any) -> list[tuple[str, Any]]:
    if isinstance(y, dict):
        return list(y.items())
    if isinstance(y, (list, tuple)):
        return [(f"output{i}", v) for i, v in enumerate(y)]
    return [("output", y)]


def _run(model: Any, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    from deepvision import testing

    y = testing.call(model, x)  # inference mode, no gradients
    return [(name, testing.from_framework(value, backend_of(model))) for name, value in _outputs(y)]


def default_inputs(model: Any, batch: int = 2, seed: int = 0) -> np.ndarray:
    """A channels-last batch for ``model``: its configured input size, 224x224x3 if it has none."""
    from deepvision.registry import config_of

    try:
        shape = config_of(model).get("input_shape")
    except TypeError:
        shape = None
    if not shape or any(d is None for d in shape):
        shape = [224, 224, 3]
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


def check_parity(
    model_a: Any,
    model_b: Any = None,
    *,
    inputs: np.ndarray | Sequence | None = None,
    rtol: float = 1e-4,
) -> ParityReport:
    """Feed the same inputs to two models and compare every output.

    Args:
        model_a: a deepvision model or block of either backend.
        model_b: the model to compare with; ``None`` builds ``model_a``'s counterpart in the other
            backend through the canonical format.
        inputs: a channels-last numpy batch (images NHWC, tokens (B, N, D)); PyTorch models get it
            transposed to NCHW. Default: a random batch of two at the model's input size.
        rtol: the pass threshold on ``max|a - b| / max|b|`` per output.

    Returns:
        A :class:`ParityReport`; ``print(report)`` shows the table, ``report.ok`` the verdict.
    """
    if model_b is None:
        from deepvision.portable import to_backend
        from deepvision.testing import other_backend

        model_b = to_backend(model_a, other_backend(backend_of(model_a)))
    x = default_inputs(model_a) if inputs is None else np.asarray(inputs, dtype=np.float32)
    outs_a, outs_b = _run(model_a, x), _run(model_b, x)
    report = ParityReport(backend_of(model_a), backend_of(model_b), rtol)
    if len(outs_a) != len(outs_b):
        raise ValueError(f"The models return {len(outs_a)} and {len(outs_b)} outputs.")
    for (name, a), (_, b) in zip(outs_a, outs_b):
        if a.shape != b.shape:
            raise ValueError(f"Output {name}: shapes differ, {a.shape} vs {b.shape}.")
        diff = float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0))
        rel = diff / max(float(np.max(np.abs(b), initial=0.0)), 1e-30)
        report.outputs.append(OutputParity(name, tuple(a.shape), diff, rel, rel <= rtol))
    return report
