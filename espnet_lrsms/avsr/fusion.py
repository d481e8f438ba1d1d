"""Early audio-visual fusion: an MLP over the frame-wise concatenation of the two streams."""
from typing import Optional

import torch
from torch import nn
from typeguard import typechecked


class MLPFusion(nn.Module):
    """``Linear(D_a + D_v, hidden) → norm → ReLU → Linear(hidden, output_size)`` on every frame.

    The two-layer head of Auto-AVSR (``MLPHead``: hidden 8192, batch norm), here applied to the
    concatenated *front-end* features (early fusion, as in MSRS and LR-SMS's AVSR model) rather than
    to two encoders' outputs. Its output feeds the Conformer blocks directly (``input_layer: null``),
    so ``output_size`` is the encoder's ``output_size``.

    Batch norm statistics are computed over the valid frames only (padding is left out), and the
    output is zero on padded frames.

    Args:
        audio_size: D_a, the audio front end's output size.
        video_size: D_v, the video front end's output size.
        hidden_units: width of the hidden layer (Auto-AVSR: 8192).
        output_size: width of the output (the encoder's d_model).
        norm: ``batch_norm`` (Auto-AVSR), ``layer_norm`` or None.
        dropout_rate: dropout after the activation.

    Shapes: audio (B, T, D_a), video (B, T, D_v), lengths (B,) → (B, T, output_size).
    """

    @typechecked
    def __init__(
        self,
        audio_size: int,
        video_size: int,
        hidden_units: int = 8192,
        output_size: int = 768,
        norm: Optional[str] = "batch_norm",
        dropout_rate: float = 0.0,
    ):
        super().__init__()
        if min(audio_size, video_size, hidden_units, output_size) < 1:
            raise ValueError(
                f"fusion_conf: sizes must be positive, got audio_size={audio_size}, video_size={video_size}, "
                f"hidden_units={hidden_units}, output_size={output_size}"
            )
        self.audio_size = audio_size
        self.video_size = video_size
        self._output_size = output_size
        self.linear1 = nn.Linear(audio_size + video_size, hidden_units)
        if norm == "batch_norm":
            self.norm = nn.BatchNorm1d(hidden_units)
        elif norm == "layer_norm":
            self.norm = nn.LayerNorm(hidden_units)
        elif norm is None:
            self.norm = None
        else:
            raise ValueError(f"fusion_conf.norm: unknown norm {norm!r}; choose batch_norm, layer_norm or null")
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout_rate)
        self.linear2 = nn.Linear(hidden_units, output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(self, audio: torch.Tensor, video: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if audio.shape[:2] != video.shape[:2]:
            raise ValueError(f"fusion: audio {tuple(audio.shape)} and video {tuple(video.shape)} differ in (B, T)")
        mask = torch.arange(audio.size(1), device=audio.device)[None, :] < lengths[:, None]  # (B, T)
        valid = torch.cat([audio, video], dim=-1)[mask]  # (N, D_a + D_v): the valid frames only
        hidden = self.linear1(valid)
        if self.norm is not None:
            hidden = self.norm(hidden)
        hidden = self.dropout(self.activation(hidden))
        out = audio.new_zeros(audio.size(0), audio.size(1), self._output_size)
        out[mask] = self.linear2(hidden)
        return out
