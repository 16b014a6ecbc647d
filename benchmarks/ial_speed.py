"""Size, compute and speed of the IAL network presets.

Prints parameters, GMACs per clip (``torch.utils.flop_counter``: convs, linears, attention; FLOPs/2)
and forward / forward+backward time per batch. Reference (methods.md §4.1 [D]): the official model
has 18.94 M used parameters and 5.62 GMACs per 16×112×112 clip by analytic count.

    PYTHONPATH=src:. python benchmarks/ial_speed.py [--device cuda] [--batch 8] [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from affectlab.models.ial import build_ial_net

CASES = [
    ("paper", dict(), 16, 112),
    ("paper/se", dict(attention="se"), 16, 112),
    ("paper/plain", dict(attention="none"), 16, 112),
    ("small", dict(), 16, 64),
    ("small 8f", dict(), 8, 64),
    ("narrow 8f", dict(), 8, 112),
]


def _time(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"device={args.device} batch={args.batch} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'preset':<12} {'input':>10} {'params':>12} {'GMACs/clip':>11} {'fwd ms/batch':>13} {'fwd+bwd ms/batch':>17}")
    for name, overrides, frames, size in CASES:
        preset = name.split()[0].split("/")[0]
        net = build_ial_net(preset, num_frames=frames, image_size=size, **overrides).to(args.device)
        params = sum(p.numel() for p in net.parameters())
        x = torch.rand(1, frames, 3, size, size, device=args.device)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net.eval()(x)
        gmacs = counter.get_total_flops() / 2e9
        xb = torch.rand(args.batch, frames, 3, size, size, device=args.device)
        with torch.no_grad():
            fwd = _time(lambda: net(xb), args.repeats, args.device)
        net.train()

        def step():
            net.zero_grad(set_to_none=True)
            net(xb).logits.sum().backward()

        both = _time(step, args.repeats, args.device)
        print(f"{name:<12} {f'{frames}x{size}':>10} {params:>12,} {gmacs:>11.2f} {fwd * 1e3:>13.1f} {both * 1e3:>17.1f}")


if __name__ == "__main__":
    main()
