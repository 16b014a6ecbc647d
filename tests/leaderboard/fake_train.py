"""A stand-in for ``python -m affectlab train`` used by the CV and sweep tests.

Takes ``KEY=value`` arguments, writes ``<run_root>/<method>/<data>/<id>/results.json`` (and a
Lightning-style ``metrics.csv``) with metrics that depend on ``data.fold`` and ``method.lr``,
and prints the run directory as its last stdout line, like the real runner.
``method.crash=true`` makes it exit with an error; ``FAKE_TRAIN_FAIL_FOLD=k`` fails fold k.
"""
import json
import os
import sys
import uuid
from pathlib import Path

args = dict(a.split("=", 1) for a in sys.argv[1:])
if args.get("method.crash") in ("true", "True"):
    sys.exit("simulated crash")
fold = int(args.get("data.fold", 1))
if os.environ.get("FAKE_TRAIN_FAIL_FOLD") == str(fold):
    sys.exit(f"simulated failure on fold {fold}")
lr = float(args.get("method.lr", "0.01"))
dropout = args.get("method.dropout", "0.0")
assert dropout == "null" or float(dropout) >= 0, dropout
method, data = args.get("METHOD", "fake"), args.get("DATA", "disfa")
run_dir = Path(args.get("run_root", "runs")) / method / data / uuid.uuid4().hex[:8]
run_dir.mkdir(parents=True)
aus = {"au01": 0.30, "au02": 0.25, "au04": 0.50, "au06": 0.60}
metrics = {f"f1_{au}": round(v + 0.05 * fold - abs(lr - 0.01), 6) for au, v in aus.items()}
metrics["f1_mean"] = sum(metrics.values()) / len(aus)
history = [metrics["f1_mean"] - 0.1, metrics["f1_mean"] - 0.05, metrics["f1_mean"]]
(run_dir / "csv").mkdir()
(run_dir / "csv" / "metrics.csv").write_text(
    "epoch,val/f1_mean,train/loss\n" + "".join(f"{i},{v},\n{i},,{1.0 / (i + 1)}\n" for i, v in enumerate(history)))
record = {
    "schema_version": 1, "method": method, "dataset": data, "task": "au_occurrence",
    "protocol": f"{data}/3fold", "fold": fold, "split": "test", "selected_on": "val", "metrics": metrics,
    "seed": int(args.get("seed", 0)), "git_commit": None, "config_hash": "fake", "config": args,
    "data_source": "synthetic-tiny-seed0", "run_dir": str(run_dir), "sweep_id": args.get("sweep_id"),
    "timestamp": "2026-11-23T12:00:00+00:00", "wall_time_s": 1.0,
}
(run_dir / "results.json").write_text(json.dumps(record))
if args.get("leaderboard.url"):
    sys.path.insert(0, "src")
    from affectlab.leaderboard import record_result

    record_result(record, {"sweep_id": args.get("sweep_id"), "leaderboard": {"url": args["leaderboard.url"]}})
print("training done")
print(run_dir)
