"""The cascade's fine stage: the default segments with the most accurate model that can run on
the data (ukis-csmask where blue, green, red and nir are there), falls back to xcloud's own
``fine`` with a warning, and ``fine=`` picks any registered mask model."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xcloud.errors import ParameterError, UnknownModelError, XCloudWarning


@pytest.fixture
def s2(oncloudn_chip):
    return oncloudn_chip.chunk({"y": 256, "x": 256})


def test_the_default_segments_with_ukis_csmask(s2):
    m = s2.cloud.mask()
    assert m.attrs["xcloud_model"] == "cascade"
    assert m.attrs["xcloud_fine_stage"] == "ukis-csmask"
    assert "ukis-csmask=ukis-csmask " in m.attrs["xcloud_model_weights_sha256"]
    assert "coarse=" in m.attrs["xcloud_model_weights_sha256"]
    np.testing.assert_array_equal(m.values, s2.cloud.mask("ukis-csmask").values)


def test_without_nir_the_cascade_falls_back_to_fine_and_says_why(s2):
    rgb = s2[["B02", "B03", "B04"]]
    with pytest.warns(XCloudWarning, match=r"segments with 'fine'.*'ukis-csmask' cannot run.*nir"):
        m = rgb.cloud.mask()
    assert m.attrs["xcloud_fine_stage"] == "fine"
    np.testing.assert_array_equal(m.values, rgb.cloud.mask("cascade", fine="fine").values)


def test_fine_picks_the_stage(s2):
    m = s2.cloud.mask("cascade", fine="fine", routing=False)
    np.testing.assert_array_equal(m.values, s2.cloud.mask("fine").values)
    assert m.attrs["xcloud_fine_stage"] == "fine"
    p = s2.cloud.mask("cascade", fine="ukis-csmask", probabilities=True)
    assert list(p["class"].values) == ["clear", "cloud", "cloud_shadow"]


@pytest.mark.parametrize(
    ("kwargs", "error", "expected"),
    [
        ({"fine": "cascade"}, ParameterError, r"fine='cascade' is itself a cascade"),
        ({"fine": 3}, ParameterError, r"fine=3: expected the registry name of a mask model"),
        ({"fine": "ukis"}, None, None),  # an alias is a name too
        ({"fine": "fien"}, UnknownModelError, r"unknown model 'fien'.*Did you mean 'fine'"),
        ({"model": "fine", "fine": "fine"}, ParameterError, r"fine= only apply to a cascade"),
        ({"fine": "ukis-csmask", "precision": "bf16"}, ParameterError, r"fine='fine'"),
    ],
)
def test_bad_fine_stages_name_the_fix(s2, kwargs, error, expected):
    model = kwargs.pop("model", "cascade")
    if error is None:
        assert s2.cloud.mask(model, **kwargs).attrs["xcloud_fine_stage"] == "ukis-csmask"
        return
    with pytest.raises(error, match=expected):
        s2.cloud.mask(model, **kwargs)


def test_the_store_records_the_stage(s2, tmp_path):
    import xcloud

    ds = s2.expand_dims(time=[np.datetime64("2020-01-01", "ns")])
    out = xcloud.mask_to_zarr(ds, tmp_path / "m.zarr", progress=False)
    assert xr.open_zarr(tmp_path / "m.zarr").attrs["xcloud_fine_stage"] == "ukis-csmask"
    assert out.attrs["xcloud_complete"] == 1


def test_thresholds_trade_recall_for_precision(s2):
    """A class is called exactly where its probability reaches the threshold: a lower one
    finds a superset of the pixels; no thresholds is the arg-max, bit for bit."""
    import dask

    base = s2.cloud.mask("fine")
    low = s2.cloud.mask("fine", thresholds={"cloud": 0.2})
    high = s2.cloud.mask("fine", thresholds={"cloud": 0.8})
    base, low, high = dask.compute(base, low, high)  # computed together: keys must differ
    lo, hi = low.values == 1, high.values == 1
    assert (lo | ~hi).all() and lo.sum() > (base.values == 1).sum() > hi.sum()
    p = s2.cloud.mask("fine", probabilities=True).sel({"class": "cloud"}).values.astype(np.float32)
    near = np.abs(p - 0.2) < 2e-3  # float16 probabilities vs the float32 the labels use
    np.testing.assert_array_equal(lo[~near], (p >= 0.2)[~near])
    np.testing.assert_array_equal(
        s2.cloud.mask("fine", thresholds=None).values, s2.cloud.mask("fine").values
    )


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [
        ({"clouds": 0.3}, r"class 'clouds' is not one that 'ukis-csmask' outputs.*'cloud'"),
        ({"thin_cloud": 0.3}, r"'thin_cloud' is not one that 'ukis-csmask' outputs"),
        ({"cloud": 1.5}, r"thresholds\['cloud'\]=1\.5: expected a probability in \(0, 1\]"),
        ({}, r"thresholds=\{\}: expected a dict of class name -> probability"),
    ],
)
def test_bad_thresholds_name_the_fix(s2, thresholds, expected):
    with pytest.raises(ParameterError, match=expected):
        s2.cloud.mask(thresholds=thresholds)
    with pytest.raises(ParameterError, match="probabilities=True returns the probabilities"):
        s2.cloud.mask("fine", thresholds={"cloud": 0.3}, probabilities=True)
