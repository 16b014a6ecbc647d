"""How much of a frame pair's difference a warp can explain at all (an upper reference for TCAE's
reconstruction evidence): per pair, a free displacement field on a K×K control grid (bilinearly
upsampled to S×S) is fitted by Adam to minimise the L1 of W(I_s, Δ) against I_t, with the same
:func:`warp` as TCAE. Prints the identity-warp L1, the fitted-flow L1 and their ratio, for the first
64 evaluation pairs (seeded; up to 32 per track) of BP4D test subjects and of the held-out ``videos``
tracks.

    PYTHONPATH=src:. python benchmarks/tcae_oracle_flow.py --sizes 64 --data bp4d,videos
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from affectlab.models.tcae import warp


def fit_flow(source: torch.Tensor, target: torch.Tensor, control: int, iterations: int = 300) -> float:
    """Mean per-pair L1 after fitting one K×K-control-point displacement field per pair."""
    size = source.shape[-1]
    flow = torch.zeros(len(source), 2, control, control, requires_grad=True)
    opt = torch.optim.Adam([flow], lr=0.01)
    for _ in range(iterations):
        delta = F.interpolate(flow, size=(size, size), mode="bilinear", align_corners=True)
        loss = (warp(source, delta) - target).abs().flatten(1).mean(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        delta = F.interpolate(flow, size=(size, size), mode="bilinear", align_corners=True)
        return (warp(source, delta) - target).abs().flatten(1).mean(1).mean().item()


def main(argv: list[str] | None = None) -> int:
    from data_modules import create_datamodule

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="64")
    p.add_argument("--data", default="bp4d,videos")
    p.add_argument("--controls", default="4,16")
    p.add_argument("--gap-max", type=int, default=17)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for size in (int(x) for x in a.sizes.split(",")):
        for data in a.data.split(","):
            dm = create_datamodule(data, task="pairs", image_size=size, normalize="zero_one", hflip=False,
                                   pair_gap_min=1, pair_gap_max=a.gap_max, items_per_track=32)
            dataset = dm.dataset("test" if data == "bp4d" else "val")
            batch = next(iter(DataLoader(dataset, batch_size=64, shuffle=False)))
            src, tgt = batch["source"].float(), batch["target"].float()
            identity = (src - tgt).abs().flatten(1).mean(1).mean().item()
            for control in (int(x) for x in a.controls.split(",")):
                fitted = fit_flow(src, tgt, control)
                print(f"{data} {size}px pairs={len(src)} identity {identity:.4f} fitted {control}x{control} flow "
                      f"{fitted:.4f} ratio {fitted / identity:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
