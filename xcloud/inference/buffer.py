"""Usable-pixel masks from class codes, on numpy or dask arrays (no xarray here).

A pixel is usable when it is not nodata and no bad pixel (one of the ``bad`` codes) lies within
``radius`` pixels of it (Euclidean: a disk), itself included. Before the buffer, bad features
that a ``min_size`` x ``min_size`` square does not fit in are removed (a morphological opening):
such specks count as noise, usable, and punch no buffered holes into clear land.

Every step is local, so a dask array gets a halo of ``2 * (min_size // 2) + radius`` pixels
(``map_overlap``), and the result is the same for any chunking: blocks at the image edge get
no padding there, and the morphology treats outside the image as not bad, as the whole-array
computation does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["disk", "usable_array", "halo"]


def disk(radius: int) -> np.ndarray:
    """Boolean ``(2r + 1, 2r + 1)`` disk of pixels within ``radius`` of the centre.

    >>> disk(1).astype(int).tolist()
    [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    """
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r


def halo(radius: int, min_size: int) -> int:
    """Pixels of context a block needs: the opening's reach plus the buffer."""
    return 2 * (int(min_size) // 2) + int(radius)


def _usable_2d(codes: np.ndarray, bad: tuple[int, ...], nodata: int, radius: int, min_size: int):
    from scipy import ndimage

    out = np.empty(codes.shape, dtype=bool)
    for idx in np.ndindex(*codes.shape[:-2]):
        c = codes[idx]
        mask = np.isin(c, bad)
        if min_size > 1:  # keep only bad features a min_size square fits in
            square = np.ones((min_size, min_size), bool)
            mask = ndimage.binary_opening(mask, structure=square, border_value=0)
        if radius > 0 and mask.any():
            mask = ndimage.binary_dilation(mask, structure=disk(radius), border_value=0)
        out[idx] = ~mask & (c != nodata)  # (a removed speck is usable: it was noise)
    return out


def usable_array(
    codes: Any,
    *,
    bad: tuple[int, ...],
    nodata: int,
    radius: int,
    min_size: int = 1,
) -> Any:
    """Boolean usable-pixel array for ``codes`` ``(..., y, x)`` (numpy or dask).

    Examples
    --------
    >>> c = np.zeros((7, 7), "uint8"); c[3, 3] = 1
    >>> usable_array(c, bad=(1,), nodata=255, radius=1).astype(int)[2:5, 2:5].tolist()
    [[1, 0, 1], [0, 0, 0], [1, 0, 1]]
    >>> bool(usable_array(c, bad=(1,), nodata=255, radius=1, min_size=2).all())  # a speck
    True
    """
    kw: dict[str, Any] = {
        "bad": tuple(int(b) for b in bad),
        "nodata": int(nodata),
        "radius": int(radius),
        "min_size": int(min_size),
    }
    import dask.array as da

    if not isinstance(codes, da.Array):
        return _usable_2d(np.asarray(codes), **kw)
    from dask.array.overlap import ensure_minimum_chunksize

    depth = halo(radius, min_size)
    axes = {codes.ndim - 2: depth, codes.ndim - 1: depth}
    if depth:  # every chunk must hold its neighbours' halo
        codes = codes.rechunk({a: ensure_minimum_chunksize(depth, codes.chunks[a]) for a in axes})
    return da.map_overlap(
        _usable_2d, codes, depth=axes, boundary="none", trim=True, dtype=bool, **kw
    )
