"""Stage A's tensor path (``xcloud.inference.core._blend_on_device``): on a GPU the tiles are cut,
filled, run and blended on the device, and only the expanded block comes back.

There is no GPU here, so the path is switched on for the CPU (``_on_device``) and checked
against the numpy path with the real ``fine`` model on a real On Cloud N chip: the same
operations in the same order give the same probabilities bit for bit; only the nodata fill
means (a different reduction order) may differ in the last bits. ``benchmarks/gpu.py`` measures
the speed on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import S2_BANDS, S2_WL, count_calls, mirrored_chip

import xcloud  # noqa: F401
from xcloud.inference import core
from xcloud.models import builtin, create_model


@pytest.fixture
def cube(oncloudn_chip) -> xr.Dataset:
    """The 256 px chip mirrored to 1024 x 1024 px, reflectance, chunks of 512 px."""
    return mirrored_chip(oncloudn_chip, 4, 512)


@pytest.fixture
def tensor_calls(monkeypatch):
    """The tensor path switched on for the CPU; counts its model calls."""
    return count_calls(monkeypatch, builtin.FinePredictor, "predict_tensor")


def _both(ds: xr.Dataset, monkeypatch, tensor_calls, **kw):
    numpy_out = ds.cloud.mask("fine", device="cpu", **kw).values
    assert tensor_calls == []
    monkeypatch.setattr(core, "_on_device", lambda device, job: True)
    tensor_out = ds.cloud.mask("fine", device="cpu", **kw).values
    assert sum(tensor_calls) == 16  # the 4 x 4 tiles of 256 px stride, all on the tensor path
    return numpy_out, tensor_out


def test_tensor_path_equals_numpy_path_bit_for_bit(cube, monkeypatch, tensor_calls):
    a, b = _both(cube, monkeypatch, tensor_calls, probabilities=True)
    assert a.dtype == b.dtype == np.float16
    np.testing.assert_array_equal(a, b)
    tensor_calls.clear()
    monkeypatch.setattr(core, "_on_device", lambda device, job: False)
    a, b = _both(cube, monkeypatch, tensor_calls)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) >= 3  # a real mask, not a constant


def test_tensor_path_with_nodata(cube, monkeypatch, tensor_calls):
    nan = np.float32(np.nan)
    ds = cube.copy()
    for b in S2_BANDS:  # a nodata corner and a stripe across two chunk rows
        v = ds[b].values.copy()
        v[:100, :300] = nan
        v[500:520] = nan
        ds[b] = (("y", "x"), v)
    ds = ds.chunk({"y": 512, "x": 512})
    a, b = _both(ds, monkeypatch, tensor_calls)
    assert np.array_equal(a == 255, b == 255) and (a == 255).sum() == 100 * 300 + 20 * 1024
    assert (a == b).mean() >= 0.9999  # fill means: another reduction order, last bits only


def test_tensor_path_shared_calls_cascade_unchanged(cube, monkeypatch, tensor_calls):
    cube = cube.chunk({"y": 256, "x": 256})
    casc = cube.cloud.mask("cascade", fine="fine", device="cpu").values
    fine = cube.cloud.mask("fine", device="cpu").values
    monkeypatch.setattr(core, "_on_device", lambda device, job: True)
    monkeypatch.setattr(core, "_coalesce", lambda device: True)
    casc_t = cube.cloud.mask("cascade", fine="fine", device="cpu").values
    off_t = cube.cloud.mask("cascade", fine="fine", routing=False, device="cpu").values
    assert tensor_calls  # the units ran on the tensor path
    assert (casc_t == casc).mean() >= 0.9999  # shared calls batch other tiles together
    assert (off_t == fine).mean() >= 0.9999


def test_tensor_path_only_on_a_gpu():
    job = core.MaskJob("fine", tuple(S2_BANDS), S2_WL, "l2a", device="cpu")
    assert core._on_device("cpu", job) is False


def test_predict_tensor_checks_shapes():
    import torch

    fine = create_model("fine", "cpu")
    wl = np.array(S2_WL[:3], np.float32)
    t = torch.full((2, 3, 64, 64), 0.1)
    p = fine.predict_tensor(t, wavelengths=wl)
    assert isinstance(p, torch.Tensor) and tuple(p.shape) == (2, 4, 64, 64)
    np.testing.assert_allclose(
        p.numpy(),
        fine.predict(t.numpy(), bands=("blue", "green", "red"), wavelengths=wl, level="l2a"),
    )
    with pytest.raises(ValueError, match=r"wavelengths must be \(C, 3\) = \(3, 3\)"):
        fine.predict_tensor(t, wavelengths=wl[:2])


def test_cuda_work_blocks_split_chunks_not_the_mask(cube, monkeypatch):
    """On CUDA stage A works on blocks of at most ``CUDA_BLOCK_PX``: the chunks are split for
    the model's work and the mask comes back, unchanged, in the input's chunks."""
    calls: list[tuple] = []
    real = core.predict_tiles

    def counting(block, **kw):
        calls.append(block.shape)
        return real(block, **kw)

    monkeypatch.setattr(core, "predict_tiles", counting)
    whole = cube.cloud.mask("fine", device="cpu")
    ref = whole.values
    assert len(calls) == 4  # 2 x 2 chunks of 512 px
    calls.clear()
    monkeypatch.setattr(core, "_work_block", lambda device, stride: 256)
    split = cube.cloud.mask("fine", device="cpu")
    assert split.chunks == whole.chunks == ((512, 512), (512, 512))
    np.testing.assert_array_equal(split.values, ref)
    assert len(calls) == 16  # 4 x 4 blocks of 256 px


def test_tensor_path_time_series(cube, monkeypatch, tensor_calls):
    """Leading dims (time) go through the tensor path as the tile index ``i``."""
    ts = xr.concat([cube, cube * 0.8 + 0.02], dim="time").chunk({"time": 2})
    a = ts.cloud.mask("fine", device="cpu", probabilities=True).values
    monkeypatch.setattr(core, "_on_device", lambda device, job: True)
    b = ts.cloud.mask("fine", device="cpu", probabilities=True).values
    assert sum(tensor_calls) == 32 and a.shape[0] == 2
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])
