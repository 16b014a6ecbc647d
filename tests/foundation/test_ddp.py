"""A real two-process DDP fit on CPU (gloo) through the entry point, as Lightning's ``ddp``
launcher re-executes the command line and cannot run inside pytest."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.foundation.helpers import TINY, results_of, run_cli


def test_ddp_cpu_gathers_validation_from_both_ranks_and_tests_once(tmp_path):
    # 8 toy subjects: fold 1 tests 3, validation holds 1 subject = 48 frames (even, so no padding)
    args = ["train", *TINY, "TRAINER=ddp_cpu", "trainer.max_epochs=2", "data.subjects=8",
            "data.batch_size=8", f"run_root={tmp_path}"]
    result = run_cli(args, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    record = results_of(run_dir)
    assert record["devices"] == 2 and record["test_pass"] == "single_process"
    assert "SyncBatchNorm" in result.stderr or "sync_batchnorm" in result.stderr  # switched off on CPU, said so

    from data_modules import create_datamodule

    dm = create_datamodule("toyau", subjects=8)
    n_val = len(dm.manifest("val"))
    logged = pd.read_csv(run_dir / "logs/supervised/metrics.csv")["val/n_frames"].dropna()
    # each rank sees half of the validation frames; the synced metric counts all of them
    assert n_val % 2 == 0 and (logged == n_val).all()
