"""Scale-out of :func:`xcloud.mask_to_zarr` on a ``LocalCluster``: 1 vs 2 worker processes.

What it measures
----------------
A synthetic but smooth 4-band uint16 Sentinel-2 L2A cube ``(time, size, size)`` is generated
chunk by chunk inside the dask graph (no input held in memory, so a worker's memory is set by the
chunk, not the cube). It is masked with ``mask_to_zarr`` (model ``ukis-csmask`` by default) into
a fresh Zarr store on a ``LocalCluster`` of 1 and then 2 single-threaded worker processes.
Timed: ``mask_to_zarr`` alone, after one warm-up region per cluster so model loading is not
counted. Reported: megapixels per second for each worker count, their ratio (target >= 1.6x on
a machine with >= 2 free cores), and each worker's peak RSS (``ru_maxrss``) at two cube sizes
(``--times`` T and 2T): flat means memory is bounded by the chunk, not by the cube.

Run
---
    .venv/bin/python benchmarks/scaling.py                          # 1024 px, 4 and 8 scenes
    .venv/bin/python benchmarks/scaling.py --size 512 --times 2 --chunks 512   # smoke run

Writes ``benchmarks/results/scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
RESULTS = Path(__file__).parent / "results"


def _block(block_info=None):
    """One (1, 4, cy, cx) uint16 chunk of smooth land + clouds, seeded by its position."""
    info = block_info[None]
    (t0, _), _, (y0, y1), (x0, x1) = info["array-location"]
    rng = np.random.default_rng(abs(hash((t0, y0, x0))) % 2**32)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    field = np.zeros(yy.shape, np.float32)
    for _ in range(4):
        cy, cx = rng.uniform(y0, y1), rng.uniform(x0, x1)
        r = rng.uniform(20, 120)
        field += rng.uniform(-0.1, 0.6) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    base = 0.06 + 0.02 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    bands = [base + field, base + field + 0.01, base + field + 0.02, base + 0.2 + field]
    out = np.stack([np.clip(b, 0, 1.4) * 1e4 for b in bands])[None].astype(np.uint16)
    return np.maximum(out, 1)


def cube(times: int, size: int, chunks: int):
    import dask.array as da
    import xarray as xr

    arr = da.map_blocks(
        _block,
        dtype=np.uint16,
        chunks=((1,) * times, (4,), (chunks,) * (size // chunks), (chunks,) * (size // chunks)),
    )
    coords = {
        "time": np.datetime64("2024-01-01") + np.arange(times) * np.timedelta64(5, "D"),
        "y": 5_000_000.0 - 10.0 * np.arange(size),
        "x": 300_000.0 + 10.0 * np.arange(size),
    }
    names = ("B02", "B03", "B04", "B08")
    ds = xr.Dataset(
        {n: (("time", "y", "x"), arr[:, i]) for i, n in enumerate(names)},
        coords=coords,
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    )
    for n in names:
        ds[n].attrs.update(scale_factor=1e-4, add_offset=0.0, nodata=0)
    return ds


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(workers: int, times: int, size: int, chunks: int, model: str) -> dict:
    import distributed

    import xcloud

    tmp = Path(tempfile.mkdtemp(prefix="xcloud-scaling-"))
    try:
        with (
            distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            warm = cube(workers, chunks, chunks)  # one region per worker: loads the model
            xcloud.mask_to_zarr(warm, tmp / "warm.zarr", model=model, client=client, progress=False)
            ds = cube(times, size, chunks)
            t0 = time.perf_counter()
            xcloud.mask_to_zarr(ds, tmp / "m.zarr", model=model, client=client, progress=False)
            seconds = time.perf_counter() - t0
            rss = sorted(client.run(_peak_rss_mb).values())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mpx = times * size * size / 1e6
    return {
        "workers": workers,
        "times": times,
        "size": size,
        "chunks": chunks,
        "seconds": seconds,
        "mpx_per_s": mpx / seconds,
        "peak_rss_mb_per_worker": rss,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--times", type=int, default=4)
    p.add_argument("--chunks", type=int, default=512)
    p.add_argument("--model", default="ukis-csmask")
    a = p.parse_args()
    rows = [run(w, a.times, a.size, a.chunks, a.model) for w in (1, 2)]
    rows.append(run(2, 2 * a.times, a.size, a.chunks, a.model))
    ratio = rows[1]["mpx_per_s"] / rows[0]["mpx_per_s"]
    for r in rows:
        print(
            f"workers={r['workers']} cube=({r['times']}, {r['size']}, {r['size']}) "
            f"{r['mpx_per_s']:.3f} Mpx/s  peak RSS per worker {r['peak_rss_mb_per_worker']} MB"
        )
    print(f"speed-up 2 vs 1 workers: {ratio:.2f}x (target >= 1.6x)")
    small = max(rows[1]["peak_rss_mb_per_worker"])
    big = max(rows[2]["peak_rss_mb_per_worker"])
    print(f"peak RSS per worker at T={a.times}: {small:.0f} MB, at T={2 * a.times}: {big:.0f} MB")
    RESULTS.mkdir(exist_ok=True)
    out = {"runs": rows, "speedup_2_vs_1": ratio, "rss_ratio_2T_vs_T": big / small}
    (RESULTS / "scaling.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'scaling.json'}")


if __name__ == "__main__":
    main()
