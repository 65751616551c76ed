"""Reading reflectance from xarray: band variables, scaling, nodata, one float cube.

What :func:`xcloud.mask` and :mod:`xcloud.plot` share: a Dataset (one variable per band, as
odc-stac returns) or a DataArray with a ``band`` dimension (as stackstac returns) becomes its
band candidates, they are recognised as bands (:mod:`xcloud.bands`), and each band becomes
lazy float32 reflectance with NaN for nodata, scaled by its attributes or the sensor's default.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xcloud.bands import (
    ResolvedBand,
    Sensor,
    get_sensor,
    guess_sensor,
    reflectance_scaling,
    resolve_bands,
)
from xcloud.errors import DataTypeError, DimensionError

__all__ = [
    "SPATIAL_DIMS",
    "BAND_DIMS",
    "spatial_dims",
    "band_arrays",
    "resolve_variables",
    "band_reflectance",
    "reflectance_cube",
    "scaling_note",
]

#: Accepted names of the (y, x) dimensions, in order of preference.
SPATIAL_DIMS: tuple[tuple[str, str], ...] = (("y", "x"), ("latitude", "longitude"), ("lat", "lon"))
BAND_DIMS = ("band", "bands", "wavelength")


def spatial_dims(dims: Sequence[Hashable]) -> tuple[str, str]:
    for yx in SPATIAL_DIMS:
        if yx[0] in dims and yx[1] in dims:
            return yx
    raise DimensionError(
        f"cannot find the spatial dimensions: the data has dims {tuple(dims)}, expected one of "
        f"{[f'({a}, {b})' for a, b in SPATIAL_DIMS]}; rename them, e.g. "
        "ds.rename({'rows': 'y', 'cols': 'x'})"
    )


def band_arrays(obj: xr.Dataset | xr.DataArray) -> dict[str, xr.DataArray]:
    """One DataArray per band candidate, keyed by variable / band-coordinate name."""
    if isinstance(obj, xr.Dataset):
        if not obj.data_vars:
            raise DimensionError(
                "the Dataset has no data variables; expected one variable per band"
            )
        return {str(k): v for k, v in obj.data_vars.items()}
    if isinstance(obj, xr.DataArray):
        bdim = next((d for d in BAND_DIMS if d in obj.dims), None)
        if bdim is None:
            raise DimensionError(
                f"the DataArray has dims {obj.dims} and no band dimension (one of {BAND_DIMS}); "
                "pass a Dataset with one variable per band, or a DataArray with a 'band' "
                "dimension whose coordinate names the bands (as stackstac returns)"
            )
        if bdim not in obj.coords:
            raise DimensionError(
                f"the DataArray's {bdim!r} dimension has no coordinate naming the bands; assign "
                f"one, e.g. arr.assign_coords({bdim}=['B02', 'B03', 'B04', 'B08'])"
            )
        names = [str(v) for v in obj[bdim].values]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DimensionError(
                f"the DataArray's {bdim!r} coordinate names {repeated} more than once "
                f"({names}); each band must appear once: drop the duplicates, e.g. "
                f"arr.drop_duplicates({bdim!r}), or rename them"
            )
        # drop band-dependent coords (stackstac's title, common_name, ...)
        band_coords = [c for c in obj.coords if bdim in obj[c].dims]
        base = obj.drop_vars(band_coords)
        out = {n: base.isel({bdim: i}) for i, n in enumerate(names)}
        for v in out.values():
            v.attrs = {**obj.attrs, **v.attrs}
        return out
    raise DataTypeError(f"expected an xarray Dataset or DataArray, got {type(obj).__name__}")


def resolve_variables(
    obj: xr.Dataset | xr.DataArray,
    *,
    sensor: str | None = None,
    bands: Mapping[str, str] | None = None,
    wavelengths: Mapping[str, tuple[float, float, float]] | None = None,
) -> tuple[dict[str, xr.DataArray], dict[str, Any], Sensor | None, list[ResolvedBand]]:
    """The band candidates of ``obj`` (one DataArray per variable or band coordinate), its
    attrs, its sensor (``sensor=`` or guessed) and the variables recognised as bands.

    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({b: (("y", "x"), np.zeros((2, 2))) for b in ["B04", "B03", "B02"]},
    ...                 attrs={"platform": "sentinel-2a"})
    >>> arrays, attrs, sensor, resolved = resolve_variables(ds)
    >>> [(r.var, r.name) for r in resolved]
    [('B04', 'red'), ('B03', 'green'), ('B02', 'blue')]
    """
    arrays = band_arrays(obj)
    variables = list(arrays)
    attrs = dict(obj.attrs)
    sensor_obj = get_sensor(sensor) if sensor is not None else guess_sensor(variables, attrs)
    resolved = resolve_bands(
        variables, sensor=sensor_obj, bands=bands, wavelengths=wavelengths, attrs=attrs
    )
    return arrays, attrs, sensor_obj, resolved


def _nodata_value(arr: xr.DataArray, nodata: float | Mapping[str, float] | None, var: str):
    if isinstance(nodata, Mapping):
        if var in nodata:
            return nodata[var]
        nodata = None
    if nodata is not None:
        return nodata
    for key in ("nodata", "_FillValue", "nodatavals"):
        v = arr.attrs.get(key, arr.encoding.get(key) if key == "_FillValue" else None)
        if v is not None:
            if isinstance(v, (tuple, list)):
                v = v[0]
            return v
    return None


def band_reflectance(
    arr: xr.DataArray,
    *,
    var: str,
    scale,
    offset,
    nodata,
    sensor: Sensor | None,
    attrs: Mapping[str, Any],
):
    """Lazy float32 reflectance of one band, NaN where nodata."""
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise DataTypeError(
            f"variable {var!r} has dtype {arr.dtype}; expected integer digital numbers or float "
            "reflectance. Convert it, e.g. ds[var].astype('float32')"
        )
    s = scale.get(var) if isinstance(scale, Mapping) else scale
    o = offset.get(var) if isinstance(offset, Mapping) else offset
    merged = {**attrs, **arr.attrs}
    sc, off = reflectance_scaling(arr.dtype, merged, scale=s, offset=o, sensor=sensor, band=None)
    nd = _nodata_value(arr, nodata, var)
    data = arr.data
    refl = data.astype(np.float32, copy=False)
    if sc != 1 or off != 0:  # reflectance already: no arithmetic (and no copies) to do
        refl = refl * np.float32(sc) + np.float32(off)
    if nd is not None and not (isinstance(nd, float) and np.isnan(nd)):
        refl = _where(data == nd, np.float32(np.nan), refl)
    return refl


def scaling_note(arr: xr.DataArray, var: str, *, scale, offset, sensor, attrs) -> str:
    """Where ``var``'s DN scaling comes from, for the radiometry errors ('' when none)."""
    s = scale.get(var) if isinstance(scale, Mapping) else scale
    o = offset.get(var) if isinstance(offset, Mapping) else offset
    sc, off = reflectance_scaling(
        arr.dtype, {**attrs, **arr.attrs}, scale=s, offset=o, sensor=sensor, band=None
    )
    if sc == 1 and off == 0:
        return ""
    if s is not None or o is not None:
        origin = "scale= / offset="
    elif "scale_factor" in arr.attrs or "add_offset" in arr.attrs:
        origin = "its scale_factor / add_offset attributes"
    elif "scale_factor" in attrs or "add_offset" in attrs:
        origin = "the dataset's scale_factor / add_offset attributes"
    else:
        origin = "the sensor's default DN scaling"
    return f"{var} x {sc:g} {off:+g} from {origin}"


def _where(cond, a, b):
    try:
        import dask.array as da

        if isinstance(cond, da.Array) or isinstance(b, da.Array):
            return da.where(cond, a, b)
    except ImportError:  # pragma: no cover
        pass
    return np.where(cond, a, b)


def _stack(arrays: list, axis: int):
    try:
        import dask.array as da

        if any(isinstance(a, da.Array) for a in arrays):
            return da.stack([da.asarray(a) for a in arrays], axis=axis)
    except ImportError:  # pragma: no cover
        pass
    return np.stack(arrays, axis=axis)


def reflectance_cube(
    arrays: Mapping[str, xr.DataArray],
    chosen: list[ResolvedBand],
    order: tuple[Hashable, ...],
    **kw: Any,
):
    """Stack the chosen bands into one float reflectance array ``(..., band, y, x)``."""
    first = arrays[chosen[0].var]
    data = []
    for r in chosen:
        arr = arrays[r.var]
        if set(arr.dims) != set(order):
            raise DimensionError(
                f"variable {r.var!r} has dims {arr.dims}, but {chosen[0].var!r} has {first.dims}; "
                "all bands must share dims (resample them onto one grid first)"
            )
        data.append(band_reflectance(arr.transpose(*order), var=r.var, **kw))
    return _stack(data, axis=len(order) - 2)
