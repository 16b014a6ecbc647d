"""Dataset-free sanity check of TCAE's learning dynamics on toy faces with independent factors.

Each toy face is a smooth random texture (identity) with dark eye/brow/mouth marks. The "AU" factor
opens the mouth and raises the brows (a local warp); the "pose" factor is a global shift + rotation.
Pairs share the identity and draw both factors independently. After ``--steps`` SGD steps of the
``small`` TCAE (official objective and window), it prints the reconstruction L1 of the fused warp vs the
identity warp and 4-fold ridge R² of φ/ψ → AU amount and → pose, for the trained and a random encoder.

    PYTHONPATH=src:. python benchmarks/tcae_toy_factors.py --steps 400 --lr 0.01
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from affectlab.losses.tcae import TCAELossWeights, per_sample_terms, tcae_objective
from affectlab.models.tcae import PRESETS, TCAE, identity_grid, warp

SIZE = 64


def toy_textures(n: int, g: torch.Generator) -> torch.Tensor:
    t = F.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(SIZE, SIZE), mode="bicubic", align_corners=False)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
    face = ((xx / 0.7) ** 2 + (yy / 0.9) ** 2 < 1).float()
    marks = (torch.exp(-((xx / 0.3) ** 2 + ((yy - 0.45) / 0.06) ** 2))
             + torch.exp(-(((xx.abs() - 0.35) / 0.12) ** 2 + ((yy + 0.3) / 0.07) ** 2))
             + torch.exp(-(((xx.abs() - 0.35) / 0.18) ** 2 + ((yy + 0.5) / 0.03) ** 2)))
    return (t.clamp(0, 1) * 0.5 + 0.3 * face) * (1 - 0.8 * marks.clamp(0, 1))


def render(texture: torch.Tensor, au: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """``au`` (B,) in [0,1]; ``pose`` (B,3) = (dx, dy, rotation)."""
    grid = identity_grid(SIZE).expand(len(au), -1, -1, -1)
    x, y = grid[:, 0], grid[:, 1]
    mouth = torch.exp(-((x / 0.35) ** 2 + ((y - 0.45) / 0.2) ** 2))
    brows = torch.exp(-(((x.abs() - 0.35) / 0.15) ** 2 + ((y + 0.3) / 0.1) ** 2))
    delta = torch.zeros_like(grid)
    delta[:, 1] = au[:, None, None] * (-0.25 * mouth * torch.sign(y - 0.45) + 0.08 * brows)
    img = warp(texture, delta)
    c, s = torch.cos(pose[:, 2]), torch.sin(pose[:, 2])
    theta = torch.stack([torch.stack([c, -s, pose[:, 0]], 1), torch.stack([s, c, pose[:, 1]], 1)], 1)
    sampling = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, sampling, padding_mode="border", align_corners=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_score

    g = torch.Generator().manual_seed(args.seed)
    textures = toy_textures(200, g)
    scale = torch.tensor([0.2, 0.2, 0.3])

    def pairs(n: int):
        idx = torch.randint(0, len(textures), (n,), generator=g)
        au, pose = torch.rand(n, 2, generator=g), (torch.rand(n, 2, 3, generator=g) - 0.5) * scale
        return render(textures[idx], au[:, 0], pose[:, 0]), render(textures[idx], au[:, 1], pose[:, 1]), au, pose

    torch.manual_seed(args.seed)
    model, random_model = TCAE(PRESETS["small"]), TCAE(PRESETS["small"])
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for step in range(args.steps):
        src, tgt, _, _ = pairs(args.batch)
        window = (0.0, 0.5) if step < args.steps // 2 else (0.1, 0.6)
        loss, _ = tcae_objective(per_sample_terms(model(src, tgt), src, tgt), TCAELossWeights(), window)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    # fair baseline: the random encoder's BatchNorm statistics are estimated on toy faces (no training)
    random_model.train()
    with torch.no_grad():
        for _ in range(10):
            random_model.encoder(pairs(args.batch)[0])
    src, tgt, au, pose = pairs(400)
    with torch.no_grad():
        out = model(src, tgt)
    print(f"reconstruction L1: fused warp {(out.reconstruction - tgt).abs().mean():.4f}, "
          f"identity warp {(src - tgt).abs().mean():.4f}")
    print(f"{'encoder':>10} {'emb':>4} {'R2 AU':>7} {'R2 pose':>8}")
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 13))
    for name, net in (("trained", model), ("random", random_model.eval())):
        with torch.no_grad():
            phi, psi = net.encoder(src)
        for emb_name, emb in (("phi", phi.numpy()), ("psi", psi.numpy())):
            r2_au = cross_val_score(ridge, emb, au[:, 0].numpy(), cv=4, scoring="r2").mean()
            r2_pose = np.mean([cross_val_score(ridge, emb, pose[:, 0, j].numpy(), cv=4, scoring="r2").mean()
                               for j in range(3)])
            print(f"{name:>10} {emb_name:>4} {r2_au:7.3f} {r2_pose:8.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
