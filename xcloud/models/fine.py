"""The fine segmenter: SEnSeI -> a compact U-Net-like encoder-decoder -> per-pixel logits.

The network is built for CPU throughput. Full-resolution work is limited to SEnSeI's per-pixel
linear map (``C x 16`` multiply-adds), one normalisation, one stride-2 convolution and a 1x1
skip to the logits; everything else runs at 1/2 to 1/32 resolution, and the decoder uses
bilinear upsampling, additive skips and depthwise-separable convolutions. In all it costs about
2.5 k multiply-adds per input pixel, so it needs tiles whose edge is a multiple of 32.

Classes, in channel order: ``clear``, ``cloud``, ``thin_cloud``, ``cloud_shadow``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from xcloud.models._spec import CLASSES
from xcloud.models.sensei import SEnSeI

__all__ = ["FINE_CLASSES", "Encoder", "FineNet", "conv_relu"]

FINE_CLASSES: tuple[str, ...] = tuple(CLASSES)  # its output channels, in code order


def conv_relu(
    c_in: int, c_out: int, *, stride: int = 1, kernel: int = 3, groups: int = 1
) -> nn.Sequential:
    """Convolution (with bias) + ReLU, 'same' padding, Kaiming-initialised.

    No normalisation layer, on purpose: batches mix sensors and band sets whose SEnSeI features
    differ in scale, and BatchNorm running statistics then disagree with the batch statistics
    the network learned to rely on (a trial with BatchNorm predicted no cloud at all in eval
    mode); GroupNorm / instance-style normalisation would erase the absolute brightness that
    tells an all-cloud tile from an all-clear one.

    >>> conv_relu(4, 8)(torch.zeros(1, 4, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
    """
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    assert conv.bias is not None
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.ReLU(inplace=True))


def sep_conv(c_in: int, c_out: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1 (each followed by ReLU)."""
    return nn.Sequential(conv_relu(c_in, c_in, groups=c_in), conv_relu(c_in, c_out, kernel=1))


class Encoder(nn.Module):
    """SEnSeI followed by five stride-2 stages (output strides 2, 4, 8, 16, 32).

    Parameters
    ----------
    widths
        Channels of the SEnSeI features and of the five stages.
    depth
        Number of stages to build (``depth=4`` stops at stride 16, the coarse model's bottleneck).
    """

    def __init__(
        self, widths: tuple[int, ...] = (16, 24, 32, 48, 64, 96), *, depth: int = 5
    ) -> None:
        super().__init__()
        self.widths = tuple(widths[: depth + 1])
        self.sensei = SEnSeI(out_channels=widths[0])
        self.stem = nn.ReLU()
        stages = []
        for i in range(depth):
            c_in, c_out = widths[i], widths[i + 1]
            layers = [conv_relu(c_in, c_out, stride=2)]
            if i >= 2:  # extra context where it is cheap (stride >= 8)
                layers.append(conv_relu(c_out, c_out, groups=1))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)

    def forward(
        self, x: torch.Tensor | Sequence[torch.Tensor], wavelengths: Any
    ) -> list[torch.Tensor]:
        """Feature maps at strides 1, 2, 4, ... (the first is SEnSeI's, after ReLU).

        ``x`` may also be a list of batches with a list of their wavelengths (one band set
        each): SEnSeI encodes each, and the results are concatenated along the batch. Training
        uses this so that every batch mixes sensors and band sets.
        """
        if isinstance(x, (list, tuple)):
            z = torch.cat([self.sensei(xi, wi) for xi, wi in zip(x, wavelengths, strict=True)])
        else:
            z = self.sensei(x, wavelengths)
        feats = [self.stem(z)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats


class FineNet(nn.Module):
    """SEnSeI + U-Net-like segmenter: ``(B, C, H, W)`` reflectance -> ``(B, 4, H, W)`` logits.

    ``H`` and ``W`` must be multiples of 32.

    Parameters
    ----------
    widths
        SEnSeI width and the widths of the five encoder stages.
    n_classes
        Number of output classes.

    Examples
    --------
    >>> net = FineNet().eval()
    >>> wl = torch.tensor([[450., 490., 520.], [540., 560., 580.], [650., 665., 680.]])
    >>> net(torch.rand(1, 3, 64, 64), wl).shape
    torch.Size([1, 4, 64, 64])
    """

    def __init__(
        self, widths: tuple[int, ...] = (16, 24, 32, 48, 64, 96), n_classes: int = 4
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"widths": list(widths), "n_classes": n_classes}
        self.encoder = Encoder(widths, depth=5)
        w = widths
        # decoder stage at stride s takes upsampled features (width of stage s+1) projected to w[s]
        self.lateral = nn.ModuleList(conv_relu(w[i + 1], w[i], kernel=1) for i in range(1, 5))
        self.fuse = nn.ModuleList(sep_conv(w[i], w[i]) for i in range(1, 5))
        self.head = nn.Conv2d(w[1], n_classes, 1)
        self.full_res = nn.Conv2d(w[0], n_classes, 1)

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor], wavelengths: Any) -> torch.Tensor:
        """Logits ``(B, n_classes, H, W)`` (``x`` may be a list of batches, see :class:`Encoder`)."""
        first = x[0] if isinstance(x, (list, tuple)) else x
        h, w = cast(torch.Tensor, first).shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"FineNet needs tiles whose edges are multiples of 32, got {h}x{w}")
        feats = self.encoder(x, wavelengths)
        d = feats[5]
        for i in range(4, 0, -1):  # strides 16, 8, 4, 2
            d = F.interpolate(
                self.lateral[i - 1](d), scale_factor=2.0, mode="bilinear", align_corners=False
            )
            d = self.fuse[i - 1](d + feats[i])
        logits = F.interpolate(self.head(d), scale_factor=2.0, mode="bilinear", align_corners=False)
        return logits + self.full_res(feats[0])
