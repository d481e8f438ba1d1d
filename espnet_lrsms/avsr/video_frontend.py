"""Auto-AVSR's visual front end as an ESPnet frontend (``video_frontend: resnet2d``).

Grey mouth crops at 25 frames/s → crop to 88×88 (random + horizontal flip in training, centre at
test) → pixel normalisation → 3-D convolution stem → 2-D ResNet-18 on every frame → global average
pool → one 512-d vector per video frame.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from torch import nn
from typeguard import typechecked

from espnet_lrsms.nets.resnet import make_activation, resnet18_trunk
from espnet_lrsms.asr.time_mask import AdaptiveTimeMask

# Mean and standard deviation of LRS3 mouth crops on the [0, 1] grey scale (Auto-AVSR's constants).
PIXEL_MEAN = 0.421
PIXEL_STD = 0.165


class ResNet2DVideoFrontend(AbsFrontend):
    """Visual front end of Auto-AVSR: 3-D conv stem + per-frame 2-D ResNet-18.

    Stem ``Conv3d(1, 64, (5, 7, 7), stride (1, 2, 2), padding (2, 3, 3))`` + BN + activation +
    ``MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))`` (time is never subsampled), then four stages of
    two basic blocks (64/128/256/512 channels, strides 1/2/2/2) applied to each frame, and a global
    average pool: one ``channels[-1]``-d vector per input frame (25 per second for LRS3).

    Pixels: the input holds grey values in [0, 255] (what the ``video_npy`` / ``video_mp4`` loaders
    give). In training each utterance gets one random ``crop_size`` × ``crop_size`` window and, with
    probability ``flip_prob``, a horizontal flip (the same for all its frames); in evaluation the
    centre window. Then ``(x / 255 − 0.421) / 0.165``. Frames smaller than ``crop_size`` are refused.

    Args:
        crop_size: side of the square window fed to the network (paper: 88 from 96×96 crops).
        flip_prob: probability of a horizontal flip per training utterance (0 disables).
        activation: ``swish`` (Auto-AVSR's), ``relu`` or ``prelu``.
        channels: widths of the four stages (the stem has the first); the output size is the last.
        time_mask: ``{window, stride}`` of an :class:`AdaptiveTimeMask` over frames in training
            (Auto-AVSR: ``{window: 10, stride: 25}``, one mask of < 0.4 s per second); masked frames
            become 0 after normalisation (the mean grey). None: no masking.

    Shapes:
        input (B, T, H, W) or (B, T, 1, H, W) with lengths (B,) → features (B, T, channels[-1]),
        lengths (B,) unchanged.
    """

    @typechecked
    def __init__(
        self,
        crop_size: int = 88,
        flip_prob: float = 0.5,
        activation: str = "swish",
        channels: Sequence[int] = (64, 128, 256, 512),
        time_mask: Optional[Dict[str, int]] = None,
    ):
        super().__init__()
        if crop_size < 8:
            raise ValueError(f"video_frontend_conf.crop_size: expected >= 8 pixels, got {crop_size}")
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"video_frontend_conf.flip_prob: expected a probability, got {flip_prob}")
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"video_frontend_conf.channels: expected 4 positive widths, got {list(channels)}")
        self.crop_size = crop_size
        self.flip_prob = flip_prob
        self.time_mask = AdaptiveTimeMask(**time_mask) if time_mask else None
        self._output_size = channels[-1]
        self.stem = nn.Sequential(
            nn.Conv3d(1, channels[0], (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(channels[0]),
            make_activation(activation, channels[0]),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.trunk = resnet18_trunk(channels, activation, dims=2)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def output_size(self) -> int:
        return self._output_size

    def crop(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) → (B, T, crop, crop): random window + flip in training, centre at test."""
        height, width = video.shape[-2:]
        size = self.crop_size
        if height < size or width < size:
            raise ValueError(
                f"video frames are {height}x{width} pixels, smaller than video_frontend_conf.crop_size={size}"
            )
        if not self.training:
            top, left = (height - size) // 2, (width - size) // 2
            return video[..., top : top + size, left : left + size]
        rows = []
        for clip in video:
            top = int(torch.randint(0, height - size + 1, (1,)))
            left = int(torch.randint(0, width - size + 1, (1,)))
            clip = clip[..., top : top + size, left : left + size]
            if self.flip_prob > 0 and float(torch.rand(1)) < self.flip_prob:
                clip = clip.flip(-1)
            rows.append(clip)
        return torch.stack(rows)

    def forward(
        self, input: torch.Tensor, input_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if input.dim() == 5:
            if input.size(2) != 1:
                raise ValueError(f"video: expected grey frames (B, T, 1, H, W), got shape {tuple(input.shape)}")
            input = input.squeeze(2)
        if input.dim() != 4:
            raise ValueError(f"video: expected (B, T, H, W) grey frames, got shape {tuple(input.shape)}")
        batch, frames = input.shape[:2]
        x = (self.crop(input) / 255.0 - PIXEL_MEAN) / PIXEL_STD
        mask = torch.arange(frames, device=x.device)[None, :] < input_lengths[:, None]
        x = x * mask[:, :, None, None].to(x.dtype)
        if self.time_mask is not None and self.training:
            flat, _ = self.time_mask(x.reshape(batch, frames, -1), input_lengths)
            x = flat.view_as(x)
        y = self.stem(x.unsqueeze(1))  # (B, C, T, H', W')
        channels, height, width = y.size(1), y.size(3), y.size(4)
        y = y.transpose(1, 2).reshape(batch * frames, channels, height, width)
        y = self.pool(self.trunk(y)).view(batch, frames, -1)
        return y, input_lengths
