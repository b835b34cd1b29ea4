"""Test-session setup shared by every test folder."""

from __future__ import annotations

import os

# Quiet TensorFlow, and keep its numerics deterministic across runs (oneDNN reorders sums).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
# `make test` runs two pytest workers on two cores: one thread per framework per worker avoids
# oversubscription, which slowed PyTorch down 10x or more here.
for _var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
# Spinning OpenMP threads starve the other worker on a 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
