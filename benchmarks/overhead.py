"""Overhead of ``ds.cloud.mask(model="ukis-csmask")`` over calling ukis-csmask directly.

What it measures
----------------
A realistic 4-band float32 reflectance cube (B02 B03 B04 B08, default 4096 x 4096) is mosaicked
from the 32 real On Cloud N Sentinel-2 L2A chips (512 x 512 each, reused with flips when the
cube needs more), and cached as ``.npy`` in the temp dir. Two variants mask the same array:

* ``direct``: ``ukis_csmask.mask.CSmask(img (H, W, 4), band_order=["blue", "green", "red",
  "nir"], product_level="l2a", batch_size=B).csm`` on the numpy array (the denominator);
* ``xcloud``: a Dataset of dask arrays (``chunks=1024``) with one variable per band and
  ``platform`` / ``processing:level`` attrs, ``ds.cloud.mask("ukis-csmask", batch_size=B)``,
  computed to numpy with ``.compute()`` under ``dask.config.set(scheduler="threads")``. Compute
  to memory (not Zarr) so both variants end with the same numpy mask and no disk I/O is timed.

Each repeat of each variant runs in its own child process (``subprocess``), alternating
direct / xcloud, so repeats are interleaved and each child's peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to one variant only. The timed region
is the masking call alone (ONNX session creation included for both; imports and loading the
cube are not). Reports median seconds per variant, the ratio xcloud / direct (target <= 1.2),
peak RSS (target < 3 GB) and the RSS just before the call (the cube itself), and the agreement
of the two masks.

Run
---
    .venv/bin/python benchmarks/overhead.py                    # 4096 x 4096, 3 repeats
    .venv/bin/python benchmarks/overhead.py --size 2048 --repeats 3
    .venv/bin/python benchmarks/overhead.py --size 2048 --profile   # cProfile of the xcloud path

Writes ``benchmarks/results/overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# xcloud.train.data.default_data_root's rule, without importing xcloud into the direct child
CHIPS = (
    Path(os.environ.get("XCLOUD_DATA") or ROOT.parent / "shared" / "data")
    / "labelled" / "oncloudn" / "features"
)  # fmt: skip
RESULTS = Path(__file__).resolve().parent / "results"
BANDS = ("B02", "B03", "B04", "B08")
RATIO_TARGET, RSS_TARGET_GB = 1.2, 3.0


def build_cube(size: int) -> Path:
    """``(size, size, 4)`` float32 reflectance mosaicked from On Cloud N chips, cached."""
    path = Path(tempfile.gettempdir()) / f"xcloud_overhead_cube_{size}.npy"
    if path.exists():
        return path
    import rasterio

    chips = []
    for d in sorted(CHIPS.iterdir()):
        bands = []
        for b in BANDS:
            with rasterio.open(d / f"{b}.tif") as src:
                bands.append(src.read(1))
        chips.append(np.stack(bands, axis=-1).astype(np.float32) / np.float32(1e4))
    c = chips[0].shape[0]
    cube = np.zeros((size, size, 4), np.float32)
    n = -(-size // c)
    for k in range(n * n):
        i, j = divmod(k, n)
        chip = chips[k % len(chips)]
        flips = k // len(chips)  # reuse a chip only flipped, so no two tiles are identical
        if flips % 2:
            chip = chip[::-1]
        if (flips // 2) % 2:
            chip = chip[:, ::-1]
        h, w = min(c, size - i * c), min(c, size - j * c)
        cube[i * c : i * c + h, j * c : j * c + w] = chip[:h, :w]
    np.save(path, cube)
    return path


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def child(variant: str, cube_path: str, chunk: int, batch: int, out_mask: str | None) -> dict:
    """Run one variant once in this process; print a JSON line."""
    import dask
    import dask.array as da
    import onnxruntime  # noqa: F401
    import xarray as xr
    from ukis_csmask.mask import CSmask

    import xcloud  # noqa: F401

    img = np.load(cube_path)
    rss_before = _rss_gb()
    t0 = time.perf_counter()
    if variant == "direct":
        m = CSmask(
            img, band_order=["blue", "green", "red", "nir"], product_level="l2a", batch_size=batch
        ).csm[..., 0]
        m = np.array([0, 1, 3], np.uint8)[m]  # ukis codes 0 clear 1 cloud 2 shadow -> xcloud's
    else:
        dims = ("y", "x")
        ds = xr.Dataset(
            {b: (dims, da.from_array(img[..., i], chunks=chunk)) for i, b in enumerate(BANDS)},
            attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
        )
        with dask.config.set(scheduler="threads"):
            m = ds.cloud.mask("ukis-csmask", batch_size=batch).compute().values
    seconds = time.perf_counter() - t0
    if out_mask:
        np.save(out_mask, m)
    return {
        "variant": variant,
        "seconds": seconds,
        "peak_rss_gb": _rss_gb(),
        "rss_before_call_gb": rss_before,
    }


def run_child(variant: str, cube: Path, args, out_mask: str | None = None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--cube",
        str(cube),
        "--chunk",
        str(args.chunk),
        "--batch-size",
        str(args.batch_size),
    ]
    if out_mask:
        cmd += ["--out-mask", out_mask]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError(f"{variant} child failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def profile(cube: Path, args) -> None:
    """cProfile the xcloud path in this process (top functions by cumulative time)."""
    import cProfile
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    child("xcloud", str(cube), args.chunk, args.batch_size, None)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4096, help="cube side in pixels (default 4096)")
    p.add_argument("--chunk", type=int, default=1024, help="dask chunk side (default 1024)")
    p.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    p.add_argument("--batch-size", type=int, default=8, help="tiles per ONNX call, both variants")
    p.add_argument("--profile", action="store_true", help="cProfile the xcloud path and exit")
    p.add_argument("--child", choices=("direct", "xcloud"), help=argparse.SUPPRESS)
    p.add_argument("--cube", help=argparse.SUPPRESS)
    p.add_argument("--out-mask", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, args.cube, args.chunk, args.batch_size, args.out_mask)))
        return None
    cube = build_cube(args.size)
    if args.profile:
        profile(cube, args)
        return None

    from benchmarks._metrics import machine_info

    runs: dict[str, list[dict]] = {"direct": [], "xcloud": []}
    tmp = Path(tempfile.mkdtemp(prefix="xcloud_overhead_"))
    for r in range(args.repeats):
        order = ("direct", "xcloud") if r % 2 == 0 else ("xcloud", "direct")
        for v in order:
            out_mask = str(tmp / f"{v}.npy") if r == 0 else None
            res = run_child(v, cube, args, out_mask)
            runs[v].append(res)
            print(
                f"  repeat {r} {v:<6} {res['seconds']:7.2f} s  peak RSS {res['peak_rss_gb']:.2f} GB"
            )
    a, b = np.load(tmp / "direct.npy"), np.load(tmp / "xcloud.npy")
    agree = float((a == b).mean())
    med = {v: statistics.median(x["seconds"] for x in rs) for v, rs in runs.items()}
    peak = {v: max(x["peak_rss_gb"] for x in rs) for v, rs in runs.items()}
    before = {v: max(x["rss_before_call_gb"] for x in rs) for v, rs in runs.items()}
    ratio = med["xcloud"] / med["direct"]
    mpx = args.size**2 / 1e6

    print(
        f"\ncube {args.size}x{args.size}x4 float32 ({mpx:.1f} Mpx), chunks {args.chunk}, "
        f"batch {args.batch_size}, {args.repeats} interleaved repeats, medians"
    )
    print(
        f"{'variant':<8} {'median s':>9} {'Mpx/s':>7} {'peak RSS GB':>12} {'RSS before call':>16}"
    )
    for v in ("direct", "xcloud"):
        print(f"{v:<8} {med[v]:9.2f} {mpx / med[v]:7.2f} {peak[v]:12.2f} {before[v]:16.2f}")
    ok_r = "OK" if ratio <= RATIO_TARGET else "MISSED"
    ok_m = "OK" if peak["xcloud"] < RSS_TARGET_GB else "MISSED"
    print(f"ratio xcloud / direct = {ratio:.3f}  (target <= {RATIO_TARGET}: {ok_r})")
    print(f"xcloud peak RSS = {peak['xcloud']:.2f} GB (target < {RSS_TARGET_GB} GB: {ok_m})")
    print(f"mask agreement xcloud vs direct: {agree:.4%} of pixels")

    payload = {
        "benchmark": "overhead",
        "machine": machine_info(),
        "config": {
            "size": args.size,
            "chunk": args.chunk,
            "repeats": args.repeats,
            "batch_size": args.batch_size,
            "scheduler": "threads",
            "xcloud_output": "compute() to numpy",
        },
        "median_seconds": med,
        "ratio": ratio,
        "peak_rss_gb": peak,
        "rss_before_call_gb": before,
        "mask_agreement": agree,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "overhead.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
