"""Adaptive time masking (Ma et al., 2022; used by Auto-AVSR and LR-SMS on the raw waveform)."""
from typing import Optional, Tuple

import torch
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from typeguard import typechecked


class AdaptiveTimeMask(AbsSpecAug):
    """Zero random time spans, their number proportional to each utterance's length.

    An utterance of L steps gets ``ceil(L / stride)`` masks (:meth:`num_masks`, as Auto-AVSR's
    ``AdaptiveTimeMask`` in ``datamodule/transforms.py``: a 1.2 s clip at stride 16000 gets 2), each
    of a width drawn uniformly from [0, window) steps at a uniform position inside the utterance.
    Active only in training mode.

    On the 16 kHz waveform (inside ``frontend: resnet1d``, ``frontend_conf.time_mask``):
    window 6400 (0.4 s), stride 16000 (one mask per started second). As
    ``specaug: adaptive_time_mask`` it acts on front-end features (B, T, D) instead; at 25 frames/s
    use window 10, stride 25.

    Shapes: (B, T) or (B, T, D) with lengths (B,) → same shapes.
    """

    @typechecked
    def __init__(self, window: int = 6400, stride: int = 16000):
        super().__init__()
        if window < 1 or stride < 1:
            raise ValueError(f"time_mask: window and stride must be >= 1, got window={window}, stride={stride}")
        self.window = window
        self.stride = stride

    def num_masks(self, length: int) -> int:
        """Number of masks for an utterance of ``length`` steps: ``ceil(length / stride)`` in
        integer arithmetic (Auto-AVSR: ``int((length + stride - 0.1) // stride)``); 0 for length 0."""
        return -(-length // self.stride)

    def forward(
        self, x: torch.Tensor, x_lengths: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if not self.training:
            return x, x_lengths
        lengths = x_lengths.tolist() if x_lengths is not None else [x.size(1)] * x.size(0)
        keep = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        for b, length in enumerate(lengths):
            widths = torch.randint(0, self.window, (self.num_masks(length),)).tolist()
            for width in widths:
                width = min(width, length)
                if width == 0:
                    continue
                start = int(torch.randint(0, length - width + 1, (1,)))
                keep[b, start : start + width] = False
        mask = keep if x.dim() == 2 else keep.unsqueeze(-1)
        return x * mask.to(x.dtype), x_lengths
