"""engine.batchnorm: BN running statistics of an untrained network, estimated without training."""
from __future__ import annotations

import torch
from torch import nn

from affectlab.engine.batchnorm import calibrate_batchnorm


def test_running_statistics_are_the_exact_average_over_unequal_batches_and_nothing_else_changes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.LazyLinear(5), nn.BatchNorm1d(5, momentum=0.3))
    images = torch.rand(10, 3, 8, 8) * 3 + 1
    net(images[:2])  # materialise the lazy layer
    net.eval()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [images[:4], images[4:8], images[8:]]  # 4, 4, 2: a plain cumulative average would weight them 1:1:1
    assert calibrate_batchnorm(net, batches) == 10
    conv = net[0](images)
    assert torch.allclose(net[1].running_mean, conv.mean((0, 2, 3)), atol=1e-5)
    assert not net.training and net[5].momentum == 0.3 and net[1].momentum == 0.1  # mode and momenta restored
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    assert net[5].running_mean.abs().sum() > 0 and not torch.equal(net[5].running_var, torch.ones(5))  # BN1d too
