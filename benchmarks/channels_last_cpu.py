"""channels_last on CPU: train-step time of each method's default network, contiguous vs channels_last.

For every method, the training module of its CPU default (``experiments/method/<m>.yaml``) is built
twice with the same weights; one copy is converted as the runner does (``module.to(memory_format=
torch.channels_last)``, inputs unchanged). Both run the same train steps (forward, loss, backward, SGD)
on the same random batch, timed interleaved (A, B, A, B, …) so that machine load hits both alike.
Prints the median ms per step, the speed-up (contiguous / channels_last), and the largest difference
of the eval-mode outputs and of the first step's loss relative to their scale (float rounding ≈ 1e-6).

    PYTHONPATH=src:. python benchmarks/channels_last_cpu.py [--repeats 10] [--methods tcae ial ...]

Measured 2026-12-02, 2 shared cores (load average 3.1 before, 5.5 after), 6 steps each, torch 2.14.1:
tcae 5950 → 4075 ms (1.46×), ial 1026 → 844 ms (1.22×), region_relation 1734 → 1416 ms (1.22×),
contrastive_intensity 5033 → 4903 ms (1.03×), baseline 3350 → 3333 ms (1.01×); outputs and losses equal
within 5e-6 relative. Hence ``channels_last_cpu = True`` for tcae, ial and region_relation only.

Re-measured 2026-12-04 on 2 otherwise idle cores (load 1.1–1.5), by thread count (``OMP_NUM_THREADS``):

| method | 2 threads: contiguous → channels_last ms | 1 thread |
|---|---|---|
| tcae | 942 → 758 (1.24×) | 1561 → 1160 (1.35×) |
| ial | 205 → 255 (0.80×); 190 → 209 (0.91×) | 260 → 198 (1.31×) |
| region_relation | 205 → 201 (1.02×); 267 → 271 (0.98×) | 404 → 358 (1.13×) |

The 2-core measurement of 2026-12-02 was taken under load, where each process gets about one core.
With two threads the contiguous kernels use the second core and channels_last barely does (IAL:
190 ms contiguous with 2 threads vs 260 with 1; channels_last 209 vs 198). In the product that does not
carry over: `make train METHOD=ial` (two threads) spends a core's share on its data workers, and its
first 160 steps took 65 and 75 s of training steps in channels_last vs 76 and 68 s contiguous
(alternating runs, `trainer.max_steps=160`; a thread-count rule tried at 87092c4 and reverted). So
``channels_last_cpu`` stays as it was for all three.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from affectlab.config import compose

Case = tuple[torch.nn.Module, Callable[[torch.nn.Module], torch.Tensor], Callable[[torch.nn.Module], torch.Tensor]]
AUS = [f"AU{i:02d}" for i in (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)]


def _tcae(cfg: Any) -> Case:
    from affectlab.losses.tcae import per_sample_terms, tcae_objective
    from affectlab.methods.tcae import TCAEPretrainModule, net_config
    from affectlab.models.tcae import TCAE

    module = TCAEPretrainModule(TCAE(net_config(cfg)), cfg.method)
    b, s = int(cfg.method.pretrain_batch_size), int(cfg.method.model.image_size)
    src, tgt = torch.rand(b, 3, s, s), torch.rand(b, 3, s, s)

    def loss(m):
        out = m.model(src, tgt)
        return tcae_objective(per_sample_terms(out, src, tgt), m.weights, m.curriculum.window)[0]

    return module, loss, lambda m: m.model(src, tgt).reconstruction


def _ial(cfg: Any) -> Case:
    from affectlab.methods.ial import IALModule, clip_length

    module = IALModule(cfg, [f"c{i}" for i in range(7)])
    b, t, s = int(cfg.data.batch_size), clip_length(cfg.data), int(cfg.data.image_size)
    video, label = torch.rand(b, t, 3, s, s), torch.randint(0, 7, (b,))
    return module, lambda m: m._objective(video, label)[0]["loss"], lambda m: m(video)


def _region_relation(cfg: Any) -> Case:
    from affectlab.methods.region_relation import RegionRelationPretrain
    from affectlab.models.au_attention import template_landmarks

    module = RegionRelationPretrain(cfg, AUS)
    b, s = int(cfg.data.batch_size), int(cfg.data.image_size)
    batch = {"image": torch.rand(b, 3, s, s), "landmarks": template_landmarks(s, b)}
    return (module, lambda m: m.losses(batch, update_prior=True)["loss"],
            lambda m: m.encoder(batch["image"], batch["landmarks"]))


def _contrastive(cfg: Any) -> Case:
    from affectlab.methods.contrastive_intensity import ContrastivePretrainModule

    p, s = cfg.method.pretrain, int(cfg.data.image_size)
    module = ContrastivePretrainModule(cfg)
    video = torch.rand(int(p.batch_size), int(p.clip_length + p.temporal_jitter), 3, s, s)
    return module, lambda m: m.loss(video, train=True)[0], lambda m: m.model(video)[0]


def _baseline(cfg: Any) -> Case:
    from affectlab.methods.baseline import AUClassifier

    module = AUClassifier(cfg, AUS, torch.full((len(AUS),), 0.3))
    b, s = int(cfg.data.batch_size), int(cfg.data.image_size)
    image, target = torch.rand(b, 3, s, s), (torch.rand(b, len(AUS)) > 0.7).float()
    return module, lambda m: F.binary_cross_entropy_with_logits(m(image), target), lambda m: m(image)


BUILDERS = {"tcae": _tcae, "ial": _ial, "region_relation": _region_relation,
            "contrastive_intensity": _contrastive, "baseline": _baseline}


def _step(module: torch.nn.Module, loss: Callable, opt: torch.optim.Optimizer, seed: int) -> float:
    torch.manual_seed(seed)  # the same augmentations for both variants
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    value = loss(module)
    value.backward()
    opt.step()
    return time.perf_counter() - start


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp(min=1e-12))


def measure(name: str, repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    cfg = compose([f"METHOD={name}"])
    module, loss, output = BUILDERS[name](cfg)
    plain = module.train()
    last = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    with torch.no_grad():
        out_diff = _rel_diff(output(plain.eval()), output(last.eval()))
    plain.train(), last.train()
    with torch.no_grad():
        torch.manual_seed(1)
        loss_a = float(loss(plain))
        torch.manual_seed(1)
        loss_b = float(loss(last))
    opts = [torch.optim.SGD(m.parameters(), lr=1e-4) for m in (plain, last)]
    times: list[list[float]] = [[], []]
    for i in range(repeats + 2):  # two warm-up steps each
        for j, m in enumerate((plain, last)):
            t = _step(m, loss, opts[j], seed=i)
            if i >= 2:
                times[j].append(t)
    a, b = statistics.median(times[0]), statistics.median(times[1])
    return {"method": name, "contiguous_ms": 1e3 * a, "channels_last_ms": 1e3 * b, "speedup": a / b,
            "out_rel_diff": out_diff, "loss_rel_diff": abs(loss_a - loss_b) / max(abs(loss_a), 1e-12)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--methods", nargs="+", default=list(BUILDERS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average before "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'method':<22} {'contiguous ms':>13} {'chan.-last ms':>13} {'speed-up':>8} {'out rel diff':>12} "
          f"{'loss rel diff':>13}")
    for name in args.methods:
        r = measure(name, args.repeats)
        print(f"{r['method']:<22} {r['contiguous_ms']:>13.1f} {r['channels_last_ms']:>13.1f} {r['speedup']:>7.2f}x "
              f"{r['out_rel_diff']:>12.1e} {r['loss_rel_diff']:>13.1e}", flush=True)
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
