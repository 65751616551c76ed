"""Megapixels per second of ``fine`` vs ukis-csmask on the same 4-band reflectance, 2 threads.

Both models see the same ``--size`` x ``--size`` 4-band image (real On Cloud N chips tiled to
size when the data is there, else smooth random reflectance). ``fine`` runs as the inference
core runs it: tiles of ``spec.tile_size`` with ``spec.overlap`` (stride 256), batches of 8,
through :class:`xcloud.models.builtin.FinePredictor` (``torch.inference_mode``, channels-last);
ukis-csmask runs its own tiling (``CSmask``, 256 px tiles, 2 intra-op threads). Megapixels are
counted on the image, so overlap is charged to ``fine``.

Run
---
    .venv/bin/python benchmarks/fine_speed.py [--size 2048] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def _image(size: int) -> np.ndarray:
    try:
        from xcloud.train.data import load_oncloudn

        chips = load_oncloudn(split="val")
        tiles = [c.image for c in chips]
    except Exception:  # noqa: BLE001 - any failure to read data falls back to synthetic input
        rng = np.random.default_rng(0)
        tiles = [rng.uniform(0.02, 0.6, (4, 512, 512)).astype(np.float32)]
    reps = -(-size // 512)
    rows = [
        np.concatenate([tiles[(i * reps + j) % len(tiles)] for j in range(reps)], axis=2)
        for i in range(reps)
    ]
    return np.ascontiguousarray(np.concatenate(rows, axis=1)[:, :size, :size])


def time_fine(img: np.ndarray, repeats: int, threads: int, name: str = "fine") -> float:
    import torch

    from xcloud.models import create_model
    from xcloud.train.data import ONCLOUDN_BANDS, SENTINEL2

    torch.set_num_threads(threads)
    model = create_model(name, "cpu")
    tile, stride = model.spec.tile_size, model.spec.stride
    h = model.spec.overlap // 2
    pad = np.pad(img, ((0, 0), (h, tile), (h, tile)), mode="symmetric")
    n = -(-img.shape[1] // stride)
    tiles = np.stack(
        [
            pad[:, i * stride : i * stride + tile, j * stride : j * stride + tile]
            for i in range(n)
            for j in range(n)
        ]
    )
    wl = np.array([SENTINEL2[b] for b in ONCLOUDN_BANDS], np.float32)
    best = np.inf
    for _ in range(repeats + 1):  # first pass warms up
        t = time.perf_counter()
        for k in range(0, len(tiles), 8):
            model.predict(
                tiles[k : k + 8], bands=("blue", "green", "red", "nir"), wavelengths=wl, level="l2a"
            )
        best = min(best, time.perf_counter() - t)
    return img.shape[1] * img.shape[2] / best / 1e6


def time_ukis(img: np.ndarray, repeats: int, threads: int) -> float:
    from ukis_csmask.mask import CSmask

    hwc = np.ascontiguousarray(np.moveaxis(img, 0, -1))
    best = np.inf
    for _ in range(repeats + 1):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = CSmask(hwc, band_order=["blue", "green", "red", "nir"], product_level="l2a",
                          intra_op_num_threads=threads, inter_op_num_threads=1)  # fmt: skip
            assert mask.csm.shape[:2] == hwc.shape[:2]
        best = min(best, time.perf_counter() - t)
    return img.shape[1] * img.shape[2] / best / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    img = _image(args.size)
    fine = time_fine(img, args.repeats, args.threads)
    ukis = time_ukis(img, args.repeats, args.threads)
    out = {
        "size": args.size,
        "threads": args.threads,
        "fine_mpx_s": fine,
        "ukis_mpx_s": ukis,
        "ratio": fine / ukis,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
