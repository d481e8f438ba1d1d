"""68-point face landmarks per video frame, from a detector whose models come inside PyPI packages.

The AVSR recipe's stage 1 crops the mouth around landmarks. When the user has no landmark files
(``--landmarks_dir``), :class:`FaceLandmarkDetector` makes them:

- faces: dlib's frontal face detector (HOG + linear SVM; built into the ``dlib-bin`` wheel);
- landmarks: dlib's 68-point shape predictor (iBUG 300-W layout, the layout of Auto-AVSR's LRS3
  landmarks; the mouth is points 48–67), whose model file
  ``shape_predictor_68_face_landmarks.dat`` is inside the ``face_recognition_models`` package.

Nothing is downloaded at run time. Where a frame has several faces the largest is taken. Frames without
a face are searched again at a higher upsampling (``fallback_upsample``: faces down to about 30 px); where
there is still none the row is NaN and :func:`espnet_lrsms.avsr.roi.mouth_track` interpolates the mouth
position from the nearest frames with a face.

Licence note: dlib's 68-point model was trained on the iBUG 300-W data, whose licence excludes
commercial use (see ``docs/avsr.md``).
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np
from typeguard import typechecked

NUM_POINTS = 68
SMALL_BOX = 80  # px: dlib's face boxes come no smaller than about 73 px at a given upsampling


@lru_cache(maxsize=None)
def _dlib_models() -> Tuple[object, object]:
    """dlib's face detector and 68-point shape predictor, loaded once per process (≈ 100 MB)."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as err:  # both are install_requires of espnet_lrsms
        raise ImportError(
            f"face-landmark detection needs dlib and face_recognition_models ({err}); "
            "reinstall espnet_lrsms (pip install -e .) or give --landmarks_dir"
        ) from err
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    return dlib.get_frontal_face_detector(), predictor


@dataclass(frozen=True)
class DetectionReport:
    """How the landmarks of one clip were found: frames with a face at the base upsampling, frames found
    only by the fallback (higher upsampling), frames left without a face, and the longest run of those."""

    frames: int
    found: int
    fallback: int
    longest_gap: int

    @property
    def missing(self) -> int:
        return self.frames - self.found - self.fallback


def longest_gap(found: np.ndarray) -> int:
    """The longest run of False in a boolean per-frame array (frames without landmarks)."""
    longest = run = 0
    for value in found:
        run = 0 if value else run + 1
        longest = max(longest, run)
    return longest


class FaceLandmarkDetector:
    """Per-frame 68-point landmarks of the largest face, NaN where no face is found.

    Args:
        upsample: times dlib upsamples each frame before looking for faces (0: faces of about
            60×60 pixels (dlib's face box) and larger; each step doubles the resolution, finds faces half
            as large and costs about 1.5-4× the time).
        fallback_upsample: frames without a face at ``upsample`` are searched again at each level up to this
            one (:meth:`detect_clip`); a level is tried on a few evenly spaced frames first and skipped when
            they stay empty, so a clip without a face costs little more.
    """

    PROBES = 5  # frames a fallback level is tried on first

    @typechecked
    def __init__(self, upsample: int = 0, fallback_upsample: Optional[int] = None):
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        fallback_upsample = upsample + 1 if fallback_upsample is None else fallback_upsample
        if fallback_upsample < upsample:
            raise ValueError(f"fallback_upsample {fallback_upsample} is below upsample {upsample}")
        self.upsample, self.fallback_upsample = upsample, fallback_upsample
        self.face_detector, self.shape_predictor = _dlib_models()

    @typechecked
    def detect_frame(self, frame: np.ndarray, upsample: Optional[int] = None) -> np.ndarray:
        """``(68, 2)`` float64 (x, y) pixel landmarks of the largest face in a grey ``(H, W)`` frame, or NaN."""
        return self._detect(frame, self.upsample if upsample is None else upsample)[0]

    def _detect(self, frame: np.ndarray, upsample: int) -> Tuple[np.ndarray, int]:
        """The landmarks (or NaN) and the width of dlib's face box (0: no face)."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        faces = self.face_detector(frame, upsample)
        if len(faces) == 0:
            return np.full((NUM_POINTS, 2), np.nan), 0
        face = max(faces, key=lambda rect: rect.width() * rect.height())
        shape = self.shape_predictor(frame, face)
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64), int(face.width())

    @typechecked
    def detect_clip(self, frames: np.ndarray) -> Tuple[np.ndarray, DetectionReport]:
        """Landmarks ``(T, 68, 2)`` of grey frames ``(T, H, W)`` (uint8, or floats holding 0–255), and the
        :class:`DetectionReport`.

        Fallback, level by level up to ``fallback_upsample``: frames without a face, and frames whose face
        box is at the detector's smallest scale (under :data:`SMALL_BOX` px at that level: such a face, of
        about 55–70 px, gets a box that is too large and a mouth about 1/6 of the face too low), are detected
        again one upsampling step higher, where the box fits; a face found there replaces the first one."""
        if frames.ndim != 3:
            raise ValueError(f"expected grey frames (T, H, W), got shape {frames.shape}")
        frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8) if frames.dtype != np.uint8 else frames
        results = [self._detect(frame, self.upsample) for frame in frames]
        landmarks = np.stack([points for points, _ in results])
        widths = np.array([width for _, width in results])
        base = widths > 0
        by_fallback = np.zeros(len(frames), dtype=bool)
        for level in range(self.upsample + 1, self.fallback_upsample + 1):
            retry = np.flatnonzero((widths == 0) | (widths < SMALL_BOX / 2 ** (level - 1)))
            if retry.size == 0:
                break
            probes = retry[np.linspace(0, retry.size - 1, min(self.PROBES, retry.size)).round().astype(int)]
            found_any, probed = False, set(probes.tolist())
            for t in [*probes, *(t for t in retry if t not in probed)]:
                points, width = self._detect(frames[t], level)
                if width:  # dlib's boxes are in the frame's pixels at every upsampling
                    landmarks[t], widths[t], by_fallback[t] = points, width, True
                    found_any = True
                if t == probes[-1] and not found_any:
                    break  # nothing at this level in the probes: not worth every frame
        found = ~np.isnan(landmarks).any(axis=(1, 2))
        report = DetectionReport(len(frames), int((base & ~by_fallback).sum()), int(by_fallback.sum()), longest_gap(found))
        return landmarks, report

    @typechecked
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Landmarks ``(T, 68, 2)`` of grey frames ``(T, H, W)`` (see :meth:`detect_clip`)."""
        return self.detect_clip(frames)[0]
