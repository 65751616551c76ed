"""Accuracy of every registered xcloud model on the labelled validation chips.

What it measures
----------------
For each dataset and model, pooled over all valid labelled pixels:

* the binary cloud task (cloud = mask codes 1 cloud or 2 thin_cloud; label cloud = cloud, or
  cloud + thin cloud for L8 Biome): overall accuracy (OA), balanced accuracy (BA), and precision,
  recall and F1 of the cloud class;
* how far the mask's cloud reaches against the labels: its extent (cloud + thin pixels over
  labelled cloud pixels), the thin share of it, and the fraction of label-clear pixels called
  cloud or thin within 16 px of labelled cloud (a halo) and farther away;
* on L8 Biome only, precision / recall / F1 of cloud shadow (code 3 vs label 64); On Cloud N
  has no shadow labels. The L8 Biome masks mark shadow in only some scenes (2 of the 8 val
  crops; others with cloud, e.g. Urban_03, show shadows labelled clear), so shadow is also
  reported over the crops that label any shadow, as a second view (the first stays the target).

Datasets (see ``shared/data/DATA.md``; ``$XCLOUD_DATA`` points elsewhere):

* **On Cloud N val** (``xcloud.train.splits.ONCLOUDN_VAL``): Sentinel-2 L2A, B02 B03 B04 B08,
  uint16 DN, read with rioxarray (so ``_FillValue`` = 0 comes along), one variable per band,
  ``platform`` / ``processing:level`` attrs set; labels 0 clear, 1 cloud.
* **L8 Biome val**: Landsat 8 TOA reflectance, variables ``blue green red nir08 swir16 swir22
  cirrus lwir11`` (kelvin), ``sensor="landsat-8-l1"``; labels 64 shadow, 128 clear,
  192 thin cloud, 255 cloud, 0 fill.

* **clear val** (``load_clear(split="val")``, :func:`xcloud.train.splits.is_clear_val`): 28
  EuroSAT chips (64 px) and one SEN12MS-CR patch (256 px), Sentinel-2 L1C, all 13 bands,
  cloud-free (they pass ``is_cloud_free``): every pixel called cloud, thin cloud or shadow is a
  **false alarm**; reported as fractions of the pixels. No fine stage trains on them (the
  synthetic composites of fine.v1, the init of every later fine, and the coarse model's data
  did include them).

Each chip becomes a dask-chunked Dataset and goes through ``ds.cloud.mask(model)`` exactly as a
user would call it. Pixels are ignored where the label is fill or the input is nodata.

Models come from ``xcloud.models.list_models()``; a model that raises ``ModelUnavailableError``
or ``MissingBandsError`` on a dataset is skipped with the reason printed. A numpy floor runs on
the same pixels: ``threshold``: cloud if the mean of blue, green and red reflectance > 0.3
(never predicts shadow).

Run
---
    .venv/bin/python benchmarks/accuracy.py                 # all models, all val chips
    .venv/bin/python benchmarks/accuracy.py --quick         # 2 chips per dataset
    .venv/bin/python benchmarks/accuracy.py --models ukis-csmask,threshold
    .venv/bin/python benchmarks/accuracy.py --cv            # grouped 5-fold CV, all scenes
    .venv/bin/python benchmarks/accuracy.py --cv --models cascade,cascade@cloud=0.3   # thresholds

Writes ``benchmarks/results/accuracy.json`` (``accuracy_cv.json`` with ``--cv``).

``--cv`` follows ``docs/cv-protocol.md``: every labelled and clear scene, grouped folds
(On Cloud N by location, L8 Biome by scene, clear scenes by chip / ROI), per fold and source
cloud F1 / precision / recall, L8 Biome shadow F1, false alarms on clear scenes and class
shares; the mean and spread over folds. Models trained on some of these scenes (``fine``,
and ``cascade`` when its fine stage is ``fine``) are flagged in-sample.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import xcloud  # noqa: E402,F401  (registers the .cloud accessor)
from benchmarks._metrics import (  # noqa: E402
    Confusion,
    confusion,
    extent_counts,
    machine_info,
    scores,
)
from xcloud.errors import MissingBandsError, ModelUnavailableError  # noqa: E402
from xcloud.models import list_models  # noqa: E402
from xcloud.train.data import default_data_root  # noqa: E402
from xcloud.train.splits import ONCLOUDN_VAL  # noqa: E402

DATA = default_data_root() / "labelled"  # $XCLOUD_DATA or ../shared/data
RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLD = 0.3
#: Label-clear pixels this close to labelled cloud form its rim: cloud called there is a halo.
HALO_PX = 16
FLOOR = "threshold"
L8_VARS = ("blue", "green", "red", "nir08", "swir16", "swir22", "cirrus", "lwir11")


class Chip:
    """One labelled chip: the Dataset a user would build, plus truth arrays."""

    def __init__(self, name, ds, visible, cloud, shadow, valid, sensor):
        self.name, self.ds, self.sensor = name, ds, sensor
        self.visible = visible  # (3, y, x) float reflectance of blue, green, red, for the floor
        self.cloud, self.shadow, self.valid = cloud, shadow, valid


def oncloudn_chips(limit: int | None) -> Iterator[Chip]:
    import rioxarray

    for chip in ONCLOUDN_VAL[:limit]:
        feats = DATA / "oncloudn" / "features" / chip
        bands = {}
        for b in ("B02", "B03", "B04", "B08"):
            da = rioxarray.open_rasterio(feats / f"{b}.tif", chunks={"x": 256, "y": 256})
            bands[b] = da.squeeze("band", drop=True)
        ds = xr.Dataset(bands, attrs={"platform": "sentinel-2a", "processing:level": "L2A"})
        label = rioxarray.open_rasterio(DATA / "oncloudn" / "labels" / f"{chip}.tif").values[0]
        dn = np.stack([ds[b].values for b in ("B02", "B03", "B04", "B08")])
        valid = (label != 255) & (dn != 0).all(axis=0)
        yield Chip(chip, ds, dn[:3] / 1e4, label == 1, None, valid, None)


def l8biome_chips(limit: int | None) -> Iterator[Chip]:
    import rasterio

    files = sorted((DATA / "l8biome" / "val" / "images").glob("*.tif"))[:limit]
    for f in files:
        with rasterio.open(f) as src:
            img = src.read()
        with rasterio.open(f.parent.parent / "masks" / f.name) as src:
            lab = src.read(1)
        dims = ("y", "x")
        ds = xr.Dataset(
            {v: (dims, img[i]) for i, v in enumerate(L8_VARS)},
            coords={"y": -np.arange(img.shape[1]), "x": np.arange(img.shape[2])},  # row 0 north
            attrs={"platform": "landsat-8", "processing:level": "L1TP"},
        ).chunk({"y": 128, "x": 128})
        valid = (lab != 0) & np.isfinite(img[:7]).all(axis=0)
        yield Chip(f.stem, ds, img[:3], lab >= 192, lab == 64, valid, "landsat-8-l1")


def clear_chips(limit: int | None) -> Iterator[Chip]:
    """The held-out clear scenes (``xcloud.train.splits.is_clear_val``): no cloud, no cloud
    shadow, so every pixel called anything but clear is a false alarm."""
    from xcloud.train.data import load_clear

    for scene in load_clear(split="val")[:limit]:
        dims = ("y", "x")
        h, w = scene.image.shape[1:]
        ds = xr.Dataset(
            {b: (dims, scene.image[i]) for i, b in enumerate(scene.bands)},
            coords={"y": -np.arange(h), "x": np.arange(w)},  # row 0 north
            attrs={"platform": "sentinel-2a", "processing:level": "L1C"},
        ).chunk({"y": 256, "x": 256})
        vis = np.stack([scene.image[scene.bands.index(b)] for b in ("B02", "B03", "B04")])
        none = np.zeros((h, w), bool)
        yield Chip(scene.name, ds, vis, none, none, np.ones((h, w), bool), "sentinel-2-l1c")


DATASETS = {"oncloudn-val": oncloudn_chips, "l8biome-val": l8biome_chips, "clear-val": clear_chips}


def all_chips() -> Iterator[tuple[str, str, Chip]]:
    """Every labelled and clear scene as ``(source, group, chip)``: the data of ``--cv``."""
    import rasterio
    import rioxarray

    from xcloud.train.data import load_clear
    from xcloud.train.splits import clear_group, l8biome_scene, oncloudn_location

    for chip in sorted(p.name for p in (DATA / "oncloudn" / "features").iterdir()):
        feats = DATA / "oncloudn" / "features" / chip
        bands = {
            b: rioxarray.open_rasterio(feats / f"{b}.tif", chunks={"x": 256, "y": 256}).squeeze(
                "band", drop=True
            )
            for b in ("B02", "B03", "B04", "B08")
        }
        ds = xr.Dataset(bands, attrs={"platform": "sentinel-2a", "processing:level": "L2A"})
        label = rioxarray.open_rasterio(DATA / "oncloudn" / "labels" / f"{chip}.tif").values[0]
        dn = np.stack([ds[b].values for b in ("B02", "B03", "B04", "B08")])
        valid = (label != 255) & (dn != 0).all(axis=0)
        group = oncloudn_location(chip, DATA.parent)
        yield "oncloudn", group, Chip(chip, ds, dn[:3] / 1e4, label == 1, None, valid, None)
    for f in sorted((DATA / "l8biome").glob("*/images/*.tif")):
        with rasterio.open(f) as src:
            img = src.read()
        with rasterio.open(f.parent.parent / "masks" / f.name) as src:
            lab = src.read(1)
        ds = xr.Dataset(
            {v: (("y", "x"), img[i]) for i, v in enumerate(L8_VARS)},
            coords={"y": -np.arange(img.shape[1]), "x": np.arange(img.shape[2])},  # row 0 north
            attrs={"platform": "landsat-8", "processing:level": "L1TP"},
        ).chunk({"y": 128, "x": 128})
        valid = (lab != 0) & np.isfinite(img[:7]).all(axis=0)
        chip = Chip(f.stem, ds, img[:3], lab >= 192, lab == 64, valid, "landsat-8-l1")
        yield "l8biome", l8biome_scene(f.stem), chip
    for scene in load_clear():
        h, w = scene.image.shape[1:]
        ds = xr.Dataset(
            {b: (("y", "x"), scene.image[i]) for i, b in enumerate(scene.bands)},
            coords={"y": -np.arange(h), "x": np.arange(w)},  # row 0 north
            attrs={"platform": "sentinel-2a", "processing:level": "L1C"},
        ).chunk({"y": 256, "x": 256})
        vis = np.stack([scene.image[scene.bands.index(b)] for b in ("B02", "B03", "B04")])
        none = np.zeros((h, w), bool)
        chip = Chip(scene.name, ds, vis, none, none, np.ones((h, w), bool), "sentinel-2-l1c")
        yield "clear", clear_group(scene.name), chip


def _in_sample(model: str) -> bool:
    """Whether ``model`` was trained on some of the scenes ``--cv`` scores (xcloud's ``fine``,
    or a cascade whose fine stage it is)."""
    from xcloud.models import get_spec

    if model == FLOOR:
        return False
    spec = get_spec(model.partition("@")[0])
    return spec.name == "fine" or (bool(spec.stages) and spec.stages[1] == "fine")


def _chip_counts(chip: Chip, pred: np.ndarray) -> dict[str, int]:
    """What one prediction adds to its fold's totals."""
    v = chip.valid
    cloud = (pred == 1) | (pred == 2)
    c = confusion(cloud, chip.cloud, v)
    out = {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn, "n": int(v.sum())}
    out["label_cloud"] = int((chip.cloud & v).sum())
    for name, code in (("clear", 0), ("cloud", 1), ("thin", 2), ("shadow", 3)):
        out[f"called_{name}"] = int(((pred == code) & v).sum())
    if chip.shadow is not None:
        sc = confusion(pred == 3, chip.shadow, v)
        out.update({"s_tp": sc.tp, "s_fp": sc.fp, "s_fn": sc.fn})
        out["label_shadow"] = int((chip.shadow & v).sum())
    return out


def _fold_scores(t: dict[str, int], source: str) -> dict[str, float]:
    f1 = 2 * t["tp"] / max(2 * t["tp"] + t["fp"] + t["fn"], 1)
    out = {
        "cloud_f1": f1 if t["tp"] + t["fn"] else float("nan"),
        "cloud_precision": t["tp"] / max(t["tp"] + t["fp"], 1),
        "cloud_recall": t["tp"] / max(t["tp"] + t["fn"], 1),
        "called_cloud_share": (t["called_cloud"] + t["called_thin"]) / max(t["n"], 1),
        "called_shadow_share": t["called_shadow"] / max(t["n"], 1),
        "label_cloud_share": t["label_cloud"] / max(t["n"], 1),
        "pixels": t["n"],
    }
    if source == "clear":
        out = {"false_alarm": (t["n"] - t["called_clear"]) / max(t["n"], 1), "pixels": t["n"]}
    if "s_tp" in t:
        out["shadow_f1"] = 2 * t["s_tp"] / max(2 * t["s_tp"] + t["s_fp"] + t["s_fn"], 1)
        out["label_shadow_share"] = t["label_shadow"] / max(t["n"], 1)
    return out


def fold_assignment(k: int = 5) -> tuple[list[tuple[str, str, Chip]], dict[str, int]]:
    """Every scene of ``--cv`` (:func:`all_chips`) and its fold, ``{scene name: fold}``, by
    :func:`xcloud.train.splits.cv_folds` (``docs/cv-protocol.md``)."""
    from xcloud.train.splits import cv_folds

    chips = list(all_chips())
    return chips, cv_folds([(s, g, c.name, int(c.valid.sum())) for s, g, c in chips], k)


def fold_totals(chips, folds, model: str, only: int | None = None, *, predict_fn=None) -> dict:
    """``model``'s counts per ``(source, fold)`` over ``chips`` (only fold ``only`` if given);
    ``predict_fn(chip, model)`` gives the codes (default :func:`predict`)."""
    totals: dict = {}
    for src, _, chip in chips:
        if only is not None and folds[chip.name] != only:
            continue
        add_counts(
            totals,
            (src, folds[chip.name]),
            _chip_counts(chip, (predict_fn or predict)(chip, model)),
        )
    return totals


def add_counts(totals: dict, key, counts: dict[str, int]) -> None:
    """Add one chip's :func:`_chip_counts` to ``totals[key]``."""
    totals[key] = {n: totals.get(key, {}).get(n, 0) + v for n, v in counts.items()}


def summarise(totals: dict, k: int) -> dict:
    """Per source: every fold's scores and their mean and spread (``docs/cv-protocol.md``)."""
    res: dict = {}
    for src in ("oncloudn", "l8biome", "clear"):
        per_fold = [_fold_scores(totals[(src, f)], src) for f in range(k) if (src, f) in totals]
        summary = {}
        for name in per_fold[0]:
            vals = np.array([p[name] for p in per_fold], float)
            vals = vals[np.isfinite(vals)]
            if name != "pixels" and vals.size:
                summary[name] = {"mean": float(vals.mean()), "std": float(vals.std()),
                                 "min": float(vals.min()), "max": float(vals.max())}  # fmt: skip
        res[src] = {"folds": per_fold, "summary": summary}
    return res


def cross_validate(models: list[str], k: int = 5) -> dict:
    """``docs/cv-protocol.md``: per model, source and fold the scores, and their spread."""
    chips, folds = fold_assignment(k)
    out: dict = {
        "k": k,
        "folds": {
            src: {
                f: sorted({g for s, g, c in chips if s == src and folds[c.name] == f})
                for f in range(k)
            }  # fmt: skip
            for src in ("oncloudn", "l8biome", "clear")
        },
        "models": {},
    }
    for model in models:
        t0 = time.perf_counter()
        try:
            totals = fold_totals(chips, folds, model)
        except (ModelUnavailableError, MissingBandsError) as e:
            print(f"  skip {model}: {type(e).__name__}: {e}")
            out["models"][model] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        res: dict = {"in_sample": _in_sample(model), "seconds": 0.0, **summarise(totals, k)}
        res["seconds"] = round(time.perf_counter() - t0, 1)
        out["models"][model] = res
        print(f"  {model}: {res['seconds']} s", flush=True)
    return out


#: Equal-width probability bins of the calibration table.
CALIBRATION_BINS = 10


def calibration(models: list[str], k: int = 5) -> dict:
    """Expected calibration error (ECE) per class, source and fold (``docs/cv-protocol.md``'s
    folds): pixels are binned by the model's probability of the class (cloud: cloud + thin
    cloud; shadow: L8 Biome only), and ECE is the pixel-weighted mean gap between each bin's
    mean probability and the share of its pixels the labels give that class."""
    chips, folds = fold_assignment(k)  # folds are made within each source
    chips = [(s, g, c) for s, g, c in chips if s != "clear"]
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    out: dict = {"bins": CALIBRATION_BINS, "models": {}}
    for model in models:
        if model == FLOOR:
            continue
        name = model.partition("@")[0]
        acc: dict = {}  # (source, class, fold) -> [n, sum p, sum truth] per bin
        for src, _, chip in chips:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = chip.ds.cloud.mask(name, sensor=chip.sensor, probabilities=True).compute()
            classes = list(p["class"].values)
            probs = np.asarray(p.values, np.float64)
            targets = {"cloud": (["cloud", "thin_cloud"], chip.cloud)}
            if chip.shadow is not None:
                targets["shadow"] = (["cloud_shadow"], chip.shadow)
            for cls, (names, truth) in targets.items():
                q = sum(probs[classes.index(n)] for n in names if n in classes)
                ok = chip.valid & np.isfinite(q)
                b = np.clip(np.digitize(q[ok], edges) - 1, 0, CALIBRATION_BINS - 1)
                key = (src, cls, folds[chip.name])
                cell = acc.setdefault(key, np.zeros((3, CALIBRATION_BINS)))
                cell[0] += np.bincount(b, minlength=CALIBRATION_BINS)
                cell[1] += np.bincount(b, weights=q[ok], minlength=CALIBRATION_BINS)
                t = truth[ok].astype(float)
                cell[2] += np.bincount(b, weights=t, minlength=CALIBRATION_BINS)
        res: dict = {}
        for (src, cls, f), (n, sp, st) in sorted(acc.items()):
            u = n > 0
            ece = float(np.sum(n[u] / n.sum() * np.abs(sp[u] / n[u] - st[u] / n[u])))
            res.setdefault(f"{src}:{cls}", {"folds": {}})["folds"][f] = ece
        for r in res.values():
            vals = np.array(list(r["folds"].values()))
            r["mean"], r["min"], r["max"] = float(vals.mean()), float(vals.min()), float(vals.max())
        out["models"][model] = res
        print(f"  {model}: " + "; ".join(
            f"{key} ECE {r['mean']:.3f} ({r['min']:.3f}-{r['max']:.3f})" for key, r in res.items()
        ), flush=True)  # fmt: skip
    return out


def cv_table(cv: dict) -> str:
    head = (
        f"{'model':<13} {'On Cloud N F1':>18} {'L8 Biome F1':>18} {'mean':>6} "
        f"{'L8 shadow F1':>18} {'clear false alarms':>19}"
    )
    lines = [head, "-" * len(head)]

    def cell(r, src, name, pct=False):
        s = r[src]["summary"].get(name)
        if not s:
            return f"{'-':>18}"
        if pct:
            return f"{s['mean']:7.2%} ({s['min']:.1%}-{s['max']:.1%})"
        return f"{s['mean']:.3f} ({s['min']:.2f}-{s['max']:.2f})"

    for model, r in cv["models"].items():
        if "skipped" in r:
            lines.append(f"{model:<13} skipped: {r['skipped'].split(':')[0]}")
            continue
        f1s = [r[s]["summary"].get("cloud_f1", {}).get("mean", float("nan"))
               for s in ("oncloudn", "l8biome")]  # fmt: skip
        tag = "  (in-sample: trained on these scenes)" if r["in_sample"] else ""
        lines.append(
            f"{model:<13} {cell(r, 'oncloudn', 'cloud_f1'):>18} {cell(r, 'l8biome', 'cloud_f1'):>18}"
            f" {np.mean(f1s):6.3f} {cell(r, 'l8biome', 'shadow_f1'):>18}"
            f" {cell(r, 'clear', 'false_alarm', pct=True):>19}{tag}"
        )
    lines.append(
        "mean over folds (min-max); cloud = cloud + thin cloud; false alarms: share of the"
    )
    lines.append("clear scenes' pixels called cloud, thin cloud or shadow.")
    for model, r in cv["models"].items():
        if "skipped" in r:
            continue
        shares = []
        for src in ("oncloudn", "l8biome"):
            s = r[src]["summary"]
            if "called_cloud_share" in s:
                shares.append(
                    f"{src}: cloud {s['called_cloud_share']['mean']:.1%} called vs "
                    f"{s['label_cloud_share']['mean']:.1%} labelled"
                    + (f", shadow {s['called_shadow_share']['mean']:.1%} vs "
                       f"{s['label_shadow_share']['mean']:.1%}" if "label_shadow_share" in s else "")
                )  # fmt: skip
        lines.append(f"{model}: class shares, {'; '.join(shares)}")
    return "\n".join(lines)


def predict(chip: Chip, model: str) -> np.ndarray:
    """``model`` is a registry name, optionally with options after an ``@``: class thresholds
    and test-time augmentation, ``"cascade@cloud=0.3+cloud_shadow=0.8"``, ``"cascade@tta=4"``
    (``thresholds=`` and ``tta=`` of :func:`xcloud.mask`)."""
    if model == FLOOR:
        return np.where(chip.visible.mean(axis=0) > THRESHOLD, 1, 0).astype(np.uint8)
    name, _, spec = model.partition("@")
    options = dict(kv.split("=") for kv in spec.split("+")) if spec else {}
    tta = int(options.pop("tta", 1))
    thresholds = {k: float(v) for k, v in options.items()} or None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = chip.ds.cloud.mask(name, sensor=chip.sensor, thresholds=thresholds, tta=tta)
    return np.asarray(m.compute().values)


def evaluate(dataset: str, models: list[str], limit: int | None) -> dict[str, dict]:
    chips = list(DATASETS[dataset](limit))
    out: dict[str, dict] = {}
    for model in models:
        cloud_c, shadow_c, left_nodata, t0 = Confusion(), Confusion(), 0, time.perf_counter()
        ext: dict[str, int] = {}  # cloud extent against the labels (halo), pooled over chips
        shadow_lab = Confusion()  # only the chips whose labels mark some shadow
        try:
            for chip in chips:
                pred = predict(chip, model)
                left_nodata += int(np.count_nonzero((pred == 255) & chip.valid))
                called_cloud = (pred == 1) | (pred == 2)
                cloud_c += confusion(called_cloud, chip.cloud, chip.valid)
                counts = extent_counts(called_cloud, chip.cloud, chip.valid, HALO_PX)
                counts["thin"] = int(np.count_nonzero((pred == 2) & chip.valid))
                ext = {k: ext.get(k, 0) + v for k, v in counts.items()}
                if chip.shadow is not None:
                    chip_shadow = confusion(pred == 3, chip.shadow, chip.valid)
                    shadow_c += chip_shadow
                    if chip.shadow.any():
                        shadow_lab += chip_shadow
        except (ModelUnavailableError, MissingBandsError) as e:
            print(f"  skip {model} on {dataset}: {type(e).__name__}: {e}")
            out[model] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        res = {"cloud": scores(cloud_c), "cloud_confusion": vars(cloud_c)}
        if ext.get("label"):  # a labelled set with cloud in it: how far the cloud reaches
            res["cloud_extent"] = {
                "ratio": ext["pred"] / ext["label"],
                "thin_share": ext["thin"] / max(ext["pred"], 1),
                "rim_px": HALO_PX,
                "rim_called_cloud": ext["rim_fp"] / max(ext["rim"], 1),
                "far_called_cloud": ext["far_fp"] / max(ext["far"], 1),
                "counts": ext,
            }
        if dataset == "clear-val":  # no cloud or shadow anywhere: what is flagged is wrong
            n = max(cloud_c.n, 1)
            res["false_alarm"] = {
                "cloud_or_thin": cloud_c.fp / n,
                "shadow": shadow_c.fp / n,
                "any": (cloud_c.fp + shadow_c.fp) / n,
            }
        if dataset == "l8biome-val":
            res["shadow"] = scores(shadow_c)
            res["shadow_confusion"] = vars(shadow_c)
            res["shadow_on_shadow_labelled_chips"] = {
                "chips": [c.name for c in chips if c.shadow is not None and c.shadow.any()],
                **scores(shadow_lab),
            }
        res["valid_pixels_predicted_nodata"] = left_nodata
        res["seconds"] = round(time.perf_counter() - t0, 2)
        res["chips"] = [c.name for c in chips]
        out[model] = res
    return out


def _f(v: float) -> str:
    return "   -  " if v != v else f"{v:6.3f}"


def table(results: dict[str, dict[str, dict]]) -> str:
    head = (
        f"{'dataset':<13} {'model':<12} {'OA':>6} {'BA':>6} {'P_cld':>6} {'R_cld':>6} "
        f"{'F1_cld':>6} {'P_shd':>6} {'R_shd':>6} {'F1_shd':>6} {'pixels':>9} {'sec':>6}"
    )
    lines = [head, "-" * len(head)]
    for ds, per_model in results.items():
        for model, r in per_model.items():
            if "skipped" in r:
                lines.append(f"{ds:<13} {model:<12} skipped: {r['skipped'].split(':')[0]}")
                continue
            c, s = r["cloud"], r.get("shadow")
            shd = (
                " ".join(_f(s[k]) for k in ("precision", "recall", "f1"))
                if s
                else ("   -  " * 3 + "  ")
            )
            cld = [c[k] for k in ("oa", "ba", "precision", "recall", "f1")]
            if r.get("false_alarm"):  # no cloud in the labels: BA, P, R, F1 say nothing (0 or
                cld[1:] = [float("nan")] * 4  # undefined); the false-alarm line below does
            lines.append(
                f"{ds:<13} {model:<12} {' '.join(_f(v) for v in cld)} {shd} {c['n']:>9} "
                f"{r['seconds']:>6.1f}"
            )
    for ds, per_model in results.items():
        for model, r in per_model.items():
            fa = r.get("false_alarm")
            if fa:
                lines.append(
                    f"{ds} {model}: false alarms on the {len(r['chips'])} held-out clear "
                    f"scenes: cloud or thin {fa['cloud_or_thin']:.2%}, shadow {fa['shadow']:.2%}, "
                    f"any {fa['any']:.2%} of {r['cloud']['n']} px"
                )
            ce = r.get("cloud_extent")
            if ce:
                lines.append(
                    f"{ds} {model}: cloud extent {ce['ratio']:.2f}x the labelled cloud (thin "
                    f"{ce['thin_share']:.0%} of it); label-clear pixels called cloud or thin: "
                    f"{ce['rim_called_cloud']:.1%} within {ce['rim_px']} px of labelled cloud "
                    f"(a halo), {ce['far_called_cloud']:.1%} farther"
                )
            sl = r.get("shadow_on_shadow_labelled_chips")
            if sl:
                lines.append(
                    f"{ds} {model}: shadow on the {len(sl['chips'])} chips that label any shadow "
                    f"({', '.join(sl['chips'])}): P {_f(sl['precision'])} R {_f(sl['recall'])} "
                    f"F1 {_f(sl['f1'])}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models", help=f"comma-separated model names (default: all registered + {FLOOR!r})"
    )
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated")
    p.add_argument("--quick", action="store_true", help="only 2 chips per dataset")
    p.add_argument("--cv", action="store_true", help="grouped k-fold CV (docs/cv-protocol.md)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument(
        "--out", help="JSON file name in benchmarks/results (default: accuracy[_cv].json)"
    )
    p.add_argument(
        "--calibration",
        action="store_true",
        help="expected calibration error per class on the CV folds (calibration_cv.json)",
    )
    args = p.parse_args(argv)
    models = args.models.split(",") if args.models else [*list_models(), FLOOR]
    if args.calibration:
        cal = calibration(models, args.folds)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / (args.out or "calibration_cv.json")
        payload = {"benchmark": "calibration_cv", "machine": machine_info(), **cal}
        path.write_text(json.dumps(payload, indent=1))
        print(f"wrote {path}")
        return cal
    if args.cv:
        cv = cross_validate(models, args.folds)
        print()
        print("folds:", json.dumps(cv["folds"]["oncloudn"]))
        print(cv_table(cv))
        payload = {"benchmark": "accuracy_cv", "machine": machine_info(), "protocol":
                   "docs/cv-protocol.md", **cv}  # fmt: skip
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / (args.out or "accuracy_cv.json")
        path.write_text(json.dumps(payload, indent=1))
        print(f"wrote {path}")
        return payload
    limit = 2 if args.quick else None
    results = {}
    for ds in args.datasets.split(","):
        print(f"{ds}:")
        results[ds] = evaluate(ds, models, limit)
    print()
    print(table(results))
    print(f"\n{FLOOR}: cloud if mean(blue, green, red) reflectance > {THRESHOLD}; no shadow class.")
    print("cloud = codes 1|2 vs label cloud (+ thin cloud on L8 Biome); pooled over valid pixels.")
    payload = {
        "benchmark": "accuracy",
        "machine": machine_info(),
        "quick": args.quick,
        "floor_rule": f"cloud if mean(blue, green, red) reflectance > {THRESHOLD}",
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (args.out or "accuracy.json")
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
