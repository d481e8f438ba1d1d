"""video.scp loaders (video_npy, video_mp4) through ESPnet's own dataset class."""
from pathlib import Path

import numpy as np
import pytest
from espnet2.train.dataset import ESPnetDataset

import espnet_lrsms.avsr.task  # noqa: F401  (registers the data types)
from espnet_lrsms.avsr.video_io import VideoError, read_video_mp4, read_video_npy

DEMO_MP4 = Path(__file__).resolve().parents[2] / "demo" / "lrs3" / "pretrain" / "prspk00enus" / "00000.mp4"


def test_espnet_dataset_reads_a_video_scp_of_npy_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    clips = {"a": rng.integers(0, 256, (7, 96, 96), dtype=np.uint8), "b": rng.integers(0, 256, (4, 96, 96), dtype=np.uint8)}
    np.save(tmp_path / "a.npy", clips["a"])
    np.savez(tmp_path / "b.npz", video=clips["b"], other=np.zeros(3))
    (tmp_path / "video.scp").write_text(f"a {tmp_path / 'a.npy'}\nb {tmp_path / 'b.npz'}\n")
    dataset = ESPnetDataset([(str(tmp_path / "video.scp"), "video", "video_npy")])
    for key in ("a", "b"):
        uid, data = dataset[key]
        assert uid == key and data["video"].dtype == np.float32
        np.testing.assert_array_equal(data["video"], clips[key].astype(np.float32))


def test_bad_videos_are_named(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((5, 96), dtype=np.uint8))
    np.savez(tmp_path / "two.npz", x=np.zeros(1), y=np.zeros(1))
    (tmp_path / "video.scp").write_text(f"flat {tmp_path / 'flat.npy'}\ngone {tmp_path / 'gone.npy'}\n")
    dataset = ESPnetDataset([(str(tmp_path / "video.scp"), "video", "video_npy")])
    with pytest.raises(VideoError, match=r"video.scp, utterance flat: .*flat.npy: expected grey frames of shape \(T, H, W\), got shape \(5, 96\)"):
        dataset["flat"]
    with pytest.raises(VideoError, match=r"utterance gone: .*gone.npy: no such file"):
        dataset["gone"]
    with pytest.raises(VideoError, match="needs one named 'video'"):
        read_video_npy(tmp_path / "two.npz")


def test_mp4_loader_reads_the_demo_clip_as_grey_frames(tmp_path):
    video = read_video_mp4(DEMO_MP4)
    assert video.shape == (26, 224, 224) and video.dtype == np.float32
    assert 0 <= video.min() < video.max() <= 255
    (tmp_path / "video.scp").write_text(f"clip {DEMO_MP4}\n")
    _, data = ESPnetDataset([(str(tmp_path / "video.scp"), "video", "video_mp4")])["clip"]
    np.testing.assert_array_equal(data["video"], video)
    with pytest.raises(VideoError, match="expected 30"):
        read_video_mp4(DEMO_MP4, frame_rate=30)
