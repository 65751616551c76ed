"""Plots for masks, scenes, cascade routing and cloud-fraction time series.

matplotlib is an optional dependency (``pip install "xcloud[plot]"``); it is imported when a
plot is drawn, never when xcloud is imported. Every function draws into ``ax`` (a new figure
when None) and returns the axes, so plots compose into your own figures. Images are drawn in
the cube's ``x`` / ``y`` coordinates where it has them, so a mask, a scene and the routing
grid of the same cube line up.

The accessor methods are the same functions: ``mask.cloud.plot()`` is :func:`plot_mask`,
``ds.cloud.plot_rgb()`` is :func:`plot_rgb`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from xcloud.errors import (
    DataTypeError,
    DimensionError,
    MissingBandsError,
    ParameterError,
    RadiometryError,
    require,
)
from xcloud.models import CLASS_COLOURS, CLASSES, NODATA
from xcloud.reflectance import SPATIAL_DIMS

__all__ = [
    "CLASS_COLOURS",
    "OVERLAY_COLOURS",
    "ROUTE_COLOURS",
    "colourise",
    "plot_cloud_fraction",
    "plot_mask",
    "plot_rgb",
    "plot_routing",
    "rgb_array",
]

_LABELS = {v: k.replace("_", " ") for k, v in CLASSES.items()}

#: Overlay colours on a true-colour image: white clouds on white clouds would not show.
OVERLAY_COLOURS: dict[int, tuple[float, float, float, float]] = {
    CLASSES["clear"]: (0.0, 0.0, 0.0, 0.0),
    CLASSES["cloud"]: (1.00, 0.84, 0.00, 1.0),
    CLASSES["thin_cloud"]: (0.00, 0.90, 1.00, 1.0),
    CLASSES["cloud_shadow"]: (0.95, 0.10, 0.85, 1.0),
    NODATA: (0.0, 0.0, 0.0, 0.0),
}

#: RGBA per coarse routing class (``cell_class`` codes of the cascade); nodata is transparent.
ROUTE_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "cloudless": (0.20, 0.63, 0.17, 1.0),
    "overcast": (0.85, 0.85, 0.85, 1.0),
    "partly_cloudy": (1.00, 0.50, 0.05, 1.0),
    "nodata": (0.0, 0.0, 0.0, 0.0),
}
_FINE_COLOUR = "#d62728"


def _plt():
    require("matplotlib", "plot", "plotting")
    import matplotlib.pyplot as plt

    return plt


def colourise(mask: np.ndarray, colours: Mapping[int, Sequence[float]] | None = None) -> np.ndarray:
    """RGBA image (float, ``(..., 4)``) of a mask of class codes (default :data:`CLASS_COLOURS`).

    >>> colourise(np.array([[0, 255]], "uint8"))[0, 1].tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    lut = np.zeros((256, 4), dtype=np.float32)
    for code, rgba in (CLASS_COLOURS if colours is None else colours).items():
        lut[code] = rgba
    return lut[np.asarray(mask, dtype=np.uint8)]


def rgb_array(red, green, blue, percentiles: Sequence[float] = (2, 98)) -> np.ndarray:
    """Percentile-stretched true-colour ``(y, x, 3)`` float image in [0, 1] (NaN -> black).

    One stretch for all three bands (the percentiles of all their finite values), so colours
    keep their balance.

    >>> r = np.linspace(0, 1, 100).reshape(10, 10)
    >>> img = rgb_array(r, r, r)
    >>> img.shape, float(img.min()), float(img.max())
    ((10, 10, 3), 0.0, 1.0)
    """
    stack = np.stack([np.asarray(a, dtype=np.float32) for a in (red, green, blue)], axis=-1)
    finite = stack[np.isfinite(stack)]
    if finite.size == 0:
        return np.zeros(stack.shape, dtype=np.float32)
    lo, hi = np.percentile(finite, percentiles)
    out = np.clip((stack - lo) / max(hi - lo, 1e-6), 0, 1)
    return np.nan_to_num(out, nan=0.0)


# --------------------------------------------------------------------------- helpers


def _yx(dims: Sequence[Hashable]) -> tuple[str, str] | None:
    for y, x in SPATIAL_DIMS:
        if y in dims and x in dims:
            return y, x
    return None


def _edges(centres: np.ndarray) -> tuple[float, float]:
    """First and last pixel edge of a regular 1-D coordinate of pixel centres."""
    c = np.asarray(centres, dtype=np.float64)
    step = c[1] - c[0] if c.size > 1 else 1.0
    return float(c[0] - step / 2), float(c[0] - step / 2 + step * c.size)


def _extent(obj, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """imshow extent (left, right, bottom, top) from ``obj``'s x / y coords, else pixels."""
    yx = _yx(getattr(obj, "dims", ()))
    coords = getattr(obj, "coords", {})
    if yx is not None and all(d in coords and coords[d].ndim == 1 for d in yx):
        y0, y1 = _edges(coords[yx[0]].values)
        x0, x1 = _edges(coords[yx[1]].values)
        return (x0, x1, y1, y0)
    return (-0.5, shape[1] - 0.5, shape[0] - 0.5, -0.5)


def _one_scene(obj, time: Any, what: str):
    """Select one step of every non-spatial dim of a DataArray / Dataset (``time`` chooses)."""
    yx = _yx(obj.dims)
    if yx is None:
        raise DimensionError(
            f"{what} needs (y, x) dims, got {tuple(obj.dims)}; rename them, e.g. "
            "obj.rename({'rows': 'y', 'cols': 'x'})"
        )
    for d in [d for d in obj.dims if d not in yx]:
        if d == "time" and time is not None and not isinstance(time, (int, np.integer)):
            obj = obj.sel(time=time, method="nearest")
        elif d == "time" and time is not None:
            n = obj.sizes["time"]
            if not -n <= int(time) < n:
                raise ParameterError(
                    f"{what}: time={time} is out of range for {n} time step(s); pass a position "
                    f"from 0 to {n - 1} (or -1 for the last), or a date such as "
                    f"{str(obj['time'].values[0])[:10]!r}"
                )
            obj = obj.isel(time=int(time))
        else:
            obj = obj.isel({d: 0})
    return obj


def _title_time(obj) -> str:
    t = obj.coords.get("time") if hasattr(obj, "coords") else None
    if t is None or t.ndim != 0:
        return ""
    if np.issubdtype(t.dtype, np.datetime64):
        return " " + str(np.datetime_as_string(t.values, unit="D"))
    return f" {t.values}"


def _class_legend(ax, codes, loc="lower left", colours=CLASS_COLOURS):
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=colours[c], edgecolor="0.3", label=_LABELS[c])
        for c in sorted(codes)
        if c in _LABELS
    ]
    if handles:
        ax.legend(handles=handles, loc=loc, fontsize="small", framealpha=0.8)


# --------------------------------------------------------------------------- masks


def plot_mask(
    mask,
    ax=None,
    *,
    time: Any = None,
    legend: bool = True,
    title: str | None = None,
    max_panels: int = 6,
):
    """Show a cloud mask in class colours with a legend; nodata is transparent.

    Parameters
    ----------
    mask
        ``cloud_mask`` DataArray (``(y, x)`` or ``(time, y, x)``) or a 2-D array of class codes.
    ax
        Axes to draw into; for several time steps a sequence of axes (a new figure when None).
    time
        With a time dim: a time label or integer position to show one step; None shows a row
        of panels, one per step (at most ``max_panels``).
    legend
        Draw a legend of the classes (clear and cloud always, the others when present).
    title
        Panel title (default: the mask's name and, for one time step, its date).

    Returns
    -------
    matplotlib.axes.Axes or numpy.ndarray of Axes
        One axes, or an array of them for a row of panels.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr, xcloud
    >>> m = xr.DataArray(np.array([[0, 1], [3, 255]], "uint8"), dims=("y", "x"),
    ...                  name="cloud_mask")
    >>> ax = m.cloud.plot()
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['clear', 'cloud', 'cloud shadow']
    """
    plt = _plt()
    if hasattr(mask, "dims") and "time" in mask.dims and time is None and mask.sizes["time"] > 1:
        n = min(mask.sizes["time"], max_panels)
        if ax is None:
            _, ax = plt.subplots(1, n, figsize=(4 * n, 4.4), squeeze=False, constrained_layout=True)
            ax = ax[0]
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        if axes.size < n:
            raise ParameterError(f"plot_mask: {n} time steps need {n} axes, got {axes.size}")
        for i in range(n):
            plot_mask(mask, axes[i], time=i, legend=legend and i == 0, title=title)
        return axes[:n]
    import xarray as xr

    if isinstance(mask, xr.Dataset):
        if "cloud_mask" not in mask:
            raise DataTypeError(
                f"plot_mask shows a cloud mask; the Dataset has {list(mask.data_vars)} and no "
                "'cloud_mask' (mask it first: ds.cloud.mask().cloud.plot(), or ds.cloud.plot_rgb() "
                "for the scene itself)"
            )
        mask = mask["cloud_mask"]
    if hasattr(mask, "dims"):
        mask = _one_scene(mask, time, "plot_mask")
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise DimensionError(
            f"plot_mask needs a 2-D mask, got shape {arr.shape}; select one time step, "
            "e.g. mask.isel(time=0)"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(colourise(arr), interpolation="nearest", extent=_extent(mask, arr.shape))
    if legend:
        _class_legend(ax, set(np.unique(arr).tolist()) | {0, 1})
    if title is None:
        title = (getattr(mask, "name", None) or "cloud mask") + _title_time(mask)
    ax.set_title(title)
    ax.set_axis_off()
    return ax


# --------------------------------------------------------------------------- scenes


def _rgb_bands(
    obj, *, bands: Mapping[str, str] | None, sensor: str | None, wavelengths
) -> tuple[tuple[Any, Any, Any], Any, dict[str, Any]]:
    """The red, green and blue DataArrays of a Dataset or band-dim DataArray, and the sensor
    and attributes :func:`xcloud.mask` would scale them with."""
    from xcloud.reflectance import resolve_variables

    arrays, attrs, sensor_obj, resolved = resolve_variables(
        obj, sensor=sensor, bands=bands, wavelengths=wavelengths
    )
    variables = list(arrays)
    by_name = {r.name: r.var for r in resolved}
    missing = [b for b in ("red", "green", "blue") if b not in by_name]
    if missing:
        raise MissingBandsError(
            f"a true-colour plot needs red, green and blue; could not find {missing} among "
            f"the variables {variables}; pass bands={{'red': ..., 'green': ..., 'blue': ...}}"
        )
    rgb = tuple(arrays[by_name[b]] for b in ("red", "green", "blue"))
    return rgb, sensor_obj, attrs  # type: ignore[return-value]


def _as_reflectance(arr, sensor=None, attrs: Mapping[str, Any] | None = None) -> np.ndarray:
    """Float reflectance, NaN at nodata, scaled exactly as :func:`xcloud.mask` scales a band
    (``scale_factor`` / ``add_offset`` attributes, also the Dataset's ``attrs``, else the
    sensor's default for integers).

    Integer data whose scaling nothing tells is an error for masking, but a percentile-stretched
    quicklook does not need it: it is drawn from the digital numbers as they are.
    """
    from xcloud.reflectance import band_reflectance

    kw: dict[str, Any] = dict(
        var=str(arr.name), scale=None, offset=None, nodata=None, attrs=dict(attrs or {})
    )
    try:
        refl = band_reflectance(arr, sensor=sensor, **kw)
    except RadiometryError:
        refl = band_reflectance(arr, sensor=None, **{**kw, "scale": 1.0, "offset": 0.0})
    return np.asarray(refl, dtype=np.float32)


def plot_rgb(
    obj,
    green=None,
    blue=None,
    *,
    mask=None,
    ax=None,
    time: Any = None,
    bands: Mapping[str, str] | None = None,
    sensor: str | None = None,
    wavelengths: Mapping[str, tuple[float, float, float]] | None = None,
    percentiles: Sequence[float] = (2, 98),
    alpha: float = 0.5,
    legend: bool = True,
    title: str | None = None,
):
    """True-colour quicklook, percentile-stretched, with an optional mask overlaid.

    Parameters
    ----------
    obj
        A Dataset with one variable per band or a DataArray with a ``band`` dim; red, green
        and blue are found as :func:`xcloud.mask` finds bands (common names, Sentinel-2 /
        Landsat keys, ``bands=``, ``wavelengths=``). Or three 2-D arrays ``red, green, blue``.
    green, blue
        Only when ``obj`` is the red band as an array.
    mask
        A ``cloud_mask`` of the same scene: cloud (yellow), thin cloud (cyan) and shadow
        (magenta, see :data:`OVERLAY_COLOURS`) are overlaid with ``alpha``; clear and nodata
        pixels are left uncovered.
    ax
        Axes to draw into (a new figure when None).
    time
        Which time step (label or integer position) for a cube with a time dim (default the
        first); the same step of ``mask`` is used.
    bands, sensor, wavelengths
        As for :func:`xcloud.mask`, when the band names are not recognised.
    percentiles
        Lower and upper percentile of the stretch (over the three bands together; nodata and
        the ``scale_factor`` attribute are honoured).
    alpha
        Opacity of the mask overlay.
    legend
        Draw a legend of the overlaid classes.
    title
        Panel title (default ``"true colour"`` and the date).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr, xcloud
    >>> rng = np.random.default_rng(0)
    >>> ds = xr.Dataset({b: (("y", "x"), rng.uniform(0, 0.3, (16, 16)).astype("float32"))
    ...                  for b in ["B02", "B03", "B04", "B08"]})
    >>> m = xr.DataArray(np.ones((16, 16), "uint8"), dims=("y", "x"), name="cloud_mask")
    >>> ax = ds.cloud.plot_rgb(mask=m)
    >>> len(ax.get_images()), [t.get_text() for t in ax.get_legend().get_texts()]
    (2, ['cloud'])
    """
    plt = _plt()
    if green is not None or blue is not None:
        if green is None or blue is None:
            raise ParameterError("plot_rgb: pass all three of red, green and blue, or one Dataset")
        red, src = obj, obj
        refl = [np.asarray(a, dtype=np.float32) for a in (obj, green, blue)]
        if hasattr(obj, "dims") and obj.ndim > 2:
            src = _one_scene(obj, time, "plot_rgb")
            refl = [_as_reflectance(_one_scene(a, time, "plot_rgb")) for a in (obj, green, blue)]
    else:
        rgb, sensor_obj, attrs = _rgb_bands(
            obj, bands=bands, sensor=sensor, wavelengths=wavelengths
        )
        red, grn, blu = (_one_scene(a, time, "plot_rgb") for a in rgb)
        refl = [_as_reflectance(a, sensor_obj, attrs) for a in (red, grn, blu)]
        src = red
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    shape = refl[0].shape
    extent = _extent(src, shape)
    img = rgb_array(refl[0], refl[1], refl[2], percentiles=percentiles)
    ax.imshow(img, interpolation="nearest", extent=extent)
    if mask is not None:
        if hasattr(mask, "dims"):
            mask = _one_scene(mask, time, "plot_rgb")
        arr = np.asarray(mask)
        if arr.shape != shape:
            raise DimensionError(
                f"the mask has shape {arr.shape}, the scene {shape}; pass the mask of this scene"
            )
        over = colourise(arr, OVERLAY_COLOURS)
        over[..., 3] *= alpha
        ax.imshow(over, interpolation="nearest", extent=extent)
        if legend:
            _class_legend(
                ax, set(np.unique(arr).tolist()) - {CLASSES["clear"]}, colours=OVERLAY_COLOURS
            )
    ax.set_title(title if title is not None else "true colour" + _title_time(src))
    ax.set_axis_off()
    return ax


# --------------------------------------------------------------------------- routing


def plot_routing(
    routing,
    *,
    background=None,
    ax=None,
    time: Any = None,
    alpha: float = 0.35,
    legend: bool = True,
    title: str | None = None,
    **rgb_kw: Any,
):
    """Show how the cascade routed a scene: coarse cell classes and the units that ran fine.

    Cells are coloured by their coarse class (cloudless, overcast, partly cloudy; nodata cells
    are left uncovered), and the routing units that ran the fine model (safety ring included)
    are outlined and hatched. The title gives the fraction of units that ran the fine model.

    Parameters
    ----------
    routing
        The routing Dataset of ``routing = ds.cloud.route()`` (:func:`xcloud.route`).
    background
        Drawn underneath: the reflectance Dataset (a true-colour image, see :func:`plot_rgb`)
        or the ``cloud_mask`` (see :func:`plot_mask`); None draws the grid alone.
    ax
        Axes to draw into (a new figure when None).
    time
        Which time step (label or integer position; default the first).
    alpha
        Opacity of the cell colours.
    legend
        Draw a legend of the cell classes and of the fine units.
    title
        Panel title (default: fine fraction and date).
    **rgb_kw
        Passed to :func:`plot_rgb` for a reflectance background (``bands=``, ``percentiles=``).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> routing = xr.Dataset(
    ...     {"cell_class": (("cell_y", "cell_x"), np.array([[0, 1], [2, 3]], "int8"),
    ...                     {"flag_meanings": "cloudless overcast partly_cloudy nodata"}),
    ...      "unit_fine": (("unit_y", "unit_x"), np.array([[True]])),
    ...      "fine_fraction": ((), 1.0)},
    ...     coords={"cell_y": [32.0, 96.0], "cell_x": [32.0, 96.0],
    ...             "unit_y": [64.0], "unit_x": [64.0]})
    >>> ax = plot_routing(routing)
    >>> ax.get_title()
    'routing: fine model on 100% of units'
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['cloudless', 'overcast', 'partly cloudy', 'ran the fine model']
    """
    plt = _plt()
    import xarray as xr
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle

    for var in ("cell_class", "unit_fine"):
        if var not in routing:
            raise KeyError(
                f"plot_routing needs the routing Dataset of "
                f"ds.cloud.route(); {var!r} is missing (it has "
                f"{list(routing.data_vars)})"
            )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    sel = {}
    for d in routing["cell_class"].dims[:-2]:
        if d == "time" and time is not None and not isinstance(time, (int, np.integer)):
            sel[d] = routing.indexes["time"].get_indexer([np.datetime64(time)], method="nearest")[0]
        else:
            sel[d] = int(time) if d == "time" and time is not None else 0
    r = routing.isel(sel)

    if background is not None:
        if isinstance(background, xr.Dataset) or (
            isinstance(background, xr.DataArray) and "band" in background.dims
        ):
            plot_rgb(background, ax=ax, time=time, title="", **rgb_kw)
        else:
            plot_mask(background, ax=ax, time=time, legend=False, title="")

    meanings = r["cell_class"].attrs.get("flag_meanings", " ".join(ROUTE_COLOURS)).split()
    colours = [ROUTE_COLOURS.get(m, (0.5, 0.5, 0.5, 1.0)) for m in meanings]
    cells = np.asarray(r["cell_class"].values, dtype=np.int16)
    y0, y1 = _edges(r["cell_y"].values)
    x0, x1 = _edges(r["cell_x"].values)
    rgba = ListedColormap(colours)(np.clip(cells, 0, len(colours) - 1))
    rgba[..., 3] *= alpha
    limits = (ax.get_xlim(), ax.get_ylim()) if background is not None else None
    ax.imshow(rgba, interpolation="nearest", extent=(x0, x1, y1, y0))

    fine = np.asarray(r["unit_fine"].values, dtype=bool)
    uy, ux = r["unit_y"].values, r["unit_x"].values
    dy = abs(uy[1] - uy[0]) if uy.size > 1 else abs(y1 - y0)
    dx = abs(ux[1] - ux[0]) if ux.size > 1 else abs(x1 - x0)
    for i, j in zip(*np.nonzero(fine), strict=True):
        ax.add_patch(
            Rectangle(
                (ux[j] - dx / 2, uy[i] - dy / 2),
                dx,
                dy,
                fill=False,
                hatch="/",
                edgecolor=_FINE_COLOUR,
                linewidth=1.0,
                alpha=0.8,
            )
        )
    if limits is not None:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    if legend:
        present = set(np.unique(cells).tolist())
        handles = [
            Patch(facecolor=colours[k], edgecolor="0.3", label=meanings[k].replace("_", " "))
            for k in range(len(meanings))
            if meanings[k] != "nodata" and (k in present or meanings[k] != "partly_cloudy")
        ]
        handles.append(
            Patch(fill=False, hatch="/", edgecolor=_FINE_COLOUR, label="ran the fine model")
        )
        ax.legend(handles=handles, loc="lower left", fontsize="small", framealpha=0.8)
    if title is None:
        frac = float(r["fine_fraction"]) if "fine_fraction" in r else float(fine.mean())
        title = f"routing: fine model on {frac:.0%} of units" + _title_time(r)
    ax.set_title(title)
    ax.set_axis_off()
    return ax


# --------------------------------------------------------------------------- time series


def _fractions(obj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """time, cloud fraction (of valid pixels) and nodata fraction of a store or mask cube."""
    import xarray as xr

    if isinstance(obj, xr.Dataset) and "cloud_fraction" in obj.variables:
        return (
            obj["time"].values if "time" in obj.coords else np.arange(obj.sizes["time"]),
            np.asarray(obj["cloud_fraction"].values, dtype=np.float64),
            np.asarray(obj["nodata_fraction"].values, dtype=np.float64),
        )
    if isinstance(obj, xr.Dataset):
        if "cloud_mask" not in obj:
            raise KeyError(
                "plot_cloud_fraction needs a store written by xcloud.mask_to_zarr (with "
                f"cloud_fraction / nodata_fraction) or a cloud_mask; got {list(obj.variables)}"
            )
        obj = obj["cloud_mask"]
    if "time" not in obj.dims:
        raise DimensionError(f"plot_cloud_fraction needs a time dim; the mask has dims {obj.dims}")
    spatial = [d for d in obj.dims if d != "time"]
    cloudy = obj.isin([CLASSES["cloud"], CLASSES["thin_cloud"]]).sum(spatial)
    nodata = (obj == NODATA).sum(spatial)
    total = int(np.prod([obj.sizes[d] for d in spatial]))
    cloudy, nodata = (np.asarray(v.values, dtype=np.float64) for v in (cloudy, nodata))
    valid = total - nodata
    with np.errstate(invalid="ignore", divide="ignore"):
        cf = np.where(valid > 0, cloudy / valid, np.nan)
    return (
        obj["time"].values if "time" in obj.coords else np.arange(obj.sizes["time"]),
        cf,
        (nodata / total),
    )


def plot_cloud_fraction(obj, ax=None, *, title: str | None = None):
    """Time series of the cloud fraction (of valid pixels) and the nodata fraction.

    Parameters
    ----------
    obj
        The Dataset :func:`xcloud.mask_to_zarr` returns (or ``xr.open_zarr`` of its store),
        whose ``cloud_fraction`` / ``nodata_fraction`` coordinates are used as they are; or a
        ``cloud_mask`` with a time dim (computed here: cloud and thin cloud over valid pixels).
    ax
        Axes to draw into (a new figure when None).
    title
        Panel title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.array([[[0, 1], [1, 255]], [[0, 0], [0, 0]]], "uint8"),
    ...                  dims=("time", "y", "x"), name="cloud_mask",
    ...                  coords={"time": np.array(["2024-01-01", "2024-01-06"], "M8[ns]")})
    >>> ax = plot_cloud_fraction(m)
    >>> [line.get_label() for line in ax.get_lines()]
    ['cloud (of valid pixels)', 'nodata']
    >>> np.round(ax.get_lines()[0].get_ydata(), 1).tolist()
    [66.7, 0.0]
    """
    plt = _plt()
    t, cf, nf = _fractions(obj)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5), constrained_layout=True)
    ax.plot(t, 100 * cf, "o-", color="tab:blue", label="cloud (of valid pixels)")
    ax.plot(t, 100 * nf, "s--", color="0.5", label="nodata")
    ax.set_ylim(-2, 102)
    ax.set_ylabel("% of pixels")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    if np.issubdtype(np.asarray(t).dtype, np.datetime64):
        ax.figure.autofmt_xdate()
    ax.set_title(title if title is not None else "cloud fraction over time")
    return ax
