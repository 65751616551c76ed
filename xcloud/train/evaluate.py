"""Validation metrics on the held-out split, for xcloud models and for baselines.

Metrics per dataset (pixels labelled fill / nodata are left out):

* ``cloud_precision`` / ``cloud_recall`` / ``cloud_f1``: cloud = cloud or thin cloud, against
  everything else.
* ``shadow_precision`` / ``shadow_recall`` / ``shadow_f1``: cloud shadow against everything
  else; only on data with shadow labels (L8 Biome).
* ``oa`` / ``ba``: overall and balanced accuracy over the classes the labels distinguish:
  clear / cloud (incl. thin) / shadow on L8 Biome, clear / cloud on On Cloud N (where a
  predicted shadow counts as "not cloud", as the labels do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from xcloud.train.data import COMMON_NAMES, IGNORE, Scene, visible_mean

__all__ = [
    "Confusion",
    "brightness_floor",
    "evaluate",
    "evaluate_all",
    "format_table",
    "predict_torch",
    "predict_ukis",
    "scene_logits",
]

Predict = Callable[[Scene], np.ndarray]


class Confusion:
    """Accumulates a 3 x 3 confusion matrix (rows truth, columns prediction) over
    ``clear / cloud / shadow`` and whether shadow is labelled."""

    def __init__(self) -> None:
        self.m = np.zeros((3, 3), np.int64)
        self.has_shadow = False

    def add(self, pred: np.ndarray, label: np.ndarray) -> None:
        """``pred`` in xcloud output codes (0 clear, 1 cloud, 2 thin, 3 shadow), ``label`` in
        training codes (see :mod:`xcloud.train.data`)."""
        p = np.select([np.isin(pred, (1, 2)), pred == 3], [1, 2], 0)
        lab = label.astype(np.int64)
        truth = np.full(lab.shape, -1)
        truth[np.isin(lab, (0, 5))] = 0
        truth[np.isin(lab, (1, 2, 4))] = 1
        truth[lab == 3] = 2
        if (lab == 0).any() or (lab == 3).any():
            self.has_shadow = True
        ok = truth >= 0
        np.add.at(self.m, (truth[ok], p[ok]), 1)

    def metrics(self) -> dict[str, float]:
        """The metrics listed in the module docstring."""
        m = self.m.astype(np.float64)
        if not self.has_shadow:  # binary labels: shadow predictions count as not-cloud
            m2 = np.array([[m[0, 0] + m[0, 2], m[0, 1]], [m[1, 0] + m[1, 2], m[1, 1]]])
            m = m2
        out: dict[str, float] = {}
        out["oa"] = float(np.trace(m) / m.sum())
        rec = [m[i, i] / m[i].sum() for i in range(len(m)) if m[i].sum() > 0]
        out["ba"] = float(np.mean(rec))
        out.update(_prf(self.m, 1, "cloud"))
        if self.has_shadow:
            out.update(_prf(self.m, 2, "shadow"))
        out["pixels"] = int(self.m.sum())
        return out


def _prf(m: np.ndarray, k: int, name: str) -> dict[str, float]:
    tp = float(m[k, k])
    fp = float(m[:, k].sum() - tp)
    fn = float(m[k].sum() - tp)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {f"{name}_precision": p, f"{name}_recall": r, f"{name}_f1": f}


def evaluate(predict: Predict, scenes: Iterable[Scene]) -> dict[str, float]:
    """Metrics of ``predict`` (scene -> ``(H, W)`` class codes) over ``scenes``."""
    conf = Confusion()
    for s in scenes:
        assert s.label is not None
        conf.add(predict(s), s.label)
    return conf.metrics()


def scene_logits(model, scene: Scene):
    """A :class:`~xcloud.models.fine.FineNet`'s logits ``(K, H, W)`` (a torch tensor) over a
    whole scene, padded to a multiple of 32 by reflection."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(scene.image)[None]
    h, w = x.shape[-2:]
    ph, pw = (-h) % 32, (-w) % 32
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.inference_mode():
        return model(x, torch.from_numpy(scene.wavelengths))[0, :, :h, :w]


def predict_torch(model, *, threads: int = 2) -> Predict:
    """A scene predictor for a :class:`~xcloud.models.fine.FineNet` (argmax of
    :func:`scene_logits`)."""
    import torch

    torch.set_num_threads(threads)
    model.eval()

    def run(scene: Scene) -> np.ndarray:
        return scene_logits(model, scene).argmax(0).numpy().astype(np.uint8)

    return run


def predict_ukis(scene: Scene) -> np.ndarray:
    """ukis-csmask's mask (6-band model when SWIR is present, else 4-band) in xcloud codes.

    ukis-csmask's invalid pixels (its own nodata buffer) count as clear.
    """
    from ukis_csmask.mask import CSmask

    wanted = ["blue", "green", "red", "nir", "swir16", "swir22"]
    names = [COMMON_NAMES.get(b) for b in scene.bands]
    order = [w for w in wanted if w in names]
    if len(order) < 6:
        order = order[:4]
    img = np.stack([scene.image[names.index(w)] for w in order], axis=-1).astype(np.float32)
    csm = CSmask(
        img,
        band_order=order,
        product_level=scene.level,
        intra_op_num_threads=2,
        inter_op_num_threads=1,
    )
    out = np.asarray(csm.csm)
    out = out[..., 0] if out.ndim == 3 else out
    return np.select([out == 1, out == 2], [1, 3], 0).astype(np.uint8)


def brightness_floor(scene: Scene, *, threshold: float = 0.2) -> np.ndarray:
    """The simplest baseline: cloud where the visible bands' mean reflectance exceeds
    ``threshold``."""
    return (visible_mean(scene) > threshold).astype(np.uint8)


def evaluate_all(
    predictors: dict[str, Predict], datasets: dict[str, list[Scene]]
) -> dict[str, dict[str, dict]]:
    """``{predictor: {dataset: metrics}}``."""
    return {
        p: {d: evaluate(fn, scenes) for d, scenes in datasets.items()}
        for p, fn in predictors.items()
    }


def format_table(results: dict[str, dict[str, dict]]) -> str:
    """Side-by-side text table of :func:`evaluate_all` results."""
    keys = [
        "oa",
        "ba",
        "cloud_precision",
        "cloud_recall",
        "cloud_f1",
        "shadow_precision",
        "shadow_recall",
        "shadow_f1",
    ]
    lines = [
        f"{'model':<14}{'dataset':<10}"
        + "".join(f"{k.replace('_precision', '_P').replace('_recall', '_R'):>10}" for k in keys)
    ]
    for p, per in results.items():
        for d, m in per.items():
            vals = "".join(f"{m[k]:>10.3f}" if k in m else f"{'-':>10}" for k in keys)
            lines.append(f"{p:<14}{d:<10}{vals}")
    return "\n".join(lines)


_ = IGNORE  # re-exported for callers that build labels
