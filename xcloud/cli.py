"""The ``xcloud`` command: ``xcloud models | mask | stac | demo | train``."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from xcloud.device import PRECISIONS

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
    rows = [
        ("model", model),
        ("pixels", f"{n:,}"),
        ("time", f"{seconds:.1f} s"),
        ("throughput", f"{n / seconds / 1e6:.2f} Mpx/s"),
    ]
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
    from xcloud.device import inference_device
    from xcloud.models import get_spec
    from xcloud.plot import plot_mask, plot_rgb

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = args.model or best_available()
    ds = open_sample(chunks=256)
    print(f"xcloud {xcloud.__version__} demo: {ds.attrs['title']}")
    print(f"  data: {ds.attrs['source']} ({ds.attrs['license']})")
    # load the models first (once per process), so the time below is the masking itself: a
    # corner of the scene loads exactly what the whole needs (the cascade: its router, and the
    # fine stage it picks for these bands)
    t0 = time.perf_counter()
    device = inference_device("auto")
    ds.isel(x=slice(0, 64), y=slice(0, 64)).cloud.mask(model).compute()
    print(f"  loaded {model!r} on {device} in {time.perf_counter() - t0:.1f} s")
    print(f"  masking {dict(ds.sizes)} with model={model!r} ...")
    t0 = time.perf_counter()
    routing = None
    if get_spec(model).stages:  # the cascade: keep its routing for the summary
        routing = ds.cloud.route(model)
        mask = ds.cloud.mask(model, routing=routing)
    else:
        mask = ds.cloud.mask(model)
    store = out / "mask.zarr"
    with ProgressBar(dt=0.2):
        mask.cloud.to_zarr(store, mode="w")
    seconds = time.perf_counter() - t0

    import xarray as xr

    saved = xr.open_zarr(store)["cloud_mask"].isel(time=0).load()
    scene = ds.isel(time=0).load()
    refl = {b: scene[b].where(scene[b] != 0) * 1e-4 for b in ("B04", "B03", "B02")}
    fig, axs = plt.subplots(1, 3, figsize=(15, 5.4), constrained_layout=True)
    plot_rgb(refl["B04"], refl["B03"], refl["B02"], ax=axs[0], title="Sentinel-2 true colour")
    plot_rgb(
        refl["B04"],
        refl["B03"],
        refl["B02"],
        mask=saved,
        ax=axs[1],
        title=f"mask overlay ({model})",
    )
    plot_mask(saved, ax=axs[2], title="cloud_mask")
    fig.suptitle(f"xcloud demo: {ds.attrs['title']}")
    png = out / "quicklook.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)
    print(summary_table(saved.values, seconds, model))
    if routing is not None:
        n_units = int(routing.unit_fine.size)
        n_fine = int(routing.unit_fine.values.sum())
        stage = routing.attrs.get("xcloud_fine_stage", "fine")
        print(
            f"  routing       {n_fine} of {n_units} chunks of {routing.attrs['unit_size_px']} px "
            f"ran the fine model ({stage}, {n_fine / n_units:.0%}); the rest were filled from "
            f"the coarse model (route_threshold {routing.attrs['xcloud_route_threshold']})"
        )
    print(f"  wrote {store} and {png}")
    print(f"  reopen with: xr.open_zarr({str(store)!r})")
    return 0


def _whole(low: int):
    """An argparse type: a whole number >= ``low``, refused with the value and the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= {low}")
        return value

    return parse


def _mask(args) -> int:
    if args.resume and args.overwrite:
        raise SystemExit(
            "xcloud mask: --resume keeps what the store already holds, --overwrite deletes it; "
            "pass one of the two"
        )
    _check_outputs(args)
    if args.stac:
        return _mask_stac(args)
    if args.resume:
        raise SystemExit(
            "xcloud mask: --resume completes an interrupted --stac run; a local file is written "
            "in one go (pass --overwrite to write it again)"
        )
    if not args.input:
        raise SystemExit("xcloud mask: give an INPUT file, or --stac URL --collection C")
    import xarray as xr
    from dask.diagnostics import ProgressBar

    import xcloud
    from xcloud.io.zarr import store_exists

    if store_exists(args.out) and not args.overwrite:
        raise SystemExit(
            f"xcloud mask: the Zarr store {args.out} already exists; pass --overwrite to replace "
            "it, or choose another --out"
        )
    src = Path(args.input)
    if not src.exists():
        raise SystemExit(f"xcloud mask: input file {src} does not exist")
    ds: xr.Dataset | xr.DataArray
    if src.suffix.lower() in (".tif", ".tiff"):
        import rioxarray

        arr = rioxarray.open_rasterio(src, chunks={"band": -1, "y": args.chunks, "x": args.chunks})
        if not isinstance(arr, xr.DataArray):
            raise SystemExit(
                f"{src}: the file has several subdatasets; open the one to mask with rioxarray "
                "and use the Python API (xcloud.mask)"
            )
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
    mask = xcloud.mask(ds, args.model, sensor=args.sensor, precision=args.precision)
    with ProgressBar(dt=0.2) if not args.quiet else contextlib.nullcontext():
        xcloud.to_zarr(mask, args.out, mode="w" if args.overwrite else None)
    seconds = time.perf_counter() - t0
    print(summary_table(xr.open_zarr(args.out)["cloud_mask"].values, seconds, args.model))
    _outputs(args)
    return 0


def _check_outputs(args) -> None:
    """Refuse --cog / --stac-out / --buffer values before any masking starts."""
    if args.buffer is not None:
        from xcloud.analysis import parse_buffer

        parse_buffer(args.buffer)
    if args.stac_out:
        from xcloud.io.publish import check_catalogue_target

        check_catalogue_target(args.stac_out, args.overwrite or args.resume)
    if args.cog and Path(args.cog).exists() and not Path(args.cog).is_dir():
        raise SystemExit(f"xcloud mask: --cog {args.cog} is a file; give a directory")


def _outputs(args) -> None:
    """What analysis needs next, from the finished store: --buffer adds a ``usable``
    variable to it, --cog writes one COG per time step, --stac-out a STAC catalogue."""
    if args.buffer is None and not args.cog and not args.stac_out:
        return
    import xarray as xr

    import xcloud
    from xcloud.io.zarr import store_uri

    ds = xr.open_zarr(args.out)
    if args.buffer is not None:
        usable = xcloud.usable(ds["cloud_mask"], buffer=args.buffer)
        extra = [c for c in usable.coords if c not in usable.dims]
        usable.drop_vars(extra).to_dataset(name="usable").to_zarr(args.out, mode="a")
        share = float(xr.open_zarr(args.out)["usable"].mean())
        print(f"  usable      {share:6.1%} of pixels ({args.buffer} buffer): {args.out}/usable")
    if args.cog:
        paths = xcloud.to_cog(ds["cloud_mask"], args.cog, overwrite=args.overwrite)
        print(f"  COGs        {len(paths)} in {args.cog}")
    if args.stac_out:
        c = xcloud.to_stac(
            ds,
            args.stac_out,
            zarr_href=store_uri(str(args.out)),
            href_base=args.href_base,
            overwrite=args.overwrite or args.resume,
        )
        print(f"  STAC        {len(list(c.get_items()))} items in {args.stac_out}/collection.json")


def _stac(args) -> int:
    import xarray as xr

    import xcloud
    from xcloud.io.zarr import store_exists, store_uri

    if not store_exists(args.store):
        raise SystemExit(f"xcloud stac: {args.store} is not a Zarr store; give the mask store")
    ds = xr.open_zarr(args.store)
    if int(ds.attrs.get("xcloud_complete", 1)) != 1:
        raise SystemExit(
            f"xcloud stac: the store {args.store} is incomplete (an interrupted run); finish "
            "it with xcloud mask --resume first"
        )
    c = xcloud.to_stac(
        ds,
        args.out,
        collection_id=args.collection_id,
        zarr_href=store_uri(str(args.store)),
        href_base=args.href_base,
        overwrite=args.overwrite,
    )
    print(f"{len(list(c.get_items()))} items in {Path(args.out) / 'collection.json'}")
    return 0


def _client(args):
    """A dask.distributed client: --scheduler ADDRESS, else a LocalCluster of --workers."""
    import os

    if args.scheduler is None and args.workers == 0:
        return None, None
    from xcloud.errors import require

    distributed = require("distributed", "distributed", "xcloud mask --workers / --scheduler")
    if args.scheduler is not None:
        return distributed.Client(args.scheduler), None
    n = args.workers or max(1, os.cpu_count() or 1)
    cluster = distributed.LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return distributed.Client(cluster), cluster


def stac_summary(out, seconds: float, model: str) -> str:
    """The end-of-run table of a STAC mask store: scenes, pixels, cloud %, time."""
    m = out["cloud_mask"]
    n = int(np.prod(m.shape))
    cf = out["cloud_fraction"].values.astype(float)
    nf = out["nodata_fraction"].values.astype(float)
    valid = n * (1 - float(np.mean(nf))) if nf.size else 0.0
    cloud = float(np.nansum(cf * (1 - nf))) / max(float(np.sum(1 - nf)), 1e-12)
    rows = [
        ("model", model),
        ("scenes", f"{m.shape[0]} ({len(out.attrs.get('stac_item_ids', []))} STAC items)"),
        ("pixels", f"{n:,} ({valid:,.0f} valid)"),
        ("cloud", f"{cloud:6.1%} of valid pixels"),
        ("nodata", f"{float(np.mean(nf)) if nf.size else 0.0:6.1%}"),
        ("time", f"{seconds:.1f} s"),
        ("throughput", f"{n / max(seconds, 1e-9) / 1e6:.2f} Mpx/s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _mask_stac(args) -> int:
    import xcloud

    if not args.collection:
        raise SystemExit("xcloud mask --stac needs --collection (e.g. sentinel-2-l2a)")
    t0 = time.perf_counter()
    ds = xcloud.open_stac(
        args.stac,
        args.collection,
        bbox=args.bbox,
        datetime=args.datetime,
        filter=args.filter,
        bands=args.bands.split(",") if args.bands else None,
        chunks={"time": 1, "y": args.chunks, "x": args.chunks},
        on_missing=args.on_missing,
    )
    print(
        f"xcloud {xcloud.__version__}: {len(ds.attrs['stac_item_ids'])} items, "
        f"{ds.sizes['time']} scenes of {ds.sizes['y']} x {ds.sizes['x']} px from "
        f"{args.stac} ({args.collection}) -> {args.out}",
        file=sys.stderr,
    )
    client, cluster = _client(args)
    try:
        out = xcloud.mask_to_zarr(
            ds,
            args.out,
            model=args.model,
            mask_kw={"precision": args.precision} if args.precision != "auto" else None,
            resume=args.resume,
            overwrite=args.overwrite,
            client=client,
            progress=not args.quiet,
        )
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    print(stac_summary(out, time.perf_counter() - t0, args.model))
    _outputs(args)
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
    args = _parser().parse_args(argv)
    from xcloud.errors import XCloudError

    try:
        return int(args.func(args) or 0)
    except XCloudError as e:
        print(f"xcloud: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an unreadable input, a read-only --out, a full disk: one line
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"xcloud: error: {type(e).__name__}: {e.strerror or e}{where}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xcloud", description="Cloud masks for satellite datacubes."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(func=_models)
    p = sub.add_parser("demo", help="mask the bundled sample scene into a Zarr store and a PNG")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--model", default=None, help=f"default: first available of {DEMO_MODELS}")
    p.set_defaults(func=_demo)
    _mask_parser(sub)
    p = sub.add_parser(
        "stac", help="publish a mask store as a STAC Collection with one Item and COG per date"
    )
    p.add_argument("store", help="a Zarr store written by xcloud mask / mask_to_zarr")
    p.add_argument("--out", required=True, help="the catalogue directory (new or empty)")
    p.add_argument("--collection-id", default="xcloud-cloud-mask")
    p.add_argument(
        "--href-base", metavar="URL", help="write absolute hrefs under URL (to serve the catalogue)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an xcloud catalogue there")
    p.set_defaults(func=_stac)
    sub.add_parser("train", help="train xcloud's models (see xcloud train --help)")
    return parser


def _mask_parser(sub) -> None:
    p = sub.add_parser(
        "mask",
        help="mask a local GeoTIFF / NetCDF / Zarr cube, or a STAC search, into a Zarr store",
    )
    p.add_argument("input", nargs="?", help="a local file (or use --stac)")
    p.add_argument("--out", required=True, help="the Zarr store to write")
    p.add_argument("--model", default="cascade")
    p.add_argument("--sensor", default=None)
    p.add_argument("--chunks", type=_whole(1), default=1024, help="chunk size in pixels")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the models' arithmetic: auto (bf16 on CUDA, fp32 on CPU), fp32, or bf16 (also on "
        "the CPU: faster on CPUs with native bf16)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    g = p.add_argument_group("STAC time series")
    g.add_argument("--stac", metavar="URL", help="STAC API root to search")
    g.add_argument("--collection", help="collection id, e.g. sentinel-2-l2a")
    g.add_argument(
        "--bbox", nargs=4, type=float, metavar=("W", "S", "E", "N"), help="degrees, lon first"
    )
    g.add_argument("--datetime", metavar="RANGE", help="e.g. 2024-06-01/2024-06-30")
    g.add_argument("--filter", metavar="CQL2-JSON", help="CQL2-JSON filter (filter extension)")
    g.add_argument("--bands", help="comma-separated common names or asset keys")
    g.add_argument("--on-missing", choices=("raise", "skip"), default="raise")
    g.add_argument("--resume", action="store_true", help="complete an interrupted store")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    o = p.add_argument_group("analysis-ready outputs (from the finished store)")
    o.add_argument(
        "--buffer",
        metavar="DISTANCE",
        help="add a 'usable' variable to the store: no cloud, thin cloud or shadow within "
        "DISTANCE (e.g. 60m, 3px), not nodata",
    )
    o.add_argument("--cog", metavar="DIR", help="also write one COG per time step into DIR")
    o.add_argument(
        "--stac-out", metavar="DIR", help="also publish a STAC Collection + Items (and COGs) in DIR"
    )
    o.add_argument(
        "--href-base", metavar="URL", help="absolute hrefs under URL in --stac-out (to serve it)"
    )
    w = g.add_mutually_exclusive_group()
    w.add_argument(
        "--workers",
        type=_whole(0),
        default=None,
        help="LocalCluster worker processes (default: one per core; 0: threads, no cluster)",
    )
    w.add_argument("--scheduler", metavar="ADDRESS", help="an existing dask scheduler")
    p.set_defaults(func=_mask)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
