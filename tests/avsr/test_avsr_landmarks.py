"""Face-landmark detection for AVSR stage 1 (espnet_lrsms.avsr.landmarks, roi_method detect/auto).

The face is the portrait matplotlib ships (mpl-data/sample_data/grace_hopper.jpg): a real photograph,
so dlib's detector and 68-point model are tested on what they were made for, with nothing downloaded.
"""
import numpy as np
import pytest

from espnet_lrsms.avsr.landmarks import FaceLandmarkDetector
from espnet_lrsms.avsr.roi import crop_mouth_rois
from espnet_lrsms.recipe.avsr_data_prep import RoiSettings, prepare_av_set

from avsr_test_data import demo_corpora_module

FS = 16000


DEMO = demo_corpora_module()


@pytest.fixture(scope="module")
def photo():
    return DEMO.face_photo().astype(np.uint8)


@pytest.fixture(scope="module")
def detector():
    return FaceLandmarkDetector()


def window(photo, dx, dy, span=400):
    """The ``span``-pixel square of the photo around the face centre moved by (dx, dy)."""
    x0, y0 = DEMO.FACE_CENTRE[0] + dx - span // 2, DEMO.FACE_CENTRE[1] + dy - span // 2
    return np.ascontiguousarray(photo[y0 : y0 + span, x0 : x0 + span])


def test_68_points_on_a_photograph_have_the_face_geometry(photo, detector):
    points = detector.detect_frame(photo)
    assert points.shape == (68, 2) and not np.isnan(points).any()
    eyes_y = points[36:48, 1].mean()
    nose_tip, chin = points[30], points[8]
    mouth = points[48:68]
    # top to bottom: eyes, nose tip, mouth, chin; the mouth between the outer eye corners
    assert eyes_y < nose_tip[1] < mouth[:, 1].mean() < chin[1]
    assert points[36, 0] < mouth[:, 0].mean() < points[45, 0]
    assert points[48, 0] < points[54, 0]  # mouth corners left and right
    # the demo corpus draws its mouth where the detector puts it (constants in make_demo_corpora.py)
    np.testing.assert_allclose(mouth.mean(axis=0), DEMO.MOUTH_CENTRE, atol=2.0)
    assert points[54, 0] - points[48, 0] == pytest.approx(DEMO.MOUTH_WIDTH, abs=3.0)


def test_landmarks_follow_the_head_and_frames_without_a_face_are_nan(photo, detector):
    shifts = [(0, 0), (6, 0), (0, -9), (-12, 7), (15, 15)]
    frames = np.stack([window(photo, dx, dy) for dx, dy in shifts] + [np.full((400, 400), 128, np.uint8)])
    landmarks = detector(frames)
    assert landmarks.shape == (6, 68, 2)
    assert np.isnan(landmarks[5]).all() and not np.isnan(landmarks[:5]).any()
    centres = landmarks[:5, 48:68].mean(axis=1)
    # the window moves by (dx, dy), so the mouth moves by (-dx, -dy) in the frame
    moved = centres - centres[0]
    expected = -np.array(shifts, dtype=float)
    assert np.abs(moved - expected).max() < 2.0, moved


def test_detected_rois_centre_the_mouth_of_the_demo_face(detector):
    import random

    wave = np.concatenate([np.zeros(1600), 0.5 * np.sin(np.arange(16000) / 5.0), np.zeros(1600)]).astype(np.float32)
    frames = DEMO.face_frames(wave, random.Random(0))
    landmarks = detector(frames)
    assert not np.isnan(landmarks).any()
    rois = crop_mouth_rois(frames, landmarks)
    assert rois.shape == (len(frames), 96, 96)
    closed, wide_open = rois[0].astype(int), rois[len(rois) // 2].astype(int)  # silence, then mid-tone
    mouth = np.argwhere(closed - wide_open > 60)  # the drawn opening: much darker than the closed mouth
    assert len(mouth) > 500
    centre_y, centre_x = mouth.mean(axis=0)
    assert abs(centre_x - 47.5) < 6 and abs(centre_y - 47.5) < 10, (centre_x, centre_y)


FACE_BOX = 216  # dlib's face box on the photo, pixels


def sized_face_frames(photo, face_px, n, mirror=False, shift=(0, 0), size=224):
    """``n`` grey ``size``² frames of the photo scaled so that dlib's face box is ``face_px`` wide, the face
    centre moved by ``shift`` from the frame centre (swaying 2 px), mirrored if asked; and the expected
    mouth centre (x, y) of each frame."""
    import torch

    scale = face_px / FACE_BOX
    small = torch.nn.functional.interpolate(torch.from_numpy(photo.astype(np.float32))[None, None], scale_factor=scale,
                                            mode="bilinear", antialias=True)[0, 0].numpy()
    big = np.pad(small, size, mode="edge")
    cx, cy = DEMO.FACE_CENTRE[0] * scale + size, DEMO.FACE_CENTRE[1] * scale + size
    frames, mouths = [], []
    for t in range(n):
        x0 = int(round(cx - size / 2 - shift[0] + 2 * np.sin(t / 3)))
        y0 = int(round(cy - size / 2 - shift[1]))
        frame = big[y0:y0 + size, x0:x0 + size]
        mouth = np.array([DEMO.MOUTH_CENTRE[0] * scale + size - x0, DEMO.MOUTH_CENTRE[1] * scale + size - y0])
        if mirror:
            frame, mouth = frame[:, ::-1], np.array([size - 1 - mouth[0], mouth[1]])
        frames.append(frame)
        mouths.append(mouth)
    return np.clip(np.stack(frames).round(), 0, 255).astype(np.uint8), np.stack(mouths)


@pytest.mark.parametrize("face_px, mirror, shift", [(45, False, (0, 0)), (45, True, (-50, 30)), (60, True, (40, -30)),
                                                    (100, False, (-40, 20))])
def test_faces_from_45_px_mirrored_and_shifted_are_found(photo, face_px, mirror, shift):
    frames, mouths = sized_face_frames(photo, face_px, 3, mirror, shift)
    landmarks, report = FaceLandmarkDetector().detect_clip(frames)  # upsample 0, fallback to 1
    assert report.found + report.fallback == 3 and report.missing == 0
    # below about 75 px dlib finds no face without upsampling (under 58 px), or one with a box too large and
    # the mouth 1/6 of the face too low: the fallback detects those frames again, upsampled
    assert report.fallback == (3 if face_px < 75 else 0), report
    error = np.abs(landmarks[:, 48:68].mean(axis=1) - mouths).max()
    assert error < 0.1 * face_px, error


def test_a_clip_without_a_face_costs_only_a_few_fallback_probes(monkeypatch):
    detector = FaceLandmarkDetector(0, 2)
    levels = []
    original = detector._detect
    monkeypatch.setattr(detector, "_detect", lambda frame, upsample: levels.append(upsample) or original(frame, upsample))
    landmarks, report = detector.detect_clip(np.full((20, 64, 64), 90, np.uint8))
    assert np.isnan(landmarks).all() and (report.found, report.fallback, report.longest_gap) == (0, 0, 20)
    assert levels.count(0) == 20 and levels.count(1) == levels.count(2) == FaceLandmarkDetector.PROBES


@pytest.fixture(scope="module")
def face_corpus(tmp_path_factory, photo):
    """test/spk/: 00000 the demo face saying a tone, 00001 a blank video (no face), 00002 a 45 px mirrored
    face (found only by the fallback), 00003 the demo face hidden in frames 5-24 (a 20-frame gap)."""
    import random

    root = tmp_path_factory.mktemp("lrs3_faces")
    spk = root / "test" / "spk"
    spk.mkdir(parents=True)
    wave = (0.4 * np.sin(2 * np.pi * 200 * np.arange(int(1.2 * FS)) / FS)).astype(np.float32)
    frames = DEMO.face_frames(wave, random.Random(1))
    DEMO.write_mp4(spk / "00000.mp4", wave, frames)
    DEMO.write_mp4(spk / "00001.mp4", wave, np.full_like(frames, 90))
    DEMO.write_mp4(spk / "00002.mp4", wave, np.ascontiguousarray(sized_face_frames(photo, 45, 30, True, (30, 20))[0]))
    hidden = frames.copy()
    hidden[5:25] = 90
    DEMO.write_mp4(spk / "00003.mp4", wave, hidden)
    for i in range(4):
        (spk / f"{i:05d}.txt").write_text("Text:  ONE TWO\nConf:  4\n")
    return root


def test_detect_mode_keeps_the_landmarks_and_skips_a_clip_without_a_face(face_corpus, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        out = prepare_av_set(face_corpus, "test", tmp_path / "data", RoiSettings(method="detect"), nj=1, on_error="skip")
    # the small face needed the fallback in every frame; the hidden face left a long gap (interpolated)
    report = [line.split("\t") for line in (out / "face_report.txt").read_text().splitlines()[1:]]
    assert report == [["spk_00002", "30", "0", "30", "0", "0"], ["spk_00003", "30", "10", "0", "20", "20"]]
    assert "landmarks of 3 clips: 1 needed the detector's fallback (higher upsampling), 1 have a gap longer than 12" in caplog.text
    assert len((out / "video.scp").read_text().splitlines()) == 3
    skipped = dict(line.split("\t", 1) for line in (out / "skipped.txt").read_text().splitlines())
    assert skipped["spk_00001"].startswith("no_face\t")
    assert "00001.mp4: the face detector found no face in any of its 30 frames" in skipped["spk_00001"]
    roi_path = (out / "video.scp").read_text().split()[1]
    rois = np.load(roi_path)
    assert rois.shape == (30, 96, 96) and rois.dtype == np.uint8
    kept = tmp_path / "data" / "av" / "test" / "landmarks" / "test" / "spk"
    landmarks = np.load(kept / "00000.npy")
    assert landmarks.shape == (30, 68, 2) and not np.isnan(landmarks).any()
    assert np.isnan(np.load(kept / "00001.npy")).all()
    # the kept landmarks, given back as landmark files, make the same crops
    again = prepare_av_set(
        face_corpus, "test", tmp_path / "data2",
        RoiSettings(method="landmarks", landmarks_dir=str(tmp_path / "data" / "av" / "test" / "landmarks")),
        nj=1, on_error="skip",
    )
    np.testing.assert_array_equal(np.load((again / "video.scp").read_text().split()[1]), rois)


def test_auto_uses_landmark_files_when_given_and_the_detector_otherwise():
    assert RoiSettings(method="auto").resolved().method == "detect"
    assert RoiSettings(method="auto", landmarks_dir="/marks").resolved().method == "landmarks"
    assert RoiSettings(method="as_is").resolved().method == "as_is"
    with pytest.raises(ValueError, match="upsample must be >= 0"):
        FaceLandmarkDetector(upsample=-1)
