"""Masks as COGs: one per time step, valid COG layout, the same values back, nodata 255,
nearest-neighbour overviews, the colour table, CRS and transform kept."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from conftest import TEST_MODEL, make_dataset

import xcloud
from xcloud.errors import ParameterError, StoreExistsError
from xcloud.io.cog import COLOURS


@pytest.fixture(scope="module")
def mask():
    import rioxarray  # noqa: F401

    ds = make_dataset(1100, 1000, time=2, chunks={"time": 1, "y": 512, "x": 512})
    m = ds.rio.write_crs("EPSG:32633").cloud.mask(TEST_MODEL)
    m = m.where(m.x < 300_000 + 10 * 900, 255).astype("uint8").rio.write_crs("EPSG:32633")
    return m.compute()  # once for the module


def test_cogs_reopen_with_the_same_values_and_georeferencing(mask, tmp_path):
    paths = mask.cloud.to_cog(tmp_path / "cogs")
    assert [p.name for p in paths] == ["cloud_mask_20240101T000000.tif",
                                       "cloud_mask_20240106T000000.tif"]  # fmt: skip
    for t, path in enumerate(paths):
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.nodata == 255 and src.dtypes == ("uint8",)
            assert src.crs.to_epsg() == 32633
            assert src.transform == mask.rio.transform()
            assert src.overviews(1), "internal overviews"
            assert src.block_shapes[0] == (512, 512)
            assert {k: tuple(v) for k, v in src.colormap(1).items() if k in COLOURS} == COLOURS
            np.testing.assert_array_equal(src.read(1), mask.values[t])
            overview = src.read(1, out_shape=(src.height // 2, src.width // 2))
            assert set(np.unique(overview)) <= set(np.unique(mask.values[t]))  # nearest: codes


def test_existing_files_are_kept_unless_overwrite(mask, tmp_path):
    mask.cloud.to_cog(tmp_path)
    before = (tmp_path / "cloud_mask_20240101T000000.tif").read_bytes()
    with pytest.raises(StoreExistsError, match="overwrite=True"):
        mask.cloud.to_cog(tmp_path)
    assert (tmp_path / "cloud_mask_20240101T000000.tif").read_bytes() == before
    assert len(mask.cloud.to_cog(tmp_path, overwrite=True)) == 2


def test_an_ascending_y_mask_is_written_north_up(mask, tmp_path):
    flipped = mask.isel(y=slice(None, None, -1))
    (path,) = xcloud.to_cog(flipped.isel(time=0), tmp_path)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), mask.values[0])


def test_to_cog_refuses_what_is_not_a_mask(mask, tmp_path):
    with pytest.raises(ParameterError, match="integer codes"):
        xcloud.to_cog(mask.astype("float32"), tmp_path)
    with pytest.raises(ParameterError, match="blocksize=100"):
        xcloud.to_cog(mask, tmp_path, blocksize=100)
