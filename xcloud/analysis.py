"""From a mask to analysis-ready data: usable-pixel masks with a safety buffer.

The xarray adapter over :mod:`xcloud.inference.buffer`: it reads the buffer distance in metres
(or pixels), converts it with the mask's own resolution, and keeps the mask's coordinates, CRS
and laziness.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xcloud.errors import ParameterError, did_you_mean, is_real, is_whole
from xcloud.inference.buffer import usable_array
from xcloud.models import CLASSES, NODATA

__all__ = ["usable", "where_usable", "composite", "DEFAULT_UNUSABLE"]

#: Classes a usable pixel keeps its distance from, by default: every class but clear.
DEFAULT_UNUSABLE = tuple(c for c in CLASSES if c != "clear")
#: Metres per unit ("px" converts with the mask's pixel size instead).
_UNITS: dict[str, float] = {"m": 1.0, "km": 1000.0, "px": 0.0}


def parse_buffer(buffer: Any) -> tuple[float, str]:
    """``(value, unit)`` from ``"60 m"``, ``"0.1km"``, ``"3 px"`` or a number of metres."""
    if is_real(buffer, finite=True):
        value, unit = float(buffer), "m"
    elif isinstance(buffer, str):
        m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([A-Za-z]*)\s*", buffer)
        if m is None or not is_real(_float(m.group(1)), finite=True):
            raise ParameterError(
                f"buffer={buffer!r}: expected a distance such as '60 m', '0.1 km' or '3 px', "
                "or a number of metres"
            )
        value, unit = _float(m.group(1)), (m.group(2) or "m").lower()
        if unit not in _UNITS:
            raise ParameterError(
                f"buffer={buffer!r}: unknown unit {unit!r}; use one of {list(_UNITS)}"
                + did_you_mean(unit, list(_UNITS))
            )
    else:
        raise ParameterError(
            f"buffer={buffer!r}: expected a distance such as '60 m' or '3 px', or a number of "
            "metres"
        )
    if value < 0:
        raise ParameterError(f"buffer={buffer!r}: a distance cannot be negative; use 0 for none")
    return value, unit


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _pixel_size(mask: xr.DataArray, ydim: str, xdim: str) -> float:
    """The mask's pixel size in metres, from its x / y coordinates (projected CRS only)."""
    crs = None
    try:
        import rioxarray  # noqa: F401

        crs = mask.rio.crs
    except Exception:
        crs = None
    if (crs is not None and crs.is_geographic) or ydim in ("lat", "latitude"):
        raise ParameterError(
            "buffer in metres on unprojected data (latitude / longitude): pixel sizes vary "
            "with latitude; give it in pixels (buffer='3 px') or reproject the mask"
        )
    sizes = []
    for dim in (ydim, xdim):
        c = mask.coords.get(dim)
        if c is None or c.ndim != 1 or c.size < 2:
            raise ParameterError(
                f"buffer in metres needs the mask's {dim!r} coordinate to know its pixel size; "
                "give the buffer in pixels (buffer='3 px') or assign the coordinates"
            )
        sizes.append(abs(float(c.values[1] - c.values[0])))
    return max(sizes)


def usable(
    mask: xr.DataArray,
    *,
    buffer: float | str = "60 m",
    classes: Sequence[str] = DEFAULT_UNUSABLE,
    min_size: int = 1,
) -> xr.DataArray:
    """Pixels safe to use: not nodata, and no pixel of ``classes`` within ``buffer``.

    Parameters
    ----------
    mask
        A ``cloud_mask`` from :func:`xcloud.mask` (numpy or dask; ``(..., y, x)``).
    buffer
        Safety distance around each unusable pixel: ``"60 m"``, ``"0.1 km"``, ``"2 px"``, or a
        number of metres. Metres are converted with the mask's pixel size (rounded up to whole
        pixels); unprojected (latitude / longitude) masks take pixels only.
    classes
        Class names that make a pixel unusable and are buffered (default cloud, thin cloud and
        cloud shadow; e.g. ``("cloud",)`` to keep thin cloud and shadow).
    min_size
        Remove unusable features smaller than this (a ``min_size`` x ``min_size`` square does
        not fit in them) before buffering: specks count as noise and as usable. 1: keep all.

    Returns
    -------
    xarray.DataArray
        ``usable``, boolean, lazy for a lazy mask, with the mask's coordinates and CRS and the
        parameters in its attributes. The same for any chunking (tested).

    Examples
    --------
    >>> import numpy as np, xarray as xr, xcloud
    >>> m = xr.DataArray(np.zeros((9, 9), "uint8"), dims=("y", "x"),
    ...                  coords={"y": 10.0 * np.arange(9)[::-1], "x": 10.0 * np.arange(9)})
    >>> m[4, 4] = 1  # one cloud pixel
    >>> u = xcloud.usable(m, buffer="20 m")
    >>> int((~u).sum()), u.attrs["xcloud_buffer_px"]
    (13, 2)
    """
    if not isinstance(mask, xr.DataArray):
        raise ParameterError(
            f"usable() takes a cloud_mask DataArray (from xcloud.mask), got {type(mask).__name__}"
        )
    names = [classes] if isinstance(classes, str) else list(classes)
    unknown = [c for c in names if c not in CLASSES]
    if unknown or not names:
        hint = did_you_mean(str(unknown[0]), list(CLASSES)) if unknown else ""
        raise ParameterError(
            f"classes={classes!r}: expected class names among {list(CLASSES)}" + hint
        )
    if not is_whole(min_size, 1):
        raise ParameterError(
            f"min_size={min_size!r}: expected a whole number of pixels >= 1 (1 keeps every feature)"
        )
    ydim, xdim = (str(d) for d in mask.dims[-2:])
    value, unit = parse_buffer(buffer)
    if unit == "px":
        radius = value
        size_m = None
    else:
        size_m = _pixel_size(mask, ydim, xdim)
        radius = value * _UNITS[unit] / size_m
    px = int(math.ceil(radius - 1e-9))
    data = usable_array(
        mask.data, bad=tuple(CLASSES[c] for c in names), nodata=NODATA, radius=px,
        min_size=int(min_size),
    )  # fmt: skip
    out = xr.DataArray(data, dims=mask.dims, coords=mask.coords, name="usable")
    out.attrs = {
        "long_name": "usable pixel: not nodata, no unusable class within the buffer",
        "xcloud_buffer": f"{value:g} {unit}",
        "xcloud_buffer_px": px,
        "xcloud_unusable_classes": " ".join(names),
        "xcloud_min_size_px": int(min_size),
        **{
            k: v
            for k, v in mask.attrs.items()
            if k.startswith("xcloud_") and k != "xcloud_complete"
        },
    }
    if size_m is not None:
        out.attrs["xcloud_pixel_size_m"] = size_m
    return out


def where_usable(obj: xr.Dataset | xr.DataArray, usable_mask: xr.DataArray):
    """``obj`` with every variable set to NaN where ``usable_mask`` is False (lazy, attributes
    kept): the reflectance a composite or an index should see.

    Examples
    --------
    >>> import numpy as np, xarray as xr, xcloud
    >>> ds = xr.Dataset({"red": (("y", "x"), np.ones((2, 2)))})
    >>> ok = xr.DataArray([[True, False], [True, True]], dims=("y", "x"))
    >>> xcloud.where_usable(ds, ok)["red"].values.tolist()
    [[1.0, nan], [1.0, 1.0]]
    """
    if not isinstance(usable_mask, xr.DataArray) or usable_mask.dtype != bool:
        raise ParameterError(
            "where_usable() takes the boolean cube from xcloud.usable(mask) (or "
            "mask.cloud.usable()), got "
            f"{type(usable_mask).__name__} of {getattr(usable_mask, 'dtype', '?')}"
        )
    missing = [d for d in usable_mask.dims if d not in obj.dims]
    if missing:
        raise ParameterError(
            f"the usable mask has dims {usable_mask.dims}, the data lacks {missing}; mask the "
            "same cube the data comes from"
        )
    return obj.where(usable_mask)


#: Bytes of one variable's (time, y, x) block that :func:`composite` aims at: it holds every
#: time step of a spatial tile at once (a median needs them all), so long series get smaller
#: tiles and memory stays bounded whatever the series' length.
COMPOSITE_BLOCK_BYTES = 16 * 2**20
_METHODS = ("median", "mean")


def composite(
    ds: xr.Dataset,
    usable_mask: xr.DataArray,
    *,
    dim: str = "time",
    method: str = "median",
) -> xr.Dataset:
    """A cloud-free composite over ``dim``: per pixel, the median (or mean) of the usable
    observations of every variable, and ``count``, how many went into it.

    Lazy for lazy input; memory-bounded on a long series (each block holds all time steps of a
    spatial tile sized to :data:`COMPOSITE_BLOCK_BYTES`). Pixels with no usable observation are
    NaN with ``count`` 0. Integer variables come out as float32.

    Examples
    --------
    >>> import numpy as np, xarray as xr, xcloud
    >>> ds = xr.Dataset({"red": (("time", "y", "x"), np.array([1.0, 5.0, 3.0])[:, None, None]
    ...                          * np.ones((3, 2, 2)))})
    >>> ok = xr.DataArray(np.array([True, False, True])[:, None, None] * np.ones((3, 2, 2), bool),
    ...                   dims=("time", "y", "x"))
    >>> out = xcloud.composite(ds, ok)
    >>> float(out["red"][0, 0]), int(out["count"][0, 0])
    (2.0, 2)
    """
    if method not in _METHODS:
        raise ParameterError(
            f"method={method!r}: expected one of {list(_METHODS)}" + did_you_mean(method, _METHODS)
        )
    if not isinstance(ds, xr.Dataset):
        raise ParameterError(f"composite() takes a Dataset of bands, got {type(ds).__name__}")
    if dim not in ds.dims or dim not in usable_mask.dims:
        raise ParameterError(
            f"dim={dim!r}: both the data (dims {tuple(ds.dims)}) and the usable mask (dims "
            f"{usable_mask.dims}) need it; pass the dimension to composite over"
        )
    data = ds.map(lambda v: v.astype("float32") if not np.issubdtype(v.dtype, np.floating) else v)
    masked = where_usable(data, usable_mask)
    if any(v.chunks is not None for v in masked.data_vars.values()):
        ydim, xdim = _yx(usable_mask, dim)
        steps = masked.sizes[dim]
        side = max(16, int(math.sqrt(COMPOSITE_BLOCK_BYTES / (4 * steps))))
        masked = masked.chunk({dim: -1, ydim: min(side, masked.sizes[ydim]),
                               xdim: min(side, masked.sizes[xdim])})  # fmt: skip
    reduce = _nanmedian if method == "median" else _nanmean
    out = xr.apply_ufunc(
        reduce, masked, input_core_dims=[[dim]], dask="parallelized",
        output_dtypes=[np.float32], keep_attrs=True,
    )  # fmt: skip
    out["count"] = usable_mask.sum(dim).astype("int32")
    out["count"].attrs = {"long_name": f"usable observations along {dim} in the {method}"}
    out.attrs.update({"xcloud_composite": method, "xcloud_composite_dim": dim, **usable_mask.attrs})
    out.attrs.pop("long_name", None)
    return out


def _nanmedian(a: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN; NaN where all are (without numpy's warning)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=-1).astype(np.float32, copy=False)


def _nanmean(a: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=-1).astype(np.float32, copy=False)


def _yx(usable_mask: xr.DataArray, dim: str) -> tuple[str, str]:
    spatial = [str(d) for d in usable_mask.dims if d != dim]
    return spatial[-2], spatial[-1]
