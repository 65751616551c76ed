"""Megapixels per second of ``fine``, ``cascade``, ``ukis-csmask`` and ``s2cloudless`` on the
same real 13-band Sentinel-2 L1C cube, through ``ds.cloud.mask``, side by side in one run.

The cube is ``--size`` x ``--size`` px tiled from the real SEN12MS-CR patches in
``shared/data`` (cloudy and clear, 13 bands, 256 px; tiles repeat, with rotations, to reach the
size), float reflectance in memory (numpy), so decoding is not timed. Each model takes what it
needs from the same Dataset: ``fine`` / ``cascade`` all 13 bands (SEnSeI), ``ukis-csmask`` its 6
bands, ``s2cloudless`` its 10. ``fine:bf16`` is ``fine`` with ``precision="bf16"`` (bf16 on the
CPU; its mask's agreement with ``fine``'s is printed; whether this CPU has native bf16 is in the
results). Models are loaded and warmed up before timing; the variants are
interleaved over ``--repeats`` rounds and the median is reported, with ratios to ``fine`` (the
first full-size round of a model is often slower than the rest, so use 3 rounds or more: the
median of 2 is their mean). The figures in ``docs/models.md`` use ``--size 2048 --repeats 3``.
Results go to ``benchmarks/results/speed.json``.

Run
---
    .venv/bin/python benchmarks/speed.py [--size 1024] [--repeats 3] [--models fine ukis-csmask s2cloudless]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import machine_info  # noqa: E402

#: SEN12MS-CR band order (shared/data/DATA.md)
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def cube(size: int):
    import rasterio
    import xarray as xr

    from xcloud.train.data import default_data_root

    root = default_data_root()
    paths = sorted(glob.glob(str(root / "unlabelled" / "sen12mscr_cloudy" / "*.tif")))
    paths += sorted(glob.glob(str(root / "clear" / "sen12mscr" / "*.tif")))
    if not paths:
        raise SystemExit(f"no SEN12MS-CR patches under {root}; set XCLOUD_DATA")
    tiles = []
    for p in paths:
        with rasterio.open(p) as src:
            tiles.append(src.read().astype(np.float32) / 10000.0)
    n = -(-size // 256)
    rows = []
    for r in range(n):
        row = [
            np.rot90(tiles[(r * n + c) % len(tiles)], (r + c) % 4, axes=(1, 2)) for c in range(n)
        ]
        rows.append(np.concatenate(row, axis=2))
    img = np.concatenate(rows, axis=1)[:, :size, :size]
    ds = xr.Dataset(
        {b: (("y", "x"), np.ascontiguousarray(img[i])) for i, b in enumerate(BANDS)},
        attrs={"platform": "sentinel-2a", "processing:level": "L1C"},
    )
    return ds, len(paths)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--models",
        nargs="+",
        default=["fine", "fine:bf16", "cascade", "ukis-csmask", "s2cloudless"],
        help="model names; NAME:PRECISION runs a model with precision=PRECISION",
    )
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "speed.json"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    import torch

    import xcloud  # noqa: F401

    torch.set_num_threads(2)
    ds, n_src = cube(args.size)
    mpx = args.size * args.size / 1e6
    small = ds.isel(y=slice(0, 256), x=slice(0, 256))

    def run(data, m):
        name, _, precision = m.partition(":")
        kw = {"precision": precision} if precision else {}
        return np.asarray(data.cloud.mask(name, device="cpu", **kw))

    for m in args.models:  # load + warm up
        run(small, m)
    times: dict[str, list[float]] = {m: [] for m in args.models}
    masks: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        for m in args.models if r % 2 == 0 else args.models[::-1]:
            t = time.perf_counter()
            masks[m] = run(ds, m)
            times[m].append(time.perf_counter() - t)
            print(f"  round {r} {m:12s} {times[m][-1]:7.1f} s", flush=True)
    med = {m: float(np.median(v)) for m, v in times.items()}
    print(
        f"\n{args.size} x {args.size} px, 13 bands, real SEN12MS-CR L1C ({n_src} patches, tiled), "
        f"2 threads, median of {args.repeats}"
    )
    print(f"{'model':14s} {'seconds':>8s} {'Mpx/s':>7s} {'vs fine':>8s}")
    base = med.get("fine")
    for m in args.models:
        rel = f"{base / med[m]:.2f}x" if base else "-"
        print(f"{m:14s} {med[m]:8.1f} {mpx / med[m]:7.2f} {rel:>8s}")
    if base and "ukis-csmask" in med:
        print(f"fine is {med['ukis-csmask'] / base:.1f}x the speed of ukis-csmask (target >= 5x)")
    if base and "s2cloudless" in med:
        print(f"fine is {med['s2cloudless'] / base:.1f}x the speed of s2cloudless")
    from xcloud.device import native_bf16_cpu

    agree = {
        m: float((masks[m] == masks["fine"]).mean())
        for m in args.models
        if m.startswith("fine:") and "fine" in masks
    }
    for m, a in agree.items():
        print(
            f"{m} mask = fine's on {a:.2%} of pixels (native bf16 on this CPU: {native_bf16_cpu()})"
        )
    res = {
        "machine": machine_info(),
        "size": args.size,
        "megapixels": mpx,
        "seconds": times,
        "median_seconds": med,
        "mpx_per_s": {m: mpx / s for m, s in med.items()},
        "agreement_with_fine": agree,
        "native_bf16_cpu": native_bf16_cpu(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(f"results: {args.out}")
    return res


if __name__ == "__main__":
    main()
