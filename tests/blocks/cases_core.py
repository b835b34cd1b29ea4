"""Cases for the generic blocks."""

from tests.blocks.harness import BlockCase

CASES = [
    BlockCase("Identity", {}, (5, 7, 3), "identity"),
]
