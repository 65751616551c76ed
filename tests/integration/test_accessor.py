"""``ds.cloud.mask``: laziness, the output contract, input layouts, nodata, real data."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import S2_BANDS, TEST_MODEL, make_dataset

import xcloud
from xcloud.models import get_spec


def _raise(*args, **kwargs):
    raise AssertionError("something was computed")


def test_dask_input_builds_without_computing():
    ds = make_dataset(96, 96, time=2, chunks={"time": 1, "y": 48, "x": 48})
    with dask.config.set(scheduler=_raise):
        m = ds.cloud.mask("ukis-csmask")
        p = ds.cloud.mask("ukis-csmask", probabilities=True)
    assert isinstance(m.data, da.Array) and isinstance(p.data, da.Array)
    assert m.chunks == ((1, 1), (48, 48), (48, 48))


def test_numpy_input_gives_numpy_output(s2_dataset):
    m = s2_dataset.cloud.mask(TEST_MODEL)
    assert isinstance(m.data, np.ndarray)


def test_output_contract(s2_dataset):
    import rioxarray  # noqa: F401

    ds = s2_dataset.rio.write_crs("EPSG:32633")
    m = ds.cloud.mask("ukis-csmask")
    assert m.name == "cloud_mask" and m.dtype == np.uint8 and m.dims == ("y", "x")
    np.testing.assert_array_equal(m.attrs["flag_values"], [0, 1, 2, 3, 255])
    assert m.attrs["flag_values"].dtype == np.uint8
    assert m.attrs["flag_meanings"] == "clear cloud thin_cloud cloud_shadow nodata"
    assert m.attrs["long_name"]
    assert m.attrs["xcloud_version"] == xcloud.__version__
    assert m.attrs["xcloud_model"] == "ukis-csmask"
    assert m.attrs["xcloud_model_weights_sha256"] not in ("", "unknown")
    xr.testing.assert_identical(m.x, ds.x)
    xr.testing.assert_identical(m.y, ds.y)
    assert m.rio.crs.to_epsg() == 32633
    assert set(np.unique(m.values)) <= {0, 1, 3}  # ukis has no thin-cloud class


def test_time_coord_kept_and_plain_function_twin():
    ds = make_dataset(64, 64, time=2)
    m = ds.cloud.mask(TEST_MODEL)
    assert m.dims == ("time", "y", "x")
    xr.testing.assert_identical(m.time, ds.time)
    xr.testing.assert_identical(m, xcloud.mask(ds, TEST_MODEL))


def test_probabilities(s2_dataset):
    p = s2_dataset.cloud.mask("ukis-csmask", probabilities=True)
    assert p.dtype == np.float16 and p.dims == ("class", "y", "x")
    assert list(p["class"].values) == ["clear", "cloud", "cloud_shadow"]
    np.testing.assert_allclose(p.sum("class").astype("float32"), 1.0, atol=5e-3)
    m = s2_dataset.cloud.mask("ukis-csmask")
    codes = np.array([0, 1, 3], np.uint8)
    assert (codes[p.values.argmax(axis=0)] == m.values).mean() > 0.99


def test_dataarray_with_band_dim_gives_same_mask():
    ds = make_dataset(64, 80, time=2)
    arr = ds.to_dataarray("band").transpose("time", "band", "y", "x")
    arr = arr.assign_coords(common_name=("band", ["blue", "green", "red", "nir"]))
    arr.attrs = dict(ds.attrs)
    assert list(arr.band.values) == list(S2_BANDS)
    a = arr.cloud.mask(TEST_MODEL)
    b = ds.cloud.mask(TEST_MODEL)
    xr.testing.assert_identical(a, b)


def test_extra_leading_dims_are_mapped_over():
    ds = make_dataset(48, 64, time=2)
    ds2 = xr.concat([ds, ds * 1.3], dim="member").transpose("time", "member", "y", "x")
    ds2.attrs = ds.attrs
    m = ds2.cloud.mask(TEST_MODEL)
    assert m.dims == ("time", "member", "y", "x") and m.shape == (2, 2, 48, 64)
    for t in range(2):
        for k in range(2):
            single = ds2.isel(time=t, member=k).cloud.mask(TEST_MODEL)
            np.testing.assert_array_equal(m.isel(time=t, member=k).values, single.values)


def test_model_without_thin_cloud_never_emits_2():
    assert "thin_cloud" not in get_spec("ukis-csmask").classes
    ds = make_dataset(96, 96, seed=2)
    # half-transparent haze over everything: the box model would call this thin cloud
    hazy = ds * 0.3 + 0.16
    hazy.attrs = ds.attrs
    assert (hazy.cloud.mask(TEST_MODEL).values == 2).any()
    assert not (hazy.cloud.mask("ukis-csmask").values == 2).any()


def test_nodata_nan_param_and_attrs():
    ds = make_dataset(64, 64)
    ds["B03"][:8, :] = np.nan
    assert (ds.cloud.mask(TEST_MODEL).values[:8] == 255).all()

    dn = (make_dataset(64, 64) * 10_000).astype("uint16")
    dn["B04"][:, :4] = 0
    m = dn.cloud.mask(TEST_MODEL, nodata=0, scale=1e-4, offset=0.0)
    assert (m.values[:, :4] == 255).all() and (m.values[:, 4:] != 255).all()

    dn2 = dn.copy()
    dn2["B04"].attrs["_FillValue"] = 0
    np.testing.assert_array_equal(dn2.cloud.mask(TEST_MODEL, scale=1e-4, offset=0.0), m)
    dn3 = dn.copy()
    dn3["B04"].attrs["nodata"] = 0
    np.testing.assert_array_equal(dn3.cloud.mask(TEST_MODEL, scale=1e-4, offset=0.0), m)
    # without any nodata information the zeros are data (dark pixels), not 255
    assert not (dn.cloud.mask(TEST_MODEL, scale=1e-4, offset=0.0).values == 255).any()


def test_all_nan_chunks_dask():
    ds = make_dataset(96, 96, chunks={"y": 48, "x": 48})
    ds = ds.where(xr.DataArray(np.arange(96) >= 48, dims="y"))  # top row of chunks all NaN
    m = ds.cloud.mask("ukis-csmask").values
    assert (m[:48] == 255).all() and (m[48:] != 255).all()


def test_real_oncloudn_chip(oncloudn_chip):
    """Real Sentinel-2 L2A DN from On Cloud N: scaled via sensor, CRS kept, sane classes."""
    m = oncloudn_chip.chunk({"y": 128, "x": 128}).cloud.mask("ukis-csmask", sensor="sentinel-2-l2a")
    assert isinstance(m.data, da.Array)
    assert m.rio.crs.to_epsg() == 32734
    v = m.values
    assert v.shape == (256, 256) and set(np.unique(v)) <= {0, 1, 3}
    ref = oncloudn_chip.cloud.mask("ukis-csmask", sensor="sentinel-2-l2a").values
    assert (v == ref).mean() >= 0.999


@pytest.mark.parametrize(
    "sensor, names",
    [
        ("landsat-5-l1", ("B1", "B2", "B3", "B4")),
        ("landsat-7-l2", ("SR_B1", "SR_B2", "SR_B3", "SR_B4")),
        ("landsat-8-l1", ("B2", "B3", "B4", "B5")),
        ("landsat-9-l2", ("SR_B2", "SR_B3", "SR_B4", "SR_B5")),
    ],
)
def test_fine_takes_landsat_band_names(oncloudn_chip, sensor, names):
    """``fine`` through the accessor on Landsat 5 / 7 / 8 / 9 cubes (TM / ETM+ / OLI band
    numbering, L1 and L2 asset names): the chip's blue, green, red and nir reflectance, named as
    each sensor names them, gives the probabilities the Sentinel-2 names give, up to the small
    shifts of the bands' wavelengths (mean difference 1-2e-4). Naming a band wrongly moves them
    far more: red and nir swapped 1.5e-3, nir read as swir16 3.8e-2 (blue and green swapped do
    not: 1.0e-4; the model barely tells those two apart on this chip)."""
    kw = {"probabilities": True}
    ref = oncloudn_chip.cloud.mask("fine", sensor="sentinel-2-l2a", **kw).values
    ls = xr.Dataset({n: oncloudn_chip[b] for n, b in zip(names, S2_BANDS, strict=True)})
    p = ls.cloud.mask("fine", sensor=sensor, scale=1e-4, offset=0.0, **kw).values
    assert p.shape == ref.shape
    assert np.abs(p.astype(np.float32) - ref.astype(np.float32)).mean() < 5e-4
    assert (p.argmax(axis=0) == ref.argmax(axis=0)).mean() >= 0.995


def test_nodata_does_not_disturb_the_mask_nearby(oncloudn_chip):
    """Nodata is filled with each tile's mean valid reflectance before the model sees it (zeros
    make a model drop clouds far from a swath edge); the mask away from the edge is unchanged.

    Right at the edge the model loses context: cloud shadows it finds within 16 px of the wedge
    (next to clouds it can no longer see) can disappear, so near the edge only the cloud /
    not-cloud split is held to the reference."""
    x = np.stack([oncloudn_chip[b].values for b in S2_BANDS]).astype(np.float32) / 10000
    x = np.concatenate([x, x[..., ::-1]], axis=-1)
    x = np.concatenate([x, x[..., ::-1, :]], axis=-2)  # 512 x 512, real
    yy, xx = np.mgrid[:512, :512]
    wedge = xx > yy + 100

    def ds(arr):
        return xr.Dataset(
            {b: (("y", "x"), arr[i]) for i, b in enumerate(S2_BANDS)},
            attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
        )

    ref = ds(x).cloud.mask("fine").values
    x[:, wedge] = np.nan
    m = ds(x).cloud.mask("fine").values
    assert (m[wedge] == 255).all()
    dist = np.abs(xx - yy - 100)
    far, near = ~wedge & (dist >= 64), ~wedge & (dist < 16)
    assert (m[far] == ref[far]).mean() >= 0.99
    cloud = np.isin(m[near], (1, 2)) == np.isin(ref[near], (1, 2))
    assert cloud.mean() >= 0.98
