"""The array core: chunking independence, laziness, nodata, radiometry checks."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import S2_WL, TEST_MODEL, reflectance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xcloud.errors import RadiometryError, XCloudWarning
from xcloud.inference.core import MaskJob, run_mask
from xcloud.models import get_spec

BANDS = ("blue", "green", "red", "nir")
BOX = MaskJob(TEST_MODEL, BANDS, S2_WL, "l2a")
UKIS = MaskJob("ukis-csmask", BANDS, S2_WL, "l2a")


def _raise(*args, **kwargs):
    raise AssertionError("something was computed")


def _chunking(total: int, stride: int):
    """Strategy: chunk sizes along one axis, multiples of ``stride`` or arbitrary."""
    return st.one_of(
        st.integers(1, max(1, total // stride)).map(lambda k: k * stride),
        st.integers(stride, total),
    )


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    return reflectance((150, 170), seed=3)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_box_model_result_independent_of_chunking(cube, data):
    stride = get_spec(TEST_MODEL).stride
    cy1, cx1 = data.draw(_chunking(150, stride)), data.draw(_chunking(170, stride))
    cy2, cx2 = data.draw(_chunking(150, stride)), data.draw(_chunking(170, stride))
    ref = run_mask(cube, BOX)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XCloudWarning)
        a = run_mask(da.from_array(cube, chunks=(4, cy1, cx1)), BOX).compute()
        b = run_mask(da.from_array(cube, chunks=(4, cy2, cx2)), BOX).compute()
    assert (a == b).mean() >= 0.999
    assert (a == ref).mean() >= 0.999


@settings(max_examples=2, deadline=None)
@given(cy=st.sampled_from([100, 224]), cx=st.sampled_from([96, 224]))
def test_ukis_result_independent_of_chunking(cy, cx):
    x = reflectance((232, 236), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XCloudWarning)
        a = run_mask(da.from_array(x, chunks=(4, cy, cx)), UKIS).compute()
    b = run_mask(x, UKIS)
    assert a.shape == (232, 236)
    assert (a == b).mean() >= 0.999


def test_short_trailing_chunk_thinner_than_halo(cube):
    """150 = 3 * 48 + 6: the last chunk is thinner than the box model's 8 px halo."""
    d = run_mask(da.from_array(cube, chunks=(4, 48, 96)), BOX)
    assert d.chunks == ((48, 48, 48, 6), (96, 74))
    np.testing.assert_array_equal(d.compute(), run_mask(cube, BOX))


def test_numpy_equals_dask(cube):
    n = run_mask(cube, BOX)
    d = run_mask(da.from_array(cube, chunks=(4, 48, 96)), BOX)
    assert isinstance(n, np.ndarray) and isinstance(d, da.Array)
    np.testing.assert_array_equal(n, d.compute())
    assert len(np.unique(n)) >= 3  # the comparison is not trivially between constant masks


def test_large_numpy_input_runs_in_blocks_with_the_same_result(cube, monkeypatch):
    import xcloud.inference.core as core

    whole = run_mask(cube, BOX)
    calls = []
    real = core.predict_tiles
    monkeypatch.setattr(core, "predict_tiles", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(core, "_NUMPY_BLOCK", get_spec(TEST_MODEL).stride)
    blocked = run_mask(cube, BOX)
    assert isinstance(blocked, np.ndarray) and len(calls) > 1  # it was split
    np.testing.assert_array_equal(blocked, whole)
    p_whole = run_mask(cube, BOX, probabilities=True)
    monkeypatch.setattr(core, "_NUMPY_BLOCK", 10**6)
    np.testing.assert_array_equal(run_mask(cube, BOX, probabilities=True), p_whole)


def test_dask_output_keeps_input_chunks(cube):
    x = da.from_array(cube, chunks=(4, 48, 96))
    with dask.config.set(scheduler=_raise):
        m = run_mask(x, BOX)
        p = run_mask(x, BOX, probabilities=True)
    assert m.chunks == ((48, 48, 48, 6), (96, 74))
    assert m.dtype == np.uint8
    assert p.dtype == np.float16 and p.chunks == ((4,), (48, 48, 48, 6), (96, 74))


def test_probabilities_sum_to_one_and_match_labels(cube):
    p = run_mask(cube, BOX, probabilities=True).astype(np.float32)
    m = run_mask(cube, BOX)
    assert p.shape == (4, 150, 170)
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=5e-3)
    codes = np.array([0, 1, 2, 3], np.uint8)  # the box model's classes are in code order
    assert (codes[p.argmax(axis=0)] == m).mean() > 0.99


def test_leading_dims_are_mapped_over():
    x = reflectance((2, 3, 64, 80), seed=5)  # (band, t, z, y, x)
    x = np.moveaxis(x, 0, 2)  # (t, z, band, y, x)
    m = run_mask(da.from_array(x, chunks=(1, 2, 4, 32, 40)), BOX).compute()
    assert m.shape == (2, 3, 64, 80)
    for t in range(2):
        for z in range(3):
            np.testing.assert_array_equal(m[t, z], run_mask(x[t, z], BOX))


def test_nan_pixels_become_255_and_all_nan_chunks_do_not_fail(cube):
    x = cube.copy()
    x[:, :48, :] = np.nan  # a whole row of chunks
    x[2, 100, 100] = np.nan  # one band missing at one pixel
    m = run_mask(da.from_array(x, chunks=(4, 48, 48)), BOX).compute()
    assert (m[:48] == 255).all()
    assert m[100, 100] == 255
    assert (m[48:] != 255).sum() == (150 - 48) * 170 - 1


def test_all_nan_input():
    x = np.full((4, 70, 70), np.nan, np.float32)
    m = run_mask(da.from_array(x, chunks=(4, 32, 32)), UKIS).compute()
    assert (m == 255).all()
    p = run_mask(x, UKIS, probabilities=True)
    assert np.isnan(p.astype(np.float32)).all()


def test_nodata_does_not_leak_into_neighbours(cube):
    """Pixels next to nodata get the same class as when their neighbours were valid."""
    x = cube.copy()
    ref = run_mask(x, BOX)
    x[:, 60:80, 60:80] = np.nan
    m = run_mask(x, BOX)
    outside = np.ones(m.shape, bool)
    outside[55:85, 55:85] = False  # the box model's own 3x3 neighbourhood may change
    np.testing.assert_array_equal(m[outside], ref[outside])


def test_unscaled_dn_raises_at_compute_not_at_build(cube):
    dn = da.from_array(cube * 10_000, chunks=(4, 64, 64))
    m = run_mask(dn, BOX)  # building the graph is fine
    with pytest.raises(RadiometryError, match=r"scale=") as e:
        m.compute()
    assert "unscaled digital numbers" in str(e.value)
    assert "'blue'" in str(e.value)


def test_small_chunks_warn_and_still_give_the_same_result(cube):
    stride = get_spec(TEST_MODEL).stride
    with pytest.warns(XCloudWarning, match=str(stride)):
        m = run_mask(da.from_array(cube, chunks=(4, 20, 20)), BOX)
    np.testing.assert_array_equal(m.compute(), run_mask(cube, BOX))
    assert m.chunks == ((20,) * 7 + (10,), (20,) * 8 + (10,))


def test_aligned_chunks_do_not_warn(cube):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", XCloudWarning)
        run_mask(da.from_array(cube, chunks=(4, 48, 96)), BOX)


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(\.\.\., band, y, x\)"):
        run_mask(np.zeros((8, 8), np.float32), BOX)


def test_job_tokenizes_deterministically():
    from dask.base import tokenize

    assert tokenize(BOX) == tokenize(MaskJob(TEST_MODEL, BANDS, S2_WL, "l2a"))
    assert tokenize(BOX) != tokenize(MaskJob(TEST_MODEL, BANDS, S2_WL, "l1c"))
