"""Artefacts of a learned K×K AU relation matrix: a CSV with an AU header row and column, and a heatmap.

Written by the region/relation method after pretraining (``artifacts/au_relation.{csv,png}``); on a
synthetic release the probe's test pass compares the same matrix with the true AU co-occurrence
(``evaluation.relation_agreement``).
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch


def save_relation_matrix(path_stem: Path, matrix: torch.Tensor, au_names: list[str], title: str) -> None:
    """Save a K×K AU relation matrix as ``<stem>.csv`` (AU header row/column, 6 decimals) and ``<stem>.png``."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    values = matrix.detach().cpu().double().numpy()
    with open(path_stem.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["au", *au_names])
        for name, row in zip(au_names, values):
            writer.writerow([name, *(f"{v:.6f}" for v in row)])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * len(au_names), 0.6 + 0.45 * len(au_names)))
    image = ax.imshow(values, cmap="viridis")
    ax.set_xticks(range(len(au_names)), au_names, rotation=90)
    ax.set_yticks(range(len(au_names)), au_names)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path_stem.with_suffix(".png"), dpi=120)
    plt.close(fig)
