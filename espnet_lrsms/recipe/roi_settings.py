"""How AVSR stage 1 makes its mouth crops (:class:`RoiSettings`), in a module that imports neither torch nor
ESPnet, so that the stage-1 command parses its options and prepares an audio-only corpus without loading them
(:mod:`espnet_lrsms.recipe.avsr_data_prep` makes the crops)."""
from dataclasses import dataclass, replace
from typing import Optional

ROI_METHODS = ("auto", "landmarks", "detect", "as_is")
ROI_SIZE = 96  # px: espnet_lrsms.avsr.roi.ROI_SIZE, Auto-AVSR's crop (a test keeps the two equal)


@dataclass(frozen=True)
class RoiSettings:
    """How the mouth crops are made (kept next to the cache; other settings redo the crops)."""

    method: str = "as_is"
    landmarks_dir: Optional[str] = None
    size: int = ROI_SIZE
    crop_scale: float = 2.0
    smooth_window: int = 12
    detect_upsample: int = 0  # "detect": dlib's upsampling steps (0: face boxes of about 60 px and larger)
    detect_fallback: int = 1  # "detect": further upsampling steps tried on frames without a face (0: none)

    def resolved(self) -> "RoiSettings":
        """``"auto"`` made concrete: ``"landmarks"`` with a ``landmarks_dir``, else ``"detect"``."""
        if self.method != "auto":
            return self
        return replace(self, method="landmarks" if self.landmarks_dir else "detect")
