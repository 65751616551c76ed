"""The ``xcloud`` command: ``xcloud models | mask | demo | train``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

#: Preferred models for the demo, best first; the first one that runs here is used.
DEMO_MODELS = ("cascade", "fine", "ukis-csmask")


def _models(args) -> int:
    from xcloud.models import get_spec, list_models
    from xcloud.models._registry import check_available

    print(f"{'model':<14} {'runs here':<10} {'classes':<40} description")
    for name in list_models(args.pattern):
        spec = get_spec(name)
        try:
            check_available(spec)
            ok = "yes"
        except Exception:
            ok = "no"
        print(f"{name:<14} {ok:<10} {' '.join(spec.classes):<40} {spec.description}")
    return 0


def best_available(preferred=DEMO_MODELS) -> str:
    """The first model of ``preferred`` that can run in this environment."""
    from xcloud.models import available_models

    avail = available_models()
    for name in preferred:
        if name in avail:
            return name
    raise SystemExit(f"none of {list(preferred)} can run here; available: {avail}")


def summary_table(mask, seconds: float, model: str) -> str:
    """A small text table of class fractions for a computed mask."""
    from xcloud.models import CLASSES, NODATA

    values = np.asarray(mask)
    n = values.size
    rows = [("model", model), ("pixels", f"{n:,}"), ("time", f"{seconds:.1f} s"),
            ("throughput", f"{n / seconds / 1e6:.2f} Mpx/s")]
    for name, code in list(CLASSES.items()) + [("nodata", NODATA)]:
        rows.append((name, f"{np.count_nonzero(values == code) / n:6.1%}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dask.diagnostics import ProgressBar

    import xcloud
    from xcloud.data import open_sample
    from xcloud.plot import plot_mask, plot_rgb

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = args.model or best_available()
    ds = open_sample(chunks=256)
    print(f"xcloud {xcloud.__version__} demo: {ds.attrs['title']}")
    print(f"  data: {ds.attrs['source']} ({ds.attrs['license']})")
    print(f"  masking {dict(ds.sizes)} with model={model!r} ...")
    t0 = time.perf_counter()
    mask = ds.cloud.mask(model)
    store = out / "mask.zarr"
    with ProgressBar(dt=1.0):
        mask.cloud.to_zarr(store, mode="w")
    seconds = time.perf_counter() - t0

    import xarray as xr

    saved = xr.open_zarr(store)["cloud_mask"].isel(time=0).load()
    scene = ds.isel(time=0).load()
    refl = {b: scene[b].where(scene[b] != 0) * 1e-4 for b in ("B04", "B03", "B02")}
    fig, axs = plt.subplots(1, 3, figsize=(15, 5.4), constrained_layout=True)
    plot_rgb(refl["B04"], refl["B03"], refl["B02"], ax=axs[0], title="Sentinel-2 true colour")
    plot_rgb(refl["B04"], refl["B03"], refl["B02"], mask=saved, ax=axs[1],
             title=f"mask overlay ({model})")
    plot_mask(saved, ax=axs[2], title="cloud_mask")
    fig.suptitle(f"xcloud demo: {ds.attrs['title']}")
    png = out / "quicklook.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)
    print(summary_table(saved.values, seconds, model))
    print(f"  wrote {store} and {png}")
    print(f"  reopen with: xr.open_zarr({str(store)!r})")
    return 0


def _mask(args) -> int:
    import xarray as xr
    from dask.diagnostics import ProgressBar

    import xcloud

    src = Path(args.input)
    if src.suffix.lower() in (".tif", ".tiff"):
        import rioxarray

        arr = rioxarray.open_rasterio(src, chunks={"band": -1, "y": args.chunks, "x": args.chunks})
        names = arr.attrs.get("long_name")
        if isinstance(names, str) or names is None:
            raise SystemExit(
                f"{src}: the GeoTIFF's bands have no descriptions naming them; set them "
                "(rasterio: dst.set_band_description(i, 'B02')) or use the Python API with bands="
            )
        ds = arr.assign_coords(band=list(names))
    else:
        ds = xr.open_dataset(src, chunks={"y": args.chunks, "x": args.chunks})
    t0 = time.perf_counter()
    mask = xcloud.mask(ds, args.model, sensor=args.sensor)
    with ProgressBar(dt=1.0):
        xcloud.to_zarr(mask, args.out, mode="w" if args.overwrite else None)
    seconds = time.perf_counter() - t0
    print(summary_table(xr.open_zarr(args.out)["cloud_mask"].values, seconds, args.model))
    return 0


def _train(argv: list[str]) -> int:
    try:
        from xcloud.train.cli import main as train_main
    except ImportError as e:
        raise SystemExit(f"xcloud train is not available: {e}") from e
    return int(train_main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xcloud`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return _train(argv[1:])
    parser = argparse.ArgumentParser(prog="xcloud", description="Cloud masks for satellite datacubes.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(func=_models)
    p = sub.add_parser("demo", help="mask the bundled sample scene into a Zarr store and a PNG")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--model", default=None, help=f"default: first available of {DEMO_MODELS}")
    p.set_defaults(func=_demo)
    p = sub.add_parser("mask", help="mask a local GeoTIFF / NetCDF / Zarr cube into a Zarr store")
    p.add_argument("input")
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="cascade")
    p.add_argument("--sensor", default=None)
    p.add_argument("--chunks", type=int, default=1024)
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.set_defaults(func=_mask)
    sub.add_parser("train", help="train xcloud's models (see xcloud train --help)")
    args = parser.parse_args(argv)
    from xcloud.errors import XCloudError

    try:
        return int(args.func(args) or 0)
    except XCloudError as e:
        print(f"xcloud: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
