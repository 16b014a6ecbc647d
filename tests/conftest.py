"""Shared fixtures: offline wandb, one thread per test process, a session-wide tiny synthetic copy."""
from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """The ``tiny`` synthetic stand-in of every dataset, generated once per test session."""
    from affectlab.synth import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, profile="tiny", seed=0)
    return root
