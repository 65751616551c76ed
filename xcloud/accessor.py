"""The ``cloud`` accessor on xarray Datasets and DataArrays: a thin facade, no state.

Each method is a line or two calling a plain function (:func:`xcloud.mask`,
:func:`xcloud.to_zarr`); see those for the parameters.
"""

from __future__ import annotations

import xarray as xr


class _CloudAccessor:
    def __init__(self, obj):
        # store only: an error raised here would surface as a confusing RuntimeError
        self._obj = obj

    def mask(self, model: str = "cascade", **kwargs) -> xr.DataArray:
        """Cloud-mask this cube; see :func:`xcloud.mask`.

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


@xr.register_dataset_accessor("cloud")
class CloudDatasetAccessor(_CloudAccessor):
    """``ds.cloud``: cloud masking for a Dataset with one variable per band."""


@xr.register_dataarray_accessor("cloud")
class CloudDataArrayAccessor(_CloudAccessor):
    """``arr.cloud``: cloud masking for a DataArray with a ``band`` dim, and mask output helpers."""
