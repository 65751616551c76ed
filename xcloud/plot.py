"""Plots for masks and scenes (matplotlib, an optional dependency: ``pip install "xcloud[plot]"``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xcloud.errors import require
from xcloud.models import CLASSES, NODATA

__all__ = ["CLASS_COLOURS", "plot_mask", "plot_rgb", "rgb_array"]

#: RGBA per class code; nodata is transparent.
CLASS_COLOURS: dict[int, tuple[float, float, float, float]] = {
    CLASSES["clear"]: (0.20, 0.63, 0.17, 1.0),
    CLASSES["cloud"]: (1.00, 1.00, 1.00, 1.0),
    CLASSES["thin_cloud"]: (0.65, 0.81, 0.89, 1.0),
    CLASSES["cloud_shadow"]: (0.42, 0.24, 0.60, 1.0),
    NODATA: (0.0, 0.0, 0.0, 0.0),
}
_LABELS = {v: k.replace("_", " ") for k, v in CLASSES.items()}


def _plt():
    require("matplotlib", "plot", "plotting")
    import matplotlib.pyplot as plt

    return plt


def colourise(mask: np.ndarray) -> np.ndarray:
    """RGBA image (float, ``(..., 4)``) of a 2-D mask of class codes.

    >>> colourise(np.array([[0, 255]], "uint8"))[0, 1].tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    lut = np.zeros((256, 4), dtype=np.float32)
    for code, rgba in CLASS_COLOURS.items():
        lut[code] = rgba
    return lut[np.asarray(mask, dtype=np.uint8)]


def rgb_array(red, green, blue, percentiles: Sequence[float] = (2, 98)) -> np.ndarray:
    """Percentile-stretched true-colour ``(y, x, 3)`` float image in [0, 1] (NaN -> black).

    >>> r = np.linspace(0, 1, 100).reshape(10, 10)
    >>> img = rgb_array(r, r, r)
    >>> img.shape, float(img.min()), float(img.max())
    ((10, 10, 3), 0.0, 1.0)
    """
    stack = np.stack([np.asarray(a, dtype=np.float32) for a in (red, green, blue)], axis=-1)
    finite = stack[np.isfinite(stack)]
    if finite.size == 0:
        return np.zeros(stack.shape, dtype=np.float32)
    lo, hi = np.percentile(finite, percentiles)
    out = np.clip((stack - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.nan_to_num(out, nan=0.0)


def _legend(ax, codes):
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=CLASS_COLOURS[c], edgecolor="0.3", label=_LABELS[c])
        for c in sorted(codes)
        if c != NODATA
    ]
    ax.legend(handles=handles, loc="lower left", fontsize="small", framealpha=0.8)


def plot_mask(mask, ax=None, *, legend: bool = True, title: str | None = None):
    """Show a 2-D mask in class colours with a legend; nodata is transparent.

    Parameters
    ----------
    mask
        2-D ``cloud_mask`` DataArray or array of class codes (select one time step first).
    ax
        Matplotlib axes to draw into (a new figure when None).
    """
    plt = _plt()
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"plot_mask needs a 2-D mask, got shape {arr.shape}; select one time step")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(colourise(arr), interpolation="nearest")
    present = set(np.unique(arr).tolist())
    if legend:
        _legend(ax, present | {0, 1})
    ax.set_title(title if title is not None else getattr(mask, "name", None) or "cloud mask")
    ax.set_axis_off()
    return ax


def plot_rgb(red, green, blue, mask=None, ax=None, *, alpha: float = 0.45, title: str | None = None):
    """True-colour quicklook with an optional mask overlaid (clear pixels left uncovered)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(rgb_array(red, green, blue), interpolation="nearest")
    if mask is not None:
        arr = np.asarray(mask)
        over = colourise(arr)
        over[..., 3] = np.where((arr == CLASSES["clear"]) | (arr == NODATA), 0.0, alpha)
        ax.imshow(over, interpolation="nearest")
        _legend(ax, set(np.unique(arr).tolist()) - {CLASSES["clear"]})
    ax.set_title(title or "true colour")
    ax.set_axis_off()
    return ax
