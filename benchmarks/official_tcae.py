"""Run the official TCAE code (github.com/mysee1989/TCAE) next to affectlab's and print how far apart
they are, with the same deterministic weights and seeded inputs.

    git clone https://github.com/mysee1989/TCAE /tmp/TCAE        # or any export of the repository
    PYTHONPATH=src:. python benchmarks/official_tcae.py --official /tmp/TCAE [--curriculum]
    PYTHONPATH=src:. python benchmarks/official_tcae.py --official /tmp/TCAE \
        --write-fixture tests/fixtures/tcae_official_golden.json

Nothing official is vendored: the clone is read at run time and converted to Python 3 on a temporary
copy, with exactly the edits listed in ``docs/fidelity.md`` (tabs expanded; ``.cuda()`` removed;
``F.grid_sample`` called with ``align_corners=True``, the PyTorch 0.4.1 behaviour; ``.view`` →
``.reshape`` in the two L1 criteria; Python 2 ``print`` statements → ``pass``; the training and
validation loop bodies wrapped in functions). Both networks are filled by
:func:`affectlab.models.tcae_official.golden_state_dict` from the official tensor names and run in
eval mode on :func:`~affectlab.models.tcae_official.golden_pair`. ``--write-fixture`` records the
official side (sampled elements, norms, loss terms, gradient norms; no weights) for
``tests/methods/test_tcae_golden.py``. ``--curriculum`` also runs the official ``TrackLoss`` schedule
next to :class:`~affectlab.losses.tcae.CurriculumWindow` on synthetic validation curves.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from affectlab.config import EXPERIMENTS_DIR, load_yaml
from affectlab.losses.tcae import TCAELossWeights
from affectlab.models.tcae import TCAE
from affectlab.models.tcae_official import (
    GOLDEN_GRADIENTS,
    GOLDEN_SIZE,
    GOLDEN_TENSORS,
    GOLDEN_TOLERANCES,
    GOLDEN_WINDOW,
    affectlab_golden,
    compare_with_fixture,
    fill_golden,
    golden_pair,
    golden_state_dict,
    official_key_map,
    summarize,
)

TRAIN_SCRIPT = "self_supervised_train_TCAE.py"
#: the official loss weights, as ``run()`` passes them (w1 … w10)
OFFICIAL_WEIGHTS = dict(w1=10, w2=1, w3=1, w4=0.1, w5=1, w6=1, w7=1, w8=1, w9=1, w10=1)
#: affectlab tensor → official local variable of the training iteration
TENSOR_NAMES = {
    "phi_s": "input_exp_f", "psi_s": "input_pose_f", "phi_t": "target_exp_f", "psi_t": "target_pose_f",
    "delta_au": "exp_flow_samplers", "delta_pose": "pose_flow_samplers", "delta": "output_flow",
    "au_changed": "exp_image", "pose_changed": "pose_image", "reconstruction": "output_image",
    "cycle_au": "exp_2image", "cycle_pose": "pose_2image",
}
#: affectlab loss term → official per-sample (training) and batch-mean (validation) variables
TERM_NAMES = {
    "rec": ("loss_pre_sort", "loss"),
    "sparse": ("exp_flow_tv_loss_pre_sort", "exp_flow_tv_loss"),
    "emb_pose_pose_t": ("pose_img_pose_loss_pre_sort", "pose_img_pose_loss"),
    "emb_pose_au_s": ("pose_img_exp_loss_pre_sort", "pose_img_exp_loss"),
    "emb_au_pose_s": ("exp_img_pose_loss_pre_sort", "exp_img_pose_loss"),
    "emb_au_au_t": ("exp_img_exp_loss_pre_sort", "exp_img_exp_loss"),
    "emb_rec_pose_t": ("out_img_pose_loss_pre_sort", "out_img_pose_loss"),
    "emb_rec_au_t": ("out_img_exp_loss_pre_sort", "out_img_exp_loss"),
    "cyc_au": ("exp_recon_loss_pre_sort", "exp_recon_loss"),
    "cyc_pose": ("pose_recon_loss_pre_sort", "pose_recon_loss"),
}
HEADER = '''import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable


def grid_sample_041(input, grid):
    # PyTorch 0.4.1 grid_sample: bilinear, zero padding, corners aligned
    return F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

'''


class ConversionError(RuntimeError):
    """The given folder does not hold the official code in the layout this script converts."""


def _between(lines: list[str], start: str, stop: str, after: int = 0) -> tuple[list[str], int]:
    """Lines from the first one (at or after ``after``) that starts with ``start`` (stripped) up to,
    not including, the next one that starts with ``stop``; also returns the end position."""
    try:
        first = next(i for i in range(after, len(lines)) if lines[i].strip().startswith(start))
        end = next(i for i in range(first + 1, len(lines)) if lines[i].strip().startswith(stop))
    except StopIteration:
        raise ConversionError(f"{TRAIN_SCRIPT}: no block from {start!r} to {stop!r}") from None
    return lines[first:end], end


def _python3(lines: list[str], dedent: int = 0) -> list[str]:
    out = []
    for line in lines:
        line = line[dedent:] if line[:dedent].strip() == "" else line
        code = line.strip()
        if code.startswith("print ") and not code.startswith("print("):
            line = line[: len(line) - len(line.lstrip())] + "pass"
        line = line.replace(".cuda()", "").replace("F.grid_sample(", "grid_sample_041(")
        line = line.replace("torch.abs(mat).view(", "torch.abs(mat).reshape(")
        out.append(line)
    return out


def convert(official: Path, into: Path) -> None:
    """Write Python 3 versions of the official model and training iteration into ``into``."""
    for name in ("models_multiview.py", "TrackLoss.py", TRAIN_SCRIPT):
        if not (official / name).is_file():
            raise ConversionError(f"{official}: no {name}; expected a clone or export of github.com/mysee1989/TCAE")
    for name in ("models_multiview.py", "TrackLoss.py"):
        (into / name).write_text((official / name).read_text().expandtabs(8))
    lines = (official / TRAIN_SCRIPT).read_text().expandtabs(8).splitlines()
    criteria, _ = _between(lines, "criterion_reconstruction = nn.L1Loss(reduce=False)", "def w_hook")
    _, train_start = _between(lines, "def train(", "optimizer.zero_grad()")
    train_body, _ = _between(lines, "target_image = Variable(batch[0])", "total_loss.backward()", train_start)
    _, val_start = _between(lines, "def val(", "val_data_loader = DataLoader")
    val_body, _ = _between(lines, "target_image = Variable(batch[0])", "t_loss += total_loss", val_start)
    weights = ", ".join(f"{k}={v}" for k, v in OFFICIAL_WEIGHTS.items())
    module = [HEADER, *_python3(criteria), "",
              f"def official_forward_losses(model, batch, epoch=1, iteration=1, minpercentile=0.0, "
              f"maxpercentile=0.5, {weights}):",
              "    epoch_t = 0", *_python3(train_body, dedent=4), "    return locals()", "",
              f"def official_val_losses(model, batch, iteration=1, {weights}):",
              *_python3(val_body, dedent=4), "    return locals()", ""]
    (into / "official_step.py").write_text("\n".join(module))


def official_commit(official: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(official), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def official_golden(folder: Path, source: torch.Tensor, target: torch.Tensor) -> dict:
    """The official side of the comparison, in the record layout of :func:`affectlab_golden`."""
    sys.path.insert(0, str(folder))
    try:
        models = importlib.import_module("models_multiview")
        step = importlib.import_module("official_step")
    finally:
        sys.path.remove(str(folder))
    with contextlib.redirect_stdout(io.StringIO()):  # its constructor prints two numbers
        model = models.FrontaliseModelMasks_wider(inner_nc=256, num_output_channels=3, num_masks=0,
                                                  num_additional_ids=32)
    model.load_state_dict(golden_state_dict({k: tuple(v.shape) for k, v in model.state_dict().items()}))
    model.eval()
    model.zero_grad()
    batch = [target, source]  # the official loader returns (target, source)
    lo, hi = GOLDEN_WINDOW
    local = step.official_forward_losses(model, batch, minpercentile=lo, maxpercentile=hi)
    local["total_loss"].backward()
    with torch.no_grad():
        val = step.official_val_losses(model, batch)
    weight_au, weight_pose = local["exp_mask"].exp(), local["pose_mask"].exp()
    tensors = {ours: local[theirs] for ours, theirs in TENSOR_NAMES.items()}
    tensors["attention_au"] = weight_au / (weight_pose + weight_au)
    params = dict(model.named_parameters())
    to_official = {v: k for k, v in official_key_map().items()}
    grads = {name: float(params[to_official[name]].grad.norm()) for name in GOLDEN_GRADIENTS}
    grads["all"] = float(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm())
    return {
        "tensors": {k: tensors[k].detach().flatten(1) for k in GOLDEN_TENSORS},
        "terms": {ours: local[train].detach() for ours, (train, _) in TERM_NAMES.items()},
        "train_total": float(local["total_loss"]),
        "val_terms": {ours: float(val[name]) for ours, (_, name) in TERM_NAMES.items()},
        "val_total": float(val["total_loss"]), "grad_norms": grads,
    }


def table(official: dict, ours: dict) -> list[tuple[str, str, float, float]]:
    """Rows (quantity, official name, max |diff| or relative diff, tolerance) over all elements."""
    rows = []
    for name, kind in GOLDEN_TENSORS.items():
        diff = (official["tensors"][name] - ours["tensors"][name]).abs().max().item()
        rows.append((name, TENSOR_NAMES.get(name, "from exp_mask, pose_mask"), diff, GOLDEN_TOLERANCES[kind]))
    for name, (train, val) in TERM_NAMES.items():
        diff = ((official["terms"][name] - ours["terms"][name]).abs() / official["terms"][name].abs()).max().item()
        rows.append((f"term {name} (per sample)", train, diff, GOLDEN_TOLERANCES["term"]))
        rel = abs(official["val_terms"][name] - ours["val_terms"][name]) / abs(official["val_terms"][name])
        rows.append((f"val {name}", val, rel, GOLDEN_TOLERANCES["term"]))
    for key, label in (("train_total", "total_loss (train, window [0, .5])"), ("val_total", "total_loss (val)")):
        rows.append((key, label, abs(official[key] - ours[key]) / abs(official[key]), GOLDEN_TOLERANCES["term"]))
    for name, value in official["grad_norms"].items():
        rows.append((f"|grad| {name}", "same parameter", abs(value - ours["grad_norms"][name]) / value,
                     GOLDEN_TOLERANCES["gradient"]))
    return rows


def fixture(official: dict, commit: str | None) -> dict:
    return {
        "format": "affectlab golden TCAE v1",
        "official": {"repository": "github.com/mysee1989/TCAE", "commit": commit},
        "torch": torch.__version__, "written_by": "benchmarks/official_tcae.py",
        "tensors": {k: summarize(v) for k, v in official["tensors"].items()},
        "terms": {k: v.tolist() for k, v in official["terms"].items()},
        "train_total": official["train_total"], "val_terms": official["val_terms"],
        "val_total": official["val_total"], "grad_norms": official["grad_norms"],
    }


def simulate_official_schedule(track_loss: type, losses: list[float]) -> tuple[list[int], list[int], list[float]]:
    """The official ``run()`` loop around ``TrackLoss`` (its lines 650-659, re-typed here: they sit in
    ``run()`` with the training): window shift epochs, plateau firing epochs, learning rate per epoch."""
    lr = _plateau_optimizer()
    scheduler, lo, hi = track_loss(), 0.0, 0.5
    shifts, plateaus, rates = [], [], []
    for epoch, loss in enumerate(losses, 1):
        scheduler.update(loss, epoch)
        if scheduler.drop_learning_rate(epoch):
            if hi < 0.85:
                lo, hi = lo + 0.1, hi + 0.1
                scheduler = track_loss()
                shifts.append(epoch)
            else:
                lr.step(loss)
                plateaus.append(epoch)
        rates.append(lr.optimizer.param_groups[0]["lr"])
    return shifts, plateaus, rates


def simulate_affectlab_schedule(losses: list[float]) -> tuple[list[int], list[int], list[float]]:
    """The same with :class:`~affectlab.losses.tcae.CurriculumWindow` as ``TCAEPretrainModule`` drives it."""
    from affectlab.losses.tcae import CurriculumWindow

    lr = _plateau_optimizer()
    window = CurriculumWindow(patience=15)
    shifts, plateaus, rates = [], [], []
    for epoch, loss in enumerate(losses, 1):
        event = window.update(loss)
        if event == "shift":
            shifts.append(epoch)
        elif event == "plateau":
            lr.step(loss)
            plateaus.append(epoch)
        rates.append(lr.optimizer.param_groups[0]["lr"])
    return shifts, plateaus, rates


def _plateau_optimizer() -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3, momentum=0.9)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=10)


def validation_curves(epochs: int = 1999, seed: int = 0) -> dict[str, list[float]]:
    """Synthetic validation-loss curves over the official 1999 epochs."""
    g = torch.Generator().manual_seed(seed)
    e = torch.arange(1, epochs + 1, dtype=torch.float64)
    noise = torch.randn(2, epochs, generator=g, dtype=torch.float64)
    return {
        "20-epoch decrease, then flat": torch.where(e <= 20, 2.0 - e / 20, torch.ones_like(e)).tolist(),
        "decay + noise sd 1e-3": (1.0 + torch.exp(-e / 50) + 1e-3 * noise[0]).tolist(),
        "slow decay + noise sd 5e-3": (1.0 + torch.exp(-e / 300) + 5e-3 * noise[1]).tolist(),
        "a new minimum every 20 epochs": (2.0 - (e // 20) * 1e-3).tolist(),
    }


def print_curriculum_table(folder: Path) -> bool:
    """Official vs affectlab curriculum on :func:`validation_curves`; True when they agree everywhere."""
    sys.path.insert(0, str(folder))
    try:
        track_loss = importlib.import_module("TrackLoss").TrackLoss
    finally:
        sys.path.remove(str(folder))
    print(f"\n{'curve (1999 epochs)':<32} {'shift epochs (official / ours)':<40} {'plateau firings':>16} "
          f"{'final lr':>19} {'same lr':>9}")
    agree = True
    for name, losses in validation_curves().items():
        (s_off, p_off, r_off), (s_our, p_our, r_our) = (simulate_official_schedule(track_loss, losses),
                                                      simulate_affectlab_schedule(losses))
        same = sum(a == b for a, b in zip(r_off, r_our))
        agree &= s_off == s_our and p_off == p_our
        shifts = f"{'/'.join(map(str, s_off))} | {'/'.join(map(str, s_our))}"
        print(f"{name:<32} {shifts:<40} {len(p_off):>7} / {len(p_our):<6} {r_off[-1]:>8.0e} / {r_our[-1]:<8.0e} "
              f"{same:>4}/{len(losses)}")
    return agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="clone or export of mysee1989/TCAE")
    parser.add_argument("--write-fixture", type=Path, default=None, help="write the official outputs here (JSON)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--curriculum", action="store_true",
                        help="also run the official TrackLoss schedule next to CurriculumWindow on synthetic curves")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)  # the official code's deprecated arguments
    source, target = golden_pair()
    with tempfile.TemporaryDirectory(prefix="official_tcae_") as tmp:
        try:
            convert(args.official, Path(tmp))
        except ConversionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        official = official_golden(Path(tmp), source, target)
        curriculum_agrees = print_curriculum_table(Path(tmp)) if args.curriculum else True
    model = TCAE.from_preset("paper")
    fill_golden(model)
    loss = load_yaml(EXPERIMENTS_DIR / "exp" / "tcae_paper.yaml")["method"]["loss"]
    ours = affectlab_golden(model, TCAELossWeights(**loss), source, target)
    commit = official_commit(args.official)
    print(f"official TCAE {commit or '(not a git checkout)'} vs affectlab EXP=tcae_paper; golden weights, "
          f"eval mode, batch {source.shape[0]}, {GOLDEN_SIZE} px, torch {torch.__version__}")
    print(f"{'quantity':<38} {'official':<34} {'max |diff|':>11} {'tolerance':>10}  ok")
    failed = 0
    for name, theirs, diff, tol in table(official, ours):
        ok = diff <= tol
        failed += not ok
        print(f"{name:<38} {theirs:<34} {diff:>11.2e} {tol:>10.0e}  {'yes' if ok else 'NO'}")
    print("(terms, totals and gradient norms: relative difference)")
    if args.write_fixture:
        record = fixture(official, commit)
        assert all(ok for *_, ok in compare_with_fixture(record, ours)), "fixture does not round-trip"
        args.write_fixture.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = args.write_fixture.with_suffix(f".tmp{os.getpid()}")
        tmp_path.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp_path, args.write_fixture)
        print(f"wrote {args.write_fixture} ({args.write_fixture.stat().st_size} bytes)")
    return 1 if failed or not curriculum_agrees else 0


if __name__ == "__main__":
    sys.exit(main())
