"""``precision=``: the arithmetic of xcloud's own models.

``"auto"`` is fp32 on the CPU (bf16 on CUDA, ``benchmarks/gpu.py``), ``"fp32"`` the same
everywhere, ``"bf16"`` bf16 on the CPU as well (``benchmarks/speed.py`` times it). Checked with
the real ``fine`` model on a real On Cloud N chip.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import mirrored_chip

import xcloud  # noqa: F401
from xcloud.device import autocast_dtype, native_bf16_cpu
from xcloud.errors import ParameterError


@pytest.fixture(scope="module")
def chip(oncloudn_chip) -> xr.Dataset:
    """The 256 px chip mirrored to 512 x 512 px, reflectance, chunks of 256 px."""
    return mirrored_chip(oncloudn_chip, 2, 256)


def test_fp32_is_the_cpu_default_bit_for_bit(chip):
    auto = chip.cloud.mask("fine", device="cpu", probabilities=True).values
    fp32 = chip.cloud.mask("fine", device="cpu", precision="fp32", probabilities=True).values
    np.testing.assert_array_equal(auto, fp32)


@pytest.mark.filterwarnings("ignore:precision='bf16' on a CPU without native bf16")
def test_bf16_on_the_cpu_is_bf16_and_close(chip):
    p32 = chip.cloud.mask("fine", device="cpu", probabilities=True).values.astype(np.float32)
    p16 = chip.cloud.mask("fine", device="cpu", precision="bf16", probabilities=True).values
    assert not np.array_equal(p32, p16)  # it did run in another arithmetic
    assert np.abs(p32 - p16.astype(np.float32)).max() < 0.25
    m32 = chip.cloud.mask("fine", device="cpu").values
    m16 = chip.cloud.mask("fine", device="cpu", precision="bf16").values
    assert (m32 == m16).mean() >= 0.98
    # the cascade's fine stage takes it too: with routing off, bit for bit fine's bf16 mask
    off = chip.cloud.mask(
        "cascade", fine="fine", device="cpu", precision="bf16", routing=False
    ).values
    np.testing.assert_array_equal(off, m16)


def test_precision_is_part_of_the_graph_names(chip):
    a = chip.cloud.mask("fine", device="cpu")
    b = chip.cloud.mask("fine", device="cpu", precision="bf16")
    assert a.data.name != b.data.name  # two precisions in one compute are two results


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"precision": "fp16"}, r"precision='fp16': expected one of \['auto', 'fp32', 'bf16'\]"),
        ({"precision": None}, r"precision=None: expected one of"),
    ],
)
def test_bad_precision_is_refused(chip, kw, match):
    with pytest.raises(ParameterError, match=match):
        chip.cloud.mask("fine", device="cpu", **kw)


def test_precision_is_refused_for_models_with_their_own_arithmetic(chip):
    with pytest.raises(ParameterError, match=r"model 'ukis-csmask' .* takes only \['auto'\]"):
        chip.cloud.mask("ukis-csmask", device="cpu", precision="bf16")
    chip.cloud.mask("ukis-csmask", device="cpu", precision="auto")  # the default is fine


def test_autocast_dtype():
    import torch

    assert autocast_dtype("cpu") is None and autocast_dtype("cpu", "fp32") is None
    assert autocast_dtype("cpu", "bf16") is torch.bfloat16
    assert autocast_dtype("cuda") is torch.bfloat16 and autocast_dtype("cuda:0", "fp32") is None
    with pytest.raises(Exception, match="not on Apple's GPU"):
        autocast_dtype("mps", "bf16")
    assert isinstance(native_bf16_cpu(), bool)


def test_bf16_on_a_cpu_without_native_bf16_warns(chip, monkeypatch):
    from xcloud import device
    from xcloud.errors import XCloudWarning
    from xcloud.models import builtin

    monkeypatch.setattr(device, "native_bf16_cpu", lambda: False)
    monkeypatch.setattr(builtin, "_WARNED_BF16", [])
    with pytest.warns(XCloudWarning, match="without native bf16 .* slower than fp32"):
        chip.cloud.mask("fine", device="cpu", precision="bf16").compute(scheduler="sync")
