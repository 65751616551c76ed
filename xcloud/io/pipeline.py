"""Resumable mask cubes: a Zarr template first, then one region write per (time, y, x) chunk.

The store records which regions are complete in a small ``xcloud_done`` array (one uint8 per
time step and chunk, one Zarr chunk each). A region's flag is set only after its mask data and
its pixel counts are written, so a run killed at any moment never leaves a region that looks
complete but is not, and ``resume=True`` recomputes exactly the regions whose flag is unset.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xcloud.errors import (
    ParameterError,
    StoreExistsError,
    XCloudError,
    did_you_mean,
    is_whole,
)
from xcloud.io.zarr import store_exists, to_zarr

__all__ = ["mask_to_zarr", "Region", "ModelMismatchError", "DONE_VAR", "COUNTS_VAR"]

DONE_VAR = "xcloud_done"
COUNTS_VAR = "xcloud_counts"
#: Columns of ``xcloud_counts``: pixels that are cloud or thin cloud, nodata, all.
COUNT_NAMES = ("cloudy", "nodata", "total")


class ModelMismatchError(XCloudError, ValueError):
    """Resuming into a store written by another model or from other input."""


@dataclass(frozen=True)
class Region:
    """One unit of work: a time step and one spatial chunk."""

    t: int
    i: int
    j: int
    y: slice
    x: slice


def _path(store: Any) -> str:
    import os

    if not isinstance(store, (str, os.PathLike)):
        raise XCloudError(
            f"mask_to_zarr needs a store path (a local or fsspec URL string), got "
            f"{type(store).__name__}; pass the path"
        )
    return os.fspath(store)


def _bounds(chunks: tuple[int, ...]) -> list[slice]:
    edges = np.concatenate([[0], np.cumsum(chunks)])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _write_region(block: np.ndarray, path: str, t: int, y: slice, x: slice) -> np.ndarray:
    """Runs on a worker: write one mask block into the store, return its pixel counts."""
    import zarr

    from xcloud.models import CLASSES, NODATA

    arr = zarr.open_array(path, path="cloud_mask", mode="r+")
    arr[t : t + 1, y, x] = block
    cloudy = np.isin(block, [CLASSES["cloud"], CLASSES.get("thin_cloud", CLASSES["cloud"])])
    return np.array(
        [np.count_nonzero(cloudy), np.count_nonzero(block == NODATA), block.size], np.int64
    )


def _provenance(mask: xr.DataArray, items: list[str]) -> dict[str, Any]:
    keep = {k: v for k, v in mask.attrs.items() if k.startswith("xcloud_")}
    keep["stac_item_ids"] = list(items)
    keep["xcloud_input_shape"] = [int(n) for n in mask.shape]
    return keep


def _check_resumable(path: str, prov: Mapping[str, Any], time_values) -> None:
    old = xr.open_zarr(path, consolidated=None).attrs
    # (stores written before precision= existed have no xcloud_precision: they were "auto")
    for key in ("xcloud_model", "xcloud_model_weights_sha256", "xcloud_precision"):
        default = "auto" if key == "xcloud_precision" else None
        if str(old.get(key, default)) != str(prov.get(key, default)):
            raise ModelMismatchError(
                f"the store {path} was written with {key}={old.get(key)!r}, this run has "
                f"{prov.get(key)!r}; write to a new store, or pass overwrite=True to replace it"
            )
    for key in ("xcloud_input_shape", "stac_item_ids"):
        if list(old.get(key, [])) != list(prov.get(key, [])):
            raise ModelMismatchError(
                f"the store {path} was written from other input ({key} differs: "
                f"{old.get(key)!r} vs {prov.get(key)!r}); resume only the same search, or pass "
                "overwrite=True to replace it"
            )


def _check_arguments(ds_or_mask, resume, overwrite, chunks, mask_kw, max_in_flight) -> None:
    """Refuse contradictory or out-of-range arguments before anything is read or written."""
    import inspect

    if resume and overwrite:
        raise ParameterError(
            "resume=True and overwrite=True: resume keeps the regions the store already holds, "
            "overwrite deletes them; pass one of the two"
        )
    sizes = chunks.values() if isinstance(chunks, Mapping) else [chunks]
    if chunks is not None and not all(is_whole(v, 1) for v in sizes):
        raise ParameterError(
            f"chunks={chunks!r}: expected a region size in pixels (a whole number >= 1, e.g. "
            "1024) or {'y': .., 'x': ..}, or None for the input's chunks"
        )
    if max_in_flight is not None and not is_whole(max_in_flight, 1):
        raise ParameterError(
            f"max_in_flight={max_in_flight!r}: expected a whole number >= 1 (regions computing "
            "at once), or None for twice the threads"
        )
    if mask_kw is not None:
        if not isinstance(mask_kw, Mapping):
            raise ParameterError(f"mask_kw={mask_kw!r}: expected a dict of xcloud.mask keywords")
        if isinstance(ds_or_mask, xr.DataArray):
            raise ParameterError(
                f"mask_kw={dict(mask_kw)!r} given with a mask: the input is already masked, so "
                "there is nothing to pass them to; give the reflectance Dataset instead"
            )
        from xcloud.masking import mask as _mask

        known = [p for p in inspect.signature(_mask).parameters if p not in ("obj", "model")]
        for key in mask_kw:
            if key == "model":
                raise ParameterError("mask_kw={'model': ..}: pass model= to mask_to_zarr itself")
            if key not in known:
                raise ParameterError(
                    f"mask_kw key {key!r} is not a keyword of xcloud.mask (those are {known})."
                    + did_you_mean(str(key), [*known, "model"])
                )


def mask_to_zarr(
    ds_or_mask: xr.Dataset | xr.DataArray,
    store: Any,
    *,
    model: str = "cascade",
    resume: bool = False,
    overwrite: bool = False,
    chunks: int | Mapping[str, int] | None = None,
    mask_kw: Mapping[str, Any] | None = None,
    client: Any = None,
    max_in_flight: int | None = None,
    progress: bool = True,
    on_region: Callable[[Region], None] | None = None,
) -> xr.Dataset:
    """Mask a (time, y, x) cube into a resumable Zarr store, one region at a time.

    Parameters
    ----------
    ds_or_mask
        Reflectance (as :func:`xcloud.open_stac` returns), masked with ``model``, or a lazy
        ``cloud_mask`` DataArray already made by :func:`xcloud.mask`.
    store
        Path of the Zarr store.
    model
        Registry name, used when ``ds_or_mask`` is reflectance.
    resume
        Continue a store left by an interrupted run: only regions not marked done are computed.
        Refused (:class:`ModelMismatchError`) if the store was written by another model or from
        other input.
    overwrite
        Replace an existing store (otherwise an existing store is refused unless ``resume``).
    chunks
        Spatial chunk size in pixels (an int or ``{"y": .., "x": ..}``); default: the input's.
    mask_kw
        More keyword arguments for :func:`xcloud.mask`.
    client
        A ``distributed.Client`` to run regions on; default: local threads.
    max_in_flight
        Regions computing at once (default: twice the threads / worker threads).
    progress
        Show a tqdm progress bar over regions.
    on_region
        Called with each :class:`Region` once it is marked done (e.g. to log or to stop).

    Returns
    -------
    xarray.Dataset
        The store, opened: ``cloud_mask`` with per-time ``cloud_fraction`` (cloud and thin
        cloud over valid pixels) and ``nodata_fraction`` coordinates and provenance attrs.

    Examples
    --------
    >>> import numpy as np, xarray as xr, tempfile, os
    >>> m = xr.DataArray(np.zeros((2, 8, 8), "uint8"), dims=("time", "y", "x"),
    ...                  name="cloud_mask", attrs={"xcloud_model": "none"}).chunk(4)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.zarr")
    >>> out = mask_to_zarr(m, path, progress=False)
    >>> out["cloud_fraction"].values.tolist(), int(out["xcloud_done"].sum())
    ([0.0, 0.0], 8)
    """
    path = _path(store)
    _check_arguments(ds_or_mask, resume, overwrite, chunks, mask_kw, max_in_flight)
    if isinstance(ds_or_mask, xr.Dataset):
        from xcloud.masking import mask as _mask

        m = _mask(ds_or_mask, model, **dict(mask_kw or {}))
        items = list(ds_or_mask.attrs.get("stac_item_ids", []))
        extra_attrs = {
            k: ds_or_mask.attrs[k]
            for k in ("stac_url", "stac_collection", "xcloud_skipped_items")
            if k in ds_or_mask.attrs
        }
    elif isinstance(ds_or_mask, xr.DataArray):
        m = ds_or_mask
        items = list(m.attrs.get("stac_item_ids", []))
        extra_attrs = {}
    else:
        raise XCloudError(
            f"expected a reflectance Dataset or a cloud_mask DataArray, got "
            f"{type(ds_or_mask).__name__}"
        )
    if m.ndim == 2:
        m = m.expand_dims("time")
    if m.dims[0] != "time" or m.ndim != 3:
        raise XCloudError(
            f"mask_to_zarr writes (time, y, x) cubes; the mask has dims {m.dims}; "
            "transpose it or add a time dimension"
        )
    tdim, ydim, xdim = (str(d) for d in m.dims)
    if isinstance(chunks, int):
        chunks = {ydim: chunks, xdim: chunks}
    if chunks and set(chunks) - {ydim, xdim}:
        raise ParameterError(
            f"chunks={dict(chunks)!r}: the keys must be the mask's spatial dimensions "
            f"({ydim!r}, {xdim!r}); regions always hold one time step"
        )
    m = m.chunk({tdim: 1, **(dict(chunks) if chunks else {})})
    if m.chunks is None:  # pragma: no cover - .chunk always gives dask
        raise XCloudError("internal: expected a dask-backed mask")
    ybounds, xbounds = _bounds(m.chunks[1]), _bounds(m.chunks[2])
    nt, ny, nx = m.shape[0], len(ybounds), len(xbounds)

    prov = _provenance(m, items)
    exists = store_exists(path)
    if exists and not overwrite and not resume:
        raise StoreExistsError(
            f"the Zarr store {path} already exists; pass resume=True to complete it or "
            "overwrite=True to replace it"
        )
    if exists and resume and not overwrite:
        _check_resumable(path, prov, m[tdim].values)
    else:
        _write_template(m, path, prov | extra_attrs, nt, ny, nx)

    import zarr

    group = zarr.open_group(path, mode="r+")
    done_arr = _array(group, DONE_VAR)
    counts_arr = _array(group, COUNTS_VAR)
    done = np.asarray(done_arr[...])
    todo = [
        Region(t, i, j, ybounds[i], xbounds[j])
        for t in range(nt)
        for i in range(ny)
        for j in range(nx)
        if not done[t, i, j]
    ]

    graph = _RegionGraph(m.data)

    def task(r: Region):
        import dask

        return dask.delayed(_write_region)(graph.block(r), path, r.t, r.y, r.x)

    def finish(r: Region, counts: np.ndarray) -> None:
        counts_arr[r.t, r.i, r.j, :] = counts
        done_arr[r.t, r.i, r.j] = 1  # last: only now does the region count as complete
        bar.update(1)
        if on_region is not None:
            on_region(r)

    from tqdm.auto import tqdm

    bar = tqdm(
        total=nt * ny * nx,
        initial=nt * ny * nx - len(todo),
        desc="masking",
        unit="region",
        disable=not progress,
    )
    try:
        if client is not None:
            _run_distributed(client, todo, task, finish, max_in_flight)
        else:
            _run_local(todo, task, finish, max_in_flight)
    finally:
        bar.close()
    return _finalise(path, group)


class _RegionGraph:
    """The mask's task graph optimised and materialised once; one small culled graph per region.

    Slicing the dask array per region would re-optimise the whole graph for each region
    (quadratic in the number of regions: minutes for a few hundred regions).
    """

    def __init__(self, data) -> None:
        import dask

        (opt,) = dask.optimize(data)
        self.dsk = dict(opt.__dask_graph__())
        self.keys = np.empty(opt.numblocks, dtype=object)
        for idx in np.ndindex(*opt.numblocks):
            self.keys[idx] = (opt.name, *idx)

    def block(self, r: Region):
        from dask.delayed import Delayed
        from dask.optimization import cull

        key = self.keys[r.t, r.i, r.j]
        sub, _ = cull(self.dsk, [key])
        return Delayed(key, sub)


def _array(group, name: str):
    """``group[name]`` as a zarr Array (typed: a Group's items may be groups)."""
    import zarr

    arr = group[name]
    if not isinstance(arr, zarr.Array):  # pragma: no cover - a corrupted store
        raise XCloudError(f"{name!r} in the store is not an array; the store is damaged")
    return arr


def _write_template(m: xr.DataArray, path: str, attrs: Mapping[str, Any], nt, ny, nx) -> None:
    out = m.to_dataset(name="cloud_mask")
    tdim = m.dims[0]
    nan = np.full(nt, np.nan, np.float32)
    out = out.assign_coords(
        cloud_fraction=(
            tdim,
            nan,
            {"long_name": "fraction of valid pixels that are cloud or thin cloud", "units": "1"},
        ),
        nodata_fraction=(
            tdim,
            nan.copy(),
            {"long_name": "fraction of nodata pixels", "units": "1"},
        ),
    )
    out[DONE_VAR] = xr.DataArray(
        np.zeros((nt, ny, nx), np.uint8),
        dims=(tdim, "y_chunk", "x_chunk"),
        attrs={"long_name": "region complete (1) or not (0); set after the region's data"},
    ).chunk({tdim: 1, "y_chunk": 1, "x_chunk": 1})
    out[COUNTS_VAR] = xr.DataArray(
        np.zeros((nt, ny, nx, len(COUNT_NAMES)), np.int64),
        dims=(tdim, "y_chunk", "x_chunk", "count"),
        # variable-length strings: zarr v3 has no specification for numpy's fixed-width '<U6'
        coords={"count": np.array(COUNT_NAMES, dtype=object)},
        attrs={"long_name": "pixel counts per region"},
    ).chunk({tdim: 1, "y_chunk": 1, "x_chunk": 1})
    out.attrs = {**{k: v for k, v in out.attrs.items() if not k.startswith("xcloud_")}, **attrs}
    out.attrs["xcloud_complete"] = 0
    # metadata, coordinates, flags and counts now; the mask itself region by region
    to_zarr(out, path, mode="w", compute=False)
    import zarr

    group = zarr.open_group(path, mode="r+")
    _array(group, DONE_VAR)[...] = 0
    _array(group, COUNTS_VAR)[...] = 0


def _run_local(todo, task, finish, max_in_flight) -> None:
    import os

    workers = max(1, os.cpu_count() or 1)
    limit = max_in_flight or 2 * workers
    pending: dict = {}
    it = iter(todo)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            while True:
                while len(pending) < limit:
                    r = next(it, None)
                    if r is None:
                        break
                    pending[pool.submit(task(r).compute, scheduler="sync")] = r
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    finish(pending.pop(f), f.result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise


def _run_distributed(client, todo, task, finish, max_in_flight) -> None:
    from distributed import as_completed

    threads = sum(client.nthreads().values()) or 1
    limit = max_in_flight or 2 * threads
    it = iter(todo)
    regions: dict = {}

    def submit():
        r = next(it, None)
        if r is None:
            return None
        fut = client.compute(task(r))
        regions[fut.key] = r
        return fut

    first = [f for f in (submit() for _ in range(limit)) if f is not None]
    if not first:
        return
    queue = as_completed(first, with_results=True)
    try:
        for fut, counts in queue:
            finish(regions.pop(fut.key), counts)
            nxt = submit()
            if nxt is not None:
                queue.add(nxt)
    except BaseException:
        client.cancel(list(queue.futures))
        raise


def _finalise(path: str, group) -> xr.Dataset:
    import zarr

    done = np.asarray(_array(group, DONE_VAR)[...])
    if done.all():
        counts = np.asarray(_array(group, COUNTS_VAR)[...]).sum(axis=(1, 2))
        cloudy, nodata, total = counts[:, 0], counts[:, 1], counts[:, 2]
        valid = total - nodata
        with np.errstate(invalid="ignore", divide="ignore"):
            _array(group, "cloud_fraction")[...] = np.where(valid > 0, cloudy / valid, np.nan)
            _array(group, "nodata_fraction")[...] = nodata / total
        group.attrs["xcloud_complete"] = 1
        with warnings.catch_warnings():  # not yet in the v3 spec: noise for users (see to_zarr)
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            zarr.consolidate_metadata(path)
    return xr.open_zarr(path, consolidated=None)
