"""``xcloud.mask``: the xarray adapter over the array core.

Turns a Dataset (one variable per band, as odc-stac returns) or a DataArray with a ``band``
dimension (as stackstac returns) into one float reflectance array ``(..., band, y, x)`` with NaN
for nodata, runs :func:`xcloud.inference.core.run_mask`, and wraps the result as a CF-compliant
``cloud_mask`` DataArray with the input's coordinates and CRS.
"""

from __future__ import annotations

import contextvars
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr

from xcloud._version import __version__
from xcloud.bands import (
    LEVELS,
    Level,
    ResolvedBand,
    Sensor,
    require_bands,
)
from xcloud.device import PRECISIONS, Device, Precision, resolve_device
from xcloud.errors import (
    DimensionError,
    MissingBandsError,
    MissingDependencyError,
    ModelUnavailableError,
    ParameterError,
    did_you_mean,
    is_real,
    is_whole,
    warn,
)
from xcloud.inference.cascade import CascadeJob, run_cascade
from xcloud.inference.core import MaskJob, run_mask
from xcloud.models import (
    CELL_OVERVIEW_PX,
    FLAG_MEANINGS,
    FLAG_VALUES,
    ModelSpec,
    flags_definition,
    get_spec,
)
from xcloud.models._registry import check_available
from xcloud.reflectance import (
    band_arrays,
    reflectance_cube,
    resolve_variables,
    scaling_note,
    spatial_dims,
)

__all__ = ["mask", "route", "CascadeOptions"]

#: Where :func:`route` collects the routing :func:`mask` decides (None: nobody asked, so the
#: cascade may route inside the graph).
_ROUTING_OUT: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "xcloud_routing_out", default=None
)

#: Bands beyond this centre wavelength are thermal (kelvin, not reflectance): never model input.
MAX_REFLECTIVE_NM = 3000.0
#: Edge of the cascade's routing units on a CUDA device, in pixels. On a GPU the fine model is
#: cheap and each unit's own tasks are not: ``benchmarks/gpu.py`` (H200, 4096 px partly cloudy
#: cube, every unit running fine) measured the cascade at 0.40x of ``fine`` with 256 px units,
#: 1.09x with 512 px and 1.03x with 1024 px; on a nearly clear Landsat scene 2.08x, 2.07x and
#: 1.29x. On a CPU the units stay one tile stride (256 px), where the model dominates.
CUDA_UNIT_PX = 512


def _cascade_unit(device: str, stride: int, overview_factor: int) -> int | None:
    """The cascade's routing unit in pixels for ``device`` (None: one tile stride). A stage
    whose stride the router's 64 px cells do not tile gets the smallest unit that holds whole
    strides and whole cells (ukis-csmask's 224 px stride: 448 px units).

    >>> _cascade_unit("cpu", 256, 4), _cascade_unit("cuda", 256, 4), _cascade_unit("cuda:1", 256, 64)
    (None, 512, 1024)
    >>> _cascade_unit("cpu", 224, 4)
    448
    """
    if not is_whole(overview_factor, 1):
        return None  # CascadeJob names the bad value
    cell = CELL_OVERVIEW_PX * overview_factor
    if not device.startswith("cuda"):
        # one stride where the router's trained 64 px cells tile it (otherwise CascadeJob says
        # which overview factors do); the smallest common multiple for a stage they do not
        return None if stride % (CELL_OVERVIEW_PX * 4) == 0 else math.lcm(stride, cell)
    return math.lcm(CUDA_UNIT_PX, stride, cell)


def _flips(template: xr.DataArray, ydim: str, xdim: str) -> dict[str, slice]:
    """The reversals that make ``template`` north up (y coordinate descending) with x
    ascending; empty when it already is, or its coordinates do not say.

    >>> t = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"), coords={"y": [0, 1], "x": [2, 1, 0]})
    >>> sorted(_flips(t, "y", "x"))
    ['x', 'y']
    """
    out = {}
    for dim, descending in ((ydim, True), (xdim, False)):
        c = template.coords.get(dim)
        if c is None or c.ndim != 1 or c.size < 2:
            continue
        v = c.values
        if (v[-1] < v[0]) != descending:
            out[dim] = slice(None, None, -1)
    return out


def _check_size(template: xr.DataArray, ydim: str, xdim: str, seg: ModelSpec) -> None:
    """Refuse a scene smaller than the model's tile overlap: its halo would not fit (dask
    raised deep inside the graph, and the cascade called a cloudy pixel clear)."""
    ny, nx = template.sizes[ydim], template.sizes[xdim]
    low = max(seg.overlap, 2)
    if ny < low or nx < low:
        raise DimensionError(
            f"the scene is {ny} x {nx} px ({ydim} x {xdim}); model {seg.name!r} needs at least "
            f"{low} x {low} px (its tiles overlap by {seg.overlap} px). Mask a larger window, "
            f"or pad this one with nodata, e.g. ds.pad({ydim}=(0, {max(low - ny, 0)}), "
            f"{xdim}=(0, {max(low - nx, 0)}))"
        )


def _select_bands(
    spec: ModelSpec, resolved: list[ResolvedBand], variables: list[str]
) -> list[ResolvedBand]:
    if spec.spectral:
        chosen = [r for r in resolved if r.centre <= MAX_REFLECTIVE_NM]
        if len(chosen) < spec.min_bands:
            raise MissingBandsError(
                f"model {spec.name!r} needs at least {spec.min_bands} reflective bands with known "
                f"wavelengths; recognised {[r.var for r in chosen]} of the dataset's {variables}. "
                "Name the others with bands={'nir': 'my_var', ...} or describe them with "
                "wavelengths={'my_var': (min_nm, centre_nm, max_nm)}"
            )
        return chosen[: spec.max_bands]
    chosen = require_bands(resolved, spec.bands, variables, spec.name)
    by_name = {r.name: r for r in resolved}
    chosen += [by_name[b] for b in spec.optional_bands if b in by_name]
    return chosen


def _level(sensor: Sensor | None, attrs: Mapping[str, Any], level: str | None, seg: ModelSpec):
    """The data's processing level (``level=``, the sensor's, or the attrs'), refused when the
    segmenting model ``seg`` does not take it; None when nothing says."""
    lvl = _level_of(sensor, attrs, level)
    if lvl is not None and lvl not in seg.levels:
        raise ModelUnavailableError(
            f"model {seg.name!r} takes processing levels {list(seg.levels)}, the data is "
            f"{lvl!r}; pick another model or pass level= if the data is really {seg.levels[0]!r}"
        )
    return lvl


def _level_of(sensor: Sensor | None, attrs: Mapping[str, Any], level: str | None) -> str | None:
    if level is not None:
        return level.lower()
    if sensor is not None:
        return sensor.level
    pl = str(attrs.get("processing:level", "")).lower()
    if "l2" in pl:
        return "l2a"
    if "l1" in pl:
        return "l1c"
    return None


def _check_keywords(
    variables: list[str],
    *,
    scale,
    offset,
    nodata,
    batch_size,
    probabilities,
    routing,
    level,
    precision,
    spec: ModelSpec,
) -> None:
    """Refuse keyword values :func:`mask` cannot use, naming the value, the range and the fix."""
    rules = {  # name: (test of one number, what is expected)
        "scale": (lambda v: is_real(v, finite=True) and v > 0, "a finite number > 0"),
        "offset": (lambda v: is_real(v, finite=True), "a finite number"),
        "nodata": (is_real, "a number (NaN allowed)"),
    }
    for name, value in (("scale", scale), ("offset", offset), ("nodata", nodata)):
        if value is None:
            continue
        ok, expected = rules[name]
        per_var = value if isinstance(value, Mapping) else {None: value}
        unknown = [k for k in per_var if k is not None and k not in variables]
        if unknown:
            raise ParameterError(
                f"{name}={value!r} names {unknown}, which the data does not have; its variables "
                f"are {variables}"
            )
        for var, v in per_var.items():
            if not ok(v):
                where = f"{name}[{var!r}]={v!r}" if var is not None else f"{name}={v!r}"
                raise ParameterError(
                    f"{where}: expected {expected}, or a mapping {{variable: number}} (reflectance "
                    "= DN * scale + offset; e.g. scale=1e-4 for Sentinel-2 digital numbers)"
                    if name != "nodata"
                    else f"{where}: expected {expected}, the value that marks missing pixels, or "
                    "a mapping {variable: number}"
                )
    if batch_size is not None and not is_whole(batch_size, 1):
        raise ParameterError(
            f"batch_size={batch_size!r}: expected a whole number >= 1 (tiles per model call), or "
            "None for the device's default"
        )
    for name, v, expected in (
        ("probabilities", probabilities, "True or False"),
        (
            "routing",
            routing,
            "True (the default: route with the coarse model), False (run the fine model "
            "everywhere) or a routing Dataset from xcloud.route",
        ),
    ):
        if name == "routing" and isinstance(v, xr.Dataset):
            continue
        if not isinstance(v, (bool, np.bool_)):
            raise ParameterError(f"{name}={v!r}: expected {expected}")
    if precision not in PRECISIONS:
        raise ParameterError(
            f"precision={precision!r}: expected one of {list(PRECISIONS)} ('auto': bf16 on CUDA, "
            "fp32 elsewhere)"
        )
    if precision not in spec.precisions:
        raise ParameterError(
            f"precision={precision!r}: model {spec.name!r} runs in its own arithmetic and takes "
            f"only {list(spec.precisions)}; precision= applies to xcloud's own models "
            "('fine', or model='cascade' with fine='fine')"
        )
    if level is not None and (not isinstance(level, str) or level.lower() not in LEVELS):
        raise ParameterError(
            f"level={level!r}: expected 'l1c' (top-of-atmosphere reflectance) or 'l2a' (surface "
            "reflectance), or None to read it from the sensor or the processing:level attribute"
        )


def mask(
    obj: xr.Dataset | xr.DataArray,
    model: str = "cascade",
    *,
    sensor: str | None = None,
    bands: Mapping[str, str] | None = None,
    wavelengths: Mapping[str, tuple[float, float, float]] | None = None,
    scale: float | Mapping[str, float] | None = None,
    offset: float | Mapping[str, float] | None = None,
    nodata: float | Mapping[str, float] | None = None,
    level: Level | None = None,
    probabilities: bool = False,
    device: Device = "auto",
    batch_size: int | None = None,
    precision: Precision = "auto",
    thresholds: Mapping[str, float] | None = None,
    tta: int = 1,
    fine: str | None = None,
    cascade: CascadeOptions | None = None,
    routing: bool | xr.Dataset = True,
) -> xr.DataArray:
    """Cloud-mask a datacube.

    Parameters
    ----------
    obj
        A Dataset with one variable per band (odc-stac style) or a DataArray with a ``band``
        dimension (stackstac style). Dims ``(time, y, x)`` or ``(y, x)``; other leading dims are
        mapped over. Dask-backed input gives a lazy result; numpy input is computed at once.
    model
        Registry name (see :func:`xcloud.models.list_models`).
    sensor
        Sensor name (``"sentinel-2-l1c"``, ``"landsat-8-l2"``, ...). Inferred from band names and
        attributes when omitted.
    bands
        ``{common_name: variable}`` for variables whose names xcloud does not recognise.
    wavelengths
        ``{variable: (min_nm, centre_nm, max_nm)}`` to describe any other sensor's bands.
    scale, offset
        Reflectance = DN * scale + offset, for integer data without ``scale_factor`` attrs
        (a number, or a mapping per variable).
    nodata
        Value marking missing data (besides NaN); defaults to the ``nodata`` / ``_FillValue``
        attribute. Nodata pixels are never given to the model and come out as class 255.
    level
        Processing level ``"l1c"`` (top of atmosphere) or ``"l2a"`` (surface reflectance), when
        the sensor does not say.
    probabilities
        Return float16 per-class probabilities with a ``class`` dimension instead of codes.
    device
        ``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"`` or ``"mps"``; resolved on each
        worker.
    batch_size
        Tiles per model call (default 8 on CPU, 16 on GPU, where the tasks of one process
        share calls up to that many tiles).
    precision
        Arithmetic of xcloud's own models (``fine``, ``cascade``): ``"auto"`` (bf16 on CUDA,
        fp32 elsewhere), ``"fp32"`` everywhere, or ``"bf16"`` on CUDA and on the CPU too. On a
        CPU with native bf16 (AVX512-BF16 or AMX) ``"bf16"`` ran ``fine`` 1.2-1.3x faster on a
        13-band Sentinel-2 cube (``benchmarks/speed.py``) and 1.6x on a 4-band one, with 99.3-99.6 %
        of the pixels unchanged and validation scores within 0.001; on other CPUs it is slower
        (a warning says so).
    thresholds
        ``{class: probability}`` to trade recall for precision per class, e.g.
        ``{"cloud": 0.3}``: a pixel is called that class wherever its probability is at least
        this, and never where it is below (the most likely other class is taken there).
        Lower finds more of the class and raises more false alarms; higher, fewer of both.
        Default: the most likely class (today's arg-max, exactly). Classes the segmenting
        model does not output (ukis-csmask has no thin cloud) are refused.
    tta
        Test-time augmentation: each tile's class probabilities are averaged over 4 (its
        flips) or 8 (flips and transposes) views of it, for a smoother, usually more
        accurate mask at 4 or 8 times the model's cost; 1 (the default) runs each tile once.
        Its cross-validated effect on the default is in the README.
    fine
        Cascade only: the registered mask model that segments the units the router sends on
        (e.g. ``"ukis-csmask"`` or ``"fine"``). Default: the first of the cascade's stages
        after the router that can run on this data, ``ukis-csmask`` (the most accurate mask
        xcloud can make, see the README) when the data has blue, green, red and nir, else
        xcloud's own ``fine`` (with a warning saying why).
    cascade
        Cascade only: how it routes, a :class:`CascadeOptions` (the router's threshold, the
        safety ring, the overview and its factor); default ``CascadeOptions()``.
    routing
        Cascade only. ``routing=False`` runs the fine stage everywhere (bit for bit the same
        as the fine model alone); ``routing=`` a Dataset from :func:`xcloud.route` masks with
        that routing: nothing is routed again and the units it skips are never read. By
        default the cascade routes: with COG overviews (:func:`xcloud.open_stac` cubes) or a
        given overview the routing is decided when ``mask()`` is called, so that skipped units
        are never read; an overview computed from a dask cube is computed inside the graph,
        with the routing, so ``mask()`` reads nothing and each chunk is read once.

    Returns
    -------
    xarray.DataArray
        ``cloud_mask``, uint8: 0 clear, 1 cloud, 2 thin_cloud, 3 cloud_shadow, 255 nodata,
        with CF ``flag_values`` / ``flag_meanings``, the Open Data Cube ``flags_definition``
        (so ``odc.algo.enum_to_bool(m, ["cloud"])`` works; netCDF cannot store that dict: drop
        it before ``to_netcdf``) and provenance attributes. The input's ``stac_*`` attributes (from
        :func:`xcloud.open_stac`) are kept, so the mask knows the items it came from.

    Examples
    --------
    >>> import numpy as np, xarray as xr, xcloud
    >>> refl = np.full((64, 64), 0.05, dtype="float32")
    >>> ds = xr.Dataset({b: (("y", "x"), refl) for b in ["B02", "B03", "B04", "B08"]},
    ...                 attrs={"platform": "sentinel-2a", "processing:level": "L2A"})
    >>> m = ds.cloud.mask("ukis-csmask")
    >>> m.name, m.dtype.name, m.attrs["flag_meanings"]
    ('cloud_mask', 'uint8', 'clear cloud thin_cloud cloud_shadow nodata')
    >>> int(m[10, 10])
    0
    """
    routing_out = _ROUTING_OUT.get()  # set by route(): it wants the routing decided now
    spec = get_spec(model)
    check_available(spec)
    arrays, attrs, sensor_obj, resolved = resolve_variables(
        obj, sensor=sensor, bands=bands, wavelengths=wavelengths
    )
    variables = list(arrays)
    # the model that segments pixels: the cascade's fine stage, or the model itself
    seg = _fine_stage(spec, fine, resolved, variables) if spec.stages else spec
    _check_keywords(
        variables, scale=scale, offset=offset, nodata=nodata, batch_size=batch_size,
        probabilities=probabilities, routing=routing,
        level=level, precision=precision, spec=seg,
    )  # fmt: skip
    lvl = _level(sensor_obj, attrs, level, seg)
    chosen = _select_bands(seg, resolved, variables)

    template = arrays[chosen[0].var]
    ydim, xdim = spatial_dims(template.dims)
    _check_size(template, ydim, xdim, seg)
    # north up (y descending), x ascending: the tile grid and the models see every scene the
    # same way round, so the mask does not depend on how the axes run
    flips = _flips(template, ydim, xdim)
    if flips:
        arrays = {k: v.isel(flips) for k, v in arrays.items()}
        template = arrays[chosen[0].var]
    lead = tuple(d for d in template.dims if d not in (ydim, xdim))
    order = lead + (ydim, xdim)
    cube_kw = dict(scale=scale, offset=offset, sensor=sensor_obj, attrs=attrs)
    x = reflectance_cube(arrays, chosen, order, nodata=nodata, **cube_kw)

    job = MaskJob(
        model=seg.name,
        bands=tuple(r.name for r in chosen),
        wavelengths=tuple(r.descriptor for r in chosen),
        level=lvl,
        device=device,
        batch_size=batch_size,
        precision=precision,
        thresholds=_checked_thresholds(thresholds, seg, probabilities),
        tta=_checked_tta(tta),
        scaling=tuple(scaling_note(arrays[r.var], r.var, **cube_kw) for r in chosen),
    )
    routed = cjob = None
    given = routing if isinstance(routing, xr.Dataset) else None  # a routing decided before
    routing_on = True if given is not None else bool(routing)
    if spec.stages:
        cjob, ov = _cascade_setup(obj, job, spec, seg, cascade, given, routing_on, device,
                                  chosen, flips, order, {**cube_kw, "nodata": nodata})  # fmt: skip
        result, routed = run_cascade(
            x, cjob, probabilities=probabilities, overview=ov, lazy_routing=routing_out is None,
            routing=None if given is None else _routing_of(given),
            routing_only=routing_out is not None,  # route() keeps the routing, not a mask
        )  # fmt: skip
    else:
        cascade_kw = dict(cascade=cascade is not None,
                          routing=given is not None or not routing_on,
                          fine=fine is not None)  # fmt: skip
        _refuse_cascade_only(spec.name, **cascade_kw)
        result = run_mask(x, job, probabilities=probabilities)

    info = _provenance(spec, chosen, lvl, sensor_obj, seg)
    info.update({k: v for k, v in attrs.items() if str(k).startswith("stac_")})
    info["xcloud_precision"] = precision  # as asked: "auto" is bf16 on CUDA, fp32 elsewhere
    if job.tta > 1:
        info["xcloud_tta"] = job.tta
    if cjob is not None:
        info["xcloud_route_threshold"] = cjob.threshold
    if routed is not None and routing_out is not None:  # (None: routed inside the graph)
        routing_out.append(_routing_dataset(routed, template, lead, ydim, xdim, info))
    if result is None:  # route(): the routing is all it asked for
        return template
    out = _output(result, template, order, seg, probabilities)
    out.attrs.update(info)
    return _with_crs(out.isel(flips), template)  # back in the input's order


def route(obj: xr.Dataset | xr.DataArray, model: str = "cascade", **kwargs: Any) -> xr.Dataset:
    """Decide the cascade's routing for a cube now, to look at it and mask with it.

    The coarse model classifies every cell of the overview (from the COG overviews for
    :func:`xcloud.open_stac` cubes, else from the cube) and the cascade's rules pick the units
    the fine stage must segment. ``xcloud.mask(obj, routing=r)`` then masks with exactly this
    routing: nothing is routed again, and the units it skips are never read.

    Parameters
    ----------
    obj
        The cube, as for :func:`xcloud.mask`.
    model
        A cascade model (``"cascade"``).
    **kwargs
        :func:`xcloud.mask`'s keywords (``fine=``, ``cascade=CascadeOptions(...)``,
        ``sensor=``, ...), the same ones the mask will be made with.

    Returns
    -------
    xarray.Dataset
        ``cell_class``, ``cell_probability`` and ``trusted`` per cell, ``unit_fine`` per
        routing unit and ``fine_fraction`` per time step, with the settings in its attrs.

    Examples
    --------
    >>> import numpy as np, xarray as xr, xcloud
    >>> ds = xr.Dataset({b: (("y", "x"), np.full((512, 512), v, "float32"))
    ...                  for b, v in zip(["blue", "green", "red", "nir"], [0.05, 0.04, 0.02, 0.01])},
    ...                 attrs={"processing:level": "L2A"})
    >>> r = xcloud.route(ds, fine="fine")
    >>> float(r.fine_fraction), r.attrs["xcloud_fine_stage"]
    (0.0, 'fine')
    >>> bool((xcloud.mask(ds, fine="fine", routing=r) == 0).all())  # calm water: all clear
    True
    """
    if not get_spec(model).stages:
        raise ParameterError(
            f"route() decides a cascade's routing; {model!r} runs one model on every tile. Pass "
            "model='cascade'"
        )
    if "routing" in kwargs:
        raise ParameterError("route() takes no routing=: it decides the routing")
    out: list[xr.Dataset] = []
    token = _ROUTING_OUT.set(out)
    try:
        mask(obj, model, **kwargs)
    finally:
        _ROUTING_OUT.reset(token)
    return out[0]


def _given_threshold(given: xr.Dataset, seg: ModelSpec, route_threshold) -> float:
    """The threshold a routing Dataset was made with; refused if it was made for another fine
    stage, or if ``route_threshold=`` asks for another."""
    stage = given.attrs.get("xcloud_fine_stage")
    made = given.attrs.get("xcloud_route_threshold")
    if stage != seg.name or made is None:
        raise ParameterError(
            f"routing= was made for the fine stage {stage!r}, this mask segments with "
            f"{seg.name!r}; make it with xcloud.route(ds, fine={seg.name!r}), or pass "
            f"fine={stage!r}"
        )
    if route_threshold is not None and float(route_threshold) != float(made):
        raise ParameterError(
            f"route_threshold={route_threshold!r} with routing= made at {made}: the routing is "
            "decided already; drop it from CascadeOptions, or route again with it"
        )
    return float(made)


def _routing_of(given: xr.Dataset):
    """A routing Dataset (:func:`xcloud.route`) as the core's :class:`Routing`."""
    from xcloud.inference.cascade import Routing

    need = ("cell_class", "cell_probability", "trusted", "unit_fine")
    missing = [v for v in need if v not in given]
    if missing or "cell_size_px" not in given.attrs or "unit_size_px" not in given.attrs:
        raise ParameterError(
            f"routing= lacks {missing or ['its cell_size_px / unit_size_px attributes']}; pass "
            "the Dataset xcloud.route gives"
        )
    cell_class, probability, trusted, unit_fine = (np.asarray(given[v].values) for v in need)
    return Routing(
        cell_class.astype(np.int8), probability, trusted.astype(bool), unit_fine.astype(bool),
        int(given.attrs["cell_size_px"]), int(given.attrs["unit_size_px"]),
    )  # fmt: skip


@dataclass(frozen=True)
class CascadeOptions:
    """How the cascade routes (``xcloud.mask(ds, cascade=CascadeOptions(...))``).

    Attributes
    ----------
    route_threshold
        A coarse cell is filled without running the fine stage when the coarse model is at
        least this sure (between 0 and 1) that it is cloudless or overcast; 1 routes nothing.
        None: the value chosen on validation data for the fine stage
        (:func:`xcloud.models.builtin.route_threshold_for`).
    ring
        Routing units around each unit with a doubtful cell that also run the fine stage: a
        margin for clouds the coarse model missed. A unit is one tile stride of the fine stage
        on a CPU (256 px for ``fine``, 448 px for ukis-csmask, whose 224 px stride the router's
        64 px cells do not tile) and at least 512 px on a CUDA device (:data:`CUDA_UNIT_PX`).
    overview_factor
        Block-averaging factor of the overview the router sees (it was trained at 4).
    overview
        The overview itself (same band variables, on the grid coarsened by
        ``overview_factor``), instead of computing it from the cube; :func:`xcloud.open_stac`
        cubes read it from their COG overviews without being asked.
    unit
        The routing unit's edge in pixels, a multiple of the fine stage's tile stride and of
        the 64 px cell; None: the device's default (see ``ring``). Larger units skip less but
        call the model on more tiles at once: on a 2-core CPU, a time series where ``fine``
        runs everywhere cost 0.95-1.06x ``fine``'s time with 512 px units and 1.16-1.33x with
        256 px units (``benchmarks/cascade_timeseries.py``), but a clear scene skips less.

    Examples
    --------
    >>> CascadeOptions(ring=0)
    CascadeOptions(route_threshold=None, ring=0, overview_factor=4, unit=None)
    """

    route_threshold: float | None = None
    ring: int = 1
    overview_factor: int = 4
    overview: xr.Dataset | xr.DataArray | None = field(default=None, repr=False, compare=False)
    unit: int | None = None


def _checked_options(cascade) -> CascadeOptions:
    if cascade is None:
        return CascadeOptions()
    if not isinstance(cascade, CascadeOptions):
        raise ParameterError(
            f"cascade={cascade!r}: expected xcloud.CascadeOptions(...), e.g. "
            "cascade=xcloud.CascadeOptions(ring=0)"
        )
    return cascade


def _cascade_setup(obj, job, spec, seg, cascade, given, routing_on, device, chosen, flips, order,
                   cube_kw):  # fmt: skip
    """The cascade's job and overview (None: the cascade computes it, or a routing is given)."""
    opts = _checked_options(cascade)
    if given is not None:
        opts = replace(opts, route_threshold=_given_threshold(given, seg, opts.route_threshold))
    cjob = _cascade_job(job, spec, seg, opts, routing_on, device)
    if given is not None:
        return cjob, None
    ov = _overview(obj, opts.overview, chosen, flips, order, cube_kw, routing_on,
                   opts.overview_factor)  # fmt: skip
    return cjob, ov


def _cascade_job(
    job: MaskJob, spec: ModelSpec, seg: ModelSpec, opts: CascadeOptions, routing: bool,
    device: str,
) -> CascadeJob:  # fmt: skip
    """The cascade's settings around the fine stage's ``job``."""
    thr = opts.route_threshold
    if not routing and thr is not None and thr != 1:
        raise ParameterError(
            f"route_threshold={thr!r} with routing=False: without routing no cell is trusted, "
            "so the threshold would be ignored; drop one of the two"
        )
    return CascadeJob(
        job,
        route_threshold=1.0 if not routing else thr,  # None: the stage's default
        ring=opts.ring,
        overview_factor=opts.overview_factor,
        unit=opts.unit
        if opts.unit is not None
        else _cascade_unit(resolve_device(device), seg.stride, opts.overview_factor),
    )


def _overview(obj, overview, chosen, flips, order, cube_kw, routing: bool, factor: int):
    """The cascade's overview as a reflectance array: the one given, the COG overviews of an
    :func:`xcloud.open_stac` cube, or None (computed from the cube by the cascade)."""
    if overview is None and routing:  # without routing no overview is needed: read none
        overview = _stac_overview(obj, chosen, factor)
    if overview is None:
        return None
    ov_arrays = {k: v.isel({d: s for d, s in flips.items() if d in v.dims})
                 for k, v in band_arrays(overview).items()}  # fmt: skip
    missing = [r.var for r in chosen if r.var not in ov_arrays]
    if missing:
        raise MissingBandsError(
            f"the overview lacks the variables {missing} that the cube's mask uses "
            f"({[r.var for r in chosen]}); give it the same band variables"
        )
    return reflectance_cube(ov_arrays, chosen, order, **cube_kw)


def _refuse_cascade_only(model: str, **given: bool) -> None:
    """Refuse cascade keywords given (True in ``given``) for a model that is not a cascade."""
    cascade_only = [k for k, v in given.items() if v]
    if cascade_only:
        raise ParameterError(
            f"{', '.join(f'{k}=' for k in cascade_only)} only apply to a cascade model "
            f"(e.g. model='cascade'); {model!r} runs one model on every tile. Drop "
            f"{'it' if len(cascade_only) == 1 else 'them'} or pick model='cascade'"
        )


def _output(result, template: xr.DataArray, order, seg: ModelSpec, probabilities: bool):
    """``result`` as the ``cloud_mask`` (or ``cloud_probability``) DataArray, CF attributes."""
    coords = {k: v for k, v in template.coords.items() if set(v.dims) <= set(order)}
    if probabilities:
        coords["class"] = list(seg.classes)
        dims = order[:-2] + ("class",) + order[-2:]
        out = xr.DataArray(result, dims=dims, coords=coords, name="cloud_probability")
        out.attrs = {"long_name": "cloud mask class probability", "units": "1"}
        return out
    out = xr.DataArray(result, dims=order, coords=coords, name="cloud_mask")
    out.attrs = {
        "long_name": "cloud mask",
        "flag_values": np.array(FLAG_VALUES, dtype=np.uint8),
        "flag_meanings": FLAG_MEANINGS,
        "flags_definition": flags_definition(),  # for odc.algo's enum_to_bool
    }
    return out


def _stac_overview(obj, chosen: list[ResolvedBand], factor: int):
    """The overview of a cube loaded by :func:`xcloud.open_stac`, read from the COGs' own
    overviews at ``factor`` times the pixel size by the reader it left in the cube's encoding
    (:func:`xcloud.io.stac.load_overview`); None for other cubes."""
    encoding = getattr(obj, "encoding", {})
    reader = encoding.get("xcloud_overview_reader")
    if reader is None or not encoding.get("xcloud_stac_items"):
        return None
    return reader(obj, [r.var for r in chosen], factor)


def _centres(coord: xr.DataArray | None, n_px: int, size: int, count: int) -> np.ndarray:
    """Coordinates of the centres of ``count`` blocks of ``size`` pixels along an axis."""
    idx = np.arange(count) * size + (size - 1) / 2.0
    idx = np.minimum(idx, n_px - 1)
    if coord is None or coord.ndim != 1 or coord.size < 2:
        return idx
    values = np.asarray(coord.values, dtype=np.float64)
    return np.interp(idx, np.arange(values.size), values)


def _routing_dataset(
    routed, template: xr.DataArray, lead, ydim: str, xdim: str, attrs: Mapping[str, Any]
) -> xr.Dataset:
    """The routing as a Dataset on the cube's grid, with the mask's provenance ``attrs``."""
    from xcloud.inference.cascade import ROUTE_CLASSES

    ny, nx = template.sizes[ydim], template.sizes[xdim]
    yc, xc = template.coords.get(ydim), template.coords.get(xdim)
    gy, gx = routed.cell_class.shape[-2:]
    uy, ux = routed.unit_fine.shape[-2:]
    lead_coords = {d: template.coords[d] for d in lead if d in template.coords}
    coords = {
        **lead_coords,
        "cell_y": _centres(yc, ny, routed.cell, gy),
        "cell_x": _centres(xc, nx, routed.cell, gx),
        "unit_y": _centres(yc, ny, routed.unit, uy),
        "unit_x": _centres(xc, nx, routed.unit, ux),
    }
    cells, units = lead + ("cell_y", "cell_x"), lead + ("unit_y", "unit_x")
    ds = xr.Dataset(
        {
            "cell_class": (cells, routed.cell_class, {
                "long_name": "coarse routing class per cell",
                "flag_values": np.arange(len(ROUTE_CLASSES), dtype=np.int8),
                "flag_meanings": " ".join(ROUTE_CLASSES),
            }),
            "cell_probability": (cells, routed.cell_probability, {
                "long_name": "coarse model probability of the cell's class", "units": "1",
            }),
            "trusted": (cells, routed.trusted, {
                "long_name": "cell filled from its coarse class without running the fine model",
            }),
            "unit_fine": (units, routed.unit_fine, {
                "long_name": "routing unit segmented by the fine model (safety ring included)",
            }),
            "fine_fraction": (lead, routed.fine_fraction, {
                "long_name": "fraction of routing units that ran the fine model", "units": "1",
            }),
        },
        coords=coords,
        attrs={"cell_size_px": routed.cell, "unit_size_px": routed.unit},
    )  # fmt: skip
    drop = ("long_name", "flag_values", "flag_meanings", "flags_definition", "units")
    ds.attrs.update({k: v for k, v in attrs.items() if k not in drop})
    return ds


def _provenance(
    spec: ModelSpec, chosen: list[ResolvedBand], level, sensor, seg: ModelSpec
) -> dict[str, Any]:
    weights, licence = spec.sha256 or _peer_version(spec), spec.licence
    extra = {}
    if seg is not spec:  # a cascade: its router's weights, then its fine stage's
        weights = f"coarse={_coarse_sha256()} {seg.name}={seg.sha256 or _peer_version(seg)}"
        licence = f"coarse: {spec.licence}; {seg.name}: {seg.licence}"
        extra = {"xcloud_fine_stage": seg.name}
    return {
        "xcloud_version": __version__,
        "xcloud_model": spec.name,
        "xcloud_model_weights_sha256": weights,
        "xcloud_model_licence": licence,
        **extra,
        "xcloud_bands": " ".join(f"{r.var}={r.name}" for r in chosen),
        "xcloud_level": level or "unknown",
        "xcloud_sensor": sensor.name if sensor is not None else "unknown",
    }


def _coarse_sha256() -> str:
    """The router's weights hash (the coarse model is not in the mask-model registry)."""
    from xcloud.models.builtin import COARSE_SPEC

    return str(COARSE_SPEC.sha256)


def _fine_stage(
    spec: ModelSpec, fine: str | None, resolved: list[ResolvedBand], variables: list[str]
) -> ModelSpec:
    """The model that segments a cascade's routed units: ``fine`` if given, else the first of
    the cascade's stages after the router that is installed and finds its bands in the data
    (a warning says why an earlier, preferred one was passed over)."""
    if fine is not None:
        if not isinstance(fine, str):
            raise ParameterError(
                f"fine={fine!r}: expected the registry name of a mask model, e.g. 'ukis-csmask' "
                "or 'fine'"
            )
        stage = get_spec(fine)
        if stage.stages:
            raise ParameterError(
                f"fine={fine!r} is itself a cascade; the fine stage is one mask model, e.g. "
                "'ukis-csmask' or 'fine'"
            )
        check_available(stage)
        return stage
    passed: list[str] = []
    for name in spec.stages[1:]:
        try:
            stage = get_spec(name)
            check_available(stage)
            _select_bands(stage, resolved, variables)
        except (ModelUnavailableError, MissingBandsError, MissingDependencyError) as e:
            if name == spec.stages[-1]:
                raise
            passed.append(f"{name!r} cannot run here ({e})")
            continue
        if passed:
            warn(
                f"the cascade segments with {name!r}: "
                + "; ".join(passed)
                + ". Pass fine= to choose the fine stage yourself",
            )
        return stage
    raise ModelUnavailableError(f"model {spec.name!r} has no fine stage")  # pragma: no cover


def _checked_tta(tta: Any) -> int:
    """``tta=`` as a number of views, or a clear error."""
    from xcloud.inference.core import TTA_VIEWS

    allowed = (1, 4, len(TTA_VIEWS))
    if isinstance(tta, (bool, np.bool_)) or not is_whole(tta, 1) or int(tta) not in allowed:
        raise ParameterError(
            f"tta={tta!r}: expected the number of views to average, one of {list(allowed)} "
            "(1: none, 4: flips, 8: flips and transposes)"
        )
    return int(tta)


def _checked_thresholds(
    thresholds: Mapping[str, float] | None, seg: ModelSpec, probabilities: bool
) -> tuple[tuple[str, float], ...]:
    """``thresholds=`` as the job's sorted ``(class, probability)`` pairs, or a clear error."""
    if thresholds is None:
        return ()
    if not isinstance(thresholds, Mapping) or not thresholds:
        raise ParameterError(
            f"thresholds={thresholds!r}: expected a dict of class name -> probability, e.g. "
            "{'cloud': 0.3}, or None for the most likely class"
        )
    if probabilities:
        raise ParameterError(
            "thresholds= labels pixels, probabilities=True returns the probabilities "
            "themselves; pass one of the two"
        )
    out = []
    for name, value in thresholds.items():
        if name not in seg.classes:
            raise ParameterError(
                f"thresholds: class {name!r} is not one that {seg.name!r} outputs "
                f"({list(seg.classes)})." + did_you_mean(str(name), seg.classes)
            )
        if not (is_real(value, finite=True) and 0.0 < float(value) <= 1.0):
            raise ParameterError(
                f"thresholds[{name!r}]={value!r}: expected a probability in (0, 1]"
            )
        out.append((str(name), float(value)))
    return tuple(out)


def _peer_version(spec: ModelSpec) -> str:
    from importlib.metadata import PackageNotFoundError, version

    dist = spec.name
    try:
        return f"{dist} {version(dist)} (weights inside the package)"
    except PackageNotFoundError:
        return "unknown"


def _with_crs(out: xr.DataArray, template: xr.DataArray) -> xr.DataArray:
    try:
        import rioxarray  # noqa: F401  (registers .rio)

        crs = template.rio.crs
    except Exception:  # no CRS information, or rioxarray missing: keep coords as they are
        return out
    if crs is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = out.rio.write_crs(crs)
    return out
