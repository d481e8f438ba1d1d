"""Mouth regions of interest (ROIs) for the AVSR recipe: 96×96 grey crops at 25 frames/s.

Two ways to get them from a clip's grey frames ``(T, H, W)`` (``egs2/lrs3/avsr1_lrsms`` stage 1):

- **landmarks** — per-frame facial landmarks, 68-point (iBUG/dlib/FAN layout; the mouth is points
  48–67, 0-based) or the 20 mouth points alone. Frames without a face (``None`` in a ``.pkl`` list,
  NaN rows in an ``.npy``) take the mouth position linearly interpolated from the nearest frames
  that have one; a clip without a face in any frame is refused (:class:`NoFaceError`). The mouth
  centre (mean of the mouth points) is smoothed over ``smooth_window`` frames; a square of side
  ``crop_scale`` × the clip's median mouth width (corner 48 to corner 54) around it is cut out
  (edge pixels repeated where it leaves the frame) and resized to ``size``×``size``.
- **as_is** — the video already shows the mouth (e.g. the demo corpus, or crops made elsewhere):
  every frame is resized to ``size``×``size``.

Accepted landmark files (one per clip, ``<landmarks_dir>/<split>/<speaker>/<clip>.{pkl,npy}``):

- ``.pkl``: a list (one entry per video frame) of ``(68, 2)`` or ``(20, 2)`` arrays of (x, y) pixel
  coordinates, or ``None`` where no face was found (the format of Auto-AVSR's released LRS3
  landmarks, which hold the 68 points);
- ``.npy``: a float array ``(T, 68, 2)`` or ``(T, 20, 2)``, NaN where no face was found.

Facts read from Auto-AVSR's preprocessing (nothing copied): 96×96 mouth crops around points 48–67,
missing frames interpolated, landmarks smoothed over 12 frames. Assumed here: no affine alignment
to a mean face (the crop is axis-aligned) and a crop side of twice the mouth width.
"""
import pickle
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch
from typeguard import typechecked

ROI_SIZE = 96
MOUTH_68 = slice(48, 68)  # 0-based indices of the mouth in the 68-point layout
LEFT_CORNER, RIGHT_CORNER = 0, 6  # within the 20 mouth points: 48 and 54


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles lists, tuples, numbers, None and numpy arrays; refuses every other global (a
    crafted pickle names ``os.system`` or similar there), so reading a landmark file runs no code."""

    ALLOWED = {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused {module}.{name}: a landmark file holds only arrays and numbers")
        return super().find_class(module, name)


class LandmarkError(ValueError):
    """A landmark file that cannot be used; the message names the file and the problem."""


class NoFaceError(LandmarkError):
    """A clip whose landmark file has no face in any frame."""


@typechecked
def read_landmarks(path: Union[str, Path]) -> np.ndarray:
    """``(T, P, 2)`` float64 landmarks of one clip (P = 68 or 20), NaN rows where no face was found."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkError(f"{path}: no such landmark file")
    try:
        if path.suffix == ".pkl":
            with open(path, "rb") as f:
                frames = _ArrayUnpickler(f).load()
            if not isinstance(frames, (list, tuple)):
                raise LandmarkError(f"{path}: expected a list of per-frame landmarks, got {type(frames).__name__}")
            points = next((np.asarray(f).shape[0] for f in frames if f is not None), 68)
            array = np.full((len(frames), points, 2), np.nan)
            for t, frame in enumerate(frames):
                if frame is not None:
                    frame = np.asarray(frame, dtype=np.float64)
                    if frame.shape != (points, 2):
                        raise LandmarkError(f"{path}: frame {t} has landmarks of shape {frame.shape}, expected ({points}, 2)")
                    array[t] = frame
        elif path.suffix == ".npy":
            array = np.load(path, allow_pickle=False).astype(np.float64)
        else:
            raise LandmarkError(f"{path}: unknown landmark file type {path.suffix!r} (expected .pkl or .npy)")
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as err:
        if isinstance(err, LandmarkError):
            raise
        raise LandmarkError(f"{path}: cannot read ({type(err).__name__}: {err})") from err
    if array.ndim != 3 or array.shape[1] not in (68, 20) or array.shape[2] != 2:
        raise LandmarkError(f"{path}: expected landmarks of shape (T, 68, 2) or (T, 20, 2), got {array.shape}")
    if array.shape[0] == 0:
        raise LandmarkError(f"{path}: no frames")
    return array


@typechecked
def mouth_points(landmarks: np.ndarray) -> np.ndarray:
    """The 20 mouth points ``(T, 20, 2)`` of 68-point (or already mouth-only) landmarks."""
    return landmarks[:, MOUTH_68] if landmarks.shape[1] == 68 else landmarks


@typechecked
def mouth_track(landmarks: np.ndarray, smooth_window: int = 12, source: str = "landmarks") -> Tuple[np.ndarray, float]:
    """Per-frame mouth centres ``(T, 2)`` (x, y), gaps interpolated and smoothed, and the median mouth width.

    Raises:
        NoFaceError: no frame has landmarks (``source`` names the file in the message).
    """
    mouth = mouth_points(landmarks)
    found = ~np.isnan(mouth).any(axis=(1, 2))
    if not found.any():
        raise NoFaceError(f"{source}: no face in any of its {len(mouth)} frames")
    frames = np.arange(len(mouth))
    centres = mouth[found].mean(axis=1)
    centres = np.stack([np.interp(frames, frames[found], centres[:, k]) for k in (0, 1)], axis=1)
    if smooth_window > 1:
        kernel = np.ones(smooth_window)
        half = smooth_window // 2
        padded_ones = np.convolve(np.ones(len(frames)), kernel, mode="full")[half : half + len(frames)]
        centres = np.stack(
            [np.convolve(centres[:, k], kernel, mode="full")[half : half + len(frames)] / padded_ones for k in (0, 1)],
            axis=1,
        )
    widths = np.linalg.norm(mouth[found, RIGHT_CORNER] - mouth[found, LEFT_CORNER], axis=1)
    return centres, float(np.median(widths))


@typechecked
def resize_frames(frames: np.ndarray, size: int = ROI_SIZE) -> np.ndarray:
    """``(T, H, W)`` uint8 → ``(T, size, size)`` uint8 (bilinear, anti-aliased when shrinking)."""
    if frames.ndim != 3:
        raise ValueError(f"expected grey frames (T, H, W), got shape {frames.shape}")
    if frames.shape[1:] == (size, size):
        return frames.astype(np.uint8, copy=False)
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).unsqueeze(1)
    y = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()


@typechecked
def crop_square(frame: np.ndarray, centre: np.ndarray, side: int) -> np.ndarray:
    """The ``side``×``side`` window of a grey ``frame`` centred on ``centre`` (x, y); edge pixels repeated outside."""
    x0 = int(round(float(centre[0]) - side / 2))
    y0 = int(round(float(centre[1]) - side / 2))
    height, width = frame.shape
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    if pad:
        frame = np.pad(frame, pad, mode="edge")
        x0, y0 = x0 + pad, y0 + pad
    return frame[y0 : y0 + side, x0 : x0 + side]


@typechecked
def check_mouth_points(landmarks: np.ndarray, frame_shape: Tuple[int, int], source: str = "landmarks") -> None:
    """Refuse mouth points that are infinite or more than half a frame outside the ``(H, W)`` frames
    (NaN rows, no face, are fine): such a point would make a crop of absurd size.

    Raises:
        LandmarkError: naming ``source``, the frame, the point (68-point index) and its value.
    """
    mouth = mouth_points(landmarks)
    offset = MOUTH_68.start if landmarks.shape[1] == 68 else 0
    height, width = frame_shape
    found = ~np.isnan(mouth).any(axis=(1, 2))
    x, y = mouth[..., 0], mouth[..., 1]
    outside = ~((x >= -width / 2) & (x <= 1.5 * width) & (y >= -height / 2) & (y <= 1.5 * height))
    outside &= found[:, None]
    if outside.any():
        t, p = np.argwhere(outside)[0]
        raise LandmarkError(
            f"{source}: frame {t}, point {p + offset}: ({x[t, p]:g}, {y[t, p]:g}) is not a finite point within "
            f"half a frame of the {width}x{height} frames ({int(outside.sum())} such points)"
        )


@typechecked
def crop_mouth_rois(
    frames: np.ndarray,
    landmarks: np.ndarray,
    size: int = ROI_SIZE,
    crop_scale: float = 2.0,
    smooth_window: int = 12,
    source: str = "landmarks",
) -> np.ndarray:
    """``(T, size, size)`` uint8 mouth crops of grey ``frames`` (T, H, W) from landmarks (T, P, 2).

    ``frames`` and ``landmarks`` must have the same number of frames (the caller checks and names the
    files); the crop side is ``crop_scale`` × the median mouth width, at least 8 pixels. Mouth points
    far outside the frames (:func:`check_mouth_points`) or a mouth wider than the frames are refused.
    """
    if len(frames) != len(landmarks):
        raise LandmarkError(f"{source}: {len(landmarks)} frames of landmarks for a video of {len(frames)} frames")
    check_mouth_points(landmarks, frames.shape[1:], source)
    centres, width = mouth_track(landmarks, smooth_window, source)
    if width > max(frames.shape[1:]):
        raise LandmarkError(
            f"{source}: median mouth width {width:.0f} px is wider than the {frames.shape[2]}x{frames.shape[1]} frames"
        )
    side = max(8, int(round(crop_scale * width)))
    crops = np.stack([crop_square(frame, centre, side) for frame, centre in zip(frames, centres)])
    return resize_frames(crops, size)


def find_landmark_file(landmarks_dir: Path, relative: Path) -> Optional[Path]:
    """``<landmarks_dir>/<relative>.pkl`` or ``.npy`` (``relative`` = ``<split>/<speaker>/<clip>``), None if neither."""
    for suffix in (".pkl", ".npy"):
        candidate = landmarks_dir / relative.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None
