"""The AU relation-matrix artefact: CSV layout (read back to compare with the true co-occurrence) and PNG."""
from __future__ import annotations

import torch

from affectlab.evaluation.relation_plots import save_relation_matrix


def test_relation_matrix_csv_has_au_header_row_and_column(tmp_path):
    matrix = torch.tensor([[0.75, 0.25], [1 / 3, 2 / 3]])
    save_relation_matrix(tmp_path / "sub" / "au_relation", matrix, ["AU01", "AU02"], "title")
    rows = (tmp_path / "sub" / "au_relation.csv").read_text().splitlines()
    assert rows == ["au,AU01,AU02", "AU01,0.750000,0.250000", "AU02,0.333333,0.666667"]
    assert (tmp_path / "sub" / "au_relation.png").stat().st_size > 1000
