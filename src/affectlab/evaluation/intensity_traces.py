"""Scoring and plotting AU intensities predicted over overlapping windows of test sequences."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch


def sequence_names(meta: Any, batch_size: int) -> list[str]:
    """One readable id per batch item from the collated ``meta`` (subject + sequence when present)."""
    if not isinstance(meta, dict):
        return [f"item{i}" for i in range(batch_size)]
    names = []
    for i in range(batch_size):
        parts = [str(meta[k][i]) for k in ("subject", "sequence") if k in meta]
        if len(parts) == 2 and parts[0] in parts[1]:  # DISFA: sequence = subject; BP4D: F001_T1
            parts = parts[1:]
        names.append("_".join(parts) or f"item{i}")
    return names


class FirstSeenFrames:
    """Keeps every (sequence, frame) once per evaluation pass: a frame delivered by two overlapping
    windows is scored in the first one only. Batches without ``meta["frames"]`` pass unchanged."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, int]] = set()

    def reset(self) -> None:
        self.seen = set()

    def mask(self, meta: Any, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` (B,T,K) restricted to the frames not seen before in this pass."""
        if not isinstance(meta, dict) or "frames" not in meta:
            return mask
        keep = torch.ones(mask.shape[:2], dtype=torch.bool)
        for i, seq in enumerate(sequence_names(meta, len(mask))):
            for t, frame in enumerate(meta["frames"][i].tolist()):
                key = (seq, int(frame))
                if key in self.seen:
                    keep[i, t] = False
                else:
                    self.seen.add(key)
        return mask.bool() & keep.to(mask.device)[..., None]


class IntensityTraces:
    """Prediction and ground truth per frame of the first ``max_sequences`` test sequences met."""

    def __init__(self, max_sequences: int) -> None:
        self.max_sequences = max_sequences
        self.traces: dict[str, dict[str, list[torch.Tensor]]] = {}

    def reset(self) -> None:
        self.traces = {}

    def __len__(self) -> int:
        return len(self.traces)

    def add(self, meta: Any, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
        """Keep the frames of ``pred``/``target`` (B,T,K) where ``mask`` has any coded AU."""
        frames = meta["frames"] if isinstance(meta, dict) and "frames" in meta else None
        for i, name in enumerate(sequence_names(meta, len(pred))):
            if name not in self.traces and len(self.traces) >= self.max_sequences:
                continue
            keep = mask[i].any(-1).cpu()
            idx = frames[i].cpu() if frames is not None else torch.arange(pred.shape[1])
            entry = self.traces.setdefault(name, {"frame": [], "pred": [], "target": []})
            entry["frame"].append(idx[keep])
            entry["pred"].append(pred[i].detach().cpu()[keep])
            entry["target"].append(torch.where(mask[i], target[i], math.nan).detach().cpu()[keep])

    def plot(self, au_names: list[str], path: Path) -> Path:
        """Write the collected traces as a PNG (:func:`plot_traces`)."""
        return plot_traces(self.traces, au_names, path)


def plot_traces(traces: dict[str, dict[str, list[torch.Tensor]]], au_names: list[str], path: Path) -> Path:
    """Prediction vs ground truth per AU over the frame index, one column per test sequence (uncoded
    ground-truth entries are NaN and show as gaps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, n = len(au_names), len(traces)
    fig, axes = plt.subplots(k, n, figsize=(3.2 * n, 0.9 * k + 0.6), sharex="col", squeeze=False)
    for col, (name, entry) in enumerate(traces.items()):
        frame = torch.cat(entry["frame"])
        order = frame.argsort()
        frame, pred, target = frame[order], torch.cat(entry["pred"])[order], torch.cat(entry["target"])[order]
        for row in range(k):
            ax = axes[row, col]
            ax.plot(frame.numpy(), target[:, row].float().numpy(), color="black", lw=1.0, label="ground truth")
            ax.plot(frame.numpy(), pred[:, row].float().numpy(), color="tab:red", lw=1.0, label="prediction")
            ax.set_ylim(-0.2, 5.2)
            ax.tick_params(labelsize=6)
            if col == 0:
                ax.set_ylabel(au_names[row], fontsize=7)
        axes[0, col].set_title(name, fontsize=8)
        axes[-1, col].set_xlabel("frame", fontsize=7)
    axes[0, 0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
