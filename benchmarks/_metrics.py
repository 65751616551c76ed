"""Pure-numpy segmentation metrics for the benchmarks (no xcloud, no I/O).

Everything works on a pooled binary confusion matrix ``(tp, fp, fn, tn)`` so numbers from many
chips can be summed before the ratios are taken (pooled, not a mean of per-chip scores).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Confusion", "confusion", "scores", "machine_info"]


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
