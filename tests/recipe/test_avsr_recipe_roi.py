"""Mouth-ROI cropping of the AVSR recipe (espnet_lrsms.avsr.roi): known answers on synthetic frames."""
import pickle

import numpy as np
import pytest

from espnet_lrsms.avsr.roi import (
    LandmarkError,
    NoFaceError,
    crop_mouth_rois,
    crop_square,
    mouth_track,
    read_landmarks,
    resize_frames,
)

HEIGHT, WIDTH = 240, 320


def mouth_landmarks(cx: float, cy: float, half_width: float) -> np.ndarray:
    """68 points: the 20 mouth points (48–67) on an ellipse around (cx, cy), corners 48 and 54 at ±half_width."""
    points = np.zeros((68, 2))
    angles = np.linspace(np.pi, -np.pi, 12, endpoint=False)  # 48 at the left corner, 54 at the right
    points[48:60] = np.stack([cx + half_width * np.cos(angles), cy + 0.4 * half_width * np.sin(angles)], axis=1)
    inner = np.linspace(np.pi, -np.pi, 8, endpoint=False)
    points[60:68] = np.stack([cx + 0.6 * half_width * np.cos(inner), cy + 0.2 * half_width * np.sin(inner)], axis=1)
    points[:48] = (10.0, 10.0)  # the rest of the face: ignored by the crop
    return points


def frame_with_square(cx: int, cy: int, half: int = 6) -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH), 30, dtype=np.uint8)
    frame[cy - half : cy + half, cx - half : cx + half] = 250
    return frame


def bright_centroid(crop: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(crop > 140)
    return np.array([xs.mean(), ys.mean()])


def test_bright_square_at_the_landmarks_ends_up_centred_in_the_crop():
    frames, landmarks = [], []
    for t in range(10):  # the mouth moves 3 px right per frame; landmarks follow it
        cx, cy = 200 + 3 * t, 150
        frames.append(frame_with_square(cx, cy))
        landmarks.append(mouth_landmarks(cx, cy, half_width=24.0))
    rois = crop_mouth_rois(np.stack(frames), np.stack(landmarks), size=96, crop_scale=2.0, smooth_window=1)
    assert rois.shape == (10, 96, 96) and rois.dtype == np.uint8
    for roi in rois:
        # crop side = 2 x mouth width 48 px = 96 px: no scaling, the 12 px square stays 12 px, centred
        np.testing.assert_allclose(bright_centroid(roi), [47.5, 47.5], atol=0.6)
        assert (roi > 140).sum() == 144


def test_crop_scale_sets_the_zoom():
    frame = frame_with_square(160, 120)
    marks = mouth_landmarks(160, 120, half_width=24.0)[None]
    roi = crop_mouth_rois(frame[None], marks, size=96, crop_scale=4.0, smooth_window=1)[0]
    # a 192 px window shrunk to 96: the 12 px square becomes 6 px, still centred
    np.testing.assert_allclose(bright_centroid(roi), [47.5, 47.5], atol=0.6)
    assert 25 <= (roi > 140).sum() <= 49


def test_frames_without_a_face_take_the_interpolated_mouth_position():
    marks = np.stack([mouth_landmarks(100 + 10 * t, 80, 20.0) for t in range(5)])
    marks[1:4] = np.nan  # no face in frames 1-3 (an .npy's convention)
    centres, width = mouth_track(marks, smooth_window=1)
    np.testing.assert_allclose(centres[:, 0], [100, 110, 120, 130, 140], atol=1e-9)
    np.testing.assert_allclose(centres[:, 1], 80, atol=1e-9)
    assert width == pytest.approx(40.0)


def test_smoothing_averages_the_mouth_centre_over_the_window():
    marks = np.stack([mouth_landmarks(100 + (8 if t % 2 else 0), 80, 20.0) for t in range(12)])
    jittery, _ = mouth_track(marks, smooth_window=1)
    smooth, _ = mouth_track(marks, smooth_window=4)
    assert np.ptp(jittery[:, 0]) == pytest.approx(8.0)
    assert np.ptp(smooth[2:-2, 0]) == pytest.approx(0.0, abs=1e-9)  # full windows: exactly the mean 104
    assert smooth[5, 0] == pytest.approx(104.0)


def test_crop_leaving_the_frame_repeats_the_edge():
    frame = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    crop = crop_square(frame, np.array([1.0, 1.0]), 8)
    assert crop.shape == (8, 8)
    assert crop[0, 0] == frame[0, 0] and crop[-1, -1] == frame[4, 4]


def test_pkl_and_npy_landmark_files(tmp_path):
    marks = [mouth_landmarks(50, 40, 10.0), None, mouth_landmarks(54, 40, 10.0)]
    with open(tmp_path / "clip.pkl", "wb") as f:
        pickle.dump(marks, f)
    from_pkl = read_landmarks(tmp_path / "clip.pkl")
    assert from_pkl.shape == (3, 68, 2) and np.isnan(from_pkl[1]).all()
    np.save(tmp_path / "mouth.npy", from_pkl[:, 48:68])  # 20 mouth points only
    centres, _ = mouth_track(read_landmarks(tmp_path / "mouth.npy"), smooth_window=1)
    np.testing.assert_allclose(centres[:, 0], [50, 52, 54], atol=1e-9)


def test_bad_landmark_files_are_named(tmp_path):
    with pytest.raises(LandmarkError, match=r"missing\.pkl: no such landmark file"):
        read_landmarks(tmp_path / "missing.pkl")
    np.save(tmp_path / "wrong.npy", np.zeros((4, 5, 2)))
    with pytest.raises(LandmarkError, match=r"wrong\.npy: expected landmarks of shape .* got \(4, 5, 2\)"):
        read_landmarks(tmp_path / "wrong.npy")
    with open(tmp_path / "noface.pkl", "wb") as f:
        pickle.dump([None, None], f)
    with pytest.raises(NoFaceError, match="noface.pkl: no face in any of its 2 frames"):
        mouth_track(read_landmarks(tmp_path / "noface.pkl"), source=str(tmp_path / "noface.pkl"))


def test_as_is_resize_keeps_uint8_and_the_picture():
    frames = np.zeros((3, 48, 48), dtype=np.uint8)
    frames[:, 12:36, 12:36] = 200
    out = resize_frames(frames, 96)
    assert out.shape == (3, 96, 96) and out.dtype == np.uint8
    np.testing.assert_allclose(bright_centroid(out[0]), [47.5, 47.5], atol=0.6)
    assert resize_frames(out, 96) is not None and np.array_equal(resize_frames(out, 96), out)
