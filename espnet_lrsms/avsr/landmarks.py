"""68-point face landmarks per video frame, from a detector whose models come inside PyPI packages.

The AVSR recipe's stage 1 crops the mouth around landmarks. When the user has no landmark files
(``--landmarks_dir``), :class:`FaceLandmarkDetector` makes them:

- faces: dlib's frontal face detector (HOG + linear SVM; built into the ``dlib-bin`` wheel);
- landmarks: dlib's 68-point shape predictor (iBUG 300-W layout, the layout of Auto-AVSR's LRS3
  landmarks; the mouth is points 48–67), whose model file
  ``shape_predictor_68_face_landmarks.dat`` is inside the ``face_recognition_models`` package.

Nothing is downloaded at run time. Where a frame has several faces the largest is taken; where it
has none its row is NaN and :func:`espnet_lrsms.avsr.roi.mouth_track` interpolates the mouth
position from the nearest frames with a face.

Licence note: dlib's 68-point model was trained on the iBUG 300-W data, whose licence excludes
commercial use (see ``docs/avsr.md``).
"""
from functools import lru_cache
from typing import Tuple

import numpy as np
from typeguard import typechecked

NUM_POINTS = 68


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


class FaceLandmarkDetector:
    """Per-frame 68-point landmarks of the largest face, NaN where no face is found.

    Args:
        upsample: times dlib upsamples each frame before looking for faces (0: faces of about
            80×80 pixels and larger; each step doubles the resolution, finds faces half as large
            and costs about 4× the time).
    """

    @typechecked
    def __init__(self, upsample: int = 0):
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        self.upsample = upsample
        self.face_detector, self.shape_predictor = _dlib_models()

    @typechecked
    def detect_frame(self, frame: np.ndarray) -> np.ndarray:
        """``(68, 2)`` float64 (x, y) pixel landmarks of the largest face in a grey ``(H, W)`` frame, or NaN."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        faces = self.face_detector(frame, self.upsample)
        if len(faces) == 0:
            return np.full((NUM_POINTS, 2), np.nan)
        face = max(faces, key=lambda rect: rect.width() * rect.height())
        shape = self.shape_predictor(frame, face)
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float64)

    @typechecked
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Landmarks ``(T, 68, 2)`` of grey frames ``(T, H, W)`` (uint8, or floats holding 0–255)."""
        if frames.ndim != 3:
            raise ValueError(f"expected grey frames (T, H, W), got shape {frames.shape}")
        frames = np.clip(np.rint(frames), 0, 255).astype(np.uint8) if frames.dtype != np.uint8 else frames
        return np.stack([self.detect_frame(frame) for frame in frames])
