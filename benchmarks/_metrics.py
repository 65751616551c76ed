"""Pure-numpy segmentation metrics for the benchmarks (no xcloud, no I/O).

Everything works on a pooled binary confusion matrix ``(tp, fp, fn, tn)`` so numbers from many
chips can be summed before the ratios are taken (pooled, not a mean of per-chip scores).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Confusion", "confusion", "scores", "machine_info", "near", "extent_counts"]


@dataclass
class Confusion:
    """Binary confusion counts; ``+`` pools them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


def confusion(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> Confusion:
    """Confusion counts of boolean ``pred`` against boolean ``truth`` where ``valid``."""
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise ValueError(f"shapes differ: pred {pred.shape}, truth {truth.shape}")
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        pred, truth = pred[valid], truth[valid]
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = int(pred.size - tp - fp - fn)
    return Confusion(tp, fp, fn, tn)


def near(mask: np.ndarray, px: int) -> np.ndarray:
    """Pixels within ``px`` pixels of a True pixel of 2-D ``mask`` (a square window: Chebyshev
    distance <= ``px``), itself included; computed with an integral image."""
    m = np.asarray(mask, dtype=bool)
    if px <= 0 or not m.any():
        return m.copy()
    h, w = m.shape
    ii = np.zeros((h + 1, w + 1), np.int64)
    ii[1:, 1:] = np.cumsum(np.cumsum(m, axis=0), axis=1)
    y0 = np.clip(np.arange(h) - px, 0, h)[:, None]
    y1 = np.clip(np.arange(h) + px + 1, 0, h)[:, None]
    x0 = np.clip(np.arange(w) - px, 0, w)[None, :]
    x1 = np.clip(np.arange(w) + px + 1, 0, w)[None, :]
    return (ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]) > 0


def extent_counts(
    pred_cloud: np.ndarray, label_cloud: np.ndarray, valid: np.ndarray, px: int = 16
) -> dict[str, int]:
    """Where a mask's cloud (cloud or thin) goes beyond the labelled cloud, as pixel counts to pool:
    ``pred`` / ``label`` (cloud pixels), ``rim`` / ``rim_fp`` (label-clear pixels within ``px``
    of labelled cloud, and those called cloud: a halo), ``far`` / ``far_fp`` (label-clear pixels
    farther away, and those called cloud)."""
    pred_cloud, label_cloud, valid = (
        np.asarray(a, dtype=bool) for a in (pred_cloud, label_cloud, valid)
    )
    clear = valid & ~label_cloud
    rim = clear & near(label_cloud, px)
    far = clear & ~rim
    return {
        "pred": int(np.count_nonzero(pred_cloud & valid)),
        "label": int(np.count_nonzero(label_cloud & valid)),
        "rim": int(np.count_nonzero(rim)),
        "rim_fp": int(np.count_nonzero(rim & pred_cloud)),
        "far": int(np.count_nonzero(far)),
        "far_fp": int(np.count_nonzero(far & pred_cloud)),
    }


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def scores(c: Confusion) -> dict[str, float]:
    """Overall accuracy, balanced accuracy, precision, recall and F1 of the positive class.

    Undefined ratios (a zero denominator) are NaN, never 0, so an absent class is visible.
    """
    recall = _div(c.tp, c.tp + c.fn)
    specificity = _div(c.tn, c.tn + c.fp)
    precision = _div(c.tp, c.tp + c.fp)
    return {
        "oa": _div(c.tp + c.tn, c.n),
        "ba": (recall + specificity) / 2,
        "precision": precision,
        "recall": recall,
        "f1": _div(2 * c.tp, 2 * c.tp + c.fp + c.fn),
        "n": c.n,
    }


def machine_info() -> dict[str, object]:
    """CPU count, library versions and a timestamp for the results JSON."""
    import os

    info: dict[str, object] = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        pass
    for mod in ("xcloud", "torch", "numpy", "dask", "xarray", "onnxruntime", "ukis_csmask"):
        try:
            m = __import__(mod)
            info[f"{mod}_version"] = getattr(m, "__version__", "unknown")
        except ImportError:
            info[f"{mod}_version"] = None
    return info
