"""Cases for the SegFormer (MiT) blocks: odd, non-square token grids, small widths."""

from tests.blocks.harness import BlockCase

CASES = [
    # 17x23 -> (17 + 6 - 7) // 4 + 1 = 5 by 6: the padded strided conv floors.
    BlockCase("OverlappingPatchEmbedding", {"project_dim": 16, "patch_size": 7, "stride": 4, "input_dim": 3},
              (17, 23, 3), "ope_k7_s4_17x23"),
    BlockCase("OverlappingPatchEmbedding", {"project_dim": 12, "patch_size": 3, "stride": 2, "input_dim": 8,
                                            "layer_norm_epsilon": 1e-6}, (9, 6, 8), "ope_k3_s2_9x6_eps1e-6"),
    # sr 2 on a 7x5 grid: the reduction conv floors to 3x2 keys/values.
    BlockCase("EfficientMultiHeadAttention", {"project_dim": 16, "num_heads": 2, "sr_ratio": 2}, (7, 5, 16),
              "emha_sr2_7x5"),
    BlockCase("EfficientMultiHeadAttention", {"project_dim": 12, "num_heads": 3, "sr_ratio": 1}, (3, 4, 12),
              "emha_sr1_3x4", batch=3),
    BlockCase("EfficientMultiHeadAttention", {"project_dim": 8, "num_heads": 1, "sr_ratio": 4}, (9, 11, 8),
              "emha_sr4_9x11"),
    BlockCase("EfficientMultiHeadAttention", {"project_dim": 8, "num_heads": 2, "sr_ratio": 2,
                                              "attention_dropout": 0.1, "projection_dropout": 0.1}, (4, 4, 8),
              "emha_dropout", training_parity=False),
    BlockCase("MixFFN", {"hidden_dim": 32, "output_dim": 8}, (5, 7, 8), "mixffn_5x7"),
    BlockCase("MixFFN", {"hidden_dim": 12, "output_dim": 6, "input_dim": 4, "activation": "gelu_tanh"}, (1, 3, 4),
              "mixffn_in4_1x3_gelu_tanh"),
    BlockCase("MixFFN", {"hidden_dim": 8, "output_dim": 4, "dropout": 0.2}, (3, 3, 4), "mixffn_dropout",
              training_parity=False),
    BlockCase("HierarchicalTransformerEncoder", {"project_dim": 16, "num_heads": 2, "mlp_dim": 32, "sr_ratio": 2},
              (5, 7, 16), "hte_sr2_5x7"),
    BlockCase("HierarchicalTransformerEncoder", {"project_dim": 8, "num_heads": 1, "mlp_dim": 16, "sr_ratio": 1,
                                                 "layer_norm_epsilon": 1e-6}, (3, 2, 8), "hte_sr1_3x2"),
    BlockCase("HierarchicalTransformerEncoder", {"project_dim": 8, "num_heads": 2, "mlp_dim": 16, "sr_ratio": 2,
                                                 "drop_path_rate": 0.3, "dropout": 0.1}, (4, 4, 8),
              "hte_stochastic", training_parity=False),
    # Feature maps of a 97x129 image at strides 4, 8, 16, 32 (floored): 25x33, 13x17, 7x9, 4x5.
    BlockCase("SegFormerHead", {"classes": 5, "in_dims": [8, 16, 24, 32], "decoder_dim": 16, "dropout": 0.0},
              ((25, 33, 8), (13, 17, 16), (7, 9, 24), (4, 5, 32)), "head_97x129", has_batch_norm=True,
              # The projection biases feed a batch-statistics BatchNorm through constant-preserving
              # upsampling and a 1x1 conv: their gradients are analytically zero, pure rounding noise.
              gradient_floor=1e-2),
    BlockCase("SegFormerHead", {"classes": 3, "in_dims": [4, 6], "decoder_dim": 8, "dropout": 0.1,
                                "batch_norm_epsilon": 1e-3}, ((6, 5, 4), (3, 3, 6)), "head_two_maps_dropout",
              has_batch_norm=True, training_parity=False),
]
