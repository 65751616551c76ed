"""The bundled sample scene (real data, credited below), for the demo, docs and notebooks.

``s2_l2a_chifunfu_20200429.tif``: a 512 x 512 Sentinel-2 L2A crop at 10 m (bands B02 B03 B04 B08,
uint16 DN, reflectance = DN / 10000, 0 = nodata) over Chifunfu, Tanzania, 2020-04-29, with broken
cumulus and their shadows. It is chip ``adwp`` of "On Cloud N: Cloud Cover Detection Challenge"
(Radiant Earth Foundation, DrivenData, Microsoft), licensed CC-BY-4.0; contains modified
Copernicus Sentinel data 2020.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

__all__ = ["SAMPLE_PATH", "open_sample"]

SAMPLE_PATH = Path(__file__).parent / "s2_l2a_chifunfu_20200429.tif"


def open_sample(chunks: int | None = 256):
    """Open the bundled sample as a Dataset with one variable per band, like odc-stac returns.

    Parameters
    ----------
    chunks
        Dask chunk size in pixels along y and x (``None`` loads numpy arrays).

    Returns
    -------
    xarray.Dataset
        Variables ``B02 B03 B04 B08`` (uint16 DN with ``scale_factor`` 1e-4 and ``nodata`` 0),
        dims ``(time, y, x)``, the CRS in ``spatial_ref``.

    Examples
    --------
    >>> from xcloud.data import open_sample
    >>> ds = open_sample()
    >>> list(ds.data_vars), ds["B02"].dims, ds["B02"].shape
    (['B02', 'B03', 'B04', 'B08'], ('time', 'y', 'x'), (1, 512, 512))
    """
    import rioxarray
    import xarray as xr

    arr = cast(
        xr.DataArray,
        rioxarray.open_rasterio(
            SAMPLE_PATH,
            chunks={"band": -1, "y": chunks, "x": chunks} if chunks else None,
            masked=False,
        ),
    )
    names = list(arr.attrs.get("long_name", ("B02", "B03", "B04", "B08")))
    time = np.array(["2020-04-29T08:20:47"], dtype="datetime64[ns]")
    ds = xr.Dataset(
        {name: arr.isel(band=i, drop=True).expand_dims(time=time) for i, name in enumerate(names)}
    )
    for v in ds.data_vars.values():
        v.attrs = {"nodata": 0, "scale_factor": 1e-4, "add_offset": 0.0, "units": "1"}
    ds.attrs = {
        "platform": "sentinel-2a",
        "processing:level": "L2A",
        "title": "Sentinel-2 L2A sample, Chifunfu (Tanzania), 2020-04-29",
        "source": "On Cloud N: Cloud Cover Detection Challenge, chip adwp",
        "license": "CC-BY-4.0 (Radiant Earth Foundation, DrivenData, Microsoft); "
        "contains modified Copernicus Sentinel data 2020",
    }
    return ds
