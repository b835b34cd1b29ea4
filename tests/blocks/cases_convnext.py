"""Cases for the ConvNeXt blocks: ConvNeXtBlock and LayerScale.

Layer-scale gammas start at 1e-6 in timm and keras.applications, which would make a block's residual
branch vanish and hide any mapping error: the cases use large initial values (the harness then
randomises every tensor anyway). Odd, non-square sizes exercise the depthwise "same" padding; one
case uses low-variance inputs' sensitivity to the LayerNorm epsilon (1e-5 instead of 1e-6).
"""

from tests.blocks.harness import BlockCase

CASES = [
    BlockCase("ConvNeXtBlock", {"projection_dim": 8, "layer_scale_init_value": 0.5}, (9, 11, 8), "convnext-9x11"),
    BlockCase("ConvNeXtBlock", {"projection_dim": 6, "layer_scale_init_value": 1.0, "kernel_size": 3,
                                "mlp_ratio": 2.0, "layer_norm_epsilon": 1e-5, "activation": "gelu_tanh"},
              (5, 7, 6), "convnext-k3-mlp2-eps1e-5-gelu-tanh"),
    BlockCase("ConvNeXtBlock", {"projection_dim": 8, "layer_scale_init_value": None}, (7, 6, 8),
              "convnext-no-layer-scale"),
    BlockCase("ConvNeXtBlock", {"projection_dim": 4, "layer_scale_init_value": 0.5, "drop_path_rate": 0.3},
              (6, 5, 4), "convnext-drop-path", training_parity=False),
    BlockCase("LayerScale", {"projection_dim": 8, "init_value": 0.5}, (5, 7, 8), "layer-scale-image"),
    BlockCase("LayerScale", {"projection_dim": 6}, (9, 6), "layer-scale-tokens"),
]
