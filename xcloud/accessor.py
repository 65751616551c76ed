"""The ``cloud`` accessor on xarray Datasets and DataArrays: a thin facade, no state.

Each method is a line or two calling a plain function (:func:`xcloud.mask`,
:func:`xcloud.to_zarr`); see those for the parameters.
"""

from __future__ import annotations

from typing import Any

import xarray as xr


class _CloudAccessor:
    def __init__(self, obj):
        # store only: an error raised here would surface as a confusing RuntimeError
        self._obj = obj

    def mask(self, model: str = "cascade", **kwargs) -> Any:
        """Cloud-mask this cube; see :func:`xcloud.mask` (a ``cloud_mask`` DataArray, or
        ``(mask, routing)`` with ``return_routing=True``).

        >>> import numpy as np, xarray as xr, xcloud
        >>> ds = xr.Dataset({b: (("y", "x"), np.full((32, 32), 0.04, "float32"))
        ...                  for b in ["blue", "green", "red", "nir"]})
        >>> ds.cloud.mask("ukis-csmask", level="l2a").shape
        (32, 32)
        """
        from xcloud.masking import mask

        return mask(self._obj, model, **kwargs)

    def to_zarr(self, store, **kwargs):
        """Write a mask (or any cube) to a Zarr v3 store; see :func:`xcloud.to_zarr`."""
        from xcloud.io.zarr import to_zarr

        return to_zarr(self._obj, store, **kwargs)

    def to_cog(self, directory, **kwargs):
        """Write a mask as one Cloud-Optimised GeoTIFF per time step; see :func:`xcloud.to_cog`."""
        from xcloud.io.cog import to_cog

        return to_cog(self._obj, directory, **kwargs)

    def to_stac(self, directory, **kwargs):
        """Publish a mask as a STAC Collection, one Item and COG per time step; see
        :func:`xcloud.to_stac`."""
        from xcloud.io.publish import to_stac

        return to_stac(self._obj, directory, **kwargs)

    def usable(self, **kwargs):
        """Pixels safe to use, with a buffer around cloud and shadow; see :func:`xcloud.usable`.

        >>> import numpy as np, xarray as xr, xcloud
        >>> m = xr.DataArray(np.zeros((8, 8), "uint8"), dims=("y", "x"))
        >>> bool(m.cloud.usable(buffer="1 px").all())
        True
        """
        from xcloud.analysis import usable

        return usable(self._obj, **kwargs)

    def where_usable(self, usable_mask):
        """Set every variable to NaN where ``usable_mask`` is False; see
        :func:`xcloud.where_usable`."""
        from xcloud.analysis import where_usable

        return where_usable(self._obj, usable_mask)

    def plot(self, ax=None, **kwargs):
        """Show a ``cloud_mask`` in class colours with a legend; see :func:`xcloud.plot.plot_mask`.

        >>> import matplotlib; matplotlib.use("Agg")
        >>> import numpy as np, xarray as xr, xcloud
        >>> m = xr.DataArray(np.zeros((2, 8, 8), "uint8"), dims=("time", "y", "x"))
        >>> len(m.cloud.plot())  # one panel per time step
        2
        """
        from xcloud.plot import plot_mask

        return plot_mask(self._obj, ax, **kwargs)

    def plot_rgb(self, mask=None, **kwargs):
        """True-colour quicklook with an optional mask overlay; see :func:`xcloud.plot.plot_rgb`.

        >>> import matplotlib; matplotlib.use("Agg")
        >>> import numpy as np, xarray as xr, xcloud
        >>> ds = xr.Dataset({b: (("y", "x"), np.full((8, 8), 0.1, "float32"))
        ...                  for b in ["red", "green", "blue"]})
        >>> ds.cloud.plot_rgb().get_title()
        'true colour'
        """
        from xcloud.plot import plot_rgb

        return plot_rgb(self._obj, mask=mask, **kwargs)

    def plot_cloud_fraction(self, ax=None, **kwargs):
        """Cloud and nodata fraction over time; see :func:`xcloud.plot.plot_cloud_fraction`."""
        from xcloud.plot import plot_cloud_fraction

        return plot_cloud_fraction(self._obj, ax, **kwargs)


@xr.register_dataset_accessor("cloud")
class CloudDatasetAccessor(_CloudAccessor):
    """``ds.cloud``: cloud masking for a Dataset with one variable per band."""


@xr.register_dataarray_accessor("cloud")
class CloudDataArrayAccessor(_CloudAccessor):
    """``arr.cloud``: cloud masking for a DataArray with a ``band`` dim, and mask output helpers."""
