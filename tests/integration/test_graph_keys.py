"""Dask graph keys: two masks in one computation never share keys.

``map_blocks(name=...)`` takes the name as the whole key name, so every name xcloud gives its
blocks carries a token of what they depend on (input, model, settings).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import S2_BANDS, mirrored_chip

import xcloud  # noqa: F401


@pytest.fixture(scope="module")
def chip(oncloudn_chip) -> xr.Dataset:
    """The real 256 px On Cloud N chip as reflectance, chunks of 128 px."""
    return mirrored_chip(oncloudn_chip, 0, 128)


@pytest.mark.parametrize("model", ["fine", "cascade"])
def test_masks_computed_together_keep_their_own_results(chip, model):
    """Two masks in one dask computation (``dask.compute``, a Dataset of both, ...) each get
    their own data. The graph's keys once carried only the model's name, so the second cube
    silently came back with the first cube's mask."""
    import dask

    dark = chip.copy(deep=True)
    for b in S2_BANDS:
        dark[b] = dark[b] * 0 + np.float32(0.03)
    a = chip.cloud.mask(model, device="cpu")
    b = dark.cloud.mask(model, device="cpu")
    alone = a.values, b.values
    assert not np.array_equal(*alone)
    together = dask.compute(a, b)
    np.testing.assert_array_equal(together[0].values, alone[0])
    np.testing.assert_array_equal(together[1].values, alone[1])


def test_the_overview_and_coarse_pass_are_named_by_their_input(chip):
    import dask.array as da

    from xcloud.inference.cascade import compute_overview

    x = da.stack([chip[b].data for b in S2_BANDS]).rechunk({0: -1})
    a, b = compute_overview(x, 4), compute_overview(x * 0.5, 4)
    assert a.name != b.name
    np.testing.assert_allclose(a.compute()[:-1] * 0.5, b.compute()[:-1], rtol=1e-6)
