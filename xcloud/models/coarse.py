"""The coarse patch classifier (after Luotamo, Metsamaki & Klami 2021, "Multiscale cloud detection
in remote sensing images using a dual convolutional neural network", IEEE TGRS 59).

SEnSeI -> the fine model's encoder truncated at its stride-16 bottleneck -> 1x1 convolution ->
one of four routing classes per grid cell: ``cloudless``, ``overcast``, ``partly_cloudy``,
``nodata``.

Geometry
--------
The model reads an *overview* of the scene, the full-resolution image block-averaged by a
factor ``f`` (16 by default), and outputs one cell per 16 x 16 overview pixels, i.e. per
``16 f`` x ``16 f`` full-resolution pixels: with ``f = 16`` each cell covers a 256 x 256
full-resolution patch, exactly one stride of the fine model's tile grid (``tile_size`` 288,
overlap 32), anchored at global pixel 0. Overview height and width must be multiples of 16;
the grid is ``(h // 16, w // 16)``.

A cell's target is ``nodata`` if all its pixels are nodata, ``cloudless`` if none of its valid
pixels is cloud or thin cloud, ``overcast`` if all are, and ``partly_cloudy`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from xcloud.models._spec import CELL_OVERVIEW_PX
from xcloud.models.fine import Encoder

__all__ = ["CoarseNet"]


class CoarseNet(nn.Module):
    """Patch classifier: ``(B, C, h, w)`` overview reflectance -> ``(B, 4, h/16, w/16)`` logits.

    Examples
    --------
    >>> net = CoarseNet().eval()
    >>> wl = torch.tensor([[450., 490., 520.], [540., 560., 580.], [650., 665., 680.]])
    >>> net(torch.rand(1, 3, 64, 32), wl).shape
    torch.Size([1, 4, 4, 2])
    """

    def __init__(self, widths: tuple[int, ...] = (16, 24, 32, 48, 64), n_classes: int = 4) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"widths": list(widths), "n_classes": n_classes}
        self.encoder = Encoder(widths, depth=4)
        self.head = nn.Conv2d(widths[4], n_classes, 1)

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor], wavelengths: Any) -> torch.Tensor:
        """Logits ``(B, n_classes, h // 16, w // 16)`` (``x`` may be a list of batches with one
        band set each, see :class:`~xcloud.models.fine.Encoder`)."""
        first = x[0] if isinstance(x, (list, tuple)) else x
        h, w = cast(torch.Tensor, first).shape[-2:]
        if h % CELL_OVERVIEW_PX or w % CELL_OVERVIEW_PX:
            raise ValueError(
                f"CoarseNet needs overviews whose edges are multiples of {CELL_OVERVIEW_PX}, got {h}x{w}"
            )
        return self.head(self.encoder(x, wavelengths)[-1])
