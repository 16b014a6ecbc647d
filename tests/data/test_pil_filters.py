"""``data.filters: pil`` (the official IAL loader's filters) against PIL/hand-computed references."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data_modules.pil_transforms import PILClipTransform, sample_crop_box
from data_modules.transforms import FaceTransform
from releases import make


def pil_resize(frame: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR)).astype(np.float32) / 255


def checkerboard(n: int) -> np.ndarray:
    board = ((np.indices((n, n)).sum(0) % 2) * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def test_eval_resize_is_pil_bilinear_and_antialiased():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    video, _ = PILClipTransform(112, "zero_one", train=False)(frames, None, rng)
    assert video.shape == (3, 3, 112, 112)
    for t in range(3):
        np.testing.assert_array_equal(video[t].permute(1, 2, 0).numpy(), pil_resize(frames[t], 112))
    # a 1-pixel checkerboard 210 → 112: the anti-aliased filter averages it to grey; the cv2 bilinear
    # resize inside the fast path's RandomResizedCrop samples it and keeps a strong pattern
    board = checkerboard(210)[None]
    whole = [{"name": "RandomResizedCrop", "size": [112, 112], "scale": [1.0, 1.0], "ratio": [1.0, 1.0]}]
    pil, _ = PILClipTransform(112, "zero_one", train=True, steps=whole)(board, None, rng)
    aliased, _ = FaceTransform(112, "zero_one", train=True, steps=whole)(board, None, rng)
    assert float(pil.std()) * 255 < 1.0 and float(aliased.std()) * 255 > 30


def test_full_frame_crop_equals_the_eval_resize():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    whole = [{"name": "RandomResizedCrop", "size": [112, 112], "scale": [1.0, 1.0], "ratio": [1.0, 1.0]}]
    video, _ = PILClipTransform(112, "zero_one", train=True, steps=whole)(frames, None, rng)
    np.testing.assert_array_equal(video[1].permute(1, 2, 0).numpy(), pil_resize(frames[1], 112))


def test_crop_box_rule():
    rng = np.random.default_rng(2)
    # 200×200, area 1/4, aspect 1: a 100×100 box anywhere with x1, y1 ∈ [0, 100]
    boxes = np.array([sample_crop_box(200, 200, (0.25, 0.25), (1.0, 1.0), rng) for _ in range(300)])
    assert (boxes[:, 2:] == 100).all() and boxes[:, :2].min() == 0 and boxes[:, :2].max() == 100
    assert sample_crop_box(100, 50, (1.0, 1.0), (1.0, 1.0), rng) is None  # 71×71 never fits: fallback
    video, _ = PILClipTransform(32, "zero_one", train=True, steps=[
        {"name": "RandomResizedCrop", "size": [32, 32], "scale": [1.0, 1.0], "ratio": [1.0, 1.0]}])(
        rng.integers(0, 256, (1, 50, 100, 3), dtype=np.uint8), None, rng)
    assert video.shape == (1, 3, 32, 32)  # fallback: shorter side → 32, random 32×32 crop


def test_brightness_and_rotation_act_on_float_clips():
    rng = np.random.default_rng(3)
    flat = np.full((4, 64, 64, 3), 100, np.uint8)
    bright, _ = PILClipTransform(64, "zero_one", True, steps=[{"name": "ColorJitter", "brightness": 0.6}])(flat, None, rng)
    level = bright.unique()
    assert len(level) == 1 and 0.4 * 100 / 255 <= float(level) <= 1.6 * 100 / 255
    assert abs(float(level) * 255 - round(float(level) * 255)) > 1e-3  # not quantised to uint8
    noise = np.repeat(rng.integers(1, 256, (1, 64, 64, 3), dtype=np.uint8), 2, axis=0)
    rot = PILClipTransform(64, "zero_one", True, steps=[{"name": "Rotate", "limit": [3, 4], "border_mode": 0}])
    video, _ = rot(noise, None, rng)
    allowed = set((noise.astype(np.float32) / 255).ravel().tolist()) | {0.0}
    assert set(video.numpy().ravel().tolist()) <= allowed  # nearest: no blended values
    assert float(video[0, :, 0, 0].abs().sum()) == 0.0  # the corner left the frame: filled with 0
    assert (video[0] == video[1]).all()  # one draw for the whole clip


def test_pil_filters_reject_what_they_cannot_do(mini):
    with pytest.raises(ValueError, match="supports only the train_transforms steps"):
        PILClipTransform(32, "zero_one", True, steps=[{"name": "GaussNoise"}])
    with pytest.raises(ValueError, match="brightness only"):
        PILClipTransform(32, "zero_one", True, steps=[{"name": "ColorJitter", "brightness": 0.2, "contrast": 0.2}])
    root, _ = mini
    with pytest.raises(ValueError, match="filters must be one of"):
        make("dfew", root / "DFEW", filters="opencv")
    with pytest.raises(ValueError, match="supports neither clip_cache"):
        make("dfew", root / "DFEW", filters="pil", clip_cache=True)


def test_dfew_pil_filters_decode_full_size(mini):
    root, _ = mini
    keys = dict(fold=1, normalize="zero_one", image_size=16, hflip=False, select_on_test=True)
    fast = make("dfew", root / "DFEW", **keys).dataset("test")
    pil = make("dfew", root / "DFEW", filters="pil", **keys).dataset("test")
    assert fast[0]["video"].shape == pil[0]["video"].shape == (16, 3, 16, 16)
    assert fast._reduce > 1 and pil._reduce == 1  # the fast path decodes these frames at reduced size


@pytest.mark.parametrize("exp", ["ial_paper", "ial_ferv39k_paper"])
def test_paper_presets_use_the_official_filters_and_sampling(mini, exp):
    from omegaconf import OmegaConf

    from affectlab.config import compose
    from data_modules import create_datamodule

    data = OmegaConf.to_container(compose([f"EXP={exp}"]).data)
    assert (data["filters"], data["clip_sampling"]) == ("pil", "ial_official")
    if exp == "ial_paper":  # its augmentation list builds under the pil filters and yields official clips
        root, _ = mini
        data.update(root=str(root / "DFEW"), num_workers=0)
        dm = create_datamodule(data)
        item = dm.dataset("train")[0]
        assert isinstance(dm.dataset("train").transform, PILClipTransform)
        assert item["video"].shape == (16, 3, 112, 112) and 0 <= float(item["video"].min()) <= float(item["video"].max()) <= 1
    assert compose(["METHOD=ial"]).data.filters == "fast"  # the CPU default keeps its speed tricks
