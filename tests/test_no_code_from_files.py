"""Loading a user's file never runs code: crafted landmark pickles and checkpoints are refused, naming the file."""
import os
import pickle

import numpy as np
import pytest
import torch

from espnet_lrsms.analysis.weights import load_state_dict
from espnet_lrsms.avsr.roi import LandmarkError, read_landmarks


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_landmark_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "clip.pkl"
    path.write_bytes(pickle.dumps([np.zeros((68, 2)), RunsACommand(marker)]))
    with pytest.raises(LandmarkError, match=r"clip.pkl: cannot read .*refused posix.system"):
        read_landmarks(path)
    assert not marker.exists()


def test_landmark_pickle_of_arrays_lists_and_none_still_reads(tmp_path):
    frames = [np.full((68, 2), 3.0, dtype=np.float32), None, [[1.0, 2.0]] * 68, np.float64(1.5) * np.ones((68, 2))]
    path = tmp_path / "clip.pkl"
    path.write_bytes(pickle.dumps(frames))
    array = read_landmarks(path)
    assert array.shape == (4, 68, 2) and np.isnan(array[1]).all() and array[3, 0, 0] == 1.5


def test_crafted_checkpoint_is_refused_by_the_analysis_tools(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "3epoch.pth"
    torch.save({"encoder.w": torch.zeros(2), "x": RunsACommand(marker)}, path)
    with pytest.raises(ValueError, match=r"3epoch.pth: refused to load"):
        load_state_dict(path)
    assert not marker.exists()
    torch.save({"encoder.w": torch.ones(2)}, path)
    assert load_state_dict(path)["encoder.w"].tolist() == [1.0, 1.0]
