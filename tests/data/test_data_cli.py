"""``affectlab data summary``: counts, skipped items, error exit codes."""
from __future__ import annotations

from affectlab.commands import data as data_cmd


def run(argv):
    import argparse

    p = argparse.ArgumentParser()
    data_cmd.add_arguments(p)
    return data_cmd.run(p.parse_args(argv))


def test_summary_prints_counts_and_skips(mini, capsys):
    root, truth = mini
    rc = run(["summary", "DATA=dfew", f"data.root={root / 'DFEW'}", "fold=3", "num_workers=0", "--check-images"])
    out = capsys.readouterr().out
    assert rc == 0
    n_test = int((truth["dfew"]["fold_of"] == 3).sum())
    assert any(line.split()[:2] == ["test", str(n_test)] for line in out.splitlines())
    assert "padded by rule 'stretch'" in out and "undecodable images: 0" in out


def test_summary_bp4d_rates_and_missing_root(mini, capsys, tmp_path):
    root, _ = mini
    assert run(["summary", "DATA=bp4d", f"DATA_ROOT={root / 'BP4D'}"]) == 0
    out = capsys.readouterr().out
    assert "train positive rate: AU01" in out and "untracked frames cropped by the sequence's median landmarks" in out
    assert "2DFeatures fit(i) convention (sequences): image" in out
    assert run(["summary", "DATA=bp4d", f"root={tmp_path / 'missing'}"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "missing") in err and "Expected layout" in err
