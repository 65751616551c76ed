"""Fine segmenter and coarse classifier: shapes, band counts, permutation invariance."""

import numpy as np
import pytest
import torch

from xcloud.models.coarse import CoarseNet
from xcloud.models.fine import FineNet
from xcloud.train.data import LANDSAT8, SENTINEL2

S2 = np.array(list(SENTINEL2.values()), dtype=np.float32)
L8 = np.array(list(LANDSAT8.values()), dtype=np.float32)
WL14 = np.concatenate([S2, L8[:1]])


@pytest.fixture(scope="module")
def fine():
    torch.manual_seed(0)
    return FineNet().eval()


@pytest.fixture(scope="module")
def coarse():
    torch.manual_seed(0)
    return CoarseNet().eval()


@pytest.mark.parametrize("n", [3, 4, 8, 13, 14])
def test_fine_accepts_3_to_14_bands(fine, n):
    with torch.inference_mode():
        y = fine(torch.rand(1, n, 64, 32), WL14[:n])
    assert y.shape == (1, 4, 64, 32)
    assert torch.isfinite(y).all()


def test_fine_is_band_permutation_invariant(fine):
    x = torch.rand(2, 7, 64, 64)
    perm = np.array([3, 0, 6, 1, 5, 2, 4])
    with torch.inference_mode():
        a = fine(x, L8[:7])
        b = fine(x[:, perm], L8[:7][perm])
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_fine_rejects_odd_tile_sizes(fine):
    with pytest.raises(ValueError, match="multiples of 32"):
        fine(torch.rand(1, 3, 48, 64), S2[:3])


def test_fine_full_resolution_work_is_small(fine):
    """Most parameters live at low resolution; the network stays under 1 M parameters."""
    assert sum(p.numel() for p in fine.parameters()) < 1_000_000


@pytest.mark.parametrize("n", [3, 7, 14])
def test_coarse_grid_geometry(coarse, n):
    with torch.inference_mode():
        y = coarse(torch.rand(2, n, 48, 32), WL14[:n])
    assert y.shape == (2, 4, 3, 2)


def test_coarse_is_band_permutation_invariant(coarse):
    x = torch.rand(1, 4, 32, 32)
    perm = np.array([2, 3, 0, 1])
    with torch.inference_mode():
        torch.testing.assert_close(
            coarse(x, S2[1:5]), coarse(x[:, perm], S2[1:5][perm]), rtol=1e-4, atol=1e-4
        )


def test_coarse_rejects_bad_overview(coarse):
    with pytest.raises(ValueError, match="multiples of 16"):
        coarse(torch.rand(1, 3, 24, 32), S2[:3])


def _spec(name, classes):
    from xcloud.models._spec import ModelSpec

    return ModelSpec(name=name, description="test", classes=classes, loader=lambda s, d: None)


def test_fine_predictor_returns_probabilities_any_tile_size(fine):
    from xcloud.models.builtin import FinePredictor

    pred = FinePredictor(_spec("f", ("clear", "cloud", "thin_cloud", "cloud_shadow")), fine, "cpu")
    x = np.random.default_rng(0).uniform(0, 0.5, (3, 4, 50, 70)).astype(np.float32)
    p = pred.predict(
        x, bands=("blue", "green", "red", "nir"), wavelengths=S2[[1, 2, 3, 7]], level="l2a"
    )
    assert p.shape == (3, 4, 50, 70) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_fine_predictor_rejects_mismatched_wavelengths(fine):
    from xcloud.models.builtin import FinePredictor

    pred = FinePredictor(_spec("f", ("clear", "cloud", "thin_cloud", "cloud_shadow")), fine, "cpu")
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        pred.predict(
            np.zeros((1, 4, 32, 32), np.float32), bands=("a",) * 4, wavelengths=S2[:3], level=None
        )


def test_coarse_predict_grid_geometry(coarse):
    from xcloud.models.builtin import CoarsePredictor

    pred = CoarsePredictor(
        _spec("c", ("cloudless", "overcast", "partly_cloudy", "nodata")), coarse, "cpu"
    )
    x = np.random.default_rng(0).uniform(0, 0.5, (2, 3, 40, 32)).astype(np.float32)
    grid = pred.predict_grid(x, bands=("blue", "green", "red"), wavelengths=S2[1:4], level=None)
    assert grid.shape == (2, 4, 3, 2)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0, rtol=1e-5)
    full = pred.predict(x, bands=("blue", "green", "red"), wavelengths=S2[1:4], level=None)
    assert full.shape == (2, 4, 40, 32)
    np.testing.assert_array_equal(full[:, :, 16, 0], grid[:, :, 1, 0])
