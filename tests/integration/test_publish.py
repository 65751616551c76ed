"""xcloud.to_stac without a server: what it refuses, what it replaces, what it never touches.
(Served back through rustac and open_stac in test_stac.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TEST_MODEL, make_dataset

import xcloud
from xcloud.errors import DimensionError, ParameterError, StoreExistsError

pytest.importorskip("pystac")


@pytest.fixture(scope="module")
def mask():
    import rioxarray  # noqa: F401

    ds = make_dataset(96, 80, time=2, chunks={"time": 1, "y": 48, "x": 48})
    return ds.rio.write_crs("EPSG:32633").cloud.mask(TEST_MODEL).compute()


def test_the_mask_carries_cf_flags_and_the_odc_flags_definition(mask):
    flags = mask.attrs["flags_definition"]["cloud_mask"]["values"]
    meanings = mask.attrs["flag_meanings"].split()
    assert {int(k): v for k, v in flags.items()} == dict(
        zip(mask.attrs["flag_values"].tolist(), meanings, strict=True)
    )


def test_a_foreign_directory_is_never_written(mask, tmp_path):
    (tmp_path / "notes.txt").write_text("keep")
    with pytest.raises(StoreExistsError, match="holds no STAC catalogue written by xcloud"):
        xcloud.to_stac(mask, tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreExistsError, match="is a file"):
        xcloud.to_stac(mask, tmp_path / "f")


def test_overwrite_replaces_only_what_the_old_catalogue_lists(mask, tmp_path):
    cat = tmp_path / "cat"
    xcloud.to_stac(mask, cat)
    before = (cat / "collection.json").read_text()
    with pytest.raises(StoreExistsError, match="overwrite=True"):
        xcloud.to_stac(mask, cat)
    assert (cat / "collection.json").read_text() == before
    (cat / "README.txt").write_text("the user's own file")
    first = next(p for p in cat.iterdir() if p.is_dir())
    (first / "extra.txt").write_text("also the user's")
    xcloud.to_stac(mask.isel(time=slice(1, 2)), cat, overwrite=True)
    links = json.loads((cat / "collection.json").read_text())["links"]
    assert sum(link["rel"] == "item" for link in links) == 1
    assert (cat / "README.txt").read_text() == "the user's own file"
    assert (first / "extra.txt").exists() and not list(first.glob("*.json"))
    assert sorted(p.name for p in cat.iterdir() if p.is_dir()) == sorted(
        [first.name, f"xcloud-cloud-mask_{str(mask.time.values[1])[:10].replace('-', '')}T000000"]
    )


def test_bad_input_names_the_fix(mask, tmp_path):
    with pytest.raises(DimensionError, match="expand_dims"):
        xcloud.to_stac(mask.isel(time=0, drop=True), tmp_path / "a")
    with pytest.raises(ParameterError, match="write_crs"):
        xcloud.to_stac(mask.drop_vars("spatial_ref"), tmp_path / "b")
    with pytest.raises(ParameterError, match="integer codes"):
        xcloud.to_stac(mask.astype("float32"), tmp_path / "c")
    with pytest.raises(ParameterError, match="cloud_mask"):
        xcloud.to_stac(mask.to_dataset(name="other"), tmp_path / "d")
    with pytest.raises(ParameterError, match="blocksize=30"):
        xcloud.to_stac(mask, tmp_path / "e", blocksize=30)
    assert not any((tmp_path / n).exists() for n in "abcde")


def test_the_accessor_and_the_cog_agree(mask, tmp_path):
    import rasterio

    c = mask.cloud.to_stac(tmp_path / "cat", collection_id="my-masks")
    items = sorted(c.get_items(), key=lambda it: it.datetime)
    assert [it.id.split("_")[0] for it in items] == ["my-masks", "my-masks"]
    for t, it in enumerate(items):
        with rasterio.open(it.assets["cloud_mask"].get_absolute_href()) as src:
            np.testing.assert_array_equal(src.read(1), mask.values[t])
