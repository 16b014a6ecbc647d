"""TCAE's disentanglement readout: out-of-subject ridge R² of φ/ψ against the generator's ground truth."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affectlab.evaluation.disentanglement import align_groundtruth, embedding_r2, frame_groundtruth, grouped_r2


def _world(n_subjects: int = 8, frames: int = 40, seed: int = 0):
    """φ is a noisy linear image of the AU intensities, ψ of the head pose; AU and pose independent."""
    rng = np.random.default_rng(seed)
    n = n_subjects * frames
    au = rng.uniform(0, 5, (n, 2))
    pose = rng.normal(0, 10, (n, 3))
    phi = np.hstack([au @ rng.normal(size=(2, 6)), rng.normal(size=(n, 4))]) + 0.05 * rng.normal(size=(n, 10))
    psi = np.hstack([pose @ rng.normal(size=(3, 6)), rng.normal(size=(n, 4))]) + 0.05 * rng.normal(size=(n, 10))
    truth = pd.DataFrame({"au01": au[:, 0], "au02": au[:, 1], "au04": np.zeros(n),  # au04 never active
                          "yaw": pose[:, 0], "pitch": pose[:, 1], "roll": pose[:, 2]})
    subjects = np.repeat([f"S{i}" for i in range(n_subjects)], frames)
    return phi, psi, truth, subjects


def test_grouped_r2_is_one_for_a_linear_target_and_about_zero_for_noise():
    phi, _, truth, subjects = _world()
    linear = grouped_r2(phi, truth[["au01", "au02"]].to_numpy(), subjects)
    assert linear.shape == (2,) and (linear > 0.99).all()
    noise = grouped_r2(phi, np.random.default_rng(1).normal(size=(len(phi), 1)), subjects)
    assert noise[0] < 0.05
    with pytest.raises(ValueError, match="at least 6 groups"):
        grouped_r2(phi[:80], truth[["au01"]].to_numpy()[:80], subjects[:80])


def test_embedding_r2_tells_which_code_carries_aus_and_which_pose():
    phi, psi, truth, subjects = _world()
    r2 = embedding_r2(phi, psi, truth, subjects)
    assert set(r2) == {"r2_phi_au", "r2_psi_au", "r2_phi_pose", "r2_psi_pose"}
    assert r2["r2_phi_au"] > 0.95 and r2["r2_psi_pose"] > 0.95  # the constant au04 is left out, not scored 0
    assert r2["r2_psi_au"] < 0.05 and r2["r2_phi_pose"] < 0.05


def _table(tmp_path, columns=None):
    rows = pd.DataFrame({"dataset": "bp4d", "subject": ["F001", "F001", "M002"], "sequence": ["T1", "T1", "T2"],
                         "frame": [1, 2, 7], "path": ["a", "b", "c"], "au01": [0.0, 1.5, 3.0], "au12": [0.0, 0, 2.0],
                         "yaw": [1.0, 2.0, 3.0], "pitch": [0.0, 0.5, 1.0], "roll": [0.0, 0.0, 0.1], "band": ""})
    folder = tmp_path / "groundtruth"
    folder.mkdir()
    (rows if columns is None else rows[columns]).to_csv(folder / "bp4d.csv.gz", index=False)
    return tmp_path / "BP4D"


def test_frame_groundtruth_reads_the_generator_table_beside_the_release(tmp_path):
    table = frame_groundtruth(_table(tmp_path), "bp4d")
    assert list(table.columns) == ["au01", "au12", "yaw", "pitch", "roll"]
    assert table.loc[("F001", "T1", 2), "au01"] == 1.5
    assert frame_groundtruth(tmp_path / "elsewhere" / "BP4D", "bp4d") is None  # a real release has none


def test_frame_groundtruth_names_the_file_when_a_column_is_missing(tmp_path):
    root = _table(tmp_path, columns=["subject", "sequence", "frame", "au01"])
    with pytest.raises(ValueError, match=r"bp4d\.csv\.gz.*missing \['yaw', 'pitch', 'roll'\]"):
        frame_groundtruth(root, "bp4d")


def test_align_groundtruth_matches_bp4d_style_sequence_ids_and_refuses_unknown_frames(tmp_path):
    table = frame_groundtruth(_table(tmp_path), "bp4d")
    rows = align_groundtruth(table, [("M002", "M002/T2", 7), ("F001", "F001/T1", 1)])
    assert rows["yaw"].tolist() == [3.0, 1.0]  # in the order asked
    assert align_groundtruth(table, [("F001", "T1", 2)])["au01"].tolist() == [1.5]
    assert align_groundtruth(table, [("F001", "T1", 2), ("F001", "T1", 99)]) is None
