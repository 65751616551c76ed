"""SEnSeI: band-permutation invariance, any band count, cached band weights."""

import numpy as np
import pytest
import torch

from xcloud.bands import get_sensor
from xcloud.models.sensei import SEnSeI, normalise_wavelengths

#: 14 bands: Sentinel-2's 13 and Landsat 8's swir22, from xcloud.bands.
S2 = np.array(
    get_sensor("sentinel-2a-l1c").descriptors([b.name for b in get_sensor("sentinel-2a-l1c").bands])
    + get_sensor("landsat-8-l1").descriptors(["swir22"]),
    dtype=np.float32,
)


@pytest.fixture(scope="module")
def enc():
    torch.manual_seed(0)
    return SEnSeI(out_channels=8).eval()


def test_normalisation_matches_paper():
    got = normalise_wavelengths(np.array([2300.0, 400.0, 1300.0]))
    np.testing.assert_allclose(got.numpy(), np.log10([2000.0, 100.0, 1000.0]) - 2, rtol=1e-6)


@pytest.mark.parametrize("n", [3, 4, 7, 14])
def test_permuting_bands_leaves_output_unchanged(enc, n):
    rng = np.random.default_rng(n)
    idx = rng.choice(len(S2), n, replace=False)
    x = torch.rand(2, n, 8, 8, generator=torch.Generator().manual_seed(n))
    perm = torch.from_numpy(rng.permutation(n))
    with torch.no_grad():
        a = enc(x, S2[idx])
        b = enc(x[:, perm], S2[idx][perm.numpy()])
    assert a.shape == (2, 8, 8, 8)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_output_depends_on_which_bands(enc):
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        a = enc(x, S2[[1, 2, 3]])
        b = enc(x, S2[[1, 2, 7]])
    assert not torch.allclose(a, b)


def test_band_multiplication_is_mean_of_band_vectors_times_reflectance(enc):
    """The einsum fast path equals the paper's per-band loop."""
    x = torch.rand(1, 5, 3, 3)
    wl = S2[[0, 3, 7, 11, 12]]
    with torch.no_grad():
        v = enc.band_vectors(wl)  # (C, F)
        slow = sum(v[c][None, :, None, None] * (x[:, c : c + 1] + 0.5) for c in range(5)) / 5
        fast = enc(x, wl)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_band_weights_are_cached_in_inference_mode(enc):
    enc.clear_cache()
    with torch.inference_mode():
        w1 = enc.band_weights(S2[:4])
        w2 = enc.band_weights(S2[:4])
    assert w1[0] is w2[0]
    enc.train()
    assert not enc._cache
    enc.eval()


def test_wrong_wavelength_count_is_an_error(enc):
    with pytest.raises(ValueError, match="4 bands but 3"):
        enc(torch.rand(1, 4, 4, 4), S2[:3])


def test_gradients_reach_descriptor_network():
    enc = SEnSeI(out_channels=4)
    enc(torch.rand(2, 3, 4, 4), S2[:3]).sum().backward()
    assert enc.descriptor.net[0].weight.grad.abs().sum() > 0
