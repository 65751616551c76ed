"""The global tile grid and its blending weights.

Tiles are anchored to global pixel coordinates, not to chunks, so a pixel always sees the same
tiles with the same weights whatever the chunking. Along one axis, tile ``k`` covers pixels
``[k*s - h, k*s + s + h)`` with stride ``s = tile - overlap`` and ``h = overlap // 2``. Its weight
ramps linearly over the first and last ``overlap`` pixels, so the weights of two neighbouring
tiles sum to one across their overlap (a partition of unity away from the image edges; at the
edges the core divides by the summed weight).
"""

from __future__ import annotations

import math

import numpy as np


def ramp(tile: int, overlap: int) -> np.ndarray:
    """1-D blending weights of one tile (float32, length ``tile``).

    >>> ramp(8, 4).tolist()
    [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125]
    """
    w = np.ones(tile, dtype=np.float32)
    if overlap > 0:
        up = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        w[:overlap] = np.minimum(w[:overlap], up)
        w[tile - overlap :] = np.minimum(w[tile - overlap :], up[::-1])
    return w


def window(tile: int, overlap: int) -> np.ndarray:
    """2-D blending weights, the outer product of :func:`ramp` with itself."""
    r = ramp(tile, overlap)
    return np.outer(r, r)


def aligned_chunks(chunks: tuple[int, ...], stride: int) -> tuple[int, ...]:
    """Chunks along one axis whose boundaries fall on multiples of ``stride``.

    Returns ``chunks`` unchanged when it is already aligned; otherwise a regular chunking
    whose size is the multiple of ``stride`` closest to the typical chunk size.

    >>> aligned_chunks((1024, 1024, 512), 256)
    (1024, 1024, 512)
    >>> aligned_chunks((1000, 1000, 48), 224)
    (896, 896, 256)
    """
    total = sum(chunks)
    if all(c % stride == 0 for c in chunks[:-1]):
        return tuple(chunks)
    typical = max(chunks[:-1]) if len(chunks) > 1 else chunks[0]
    size = max(stride, int(round(typical / stride)) * stride)
    n_full, rest = divmod(total, size)
    out = (size,) * n_full + ((rest,) if rest else ())
    return out


def tile_range(start: int, stop: int, stride: int) -> range:
    """Indices ``k`` of the tiles whose core ``[k*s, k*s+s)`` meets ``[start, stop)``."""
    return range(start // stride, math.ceil(stop / stride))
