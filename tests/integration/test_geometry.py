"""Masks do not depend on which way the y and x axes run, and scenes too small for a model are
refused with a clear error instead of crashing inside dask or coming back clear."""

from __future__ import annotations

import numpy as np
import pytest

from xcloud.errors import DimensionError


@pytest.fixture
def chip(oncloudn_chip):
    return oncloudn_chip.chunk({"y": 128, "x": 128})


@pytest.mark.parametrize("model", ["fine", "ukis-csmask"])  # (the default cascade is ukis here)
def test_the_mask_does_not_depend_on_axis_order(chip, model):
    north_up = chip.cloud.mask(model)
    flipped = chip.isel(y=slice(None, None, -1), x=slice(None, None, -1))
    m = flipped.cloud.mask(model)
    np.testing.assert_array_equal(m["y"].values, flipped["y"].values)  # the input's order
    np.testing.assert_array_equal(m.values, north_up.values[::-1, ::-1])
    np.testing.assert_array_equal(
        m.sortby("y", ascending=False).sortby("x").values, north_up.values
    )


@pytest.mark.parametrize("model", ["fine", "ukis-csmask", "cascade"])
@pytest.mark.parametrize("size", [(1, 1), (16, 300), (300, 5)])
def test_scenes_too_small_are_refused(chip, model, size):
    small = chip.isel(y=slice(0, size[0]), x=slice(0, size[1]))
    with pytest.raises(DimensionError, match=r"px .* at least 32 x 32 px.*larger window"):
        small.cloud.mask(model)
