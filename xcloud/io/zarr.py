"""Writing mask cubes to Zarr v3: chunk-aligned encoding, regions, appends, no silent overwrite."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from xcloud.errors import DataTypeError, ParameterError, StoreExistsError
from xcloud.models import NODATA

__all__ = [
    "to_zarr",
    "store_exists",
    "check_target",
    "is_xcloud_store",
    "local_path",
    "store_uri",
]

_MODES = (None, "w", "w-", "a", "r+")


def store_exists(store: Any) -> bool:
    """True if ``store`` (a path or a zarr Store) already holds a Zarr group or array.

    >>> import tempfile, os
    >>> store_exists(os.path.join(tempfile.mkdtemp(), "nothing.zarr"))
    False
    """
    if isinstance(store, (str, os.PathLike)):
        path = os.fspath(store)
        if "://" in path and not path.startswith("file://"):
            import zarr

            try:
                zarr.open_group(path, mode="r")
                return True
            except Exception:
                return False
        path = path.removeprefix("file://")
        return os.path.exists(os.path.join(path, "zarr.json")) or os.path.exists(
            os.path.join(path, ".zgroup")
        )
    import zarr

    try:
        zarr.open_group(store, mode="r")
        return True
    except Exception:
        return False


def local_path(store: Any) -> str | None:
    """The local directory of ``store`` (a path or ``file://`` URL), or None for a remote URL
    or a zarr Store object."""
    if not isinstance(store, (str, os.PathLike)):
        return None
    path = os.fspath(store)
    if "://" in path and not path.startswith("file://"):
        return None
    return path.removeprefix("file://")


def store_uri(store: str | os.PathLike) -> str:
    """An absolute URI of a store path, for links to it (remote URLs stay as they are).

    >>> store_uri("s3://bucket/masks.zarr")
    's3://bucket/masks.zarr'
    """
    path = os.fspath(store)
    if "://" in path:
        return path
    from pathlib import Path

    return Path(path).resolve().as_uri()


def _attrs_of(meta_file: str) -> dict[str, Any] | None:
    try:
        with open(meta_file) as f:
            attrs = json.load(f).get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return None
    return attrs if isinstance(attrs, dict) else None


def is_xcloud_store(store: Any) -> bool:
    """True if xcloud wrote ``store``: its group or one of its arrays carries ``xcloud_*``
    attributes. A store whose group metadata is damaged still counts when an array's does.

    >>> import tempfile
    >>> is_xcloud_store(tempfile.mkdtemp())
    False
    """
    path = local_path(store)
    if path is None or not os.path.isdir(path):
        return False
    metas = [os.path.join(path, "zarr.json")]
    metas += [os.path.join(path, n, "zarr.json") for n in sorted(os.listdir(path))]
    for meta in metas:
        attrs = _attrs_of(meta)
        if attrs and any(str(k).startswith("xcloud_") for k in attrs):
            return True
    return False


def check_target(store: Any, *, replace: bool) -> None:
    """Refuse to write where that would delete what xcloud did not write.

    A missing path or an empty directory is a fine target. A non-empty directory that is not a
    Zarr store is refused whatever ``replace`` says; with ``replace`` an existing Zarr store is
    accepted only if xcloud wrote it (:func:`is_xcloud_store`). Remote stores are not checked.
    """
    path = local_path(store)
    if path is None or not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise StoreExistsError(
            f"{path} is a file, not a Zarr store; xcloud never deletes files it did not write: "
            "choose a new path"
        )
    names = sorted(os.listdir(path))
    if not names:
        return
    if not store_exists(path) and not is_xcloud_store(path):
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise StoreExistsError(
            f"{path} is a non-empty directory that is not a Zarr store (it holds {shown}); "
            "xcloud never deletes files it did not write: choose a new path, or empty the "
            "directory yourself"
        )
    if replace and not is_xcloud_store(path):
        raise StoreExistsError(
            f"the Zarr store {path} was not written by xcloud (no xcloud_* attributes); xcloud "
            "replaces only its own stores: choose a new path, or delete that store yourself"
        )


def regular_chunks(dims, chunks) -> dict[Any, int]:
    """The rechunk (``{dim: size}``) that makes ``chunks`` ones Zarr can hold: equal interior
    chunks and a last one no larger; empty when they already are.

    >>> regular_chunks(("y", "x"), ((100, 412, 100, 412), (64, 64, 10)))
    {'y': 412}
    """
    fixed = {}
    for dim, ch in zip(dims, chunks, strict=True):
        if len(ch) > 1 and (len(set(ch[:-1])) > 1 or ch[-1] > ch[0]):
            fixed[dim] = max(ch)
    return fixed


def _regular_chunks(obj: xr.Dataset) -> xr.Dataset:
    """Rechunk dask variables whose chunks Zarr cannot hold (irregular interior chunks)."""
    fixed = {}
    for var in obj.variables.values():
        if var.chunks is not None:
            fixed.update(regular_chunks(var.dims, var.chunks))
    return obj.chunk(fixed) if fixed else obj


def _encoding(obj: xr.Dataset) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    for name, var in obj.data_vars.items():
        # keep CF links that rioxarray puts in the encoding (grid_mapping -> spatial_ref)
        e: dict[str, Any] = {k: var.encoding[k] for k in ("grid_mapping",) if k in var.encoding}
        if var.chunks is not None:
            e["chunks"] = tuple(c[0] for c in var.chunks)
        if np.issubdtype(var.dtype, np.integer):
            # keep the integer codes as they are on read: no _FillValue -> NaN masking
            e["_FillValue"] = None
            if NODATA in np.atleast_1d(var.attrs.get("flag_values", [])):
                # a mask's unwritten or lost chunks read as nodata, never as "clear" (0)
                e["fill_value"] = NODATA
        enc[str(name)] = e
    return enc


def _with_grid_mapping_coordinate(obj: xr.Dataset) -> xr.Dataset:
    """List each variable's CF grid mapping (rioxarray's ``spatial_ref``) in its
    ``coordinates`` attribute, so a plain ``xr.open_zarr`` gives it back as a coordinate and
    rioxarray finds the CRS."""
    obj = obj.copy(deep=False)
    for var in obj.data_vars.values():
        gm = var.encoding.get("grid_mapping", var.attrs.get("grid_mapping"))
        if gm is None or gm not in obj.variables:
            continue
        coords = str(var.encoding.get("coordinates", "")).split()
        if gm not in coords:
            obj[var.name].encoding["coordinates"] = " ".join(coords + [str(gm)])
    return obj


def to_zarr(
    obj: xr.DataArray | xr.Dataset,
    store: Any,
    *,
    mode: str | None = None,
    region: Mapping[str, slice] | str | None = None,
    append_dim: str | None = None,
    compute: bool = True,
    encoding: Mapping[str, Mapping[str, Any]] | None = None,
    **kwargs: Any,
):
    """Write a mask cube to a Zarr v3 store.

    Parameters
    ----------
    obj
        The mask (``cloud_mask`` DataArray) or a Dataset.
    store
        A path or zarr store.
    mode
        ``None`` (default): create, and refuse if the store exists. ``"w"``: overwrite.
        ``"a"`` / ``"r+"``: modify an existing store (as in :meth:`xarray.Dataset.to_zarr`).
    region
        Write only this region of an existing store (``{"time": slice(0, 2)}`` or ``"auto"``).
    append_dim
        Append along this dimension (``"time"``) to an existing store.
    compute
        ``False`` writes metadata only and returns a dask delayed for the data (templates).
    encoding
        Per-variable encoding overrides; chunks default to the dask chunks.

    Returns
    -------
    What :meth:`xarray.Dataset.to_zarr` returns (a ZarrStore, or a Delayed with compute=False).

    Examples
    --------
    >>> import numpy as np, xarray as xr, xcloud, tempfile, os
    >>> m = xr.DataArray(np.zeros((2, 4, 4), "uint8"), dims=("time", "y", "x"), name="cloud_mask")
    >>> path = os.path.join(tempfile.mkdtemp(), "mask.zarr")
    >>> _ = xcloud.to_zarr(m, path)
    >>> xr.open_zarr(path)["cloud_mask"].dtype
    dtype('uint8')
    """
    if mode not in _MODES:
        raise ParameterError(f"mode={mode!r} is not one of {list(_MODES)}")
    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name=obj.name or "cloud_mask")
    if not isinstance(obj, xr.Dataset):
        raise DataTypeError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    creating = region is None and append_dim is None
    if creating and mode in (None, "w", "w-"):
        check_target(store, replace=mode == "w")
    exists = store_exists(store)
    if exists and mode is None and creating:
        raise StoreExistsError(
            f"the Zarr store {store!s} already exists; pass mode='w' to overwrite it, "
            "append_dim='time' to add time steps, or region=... to write part of it"
        )
    if (region is not None or append_dim is not None) and not exists:
        raise ParameterError(
            f"cannot write region={region!r} / append_dim={append_dim!r}: the store {store!s} "
            "does not exist yet; write the full cube (or a template with compute=False) first"
        )
    obj = _with_grid_mapping_coordinate(_regular_chunks(obj))
    enc = _encoding(obj) if creating else None
    if enc is not None and encoding:
        for k, v in encoding.items():
            enc.setdefault(k, {}).update(v)
    if mode is None:
        mode = "w-" if creating else ("a" if append_dim else "r+")
    if region is not None and not isinstance(region, str):
        # drop variables that do not span the region's dims (coords already written)
        dims = set(region)
        obj = obj.drop_vars([k for k, v in obj.variables.items() if not dims & set(v.dims)])
    with warnings.catch_warnings():
        # xarray consolidates metadata so xr.open_zarr is quiet and fast; zarr warns that this
        # is not (yet) part of the v3 spec, which is noise for our users
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        return obj.to_zarr(  # type: ignore[call-overload]
            store,
            mode=mode,
            region=region,
            append_dim=append_dim,
            compute=compute,
            encoding=enc,
            zarr_format=3,
            **kwargs,
        )
