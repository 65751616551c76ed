"""Distillation option of the fine training: teacher maps follow the crops, the soft loss is
right, and a tiny distilled run learns from a teacher alone."""

import numpy as np
import pytest
import torch

from xcloud.models.fine import FineNet
from xcloud.train.data import IGNORE, SENTINEL2, Batcher, Scene, augment
from xcloud.train.distill import teacher_bands, teacher_probs
from xcloud.train.loop import TrainConfig, train_fine
from xcloud.train.losses import distill_ce

BANDS = ("B02", "B03", "B04", "B08", "B11")
WL = np.array([SENTINEL2[b] for b in BANDS], dtype=np.float32)
TINY = (8, 8, 8, 8, 8, 8)


def _scene(seed=0, size=64, labelled=True):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.integers(0, size, 2)
    cloud = (yy - cy) ** 2 + (xx - cx) ** 2 < (size // 3) ** 2
    img = rng.uniform(0.02, 0.15, (5, size, size)).astype(np.float32)
    img[:, cloud] = rng.uniform(0.5, 0.8, (5, int(cloud.sum()))).astype(np.float32)
    soft = np.zeros((4, size, size), np.float32)
    soft[1][cloud], soft[0][~cloud] = 1.0, 1.0
    label = cloud.astype(np.uint8) if labelled else np.full(cloud.shape, IGNORE, np.uint8)
    return Scene(img, WL, label, f"s{seed}", "toy", "l1c", BANDS, soft)


def test_augment_extra_follows_geometry_and_keeps_draws():
    img = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)
    lab = (img[0] > 0.5).astype(np.uint8)
    a_img, a_lab = augment(img, lab, np.random.default_rng(3))
    b_img, b_lab, extra = augment(img, lab, np.random.default_rng(3), extra=img[:1] > 0.5)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    np.testing.assert_array_equal(extra[0].astype(np.uint8), b_lab)


def test_batcher_teacher_maps_match_crops():
    s = _scene()
    s.soft[1] = s.label  # teacher == label
    b = Batcher({"toy": [s]}, {"toy": 1.0}, batch_size=3, crop=32, teacher=True)
    x, y, wl, name, soft = b.sample()
    assert soft.shape == (3, 4, 32, 32)
    np.testing.assert_array_equal(soft[:, 1].astype(np.uint8), y)
    # without teacher the batcher returns the usual 4-tuple
    assert len(Batcher({"toy": [s]}, {"toy": 1.0}, batch_size=2, crop=32).sample()) == 4


def test_distill_ce():
    logits = torch.zeros(1, 4, 2, 2)
    soft = torch.zeros(1, 4, 2, 2)
    assert distill_ce(logits, soft).item() == 0.0  # no teacher anywhere
    soft[0, 0] = 1.0
    assert abs(distill_ce(logits, soft).item() - np.log(4)) < 1e-5
    # the teacher's cloud mass rewards cloud or thin cloud
    soft[:] = 0
    soft[0, 1] = 1.0
    logits[0, 2] = 10.0
    assert distill_ce(logits, soft).item() < 0.01
    assert distill_ce(logits, soft, merge_thin=False).item() > 5.0


def test_teacher_probs_tiles_and_maps_classes():
    class Teacher:
        def predict(self, x, *, bands, wavelengths, level):
            assert x.shape[1:] == (4, 256, 256) and bands == ("blue", "green", "red", "nir")
            p = np.zeros((len(x), 3, 256, 256), np.float32)
            p[:, 2] = 1.0  # all shadow
            return p

    s = _scene(size=300)
    s = Scene(s.image[:4], s.wavelengths[:4], s.label, s.name, s.source, s.level, BANDS[:4])
    assert teacher_bands(s) == [0, 1, 2, 3]
    s.image[:, :5, :5] = 0.0  # nodata
    out = teacher_probs(Teacher(), s)
    assert out.shape == (4, 300, 300)
    assert np.allclose(out[3, 5:, 5:], 1.0) and (out[:, :5, :5] == 0).all()
    assert teacher_bands(Scene(s.image[:3], WL[:3], None, "x", "x", "l1c", BANDS[:3])) is None


def test_tiny_distilled_run_learns_from_teacher_only(tmp_path):
    torch.manual_seed(0)
    scenes = [_scene(i, labelled=False) for i in range(4)]
    cfg = TrainConfig(steps=30, batch_size=4, crop=32, lr=1e-2, gamma=0.0, out=str(tmp_path),
                      ckpt_every=10, source_weights={"toy": 1.0}, threads=1, seed=0, distill=1.0)  # fmt: skip
    model, summary = train_fine({"toy": scenes}, cfg, model=FineNet(widths=TINY))
    hist = np.load(tmp_path / "history.npy")[:, 1]
    assert summary["steps_done"] == 30
    assert hist[-5:].mean() < 0.7 * hist[:5].mean(), hist
    # init from a .safetensors file
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors")
    )
    cfg2 = TrainConfig(**{**cfg.to_json(), "steps": 1, "out": str(tmp_path / "b"),
                          "init": str(tmp_path / "m.safetensors")})  # fmt: skip
    train_fine({"toy": scenes}, cfg2, model=FineNet(widths=TINY))


def test_batcher_full_bands():
    s = _scene()
    full = Batcher({"toy": [s]}, {"toy": 1.0}, batch_size=2, crop=32, full_bands=1.0)
    assert all(full.sample()[0].shape[1] == len(BANDS) for _ in range(10))
    # full_bands=0 draws nothing extra: the same batches as a Batcher without the option
    a = Batcher({"toy": [s]}, {"toy": 1.0}, batch_size=2, crop=32, seed=3)
    b = Batcher({"toy": [s]}, {"toy": 1.0}, batch_size=2, crop=32, seed=3, full_bands=0.0)
    for _ in range(5):
        (xa, ya, wa, _), (xb, yb, wb, _) = a.sample(), b.sample()
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(wa, wb)
    sizes = {a.sample()[0].shape[1] for _ in range(40)}
    assert len(sizes) > 1  # subsets of several sizes without it
    with pytest.raises(ValueError, match="full_bands must be a probability in \\[0, 1\\], got 1.5"):
        Batcher({"toy": [s]}, {"toy": 1.0}, full_bands=1.5)
