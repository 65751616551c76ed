"""Plots: what is drawn (images, legend labels, colours, patches, titles), not the pixels."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xcloud  # noqa: F401  (registers the accessor)
from xcloud.errors import DimensionError, MissingBandsError
from xcloud.plot import (
    CLASS_COLOURS,
    OVERLAY_COLOURS,
    ROUTE_COLOURS,
    colourise,
    plot_cloud_fraction,
    plot_mask,
    plot_rgb,
    plot_routing,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _mask(codes, time=None):
    arr = np.asarray(codes, dtype=np.uint8)
    ny, nx = arr.shape[-2:]
    coords = {"y": 100.0 - 10 * np.arange(ny), "x": 10.0 * np.arange(nx)}
    dims = ("y", "x")
    if arr.ndim == 3:
        dims = ("time", "y", "x")
        coords["time"] = np.array(time, dtype="datetime64[ns]")
    return xr.DataArray(arr, dims=dims, coords=coords, name="cloud_mask")


def _labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_colourise_uses_class_colours_and_transparent_nodata():
    rgba = colourise(np.array([[0, 1, 2, 3, 255]]))
    for k, code in enumerate((0, 1, 2, 3, 255)):
        assert tuple(rgba[0, k]) == pytest.approx(CLASS_COLOURS[code])
    assert rgba[0, 4, 3] == 0.0


def test_plot_mask_legend_extent_and_transparency():
    m = _mask([[0, 1, 1], [3, 255, 0]])
    ax = m.cloud.plot()
    assert _labels(ax) == ["clear", "cloud", "cloud shadow"]  # thin cloud absent: not listed
    (img,) = ax.get_images()
    data = img.get_array()
    assert data[1, 1, 3] == 0.0  # nodata transparent
    assert tuple(data[0, 1]) == pytest.approx(CLASS_COLOURS[1])
    # drawn in the cube's coordinates: x edges -5 .. 25, y from 105 (top) to 85
    assert img.get_extent() == pytest.approx([-5.0, 25.0, 85.0, 105.0])
    assert ax.get_title() == "cloud_mask"


def test_plot_mask_time_row_and_selection():
    m = _mask([[[0, 1]], [[2, 2]], [[255, 0]]], time=["2024-01-01", "2024-01-06", "2024-01-11"])
    axes = m.cloud.plot()
    assert len(axes) == 3
    assert [a.get_title() for a in axes] == [
        "cloud_mask 2024-01-01",
        "cloud_mask 2024-01-06",
        "cloud_mask 2024-01-11",
    ]
    assert axes[0].get_legend() is not None and axes[1].get_legend() is None
    ax = m.cloud.plot(time="2024-01-06")
    assert ax.get_title() == "cloud_mask 2024-01-06"
    assert "thin cloud" in _labels(ax)
    ax = plot_mask(m, time=2, legend=False)
    assert ax.get_legend() is None


def test_plot_mask_needs_2d():
    with pytest.raises(DimensionError, match="2-D"):
        plot_mask(np.zeros((2, 3, 4), "uint8"))


def test_plot_mask_time_out_of_range_and_reflectance_say_what_to_pass():
    from xcloud.errors import DataTypeError, ParameterError

    m = _mask([[[0, 1]], [[2, 2]]], time=["2024-01-01", "2024-01-06"])
    assert plot_mask(m, time=-1).get_title() == "cloud_mask 2024-01-06"
    with pytest.raises(ParameterError, match=r"time=5 is out of range for 2 time step\(s\); "
                       r"pass a position from 0 to 1 .* '2024-01-01'"):  # fmt: skip
        m.cloud.plot(time=5)
    with pytest.raises(DataTypeError, match=r"no 'cloud_mask' \(mask it first"):
        _scene().cloud.plot()
    store = m.to_dataset(name="cloud_mask")  # as xr.open_zarr gives a mask_to_zarr store
    assert len(store.cloud.plot()) == 2


def _scene(names=("B02", "B03", "B04", "B08"), time=False):
    rng = np.random.default_rng(0)
    shape = (2, 8, 8) if time else (8, 8)
    dims = ("time", "y", "x") if time else ("y", "x")
    coords = {"y": np.arange(8.0)[::-1], "x": np.arange(8.0)}
    if time:
        coords["time"] = np.array(["2024-01-01", "2024-01-06"], "datetime64[ns]")
    ds = xr.Dataset(
        {n: (dims, rng.integers(1, 3000, shape).astype("uint16")) for n in names}, coords=coords
    )
    for v in ds.data_vars.values():
        v.attrs = {"nodata": 0, "scale_factor": 1e-4}
    return ds


def test_plot_rgb_finds_bands_by_s2_keys_and_overlays_mask():
    ds = _scene()
    m = _mask(np.where(np.arange(64).reshape(8, 8) % 3 == 0, 1, 0))
    m = m.assign_coords(y=ds.y, x=ds.x)
    m[0, 0] = 3
    ax = ds.cloud.plot_rgb(mask=m)
    rgb, over = ax.get_images()
    assert rgb.get_array().shape == (8, 8, 3)
    assert _labels(ax) == ["cloud", "cloud shadow"]  # clear is never overlaid
    o = over.get_array()
    assert o[0, 0, :3].tolist() == pytest.approx(OVERLAY_COLOURS[3][:3])
    assert o[0, 1, 3] == 0.0  # a clear pixel stays uncovered
    assert o[0, 3, 3] == pytest.approx(0.5)


def test_plot_rgb_landsat_common_names_time_and_band_dim():
    ds = _scene(names=("SR_B2", "SR_B3", "SR_B4", "SR_B5"), time=True)
    ds.attrs = {"platform": "landsat-8", "processing:level": "L2"}  # as odc-stac copies them
    ax = plot_rgb(ds, time=1)
    assert ax.get_title() == "true colour 2024-01-06"
    arr = _scene(names=("red", "green", "blue")).to_array("band")
    assert plot_rgb(arr).get_images()[0].get_array().shape == (8, 8, 3)


def test_plot_rgb_three_arrays_and_errors():
    r = np.linspace(0, 1, 16).reshape(4, 4)
    assert plot_rgb(r, r, r, title="t").get_title() == "t"
    with pytest.raises(MissingBandsError, match="red, green and blue"):
        plot_rgb(_scene(names=("B08", "B11", "B12")))
    ds = _scene()
    with pytest.raises(DimensionError, match="shape"):
        plot_rgb(ds, mask=np.zeros((3, 3), "uint8"))


def _routing(time=False):
    cells = np.array([[0, 1, 2, 2], [0, 0, 3, 2], [1, 1, 2, 0], [0, 0, 0, 0]], "int8")
    fine = np.array([[False, True], [True, False]])
    cdims, udims = ("cell_y", "cell_x"), ("unit_y", "unit_x")
    coords = {
        "cell_y": 100.0 - 20 * np.arange(4) - 10,
        "cell_x": 20.0 * np.arange(4) + 10,
        "unit_y": np.array([80.0, 40.0]),
        "unit_x": np.array([20.0, 60.0]),
    }
    ff = 0.5
    if time:
        cells, fine, ff = np.stack([cells, cells]), np.stack([fine, ~fine]), np.array([0.5, 0.5])
        cdims, udims = ("time", *cdims), ("time", *udims)
        coords["time"] = np.array(["2024-01-01", "2024-01-06"], "datetime64[ns]")
    return xr.Dataset(
        {
            "cell_class": (
                cdims,
                cells,
                {"flag_meanings": "cloudless overcast partly_cloudy nodata"},
            ),
            "unit_fine": (udims, fine),
            "fine_fraction": (("time",) if time else (), ff),
        },
        coords=coords,
    )


def test_plot_routing_cells_units_legend_title():
    ax = plot_routing(_routing())
    assert ax.get_title() == "routing: fine model on 50% of units"
    assert _labels(ax) == ["cloudless", "overcast", "partly cloudy", "ran the fine model"]
    (img,) = ax.get_images()
    data = img.get_array()
    assert tuple(data[0, 0, :3]) == pytest.approx(ROUTE_COLOURS["cloudless"][:3])
    assert data[1, 2, 3] == 0.0  # nodata cell transparent
    assert img.get_extent() == pytest.approx([0.0, 80.0, 20.0, 100.0])
    rects = [p for p in ax.patches if p.get_hatch()]
    assert len(rects) == 2
    assert {(r.get_x(), r.get_y()) for r in rects} == {(40.0, 60.0), (0.0, 20.0)}


def test_plot_routing_over_mask_keeps_image_extent_and_selects_time():
    m = _mask(np.zeros((2, 8, 8)), time=["2024-01-01", "2024-01-06"])
    m = m.assign_coords(y=100.0 - 10 * np.arange(8) - 5, x=10.0 * np.arange(8) + 5)
    ax = plot_routing(_routing(time=True), background=m, time=1)
    assert ax.get_title() == "routing: fine model on 50% of units 2024-01-06"
    assert ax.get_xlim() == pytest.approx((0.0, 80.0))
    assert len(ax.get_images()) == 2
    assert len([p for p in ax.patches if p.get_hatch()]) == 2
    with pytest.raises(KeyError, match=r"ds.cloud.route\(\)"):
        plot_routing(xr.Dataset())


def test_plot_cloud_fraction_from_store_coords_and_from_mask():
    t = np.array(["2024-01-01", "2024-01-06", "2024-01-11"], "datetime64[ns]")
    store = xr.Dataset(
        {"cloud_mask": (("time", "y", "x"), np.zeros((3, 2, 2), "uint8"))},
        coords={
            "time": t,
            "cloud_fraction": ("time", [0.1, 0.5, np.nan]),
            "nodata_fraction": ("time", [0.0, 0.2, 1.0]),
        },
    )
    ax = plot_cloud_fraction(store)
    cloud, nodata = ax.get_lines()
    assert cloud.get_label() == "cloud (of valid pixels)" and nodata.get_label() == "nodata"
    assert cloud.get_ydata()[:2].tolist() == pytest.approx([10.0, 50.0])
    assert nodata.get_ydata().tolist() == pytest.approx([0.0, 20.0, 100.0])
    m = _mask([[[1, 2], [0, 255]], [[255, 255], [255, 255]]], time=t[:2])
    ax = m.cloud.plot_cloud_fraction()
    cloud, nodata = ax.get_lines()
    assert cloud.get_ydata()[0] == pytest.approx(200 / 3)
    assert np.isnan(cloud.get_ydata()[1])
    assert nodata.get_ydata().tolist() == pytest.approx([25.0, 100.0])
    with pytest.raises(DimensionError, match="time"):
        plot_cloud_fraction(_mask([[0]]))


def test_quicklook_scaling_is_the_masks_scaling():
    """plot_rgb reads a band as xcloud.mask does (scale_factor, add_offset, nodata), and still
    draws integer data that carries no scaling (a stretched quicklook does not need it)."""
    from xcloud.plot import _as_reflectance
    from xcloud.reflectance import band_reflectance

    dn = np.array([[0, 1000], [2000, 65535]], np.uint16)
    attrs = {"scale_factor": 1e-4, "add_offset": -0.1, "nodata": 65535}
    arr = xr.DataArray(dn, dims=("y", "x"), name="B04", attrs=attrs)
    want = np.asarray(
        band_reflectance(
            arr, var="B04", scale=None, offset=None, nodata=None, sensor=None, attrs={}
        )
    )
    got = _as_reflectance(arr)
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(got[0], [-0.1, 0.0], atol=1e-6)
    assert np.isnan(got[1, 1])
    raw = _as_reflectance(xr.DataArray(dn, dims=("y", "x"), name="B04"))  # no scaling known
    np.testing.assert_array_equal(raw, dn.astype(np.float32))


def test_quicklook_of_a_dataset_uses_the_sensor_mask_would_guess():
    """Integer DN with no scale attributes: mask() scales them by the guessed sensor's default
    (Sentinel-2 L2A here), and so does plot_rgb's reading (not the raw-DN fallback)."""
    from xcloud.plot import _as_reflectance, _rgb_bands
    from xcloud.reflectance import band_reflectance

    dn = np.full((4, 4), 1500, np.uint16)
    ds = xr.Dataset(
        {b: (("y", "x"), dn) for b in ("B02", "B03", "B04")},
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    )
    (red, _, _), sensor, attrs = _rgb_bands(ds, bands=None, sensor=None, wavelengths=None)
    assert sensor is not None
    want = band_reflectance(
        red, var="B04", scale=None, offset=None, nodata=None, sensor=sensor, attrs=attrs
    )
    got = _as_reflectance(red, sensor, attrs)
    np.testing.assert_allclose(got, np.asarray(want))
    assert float(got.max()) < 1.0  # reflectance, not digital numbers
