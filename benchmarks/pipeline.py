"""What writing to Zarr costs: :func:`xcloud.mask_to_zarr` against ``mask().compute()``.

Side by side in one run, on the synthetic 4-band cube of ``benchmarks/scaling.py`` (generated
chunk by chunk inside the graph, so each read of an input chunk is one task to count):

* ``compute``: ``ds.cloud.mask(model).compute()`` on local threads;
* ``zarr``: ``xcloud.mask_to_zarr(ds, store, model=model)`` on local threads;
* ``zarr, cluster``: the same on a ``LocalCluster`` of single-threaded worker processes, at two
  cube sizes (T and 2T time steps), with each worker's peak RSS (``ru_maxrss``).

Printed: megapixels per second, ``zarr / compute`` throughput (target >= 0.8), input chunk
reads per input chunk (1.0: each chunk read once), and peak worker memory at both sizes
(target: flat within 20 %). Results go to ``benchmarks/results/pipeline.json``.

Run
---
    .venv/bin/python benchmarks/pipeline.py [--size 4096] [--times 2] [--chunks 512] [--model fine]
        [--big-size 8192]   # worker memory at 4 vs 67 Mpx per step instead of T vs 2T steps
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scaling  # noqa: E402
from scaling import _peak_rss_mb, cube  # noqa: E402

RESULTS = Path(__file__).parent / "results"


class Reads:
    """Counts the input chunks generated (``scaling._block`` calls) in this process."""

    def __init__(self):
        self.n = 0
        self._lock = threading.Lock()

    def __enter__(self):
        real = self._real = scaling._block

        def counted(block_info=None):
            with self._lock:
                self.n += 1
            return real(block_info=block_info)

        scaling._block = counted
        return self

    def __exit__(self, *exc):
        scaling._block = self._real


def local(times: int, size: int, chunks: int, model: str, tmp: Path) -> dict:
    import dask

    import xcloud

    out = {}
    with dask.config.set(scheduler="threads"):
        warm = cube(1, chunks, chunks)
        warm.cloud.mask(model).compute()  # load the model outside the timings
        n_in = times * math.ceil(size / chunks) ** 2  # input chunks (the 4 bands come as one)
        with Reads() as reads:
            ds = cube(times, size, chunks)
            t0 = time.perf_counter()
            ds.cloud.mask(model).compute()
            out["compute"] = {"seconds": time.perf_counter() - t0, "reads": reads.n}
        with Reads() as reads:
            ds = cube(times, size, chunks)
            t0 = time.perf_counter()
            xcloud.mask_to_zarr(ds, tmp / "local.zarr", model=model, progress=False)
            out["zarr"] = {"seconds": time.perf_counter() - t0, "reads": reads.n}
    mpx = times * size * size / 1e6
    for row in out.values():
        row["mpx_per_s"] = mpx / row["seconds"]
        row["reads_per_input_chunk"] = row["reads"] / n_in
    return out


def cluster(times: int, size: int, chunks: int, model: str, tmp: Path, workers: int) -> dict:
    import distributed

    import xcloud

    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as lc,
        distributed.Client(lc) as client,
    ):
        warm = cube(workers, chunks, chunks)
        xcloud.mask_to_zarr(warm, tmp / f"warm{times}_{size}.zarr", model=model, client=client,
                            progress=False)  # fmt: skip
        ds = cube(times, size, chunks)
        t0 = time.perf_counter()
        xcloud.mask_to_zarr(
            ds, tmp / f"c{times}_{size}.zarr", model=model, client=client, progress=False
        )
        seconds = time.perf_counter() - t0
        rss = sorted(client.run(_peak_rss_mb).values())
    return {"times": times, "size": size, "mpx": times * size * size / 1e6, "seconds": seconds,
            "mpx_per_s": times * size * size / 1e6 / seconds,
            "peak_rss_mb_per_worker": rss}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # the audit's cube (4096 px), two steps; one step of it gave 0.67-0.83x (the store's fixed
    # setup, ~1 s, weighs more on a cube computed in 3-4 s)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--times", type=int, default=2)
    p.add_argument("--chunks", type=int, default=512)
    p.add_argument("--model", default="fine")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--big-size", type=int, default=None,
                   help="compare worker memory against a cube of this edge (default: twice the "
                   "time steps at --size)")  # fmt: skip
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="xcloud-pipeline-"))
    try:
        loc = local(a.times, a.size, a.chunks, a.model, tmp)
        small = cluster(a.times, a.size, a.chunks, a.model, tmp, a.workers)
        big = (
            cluster(a.times, a.big_size, a.chunks, a.model, tmp, a.workers)
            if a.big_size
            else cluster(2 * a.times, a.size, a.chunks, a.model, tmp, a.workers)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = loc["zarr"]["mpx_per_s"] / loc["compute"]["mpx_per_s"]
    rss_ratio = max(big["peak_rss_mb_per_worker"]) / max(small["peak_rss_mb_per_worker"])
    print(f"model {a.model!r}, cube ({a.times}, {a.size}, {a.size}), chunks {a.chunks}")
    for name, row in loc.items():
        print(f"  {name:8s} {row['mpx_per_s']:6.2f} Mpx/s, {row['reads_per_input_chunk']:.2f} "
              "reads per input chunk")  # fmt: skip
    print(f"  zarr / compute throughput: {ratio:.2f} (target >= 0.8)")
    for row in (small, big):
        print(f"  cluster x{a.workers}, {row['times']} x {row['size']} px ({row['mpx']:.0f} Mpx): "
              f"{row['mpx_per_s']:.2f} Mpx/s, peak RSS per worker {row['peak_rss_mb_per_worker']} "
              "MB")  # fmt: skip
    print(f"  peak worker RSS, {big['mpx']:.0f} vs {small['mpx']:.0f} Mpx: {rss_ratio:.2f}x "
          "(target <= 1.2)")  # fmt: skip
    out = {"local": loc, "cluster": [small, big], "zarr_over_compute": ratio,
           "rss_ratio": rss_ratio, "args": vars(a)}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / ("pipeline_sizes.json" if a.big_size else "pipeline.json")
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
