"""Bad input to ``xcloud.mask``: each error names the bad value, the expectation and the fix."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
from conftest import TEST_MODEL, make_dataset

import xcloud
from xcloud.errors import (
    DataTypeError,
    DimensionError,
    MissingBandsError,
    ModelUnavailableError,
    RadiometryError,
    UnknownModelError,
    UnknownSensorError,
    XCloudError,
    XCloudWarning,
)


def test_missing_bands_lists_needs_has_and_fix():
    ds = make_dataset(32, 32).drop_vars("B08")
    with pytest.raises(MissingBandsError) as e:
        xcloud.mask(ds, "ukis-csmask")
    msg = str(e.value)
    assert "'nir'" in msg  # what is missing
    assert "['blue', 'green', 'red', 'nir']" in msg  # what the model needs
    assert "['B02', 'B03', 'B04']" in msg  # what the dataset has
    assert "bands=" in msg  # the fix
    assert isinstance(e.value, KeyError)


def test_missing_band_with_one_unrecognised_variable_suggests_it():
    ds = make_dataset(32, 32).rename({"B08": "infrared"})
    with pytest.raises(MissingBandsError, match=r"bands=\{'nir': 'infrared'\}"):
        xcloud.mask(ds, "ukis-csmask")
    # and the suggested fix works
    m = xcloud.mask(ds, "ukis-csmask", bands={"nir": "infrared"})
    assert m.shape == (32, 32)


@pytest.mark.parametrize(("name", "hint"), [("ukis", "ukis-csmask"), ("s2cloudles", "s2cloudless")])
def test_unknown_or_aliased_model(name, hint):
    ds = make_dataset(32, 32)
    if name == "ukis":  # a registered alias: works
        assert xcloud.mask(ds, name).attrs["xcloud_model"] == hint
        return
    with pytest.raises(UnknownModelError) as e:
        xcloud.mask(ds, name)
    assert repr(name) in str(e.value) and f"Did you mean {hint!r}" in str(e.value)


def test_unknown_model_suggests_prefix_match():
    with pytest.raises(UnknownModelError, match=r"ukis-csmask"):
        xcloud.mask(make_dataset(32, 32), "ukis-cs")


def test_unknown_sensor():
    with pytest.raises(UnknownSensorError) as e:
        xcloud.mask(make_dataset(32, 32), "ukis-csmask", sensor="sentinel-2-l3x")
    msg = str(e.value)
    assert "'sentinel-2-l3x'" in msg and "sentinel-2-l2a" in msg and "Did you mean" in msg


def test_wrong_dims():
    ds = make_dataset(32, 32).rename({"y": "rows", "x": "cols"})
    with pytest.raises(DimensionError) as e:
        xcloud.mask(ds, "ukis-csmask")
    msg = str(e.value)
    assert "'rows'" in msg and "(y, x)" in msg and "rename" in msg


def test_non_numeric_dtype():
    ds = make_dataset(32, 32)
    ds["B03"] = ds["B03"].astype(str)
    with pytest.raises(DataTypeError) as e:
        xcloud.mask(ds, "ukis-csmask")
    msg = str(e.value)
    assert "'B03'" in msg and "<U" in msg and "astype('float32')" in msg


def test_dataarray_without_band_dim():
    arr = make_dataset(32, 32)["B02"]
    with pytest.raises(DimensionError) as e:
        xcloud.mask(arr, "ukis-csmask")
    msg = str(e.value)
    assert "('y', 'x')" in msg and "band" in msg and "Dataset" in msg


def test_dataarray_band_dim_without_coordinate():
    arr = make_dataset(32, 32).to_dataarray("band").drop_vars("band")
    with pytest.raises(DimensionError, match=r"assign_coords\(band="):
        xcloud.mask(arr, "ukis-csmask")


def test_integer_dn_without_scale():
    names = ("blue", "green", "red", "nir")
    ds = (make_dataset(32, 32, names=names) * 10_000).astype("uint16")
    ds.attrs = {}  # nothing says which sensor it is
    with pytest.raises(RadiometryError) as e:
        xcloud.mask(ds, "ukis-csmask", level="l2a")
    msg = str(e.value)
    assert "uint16" in msg and "scale=1e-4" in msg and "scale_factor" in msg


def test_integer_dn_with_scale_works():
    ds = (make_dataset(32, 32) * 10_000).astype("uint16")
    ds.attrs = {}
    ref = xcloud.mask(make_dataset(32, 32), TEST_MODEL, level="l2a")
    m = xcloud.mask(ds, TEST_MODEL, level="l2a", scale=1e-4, offset=0.0)
    assert (m.values == ref.values).mean() > 0.99


def test_unscaled_float_dn_raises_at_compute():
    ds = make_dataset(64, 64, chunks={"y": 64, "x": 64}) * 10_000
    ds.attrs = {"platform": "sentinel-2a", "processing:level": "L2A"}
    m = xcloud.mask(ds, "ukis-csmask")  # lazy: nothing is checked yet
    with pytest.raises(RadiometryError) as e:
        m.compute()
    msg = str(e.value)
    assert "unscaled digital numbers" in msg and "scale=1e-4" in msg and "99th percentile" in msg


def test_chunks_smaller_than_tile_stride_warn():
    ds = make_dataset(96, 96, chunks={"y": 32, "x": 32})
    with pytest.warns(XCloudWarning) as rec:
        m = xcloud.mask(ds, TEST_MODEL)
    msg = str(rec[0].message)
    assert "32 px" in msg and "48" in msg and "rechunking" in msg
    assert rec[0].filename == __file__  # points at the user's call, not at xcloud internals
    np.testing.assert_array_equal(m.values, xcloud.mask(make_dataset(96, 96), TEST_MODEL).values)
    with pytest.warns(XCloudWarning) as rec:
        ds.cloud.mask(TEST_MODEL)  # through the accessor: one frame deeper, the same line
    assert rec[0].filename == __file__


def test_cascade_without_its_weights(monkeypatch):
    """An install without the router's weights registers no cascade: the default model is then
    unknown, and the error lists the models there are."""
    from xcloud.models import _registry

    monkeypatch.setattr(
        _registry, "_REGISTRY", {k: v for k, v in _registry._REGISTRY.items() if k != "cascade"}
    )
    with pytest.raises(UnknownModelError) as e:
        xcloud.mask(make_dataset(32, 32))  # the default model
    msg = str(e.value)
    assert "'cascade'" in msg and "ukis-csmask" in msg and "fine" in msg


def test_s2cloudless_refuses_l2a():
    names = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
    ds = make_dataset(32, 32, names=names, attrs={"processing:level": "L1C"})
    with pytest.raises(ModelUnavailableError) as e:
        xcloud.mask(ds, "s2cloudless", level="L2A")
    msg = str(e.value)
    assert "'s2cloudless'" in msg and "['l1c']" in msg and "'l2a'" in msg and "level=" in msg


def test_bad_device_is_refused():
    with dask.config.set(scheduler="sync"):
        with pytest.raises(XCloudError, match=r"device='tpu'.*'cuda'"):
            xcloud.mask(make_dataset(32, 32), TEST_MODEL, device="tpu").compute()


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_device_this_machine_cannot_use_is_refused_with_the_fix(device):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has mps")
    ds = make_dataset(32, 32).chunk()
    lazy = xcloud.mask(ds, TEST_MODEL, device=device)  # builds: the workers may have the GPU
    with pytest.raises(XCloudError) as e:
        lazy.compute(scheduler="sync")
    msg = str(e.value)
    assert f"device={device!r}" in msg and "device='auto'" in msg and "device='cpu'" in msg
    for model in ("fine", "cascade"):
        with pytest.raises(XCloudError, match=f"device={device!r}"):
            xcloud.mask(ds, model, device=device, level="l2a").compute(scheduler="sync")


def test_cuda_device_index_must_be_a_number():
    with pytest.raises(XCloudError, match=r"device='cuda:x' is not 'cuda' or 'cuda:N'"):
        xcloud.mask(make_dataset(32, 32), TEST_MODEL, device="cuda:x").compute(scheduler="sync")


def test_not_xarray():
    with pytest.raises(DataTypeError, match="ndarray"):
        xcloud.mask(np.zeros((4, 8, 8)), TEST_MODEL)


def test_bands_on_different_grids():
    ds = make_dataset(32, 32)
    ds["B08"] = ds["B08"].expand_dims(time=[np.datetime64("2024-01-01")])
    with pytest.raises(DimensionError, match="share dims"):
        xcloud.mask(ds, TEST_MODEL)


def test_errors_are_builtin_subclasses():
    assert issubclass(MissingBandsError, KeyError) and issubclass(RadiometryError, ValueError)
    assert issubclass(DimensionError, ValueError) and issubclass(DataTypeError, TypeError)
    assert issubclass(XCloudWarning, UserWarning)
    assert xr.Dataset is not None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"scale": 0}, r"scale=0: expected a finite number > 0"),
        ({"scale": -1e-4}, r"scale=-0\.0001: expected a finite number > 0"),
        ({"scale": float("inf")}, r"scale=inf: expected a finite number > 0"),
        ({"scale": "1e-4"}, r"scale='1e-4': expected a finite number > 0.*scale=1e-4"),
        ({"scale": {"B04": 0.0}}, r"scale\['B04'\]=0\.0: expected a finite number > 0"),
        ({"scale": {"B4": 1e-4}}, r"names \['B4'\], which the data does not have.*'B04'"),
        ({"offset": float("nan")}, r"offset=nan: expected a finite number"),
        ({"nodata": "none"}, r"nodata='none': expected a number \(NaN allowed\)"),
        ({"batch_size": 0}, r"batch_size=0: expected a whole number >= 1"),
        ({"batch_size": 2.5}, r"batch_size=2\.5: expected a whole number >= 1"),
        ({"probabilities": "yes"}, r"probabilities='yes': expected True or False"),
        ({"level": "L3"}, r"level='L3': expected 'l1c' .* or 'l2a'"),
        ({"level": 2}, r"level=2: expected 'l1c'"),
    ],
)
def test_bad_keyword_values_name_value_range_and_fix(kwargs, expected):
    """Before these checks, scale=0 / -1e-4, batch_size=0, probabilities='yes' and nodata='none'
    ran without a word (a mask of nonsense or a silent default) and the others failed deep
    inside with bare TypeError / ValueError / AttributeError."""
    from xcloud.errors import ParameterError

    ds = make_dataset(32, 32)
    with pytest.raises(ParameterError, match=expected) as e:
        xcloud.mask(ds, TEST_MODEL, **kwargs)
    assert isinstance(e.value, (XCloudError, ValueError))


def test_good_keyword_values_still_work():
    ds = make_dataset(32, 32)
    base = xcloud.mask(ds, TEST_MODEL).values
    same = xcloud.mask(ds, TEST_MODEL, nodata=float("nan"), batch_size=np.int64(2),
                       probabilities=np.bool_(False), level="L2A").values  # fmt: skip
    assert (same == base).all()
    dn = ds.map(lambda v: (v * 10000).astype("uint16"))
    per_var = {v: 1e-4 for v in ds.data_vars}
    assert (xcloud.mask(dn, TEST_MODEL, scale=per_var, offset=0) == xcloud.mask(
        dn, TEST_MODEL, scale=1e-4, offset=0.0)).all()  # fmt: skip


def test_duplicate_band_coordinates_are_refused():
    """[B02, B02, B04, B08] used to drop a band and feed green as blue."""
    import numpy as np
    import xarray as xr

    from xcloud.errors import DimensionError

    arr = xr.DataArray(
        np.full((4, 32, 32), 0.1, "float32"),
        dims=("band", "y", "x"),
        coords={"band": ["B02", "B02", "B04", "B08"]},
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    )
    with pytest.raises(DimensionError, match=r"names \['B02'\] more than once.*drop_duplicates"):
        arr.cloud.mask("fine")


def test_reflectance_scaled_twice_is_refused_naming_the_attribute():
    """A float copy that kept its scale_factor was scaled again and masked 100 % clear."""
    from xcloud.data import open_sample
    from xcloud.errors import RadiometryError

    twice = open_sample().astype("float32") * 1e-4  # keeps scale_factor = 1e-4
    with pytest.raises(RadiometryError, match=r"implausibly dark.*B02 x 0.0001.*scale_factor"):
        twice.cloud.mask("fine").compute()
    once = twice.copy()
    for v in once.data_vars.values():
        v.attrs.pop("scale_factor")
    assert (once.cloud.mask("fine").values != 0).any()


def test_infinite_values_warn_and_far_negative_values_are_refused(s2_dataset):
    import numpy as np

    from xcloud.errors import RadiometryError, XCloudWarning

    inf = s2_dataset.copy(deep=True)
    inf["B02"][0:4, 0:4] = np.inf
    with pytest.warns(XCloudWarning, match=r"16 pixels have infinite values.*nodata"):
        m = inf.cloud.mask("fine")
    assert (m.values[0:4, 0:4] == 255).all()
    neg = s2_dataset.copy(deep=True)
    neg["B04"][:] = -0.5
    with pytest.raises(RadiometryError, match=r"below -0.2 .*offset"):
        neg.cloud.mask("fine")


def test_bad_arguments_are_value_errors_too(s2_dataset, tmp_path):
    """``except ValueError`` used to miss device='gpu' and other bare XCloudErrors."""
    from pathlib import Path

    import xcloud
    from xcloud.io.stac import open_stac

    m = s2_dataset.cloud.mask("fine")
    for call in (
        lambda: s2_dataset.cloud.mask("fine", device="gpu"),
        lambda: xcloud.to_zarr(m, tmp_path / "m.zarr", mode="x"),
        lambda: open_stac("http://127.0.0.1:9", "c", on_missing="ignore"),
        lambda: open_stac("http://127.0.0.1:9", "c", allow_local="yes"),
    ):
        with pytest.raises(ValueError) as e:
            call()
        assert isinstance(e.value, xcloud.XCloudError)
    src = Path(__file__).parents[2] / "xcloud"
    bare = [
        f"{p.name}:{i}"
        for p in src.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "raise XCloudError(" in line and "internal:" not in line
    ]
    assert not bare, f"raise a subclass that is also a builtin error: {bare}"
