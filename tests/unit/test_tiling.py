"""The global tile grid: blending ramps and stride-aligned chunks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcloud.inference.tiling import aligned_chunks, ramp, tile_range, window


@pytest.mark.parametrize(("tile", "overlap"), [(8, 4), (64, 16), (256, 32), (512, 32), (10, 2)])
def test_ramp_is_partition_of_unity_over_overlaps(tile, overlap):
    stride = tile - overlap
    n_tiles = 6
    total = np.zeros(stride * n_tiles + overlap, np.float64)
    for k in range(n_tiles):
        total[k * stride : k * stride + tile] += ramp(tile, overlap)
    interior = total[overlap : stride * (n_tiles - 1)]
    np.testing.assert_allclose(interior, 1.0, rtol=0, atol=1e-6)


def test_ramp_shape_and_range():
    r = ramp(64, 16)
    assert r.dtype == np.float32 and r.shape == (64,)
    assert (r > 0).all() and (r <= 1).all()
    np.testing.assert_array_equal(r, r[::-1])
    np.testing.assert_array_equal(r[16:48], 1.0)
    assert (np.diff(r[:16]) > 0).all()


def test_ramp_without_overlap_is_flat():
    np.testing.assert_array_equal(ramp(16, 0), np.ones(16, np.float32))


def test_window_is_outer_product_and_2d_partition_of_unity():
    tile, overlap = 32, 8
    stride = tile - overlap
    w = window(tile, overlap)
    np.testing.assert_array_equal(w, np.outer(ramp(tile, overlap), ramp(tile, overlap)))
    total = np.zeros((stride * 4 + overlap,) * 2)
    for ky in range(4):
        for kx in range(4):
            total[ky * stride : ky * stride + tile, kx * stride : kx * stride + tile] += w
    np.testing.assert_allclose(total[overlap : 3 * stride, overlap : 3 * stride], 1.0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    stride=st.integers(1, 300),
    chunks=st.lists(st.integers(1, 2000), min_size=1, max_size=8).map(tuple),
)
def test_aligned_chunks_properties(stride, chunks):
    out = aligned_chunks(chunks, stride)
    assert sum(out) == sum(chunks)
    assert all(c > 0 for c in out)
    assert all(c % stride == 0 for c in out[:-1])
    if all(c % stride == 0 for c in chunks[:-1]):
        assert out == chunks  # already aligned: unchanged, no rechunk


def test_aligned_chunks_examples():
    assert aligned_chunks((1024, 1024, 512), 256) == (1024, 1024, 512)
    assert aligned_chunks((1000, 1000, 48), 224) == (896, 896, 256)
    assert aligned_chunks((100, 100, 100), 224) == (224, 76)
    assert aligned_chunks((300,), 224) == (300,)


@pytest.mark.parametrize(
    ("start", "stop", "stride", "expected"),
    [(0, 224, 224, range(0, 1)), (224, 448, 224, range(1, 2)), (0, 300, 224, range(0, 2))],
)
def test_tile_range(start, stop, stride, expected):
    assert tile_range(start, stop, stride) == expected
