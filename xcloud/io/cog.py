"""Masks as Cloud-Optimised GeoTIFFs, one per time step, that QGIS, GDAL and rasterio read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xcloud.errors import DimensionError, ParameterError, StoreExistsError, is_whole
from xcloud.models import CLASS_COLOURS, NODATA

__all__ = ["to_cog", "write_cog", "check_blocksize", "north_up_steps", "stamp", "COLOURS"]

#: Colour table of the mask codes (RGBA 0-255): the colours ``xcloud.plot`` draws.
COLOURS: dict[int, tuple[int, int, int, int]] = {
    code: tuple(round(255 * c) for c in rgba)  # type: ignore[misc]
    for code, rgba in CLASS_COLOURS.items()
}


def stamp(value) -> str:
    """A file-name-safe label for a time coordinate value."""
    if np.issubdtype(np.asarray(value).dtype, np.datetime64):
        text = str(np.datetime_as_string(np.asarray(value), unit="s"))
        return text.replace("-", "").replace(":", "")
    return str(value).replace(os.sep, "_").replace(" ", "_")


def to_cog(
    mask: xr.DataArray,
    directory: str | os.PathLike,
    *,
    prefix: str = "cloud_mask",
    overwrite: bool = False,
    blocksize: int = 512,
) -> list[Path]:
    """Write a ``cloud_mask`` as one Cloud-Optimised GeoTIFF per time step.

    Each file is uint8 with nodata 255, deflate-compressed, tiled, with internal overviews made
    by nearest-neighbour resampling (codes stay codes), the class colour table
    (:data:`COLOURS`), and the mask's CRS and transform.

    Parameters
    ----------
    mask
        ``(time, y, x)`` or ``(y, x)`` codes from :func:`xcloud.mask` (lazy is fine: one time
        step is computed at a time).
    directory
        Folder for the files, ``<prefix>_<time>.tif`` (created if missing).
    overwrite
        Replace files of the same names; otherwise an existing one is refused.
    blocksize
        Tile edge in pixels (a multiple of 16).

    Returns
    -------
    list of pathlib.Path
        The files written, in time order.

    Examples
    --------
    >>> import numpy as np, xarray as xr, rioxarray, tempfile, xcloud
    >>> m = xr.DataArray(np.zeros((64, 64), "uint8"), dims=("y", "x"), name="cloud_mask",
    ...                  coords={"y": 5e6 - 10 * np.arange(64), "x": 3e5 + 10 * np.arange(64)})
    >>> [p.name for p in xcloud.to_cog(m.rio.write_crs("EPSG:32633"), tempfile.mkdtemp())]
    ['cloud_mask.tif']
    """
    import rioxarray  # noqa: F401  (the .rio accessor)

    check_blocksize(blocksize)
    mask, steps = north_up_steps(mask, "to_cog()")
    transform, crs = mask.rio.transform(), mask.rio.crs
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / (f"{prefix}.tif" if t is None else f"{prefix}_{stamp(t)}.tif")
             for t, _ in steps]  # fmt: skip
    taken = [p for p in paths if p.exists()]
    if taken and not overwrite:
        raise StoreExistsError(
            f"{taken[0]} exists; pass overwrite=True to replace the masks, or another directory"
        )
    for path, (_, step) in zip(paths, steps, strict=True):
        write_cog(np.asarray(step.values, dtype=np.uint8), path, crs, transform, blocksize)
    return paths


def north_up_steps(
    mask: xr.DataArray, caller: str
) -> tuple[xr.DataArray, list[tuple[Any, xr.DataArray]]]:
    """``mask`` north up and its ``(time value or None, 2-D step)`` pairs; a mask of integer
    codes with dims ``(time, y, x)`` or ``(y, x)`` is required."""
    if not isinstance(mask, xr.DataArray) or not np.issubdtype(mask.dtype, np.integer):
        raise ParameterError(
            f"{caller} writes a cloud_mask (integer codes from xcloud.mask), got "
            f"{type(mask).__name__} of {getattr(mask, 'dtype', '?')}"
        )
    if mask.ndim not in (2, 3):
        raise DimensionError(f"{caller} writes (time, y, x) or (y, x) masks; got dims {mask.dims}")
    ydim = str(mask.dims[-2])
    y = mask.coords.get(ydim)
    if y is not None and y.size > 1 and float(y[-1] - y[0]) > 0:
        mask = mask.isel({ydim: slice(None, None, -1)})  # GeoTIFFs are north up
    if mask.ndim == 2:
        return mask, [(None, mask)]
    tdim = mask.dims[0]
    times = mask[tdim].values if tdim in mask.coords else range(mask.shape[0])
    return mask, [(times[i], mask[i]) for i in range(mask.shape[0])]


def check_blocksize(blocksize) -> None:
    """Refuse a COG tile edge that is not a positive multiple of 16 (GDAL's requirement)."""
    if not is_whole(blocksize, 16) or blocksize % 16:
        raise ParameterError(f"blocksize={blocksize!r}: expected a multiple of 16, e.g. 512")


def write_cog(codes: np.ndarray, path: Path, crs, transform, blocksize: int = 512) -> None:
    """One 2-D array of mask codes as a COG: nodata 255, colour table, nearest overviews."""
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    profile = dict(
        driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1, dtype="uint8",
        crs=crs, transform=transform, nodata=NODATA,
    )  # fmt: skip
    with MemoryFile() as mem, mem.open(**profile) as src:
        src.write(codes, 1)
        src.write_colormap(1, COLOURS)
        src.set_band_description(1, "cloud_mask: 0 clear 1 cloud 2 thin_cloud 3 cloud_shadow")
        rasterio.shutil.copy(
            src, str(path), driver="COG", compress="DEFLATE", blocksize=blocksize,
            overview_resampling="NEAREST", overviews="AUTO",
        )  # fmt: skip
