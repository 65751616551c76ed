"""Partial shadow labels: a chip that labels cloud but no shadow has its "clear" read as
"clear or shadow", so the loss stops teaching that unlabelled shadows are clear ground."""

import numpy as np
import pytest
import torch

from xcloud.train.data import LANDSAT8, Scene, mark_unlabelled_shadow
from xcloud.train.losses import partial_ce

BANDS = ("B2", "B3", "B4")
WL = np.array([LANDSAT8[b] for b in BANDS], dtype=np.float32)


def _chip(name, label):
    lab = np.asarray(label, np.uint8)
    return Scene(np.zeros((3, *lab.shape), np.float32), WL, lab, name, "l8biome", "l1c", BANDS)


def test_only_cloudy_chips_without_shadow_are_relabelled():
    cloudy = _chip("cloudy", [[0, 1], [2, 255]])
    shadowed = _chip("shadowed", [[0, 1], [3, 0]])
    clear = _chip("clear", [[0, 0], [0, 255]])
    oncloudn_like = _chip("set_valued", [[5, 4], [5, 5]])  # clear is already "clear or shadow"
    out, names = mark_unlabelled_shadow([cloudy, shadowed, clear, oncloudn_like])
    assert names == ["cloudy"] and out[3] is oncloudn_like
    assert out[0].label.tolist() == [[5, 1], [2, 255]]  # cloud, thin and fill untouched
    assert out[1] is shadowed and out[2] is clear
    assert cloudy.label.tolist() == [[0, 1], [2, 255]]  # the input is not modified


def test_relabelled_clear_no_longer_penalises_shadow():
    """A pixel the model calls shadow costs nothing extra once its label is 'clear or shadow'."""
    logits = torch.tensor([0.0, -5.0, -5.0, 5.0]).view(1, 4, 1, 1)  # confident shadow
    before = partial_ce(logits, torch.tensor([[[0]]]), gamma=0.0)
    after = partial_ce(logits, torch.tensor([[[5]]]), gamma=0.0)
    assert before.item() > 4.0 and after.item() < 0.01


def test_cli_flag_and_unknown_source(tmp_path):
    from xcloud.train.cli import _parser, config_from_args, load_training

    cfg = config_from_args(_parser().parse_args(["fine", "--partial-shadow", "l8biome"]))
    assert cfg.partial_shadow == ("l8biome",)
    assert config_from_args(_parser().parse_args(["fine"])).partial_shadow == ()
    with pytest.raises(ValueError, match="partial_shadow: unknown labelled source 'landsat9'"):
        load_training(str(tmp_path), (), ("landsat9",))
