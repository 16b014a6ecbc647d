"""`affectlab synth check` on the tiny copy: every readout runs and the scores are what they claim."""
from __future__ import annotations

import json

import numpy as np
import torch
from sklearn.metrics import f1_score

from affectlab.synth import check


def test_check_runs_every_readout_and_writes_its_report(synth_root, tmp_path, capsys):
    from affectlab.cli import main

    argv = ["synth", "check", "--out", str(synth_root), "--check-seeds", "0", "--epochs", "1", "--report", str(tmp_path)]
    assert main(argv) == 0
    assert "| pixels |" in capsys.readouterr().out
    result = json.loads((tmp_path / "check.json").read_text())
    assert set(result["problems"]) == {"bp4d", "disfa"}
    for dataset, problem in result["problems"].items():
        assert set(problem["readouts"]) == set(check.READOUTS), dataset
        assert set(problem["verdict"]) == {"cnn_beats_unlearned", "unlearned_near_trivial"}
        for name, row in problem["readouts"].items():
            assert np.isfinite(row["mean"]) and len(row["per_au"]) == len(problem["au_names"]), (dataset, name)
    # the generator's own AU state predicts its labels (levels are thresholds of that state)
    assert result["problems"]["bp4d"]["readouts"]["oracle"]["mean"] > 0.8
    assert result["problems"]["disfa"]["readouts"]["oracle"]["mean"] > 0.8
    assert result["problems"]["disfa"]["readouts"]["trivial"]["mean"] == 0.0
    assert (tmp_path / "check.png").stat().st_size > 1000
    assert "| oracle |" in check.markdown(result)


def test_trivial_f1_is_sklearns_all_positive_f1(synth_root):
    splits, _ = check.load_problem("bp4d", "au_occurrence", synth_root, "tiny", 0)
    test = splits["test"]
    got = check.trivial("au_occurrence", test)
    for k in range(test.target.shape[1]):
        rows = test.mask[:, k].numpy()
        y = test.target[rows, k].numpy() > 0.5
        assert abs(float(got[k]) - f1_score(y, np.ones_like(y), zero_division=0)) < 1e-6


def test_ridge_readout_recovers_a_linear_target():
    g = torch.Generator().manual_seed(0)
    x = {s: torch.randn(n, 5, generator=g) for s, n in (("train", 200), ("val", 50), ("test", 50))}
    w = torch.tensor([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0], [0.0, 0.0], [0.3, 0.0]])
    splits = {s: check.Split(torch.zeros(len(v), 3, 1, 1, dtype=torch.uint8), 2 + v @ w,
                             torch.ones(len(v), 2, dtype=torch.bool), torch.zeros(len(v), 17)) for s, v in x.items()}
    scores, _ = check.linear_readout("au_intensity", x, splits)
    assert scores.min() > 0.99
