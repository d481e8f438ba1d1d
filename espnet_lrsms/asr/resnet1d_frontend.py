"""Auto-AVSR's raw-waveform front end as an ESPnet frontend (``frontend: resnet1d``).

16 kHz waveform → per-utterance z-normalisation → 1-D ResNet-18 → 512-d features at 25 frames/s
(one frame per 640 samples).
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from torch import nn
from typeguard import typechecked

from espnet_lrsms.nets.resnet import make_activation, resnet18_trunk
from espnet_lrsms.asr.time_mask import AdaptiveTimeMask

SAMPLES_PER_FRAME = 640  # stem stride 4 × three stride-2 stages × average pool of 20


class ResNet1DFrontend(AbsFrontend):
    """Raw-waveform ResNet-18-style 1-D front end of Auto-AVSR.

    Stem ``Conv1d(1, 64, 80, stride 4)`` + BN + activation, four stages of two basic blocks
    (64/128/256/512 channels, strides 1/2/2/2), average pool of 20 → one 512-d vector per 640
    samples (25 frames/s at 16 kHz). Each utterance is z-normalised over its valid samples first,
    and the input is trimmed to a whole number of frames, so an utterance of ``L`` samples yields
    ``L // 640`` frames whatever it is batched with.

    Args:
        fs: sampling rate the front end expects (only 16000 keeps 25 frames/s).
        activation: ``swish`` (Auto-AVSR's audio default), ``relu`` or ``prelu``.
        normalize: z-normalise each utterance (mean 0, variance 1 over its valid samples).
        channels: widths of the four stages (the stem has the first); the output size is the last.
            The paper's is (64, 128, 256, 512); narrower ones make CPU demos fast.
        time_mask: ``{window, stride}`` of an :class:`AdaptiveTimeMask` applied to the raw waveform
            in training (paper: ``{window: 6400, stride: 16000}``, one mask of up to 0.4 s per started
            second); None: no masking.

    Shapes:
        input (B, L) waveform with lengths (B,) → features (B, L_max // 640, channels[-1]), lengths (B,).
    """

    @typechecked
    def __init__(
        self,
        fs: int = 16000,
        activation: str = "swish",
        normalize: bool = True,
        channels: Sequence[int] = (64, 128, 256, 512),
        time_mask: Optional[Dict[str, int]] = None,
    ):
        super().__init__()
        if fs != 16000:
            raise ValueError(f"frontend_conf.fs: resnet1d expects 16000 Hz audio, got {fs}")
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"frontend_conf.channels: expected 4 positive widths, got {list(channels)}")
        self.normalize = normalize
        self.time_mask = AdaptiveTimeMask(**time_mask) if time_mask else None
        self._output_size = channels[-1]
        self.stem = nn.Sequential(
            nn.Conv1d(1, channels[0], kernel_size=80, stride=4, padding=38, bias=False),
            nn.BatchNorm1d(channels[0]),
            make_activation(activation, channels[0]),
        )
        self.trunk = resnet18_trunk(channels, activation, dims=1)
        self.pool = nn.AvgPool1d(kernel_size=20, stride=20)

    def output_size(self) -> int:
        return self._output_size

    def forward(
        self, input: torch.Tensor, input_lengths: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if input.dim() == 3:  # (B, L, 1) from a mono sound reader
            input = input.squeeze(-1)
        num_frames = input.size(1) // SAMPLES_PER_FRAME
        if num_frames == 0:  # ESPnet's decoding writes an empty hypothesis for this error and goes on
            raise TooShortUttError(
                f"resnet1d needs at least {SAMPLES_PER_FRAME} samples (40 ms at 16 kHz); "
                f"got a batch of {input.size(1)}",
                input.size(1),
                SAMPLES_PER_FRAME,
            )
        x = input[:, : num_frames * SAMPLES_PER_FRAME]
        lengths = torch.clamp(input_lengths, max=x.size(1))
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]
        if self.time_mask is not None and self.training:
            x, _ = self.time_mask(x, lengths)
        if self.normalize:
            x = _z_normalize(x, mask, lengths)
        x = x.masked_fill(~mask, 0.0)
        feats = self.pool(self.trunk(self.stem(x.unsqueeze(1))))  # (B, 512, T)
        return feats.transpose(1, 2), lengths // SAMPLES_PER_FRAME


def _z_normalize(x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean 0, variance 1 over the valid samples of each row of ``x`` (B, L).

    ``(x - mean) / sqrt(var + 1e-8)`` with the biased variance of the valid samples, as Auto-AVSR's
    ``layer_norm(x, x.shape, eps=1e-8)`` on each unpadded utterance (``datamodule/transforms.py``).
    The small eps keeps quiet utterances at unit variance (RMS 0.003 → std 0.9994; eps 1e-5 gave
    0.69).
    """
    count = lengths.clamp(min=1).to(x.dtype)[:, None]
    valid = x.masked_fill(~mask, 0.0)
    mean = valid.sum(1, keepdim=True) / count
    var = ((valid - mean).masked_fill(~mask, 0.0) ** 2).sum(1, keepdim=True) / count
    return (x - mean) / torch.sqrt(var + 1e-8)
