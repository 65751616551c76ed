"""Usable-pixel masks: a buffer around cloud and shadow in metres, specks removed, nodata never
usable; equal to a whole-array reference dilation, the same for any chunking, and lazy."""

from __future__ import annotations

import warnings

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

import xcloud
from xcloud.errors import ParameterError
from xcloud.inference.buffer import disk


def _mask(ny=120, nx=100, seed=0, time=None, res=10.0):
    rng = np.random.default_rng(seed)
    shape = (time, ny, nx) if time else (ny, nx)
    codes = np.zeros(shape, np.uint8)
    blobs = ndimage.gaussian_filter(rng.random(shape), 4 if not time else (0, 4, 4))
    codes[blobs > np.quantile(blobs, 0.85)] = 1
    codes[rng.random(shape) > 0.995] = 3  # specks of shadow
    codes[..., :3, :10] = 255
    dims = ("time", "y", "x") if time else ("y", "x")
    coords = {"y": 5e6 - res * np.arange(ny), "x": 3e5 + res * np.arange(nx)}
    return xr.DataArray(codes, dims=dims, coords=coords, name="cloud_mask")


def _reference(codes, bad, radius, min_size=1):
    m = np.isin(codes, bad)
    if min_size > 1:
        m = ndimage.binary_opening(m, np.ones((min_size, min_size), bool), border_value=0)
    if radius:
        m = ndimage.binary_dilation(m, disk(radius), border_value=0)
    return ~m & (codes != 255)


@pytest.mark.parametrize(
    ("buffer", "px"), [("60 m", 6), ("0.05 km", 5), ("2 px", 2), (25, 3), (0, 0)]
)
def test_buffer_matches_a_reference_dilation(buffer, px):
    m = _mask()
    u = xcloud.usable(m, buffer=buffer)
    assert u.dtype == bool and u.attrs["xcloud_buffer_px"] == px
    np.testing.assert_array_equal(u.values, _reference(m.values, (1, 2, 3), px))
    assert not u.values[:3, :10].any()  # nodata is never usable


def test_classes_and_specks():
    m = _mask()
    only_cloud = xcloud.usable(m, buffer="3 px", classes=("cloud",))
    np.testing.assert_array_equal(only_cloud.values, _reference(m.values, (1,), 3))
    despeckled = xcloud.usable(m, buffer="3 px", min_size=3)
    np.testing.assert_array_equal(despeckled.values, _reference(m.values, (1, 2, 3), 3, 3))
    assert despeckled.values.sum() > xcloud.usable(m, buffer="3 px").values.sum()
    assert despeckled.attrs["xcloud_min_size_px"] == 3


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cy=st.integers(7, 120), cx=st.integers(7, 100), px=st.integers(0, 6), size=st.integers(1, 3))
def test_the_same_for_any_chunking(cy, cx, px, size):
    m = _mask(time=2)
    whole = xcloud.usable(m, buffer=f"{px} px", min_size=size).values
    lazy = xcloud.usable(m.chunk({"time": 1, "y": cy, "x": cx}), buffer=f"{px} px", min_size=size)
    np.testing.assert_array_equal(lazy.values, whole)


def test_lazy_in_lazy_out():
    m = _mask(time=2).chunk({"time": 1, "y": 50, "x": 50})

    def _raise(*a, **k):
        raise AssertionError("something was computed")

    with dask.config.set(scheduler=_raise):
        u = m.cloud.usable(buffer="60 m")
    assert u.chunks is not None and u.dims == m.dims


def test_where_usable_masks_every_variable():
    m = _mask()
    ds = xr.Dataset({"red": m.astype("float32") * 0 + 0.1, "nir": m.astype("float32") * 0 + 0.3})
    u = m.cloud.usable(buffer="1 px")
    out = ds.cloud.where_usable(u)
    assert (
        np.isnan(out["red"].values[~u.values]).all() and (out["nir"].values[u.values] == 0.3).all()
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"buffer": -10}, r"buffer=-10: a distance cannot be negative"),
        ({"buffer": "60 miles"}, r"unknown unit 'miles'; use one of \['m', 'km', 'px'\]"),
        ({"buffer": "far"}, r"buffer='far': expected a distance such as '60 m'"),
        ({"classes": ("clouds",)}, r"classes=\('clouds',\).*Did you mean 'cloud'"),
        ({"min_size": 0}, r"min_size=0: expected a whole number of pixels >= 1"),
    ],
)
def test_bad_arguments_name_the_fix(kwargs, expected):
    with pytest.raises(ParameterError, match=expected):
        xcloud.usable(_mask(), **kwargs)


def test_metres_on_unprojected_data_need_pixels():
    m = _mask().rename({"y": "lat", "x": "lon"})
    with pytest.raises(ParameterError, match=r"unprojected.*buffer='3 px'"):
        xcloud.usable(m, buffer="60 m")
    assert xcloud.usable(m, buffer="3 px").shape == m.shape


def _series(t=6, ny=40, nx=30, seed=1):
    rng = np.random.default_rng(seed)
    coords = {
        "time": np.arange(t),
        "y": 5e6 - 10.0 * np.arange(ny),
        "x": 3e5 + 10.0 * np.arange(nx),
    }
    ds = xr.Dataset(
        {b: (("time", "y", "x"), rng.integers(1, 4000, (t, ny, nx)).astype("uint16"))
         for b in ("red", "nir")},
        coords=coords,
    )  # fmt: skip
    ok = xr.DataArray(rng.random((t, ny, nx)) > 0.4, dims=("time", "y", "x"), coords=coords)
    ok[:, 0, 0] = False  # never usable
    return ds, ok


@pytest.mark.parametrize("chunks", [None, {"time": 2, "y": 16, "x": 16}])
def test_composite_is_the_median_of_usable_observations(chunks):
    ds, ok = _series()
    if chunks:
        ds, ok = ds.chunk(chunks), ok.chunk(chunks)
    out = xcloud.composite(ds, ok)
    for b in ("red", "nir"):
        ref = np.where(ok.values, ds[b].values.astype(np.float64), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
            expected = np.nanmedian(ref, axis=0)
        np.testing.assert_allclose(out[b].values, expected, rtol=1e-6)
        assert out[b].dtype == np.float32
    np.testing.assert_array_equal(out["count"].values, ok.values.sum(axis=0))
    assert np.isnan(out["red"].values[0, 0]) and out["count"].values[0, 0] == 0
    assert out.attrs["xcloud_composite"] == "median"


def test_composite_is_lazy_and_checks_its_arguments():
    ds, ok = _series()
    ds, ok = ds.chunk({"time": 1}), ok.chunk({"time": 1})

    def _raise(*a, **k):
        raise AssertionError("something was computed")

    with dask.config.set(scheduler=_raise):
        out = xcloud.composite(ds, ok, method="mean")
    assert out["red"].chunks is not None
    with pytest.raises(
        ParameterError, match=r"method='mode': expected one of \['median', 'mean'\]"
    ):
        xcloud.composite(ds, ok, method="mode")
    with pytest.raises(ParameterError, match=r"dim='date': both the data"):
        xcloud.composite(ds, ok, dim="date")
