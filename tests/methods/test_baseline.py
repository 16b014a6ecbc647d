"""Baseline head: the grid pooling keeps where on the face a feature fires."""
import pytest
import torch
from omegaconf import OmegaConf

from affectlab.config import ConfigError
from affectlab.methods.baseline import AUClassifier

AUS = ["AU01", "AU02", "AU04"]


def classifier(grid: int) -> AUClassifier:
    cfg = OmegaConf.create({"method": {"backbone": "resnet10t", "checkpoint": None, "lr": 1e-3,
                                       "weight_decay": 0.0, "max_pos_weight": 10.0, "grid": grid}})
    torch.manual_seed(0)
    return AUClassifier(cfg, AUS, torch.full((len(AUS),), 0.3))


def head_of(model: AUClassifier, grid: int):
    """The part after the backbone's last feature map."""
    if grid == 1:
        return lambda fmap: model.net.forward_head(fmap)
    return lambda fmap: model.net[1:](fmap)


@pytest.mark.parametrize("grid", [1, 2])
def test_only_the_grid_head_tells_apart_maps_whose_features_swap_places(grid):
    model = classifier(grid).eval()
    fmap = torch.zeros(1, model.net[0].num_features if grid > 1 else model.net.num_features, 4, 4)
    fmap[:, :, :2, :2] = torch.rand(fmap.shape[1], 2, 2)  # a feature firing in the top-left quadrant
    moved = fmap.roll(shifts=(2, 2), dims=(2, 3))        # the same feature in the bottom-right one
    head = head_of(model, grid)
    differ = not torch.allclose(head(fmap), head(moved), atol=1e-6)
    assert differ == (grid > 1)


def test_grid_head_maps_a_112px_crop_to_one_logit_per_au():
    model = classifier(2).eval()
    assert model.net[-1].in_features == 4 * model.net[0].num_features
    assert model(torch.randn(2, 3, 112, 112)).shape == (2, len(AUS))


def test_a_grid_below_one_is_a_config_error():
    with pytest.raises(ConfigError, match="method.grid"):
        classifier(0)
