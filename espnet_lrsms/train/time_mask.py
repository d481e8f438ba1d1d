"""Adaptive time masking (Ma et al., 2022; used by Auto-AVSR and LR-SMS on the raw waveform)."""
from typing import Optional, Tuple

import torch
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from typeguard import typechecked


class AdaptiveTimeMask(AbsSpecAug):
    """Zero random time spans, their number proportional to each utterance's length.

    An utterance of L steps gets ``round(L / stride)`` masks (at least one), each of a width drawn
    uniformly from [0, window) steps at a uniform position inside the utterance. Active only in
    training mode.

    On the 16 kHz waveform (inside ``frontend: resnet1d``, ``frontend_conf.time_mask``):
    window 6400 (0.4 s), stride 16000 (one mask per second). As ``specaug: adaptive_time_mask`` it
    acts on front-end features (B, T, D) instead; at 25 frames/s use window 10, stride 25.

    Shapes: (B, T) or (B, T, D) with lengths (B,) → same shapes.
    """

    @typechecked
    def __init__(self, window: int = 6400, stride: int = 16000):
        super().__init__()
        if window < 1 or stride < 1:
            raise ValueError(f"time_mask: window and stride must be >= 1, got window={window}, stride={stride}")
        self.window = window
        self.stride = stride

    def forward(
        self, x: torch.Tensor, x_lengths: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if not self.training:
            return x, x_lengths
        lengths = x_lengths.tolist() if x_lengths is not None else [x.size(1)] * x.size(0)
        keep = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        for b, length in enumerate(lengths):
            num_masks = max(1, int(length / self.stride + 0.5))
            widths = torch.randint(0, self.window, (num_masks,)).tolist()
            for width in widths:
                width = min(width, length)
                if width == 0:
                    continue
                start = int(torch.randint(0, length - width + 1, (1,)))
                keep[b, start : start + width] = False
        mask = keep if x.dim() == 2 else keep.unsqueeze(-1)
        return x * mask.to(x.dtype), x_lengths
