"""NeRF family: the MLP of Mildenhall et al. (2020), "NeRF: Representing Scenes as Neural Radiance
Fields for View Synthesis", in both backends.

Registration only (no framework import). The network maps a point and a view direction to colour
and density::

    x (N, 6) = [xyz, unit view direction]
      -> positional encoding of xyz (``position_frequencies``) and of the direction (``direction_frequencies``)
      -> trunk: ``depth`` Dense(``width``) + ReLU, the encoded position concatenated again before each
         layer index in ``skips`` (the paper: 8 x 256, skip before the 5th layer)
      -> density: Dense(1) + ``density_activation`` (ReLU in the paper: density >= 0)
      -> feature: Dense(``width``), concatenated with the encoded direction
      -> view: Dense(``branch_width``) + ReLU -> rgb: Dense(3) + sigmoid
    y (N, 4) = [rgb in [0, 1], density >= 0]

The encoding is the first wave's tiny NeRF one (``deepvision.datasets.tiny_nerf.common.encode_points``):
``[x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]``, so the loader's encoded points
carry the raw positions in their first three columns. Rendering and training: :mod:`deepvision.nerf`.
Implementations: ``nerf_tf.NeRFTF`` and ``nerf_pt.NeRFPT``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from deepvision.models.factory import Argument, variant_factory
from deepvision.registry import Architecture, register

_TF = "deepvision.models.nerf.nerf_tf:NeRFTF"
_PT = "deepvision.models.nerf.nerf_pt:NeRFPT"

DENSITY_ACTIVATIONS = ("relu", "softplus")

# The constructor arguments of NeRFTF / NeRFPT and their defaults (the paper's network).
DEFAULTS: Mapping[str, Any] = {
    "position_frequencies": 10,
    "direction_frequencies": 4,
    "depth": 8,
    "width": 256,
    "skips": (4,),
    "branch_width": 128,
    "density_activation": "relu",
}


def check_arguments(position_frequencies: int, direction_frequencies: int, depth: int, width: int,
                    skips: Sequence[int], branch_width: int, density_activation: str) -> None:
    """Raise the same ``ValueError`` in both backends for an impossible configuration."""
    for name, value, low in (("position_frequencies", position_frequencies, 0),
                             ("direction_frequencies", direction_frequencies, 0),
                             ("depth", depth, 1), ("width", width, 1), ("branch_width", branch_width, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"NeRF: {name} must be an integer >= {low}, got {value!r}.")
    bad = [s for s in skips if not 0 < int(s) < depth]
    if bad:
        raise ValueError(f"NeRF: every skip must be a trunk layer index in 1..{depth - 1}, got {list(skips)}.")
    if density_activation not in DENSITY_ACTIVATIONS:
        raise ValueError(f"NeRF: density_activation must be one of {DENSITY_ACTIVATIONS}, got {density_activation!r}.")


def encoded_width(frequencies: int) -> int:
    """Width of one encoded 3-vector: itself plus a sine and a cosine per frequency."""
    return 3 + 6 * frequencies


def _params(position_frequencies: int, direction_frequencies: int, depth: int, width: int,
            skips: Sequence[int], branch_width: int, **_: Any) -> int:
    # Used to state each variant's size in the registry (and checked against both backends by the tests).
    pos, dirs = encoded_width(position_frequencies), encoded_width(direction_frequencies)
    total, inputs = 0, pos
    for i in range(depth):
        inputs = inputs + pos if i in skips else inputs
        total += inputs * width + width
        inputs = width
    total += width + 1  # density
    total += width * width + width  # feature
    total += (width + dirs) * branch_width + branch_width  # view
    total += branch_width * 3 + 3  # rgb
    return total


def _input_shape(config: Mapping[str, Any]) -> tuple[int]:
    # One input row per point: xyz and a unit view direction.
    return (6,)


SMALL = {"depth": 4, "width": 128, "skips": (2,), "branch_width": 64}
# Parameter counts of the registered variants (paper network: 595,844; NeRFSmall: 92,612).
PARAMETERS = {"NeRF": _params(**DEFAULTS), "NeRFSmall": _params(**{**DEFAULTS, **SMALL})}

ARGUMENTS = (
    Argument("position_frequencies", 10, int, "frequencies of the position encoding."),
    Argument("direction_frequencies", 4, int, "frequencies of the view-direction encoding."),
    Argument("depth", 8, int, "trunk layers."),
    Argument("width", 256, int, "trunk width."),
    Argument("skips", (4,), "Sequence[int]", "trunk layers whose input gets the encoded position again."),
    Argument("branch_width", 128, int, "width of the view-dependent colour branch."),
    Argument("density_activation", "relu", str, "'relu' (the paper) or 'softplus'."),
)

for _name, _fixed in (("NeRF", {}), ("NeRFSmall", SMALL)):
    register(
        Architecture(
            name=_name,
            kind="model",
            family="nerf",
            tensorflow=_TF,
            pytorch=_PT,
            fixed=_fixed,
            # Small enough for parity tests in a fraction of a second.
            reference_config={"depth": 3, "width": 16, "skips": [2], "branch_width": 8,
                              "position_frequencies": 3, "direction_frequencies": 2} if not _fixed else {},
            parameters=PARAMETERS[_name],
            build_shape=_input_shape,
        )
    )

NeRF = variant_factory("NeRF", ARGUMENTS, "the NeRF paper's MLP (8 x 256, skip before layer 4, 128-wide colour branch)")
NeRFSmall = variant_factory("NeRFSmall", ARGUMENTS, "a NeRF MLP for CPUs (4 x 128, skip before layer 2)")
