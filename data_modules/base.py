"""Shared pieces of every datamodule: the config schema base and the registry.

Sample contract (every method relies on it; one dict per item):

=================  ===========================================================
``image``          float tensor (C,H,W) for frame samples
``video``          float tensor (T,C,H,W) for clips and sequences
``source``/``target``  float tensors (C,H,W): two frames of one face track (pairs)
``au``             float (K,) 0/1 occurrence; ``au_mask`` bool (K,) False where unlabelled (code 9)
``intensity``      float (K,) or (T,K) 0–5; ``intensity_mask`` bool, same shape
``label``          int expression class in DFEW order (0 Happy … 6 Fear)
``landmarks``      float (P,2) pixel coordinates in the returned image (when known)
``meta``           dict: dataset, subject, sequence (or clip), frame indices, …
=================  ===========================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from affectlab.registry import Registry

DATAMODULES: Registry[type] = Registry("dataset")


@dataclass
class DataConfig:
    """Schema base for ``cfg.data``; each datamodule subclasses it with its own keys."""

    name: str = "???"
    #: dataset release root; None → the synthetic stand-in, generated on first use
    root: Optional[str] = None
    synthetic_profile: str = "quick"
    synthetic_seed: int = 0
    task: str = "au_occurrence"
    fold: int = 1
    batch_size: int = 32
    eval_batch_size: Optional[int] = None
    num_workers: int = 2
    image_size: int = 112
    #: imagenet | minus_one_one | zero_one
    normalize: str = "imagenet"
    #: fraction of training subjects/clips held out for model selection (seeded by split_seed)
    val_fraction: float = 0.15
    split_seed: int = 0
    #: select the checkpoint on the test fold (some papers' practice); recorded in results
    select_on_test: bool = False
    #: cap on items per split, for smoke tests (None = all)
    limit_items: Optional[int] = None

    # --- caching and bad input -------------------------------------------------------------
    #: where parsed manifests (and DISFA frames, if the data folder is read-only) are cached;
    #: None → ``<root>/.affectlab_cache`` when writable, else ``~/.cache/affectlab``
    cache_dir: Optional[str] = None
    #: training/validation: an undecodable image is skipped (the item replaced by the next one, or the
    #: frame by its neighbour in a clip), counted in results.json; the run fails once more than this
    #: fraction of a split's images could not be decoded
    max_bad_fraction: float = 0.01
    #: frame tasks (au_occurrence, au_intensity) of landmark datasets read the aligned crops written by
    #: ``affectlab data prepare`` when a preparation for the current sources and alignment settings exists
    use_prepared: bool = True
    #: a test item with an undecodable image: fail (the test pass stops, naming the file) | exclude
    #: (every test item is decoded once before the test pass; unreadable ones are left out and listed
    #: under ``test_set.unreadable_excluded`` in results.json and in the end-of-run summary)
    unreadable_test_items: str = "fail"

    # --- transforms ------------------------------------------------------------------------
    #: similarity alignment from landmarks (eye centres) when the dataset provides them
    align: bool = True
    #: eye-centre height and inter-ocular distance in the aligned image, as fractions of its side
    align_eye_y: float = 0.40
    align_eye_distance: float = 0.32
    #: random horizontal flip for training (landmarks mirrored and re-ordered)
    hflip: bool = True
    #: extra albumentations steps, e.g. ``[{name: RandomResizedCrop, size: [112, 112], scale: [0.8, 1]}]``;
    #: applied with identical parameters to every frame of a clip
    train_transforms: Any = None
    eval_transforms: Any = None
    #: fast: cv2/albumentations on uint8 (cv2 bilinear crop resize, JPEGs decoded at 1/2 or 1/4 size when
    #: large enough, bilinear rotation) | pil: the official IAL loader's filters (PIL anti-aliased bilinear
    #: resize at train and test, full-size decoding, brightness and nearest rotation on float clips;
    #: train_transforms limited to RandomResizedCrop, ColorJitter brightness, Rotate). Clips only.
    filters: str = "fast"

    # --- clips, pairs and sequences -------------------------------------------------------------
    #: U segments × V consecutive frames per clip (train: random start per segment, eval: centre)
    clip_segments: int = 16
    clip_frames_per_segment: int = 1
    #: segment rule: balanced (segments [round(u·n/U), round((u+1)·n/U)) cover the whole clip) |
    #: ial_official (the official IAL loader: length (n−V+1)//U, the last frames never drawn in training;
    #: test starts int(tick/2 + tick·u)); see data_modules/sampling.py
    clip_sampling: str = "balanced"
    #: items drawn from every track per pass, for the tasks that draw random items from a track:
    #: ``clips`` (each repeat its own random segment offsets; training only, evaluation splits keep
    #: one clip per track, which already covers the track) and ``pairs`` (every split: an evaluation
    #: pair is one seeded random draw, so repeats are other pairs and steady the validation loss).
    #: For a few long tracks, e.g. the labelled sequences of a frame dataset used as unlabelled video
    items_per_track: int = 1
    #: keep each clip's frames decoded and resized to image_size in one uint8 .npy under
    #: <cache>/clips/ (written on first use, memory-mapped after); augmentations then act on those
    #: frames. Only for datasets without landmarks (DFEW, FERV39k, videos)
    clip_cache: bool = False
    #: clips shorter than U×V frames: stretch (repeat frames evenly, keeps order) | loop | last | drop
    short_clip: str = "stretch"
    #: frame pairs (TCAE): gap in frames between source and target, drawn uniformly in [min, max]
    pair_gap_min: int = 1
    pair_gap_max: int = 30
    #: what one pairs item is drawn from: ``track`` (ours) or ``identity`` (the official TCAE epoch: a
    #: random video of the identity, a random track of that video)
    pair_unit: str = "track"
    #: ``gap`` (gap uniform in [pair_gap_min, pair_gap_max]) or ``any`` (two distinct random frames
    #: among every ``pair_frame_stride``-th: the official TCAE pair on frames extracted at 1 fps)
    pair_frames: str = "gap"
    #: with ``pair_frames: any``, draw only frames 0, k, 2k, … (k = native fps gives 1-fps frames)
    pair_frame_stride: int = 1
    #: draw crop/flip jitter independently for source and target (TCAE); False → identical
    pair_independent_jitter: bool = True
    #: long labelled sequences: frames per item and fraction of frames whose labels are kept
    sequence_length: int = 64
    label_fraction: float = 0.02
    label_mask_seed: int = 0
    #: sequences, training split: drop the windows that hold no labelled frame (they add no loss term;
    #: with a sparse budget most windows are such, so this only saves compute)
    labelled_windows_only: bool = False


#: (key, lowest, highest) of the DataConfig numbers every datamodule shares; None = unbounded or "null allowed"
_DATA_BOUNDS = (("batch_size", 1, None), ("eval_batch_size", 1, None), ("num_workers", 0, None),
                ("image_size", 8, None), ("limit_items", 1, None), ("val_fraction", 0.0, 0.99),
                ("max_bad_fraction", 0.0, 1.0), ("clip_segments", 1, None), ("clip_frames_per_segment", 1, None),
                ("items_per_track", 1, None), ("pair_gap_min", 0, None), ("pair_frame_stride", 1, None),
                ("sequence_length", 1, None), ("label_fraction", 1e-6, 1.0))


def check_data_bounds(cfg: Any) -> None:
    """Refuse shared ``cfg.data`` numbers outside their range before any work starts (a batch size of 0
    would otherwise end in a DataLoader traceback), naming the key and the range."""
    from affectlab.schema import ConfigError

    for key, low, high in _DATA_BOUNDS:
        value = cfg.get(key)
        if value is None:
            continue
        if value < low or (high is not None and value > high):
            expected = f"a value in [{low}, {high}]" if high is not None else f"a value >= {low}"
            raise ConfigError(f"bad value for 'data.{key}': {value!r}; expected {expected}")
    if cfg.pair_gap_max < cfg.pair_gap_min:
        raise ConfigError(f"bad value for 'data.pair_gap_max': {cfg.pair_gap_max}; expected >= "
                          f"data.pair_gap_min ({cfg.pair_gap_min})")


def check_fold(name: str, fold: int, n: int) -> None:
    """Refuse a fold outside the protocol's ``1…n`` (a config mistake, so a ``ConfigError``)."""
    from affectlab.schema import ConfigError

    if not 1 <= fold <= n:
        raise ConfigError(f"bad value for 'data.fold': {name} has folds 1…{n}, got {fold}")


def build_config(cls: type, keys: dict[str, Any]) -> Any:
    """Validate ``keys`` against ``cls.Config`` (unknown keys fail listing the valid ones)."""
    from affectlab.schema import validated

    return validated(cls.Config, keys, where="data")
