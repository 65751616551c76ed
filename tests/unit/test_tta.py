"""Test-time augmentation: each tile's probabilities are the mean over its dihedral views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import S2_WL, TEST_MODEL, BoxPredictor, count_calls, make_dataset

import xcloud
from xcloud.errors import ParameterError
from xcloud.inference import core
from xcloud.inference.core import TTA_VIEWS, MaskJob


@pytest.mark.parametrize("k, flip", TTA_VIEWS)
def test_each_view_turns_back(k, flip):
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5)
    seen = core._view(x, k, flip)
    assert (k, flip) == (0, False) or not np.array_equal(seen, x)
    np.testing.assert_array_equal(core._view(seen, k, flip, inverse=True), x)
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(core._view(t, k, flip).numpy(), seen)
    np.testing.assert_array_equal(core._view(core._view(t, k, flip), k, flip, inverse=True), t)
    assert len(set(TTA_VIEWS)) == 8


def _lopsided(self, x, **kw):
    """Cloud grows from left to right and from top to bottom: no view sees the same."""
    n, _, h, w = x.shape
    ramp = np.add.outer(np.arange(h), 2 * np.arange(w)).astype(np.float32) / (h + 2 * w)
    cloud = np.broadcast_to(ramp, (n, h, w)) * x[:, 0]
    p = np.stack([1 - cloud, cloud, 0 * cloud, 0 * cloud], axis=1)
    return p.astype(np.float32)


@pytest.mark.parametrize("tta", [4, 8])
def test_probabilities_are_the_mean_over_the_views(tta, monkeypatch):
    monkeypatch.setattr(BoxPredictor, "predict", _lopsided)
    calls = count_calls(monkeypatch, BoxPredictor, "predict")
    tiles = np.random.default_rng(0).uniform(0, 1, (3, 4, 64, 64)).astype(np.float32)
    job = MaskJob(TEST_MODEL, ("blue", "green", "red", "nir"), S2_WL, "l2a", device="cpu", tta=tta)
    got = core._run_model(job, tiles, "cpu")
    box = BoxPredictor(None, "cpu")
    views = [core._view(_lopsided(box, core._view(tiles, k, f).copy()), k, f, inverse=True)
             for k, f in TTA_VIEWS[:tta]]  # fmt: skip
    np.testing.assert_allclose(got, np.mean(views, axis=0), rtol=1e-6)
    assert not np.allclose(got, _lopsided(box, tiles))
    assert len(calls) == tta


def test_tta_is_chunk_invariant_and_recorded():
    ds = make_dataset(150, 130)
    a = xcloud.mask(ds.chunk({"y": 64, "x": 64}), TEST_MODEL, tta=4)
    b = xcloud.mask(ds.chunk({"y": 128, "x": 192}), TEST_MODEL, tta=4)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.attrs["xcloud_tta"] == 4
    assert "xcloud_tta" not in xcloud.mask(ds, TEST_MODEL).attrs


@pytest.mark.parametrize("bad", [0, 2, 3, 16, True, "4", 4.5])
def test_bad_tta_names_the_choices(bad):
    with pytest.raises(ParameterError, match=r"tta=.*\[1, 4, 8\]"):
        xcloud.mask(make_dataset(64, 64), TEST_MODEL, tta=bad)
