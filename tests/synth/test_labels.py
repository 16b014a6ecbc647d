"""Label priors of the generator against the measured statistics of synthetic.md §3 (no rendering)."""
import numpy as np
import pytest

from affectlab.synth.face import AUS
from affectlab.synth.labels import (BP4D_AUS, BP4D_TASK_WEIGHTS, CLASSES, DFEW_SHARES, DISFA_DET_AUS, FERV_SHARES,
                                    apply_rules, bp4d_state, bp4d_subject_weights, class_counts, disfa_state,
                                    expression_state, levels)
from affectlab.synth.writers import BP4D_SUBJECTS, rng_for

BP4D_TARGET = [21.1, 17.1, 20.3, 46.1, 54.9, 59.4, 56.2, 46.6, 16.9, 34.3, 16.5, 15.1]
DISFA_TARGET = [5.0, 4.3, 15.2, 7.9, 4.2, 12.9, 27.7, 8.8]


def test_bp4d_base_rates_within_4pp():
    L = []
    for s in BP4D_SUBJECTS:
        for task in BP4D_TASK_WEIGHTS:
            rng = rng_for(0, "stat", s, task)
            U, _ = bp4d_state(rng, task, 150, bp4d_subject_weights(rng, task))
            L.append(levels(U))
    L = np.concatenate(L)
    rates = [100 * (L[:, AUS.index(a)] >= 1).mean() for a in BP4D_AUS]
    assert np.max(np.abs(np.array(rates) - BP4D_TARGET)) < 4.0, rates
    # Co-occurrence structure: the smile cluster is positively correlated, AU4 vs AU12 negatively.
    on = L >= 1
    phi = np.corrcoef(on[:, [AUS.index(a) for a in (6, 12, 4)]].T)
    assert phi[0, 1] > 0.3 and phi[1, 2] < -0.05


def test_disfa_rates_at_intensity_2_within_5pp():
    L = np.concatenate([levels(disfa_state(rng_for(0, "stat", s), 1500)[0]) for s in range(27)])
    rates = [100 * (L[:, AUS.index(a)] >= 2).mean() for a in DISFA_DET_AUS]
    # 27 subjects with a per-subject type mixture (as real DISFA) leave a few pp of sampling spread.
    assert np.max(np.abs(np.array(rates) - DISFA_TARGET)) < 5.0, rates
    none = 100 * ((L[:, [AUS.index(a) for a in DISFA_DET_AUS]] >= 2).sum(1) == 0).mean()
    assert abs(none - 53.7) < 8


@pytest.mark.parametrize("shares", [DFEW_SHARES, FERV_SHARES])
def test_class_counts_follow_shares(shares):
    c = class_counts(700, shares)
    assert c.sum() == 700
    assert np.max(np.abs(c / 700 - shares / shares.sum())) < 0.01
    c = class_counts(140, shares, min_per_class=5)
    assert c.sum() == 140 and c.min() >= 5


def test_label_rules_and_level_mapping():
    U = np.zeros((4, len(AUS)))
    U[0, AUS.index(24)] = 2; U[0, AUS.index(25)] = 3      # 24 excludes 25
    U[1, AUS.index(26)] = 2.5                              # 26 >= 2 implies 25 >= 1
    U[2, AUS.index(10)] = 3.2                              # 10 >= 3 implies 25 >= 1
    U[3, 0] = 7
    V = apply_rules(U)
    assert V[0, AUS.index(25)] == 0 and V[1, AUS.index(25)] >= 1 and V[2, AUS.index(25)] >= 1
    assert V.max() <= 5
    assert levels(np.array([[0.49, 0.5, 1.49, 1.5, 4.6, 5.0]])).tolist() == [[0, 1, 1, 2, 5, 5]]


def test_expression_clips_have_bands_and_class_aus():
    bands = []
    for i in range(200):
        U, _, band = expression_state(rng_for(0, "expr", i), "Surprise", 16, 60)
        bands.append(band)
        assert U[:, AUS.index(1)].max() > 0 or U[:, AUS.index(5)].max() > 0
    frac = {b: bands.count(b) / 200 for b in ("low", "medium", "high")}
    assert abs(frac["low"] - 0.30) < 0.1 and abs(frac["medium"] - 0.45) < 0.1
    U, _, band = expression_state(rng_for(0, "expr", "n"), "Neutral", 16, 60)
    assert band == "" and U.max() <= 1.3
    assert set(CLASSES) == {"Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"}


def test_occluders_are_occasional_wild_only_and_smooth():
    from affectlab.synth.labels import HAND_RATE, MICROPHONE_RATE, occlusion_track

    assert occlusion_track(rng_for(0, "lab"), 20, wild=False) is None
    tracks = [occlusion_track(rng_for(0, "occ", i), 20, wild=True) for i in range(4000)]
    kinds = [t[0] if t else None for t in tracks]
    assert abs(kinds.count("hand") / 4000 - HAND_RATE) < 0.012
    assert abs(kinds.count("microphone") / 4000 - MICROPHONE_RATE) < 0.01
    for kind, side, reach, _ in (t for t in tracks if t):
        assert side in (-1, 1) and reach.shape == (20,) and 0 <= reach.min() and reach.max() <= 1
        on = np.flatnonzero(reach > 0)
        if kind == "hand":    # enters and leaves once: a contiguous window shorter than the track
            assert len(on) < 20 and np.array_equal(on, np.arange(on[0], on[-1] + 1)) and reach.max() > 0.8
        else:
            assert len(on) == 20 and np.ptp(reach) == 0
