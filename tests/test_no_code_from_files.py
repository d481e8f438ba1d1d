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


def test_init_param_is_read_weights_only_and_still_initialises(tone_data, tmp_path):
    """``--init_param`` (ESPnet unpickles it with weights_only=False) refuses a crafted file before it runs
    anything, and still loads a real one, with ESPnet's ``<file>:<src_key>:<dst_key>:<excludes>`` parts."""
    from espnet_lrsms.bin.asr_train import main as asr_train
    from espnet_lrsms.asr.task import LowRankASRTask

    from asr_test_data import train_command

    marker = tmp_path / "ran"
    crafted = tmp_path / "evil.pth"
    torch.save({"encoder.w": torch.zeros(2), "x": RunsACommand(marker)}, crafted)
    one_step = ("--max_epoch", "1", "--num_iters_per_epoch", "1")
    with pytest.raises(ValueError, match=f"{crafted}: refused to load"):
        asr_train(train_command(tone_data, tmp_path / "evil_exp", *one_step, "--init_param", str(crafted))[3:])
    assert not marker.exists()

    asr_train(train_command(tone_data, tmp_path / "dry", "--dry_run", "true")[3:])
    source, _ = LowRankASRTask.build_model_from_file(tmp_path / "dry" / "config.yaml", None, "cpu")
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    torch.save(source.state_dict(), tmp_path / "source.pth")
    exp = tmp_path / "exp"
    asr_train(train_command(tone_data, exp, *one_step, "--init_param",
                            f"{tmp_path / 'source.pth'}:encoder:encoder:encoder.encoders.1")[3:])
    start = torch.load(exp / "0epoch.pth", weights_only=True)  # the weights the first update starts from
    expected = source.state_dict()
    loaded = [k for k in expected if k.startswith("encoder.") and not k.startswith("encoder.encoders.1.")]
    assert loaded and all(torch.equal(start[k], expected[k]) for k in loaded)
    others = [k for k, _ in source.named_parameters() if k.startswith(("decoder.", "encoder.encoders.1."))]
    assert others and not [k for k in others if torch.equal(start[k], expected[k])]
