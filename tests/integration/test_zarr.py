"""Writing masks to Zarr v3: exact round trips, chunk-aligned encoding, regions, appends."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import TEST_MODEL, make_dataset

import xcloud
from xcloud.errors import StoreExistsError, XCloudError


@pytest.fixture
def mask():
    import rioxarray  # noqa: F401

    ds = make_dataset(96, 96, time=2, chunks={"time": 1, "y": 48, "x": 48})
    return ds.rio.write_crs("EPSG:32633").cloud.mask(TEST_MODEL)


def test_round_trip_exact(mask, tmp_path):
    path = tmp_path / "m.zarr"
    mask.cloud.to_zarr(path)
    back = xr.open_zarr(path)["cloud_mask"]
    expected = mask.compute()
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back.values, expected.values)
    assert set(back.attrs) >= set(expected.attrs) - {"grid_mapping"}
    for k, v in expected.attrs.items():
        if k != "grid_mapping":
            np.testing.assert_array_equal(back.attrs[k], v)
    for c in ("time", "y", "x"):
        xr.testing.assert_identical(
            back[c].reset_coords(drop=True), expected[c].reset_coords(drop=True)
        )
    assert back.encoding["chunks"] == (1, 48, 48)
    assert back.chunks == mask.chunks


def test_round_trip_keeps_crs(mask, tmp_path):
    path = tmp_path / "m.zarr"
    mask.cloud.to_zarr(path)
    for kw in ({}, {"decode_coords": "all"}):  # a plain open_zarr keeps the CRS too
        back = xr.open_zarr(path, **kw)["cloud_mask"]
        assert "spatial_ref" in back.coords
        assert back.rio.crs is not None and back.rio.crs.to_epsg() == 32633


def test_existing_store_not_overwritten(mask, tmp_path):
    path = tmp_path / "m.zarr"
    xcloud.to_zarr(mask, path)
    before = xr.open_zarr(path).load()
    other = (mask * 0 + 255).astype("uint8").rename("cloud_mask")
    with pytest.raises(StoreExistsError) as e:
        other.cloud.to_zarr(path)
    assert "already exists" in str(e.value) and "mode='w'" in str(e.value)
    xr.testing.assert_identical(xr.open_zarr(path).load(), before)
    other.cloud.to_zarr(path, mode="w")
    assert (xr.open_zarr(path)["cloud_mask"].values == 255).all()


def test_region_write(mask, tmp_path):
    path = tmp_path / "m.zarr"
    mask.cloud.to_zarr(path, compute=False)  # template: metadata and coords only
    for t in range(2):
        mask.isel(time=slice(t, t + 1)).cloud.to_zarr(path, region={"time": slice(t, t + 1)})
    back = xr.open_zarr(path)["cloud_mask"]
    np.testing.assert_array_equal(back.values, mask.values)


def test_append_time(mask, tmp_path):
    path = tmp_path / "m.zarr"
    mask.isel(time=[0]).cloud.to_zarr(path)
    mask.isel(time=[1]).cloud.to_zarr(path, append_dim="time")
    back = xr.open_zarr(path)["cloud_mask"]
    np.testing.assert_array_equal(back.values, mask.values)
    np.testing.assert_array_equal(back.time.values, mask.time.values)


def test_region_into_missing_store(mask, tmp_path):
    path = tmp_path / "missing.zarr"
    with pytest.raises(XCloudError) as e:
        mask.cloud.to_zarr(path, region={"time": slice(0, 1)})
    msg = str(e.value)
    assert "does not exist" in msg and "region=" in msg and "compute=False" in msg
    assert not path.exists()


def test_bad_mode(mask, tmp_path):
    with pytest.raises(XCloudError, match=r"mode='x'.*'w'"):
        mask.cloud.to_zarr(tmp_path / "m.zarr", mode="x")


def test_irregular_chunks_are_written(tmp_path):
    ds = make_dataset(100, 100, chunks={"y": 48, "x": 48})
    m = ds.cloud.mask(TEST_MODEL).chunk({"y": (30, 48, 22)})
    m.cloud.to_zarr(tmp_path / "m.zarr")
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "m.zarr")["cloud_mask"].values, m.values)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"chunks": 0}, r"chunks=0: expected a region size in pixels"),
        ({"chunks": "big"}, r"chunks='big': expected a region size"),
        ({"chunks": {"time": 1}}, r"the keys must be the mask's spatial dimensions \('y', 'x'\)"),
        ({"max_in_flight": 0}, r"max_in_flight=0: expected a whole number >= 1"),
        ({"mask_kw": {"modle": "fine"}}, r"'modle' is not a keyword of xcloud\.mask.*'model'"),
        ({"mask_kw": {"model": "fine"}}, r"pass model= to mask_to_zarr itself"),
        ({"mask_kw": {"cascade": "ring 0"}}, r"cascade='ring 0': expected xcloud.CascadeOptions"),
    ],
)
def test_mask_to_zarr_bad_arguments_write_nothing(tmp_path, kwargs, expected):
    from xcloud.errors import ParameterError

    ds = make_dataset(64, 64, time=2, chunks={"time": 1, "y": 32, "x": 32})
    path = tmp_path / "m.zarr"
    kwargs.setdefault("model", TEST_MODEL if "mask_kw" not in kwargs else "cascade")
    with pytest.raises(ParameterError, match=expected):
        xcloud.mask_to_zarr(ds, path, progress=False, **kwargs)
    assert not path.exists()


def test_resume_with_overwrite_is_refused_and_keeps_the_store(tmp_path):
    """Both flags used to mean 'overwrite': the regions a crashed run had written were deleted."""
    from xcloud.errors import ParameterError

    ds = make_dataset(64, 64, time=2, chunks={"time": 1, "y": 32, "x": 32})
    path = tmp_path / "m.zarr"
    first = xcloud.mask_to_zarr(ds, path, model=TEST_MODEL, progress=False)
    before = first.load()
    with pytest.raises(ParameterError, match="resume=True and overwrite=True"):
        xcloud.mask_to_zarr(ds, path, model=TEST_MODEL, resume=True, overwrite=True, progress=False)
    after = xr.open_zarr(path).load()
    xr.testing.assert_identical(before, after)
    assert int(after["xcloud_done"].sum()) == 2 * 2 * 2


def test_resume_in_another_precision_is_refused_and_keeps_the_store(tmp_path):
    """A store's regions are all in one arithmetic: resuming a bf16 store in fp32 would mix them."""
    from xcloud.io.pipeline import ModelMismatchError

    ds = make_dataset(64, 64, time=2, chunks={"time": 1, "y": 32, "x": 32})
    path = tmp_path / "m.zarr"
    kw = dict(model="fine", progress=False)
    before = xcloud.mask_to_zarr(ds, path, mask_kw={"precision": "bf16"}, **kw).load()
    assert before.attrs["xcloud_precision"] == "bf16"
    with pytest.raises(ModelMismatchError, match="xcloud_precision='bf16', this run has 'auto'"):
        xcloud.mask_to_zarr(ds, path, resume=True, **kw)
    xr.testing.assert_identical(before, xr.open_zarr(path).load())
    again = xcloud.mask_to_zarr(ds, path, resume=True, mask_kw={"precision": "bf16"}, **kw)
    assert again.attrs["xcloud_complete"] == 1


def test_mask_kw_with_a_mask_is_refused(mask, tmp_path):
    from xcloud.errors import ParameterError

    with pytest.raises(ParameterError, match="the input is already masked"):
        xcloud.mask_to_zarr(mask, tmp_path / "m.zarr", mask_kw={"ring": 0}, progress=False)


def test_mask_to_zarr_writes_without_zarr_warnings(tmp_path):
    """Zarr v3 warned on every write: the count names as fixed-width strings (no v3 spec) and the
    consolidated metadata of a finished store. Users saw both in their notebooks."""
    import warnings

    from xcloud.io.pipeline import COUNT_NAMES, COUNTS_VAR

    ds = make_dataset(64, 64, time=2, chunks={"time": 1, "y": 48, "x": 48})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = xcloud.mask_to_zarr(ds, tmp_path / "m.zarr", model=TEST_MODEL, progress=False)
    zarr_warnings = [
        w for w in caught if "zarr" in (w.category.__module__ + str(w.message)).lower()
    ]
    assert not zarr_warnings, [str(w.message)[:100] for w in zarr_warnings]
    assert [str(v) for v in out[COUNTS_VAR]["count"].values] == list(COUNT_NAMES)
