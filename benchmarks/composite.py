"""Peak memory of a lazy cloud-free composite over a long series: :func:`xcloud.composite`.

A 12-step 4-band uint16 cube of 2048 x 2048 px (``benchmarks/scaling.py``'s generator: built
chunk by chunk inside the graph, 512 px chunks, 400 MB in all) and a usable mask of the same
shape (random cloud blobs, also generated per chunk) go through ``xcloud.composite`` (median of
the usable observations and their count) on local threads. Printed: wall time and the process's
peak RSS before and after (``ru_maxrss``; target: under 2 GB), and whether one spatial tile of
the result equals ``numpy.nanmedian`` of the usable observations. Writes
``benchmarks/results/composite.json``.

Run
---
    .venv/bin/python benchmarks/composite.py [--times 12] [--size 2048]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling import _peak_rss_mb, cube  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _cloudy(block_info=None):
    (t0, t1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    rng = np.random.default_rng(abs(hash((t0, y0, x0))) % 2**32)
    return rng.random((t1 - t0, y1 - y0, x1 - x0)) > 0.35


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--times", type=int, default=12)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--chunks", type=int, default=512)
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    import dask
    import dask.array as da
    import xarray as xr

    import xcloud

    ds = cube(a.times, a.size, a.chunks)
    n = a.size // a.chunks
    ok = xr.DataArray(
        da.map_blocks(_cloudy, dtype=bool, chunks=((1,) * a.times, (a.chunks,) * n, (a.chunks,) * n)),
        dims=("time", "y", "x"), coords={d: ds[d] for d in ("time", "y", "x")},
    )  # fmt: skip
    before = _peak_rss_mb()
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        out = xcloud.composite(ds, ok).compute()
    seconds = time.perf_counter() - t0
    after = _peak_rss_mb()
    tile = (slice(0, 64), slice(0, 64))
    refl = ds["B04"].values[:, tile[0], tile[1]].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.nanmedian(np.where(ok.values[:, tile[0], tile[1]], refl, np.nan), axis=0)
    equal = bool(np.allclose(out["B04"].values[tile], ref, equal_nan=True))
    print(f"composite of ({a.times}, {a.size}, {a.size}) x 4 bands: {seconds:.1f} s, peak RSS "
          f"{before:.0f} MB before, {after:.0f} MB after (target < 2048 MB); a 64 px tile equals "
          f"numpy's nanmedian of the usable observations: {equal}")  # fmt: skip
    res = {"times": a.times, "size": a.size, "seconds": seconds, "peak_rss_mb_before": before,
           "peak_rss_mb_after": after, "tile_equals_numpy": equal}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "composite.json").write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
