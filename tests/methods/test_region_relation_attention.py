"""AU attention maps: layouts, centre rules, peak location and horizontal-flip consistency."""
from __future__ import annotations

import pytest
import torch

from affectlab.models.au_attention import (
    AU_CENTRE_RULES,
    FLIP_49,
    attention_maps_from_centres,
    au_attention_maps,
    au_centres,
    flip_landmarks,
    to_49,
)

BP4D_AUS = ["AU01", "AU02", "AU04", "AU06", "AU07", "AU10", "AU12", "AU14", "AU15", "AU17", "AU23", "AU24"]


def _face68(width: float = 64.0, seed: int = 0, jitter: float = 0.01) -> torch.Tensor:
    """A plausible iBUG-68 face in a width×width image (normalised template + jitter)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.zeros(68, 2)
    t[0:17, 0] = torch.linspace(-1.0, 1.0, 17)
    t[0:17, 1] = 0.05 + 1.7 * (1 - t[0:17, 0].abs() ** 2)
    t[17:22] = torch.tensor([[-0.86, -0.30], [-0.70, -0.40], [-0.52, -0.43], [-0.35, -0.40], [-0.20, -0.34]])
    t[22:27] = t[17:22].flip(0) * torch.tensor([-1.0, 1.0])
    t[27:31] = torch.tensor([[0, -0.02], [0, 0.2], [0, 0.4], [0, 0.62]])
    t[31:36] = torch.tensor([[-0.2, 0.74], [-0.1, 0.77], [0, 0.79], [0.1, 0.77], [0.2, 0.74]])
    eye = torch.tensor([[-0.74, 0.0], [-0.6, -0.07], [-0.4, -0.075], [-0.27, 0.01], [-0.4, 0.06], [-0.6, 0.055]])
    t[36:42] = eye
    t[42:48] = eye[[3, 2, 1, 0, 5, 4]] * torch.tensor([-1.0, 1.0])
    t[48:60] = torch.tensor([[-0.4, 1.08], [-0.26, 1.0], [-0.1, 0.96], [0, 0.975], [0.1, 0.96], [0.26, 1.0],
                             [0.4, 1.08], [0.27, 1.16], [0.12, 1.2], [0, 1.21], [-0.12, 1.2], [-0.27, 1.16]])
    t[60:68] = torch.tensor([[-0.36, 1.08], [-0.14, 1.065], [0, 1.07], [0.14, 1.065], [0.36, 1.08],
                             [0.14, 1.075], [0, 1.08], [-0.14, 1.075]])
    t = t + jitter * torch.randn(68, 2, generator=g)
    return (t * torch.tensor([0.35, 0.3]) + torch.tensor([0.5, 0.3])) * width - torch.tensor([0.5, 0.0])


def test_layout_conversion_keeps_the_same_points():
    lm68 = _face68()
    lm66 = lm68[[i for i in range(68) if i not in (60, 64)]]
    assert torch.equal(to_49(lm68), to_49(lm66))
    assert torch.equal(to_49(to_49(lm68)), to_49(lm68))
    with pytest.raises(ValueError, match="51 points"):
        to_49(torch.zeros(51, 2))


def test_flip_permutation_is_an_involution_and_mirrors_the_face():
    assert sorted(FLIP_49) == list(range(49))
    assert [FLIP_49[i] for i in FLIP_49] == list(range(49))
    lm = to_49(_face68(jitter=0.0))  # an exactly symmetric face is its own mirror image
    flipped = flip_landmarks(lm, 64.0)
    assert torch.allclose(flipped, lm, atol=1e-4)
    assert torch.allclose(flip_landmarks(flipped, 64.0), lm)


def test_centre_rules_hand_computed():
    lm = _face68()[None]
    lm49 = to_49(lm)[0]
    ruler = (lm49[22] - lm49[25]).norm()
    c = au_centres(lm, ["AU01", "AU12", "AU06"])[0]
    # AU01: inner brow heads (iBUG 21, 22) moved up by half the inner-canthus distance
    assert torch.allclose(c[0, 0], lm[0, 21] - torch.tensor([0.0, 0.5]) * ruler)
    assert torch.allclose(c[0, 1], lm[0, 22] - torch.tensor([0.0, 0.5]) * ruler)
    # AU12: lip corners (iBUG 48, 54)
    assert torch.allclose(c[1], lm[0, [48, 54]])
    # AU06: mean of the lower lid points (iBUG 40, 41) one ruler down
    assert torch.allclose(c[2, 0], lm[0, [40, 41]].mean(0) + torch.tensor([0.0, 1.0]) * ruler)
    with pytest.raises(ValueError, match="AU99"):
        au_centres(lm, ["AU99"])


def test_map_peaks_in_the_cell_holding_the_centre_and_decays():
    centres = torch.tensor([[[[20.3, 41.7], [20.3, 41.7]]]])  # one AU, both centres at the same point
    maps = attention_maps_from_centres(centres, (64, 64), (16, 16), xi=4.0, supersample=1)
    assert maps.shape == (1, 1, 16, 16)
    peak = divmod(int(maps[0, 0].argmax()), 16)
    assert peak == (41 // 4, 20 // 4)
    # value at a cell centre follows max(0, 1 - xi * d1 / W), checked by hand for cell (3, 7)
    d1 = abs(7 * 4 + 1.5 - 20.3) + abs(3 * 4 + 1.5 - 41.7)  # cell centres at 4j + 1.5 (pixel-index coords)
    assert maps[0, 0, 3, 7].item() == pytest.approx(max(0.0, 1 - 4.0 * d1 / 64))
    assert maps[0, 0, 0, 15].item() == 0.0


@pytest.mark.parametrize("au", BP4D_AUS + ["AU09", "AU25", "AU26"])
def test_each_au_map_peaks_at_its_centre(au):
    lm = _face68()[None]
    maps = au_attention_maps(lm, [au], (64, 64), (64, 64), supersample=1)[0, 0]
    centres = au_centres(lm, [au])[0, 0]
    peak_values = [maps[round(float(c[1])), round(float(c[0]))].item() for c in centres]
    assert max(peak_values) == pytest.approx(maps.max().item())


def test_maps_are_flip_consistent():
    lm = torch.stack([_face68(seed=s) for s in range(3)])
    lm[1, :, 0] += 5.0  # off-centre face
    names = list(AU_CENTRE_RULES)
    maps = au_attention_maps(lm, names, (64, 64), (8, 8))
    flipped = au_attention_maps(flip_landmarks(to_49(lm), 64.0), names, (64, 64), (8, 8))
    assert torch.allclose(flipped, maps.flip(-1), atol=1e-5)
    assert maps.amax(dim=(-1, -2)).min() > 0.5
