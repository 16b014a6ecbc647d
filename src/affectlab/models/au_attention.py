"""Landmark-based AU attention maps (EAC-Net / JAA-Net convention).

Every supported landmark layout is first reduced to the 49-point IntraFace layout that JAA-Net uses
for BP4D (0-based indices below; iBUG-68 index in brackets):

=========  ==========================================================================
 0–4       right brow of the subject, outer → inner [17–21]   (image left)
 5–9       left brow, inner → outer [22–26]
 10–13     nose bridge, top → tip [27–30];  14–18 lower nose, left → right [31–35]
 19–24     image-left eye: outer corner 19 [36], upper 20–21, inner corner 22 [39], lower 23–24
 25–30     image-right eye: inner corner 25 [42], upper 26–27, outer corner 28 [45], lower 29–30
 31–42     outer lip: left corner 31 [48], upper centre 34 [51], right corner 37 [54], lower centre 40 [57]
 43–48     inner lip without the corners [61, 62, 63, 65, 66, 67]
=========  ==========================================================================

``68`` (iBUG, the generator) → drop the jaw (0–16) and the inner mouth corners (60, 64);
``66`` (DISFA, CMU layout = iBUG without 60 and 64) → drop the jaw (JAA-Net keeps points 18–66,
1-based); ``49`` (BP4D) is used as is.

AU centres (:data:`AU_CENTRE_RULES`): each AU has two centres (one per face half, or upper/lower
lip), each the mean of a few landmarks moved vertically by a multiple of the *ruler*, the distance
between the inner eye corners (EAC-Net's "scale"). The rules follow EAC-Net's table (AU1 half a
scale above the inner brow, AU2 a third above the outer brow, AU4 a third below the brow centre,
AU6 one scale below the eye bottom, lip-corner AUs at the corners, AU17 half a scale below the lower
lip, …); the exact landmark picks are ours and listed in the table.

Map (EAC-Net/JAA-Net form): ``M_i(p) = max_c max(0, 1 - xi * ||p - c||_1 / W)`` with ``W`` the image
width, evaluated on a supersampled grid of the feature map and area-averaged to it.
Coordinates follow the datamodules (``data_modules.transforms``): the centre of pixel ``j`` is at
``x = j``, so a horizontal flip maps ``x`` to ``W - 1 - x`` (see :func:`flip_landmarks`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: 68 → 49 (iBUG indices kept)
IBUG68_TO_49 = list(range(17, 60)) + [61, 62, 63, 65, 66, 67]
#: 66 → 49 (CMU-66 indices kept: JAA-Net's points 18–66, 1-based)
CMU66_TO_49 = list(range(17, 66))

#: horizontal-flip permutation of the 49-point layout: position i takes point FLIP_49[i]
#: (JAA-Net's reflect_49, converted to 0-based)
FLIP_49 = [
    9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
    10, 11, 12, 13, 18, 17, 16, 15, 14,
    28, 27, 26, 25, 30, 29, 22, 21, 20, 19, 24, 23,
    37, 36, 35, 34, 33, 32, 31, 42, 41, 40, 39, 38,
    45, 44, 43, 48, 47, 46,
]

INNER_EYE_CORNERS = (22, 25)

#: AU → two centres, each (landmark indices in the 49 layout averaged, vertical offset in rulers;
#: positive = down the face). Centre 0 lies on the image-left half (or the upper lip).
AU_CENTRE_RULES: dict[str, tuple[tuple[tuple[int, ...], float], tuple[tuple[int, ...], float]]] = {
    "AU01": (((4,), -0.5), ((5,), -0.5)),            # inner brow raiser: above the inner brow heads
    "AU02": (((1,), -1 / 3), ((8,), -1 / 3)),        # outer brow raiser: above the outer brow
    "AU04": (((2,), 1 / 3), ((7,), 1 / 3)),          # brow lowerer: below the brow centre
    "AU05": (((20, 21), 0.0), ((26, 27), 0.0)),      # upper lid raiser: upper lids
    "AU06": (((23, 24), 1.0), ((29, 30), 1.0)),      # cheek raiser: one ruler below the lower lid
    "AU07": (((23, 24), 0.0), ((29, 30), 0.0)),      # lid tightener: lower lids
    "AU09": (((22,), 0.5), ((25,), 0.5)),            # nose wrinkler: sides of the nose bridge
    "AU10": (((33,), 0.0), ((35,), 0.0)),            # upper lip raiser: upper lip
    "AU12": (((31,), 0.0), ((37,), 0.0)),            # lip corner puller: lip corners
    "AU14": (((31,), 0.0), ((37,), 0.0)),            # dimpler: lip corners
    "AU15": (((31,), 0.0), ((37,), 0.0)),            # lip corner depressor: lip corners
    "AU17": (((39,), 0.5), ((41,), 0.5)),            # chin raiser: half a ruler below the lower lip
    "AU20": (((31,), 0.0), ((37,), 0.0)),            # lip stretcher: lip corners
    "AU23": (((34,), 0.0), ((40,), 0.0)),            # lip tightener: upper / lower lip centre
    "AU24": (((34,), 0.0), ((40,), 0.0)),            # lip pressor: upper / lower lip centre
    "AU25": (((44,), 0.0), ((47,), 0.0)),            # lips part: inner upper / lower lip
    "AU26": (((39, 40, 41), 1.0), ((40,), 0.5)),     # jaw drop: below the lower lip, chin
}


def to_49(landmarks: torch.Tensor) -> torch.Tensor:
    """(..., P, 2) with P ∈ {49, 66, 68} → (..., 49, 2) in the layout of the module docstring."""
    count = landmarks.shape[-2]
    if landmarks.shape[-1] != 2:
        raise ValueError(f"landmarks must have shape (..., P, 2), got {tuple(landmarks.shape)}")
    if count == 49:
        return landmarks
    if count == 68:
        return landmarks[..., IBUG68_TO_49, :]
    if count == 66:
        return landmarks[..., CMU66_TO_49, :]
    raise ValueError(f"unsupported landmark layout with {count} points; expected 49 (BP4D), 66 (DISFA) or 68 (iBUG)")


def flip_landmarks(landmarks49: torch.Tensor, width: float) -> torch.Tensor:
    """Landmarks of the horizontally flipped image: mirror x (x → W − 1 − x) and swap left/right points."""
    flipped = landmarks49[..., FLIP_49, :].clone()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    return flipped


def check_au_names(au_names: Sequence[str]) -> list[str]:
    names = [str(a).upper() for a in au_names]
    unknown = [a for a in names if a not in AU_CENTRE_RULES]
    if unknown:
        raise ValueError(f"no AU centre rule for {unknown}; known AUs: {', '.join(AU_CENTRE_RULES)}")
    return names


def au_centres(landmarks: torch.Tensor, au_names: Sequence[str]) -> torch.Tensor:
    """AU centres (B, K, 2, 2) in pixels from landmarks (B, P, 2): two centres per AU."""
    lm = to_49(landmarks)
    ruler = (lm[:, INNER_EYE_CORNERS[0]] - lm[:, INNER_EYE_CORNERS[1]]).norm(dim=-1)  # (B,)
    centres = []
    for name in check_au_names(au_names):
        pair = []
        for indices, offset in AU_CENTRE_RULES[name]:
            c = lm[:, list(indices)].mean(dim=1).clone()
            c[:, 1] = c[:, 1] + offset * ruler
            pair.append(c)
        centres.append(torch.stack(pair, dim=1))
    return torch.stack(centres, dim=1)


def attention_maps_from_centres(
    centres: torch.Tensor,
    image_size: tuple[int, int],
    out_size: tuple[int, int],
    xi: float = 4.0,
    supersample: int = 4,
) -> torch.Tensor:
    """Maps (B, K, h, w) ∈ [0, 1] from centres (B, K, C, 2): ``max_c max(0, 1 − xi·d1(p, c)/W)``.

    The map is evaluated at ``supersample × out_size`` cell centres and area-averaged to ``out_size``,
    i.e. an area resize of the image-resolution map.
    """
    height, width = image_size
    h, w = out_size
    sh, sw = h * supersample, w * supersample
    # centres of the sub-cells in pixel-index coordinates (pixel j spans [j - 0.5, j + 0.5))
    ys = (torch.arange(sh, device=centres.device, dtype=centres.dtype) + 0.5) * (height / sh) - 0.5
    xs = (torch.arange(sw, device=centres.device, dtype=centres.dtype) + 0.5) * (width / sw) - 0.5
    cx = centres[..., 0][..., None, None]  # (B, K, C, 1, 1)
    cy = centres[..., 1][..., None, None]
    dist = (xs.view(1, 1, 1, 1, sw) - cx).abs() + (ys.view(1, 1, 1, sh, 1) - cy).abs()
    maps = (1.0 - xi * dist / width).clamp_min(0.0).amax(dim=2)  # (B, K, sh, sw)
    if supersample > 1:
        maps = F.avg_pool2d(maps, supersample)
    return maps


def au_attention_maps(
    landmarks: torch.Tensor,
    au_names: Sequence[str],
    image_size: tuple[int, int],
    out_size: tuple[int, int],
    xi: float = 4.0,
    supersample: int = 4,
) -> torch.Tensor:
    """AU attention maps (B, K, h, w) for landmarks (B, P, 2) in pixels of an ``image_size`` image."""
    return attention_maps_from_centres(au_centres(landmarks, au_names), image_size, out_size, xi, supersample)


#: neutral iBUG-68 face in face units (IOD ≈ 1, eyes at y = 0, x to the image right), from the
#: generator's neutral positions (synthetic spec §5.2); jaw approximated by a parabola
TEMPLATE_68 = [
    *[(x, 0.05 + 1.7 * (1 - x * x)) for x in [i / 8 - 1 for i in range(17)]],
    (-0.86, -0.30), (-0.70, -0.40), (-0.52, -0.43), (-0.35, -0.40), (-0.20, -0.34),
    (0.20, -0.34), (0.35, -0.40), (0.52, -0.43), (0.70, -0.40), (0.86, -0.30),
    (0.0, -0.02), (0.0, 0.20), (0.0, 0.40), (0.0, 0.62),
    (-0.20, 0.74), (-0.10, 0.77), (0.0, 0.79), (0.10, 0.77), (0.20, 0.74),
    (-0.74, 0.0), (-0.60, -0.07), (-0.40, -0.075), (-0.27, 0.01), (-0.40, 0.06), (-0.60, 0.055),
    (0.27, 0.01), (0.40, -0.075), (0.60, -0.07), (0.74, 0.0), (0.60, 0.055), (0.40, 0.06),
    (-0.40, 1.08), (-0.26, 1.00), (-0.10, 0.96), (0.0, 0.975), (0.10, 0.96), (0.26, 1.00),
    (0.40, 1.08), (0.27, 1.16), (0.12, 1.20), (0.0, 1.21), (-0.12, 1.20), (-0.27, 1.16),
    (-0.36, 1.08), (-0.14, 1.065), (0.0, 1.07), (0.14, 1.065), (0.36, 1.08),
    (0.14, 1.075), (0.0, 1.08), (-0.14, 1.075),
]


def template_landmarks(image_size: int, batch: int = 1, face_width: float = 0.7, eye_height: float = 0.36) -> torch.Tensor:
    """A canonical frontal iBUG-68 face (batch, 68, 2) for an aligned ``image_size`` crop.

    Used when a dataset provides no landmarks (``landmarks_source='template'``): the AU maps then
    sit at the average AU positions of an aligned face.
    """
    t = torch.tensor(TEMPLATE_68, dtype=torch.float32)
    scale = face_width / 2.0 * image_size
    xy = torch.stack([0.5 * image_size + t[:, 0] * scale, eye_height * image_size + t[:, 1] * scale * 0.8], -1)
    return xy.expand(batch, 68, 2).clone()
