"""Miniature official-layout releases written once per session (see ``releases.py``)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import releases  # noqa: E402


@pytest.fixture(scope="session")
def mini(tmp_path_factory):
    """Paths and ground truth of one miniature copy of every release."""
    root = tmp_path_factory.mktemp("releases")
    truth = {
        "bp4d": releases.write_bp4d(root / "BP4D"),
        "dfew": releases.write_dfew(root / "DFEW"),
        "ferv39k": releases.write_ferv39k(root / "FERV39k"),
        "disfa": releases.write_disfa(root / "DISFA"),
    }
    return root, truth

