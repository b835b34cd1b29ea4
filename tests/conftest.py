"""Test-session setup shared by every test folder."""

from __future__ import annotations

import os

# Quiet TensorFlow, and keep its numerics deterministic across runs (oneDNN reorders sums).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
