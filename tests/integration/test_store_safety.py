"""The Zarr writers never delete what xcloud did not write, never mark a region complete that
another writer or a race spoiled, never read missing data as clear, and resume only the same
job. Each test reproduces one way a store was lost or faked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import TEST_MODEL, make_dataset

import xcloud
from xcloud.errors import StoreExistsError, XCloudError
from xcloud.io.pipeline import ModelMismatchError
from xcloud.models import NODATA


def _cube(seed: int = 0, chunk: int = 48) -> xr.Dataset:
    return make_dataset(96, 96, time=2, seed=seed, chunks={"time": 1, "y": chunk, "x": chunk})


def _write(ds, path, **kw):
    kw.setdefault("model", TEST_MODEL)
    return xcloud.mask_to_zarr(ds, path, progress=False, **kw)


# 1. a directory that is not a Zarr store is never emptied


@pytest.mark.parametrize("overwrite", [False, True])
def test_mask_to_zarr_refuses_a_directory_that_is_not_a_store(tmp_path, overwrite):
    d = tmp_path / "d"
    d.mkdir()
    (d / "important.txt").write_text("keep")
    with pytest.raises(StoreExistsError, match=r"not a Zarr store.*important\.txt.*new path"):
        _write(_cube(), d, overwrite=overwrite)
    assert (d / "important.txt").read_text() == "keep"
    assert sorted(p.name for p in d.iterdir()) == ["important.txt"]


@pytest.mark.parametrize("mode", [None, "w"])
def test_to_zarr_refuses_a_directory_that_is_not_a_store(tmp_path, mode):
    d = tmp_path / "d"
    d.mkdir()
    (d / "important.txt").write_text("keep")
    m = _cube().cloud.mask(TEST_MODEL)
    with pytest.raises(StoreExistsError, match="not a Zarr store"):
        xcloud.to_zarr(m, d, mode=mode)
    assert sorted(p.name for p in d.iterdir()) == ["important.txt"]


def test_overwrite_replaces_only_an_xcloud_store(tmp_path):
    """A Zarr store xcloud did not write is someone's data: overwrite refuses it."""
    path = tmp_path / "theirs.zarr"
    xr.Dataset({"ndvi": (("y", "x"), np.ones((4, 4), "float32"))}).to_zarr(path, zarr_format=3)
    before = xr.open_zarr(path).load()
    with pytest.raises(StoreExistsError, match="was not written by xcloud"):
        _write(_cube(), path, overwrite=True)
    with pytest.raises(StoreExistsError, match="was not written by xcloud"):
        xcloud.to_zarr(_cube().cloud.mask(TEST_MODEL), path, mode="w")
    xr.testing.assert_identical(xr.open_zarr(path).load(), before)


def test_an_empty_directory_is_a_fine_target(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    out = _write(_cube(), d)
    assert out.attrs["xcloud_complete"] == 1


def test_cli_overwrite_keeps_files_it_did_not_write(tmp_path, capsys):
    from xcloud.cli import main
    from xcloud.data import SAMPLE_PATH

    d = tmp_path / "d"
    d.mkdir()
    (d / "important.txt").write_text("keep")
    assert main(["mask", str(SAMPLE_PATH), "--out", str(d), "--overwrite", "--model", "fine"]) == 2
    assert "not a Zarr store" in capsys.readouterr().err
    assert (d / "important.txt").read_text() == "keep"


# 2. regions are whole storage chunks


def test_regions_are_unions_of_whole_storage_chunks(tmp_path):
    """Chunks (100, 412, 100, 412) used to give regions that straddle the 412 px storage chunks:
    concurrent read-modify-writes of one chunk lost a fifth of the pixels on a cluster."""
    import zarr

    ds = make_dataset(1024, 1024, time=1, chunks={"time": 1, "y": 256, "x": 256})
    m = ds.cloud.mask(TEST_MODEL).chunk({"y": (100, 412, 100, 412), "x": (100, 412, 100, 412)})
    path = tmp_path / "m.zarr"
    regions = []
    out = xcloud.mask_to_zarr(m, path, progress=False, max_in_flight=16, on_region=regions.append)
    storage = zarr.open_array(path, path="cloud_mask").chunks
    for r in regions:
        for sl, size, step in ((r.y, 1024, storage[1]), (r.x, 1024, storage[2])):
            assert sl.start % step == 0, (r, storage)
            assert sl.stop % step == 0 or sl.stop == size, (r, storage)
    np.testing.assert_array_equal(out["cloud_mask"].values, m.values)


# 3. missing data reads as nodata, not clear


def test_unwritten_pixels_read_as_nodata(tmp_path):
    import zarr

    path = tmp_path / "m.zarr"
    stop = RuntimeError("stop after one region")

    def once(_):
        raise stop

    with pytest.raises(RuntimeError, match="stop after one region"):
        _write(_cube(), path, on_region=once, max_in_flight=1)
    assert zarr.open_array(path, path="cloud_mask").fill_value == NODATA
    back = xr.open_zarr(path)
    assert back.attrs["xcloud_complete"] == 0
    assert back["cloud_mask"].dtype == np.uint8
    done = back["xcloud_done"].values
    assert done.sum() == 1
    values = back["cloud_mask"].values
    for t, i, j in zip(*np.nonzero(done == 0), strict=True):  # the seven regions never written
        assert (values[t, 48 * i : 48 * (i + 1), 48 * j : 48 * (j + 1)] == NODATA).all()


def test_to_zarr_mask_fill_value_is_nodata(tmp_path):
    import zarr

    path = tmp_path / "m.zarr"
    xcloud.to_zarr(_cube().cloud.mask(TEST_MODEL), path)
    assert zarr.open_array(path, path="cloud_mask").fill_value == NODATA
    assert xr.open_zarr(path)["cloud_mask"].dtype == np.uint8  # no NaN decoding


# 4. one writer per store


def test_a_second_writer_is_refused_while_the_first_runs(tmp_path):
    """Two runs on one store used to both pass the existence check; the store then said
    ``complete=1`` for a mix of two models' output."""
    from xcloud.io.pipeline import StoreLockedError

    path = tmp_path / "m.zarr"
    ds = _cube()
    refused = []

    def interloper(r):
        if not refused:
            with pytest.raises(StoreLockedError, match="being written by another run") as e:
                _write(_cube(seed=7), path, model="fine", overwrite=True)
            refused.append(e.value)

    out = _write(ds, path, on_region=interloper, max_in_flight=1)
    assert refused and out.attrs["xcloud_complete"] == 1
    assert out.attrs["xcloud_model"] == TEST_MODEL
    np.testing.assert_array_equal(out["cloud_mask"].values, ds.cloud.mask(TEST_MODEL).values)


def test_a_writer_whose_store_was_taken_over_stops(tmp_path):
    """Where the lock cannot help (a remote store, a lock deleted by hand), the run id that every
    region write checks stops the first run before it writes into the second's store."""
    from xcloud.io.pipeline import lock_path

    path = tmp_path / "m.zarr"
    other = _cube(seed=7)
    expected = other.cloud.mask("fine").compute()
    seen = []

    def interloper(r):
        seen.append(r)
        if len(seen) == 1:
            os.remove(lock_path(path))
            _write(other, path, model="fine", overwrite=True)

    with pytest.raises(XCloudError, match="another run"):
        _write(_cube(), path, on_region=interloper, max_in_flight=1)
    back = xr.open_zarr(path)
    assert back.attrs["xcloud_model"] == "fine" and back.attrs["xcloud_complete"] == 1
    np.testing.assert_array_equal(back["cloud_mask"].values, expected.values)


def test_a_live_lock_refuses_a_second_writer(tmp_path):
    import os
    import socket

    from xcloud.io.pipeline import StoreLockedError, lock_path

    path = tmp_path / "m.zarr"
    _write(_cube(), path)
    before = xr.open_zarr(path).load()
    lock = Path(lock_path(path))
    lock.write_text(json.dumps({"run_id": "x", "pid": os.getpid(), "host": socket.gethostname()}))
    with pytest.raises(StoreLockedError, match=r"being written by another run.*delete"):
        _write(_cube(), path, overwrite=True)
    xr.testing.assert_identical(xr.open_zarr(path).load(), before)
    lock.unlink()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    import socket
    import subprocess
    import sys

    from xcloud.io.pipeline import lock_path

    path = tmp_path / "m.zarr"
    _write(_cube(), path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    lock = Path(lock_path(path))
    lock.write_text(json.dumps({"run_id": "x", "pid": pid, "host": socket.gethostname()}))
    out = _write(_cube(), path, overwrite=True)
    assert out.attrs["xcloud_complete"] == 1
    assert not lock.exists()


# 5. resume proves it is the same job


def _half_written(path, ds, **kw):
    n = []

    def stop(_):
        n.append(1)
        if len(n) == 3:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        _write(ds, path, on_region=stop, max_in_flight=1, **kw)


def test_resume_refuses_another_chunk_grid(tmp_path):
    path = tmp_path / "m.zarr"
    _half_written(path, _cube())
    before = xr.open_zarr(path).load()
    with pytest.raises(ModelMismatchError, match=r"regions of 48 x 48 px.*chunks=48"):
        _write(_cube(), path, resume=True, chunks=32)
    xr.testing.assert_identical(xr.open_zarr(path).load(), before)
    out = _write(_cube(), path, resume=True)  # without chunks=: the store's regions
    assert out.attrs["xcloud_complete"] == 1
    np.testing.assert_array_equal(out["cloud_mask"].values, _cube().cloud.mask(TEST_MODEL).values)


def test_resume_refuses_other_input_of_the_same_shape(tmp_path):
    path = tmp_path / "m.zarr"
    _half_written(path, _cube(seed=0))
    before = xr.open_zarr(path).load()
    with pytest.raises(ModelMismatchError, match="other input"):
        _write(_cube(seed=3), path, resume=True)
    xr.testing.assert_identical(xr.open_zarr(path).load(), before)


def test_resume_refuses_another_route_threshold(tmp_path):
    path = tmp_path / "m.zarr"
    _half_written(
        path,
        _cube(),
        model="cascade",
        mask_kw={"cascade": xcloud.CascadeOptions(route_threshold=0.6)},
    )
    with pytest.raises(ModelMismatchError, match="xcloud_route_threshold"):
        _write(
            _cube(), path, model="cascade", resume=True,
            mask_kw={"cascade": xcloud.CascadeOptions(route_threshold=0.9)},
        )  # fmt: skip


def test_resume_of_a_garbage_store_names_the_problem(tmp_path):
    from xcloud.io.pipeline import StoreCorruptError

    path = tmp_path / "m.zarr"
    _half_written(path, _cube())
    (path / "zarr.json").write_text("{not json")
    with pytest.raises(StoreCorruptError, match=r"cannot be read.*overwrite=True"):
        _write(_cube(), path, resume=True)


def test_resume_recomputes_a_damaged_region(tmp_path):
    """A truncated chunk file used to be trusted on resume and fail to decompress later."""
    path = tmp_path / "m.zarr"
    ds = _cube()
    expected = ds.cloud.mask(TEST_MODEL).compute()
    _half_written(path, ds)
    chunks = sorted(p for p in (path / "cloud_mask" / "c").rglob("*") if p.is_file())
    assert chunks
    chunks[0].write_bytes(chunks[0].read_bytes()[:5])
    with pytest.warns(UserWarning, match="1 region.*damaged.*again"):
        out = _write(ds, path, resume=True)
    assert out.attrs["xcloud_complete"] == 1
    np.testing.assert_array_equal(out["cloud_mask"].values, expected.values)
