"""The ``cloud`` accessor on xarray Datasets and DataArrays: a thin facade, no state.

Each method calls a plain function (:func:`xcloud.mask`, :func:`xcloud.to_zarr`, ...) on the
object, with that function's signature; the plotting ones import matplotlib only when called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import xarray as xr

from xcloud.analysis import usable as _usable
from xcloud.analysis import where_usable as _where_usable
from xcloud.io.cog import to_cog as _to_cog
from xcloud.io.publish import to_stac as _to_stac
from xcloud.io.zarr import to_zarr as _to_zarr
from xcloud.masking import mask as _mask
from xcloud.masking import route as _route

P = ParamSpec("P")
R = TypeVar("R")


def _forward(fn: Callable[Concatenate[Any, P], R], doc: str) -> Callable[Concatenate[Any, P], R]:
    """A method that calls ``fn(obj, ...)``: the function's own signature (IDEs, ``help``,
    ``inspect.signature`` and type checkers see every parameter), with a short docstring."""

    @functools.wraps(fn)
    def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self._obj, *args, **kwargs)

    method.__doc__ = doc
    method.__module__ = __name__  # (so that doctest runs the examples here)
    return method


class _CloudAccessor:
    def __init__(self, obj):
        # store only: an error raised here would surface as a confusing RuntimeError
        self._obj = obj

    mask = _forward(
        _mask,
        """Cloud-mask this cube: :func:`xcloud.mask` (a ``cloud_mask`` DataArray).

        >>> import numpy as np, xarray as xr, xcloud
        >>> ds = xr.Dataset({b: (("y", "x"), np.full((32, 32), 0.04, "float32"))
        ...                  for b in ["blue", "green", "red", "nir"]})
        >>> ds.cloud.mask("ukis-csmask", level="l2a").shape
        (32, 32)
        """,
    )
    route = _forward(
        _route,
        "Decide the cascade's routing now, to inspect it and mask with it: :func:`xcloud.route`.",
    )
    to_zarr = _forward(
        _to_zarr, "Write a mask (or any cube) to a Zarr v3 store: :func:`xcloud.to_zarr`."
    )
    to_cog = _forward(
        _to_cog, "Write a mask as one Cloud-Optimised GeoTIFF per time step: :func:`xcloud.to_cog`."
    )
    to_stac = _forward(
        _to_stac,
        "Publish a mask as a STAC Collection, one Item and COG per time step: "
        ":func:`xcloud.to_stac`.",
    )
    usable = _forward(
        _usable,
        """Pixels safe to use, with a buffer around cloud and shadow: :func:`xcloud.usable`.

        >>> import numpy as np, xarray as xr, xcloud
        >>> m = xr.DataArray(np.zeros((8, 8), "uint8"), dims=("y", "x"))
        >>> bool(m.cloud.usable(buffer="1 px").all())
        True
        """,
    )
    where_usable = _forward(
        _where_usable,
        "Set every variable to NaN where ``usable_mask`` is False: :func:`xcloud.where_usable`.",
    )

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
