"""STAC -> mask -> Zarr against a real ``rustac serve`` over small COGs made from a real chip."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import DATA, S2_BANDS, TEST_MODEL

pytest.importorskip("pystac_client")
pytest.importorskip("odc.stac")
rasterio = pytest.importorskip("rasterio")

pytestmark = pytest.mark.network

RUSTAC = shutil.which("rustac") or str(Path(sys.executable).parent / "rustac")
COLLECTION = "s2-test-l2a"
COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
CENTRE = {"B02": 0.490, "B03": 0.560, "B04": 0.665, "B08": 0.842}
DATES = [f"2020-01-{d:02d}T08:30:00Z" for d in (2, 7, 12, 17, 22, 27)]
TILE = 128
GOOD = "2020-01-01/2020-01-31"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_cog(path: Path, data: np.ndarray, profile: dict, transform) -> None:
    prof = {
        **profile,
        "driver": "COG",
        "width": data.shape[1],
        "height": data.shape[0],
        "transform": transform,
        "compress": "deflate",
        "blocksize": 64,
    }
    for k in ("blockxsize", "blockysize", "tiled", "interleave"):
        prof.pop(k, None)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data, 1)


def _item(item_id, date, tile_bounds_ll, transform, crs_epsg, assets, baseline="02.14", cloud=0.0):
    w, s, e, n = tile_bounds_ll
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": COLLECTION,
        "bbox": [w, s, e, n],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": {
            "datetime": date,
            "platform": "sentinel-2a",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "processing:level": "L2A",
            "s2:processing_baseline": baseline,
            "eo:cloud_cover": cloud,
            "proj:epsg": crs_epsg,
            "proj:shape": [TILE, TILE],
            "proj:transform": list(transform)[:6],
        },
        "links": [],
        "assets": assets,
    }


def _asset(href: str, band: str) -> dict:
    return {
        "href": href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
        "eo:bands": [
            {"name": band, "common_name": COMMON[band], "center_wavelength": CENTRE[band]}
        ],
        "raster:bands": [{"data_type": "uint16", "nodata": 0, "scale": 1e-4, "offset": 0.0}],
    }


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> dict:
    """12 good items (6 dates x 2 tiles, 128 x 128 COGs) + 2 broken ones on 2020-03-0x."""
    from rasterio.warp import transform_bounds

    root = tmp_path_factory.mktemp("stac")
    src = {}
    for b in S2_BANDS:
        with rasterio.open(DATA / "oncloudn_jaag" / f"{b}.tif") as ds:
            src[b] = ds.read(1)
            profile, transform, crs = ds.profile, ds.transform, ds.crs
    items = []
    for d, date in enumerate(DATES):
        for tile in (0, 1):
            col0 = tile * TILE
            row0 = 16 * d  # each date sees different real pixels on the same grid
            t = transform * rasterio.Affine.translation(col0, 0)
            assets = {}
            item_id = f"S2A_TEST_{date[:10].replace('-', '')}_T{tile}"
            for b in S2_BANDS:
                p = root / f"{item_id}_{b}.tif"
                _write_cog(p, src[b][row0 : row0 + TILE, col0 : col0 + TILE], profile, t)
                assets[b] = _asset(p.resolve().as_uri(), b)
            bounds = rasterio.transform.array_bounds(TILE, TILE, t)
            ll = transform_bounds(crs, "EPSG:4326", bounds[0], bounds[1], bounds[2], bounds[3])
            items.append(
                _item(item_id, date, ll, t, crs.to_epsg(), assets, cloud=15.0 * d + 5.0 * tile)
            )
    good = items[:]
    # broken items: one asset file deleted, one asset key absent
    broken1 = json.loads(json.dumps(items[0]))
    broken1["id"] = "S2A_TEST_BROKEN_FILE"
    broken1["properties"]["datetime"] = "2020-03-02T08:30:00Z"
    broken1["assets"]["B08"]["href"] = (root / "does_not_exist.tif").resolve().as_uri()
    broken2 = json.loads(json.dumps(items[1]))
    broken2["id"] = "S2A_TEST_NO_NIR"
    broken2["properties"]["datetime"] = "2020-03-07T08:30:00Z"
    del broken2["assets"]["B08"]
    items += [broken1, broken2]
    # across the January 2022 baseline change, no raster:bands offset: xcloud must use
    # s2:processing_baseline (03.01: DN / 1e4; 04.00: DN / 1e4 - 0.1)
    for date, baseline in [("2021-12-20T08:30:00Z", "03.01"), ("2022-02-10T08:30:00Z", "04.00")]:
        it = json.loads(json.dumps(items[0]))  # tile 0, rows 0 .. 127
        it["id"] = f"S2A_TEST_BASELINE_{baseline}"
        it["properties"]["datetime"] = date
        it["properties"]["s2:processing_baseline"] = baseline
        for a in it["assets"].values():
            a["raster:bands"] = [{"data_type": "uint16", "nodata": 0}]
        items.append(it)
    extent_ll = [
        min(i["bbox"][0] for i in items),
        min(i["bbox"][1] for i in items),
        max(i["bbox"][2] for i in items),
        max(i["bbox"][3] for i in items),
    ]
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "description": "On Cloud N chip jaag cut into 128 px COG tiles (CC-BY-4.0)",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [extent_ll]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", "2020-03-31T00:00:00Z"]]},
        },
        "links": [],
    }
    (root / "collection.json").write_text(json.dumps(collection))
    (root / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return {"root": root, "bbox": extent_ll, "good": good, "crs": crs}


@contextlib.contextmanager
def _serve(cwd: Path, hrefs: list[str], probe: str, *extra: str):
    """``rustac serve`` of ``hrefs`` on a free port, answering ``probe``; yields its URL."""
    if not os.path.exists(RUSTAC):
        pytest.skip("the rustac console script is not installed (pip install rustac)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [RUSTAC, "serve", "--addr", f"127.0.0.1:{port}", *extra, *hrefs],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}{probe}", timeout=1):
                    break
            except Exception:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"rustac serve exited: {proc.stderr.read().decode()}"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError("rustac serve did not answer within 30 s") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def stac_server(catalog):
    """``rustac serve`` of the test catalogue on a free port; yields its URL."""
    with _serve(
        catalog["root"], ["collection.json", "items.json"], f"/collections/{COLLECTION}"
    ) as url:
        yield url


def test_open_stac_loads_the_series(stac_server, catalog):
    from xcloud.io.stac import open_stac, stac_items

    ds = open_stac(
        stac_server, COLLECTION, bbox=catalog["bbox"], datetime=GOOD, chunks={"x": 64, "y": 64}
    )
    assert sorted(ds.data_vars) == ["blue", "green", "nir", "red"]
    assert ds.sizes["time"] == len(DATES)  # two tiles per date merged by solar_day
    assert ds.sizes["x"] >= 2 * TILE and ds.sizes["y"] >= TILE  # the bbox's own grid
    assert len(ds.attrs["stac_item_ids"]) == 12
    assert len(stac_items(ds)) == 12
    assert ds.attrs["platform"] == "sentinel-2a"
    assert ds.attrs["processing:level"] == "L2A"
    assert ds.attrs["xcloud_sensor"] == "sentinel-2a-l2a"
    assert ds["nir"].attrs["scale_factor"] == 1e-4
    assert ds["nir"].attrs["add_offset"] == 0.0
    assert ds["nir"].attrs["nodata"] == 0
    # without a bbox the grid is the items' own: the pixels are the chip's (date d: rows 16 d ..)
    ds = open_stac(stac_server, COLLECTION, datetime=GOOD, bands=["B08"], retries=0)
    assert list(ds.data_vars) == ["nir"]
    assert ds.sizes["x"] == 2 * TILE and ds.sizes["y"] == TILE
    with rasterio.open(DATA / "oncloudn_jaag" / "B08.tif") as f:
        chip = f.read(1)
    np.testing.assert_array_equal(ds["nir"].isel(time=2).values, chip[32 : 32 + TILE, :])


def test_server_down_is_a_clear_error_after_retries():
    from xcloud.errors import XCloudError
    from xcloud.io.stac import StacError, open_stac

    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(StacError, match="failed after 3 attempts") as e:
        open_stac(url, COLLECTION, retries=2, backoff=0.05)
    assert url in str(e.value) and "nothing was written" in str(e.value)
    assert isinstance(e.value, XCloudError)
    assert time.perf_counter() - t0 >= 0.15  # it did back off: 0.05 + 0.1


def test_http_error_is_retried_then_reported(stac_server):
    from xcloud.io.stac import StacError, open_stac

    with pytest.raises(StacError, match="HTTP 404"):
        open_stac(stac_server + "/no/such/api", COLLECTION, retries=1, backoff=0.0)


def test_empty_search_names_collection_bbox_datetime(stac_server, catalog):
    from xcloud.io.stac import EmptySearchError, open_stac

    with pytest.raises(EmptySearchError) as e:
        open_stac(stac_server, COLLECTION, bbox=catalog["bbox"], datetime="2019-01-01/2019-02-01")
    msg = str(e.value)
    assert COLLECTION in msg and "2019-01-01/2019-02-01" in msg and "bbox=" in msg


@pytest.mark.parametrize(
    ("bbox", "match"),
    [
        ("swap", r"looks like \(south, west, north, east\)"),
        ("west>east", "west .* > east"),
        ([1, 2, 3], "not four numbers"),
    ],
)
def test_wrong_bbox_says_what_was_expected(stac_server, catalog, bbox, match):
    from xcloud.io.stac import BBoxError, open_stac

    w, s, e, n = catalog["bbox"]  # about 23.7 E, -15.5 S: latitude/longitude distinguishable
    if bbox == "swap":
        bbox = [s, w, n, e]
        # -15.5 would be a valid longitude but 23.7 .. is a valid latitude too; make it
        # unambiguous with a latitude out of range
        bbox = [s, w + 70, n, e + 70]
    elif bbox == "west>east":
        bbox = [e, s, w, n]
    with pytest.raises(BBoxError, match=match) as err:
        open_stac(stac_server, COLLECTION, bbox=bbox)
    assert "expected" in str(err.value) or "not four numbers" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resolution": 0}, r"resolution=0: expected a pixel size > 0"),
        ({"resolution": -10.0}, r"resolution=-10\.0: expected a pixel size > 0"),
        ({"chunks": 512}, r"chunks=512: expected \{dimension: size\}"),
        ({"chunks": {"x": 0, "y": 512}}, r"chunks=\{'x': 0, 'y': 512\}: expected"),
        ({"retries": -1}, r"retries=-1: expected a whole number >= 0"),
        ({"backoff": -0.5}, r"backoff=-0\.5: expected seconds >= 0"),
    ],
)
def test_bad_load_arguments_are_refused_before_any_request(kwargs, match):
    """No server listens on port 9: without the check these would fail later, after retries."""
    from xcloud.errors import ParameterError
    from xcloud.io.stac import open_stac

    with pytest.raises(ParameterError, match=match):
        open_stac("http://127.0.0.1:9", COLLECTION, bbox=(23.0, -16.0, 24.0, -15.0), **kwargs)


def test_missing_or_unreadable_asset_raise_or_skip(stac_server):
    from xcloud.errors import XCloudWarning
    from xcloud.io.stac import AssetError, open_stac

    with pytest.raises(AssetError) as e:
        open_stac(stac_server, COLLECTION, datetime="2020-03-01/2020-03-31")
    msg = str(e.value)
    assert "S2A_TEST_BROKEN_FILE" in msg and "does_not_exist.tif" in msg
    assert "S2A_TEST_NO_NIR" in msg and "on_missing='skip'" in msg

    with pytest.warns(XCloudWarning, match="skipped 2 of 14 items"):
        ds = open_stac(stac_server, COLLECTION, datetime="2020-01-01/2020-03-31", on_missing="skip")
    assert ds.attrs["xcloud_skipped_items"] == ["S2A_TEST_BROKEN_FILE", "S2A_TEST_NO_NIR"]
    assert len(ds.attrs["stac_item_ids"]) == 12 and ds.sizes["time"] == len(DATES)


def test_open_stac_result_masks_without_arguments(stac_server, oncloudn_chip):
    import xcloud
    from xcloud.io.stac import open_stac

    ds = open_stac(stac_server, COLLECTION, datetime=GOOD, chunks={"x": 128, "y": 128})
    m = xcloud.mask(ds.isel(time=slice(0, 2)), TEST_MODEL)
    assert m.dims == ("time", "y", "x") and m.chunks is not None
    assert m.attrs["xcloud_sensor"] == "sentinel-2a-l2a"
    # same pixels, same scaling as the chip read directly (time 0 = chip rows 0 .. 127)
    direct = xcloud.mask(oncloudn_chip.isel(y=slice(0, TILE)), TEST_MODEL)
    np.testing.assert_array_equal(m.isel(time=0).values, direct.values)


class Crash(RuntimeError):
    pass


def _stop_after(n: int, seen: list):
    def cb(region):
        seen.append((region.t, region.i, region.j))
        if len(seen) >= n:
            raise Crash(f"simulated crash after {n} regions")

    return cb


@pytest.fixture(scope="module")
def series(stac_server):
    from xcloud.io.stac import open_stac

    return open_stac(stac_server, COLLECTION, datetime=GOOD, chunks={"x": 128, "y": 128})


@pytest.fixture(scope="module")
def uninterrupted(series, tmp_path_factory):
    from xcloud.io.pipeline import mask_to_zarr

    path = tmp_path_factory.mktemp("full") / "full.zarr"
    out = mask_to_zarr(series, path, model=TEST_MODEL, progress=False)
    return path, out


def test_mask_to_zarr_writes_the_cube_with_fractions_and_provenance(uninterrupted, series):
    path, out = uninterrupted
    assert out["cloud_mask"].shape == (len(DATES), TILE, 2 * TILE)
    assert out.attrs["xcloud_complete"] == 1
    assert int(out["xcloud_done"].sum()) == out["xcloud_done"].size == len(DATES) * 2
    assert out.attrs["xcloud_model"] == TEST_MODEL
    assert out.attrs["stac_item_ids"] == series.attrs["stac_item_ids"]
    assert out.attrs["stac_collection"] == COLLECTION
    assert "xcloud_version" in out.attrs and "xcloud_model_weights_sha256" in out.attrs
    assert out["cloud_mask"].attrs["flag_meanings"].startswith("clear cloud")
    # the fractions agree with the stored mask
    m = out["cloud_mask"].values
    valid = m != 255
    cloudy = np.isin(m, [1, 2]) & valid
    np.testing.assert_allclose(
        out["cloud_fraction"].values, cloudy.sum((1, 2)) / valid.sum((1, 2)), rtol=1e-6
    )
    np.testing.assert_allclose(out["nodata_fraction"].values, (~valid).mean((1, 2)), rtol=1e-6)
    # and the mask is the one xcloud.mask computes in one go
    import xcloud

    np.testing.assert_array_equal(m, xcloud.mask(series, TEST_MODEL).values)


def test_crash_then_resume_equals_uninterrupted_and_skips_done_regions(
    series, uninterrupted, tmp_path
):
    from xcloud.io.pipeline import mask_to_zarr

    path = tmp_path / "resumed.zarr"
    first: list = []
    with pytest.raises(Crash):
        mask_to_zarr(
            series,
            path,
            model=TEST_MODEL,
            progress=False,
            max_in_flight=2,
            on_region=_stop_after(5, first),
        )
    half = xr.open_zarr(path)
    done_before = {tuple(ix) for ix in np.argwhere(half["xcloud_done"].values == 1)}
    # every region the driver saw finish is done; others running beside it may have finished
    # too (each writes its own done flag, after its data)
    assert set(first) <= done_before and len(done_before) >= 5
    assert half.attrs["xcloud_complete"] == 0
    assert np.isnan(half["cloud_fraction"].values).all()

    second: list = []
    out = mask_to_zarr(
        series, path, model=TEST_MODEL, resume=True, progress=False, on_region=second.append
    )
    resumed = {(r.t, r.i, r.j) for r in second}
    total = out["xcloud_done"].size
    assert not resumed & done_before  # no completed region is computed again
    assert len(second) == total - len(done_before)
    full = uninterrupted[1]
    xr.testing.assert_identical(out.drop_attrs(), full.drop_attrs())
    assert out.attrs == full.attrs


def test_store_of_another_model_is_refused_unless_overwrite(series, uninterrupted, tmp_path):
    from xcloud.errors import StoreExistsError
    from xcloud.io.pipeline import ModelMismatchError, mask_to_zarr

    path = tmp_path / "m.zarr"
    shutil.copytree(uninterrupted[0], path)
    small = series.isel(time=slice(0, 1))
    with pytest.raises(StoreExistsError, match="resume=True"):
        mask_to_zarr(series, path, model=TEST_MODEL, progress=False)
    with pytest.raises(ModelMismatchError, match="ukis-csmask") as e:
        mask_to_zarr(small, path, model="ukis-csmask", resume=True, progress=False)
    assert TEST_MODEL in str(e.value) and "overwrite=True" in str(e.value)
    out = mask_to_zarr(small, path, model=TEST_MODEL, overwrite=True, progress=False)
    assert out.sizes["time"] == 1 and out.attrs["xcloud_complete"] == 1


def _cli_args(url, catalog, out, *extra):
    w, s, e, n = catalog["bbox"]
    return [
        "mask",
        "--stac",
        url,
        "--collection",
        COLLECTION,
        "--bbox",
        str(w),
        str(s),
        str(e),
        str(n),
        "--datetime",
        GOOD,
        "--out",
        str(out),
        "--model",
        TEST_MODEL,
        "--quiet",
        *extra,
    ]


def test_cli_stac_to_zarr_end_to_end(stac_server, catalog, tmp_path, capsys):
    from xcloud.cli import main

    out = tmp_path / "cli.zarr"
    assert main(_cli_args(stac_server, catalog, out, "--chunks", "128", "--workers", "0")) == 0
    text = capsys.readouterr().out
    assert "scenes" in text and f"{len(DATES)} (12 STAC items)" in text
    assert "cloud" in text and "Mpx/s" in text
    ds = xr.open_zarr(out)
    assert ds.attrs["xcloud_complete"] == 1 and ds.sizes["time"] == len(DATES)
    # a second run refuses the existing store; --resume finds nothing left to do
    assert main(_cli_args(stac_server, catalog, out, "--workers", "0")) == 2
    assert "resume=True" in capsys.readouterr().err
    assert main(_cli_args(stac_server, catalog, out, "--resume", "--workers", "0")) == 0


def test_cli_reports_a_server_that_is_down(catalog, tmp_path, capsys):
    from xcloud.cli import main

    out = tmp_path / "never.zarr"
    url = f"http://127.0.0.1:{_free_port()}"
    assert main(_cli_args(url, catalog, out, "--workers", "0")) == 2
    assert url in capsys.readouterr().err
    assert not out.exists()  # nothing written


_RUNNER = """
import sys
sys.path[:0] = [{tests!r}, {root!r}]
import conftest  # registers the test model
from xcloud.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_mid_write_then_resume_equals_uninterrupted(stac_server, catalog, tmp_path):
    import signal

    import zarr

    from xcloud.cli import main

    runner = tmp_path / "run.py"
    runner.write_text(
        _RUNNER.format(tests=str(Path(__file__).parents[1]), root=str(Path(__file__).parents[2]))
    )
    killed = tmp_path / "killed.zarr"
    args = _cli_args(stac_server, catalog, killed, "--chunks", "64", "--workers", "0")
    proc = subprocess.Popen([sys.executable, str(runner), *args], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    n_done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                n_done = int(np.asarray(zarr.open_array(killed, path="xcloud_done")[...]).sum())
            except Exception:
                n_done = 0
            if n_done >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        err = proc.stderr.read().decode()
    assert proc.returncode == -signal.SIGKILL, err
    done = np.asarray(zarr.open_array(killed, path="xcloud_done")[...])
    total = done.size
    assert 4 <= done.sum() < total, "the run finished before it could be killed"

    assert main([*args, "--resume"]) == 0
    full = tmp_path / "full.zarr"
    assert main(_cli_args(stac_server, catalog, full, "--chunks", "64", "--workers", "0")) == 0
    a, b = xr.open_zarr(killed), xr.open_zarr(full)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert a.attrs == b.attrs


def test_cli_scheduler_address_runs_on_an_existing_cluster(stac_server, catalog, tmp_path):
    distributed = pytest.importorskip("distributed")
    from xcloud.cli import main

    # in-process workers: they see the test model registered by conftest
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        out = tmp_path / "dist.zarr"
        args = _cli_args(stac_server, catalog, out, "--chunks", "128")
        assert main([*args, "--scheduler", cluster.scheduler_address]) == 0
    import xcloud

    got = xr.open_zarr(out)
    assert got.attrs["xcloud_complete"] == 1
    ds = xcloud.open_stac(stac_server, COLLECTION, bbox=catalog["bbox"], datetime=GOOD)
    np.testing.assert_array_equal(got["cloud_mask"].values, xcloud.mask(ds, TEST_MODEL).values)


def test_sentinel2_baseline_offset_per_scene(stac_server):
    import xcloud

    with rasterio.open(DATA / "oncloudn_jaag" / "B08.tif") as f:
        chip = f.read(1)[:TILE, :TILE].astype(np.float32)
    ds = xcloud.open_stac(stac_server, COLLECTION, datetime="2021-12-01/2022-02-28")
    assert ds.sizes["time"] == 2
    assert ds.attrs["stac_item_ids"] == ["S2A_TEST_BASELINE_03.01", "S2A_TEST_BASELINE_04.00"]
    nir = ds["nir"].values
    assert nir.dtype == np.float32 and ds["nir"].attrs["scale_factor"] == 1.0
    valid = chip != 0
    np.testing.assert_allclose(nir[0][valid], chip[valid] * 1e-4, rtol=1e-5)
    np.testing.assert_allclose(nir[1][valid], chip[valid] * 1e-4 - 0.1, rtol=1e-5, atol=1e-6)
    assert np.isnan(nir[:, ~valid]).all()
    assert xcloud.mask(ds, TEST_MODEL).shape == (2, TILE, TILE)
    # one baseline only: integer DN kept, the offset goes into the attrs
    one = xcloud.open_stac(stac_server, COLLECTION, datetime="2022-02-01/2022-02-28")
    assert one["nir"].dtype == np.uint16
    assert one["nir"].attrs["scale_factor"] == 1e-4 and one["nir"].attrs["add_offset"] == -0.1


def test_cli_local_file_still_works(tmp_path, capsys):
    from xcloud.cli import main

    data, profile = [], None
    for b in S2_BANDS:
        with rasterio.open(DATA / "oncloudn_jaag" / f"{b}.tif") as f:
            data.append(f.read(1)[:TILE, :TILE])
            profile = f.profile
    tif = tmp_path / "scene.tif"
    prof = {**profile, "count": 4, "width": TILE, "height": TILE}
    with rasterio.open(tif, "w", **prof) as dst:
        dst.write(np.stack(data))
        for i, b in enumerate(S2_BANDS, start=1):
            dst.set_band_description(i, b)
    out = tmp_path / "local.zarr"
    assert (
        main(
            [
                "mask",
                str(tif),
                "--out",
                str(out),
                "--model",
                TEST_MODEL,
                "--sensor",
                "sentinel-2-l2a",
                "--chunks",
                "128",
            ]
        )
        == 0
    )
    assert "pixels" in capsys.readouterr().out
    assert xr.open_zarr(out)["cloud_mask"].shape == (TILE, TILE)


@pytest.mark.slow  # ~20 s: a cluster starts and a killed worker is replaced (make test-all)
def test_worker_killed_mid_run_recovers_and_equals_uninterrupted(series, uninterrupted, tmp_path):
    import signal

    distributed = pytest.importorskip("distributed")
    from xcloud.io.pipeline import mask_to_zarr

    class RegisterTestModel(distributed.WorkerPlugin):
        """Worker processes (and their replacements) register conftest's test model."""

        idempotent = True
        name = "xcloud-test-model"

        def setup(self, worker):
            import conftest  # noqa: F401

    seen: list = []
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.register_plugin(RegisterTestModel())
        pids = client.run(os.getpid)

        def kill_one(region):
            seen.append(region)
            if len(seen) == 2:
                os.kill(next(iter(pids.values())), signal.SIGKILL)

        out = mask_to_zarr(
            series,
            tmp_path / "killed.zarr",
            model=TEST_MODEL,
            client=client,
            progress=False,
            on_region=kill_one,
        )
    assert len(seen) == out["xcloud_done"].size  # every region once, none lost
    xr.testing.assert_identical(out.drop_attrs(), uninterrupted[1].drop_attrs())


# --- PostgreSQL + pgstac: the CQL2 filter path --------------------------------------------------


def _pg_bin() -> Path | None:
    for c in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (c / "initdb").exists():
            return c
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="module")
def pgstac_server(catalog):
    """A throwaway PostgreSQL cluster with pgstac, loaded with the catalog, behind rustac."""
    import tempfile

    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL (initdb) is not installed: apt-get install postgresql")
    pypgstac = Path(sys.executable).parent / "pypgstac"
    if not pypgstac.exists():
        pytest.skip('pypgstac is not installed: pip install "pypgstac[psycopg]"')
    share = subprocess.run([pg / "pg_config", "--sharedir"], capture_output=True, text=True)
    sharedir = Path(share.stdout.strip()) if share.returncode == 0 else None
    if sharedir is None or not (sharedir / "extension" / "postgis.control").exists():
        pytest.skip(
            "the PostGIS extension is not installed: apt-get install postgresql-NN-postgis-3"
        )
    as_pg: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="xcloud-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_pg = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    run = lambda *a: subprocess.run([*as_pg, *map(str, a)], check=True, capture_output=True)  # noqa: E731
    run(pg / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(pg / "pg_ctl", "-D", data, "-o", opts, "-l", base / "log", "-w", "start")
    rustac = None
    try:
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        subprocess.run(
            ["psql", admin, "-c", "create database stac"], check=True, capture_output=True
        )
        dsn = f"postgresql://postgres@127.0.0.1:{port}/stac"
        subprocess.run(
            ["psql", dsn, "-c", "alter database stac set search_path to pgstac, public"],
            check=True,
            capture_output=True,
        )
        subprocess.run([pypgstac, "migrate", "--dsn", dsn], check=True, capture_output=True)
        root = catalog["root"]
        items = json.loads((root / "items.json").read_text())["features"]
        (root / "items.ndjson").write_text("\n".join(json.dumps(i) for i in items))
        for kind, f in (("collections", "collection.json"), ("items", "items.ndjson")):
            subprocess.run(
                [pypgstac, "load", kind, root / f, "--dsn", dsn, "--method", "upsert"],
                check=True,
                capture_output=True,
            )
        sport = _free_port()
        url = f"http://127.0.0.1:{sport}"
        rustac = subprocess.Popen(
            [RUSTAC, "serve", "--addr", f"127.0.0.1:{sport}", "--pgstac", dsn],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/collections/{COLLECTION}", timeout=1):
                    break
            except Exception:
                if rustac.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("rustac serve --pgstac did not start") from None
                time.sleep(0.2)
        yield url, items
    finally:
        if rustac is not None:
            rustac.terminate()
            rustac.wait(timeout=10)
        subprocess.run([*as_pg, str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def test_cql2_filter_through_pgstac(pgstac_server, tmp_path, capsys):
    import xcloud
    from xcloud.cli import main

    url, items = pgstac_server
    f = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 50]}
    want = sorted(
        i["id"]
        for i in items
        if i["properties"]["eo:cloud_cover"] < 50 and i["properties"]["datetime"] < "2020-02"
    )
    assert 0 < len(want) < 12  # the filter really selects
    ds = xcloud.open_stac(url, COLLECTION, datetime=GOOD, filter=f)
    assert sorted(ds.attrs["stac_item_ids"]) == want
    # the same through the CLI, as CQL2-JSON text
    out = tmp_path / "filtered.zarr"
    args = ["mask", "--stac", url, "--collection", COLLECTION, "--datetime", GOOD]
    args += ["--filter", json.dumps(f), "--out", str(out), "--model", TEST_MODEL]
    assert main([*args, "--chunks", "128", "--workers", "0", "--quiet"]) == 0
    assert sorted(xr.open_zarr(out).attrs["stac_item_ids"]) == want


def test_cascade_reads_its_overview_from_the_cogs(stac_server):
    """A cube from open_stac gives the cascade its overview from the COGs themselves, on the
    cube's grid at 4x the pixel size; it matches the overview coarsened from the full cube."""
    import xcloud
    from xcloud.inference.cascade import compute_overview
    from xcloud.io.stac import load_overview, open_stac

    ds = open_stac(stac_server, COLLECTION, datetime=GOOD, chunks={"x": 128, "y": 128})
    ds = ds.isel(time=slice(0, 2))
    VARS = ["blue", "green", "red", "nir"]
    assert ds.encoding.get("xcloud_stac_items")  # so xcloud.mask reads the COG overviews
    ov = load_overview(ds, VARS, 4)
    assert ov.sizes["y"] == -(-ds.sizes["y"] // 4) and ov.sizes["x"] == -(-ds.sizes["x"] // 4)
    np.testing.assert_array_equal(ov["time"].values, ds["time"].values)
    read = np.stack([ov[b].values for b in VARS], axis=1).astype(np.float32)
    cube = np.stack([ds[b].values for b in VARS], axis=1).astype(np.float32)
    coarsened = compute_overview(cube, 4)[:, :4]
    # the COGs' own overviews are resampled by GDAL (not an exact block mean): close, not equal
    assert np.abs(read - coarsened).mean() < 0.01 * coarsened.mean()

    routing = xcloud.route(ds, fine="fine")
    m = xcloud.mask(ds, fine="fine", routing=routing)
    routing_cube = xcloud.route(
        ds, fine="fine", cascade=xcloud.CascadeOptions(overview=_coarsened(ds))
    )
    m_cube = xcloud.mask(ds, fine="fine", routing=routing_cube)
    assert (routing.cell_class.values == routing_cube.cell_class.values).mean() >= 0.9
    assert m.dims == ("time", "y", "x") and (m.values != 255).all()
    assert (m.values == m_cube.values).mean() >= 0.99


def _coarsened(ds):
    """The overview coarsened from the full cube, as a Dataset the cascade accepts."""
    out = ds.coarsen(y=4, x=4, boundary="pad").mean()
    for v in out.data_vars:
        out[v].attrs = dict(ds[v].attrs)
    return out


def test_mask_to_zarr_with_the_default_cascade(series, tmp_path):
    """The default model end to end: routing on the COG overviews, region writes, resume."""
    import xcloud
    from xcloud.io.pipeline import mask_to_zarr

    sub = series.isel(time=slice(0, 3))
    seen: list = []
    path = tmp_path / "cascade.zarr"
    with pytest.raises(Crash):
        mask_to_zarr(sub, path, progress=False, on_region=_stop_after(2, seen))
    out = mask_to_zarr(sub, path, resume=True, progress=False)
    assert out["cloud_mask"].attrs["xcloud_model"] == "cascade"
    expected = xcloud.mask(sub).values
    np.testing.assert_array_equal(out["cloud_mask"].values, expected)
    assert int(out["xcloud_done"].sum()) == out["xcloud_done"].size


def test_local_files_only_from_a_local_catalogue(stac_server):
    """A catalogue could point asset hrefs at any local file (file://, a path, /vsi...): only a
    catalogue on this machine, or allow_local=True, may."""
    from xcloud.io.stac import AssetError, open_stac

    with pytest.raises(AssetError, match=r"points at a local path .*allow_local=False"):
        open_stac(stac_server, COLLECTION, datetime=GOOD, allow_local=False)
    ds = open_stac(stac_server, COLLECTION, datetime=GOOD)  # the server is local: allowed
    assert ds.sizes["time"] >= 1


@pytest.mark.parametrize(
    ("href", "allow", "expected"),
    [
        ("file:///etc/passwd", None, r"local path .*not on this machine.*allow_local=True"),
        ("/etc/passwd", None, r"local path"),
        ("/vsicurl/http://169.254.169.254/latest", None, r"local path"),
        ("ftp://example.com/b.tif", None, r"scheme 'ftp'"),
        ("file:///data/b.tif", True, None),
        ("https://example.com/b.tif", None, None),
        ("s3://bucket/b.tif", None, None),
    ],
)
def test_a_remote_catalogue_cannot_steer_reads(href, allow, expected):
    from datetime import datetime

    import pystac

    from xcloud.io.stac import AssetError, _check_hrefs

    item = pystac.Item("x", None, None, datetime(2024, 1, 1), {})
    item.add_asset("B02", pystac.Asset(href))
    check = lambda: _check_hrefs([item], {"B02": "blue"}, "https://stac.example.com/v1", allow)  # noqa: E731
    if expected is None:
        check()
    else:
        with pytest.raises(AssetError, match=expected):
            check()


# --- masks published as STAC: Collection + Items + COGs, served back, searched, loaded ---

MASKS = "xcloud-cloud-mask"


def _validate_core(obj) -> None:
    """Validate against the core STAC JSON schemas pystac bundles (offline: the extension
    schemas are on the web, so their fields are read back through pystac's extension API)."""
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    d = obj.to_dict(include_self_link=False)
    JsonSchemaSTACValidator().validate_core(
        d, obj.STAC_OBJECT_TYPE, d["stac_version"], obj.get_self_href()
    )


def test_to_stac_items_validate_and_describe_their_masks(uninterrupted, stac_server, tmp_path):
    import pystac
    from pystac.extensions.classification import ClassificationExtension

    import xcloud

    store = xr.open_zarr(uninterrupted[0])
    xcloud.to_stac(store, tmp_path / "cat")
    read = pystac.Collection.from_file(str(tmp_path / "cat" / "collection.json"))
    items = sorted(read.get_items(), key=lambda it: it.datetime)
    assert [it.id for it in items] == [f"{MASKS}_{d[:10].replace('-', '')}T083000" for d in DATES]
    _validate_core(read)
    m = store["cloud_mask"].values
    for t, it in enumerate(items):
        _validate_core(it)
        assert it.properties["xcloud:model"] == TEST_MODEL
        assert (
            it.properties["xcloud:model_weights_sha256"]
            == store.attrs["xcloud_model_weights_sha256"]
        )
        assert it.properties["xcloud:version"] == xcloud.__version__
        classes = ClassificationExtension.ext(it.assets["cloud_mask"]).classes
        assert [(k.value, k.name) for k in classes] == [
            (0, "clear"), (1, "cloud"), (2, "thin_cloud"), (3, "cloud_shadow"), (255, "nodata")
        ]  # fmt: skip
        for k in classes:
            assert k.count == int((m[t] == k.value).sum())
        assert it.properties["eo:cloud_cover"] == pytest.approx(
            100 * float(store["cloud_fraction"][t]), abs=1e-3
        )
        # derived from the two tiles of that date, linked on the source API
        derived = sorted(link.href for link in it.links if link.rel == "derived_from")
        stamp = DATES[t][:10].replace("-", "")
        assert derived == [
            f"{stac_server}/collections/{COLLECTION}/items/S2A_TEST_{stamp}_T{k}" for k in (0, 1)
        ]
        with urllib.request.urlopen(derived[0]) as r:
            assert json.load(r)["id"] == f"S2A_TEST_{stamp}_T0"
        with rasterio.open(it.assets["cloud_mask"].get_absolute_href()) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            np.testing.assert_array_equal(src.read(1), m[t])


def test_published_masks_round_trip_through_rustac_and_open_stac(uninterrupted, tmp_path):
    import xcloud

    store = xr.open_zarr(uninterrupted[0])
    root = tmp_path / "served.stac"  # (a dot in the name: pystac would take it for a file)
    xcloud.to_stac(store, root, href_base=root.resolve().as_uri())
    with _serve(
        root, ["collection.json"], f"/collections/{MASKS}", "--load-collection-items"
    ) as url:
        back = xcloud.open_stac(url, MASKS, bands=["cloud_mask"], groupby=None)
        assert back["cloud_mask"].attrs["nodata"] == 255
        np.testing.assert_array_equal(back["cloud_mask"].values, store["cloud_mask"].values)
        np.testing.assert_array_equal(back["x"].values, store["x"].values)
        # the masks are searchable like any collection (rustac's memory backend has no
        # CQL2 filter: by date here)
        some = xcloud.open_stac(url, MASKS, bands=["cloud_mask"], datetime="2020-01-10/2020-01-20")
        np.testing.assert_array_equal(some["time"].values, store["time"].values[2:4])


def test_mask_to_zarr_stac_writes_the_catalogue_beside_the_store(series, tmp_path):
    from xcloud.errors import StoreExistsError
    from xcloud.io.pipeline import mask_to_zarr

    small = series.isel(time=slice(0, 2))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "important.txt").write_text("keep")
    with pytest.raises(StoreExistsError, match="not empty"):
        mask_to_zarr(small, tmp_path / "a.zarr", model=TEST_MODEL, stac=foreign, progress=False)
    assert not (tmp_path / "a.zarr").exists(), "refused before anything was written"
    assert (foreign / "important.txt").read_text() == "keep"

    mask_to_zarr(small, tmp_path / "m.zarr", model=TEST_MODEL, stac=True, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.stac", "m.zarr", "mine"]
    collection = json.loads((tmp_path / "m.stac" / "collection.json").read_text())
    assert collection["assets"]["zarr"]["href"] == (tmp_path / "m.zarr").resolve().as_uri()
    assert sum(link["rel"] == "item" for link in collection["links"]) == 2


def test_cli_mask_writes_buffer_cogs_and_stac(stac_server, catalog, tmp_path, capsys):
    from xcloud.cli import main

    out, cogs, cat = tmp_path / "m.zarr", tmp_path / "cogs", tmp_path / "cat"
    extra = ["--workers", "0", "--buffer", "20m", "--cog", str(cogs), "--stac-out", str(cat)]
    assert main(_cli_args(stac_server, catalog, out, *extra)) == 0
    text = capsys.readouterr().out
    assert "usable" in text and f"{len(DATES)} items" in text
    ds = xr.open_zarr(out)
    import xcloud

    expected = xcloud.usable(ds["cloud_mask"], buffer="20 m")
    np.testing.assert_array_equal(ds["usable"].values, expected.values)
    assert ds["usable"].attrs["xcloud_buffer_px"] == 2
    assert len(list(cogs.glob("*.tif"))) == len(DATES)
    assert (cat / "collection.json").exists()
    # `xcloud stac` publishes an existing store; a bad --buffer is refused before masking
    assert main(["stac", str(out), "--out", str(tmp_path / "again")]) == 0
    assert len(list((tmp_path / "again").glob("*/*.json"))) == len(DATES)
    bad = [*_cli_args(stac_server, catalog, tmp_path / "n.zarr", "--buffer", "20 parsecs")]
    assert main(bad) == 2
    assert "unknown unit 'parsecs'" in capsys.readouterr().err
    assert not (tmp_path / "n.zarr").exists()


def test_odc_algo_reads_the_flags_definition(uninterrupted):
    odc_algo = pytest.importorskip("odc.algo")
    m = xr.open_zarr(uninterrupted[0])["cloud_mask"]  # after a Zarr round trip
    bad = odc_algo.enum_to_bool(m, ["cloud", "thin_cloud", "cloud_shadow", "nodata"])
    np.testing.assert_array_equal(bad.values, np.isin(m.values, [1, 2, 3, 255]))
