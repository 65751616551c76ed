"""Masks as a static STAC catalogue: one Collection, one Item per time step, each with its COG.

The catalogue is self-contained (relative links), so it can be copied or uploaded as it is;
each Item carries the classification extension's ``classification:classes`` (with the share
of each class in that scene), ``eo:cloud_cover``, the projection of its COG, the model and
xcloud version that made it, and ``derived_from`` links to the items it was computed from.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xcloud.errors import DimensionError, ParameterError, StoreExistsError, require
from xcloud.io.cog import check_blocksize, north_up_steps, stamp, write_cog
from xcloud.models import CLASS_COLOURS, CLASSES, CODE_DESCRIPTIONS, FLAG_MEANINGS, FLAG_VALUES

__all__ = ["to_stac", "check_catalogue_target", "COG_MEDIA_TYPE", "ZARR_MEDIA_TYPE"]

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
#: The mask's provenance attributes that become Item properties (``xcloud_model`` ->
#: ``xcloud:model``).
_PROPERTIES = (
    "xcloud_version",
    "xcloud_model",
    "xcloud_model_weights_sha256",
    "xcloud_model_licence",
    "xcloud_fine_stage",
    "xcloud_route_threshold",
    "xcloud_sensor",
    "xcloud_level",
    "xcloud_bands",
)
_MARK = "xcloud:version"  # a Collection that has it was written by xcloud (and may be replaced)


def to_stac(
    masks: xr.Dataset | xr.DataArray,
    directory: str | os.PathLike,
    *,
    collection_id: str = "xcloud-cloud-mask",
    description: str | None = None,
    license: str = "other",
    zarr_href: str | None = None,
    href_base: str | None = None,
    overwrite: bool = False,
    blocksize: int = 512,
) -> Any:
    """Publish masks as a STAC Collection with one Item (and one COG) per time step.

    Writes ``collection.json`` and, per time step, ``<id>/<id>.json`` beside its
    ``<id>/cloud_mask.tif`` (a COG as :func:`xcloud.to_cog` writes it). Written with
    ``href_base``, ``rustac serve collection.json --load-collection-items`` (or any STAC API
    that ingests it) serves the masks back, and :func:`xcloud.open_stac` loads them with
    ``bands=["cloud_mask"]``.

    Parameters
    ----------
    masks
        A ``(time, y, x)`` ``cloud_mask`` from :func:`xcloud.mask` with a CRS (lazy is fine:
        one time step is computed at a time), or the Dataset :func:`xcloud.mask_to_zarr`
        returns.
    directory
        Folder of the catalogue: new, empty, or one this function wrote before.
    collection_id
        The Collection id; Items are ``<collection_id>_<time>``.
    description, license
        The Collection's description (default: what made the masks) and licence (SPDX id, or
        ``"other"``).
    zarr_href
        Where the mask cube lives as a Zarr store, added as the Collection's ``zarr`` asset.
    href_base
        Where the catalogue will be served from (``"https://data.example.org/masks"``,
        ``"s3://bucket/masks"``, or this directory's ``file://`` URI for a STAC API on this
        machine): every link and asset href is written absolute under it, as STAC APIs that
        ingest Items need. Default: relative hrefs (a self-contained catalogue to copy
        anywhere).
    overwrite
        Replace a catalogue this function wrote before in ``directory`` (only the files its
        Collection lists are removed). A directory holding anything else is always refused.
    blocksize
        The COGs' tile edge in pixels (a multiple of 16).

    Returns
    -------
    pystac.Collection
        The saved Collection (its Items attached).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr, rioxarray, tempfile, xcloud
    >>> m = xr.DataArray(np.zeros((1, 64, 64), "uint8"), dims=("time", "y", "x"),
    ...                  name="cloud_mask", coords={"time": pd.to_datetime(["2024-06-01"]),
    ...                  "y": 5e6 - 10 * np.arange(64), "x": 3e5 + 10 * np.arange(64)})
    >>> c = xcloud.to_stac(m.rio.write_crs("EPSG:32633"), tempfile.mkdtemp())
    >>> [it.id for it in c.get_items()], next(c.get_items()).properties["eo:cloud_cover"]
    (['xcloud-cloud-mask_20240601T000000'], 0.0)
    """
    pystac = require("pystac", "stac", "xcloud.to_stac")
    check_blocksize(blocksize)
    mask, attrs = _mask_and_attrs(masks)
    if mask.ndim != 3 or str(mask.dims[0]) not in mask.coords:
        raise DimensionError(
            f"to_stac() writes one Item per time step: the mask needs dims (time, y, x) with a "
            f"time coordinate, got dims {mask.dims}; add one with mask.expand_dims(time=[t])"
        )
    import rioxarray  # noqa: F401  (the .rio accessor)

    if mask.rio.crs is None:
        raise ParameterError(
            "the mask has no CRS, so its Items cannot be placed on Earth; set it with "
            "mask.rio.write_crs('EPSG:32633') (the CRS of the input)"
        )
    mask, steps = north_up_steps(mask, "to_stac()")
    out = Path(directory)
    old = check_catalogue_target(out, overwrite)
    if old is not None:
        _remove(out, old)
    crs, transform = mask.rio.crs, mask.rio.transform()
    sources = _sources(attrs, [t for t, _ in steps])
    items = []
    for (t, step), derived in zip(steps, sources, strict=True):
        codes = np.asarray(step.values, dtype=np.uint8)
        item_id = f"{collection_id}_{stamp(t)}"
        cog = out / item_id / "cloud_mask.tif"
        cog.parent.mkdir(parents=True, exist_ok=True)
        write_cog(codes, cog, crs, transform, blocksize)
        items.append(_item(pystac, item_id, _utc(t), codes, cog, crs, transform, attrs, derived))
    collection = _collection(pystac, collection_id, items, attrs, description, license)
    if zarr_href is not None:
        collection.add_asset(
            "zarr",
            pystac.Asset(
                str(zarr_href), title="the mask cube (Zarr v3)", media_type=ZARR_MEDIA_TYPE,
                roles=["data"],
            ),
        )  # fmt: skip
    collection.add_items(items)
    if href_base is None:
        # (a trailing "/": pystac takes a root with a dot in its name, "masks.stac", for a file
        # and would write beside it)
        collection.normalize_hrefs(out.resolve().as_posix() + "/")
        collection.make_all_asset_hrefs_relative()
        collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
        return collection
    base = str(href_base).rstrip("/")
    for item in items:
        item.assets["cloud_mask"].href = f"{base}/{item.id}/cloud_mask.tif"
    collection.normalize_hrefs(base + "/")
    collection.save(
        catalog_type=pystac.CatalogType.ABSOLUTE_PUBLISHED, dest_href=out.resolve().as_posix() + "/"
    )
    return collection


def _mask_and_attrs(masks) -> tuple[xr.DataArray, dict[str, Any]]:
    if isinstance(masks, xr.Dataset):
        if "cloud_mask" not in masks:
            raise ParameterError(
                f"to_stac() publishes a cloud_mask; the Dataset has {sorted(map(str, masks.data_vars))}. "
                "Pass the Dataset xcloud.mask_to_zarr returns, or the mask itself"
            )
        return masks["cloud_mask"], {**masks.attrs, **masks["cloud_mask"].attrs}
    if isinstance(masks, xr.DataArray):
        return masks, dict(masks.attrs)
    raise ParameterError(
        f"to_stac() publishes a cloud_mask DataArray (from xcloud.mask) or the Dataset "
        f"xcloud.mask_to_zarr returns, got {type(masks).__name__}"
    )


def check_catalogue_target(directory: str | os.PathLike, overwrite: bool) -> dict | None:
    """Refuse a ``directory`` :func:`to_stac` must not write: one that holds anything but an
    xcloud catalogue, or an xcloud catalogue when not ``overwrite``. Returns the catalogue's
    Collection JSON when there is one to replace (None if the directory is new or empty)."""
    out = Path(directory)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None
    if not out.is_dir():
        raise StoreExistsError(f"{out} is a file; to_stac() writes a catalogue into a directory")
    try:
        collection = json.loads((out / "collection.json").read_text())
        ours = isinstance(collection, dict) and _MARK in collection
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise StoreExistsError(
            f"{out} is not empty and holds no STAC catalogue written by xcloud; xcloud never "
            "writes into it: choose a new or empty directory"
        )
    if not overwrite:
        raise StoreExistsError(
            f"{out} already holds an xcloud STAC catalogue; pass overwrite=True to replace it, "
            "or choose another directory"
        )
    return collection


def _remove(out: Path, collection: Mapping[str, Any]) -> None:
    """Delete an earlier xcloud catalogue: the files its Collection lists, inside ``out``."""
    from urllib.parse import urlparse

    root = out.resolve()
    for link in collection.get("links", []):
        if link.get("rel") != "item":
            continue
        # to_stac's layout, whatever the href base: <catalogue>/<id>/<id>.json beside its COG
        item_path = root.joinpath(*Path(urlparse(str(link["href"])).path).parts[-2:]).resolve()
        if root not in item_path.parents or not item_path.is_file():
            continue  # only files inside the catalogue
        item = json.loads(item_path.read_text())
        for asset in item.get("assets", {}).values():
            asset_path = item_path.parent / Path(urlparse(str(asset["href"])).path).name
            if asset_path.is_file():
                asset_path.unlink()
        item_path.unlink()
        if not any(item_path.parent.iterdir()):
            item_path.parent.rmdir()
    (out / "collection.json").unlink()


def _utc(t) -> _dt.datetime:
    text = str(np.datetime_as_string(np.datetime64(t, "us"), unit="us"))
    return _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.timezone.utc)


def _sources(attrs: Mapping[str, Any], times: Sequence[Any]) -> list[list[str]]:
    """Per time step, the source items' URLs: each item of ``stac_item_ids`` belongs to the
    time step nearest its ``stac_item_datetimes`` entry (open_stac groups items that way)."""
    ids = list(attrs.get("stac_item_ids") or [])
    when = list(attrs.get("stac_item_datetimes") or [])
    url, coll = attrs.get("stac_url"), attrs.get("stac_collection")
    out: list[list[str]] = [[] for _ in times]
    if not ids or not url or not coll or len(when) != len(ids):
        return out
    stamps = np.array([np.datetime64(t, "s") for t in times])
    for item_id, t in zip(ids, when, strict=True):
        i = int(np.argmin(np.abs(stamps - np.datetime64(t, "s"))))
        out[i].append(f"{str(url).rstrip('/')}/collections/{coll}/items/{item_id}")
    return out


def _classes(pystac, counts: np.ndarray | None) -> list[Any]:
    """The classification extension's classes, with each code's pixel count and share when
    ``counts`` (a bincount of the codes) is given."""
    from pystac.extensions.classification import Classification

    out = []
    for value, name in zip(FLAG_VALUES, FLAG_MEANINGS.split(), strict=True):
        r, g, b, _ = CLASS_COLOURS[value]
        c = Classification.create(
            value=value, name=name, description=CODE_DESCRIPTIONS[value],
            color_hint=f"{round(255 * r):02X}{round(255 * g):02X}{round(255 * b):02X}",
            nodata=True if name == "nodata" else None,
        )  # fmt: skip
        if counts is not None:
            c.count = int(counts[value])
            c.percentage = round(100.0 * int(counts[value]) / int(counts.sum()), 4)
        out.append(c)
    return out


def _item(pystac, item_id, when, codes, cog: Path, crs, transform, attrs, derived) -> Any:
    from pystac.extensions.classification import ClassificationExtension
    from pystac.extensions.eo import EOExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    h, w = codes.shape
    west, south, east, north = (float(v) for v in array_bounds(h, w, transform))
    bbox = [
        float(v)
        for v in transform_bounds(crs, "EPSG:4326", west, south, east, north, densify_pts=21)
    ]
    geometry = {
        "type": "Polygon",
        "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]],
                         [bbox[0], bbox[3]], [bbox[0], bbox[1]]]],
    }  # fmt: skip
    props = {"xcloud:" + k.removeprefix("xcloud_"): attrs[k] for k in _PROPERTIES if k in attrs}
    item = pystac.Item(item_id, geometry, bbox, when, props)
    counts = np.bincount(codes.ravel(), minlength=256)
    valid = int(counts.sum() - counts[FLAG_VALUES[-1]])
    if valid:
        cloudy = int(counts[CLASSES["cloud"]] + counts[CLASSES["thin_cloud"]])
        EOExtension.ext(item, add_if_missing=True).cloud_cover = round(100.0 * cloudy / valid, 4)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    epsg = crs.to_epsg()
    proj.apply(
        epsg=epsg, wkt2=None if epsg else crs.to_wkt(), shape=[h, w],
        transform=[float(v) for v in list(transform)[:6]], bbox=[west, south, east, north],
    )  # fmt: skip
    asset = pystac.Asset(
        str(cog.resolve()), title="cloud mask", media_type=COG_MEDIA_TYPE, roles=["data"],
        description="0 clear, 1 cloud, 2 thin cloud, 3 cloud shadow, 255 nodata",
    )  # fmt: skip
    item.add_asset("cloud_mask", asset)
    ClassificationExtension.ext(asset, add_if_missing=True).classes = _classes(pystac, counts)
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(
            nodata=FLAG_VALUES[-1],
            data_type=DataType.UINT8,
            spatial_resolution=abs(float(transform.a)),
        )
    ]
    for href in derived:
        item.add_link(pystac.Link("derived_from", href, media_type="application/geo+json"))
    return item


def _collection(pystac, collection_id, items, attrs, description, license) -> Any:
    from pystac.extensions.classification import ClassificationExtension
    from pystac.extensions.item_assets import ItemAssetDefinition

    west = min(it.bbox[0] for it in items)
    south = min(it.bbox[1] for it in items)
    east = max(it.bbox[2] for it in items)
    north = max(it.bbox[3] for it in items)
    times = sorted(it.datetime for it in items)
    model = attrs.get("xcloud_model", "an unknown model")
    source = attrs.get("stac_collection")
    if description is None:
        description = f"Cloud masks made by xcloud with model {model!r}" + (
            f" from the STAC collection {source!r}" if source else ""
        )
    collection = pystac.Collection(
        collection_id, description,
        pystac.Extent(pystac.SpatialExtent([[west, south, east, north]]),
                      pystac.TemporalExtent([[times[0], times[-1]]])),
        license=license, keywords=["cloud mask", "xcloud"],
        extra_fields={_MARK: attrs.get("xcloud_version", _version())},
    )  # fmt: skip
    definition = ItemAssetDefinition.create(
        title="cloud mask", description=None, media_type=COG_MEDIA_TYPE, roles=["data"]
    )
    definition.set_owner(collection)
    ClassificationExtension.ext(definition, add_if_missing=True).classes = _classes(pystac, None)
    collection.item_assets = {"cloud_mask": definition}
    return collection


def _version() -> str:
    from xcloud._version import __version__

    return __version__
