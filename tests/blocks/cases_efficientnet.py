"""Cases for the EfficientNetV2 blocks: MBConv, FusedMBConv, SqueezeExcitation, StochasticDepth.

Strided cases use odd and non-square sizes (17x23) and even sizes (16x16), where TensorFlow's
"same" padding is asymmetric; expansion and squeeze-excitation are switched on and off. Blocks with
a drop-path rate are stochastic in training mode (``training_parity=False``); their statistics are
tested in ``test_stochastic_depth.py``.
"""

from tests.blocks.harness import BlockCase


def _block(name: str, input_filters: int, output_filters: int, shape: tuple, id: str, input_scale: float = 1.0,
           **config) -> BlockCase:
    return BlockCase(
        name,
        {"input_filters": input_filters, "output_filters": output_filters, **config},
        (*shape, input_filters),
        id,
        has_batch_norm=True,
        training_parity=config.get("dropout", 0.0) == 0.0,
        input_scale=input_scale,
    )


CASES = [
    # MBConv
    _block("MBConv", 8, 8, (9, 11), "mbconv-expand4-se-residual", expand_ratio=4, se_ratio=0.25),
    _block("MBConv", 8, 16, (17, 23), "mbconv-expand4-se-stride2-17x23", expand_ratio=4, se_ratio=0.25, strides=2),
    _block("MBConv", 8, 8, (10, 6), "mbconv-noexpand-nose-residual", expand_ratio=1),
    _block("MBConv", 6, 12, (16, 16), "mbconv-noexpand-k5-stride2-16x16", kernel_size=5, strides=2),
    _block("MBConv", 3, 8, (8, 8), "mbconv-se-floor-to-one", expand_ratio=6, se_ratio=0.25),
    _block("MBConv", 8, 8, (17, 23), "mbconv-relu-eps-momentum", expand_ratio=2, se_ratio=0.5,
           activation="relu", bn_epsilon=1e-5, bn_momentum=0.99),
    # Low-variance feature maps (variance 1e-4 against epsilon 1e-3): the epsilon dominates in training mode.
    _block("MBConv", 8, 8, (9, 11), "mbconv-low-variance", input_scale=1e-2, expand_ratio=4, se_ratio=0.25),
    _block("FusedMBConv", 8, 8, (9, 11), "fused-low-variance", input_scale=1e-2, expand_ratio=4, se_ratio=0.25),
    _block("MBConv", 8, 8, (7, 9), "mbconv-drop-path", expand_ratio=4, se_ratio=0.25, dropout=0.3),
    # FusedMBConv
    _block("FusedMBConv", 3, 32, (12, 12), "fused-seed-example", expand_ratio=2, se_ratio=0.25),
    _block("FusedMBConv", 8, 16, (17, 23), "fused-expand4-stride2-17x23", expand_ratio=4, strides=2),
    _block("FusedMBConv", 8, 8, (9, 11), "fused-noexpand-residual", expand_ratio=1),
    _block("FusedMBConv", 8, 12, (17, 23), "fused-noexpand-se-stride2-17x23", expand_ratio=1, se_ratio=0.25, strides=2),
    _block("FusedMBConv", 8, 8, (16, 16), "fused-expand4-se-residual", expand_ratio=4, se_ratio=0.25),
    _block("FusedMBConv", 8, 8, (7, 9), "fused-drop-path", expand_ratio=4, dropout=0.3),
    # SqueezeExcitation
    BlockCase("SqueezeExcitation", {"filters": 8, "bottleneck_filters": 2}, (5, 7, 8), "se-swish"),
    BlockCase("SqueezeExcitation", {"filters": 6, "bottleneck_filters": 3, "activation": "relu",
                                    "gate_activation": "hard_sigmoid"}, (9, 4, 6), "se-relu-hard-sigmoid"),
    # StochasticDepth: weightless; rate 0 is the identity in both modes, rate > 0 only in inference.
    BlockCase("StochasticDepth", {"drop_prob": 0.0}, (5, 7, 3), "drop-path-0"),
    BlockCase("StochasticDepth", {"drop_prob": 0.25}, (5, 7, 3), "drop-path-0.25", training_parity=False),
]
