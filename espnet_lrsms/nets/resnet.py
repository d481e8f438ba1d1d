"""ResNet pieces shared by the audio (``resnet1d``) and the video (``resnet2d``) front end. Pure PyTorch."""
from typing import Sequence

import torch
from torch import nn

STAGE_STRIDES = (1, 2, 2, 2)


def make_activation(name: str, channels: int) -> nn.Module:
    """``swish`` (``nn.SiLU``), ``relu`` or ``prelu`` (one slope per channel)."""
    if name == "swish":
        return nn.SiLU()
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU(num_parameters=channels)
    raise ValueError(f"frontend_conf.activation: unknown activation {name!r}; choose swish, relu or prelu")


class BasicBlock(nn.Module):
    """ResNet's basic block in 1-D or 2-D: two 3-tap (3×3) convolutions with batch norm and a
    (projected) shortcut. (B, C_in, L) → (B, C_out, L/stride) for ``dims=1``,
    (N, C_in, H, W) → (N, C_out, H/stride, W/stride) for ``dims=2``."""

    LAYERS = {1: (nn.Conv1d, nn.BatchNorm1d), 2: (nn.Conv2d, nn.BatchNorm2d)}

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str, dims: int = 1):
        super().__init__()
        if dims not in self.LAYERS:
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        conv, norm = self.LAYERS[dims]
        self.conv1 = conv(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(out_channels)
        self.act1 = make_activation(activation, out_channels)
        self.conv2 = conv(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = norm(out_channels)
        self.act2 = make_activation(activation, out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                conv(in_channels, out_channels, 1, stride=stride, bias=False),
                norm(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act2(y + self.shortcut(x))


def resnet18_trunk(channels: Sequence[int], activation: str, dims: int) -> nn.Sequential:
    """ResNet-18's four stages of two basic blocks: widths ``channels`` (the input has
    ``channels[0]``), strides 1/2/2/2."""
    stages = []
    in_channels = channels[0]
    for out_channels, stride in zip(channels, STAGE_STRIDES):
        stages += [
            BasicBlock(in_channels, out_channels, stride, activation, dims=dims),
            BasicBlock(out_channels, out_channels, 1, activation, dims=dims),
        ]
        in_channels = out_channels
    return nn.Sequential(*stages)
