"""Resumable mask cubes: a Zarr template first, then one region write per (time, y, x) chunk.

The store records which regions are complete in a small ``xcloud_done`` array (one uint8 per
time step and chunk, one Zarr chunk each). A region's flag is set only after its mask data and
its pixel counts are written, so a run killed at any moment never leaves a region that looks
complete but is not, and ``resume=True`` recomputes exactly the regions whose flag is unset.

Each region is one or more whole storage chunks (never part of one), so concurrent region
writes never read-modify-write the same chunk. One run writes a store at a time: it holds a
lock file in the store (local paths) and its run id in the store's attributes, which every
region write checks, so a run whose store was taken over stops instead of mixing its regions
into another run's output.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xcloud.errors import (
    DataTypeError,
    DimensionError,
    ModelMismatchError,
    ParameterError,
    StoreCorruptError,
    StoreExistsError,
    StoreLockedError,
    StoreTakenError,
    XCloudError,
    did_you_mean,
    is_whole,
    warn,
)
from xcloud.io.zarr import (
    check_target,
    local_path,
    regular_chunks,
    store_exists,
    store_uri,
    to_zarr,
)

__all__ = [
    "mask_to_zarr",
    "Region",
    "ModelMismatchError",
    "StoreCorruptError",
    "StoreLockedError",
    "StoreTakenError",
    "DONE_VAR",
    "COUNTS_VAR",
    "LOCK_SUFFIX",
    "lock_path",
]

DONE_VAR = "xcloud_done"
COUNTS_VAR = "xcloud_counts"
#: Suffix of the writer's lock file beside a local store (``mask.zarr.xcloud-lock``), removed
#: when the run ends; beside, not inside, so that Zarr never sees a foreign file in the store.
LOCK_SUFFIX = ".xcloud-lock"
#: Attribute holding the id of the run that writes the store (removed once it is complete).
RUN_ID = "xcloud_run_id"
#: Provenance that may differ between the run that started a store and the one that resumes it
#: (the items a search skipped: the items it used, ``stac_item_ids``, are compared).
_NOT_COMPARED = ("xcloud_version", "xcloud_complete", RUN_ID, "xcloud_skipped_items")
#: Columns of ``xcloud_counts``: pixels that are cloud or thin cloud, nodata, all.
COUNT_NAMES = ("cloudy", "nodata", "total")


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
        raise DataTypeError(
            f"mask_to_zarr needs a store path (a local or fsspec URL string), got "
            f"{type(store).__name__}; pass the path"
        )
    return os.fspath(store)


def _bounds(chunks: tuple[int, ...]) -> list[slice]:
    edges = np.concatenate([[0], np.cumsum(chunks)])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _counts(block: np.ndarray) -> np.ndarray:
    """A mask block's pixel counts, in the order of :data:`COUNT_NAMES`."""
    from xcloud.models import CLASSES, NODATA

    cloudy = np.isin(block, [CLASSES["cloud"], CLASSES.get("thin_cloud", CLASSES["cloud"])])
    return np.array(
        [np.count_nonzero(cloudy), np.count_nonzero(block == NODATA), block.size], np.int64
    )


def _claimed(path: str, run_id: str):
    """The store's group if this run still owns it, else :class:`StoreTakenError`."""
    import zarr

    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    theirs = group.attrs.get(RUN_ID)
    if theirs != run_id:
        raise StoreTakenError(
            f"another run (run id {theirs!r}) has taken over the store {path} since this run "
            f"({run_id!r}) started; this run stops so as not to mix its regions into that "
            "run's output"
        )
    return group


def _write_region(
    block: np.ndarray, path: str, run_id: str, t: int, i: int, j: int, y: slice, x: slice
) -> np.ndarray:
    """One region's task: write its mask block (after checking that this run still owns the
    store), then its pixel counts, then, last, its done flag; returns the counts. Each region
    has its own chunk of the counts and flags, so the tasks write in parallel, off the
    scheduler's thread."""
    group = _claimed(path, run_id)
    _array(group, "cloud_mask")[t : t + 1, y, x] = block
    counts = _counts(block)
    _array(group, COUNTS_VAR)[t, i, j, :] = counts
    _array(group, DONE_VAR)[t, i, j] = 1  # last: only now does the region count as complete
    return counts


def _provenance(mask: xr.DataArray, items: list[str], fingerprint: str) -> dict[str, Any]:
    keep = {k: v for k, v in mask.attrs.items() if k.startswith("xcloud_")}
    keep["stac_item_ids"] = list(items)
    keep["xcloud_input_shape"] = [int(n) for n in mask.shape]
    keep["xcloud_input_fingerprint"] = fingerprint
    return keep


def _fingerprint(source: xr.Dataset | xr.DataArray, mask: xr.DataArray) -> str:
    """A hash that tells this job's input from another of the same shape: the mask's
    coordinates, the input's attributes and, for reflectance without STAC item ids (which name
    the input already), the values of 8 pixels: spread over the time steps, and within each
    step inside its first 256 x 256 px, so about one chunk per sampled step is read."""
    h = hashlib.sha256()
    for dim in mask.dims:
        if dim in mask.coords:
            h.update(str(dim).encode())
            h.update(np.ascontiguousarray(mask[dim].values).tobytes())
    h.update(json.dumps(source.attrs, sort_keys=True, default=str).encode())
    if isinstance(source, xr.Dataset) and not source.attrs.get("stac_item_ids"):
        import dask

        n = 8
        # where to sample: all time steps, the first 256 px along y and x (independent of the
        # chunks, which resume may change; inside the first chunk of most cubes)
        extents = [mask.shape[0], *(min(n, 256) for n in mask.shape[1:])]
        where = {
            dim: xr.DataArray(
                [(size * (2 * k + 1 + 5 * k * i)) // (2 * n) % size for k in range(n)],
                dims="xcloud_sample",
            )
            for i, (dim, size) in enumerate(zip(mask.dims, extents, strict=True))
            if dim in source.dims
        }
        names = sorted(str(v) for v in source.data_vars if set(source[v].dims) >= set(where))
        picked = [source[v].isel(where).data for v in names]
        for value in dask.compute(*picked):
            h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def _open_attrs(path: str) -> dict[str, Any]:
    """The store's group attributes, or :class:`StoreCorruptError` naming the fix."""
    import zarr

    try:
        return dict(zarr.open_group(path, mode="r", use_consolidated=False).attrs)
    except Exception as e:
        raise StoreCorruptError(
            f"the store {path} cannot be read ({type(e).__name__}: {e}); it cannot be resumed: "
            "pass overwrite=True to write it again, or choose a new path"
        ) from e


def _check_resumable(path: str, prov: Mapping[str, Any], region_px: tuple[int, int]) -> None:
    """Refuse to resume a store that another job wrote: other model or settings, other input,
    other regions."""
    import zarr

    old = _open_attrs(path)
    keys = {k for k in [*prov, *old] if k.startswith("xcloud_") and k not in _NOT_COMPARED}
    for key in sorted(keys - {"xcloud_input_shape", "xcloud_input_fingerprint"}):
        # (stores written before precision= existed have no xcloud_precision: they were "auto")
        default = "auto" if key == "xcloud_precision" else None
        if str(old.get(key, default)) != str(prov.get(key, default)):
            raise ModelMismatchError(
                f"the store {path} was written with {key}={old.get(key)!r}, this run has "
                f"{prov.get(key)!r}; write to a new store, or pass overwrite=True to replace it"
            )
    for key in ("xcloud_input_shape", "stac_item_ids", "xcloud_input_fingerprint"):
        if old.get(key) != prov.get(key):
            raise ModelMismatchError(
                f"the store {path} was written from other input ({key} differs: "
                f"{old.get(key)!r} vs {prov.get(key)!r}); resume only the same search, or pass "
                "overwrite=True to replace it"
            )
    try:
        stored = tuple(zarr.open_array(path, path="cloud_mask", mode="r").chunks[1:])
    except Exception as e:
        raise StoreCorruptError(
            f"the store {path} has no readable cloud_mask array ({e}); pass overwrite=True to "
            "write it again, or choose a new path"
        ) from e
    if stored != tuple(region_px):
        cy, cx = stored
        hint = f"chunks={cy}" if cy == cx else f"chunks={{'y': {cy}, 'x': {cx}}}"
        raise ModelMismatchError(
            f"the store {path} holds regions of {cy} x {cx} px; this run's are "
            f"{region_px[0]} x {region_px[1]} px; pass {hint} to resume it"
        )


def _stored_regions(path: str, ydim: str, xdim: str) -> dict[str, int] | None:
    """The region size of an existing store (its ``cloud_mask`` storage chunks), or None where
    there is no readable store."""
    import zarr

    if not store_exists(path):
        return None
    try:
        _, cy, cx = zarr.open_array(path, path="cloud_mask", mode="r").chunks
    except Exception:
        return None  # _check_resumable names the damage
    return {ydim: int(cy), xdim: int(cx)}


def _verified_done(group, path: str) -> np.ndarray:
    """The done flags, with regions whose data cannot be read or does not match its recorded
    counts (a truncated or deleted chunk file) set back to not done."""
    done_arr, counts_arr = _array(group, DONE_VAR), _array(group, COUNTS_VAR)
    mask = _array(group, "cloud_mask")
    done = np.asarray(done_arr[...])
    counts = np.asarray(counts_arr[...])
    _, cy, cx = mask.chunks
    damaged = 0
    for t, i, j in zip(*np.nonzero(done), strict=True):
        try:
            block = np.asarray(mask[t, i * cy : (i + 1) * cy, j * cx : (j + 1) * cx])
            ok = np.array_equal(_counts(block), counts[t, i, j])
        except Exception:
            ok = False
        if not ok:
            done_arr[t, i, j] = 0
            done[t, i, j] = 0
            damaged += 1
    if damaged:
        warn(
            f"{damaged} region(s) of the store {path} were damaged (unreadable, or not matching "
            "their recorded pixel counts); computing them again",
        )
    return done


@contextmanager
def _writer_lock(path: str, run_id: str):
    """Hold the lock file beside a local store for the run; refuse while a live run holds it.

    A lock left by a dead process on this host is taken over; one from another host is
    refused, since its process cannot be checked from here. Remote stores have no lock: the
    run id that every region write checks still stops a run whose store was taken over."""
    lock = lock_path(path)
    if lock is None:
        yield
        return
    me = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname()}
    try:
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = _lock_holder(lock)
                if holder is not None and _alive(holder):
                    raise StoreLockedError(
                        f"the store {path} is being written by another run (pid "
                        f"{holder.get('pid')} on {holder.get('host')}); wait for it to finish, "
                        f"or, if no run is writing it, delete {lock}"
                    ) from None
                os.remove(lock)  # a dead run's lock
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            break
        yield
    finally:
        if (_lock_holder(lock) or {}).get("run_id") == run_id:
            os.remove(lock)


def lock_path(store: Any) -> str | None:
    """The writer's lock file of a local store, or None for a remote one.

    >>> lock_path("/data/mask.zarr/")
    '/data/mask.zarr.xcloud-lock'
    """
    local = local_path(store)
    return None if local is None else local.rstrip("/" + os.sep) + LOCK_SUFFIX


def _lock_holder(lock: str) -> dict[str, Any] | None:
    """The lock's JSON; ``{}`` if it cannot be read yet (a writer between create and write)."""
    try:
        with open(lock) as f:
            return dict(json.load(f))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return {}


def _alive(holder: Mapping[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return True  # cannot tell from here: treat as live
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            f"max_in_flight={max_in_flight!r}: expected a whole number >= 1 (local threads "
            "computing at once), or None for one per core"
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
    stac: bool | str | os.PathLike = False,
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
        Continue a store left by an interrupted run: only regions not marked done are computed,
        after the done ones are read back and checked against their recorded pixel counts
        (damaged ones are computed again, with a warning). Refused
        (:class:`ModelMismatchError`) if the store was written by another model, with other
        settings (``xcloud_*`` attributes such as the route threshold), from other input
        (coordinates, attributes, STAC item ids, a sample of pixel values), or in other
        regions than ``chunks`` asks for; :class:`StoreCorruptError` if its metadata cannot be
        read.
    overwrite
        Replace an existing store, only if xcloud wrote it (otherwise an existing store is
        refused unless ``resume``). A directory that is not a Zarr store is never written
        into, whatever this says.
    chunks
        Spatial region size in pixels (an int or ``{"y": .., "x": ..}``); default: the input's,
        or on ``resume`` the store's. Irregular chunks are made regular, so that every region
        is whole storage chunks.
    mask_kw
        More keyword arguments for :func:`xcloud.mask`.
    client
        A ``distributed.Client`` to run regions on; default: local threads.
    max_in_flight
        Local threads computing at once (default: one per core). On a cluster the scheduler
        decides, and every shared task runs once.
    progress
        Show a tqdm progress bar over regions.
    on_region
        Called with each :class:`Region` once it is marked done (e.g. to log or to stop).
    stac
        Also publish the finished masks as a STAC catalogue (:func:`xcloud.to_stac`: one Item
        and COG per time step, the store as the Collection's ``zarr`` asset) in this
        directory, or with ``True`` beside the store (``masks.zarr`` -> ``masks.stac``). The
        directory is checked before any masking starts.

    Returns
    -------
    xarray.Dataset
        The store, opened: ``cloud_mask`` with per-time ``cloud_fraction`` (cloud and thin
        cloud over valid pixels) and ``nodata_fraction`` coordinates and provenance attrs.

    Notes
    -----
    While a run writes, or after it crashed, the store says ``xcloud_complete = 0`` and every
    pixel not yet written reads as nodata (255, the arrays' fill value), never as clear. One
    run writes a store at a time: a second is refused (:class:`StoreLockedError`) while the
    lock file beside a local store names a live process, and a run whose store another run
    took over anyway stops (:class:`StoreTakenError`).

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
        skipped = ds_or_mask.attrs.get("xcloud_skipped_items")
        extra_attrs = {} if skipped is None else {"xcloud_skipped_items": skipped}
    elif isinstance(ds_or_mask, xr.DataArray):
        m = ds_or_mask
        extra_attrs = {}
    else:
        raise DataTypeError(
            f"expected a reflectance Dataset or a cloud_mask DataArray, got "
            f"{type(ds_or_mask).__name__}"
        )
    items = list(m.attrs.get("stac_item_ids", []))
    # where the mask came from (STAC API, collection, item times), for xcloud.to_stac
    extra_attrs |= {k: v for k, v in m.attrs.items() if k.startswith("stac_")}
    extra_attrs.pop("stac_item_ids", None)  # (in the provenance)
    if m.ndim == 2:
        m = m.expand_dims("time")
    if m.dims[0] != "time" or m.ndim != 3:
        raise DimensionError(
            f"mask_to_zarr writes (time, y, x) cubes; the mask has dims {m.dims}; "
            "transpose it or add a time dimension"
        )
    tdim, ydim, xdim = (str(d) for d in m.dims)
    if resume and chunks is None:
        chunks = _stored_regions(path, ydim, xdim)  # resume in the store's regions
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
    # one region = whole storage chunks: the store is chunked like the (regular) regions
    fixed = regular_chunks(m.dims, m.chunks)
    m = m.chunk(fixed) if fixed else m
    assert m.chunks is not None  # (still dask)
    ybounds, xbounds = _bounds(m.chunks[1]), _bounds(m.chunks[2])
    nt, ny, nx = m.shape[0], len(ybounds), len(xbounds)

    check_target(path, replace=overwrite)
    stac_dir = _stac_dir(path, stac)
    if stac_dir is not None:
        from xcloud.io.publish import check_catalogue_target

        check_catalogue_target(stac_dir, overwrite or resume)
    exists = store_exists(path)
    if exists and not overwrite and not resume:
        raise StoreExistsError(
            f"the Zarr store {path} already exists; pass resume=True to complete it or "
            "overwrite=True to replace it"
        )
    prov = _provenance(m, items, _fingerprint(ds_or_mask, m))  # (reads a few input pixels)
    run_id = uuid.uuid4().hex
    with _writer_lock(path, run_id):
        if exists and resume:
            _check_resumable(path, prov, (m.chunks[1][0], m.chunks[2][0]))
            import zarr

            zarr.open_group(path, mode="r+", use_consolidated=False).attrs[RUN_ID] = run_id
        else:
            _write_template(m, path, prov | extra_attrs | {RUN_ID: run_id}, nt, ny, nx)
        out = _run_regions(
            m, path, run_id, ybounds, xbounds, client, max_in_flight, progress, on_region
        )
    if stac_dir is not None:
        from xcloud.io.publish import to_stac

        to_stac(out, stac_dir, zarr_href=store_uri(path), overwrite=overwrite or resume)
    return out


def _stac_dir(path: str, stac: bool | str | os.PathLike) -> str | None:
    """The catalogue directory ``stac=`` asks for (None: no catalogue)."""
    if stac is False or stac is None:
        return None
    if stac is True:
        if "://" in path:
            raise ParameterError(
                f"stac=True puts the catalogue beside the store, but {path} is not a local "
                "path; pass stac='a/local/directory'"
            )
        base = path.rstrip("/")
        return (base[: -len(".zarr")] if base.endswith(".zarr") else base) + ".stac"
    if isinstance(stac, (str, os.PathLike)):
        return os.fspath(stac)
    raise ParameterError(
        f"stac={stac!r}: expected True (a catalogue beside the store), a directory, or False"
    )


def _run_regions(m, path, run_id, ybounds, xbounds, client, max_in_flight, progress, on_region):
    """Compute and write every region not yet done, in one graph, then finalise the store.

    One graph for all regions: the overlap-add work that neighbouring regions share (each
    chunk's tiles reach into its neighbours) is computed once, as ``mask().compute()`` does,
    instead of once per region that needs it."""
    group = _claimed(path, run_id)
    done = _verified_done(group, path)
    nt, ny, nx = done.shape
    todo = [
        Region(t, i, j, ybounds[i], xbounds[j])
        for t in range(nt)
        for i in range(ny)
        for j in range(nx)
        if not done[t, i, j]
    ]
    dsk, keys = _write_graph(m.data, todo, path, run_id)
    regions = dict(zip(keys, todo, strict=True))

    def finish(key, counts: np.ndarray) -> None:
        bar.update(1)
        if on_region is not None:
            on_region(regions[key])

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
            _run_distributed(client, dsk, keys, finish)
        elif keys:
            _run_local(dsk, keys, finish, max_in_flight)
    finally:
        bar.close()
    return _finalise(path, _claimed(path, run_id))


def _write_graph(data, todo: list[Region], path: str, run_id: str) -> tuple[dict, list]:
    """The mask's graph, optimised once, plus one write task per region to do, culled to what
    those need (done regions' blocks are not computed)."""
    import dask
    from dask.base import tokenize
    from dask.optimization import cull

    (opt,) = dask.optimize(data)
    dsk = dict(opt.__dask_graph__())
    name = f"xcloud-write-{tokenize(opt.name, path, run_id)}"
    keys = []
    for r in todo:
        key = (name, r.t, r.i, r.j)
        dsk[key] = (_write_region, (opt.name, r.t, r.i, r.j), path, run_id, r.t, r.i, r.j, r.y,
                    r.x)  # fmt: skip
        keys.append(key)
    culled, _ = cull(dsk, keys)
    return culled, keys


def _array(group, name: str):
    """``group[name]`` as a zarr Array (typed: a Group's items may be groups)."""
    import zarr

    arr = group[name]
    if not isinstance(arr, zarr.Array):  # pragma: no cover - a corrupted store
        raise StoreCorruptError(f"{name!r} in the store is not an array; the store is damaged")
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


def _run_local(dsk: dict, keys: list, finish, max_in_flight) -> None:
    """The graph on local threads (``max_in_flight`` of them, default one per core); ``finish``
    runs on this thread after each region's write (dask calls its callbacks here)."""
    import os

    from dask.callbacks import Callback
    from dask.threaded import get

    wanted = set(keys)

    class _Done(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if key in wanted:
                finish(key, result)

    with _Done():
        get(dsk, keys, num_workers=max_in_flight or max(1, os.cpu_count() or 1))


def _run_distributed(client, dsk: dict, keys: list, finish) -> None:
    """The graph on a dask.distributed cluster: its scheduler runs each shared task once."""
    from distributed import as_completed

    if not keys:
        return
    futures = client.get(dsk, keys, sync=False)
    queue = as_completed(futures, with_results=True)
    try:
        for fut, counts in queue:
            finish(fut.key, counts)
    except BaseException:
        client.cancel(futures)
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
        del group.attrs[RUN_ID]  # a complete store has no writer
        with warnings.catch_warnings():  # not yet in the v3 spec: noise for users (see to_zarr)
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            zarr.consolidate_metadata(path)
    return xr.open_zarr(path, consolidated=None)
