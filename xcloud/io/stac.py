"""STAC search + load: a lazy, reflectance-ready datacube from a STAC API.

:func:`open_stac` searches a STAC API with pystac-client and loads the items with
``odc.stac.load``. Variables are named by their STAC ``eo:bands`` common names (``blue``,
``nir`` ...), each variable carries ``scale_factor`` / ``add_offset`` / ``nodata`` from
``raster:bands`` (or the Sentinel-2 processing baseline), and the dataset attributes carry the
platform and processing level, so :func:`xcloud.mask` needs no further arguments.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xcloud.bands import guess_sensor, s2_baseline_offset
from xcloud.errors import (
    AssetError,
    BBoxError,
    EmptySearchError,
    ParameterError,
    StacError,
    XCloudError,
    is_real,
    is_whole,
    require,
    warn,
)

__all__ = [
    "open_stac",
    "stac_items",
    "check_bbox",
    "StacError",
    "EmptySearchError",
    "BBoxError",
    "AssetError",
]

#: Where :func:`open_stac` keeps the ``pystac.Item`` objects (attrs must stay JSON for Zarr).
ITEMS_KEY = "xcloud_stac_items"
#: Where :func:`open_stac` leaves its overview reader (:func:`load_overview`), so that the
#: cascade reads COG overviews without the masking layer importing this module.
OVERVIEW_KEY = "xcloud_overview_reader"
LOAD_KEY = "xcloud_stac_load"
_ON_MISSING = ("raise", "skip")


def check_bbox(bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    """Validate a ``(west, south, east, north)`` bounding box in WGS84 degrees.

    Parameters
    ----------
    bbox
        Four numbers, longitude / latitude order (as STAC and GeoJSON use), or None.

    Returns
    -------
    tuple of float or None

    Raises
    ------
    BBoxError
        Not four numbers, latitude outside [-90, 90] (usually lat/lon swapped), or
        west > east / south > north; the message says what was expected.

    Examples
    --------
    >>> check_bbox([23.4, -15.6, 23.5, -15.5])
    (23.4, -15.6, 23.5, -15.5)
    >>> check_bbox([-15.6, 23.4, -15.5, 123.5])
    Traceback (most recent call last):
    ...
    xcloud.errors.BBoxError: bbox=[-15.6, 23.4, -15.5, 123.5]: latitude 123.5 is outside [-90, 90]; ...
    """
    if bbox is None:
        return None
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise BBoxError(
            f"bbox={bbox!r} is not four numbers; expected (west, south, east, north) in degrees, "
            "e.g. bbox=(23.4, -15.6, 23.5, -15.5)"
        ) from None
    want = "expected (west, south, east, north) in WGS84 degrees, longitude first"
    for lat in (s, n):
        if not -90.0 <= lat <= 90.0:
            hint = (
                f"; it looks like (south, west, north, east): pass bbox=({s}, {w}, {n}, {e})"
                if -90.0 <= w <= 90.0 and -90.0 <= e <= 90.0
                else "; reproject projected coordinates to EPSG:4326 first"
            )
            raise BBoxError(
                f"bbox={list(bbox)!r}: latitude {lat} is outside [-90, 90]; {want}{hint}"
            )
    for lon in (w, e):
        if not -180.0 <= lon <= 180.0:
            raise BBoxError(
                f"bbox={list(bbox)!r}: longitude {lon} is outside [-180, 180]; {want}; "
                "reproject projected coordinates to EPSG:4326 first"
            )
    if s > n:
        raise BBoxError(
            f"bbox={list(bbox)!r}: south {s} > north {n}; {want}, e.g. bbox=({w}, {n}, {e}, {s})"
        )
    if w > e:
        raise BBoxError(
            f"bbox={list(bbox)!r}: west {w} > east {e}; {want}. If the area crosses the "
            "antimeridian, split it into two searches; if the corners are swapped pass "
            f"bbox=({e}, {s}, {w}, {n})"
        )
    return (w, s, e, n)


def _retrying(what: str, url: str, fn, *, retries: int, backoff: float):
    """Call ``fn`` up to ``retries + 1`` times on connection / HTTP errors, then StacError."""
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            return fn()
        except (XCloudError, KeyboardInterrupt):
            raise
        except Exception as e:  # requests / urllib3 / pystac-client APIError: all transient
            last = e
            if attempt < retries:
                time.sleep(backoff * 2**attempt)
    status = getattr(last, "status_code", None)
    detail = f"HTTP {status} " if status else ""
    raise StacError(
        f"{what} at the STAC API {url!r} failed after {retries + 1} attempts: "
        f"{detail}{type(last).__name__}: {str(last)[:300]}. Check that the URL is right and the server is up "
        "(open it in a browser), or raise retries=; nothing was written"
    ) from last


def _asset_bands(asset) -> list[dict]:
    extra = asset.extra_fields
    return list(extra.get("eo:bands") or extra.get("bands") or [])


def _band_table(items) -> dict[str, str]:
    """``{asset_key: common_name}`` of the data assets with one eo:bands common name."""
    table: dict[str, str] = {}
    for item in items:
        for key, asset in item.assets.items():
            eo = _asset_bands(asset)
            if len(eo) == 1 and (eo[0].get("common_name") or eo[0].get("eo:common_name")):
                table.setdefault(key, eo[0].get("common_name") or eo[0]["eo:common_name"])
    return table


def _choose_assets(table: Mapping[str, str], bands: Sequence[str] | None, collection: str, keys=()):
    """``{asset_key: variable_name}`` for the requested bands: common names, asset keys with
    a common name, or the keys of other assets (``keys``; e.g. the ``cloud_mask`` of masks
    written by :func:`xcloud.to_stac`), loaded under their key."""
    if bands is None:
        if not table:
            raise AssetError(
                f"the items of collection {collection!r} have no assets with eo:bands common "
                "names; pass bands=['B02', ...] naming the asset keys to load"
            )
        return {k: v for k, v in table.items()}
    by_common = {v: k for k, v in table.items()}
    chosen: dict[str, str] = {}
    for b in bands:
        if b in by_common:
            chosen[by_common[b]] = b
        elif b in table:
            chosen[b] = table[b]
        elif b in keys:
            chosen[b] = b
        else:
            raise AssetError(
                f"band {b!r} is neither an eo:bands common name {sorted(by_common)} nor an asset "
                f"key {sorted(set(table) | set(keys))} of collection {collection!r}; pass one "
                "of those"
            )
    return chosen


#: URL schemes an asset href of a remote catalogue may use.
REMOTE_SCHEMES = ("http", "https", "s3", "gs", "az", "abfs")


def is_local_catalogue(url: str) -> bool:
    """Whether a STAC API lives on this machine (a loopback host, or a local path).

    >>> is_local_catalogue("http://127.0.0.1:8080"), is_local_catalogue("https://earth-search.aws.element84.com/v1")
    (True, False)
    """
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return True
    host = (parsed.hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _check_hrefs(items, chosen, url: str, allow_local: bool | None) -> None:
    """Refuse asset hrefs that read local files (or GDAL virtual paths) unless allowed: a
    remote catalogue must not steer the client to this machine's files."""
    from urllib.parse import urlparse

    local_ok = is_local_catalogue(url) if allow_local is None else allow_local
    for it in items:
        for key in chosen:
            asset = it.assets.get(key)
            if asset is None:
                continue  # _problem reports it
            href = asset.get_absolute_href() or asset.href
            scheme = urlparse(href).scheme.lower()
            local = scheme in ("", "file") or href.startswith("/vsi") or len(scheme) == 1
            if local and not local_ok:
                why = (
                    "allow_local=False"
                    if allow_local is False
                    else f"the catalogue {url!r} is not on this machine"
                )
                raise AssetError(
                    f"item {it.id!r} asset {key!r} points at a local path ({href!r}) and {why}; "
                    "xcloud does not let a catalogue make it read local files. Pass "
                    "allow_local=True if you trust this catalogue"
                )
            if not local and scheme not in REMOTE_SCHEMES:
                raise AssetError(
                    f"item {it.id!r} asset {key!r} has href {href!r} with scheme {scheme!r}; "
                    f"expected one of {list(REMOTE_SCHEMES)} (or a local file from a local "
                    "catalogue)"
                )


def _problem(item, key: str, check: bool) -> str | None:
    asset = item.assets.get(key)
    if asset is None:
        return f"item {item.id!r} has no asset {key!r} (assets: {sorted(item.assets)})"
    if not check:
        return None
    import rasterio

    href = asset.get_absolute_href() or asset.href
    try:
        with rasterio.Env(), rasterio.open(href.removeprefix("file://")):
            pass
    except Exception as e:
        return f"item {item.id!r} asset {key!r} ({href}) cannot be read: {e}"
    return None


def _raster_band(item, key: str) -> dict:
    asset = item.assets[key]
    rb = asset.extra_fields.get("raster:bands") or []
    if rb:
        return dict(rb[0])
    # STAC 1.1 puts raster fields on the asset (or in ``bands``)
    return {k.removeprefix("raster:"): v for k, v in asset.extra_fields.items()}


def _scaling(item, key: str, family: str | None) -> tuple[float | None, float | None, Any]:
    rb = _raster_band(item, key)
    scale = rb.get("scale")
    offset = rb.get("offset")
    nodata = rb.get("nodata", item.assets[key].extra_fields.get("nodata"))
    if family == "sentinel-2" and offset is None:
        offset = s2_baseline_offset(item.properties)
        scale = 1e-4 if scale is None else scale
    return scale, offset, nodata


def _props(items, key: str) -> list[str]:
    vals: list[str] = []
    for it in items:
        v = it.properties.get(key)
        for x in v if isinstance(v, (list, tuple)) else [v]:
            if x is not None and str(x) not in vals:
                vals.append(str(x))
    return vals


def _level(items, collection: str) -> str | None:
    levels = _props(items, "processing:level")
    if levels:
        return levels[0]
    c = collection.lower()
    for tag in ("l2a", "l1c", "l2", "l1"):
        if tag in c.replace("-", "").replace("_", ""):
            return tag.upper()
    return None


def _check_load_arguments(resolution, chunks, retries, backoff) -> None:
    """Refuse out-of-range loading arguments before any request is made."""
    if resolution is not None and not (is_real(resolution, finite=True) and resolution > 0):
        raise ParameterError(
            f"resolution={resolution!r}: expected a pixel size > 0 in the units of crs (metres "
            "for UTM, e.g. 10 for Sentinel-2's visible bands), or None for the items' own"
        )
    if chunks is not None and (
        not isinstance(chunks, Mapping)
        or not all(is_whole(v) and (v >= 1 or v == -1) for v in chunks.values())
    ):
        raise ParameterError(
            f"chunks={chunks!r}: expected {{dimension: size}} with whole sizes >= 1 (or -1 for "
            "the whole dimension), e.g. {'x': 2048, 'y': 2048}"
        )
    if not is_whole(retries, 0):
        raise ParameterError(f"retries={retries!r}: expected a whole number >= 0")
    if not (is_real(backoff, finite=True) and backoff >= 0):
        raise ParameterError(f"backoff={backoff!r}: expected seconds >= 0")


def open_stac(
    url: str,
    collection: str,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    filter: Mapping[str, Any] | str | None = None,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    crs: str | None = None,
    chunks: Mapping[str, int] | None = None,
    groupby: str | None = "solar_day",
    on_missing: str = "raise",
    check_assets: bool = True,
    retries: int = 3,
    backoff: float = 0.5,
    allow_local: bool | None = None,
    load_kw: Mapping[str, Any] | None = None,
    **search_kw: Any,
) -> xr.Dataset:
    """Search a STAC API and load the items as a lazy, reflectance-ready datacube.

    Parameters
    ----------
    url
        The STAC API root, e.g. ``"https://earth-search.aws.element84.com/v1"``.
    collection
        Collection id, e.g. ``"sentinel-2-l2a"``.
    bbox
        ``(west, south, east, north)`` in WGS84 degrees; checked by :func:`check_bbox`.
    datetime
        A STAC datetime or range, ``"2024-06-01/2024-06-30"``.
    filter
        CQL2-JSON (a dict or its JSON text), e.g. ``{"op": "<", "args": [{"property":
        "eo:cloud_cover"}, 50]}``; needs a server with the filter extension.
    bands
        Bands to load: eo:bands common names (``"nir"``) or asset keys (``"B08"``). Default:
        every asset with one eo:bands common name. Variables are named by common name.
    resolution, crs
        Output pixel size and CRS; default: the items' own.
    chunks
        Dask chunks, default ``{"time": 1, "y": 1024, "x": 1024}``.
    groupby
        How items merge into time steps (``"solar_day"``: tiles of one overpass become one
        scene); see ``odc.stac.load``.
    on_missing
        ``"raise"`` (default) or ``"skip"`` items whose chosen assets are missing or unreadable;
        skipped item ids go to ``ds.attrs["xcloud_skipped_items"]`` and a warning.
    check_assets
        Open every chosen asset's header once to find unreadable ones before loading.
    retries, backoff
        Connection / HTTP errors are retried ``retries`` times, waiting ``backoff * 2**i`` s.
    allow_local
        Whether asset hrefs may name local files (``file://`` or a plain path) or GDAL's own
        virtual paths (``/vsi...``). None (default): only when the catalogue itself is local
        (a loopback address), so a remote catalogue cannot make xcloud read this machine's
        files; ``True`` to trust a remote one that serves local paths, ``False`` never.
        Remote hrefs must be ``http(s)``, ``s3``, ``gs`` or ``az``.
    load_kw
        More keyword arguments for ``odc.stac.load``.
    **search_kw
        More keyword arguments for ``pystac_client.Client.search`` (``query=``, ``max_items=``).

    Returns
    -------
    xarray.Dataset
        ``(time, y, x)`` variables named by common name, with ``scale_factor``, ``add_offset``
        and ``nodata`` attrs; ``ds.attrs`` has ``platform``, ``processing:level``,
        ``xcloud_sensor``, ``stac_url``, ``stac_collection``, ``stac_item_ids`` and
        ``stac_item_datetimes`` (one ISO time per item, for :func:`xcloud.to_stac`). The
        ``pystac.Item`` objects are in ``ds.encoding["xcloud_stac_items"]`` (see
        :func:`stac_items`).

    Raises
    ------
    BBoxError, StacError, EmptySearchError, AssetError

    Examples
    --------
    >>> open_stac("http://127.0.0.1:9", "sentinel-2-l2a", bbox=(10, 50, 9, 51))
    Traceback (most recent call last):
    ...
    xcloud.errors.BBoxError: bbox=[10, 50, 9, 51]: west 10.0 > east 9.0; ...
    """
    bbox = check_bbox(bbox)
    if allow_local not in (None, True, False):
        raise ParameterError(
            f"allow_local={allow_local!r}: expected None (local files only from a local "
            "catalogue), True or False"
        )
    if on_missing not in _ON_MISSING:
        raise ParameterError(f"on_missing={on_missing!r} is not one of {list(_ON_MISSING)}")
    _check_load_arguments(resolution, chunks, retries, backoff)
    odc_stac = require("odc.stac", "stac", "xcloud.open_stac")
    filter = _cql2(filter)
    items = _search(url, collection, bbox, datetime, filter, search_kw, retries, backoff)
    keys = {k for it in items for k in it.assets}
    chosen = _choose_assets(_band_table(items), bands, collection, keys)
    _check_hrefs(items, chosen, url, allow_local)
    items, skipped = _readable(items, chosen, check_assets, on_missing)

    attrs: dict[str, Any] = {}
    for key in ("platform", "constellation", "instruments"):
        vals = _props(items, key)
        if vals:
            attrs[key] = vals[0] if len(vals) == 1 else vals
    level = _level(items, collection)
    if level:
        attrs["processing:level"] = level
    sensor = guess_sensor(list(chosen.values()), attrs)

    kw: dict[str, Any] = {
        "bands": list(chosen),
        "chunks": dict(chunks) if chunks else {"time": 1, "y": 1024, "x": 1024},
        "groupby": groupby,
    }
    kw.update({k: v for k, v in (("bbox", bbox), ("resolution", resolution), ("crs", crs))
               if v is not None})  # fmt: skip
    kw.update(load_kw or {})
    ds = odc_stac.load(items, **kw)
    ds = ds.rename({k: v for k, v in chosen.items() if k != v})
    first_of = _first_item_per_time(items, ds["time"].values, groupby)
    family = sensor.family if sensor is not None else None
    for key, var in chosen.items():
        arr = _scaled(ds[var], [_scaling(it, key, family) for it in first_of])
        arr.attrs["stac_asset"] = key
        ds[var] = arr

    ds.attrs.update(attrs)
    ds.attrs.update(
        {
            "xcloud_sensor": sensor.name if sensor is not None else "unknown",
            "stac_url": url,
            "stac_collection": collection,
            "stac_item_ids": [it.id for it in items],
            "stac_item_datetimes": [_iso(it) for it in items],
        }
    )
    baselines = _props(items, "s2:processing_baseline")
    if len(baselines) == 1:
        ds.attrs["s2:processing_baseline"] = baselines[0]
    if skipped:
        ds.attrs["xcloud_skipped_items"] = skipped
    ds.encoding[ITEMS_KEY] = items
    ds.encoding[OVERVIEW_KEY] = load_overview
    ds.encoding[LOAD_KEY] = {"groupby": groupby, "load_kw": dict(load_kw or {})}
    return ds


def _cql2(filter: Mapping[str, Any] | str | None) -> Mapping[str, Any] | None:
    """``filter=`` as CQL2-JSON, or a clear error."""
    if not isinstance(filter, str):
        return filter
    import json

    try:
        return json.loads(filter)
    except ValueError as e:
        raise ParameterError(
            f"filter={filter!r} is not CQL2-JSON ({e}); pass e.g. "
            '\'{"op": "<", "args": [{"property": "eo:cloud_cover"}, 50]}\''
        ) from None


def _search(url, collection, bbox, datetime, filter, search_kw, retries, backoff) -> list:
    """The items of the search, in time order (then id), or :class:`EmptySearchError`."""
    pystac_client = require("pystac_client", "stac", "xcloud.open_stac")

    def search():
        client = pystac_client.Client.open(url)
        kw = dict(search_kw)
        if filter is not None:
            kw.update(filter=filter, filter_lang="cql2-json")
        s = client.search(collections=[collection], bbox=bbox, datetime=datetime, **kw)
        return list(s.items())

    items = _retrying("searching", url, search, retries=retries, backoff=backoff)
    if not items:
        raise EmptySearchError(
            f"the STAC search of {url!r} found no items in collection {collection!r} for "
            f"bbox={bbox!r}, datetime={datetime!r}"
            + (f", filter={filter!r}" if filter is not None else "")
            + "; widen the area or dates, check the collection id, and that the bbox is "
            "(west, south, east, north) in degrees"
        )
    items.sort(key=lambda it: (it.datetime or it.properties.get("start_datetime") or "", it.id))
    return items


def _readable(items, chosen, check_assets: bool, on_missing: str) -> tuple[list, list[str]]:
    """The items whose chosen assets exist (and open), and the ids of those skipped: missing
    or unreadable assets raise :class:`AssetError`, or with ``on_missing="skip"`` warn."""
    problems: dict[str, list[str]] = {}
    for it in items:
        for key in chosen:
            p = _problem(it, key, check_assets)
            if p:
                problems.setdefault(it.id, []).append(p)
    if not problems:
        return items, []
    detail = "; ".join(p for ps in problems.values() for p in ps)
    if on_missing == "raise":
        raise AssetError(
            f"{len(problems)} of {len(items)} items have missing or unreadable assets: "
            f"{detail}. Pass on_missing='skip' to leave them out"
        )
    warn(f"open_stac skipped {len(problems)} of {len(items)} items: {detail}")
    kept = [it for it in items if it.id not in problems]
    if not kept:
        raise AssetError(f"every item was skipped: {detail}")
    return kept, sorted(problems)


def _scaled(arr: xr.DataArray, per_t: list[tuple[Any, Any, Any]]) -> xr.DataArray:
    """One variable with its scaling: ``scale_factor`` / ``add_offset`` / ``nodata`` attrs
    when every time step's first item agrees, else float reflectance (NaN for nodata)."""
    scales = {p[0] for p in per_t}
    offsets = {p[1] for p in per_t}
    nodata = per_t[0][2]
    if len(scales) == 1 and len(offsets) == 1:
        s, o = per_t[0][0], per_t[0][1]
        if s is not None:
            arr.attrs["scale_factor"] = float(s)
        if o is not None:
            arr.attrs["add_offset"] = float(o)
    else:
        # a series across a processing-baseline change: one offset per time step, so
        # convert to float reflectance here (NaN for nodata) rather than lie in attrs
        sc = xr.DataArray(
            np.array([1.0 if p[0] is None else p[0] for p in per_t], np.float32), dims="time"
        )
        of = xr.DataArray(
            np.array([0.0 if p[1] is None else p[1] for p in per_t], np.float32), dims="time"
        )
        refl = arr.astype(np.float32) * sc + of
        if nodata is not None:
            refl = refl.where(arr != nodata)
        refl.attrs = {"scale_factor": 1.0, "add_offset": 0.0}
        arr, nodata = refl, None
    if nodata is not None:
        arr.attrs["nodata"] = nodata
    return arr


def load_overview(ds: xr.Dataset, variables: Sequence[str], factor: int) -> xr.Dataset:
    """Read the overview of an :func:`open_stac` cube from the COGs themselves.

    The grid is ``ds``'s grid with ``factor`` times the pixel size and the same origin, so
    overview pixel ``(i, j)`` covers full-resolution pixels ``[f i, f i + f)``; GDAL reads it
    from the COG overview level nearest that resolution (averaging), which is a small fraction
    of the full-resolution bytes. The cascade routes on it without reading the full cube.

    Examples
    --------
    >>> load_overview(xr.Dataset(), ["red"], 4)
    Traceback (most recent call last):
    ...
    xcloud.errors.StacError: the Dataset was not loaded by xcloud.open_stac (no STAC items in ds.encoding); pass overview= explicitly
    """
    items = ds.encoding.get(ITEMS_KEY)
    if not items:
        raise StacError(
            "the Dataset was not loaded by xcloud.open_stac (no STAC items in ds.encoding); "
            "pass overview= explicitly"
        )
    odc_stac = require("odc.stac", "stac", "xcloud.io.stac.load_overview")
    opts = ds.encoding.get(LOAD_KEY, {})
    keys = {str(ds[v].attrs.get("stac_asset", v)): v for v in variables}
    geobox = ds.odc.geobox.zoom_out(factor)
    kw = dict(opts.get("load_kw", {}))
    kw.update(
        bands=list(keys),
        geobox=geobox,
        groupby=opts.get("groupby", "solar_day"),
        chunks={},
        resampling="average",
    )
    for k in ("bbox", "resolution", "crs"):
        kw.pop(k, None)
    ov = odc_stac.load(items, **kw).rename({k: v for k, v in keys.items() if k != v})
    if "time" in ds.dims:
        ov = ov.sel(time=ds["time"].values, method="nearest")
    for v in variables:
        ov[v].attrs = dict(ds[v].attrs)
    ov.attrs = dict(ds.attrs)
    return ov


def _iso(item) -> str:
    """An item's (start) time as ISO 8601 UTC, naive: what to_stac matches to time steps."""
    t = item.datetime or item.common_metadata.start_datetime
    return str(np.datetime_as_string(np.datetime64(t.replace(tzinfo=None), "s"), unit="s"))


def _first_item_per_time(items, times: np.ndarray, groupby: str | None) -> list:
    """For each time step, the item nearest in time (the first of its group)."""
    stamps = np.array([np.datetime64(it.datetime.replace(tzinfo=None), "ns") for it in items])
    out = []
    for t in times:
        gap = np.abs(stamps - np.datetime64(t, "ns"))
        out.append(items[int(np.argmin(gap))])
    return out


def stac_items(ds: xr.Dataset) -> list:
    """The ``pystac.Item`` objects :func:`open_stac` loaded ``ds`` from ([] if unknown).

    Examples
    --------
    >>> import xarray as xr
    >>> stac_items(xr.Dataset())
    []
    """
    return list(ds.encoding.get(ITEMS_KEY, []))
