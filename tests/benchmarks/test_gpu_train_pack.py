"""``benchmarks/gpu_train.py`` carries a training run's data to a GPU machine in parts: what it
unpacks there must train exactly as the data it packed (same sources, same order, same values)."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from benchmarks.gpu import unpack
from benchmarks.gpu_train import _pack_array, train, write_parts
from xcloud.models.fine import FineNet
from xcloud.train.data import IGNORE, SENTINEL2, Scene
from xcloud.train.loop import TrainConfig, train_fine

BANDS = ("B02", "B03", "B04", "B08")
WL = np.array([SENTINEL2[b] for b in BANDS], dtype=np.float32)


def _scene(rng, name, source, *, labelled=True, soft=False, size=48):
    dn = rng.integers(100, 6000, (4, size, size)).astype(np.float32)
    img = dn / 10000.0  # reflectance x 10000 integers, as the real scenes are
    label = (img[0] > 0.3).astype(np.uint8) if labelled else np.full((size, size), IGNORE, np.uint8)
    s = None
    if soft:  # teacher probabilities that float16 holds exactly
        s = np.zeros((4, size, size), np.float32)
        s[0], s[1] = 0.75, 0.25
    return Scene(img, WL, label, name, source, "l2a", BANDS, s)


def test_pack_array_is_exact_for_dn_and_float16_otherwise():
    dn = np.array([[0, 1, 1234, 65535]], np.float32) / 10000.0
    packed = _pack_array(dn)
    assert packed.dtype == np.uint16 and np.array_equal(unpack(packed), dn)
    toa = np.array([[0.123456, 0.5]], np.float32)  # not a multiple of 1e-4: float16
    assert _pack_array(toa).dtype == np.float16
    with_nan = np.array([[np.nan, 0.1]], np.float32)
    assert _pack_array(with_nan).dtype == np.float16


def test_unpacked_parts_train_as_the_data_they_came_from(tmp_path):
    rng = np.random.default_rng(0)
    # run_fine's order: labelled sources first, the teacher-only ones (part 0) last
    data = {
        "oncloudn": [_scene(rng, f"o{i}", "oncloudn", soft=True) for i in range(2)],
        "synthetic": [_scene(rng, "c0", "eurosat", labelled=False)],
        "unlabelled:x:4": [_scene(rng, "u0", "x", labelled=False, soft=True)],
    }
    data["synthetic"][0].label = None
    init = tmp_path / "init.safetensors"
    save_file(FineNet().state_dict(), str(init))
    conf = dict(steps=4, batch_size=2, crop=32, lr=1e-3, gamma=0.0, seed=0, groups=1,
                source_weights={"oncloudn": 0.4, "synthetic": 0.3, "unlabelled:x:4": 0.3},
                init=str(init), distill=1.0, ckpt_every=100)  # fmt: skip
    write_parts(tmp_path / "in", conf, data)
    assert (tmp_path / "in" / "part1" / "fine.v1.safetensors").exists()

    res = train([tmp_path / "in/part0", tmp_path / "in/part1"], tmp_path / "gpu", "cpu")
    direct = TrainConfig(**dict(conf, out=str(tmp_path / "direct"), device="cpu",
                                threads=torch.get_num_threads()))  # fmt: skip
    train_fine(data, direct)
    a = np.load(tmp_path / "gpu" / "run" / "history.npy")
    b = np.load(tmp_path / "direct" / "history.npy")
    assert res["steps"] == 4 and (tmp_path / "gpu" / "fine.gpu.safetensors").exists()
    np.testing.assert_array_equal(a, b)


def test_a_source_in_no_part_is_refused_before_anything_is_written(tmp_path):
    rng = np.random.default_rng(0)
    data = {"oncloudn": [_scene(rng, "o0", "oncloudn")], "mystery": [_scene(rng, "m", "m")]}
    with pytest.raises(ValueError, match="mystery"):
        write_parts(tmp_path / "in", {"init": "unused"}, data)
    assert not (tmp_path / "in").exists()
