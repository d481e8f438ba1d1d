"""Auto-AVSR's raw-waveform front end as an ESPnet frontend (``frontend: resnet1d``).

16 kHz waveform → per-utterance z-normalisation → 1-D ResNet-18 → 512-d features at 25 frames/s
(one frame per 640 samples). At another rate ``fs`` (ESPnet's ``--frontend_conf fs=8k``, which asr.sh
passes from ``--fs``) the stem's stride and kernel scale with it, so that a frame stays 40 ms.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import humanfriendly
import torch
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from torch import nn
from typeguard import typechecked

from espnet_lrsms.nets.resnet import make_activation, resnet18_trunk
from espnet_lrsms.asr.time_mask import AdaptiveTimeMask

SAMPLES_PER_FRAME = 640  # at 16 kHz: stem stride 4 × three stride-2 stages × average pool of 20
FRAME_RATE = 25  # frames per second at every supported rate
STEM_RATE = 4000  # Hz per unit of stem stride: fs / 25 = stride × 2 × 2 × 2 × 20 samples per frame


class ResNet1DFrontend(AbsFrontend):
    """Raw-waveform ResNet-18-style 1-D front end of Auto-AVSR.

    Stem ``Conv1d(1, 64, 80, stride 4)`` + BN + activation, four stages of two basic blocks
    (64/128/256/512 channels, strides 1/2/2/2), average pool of 20 → one 512-d vector per 640
    samples (25 frames/s at 16 kHz). Each utterance is z-normalised over its valid samples first,
    and the input is trimmed to a whole number of frames, so an utterance of ``L`` samples yields
    ``L // 640`` frames whatever it is batched with.

    Args:
        fs: sampling rate of the input (Hz, or ESPnet's ``"16k"``): a multiple of 4000. The stem's stride is
            ``fs / 4000`` and its kernel ``fs / 200`` samples (Auto-AVSR's 4 and 80 at 16 kHz: 5 ms), so every
            rate gives one frame per 40 ms (25 frames/s; 320 samples at 8 kHz). Another rate is refused
            when the model is built.
        activation: ``swish`` (Auto-AVSR's audio default), ``relu`` or ``prelu``.
        normalize: z-normalise each utterance (mean 0, variance 1 over its valid samples).
        channels: widths of the four stages (the stem has the first); the output size is the last.
            The paper's is (64, 128, 256, 512); narrower ones make CPU demos fast.
        time_mask: ``{window, stride}`` of an :class:`AdaptiveTimeMask` applied to the raw waveform
            in training, in samples at ``fs`` (paper, 16 kHz: ``{window: 6400, stride: 16000}``, one mask
            of up to 0.4 s per started second; at 8 kHz the same is ``{window: 3200, stride: 8000}``);
            None: no masking.

    Shapes:
        input (B, L) waveform with lengths (B,) → features (B, L_max // (fs / 25), channels[-1]), lengths (B,).
    """

    @typechecked
    def __init__(
        self,
        fs: Union[int, str] = 16000,
        activation: str = "swish",
        normalize: bool = True,
        channels: Sequence[int] = (64, 128, 256, 512),
        time_mask: Optional[Dict[str, int]] = None,
    ):
        super().__init__()
        rate = _sampling_rate(fs)
        if rate % STEM_RATE:
            raise ValueError(
                f"frontend_conf.fs: resnet1d takes a multiple of {STEM_RATE} Hz (its stem stride is fs/{STEM_RATE}, "
                f"so that a frame is 40 ms: 4 at the paper's 16000 Hz, 2 at 8000 Hz), got {fs}; "
                f"resample the audio to 16000 Hz (the recipe's --fs 16k)"
            )
        self.fs = rate
        self.samples_per_frame = rate // FRAME_RATE
        stride, kernel = rate // STEM_RATE, rate // 200
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"frontend_conf.channels: expected 4 positive widths, got {list(channels)}")
        self.normalize = normalize
        self.time_mask = AdaptiveTimeMask(**time_mask) if time_mask else None
        self._output_size = channels[-1]
        self.stem = nn.Sequential(
            nn.Conv1d(1, channels[0], kernel_size=kernel, stride=stride, padding=(kernel - stride) // 2, bias=False),
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
        num_frames = input.size(1) // self.samples_per_frame
        if num_frames == 0:  # ESPnet's decoding writes an empty hypothesis for this error and goes on
            raise TooShortUttError(
                f"resnet1d needs at least {self.samples_per_frame} samples (40 ms at {self.fs} Hz); "
                f"got a batch of {input.size(1)}",
                input.size(1),
                self.samples_per_frame,
            )
        x = input[:, : num_frames * self.samples_per_frame]
        lengths = torch.clamp(input_lengths, max=x.size(1))
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]
        if self.time_mask is not None and self.training:
            x, _ = self.time_mask(x, lengths)
        if self.normalize:
            x = _z_normalize(x, mask, lengths)
        x = x.masked_fill(~mask, 0.0)
        feats = self.pool(self.trunk(self.stem(x.unsqueeze(1))))  # (B, 512, T)
        return feats.transpose(1, 2), lengths // self.samples_per_frame


def _sampling_rate(fs: Union[int, str]) -> int:
    """``16000`` or ESPnet's ``"16k"`` → 16000 (as ESPnet's DefaultFrontend reads ``fs``)."""
    try:
        rate = int(humanfriendly.parse_size(fs)) if isinstance(fs, str) else int(fs)
    except humanfriendly.InvalidSize:
        raise ValueError(f"frontend_conf.fs: not a sampling rate: {fs!r} (e.g. 16000 or 16k)") from None
    if rate <= 0:
        raise ValueError(f"frontend_conf.fs: a sampling rate must be positive, got {fs}")
    return rate


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
