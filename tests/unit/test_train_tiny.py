"""Train a tiny fine model for a few steps on tiny synthetic data: the loss must fall, and a
run resumed from its checkpoint must match an uninterrupted one."""

import numpy as np
import pytest
import torch

from xcloud.models.fine import FineNet
from xcloud.train.data import SENTINEL2, Scene
from xcloud.train.loop import TrainConfig, train_fine

WL = np.array([SENTINEL2[b] for b in ("B02", "B03", "B04", "B08", "B11")], dtype=np.float32)
TINY = (8, 8, 8, 8, 8, 8)


def _scenes(n=4, size=64, seed=0):
    """Dark ground with bright blobs labelled cloud: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        yy, xx = np.mgrid[:size, :size]
        cy, cx = rng.integers(0, size, 2)
        cloud = (yy - cy) ** 2 + (xx - cx) ** 2 < (size // 3) ** 2
        img = rng.uniform(0.02, 0.15, (5, size, size)).astype(np.float32)
        img[:, cloud] = rng.uniform(0.5, 0.8, (5, int(cloud.sum()))).astype(np.float32)
        out.append(
            Scene(
                img,
                WL,
                cloud.astype(np.uint8),
                f"s{i}",
                "toy",
                "l1c",
                ("B02", "B03", "B04", "B08", "B11"),
            )
        )
    return out


def _cfg(tmp_path, **kw):
    base = dict(steps=30, batch_size=4, crop=32, lr=1e-2, gamma=0.0, out=str(tmp_path), ckpt_every=10,
                source_weights={"toy": 1.0}, threads=1, seed=0)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_training_loss_falls(tmp_path):
    torch.manual_seed(0)
    _, summary = train_fine({"toy": _scenes()}, _cfg(tmp_path), model=FineNet(widths=TINY))
    hist = np.load(tmp_path / "history.npy")[:, 1]
    assert summary["steps_done"] == 30
    assert hist[-5:].mean() < 0.7 * hist[:5].mean(), hist
    assert (tmp_path / "checkpoint.pt").exists()


def test_resume_matches_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    full, _ = train_fine(
        {"toy": _scenes()}, _cfg(tmp_path / "a", steps=12, ckpt_every=6), model=FineNet(widths=TINY)
    )
    # the interrupted run: stop at step 6 (a checkpoint), then resume to 12
    torch.manual_seed(0)
    cfg = _cfg(tmp_path / "b", steps=12, ckpt_every=6)
    train_fine({"toy": _scenes()}, cfg, model=FineNet(widths=TINY), stop_after=6)
    torch.manual_seed(0)
    cfg.resume = True
    resumed, summary = train_fine({"toy": _scenes()}, cfg, model=FineNet(widths=TINY))
    assert summary["steps_done"] == 12
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


@pytest.mark.parametrize("bad", [{"toy": []}])
def test_no_data_is_an_error(tmp_path, bad):
    with pytest.raises(ValueError, match="no training data"):
        train_fine(bad, _cfg(tmp_path), model=FineNet(widths=TINY))


def test_a_device_torch_cannot_use_fails_before_training(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    from xcloud.errors import XCloudError

    out = tmp_path / "run"
    with pytest.raises(XCloudError, match=r"device='cuda'.*device='cpu'"):
        train_fine({"toy": _scenes()}, _cfg(out, device="cuda"), model=FineNet(widths=TINY))
    assert not out.exists()  # nothing written


def test_data_card_says_when_the_synthetic_composites_were_not_used():
    from xcloud.train.cli import _data_card

    train = {"oncloudn": [], "l8biome": [], "synthetic": _scenes(n=1)}
    val = {"oncloudn": [], "l8biome": []}
    unused = _data_card(train, val, {"oncloudn": 0.5, "synthetic": 0.0})["train"]["synthetic"]
    used = _data_card(train, val, {"oncloudn": 0.5, "synthetic": 0.2})["train"]["synthetic"]
    assert "not used" in unused["note"] and "not used" not in used["note"]
    assert "not used" not in _data_card(train, val)["train"]["synthetic"]["note"]
    # the coarse model's keys, one per clear source (xcloud.train.routing.expand_weights)
    split = {"synthetic:eurosat:13": 0.0, "synthetic:sen12mscr:13": 0.1}
    assert "not used" not in _data_card(train, val, split)["train"]["synthetic"]["note"]
    none = {"synthetic:eurosat:13": 0.0, "oncloudn": 1.0}
    assert "not used" in _data_card(train, val, none)["train"]["synthetic"]["note"]


def test_checkpoints_load_without_unpickling_code(tmp_path):
    """Resuming used torch.load(weights_only=False): a checkpoint could run any code."""
    from pathlib import Path

    cfg = _cfg(tmp_path / "c", steps=6, ckpt_every=3)
    train_fine({"toy": _scenes()}, cfg, model=FineNet(widths=TINY), stop_after=3)
    state = torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    src = Path(__file__).parents[2] / "xcloud"
    assert not [p for p in src.rglob("*.py") if "weights_only=False" in p.read_text()]


def test_widths_set_the_student_size(tmp_path):
    cfg = _cfg(tmp_path, steps=1, widths=TINY)
    model, _ = train_fine({"toy": _scenes(2)}, cfg)
    assert model.config["widths"] == list(TINY)
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in FineNet().parameters()
    )
