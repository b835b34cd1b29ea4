"""Cases for the Vision Transformer blocks (small widths so the suite stays fast)."""

from tests.blocks.harness import BlockCase

CASES = [
    BlockCase("PatchingAndEmbedding", {"project_dim": 16, "patch_size": 4, "input_shape": [16, 16, 3]},
              (16, 16, 3), "patch_embed_p4_16x16"),
    # Non-square, not divisible by the patch: the conv floors to a 3x4 grid, row-major patches.
    BlockCase("PatchingAndEmbedding", {"project_dim": 12, "patch_size": 5, "input_shape": [17, 23, 2]},
              (17, 23, 2), "patch_embed_p5_17x23"),
    BlockCase("MultiHeadSelfAttention", {"project_dim": 16, "num_heads": 4}, (9, 16), "mhsa_d16_h4"),
    BlockCase("MultiHeadSelfAttention", {"project_dim": 12, "num_heads": 1}, (5, 12), "mhsa_d12_h1", batch=3),
    BlockCase("MultiHeadSelfAttention", {"project_dim": 8, "num_heads": 2, "attention_dropout": 0.1,
                                         "projection_dropout": 0.1}, (4, 8), "mhsa_dropout", training_parity=False),
    BlockCase("MLP", {"hidden_dim": 32, "output_dim": 16}, (7, 16), "mlp_gelu"),
    BlockCase("MLP", {"hidden_dim": 24, "output_dim": 8, "input_dim": 12, "activation": "gelu_tanh"},
              (5, 12), "mlp_gelu_tanh_in12"),
    BlockCase("MLP", {"hidden_dim": 8, "output_dim": 6, "input_dim": 4, "activation": "swish", "dropout": 0.2},
              (3, 4), "mlp_swish_dropout", training_parity=False),
    BlockCase("TransformerEncoder", {"project_dim": 16, "mlp_dim": 32, "num_heads": 4}, (9, 16), "encoder_d16_h4"),
    BlockCase("TransformerEncoder", {"project_dim": 12, "mlp_dim": 20, "num_heads": 3, "layer_norm_epsilon": 1e-5,
                                     "activation": "gelu_tanh"}, (10, 12), "encoder_d12_h3_eps1e-5"),
    # Low-variance tokens (variance 1e-6, the LayerNorm epsilon): an epsilon off by 10x moves the
    # output by ~50%, where random-normal tokens hide it below the tolerance.
    BlockCase("TransformerEncoder", {"project_dim": 16, "mlp_dim": 32, "num_heads": 4}, (9, 16),
              "encoder_low_variance_tokens", input_scale=1e-3),
    BlockCase("TransformerEncoder", {"project_dim": 8, "mlp_dim": 16, "num_heads": 2, "mlp_dropout": 0.1,
                                     "attention_dropout": 0.1, "drop_path_rate": 0.2}, (5, 8), "encoder_stochastic",
              training_parity=False),
]
