"""Label cleaning of the training data: chips whose labels contradict their imagery are
rejected by a rule that sees only the chip itself, and they can rejoin as teacher-only scenes."""

import numpy as np
import pytest

from xcloud.train.data import IGNORE, SENTINEL2, Scene, label_contrast, split_noisy_labels
from xcloud.train.distill import distill_training_data

BANDS = ("B02", "B03", "B04", "B08")
WL = np.array([SENTINEL2[b] for b in BANDS], dtype=np.float32)


def _chip(name, label_fn, bright=0.6, dark=0.05, size=32):
    yy, _ = np.mgrid[:size, :size]
    cloud = yy < size // 2
    img = np.full((4, size, size), dark, np.float32)
    img[:, cloud] = bright
    return Scene(img, WL, label_fn(cloud).astype(np.uint8), name, "oncloudn", "l2a", BANDS)


def test_label_contrast_numbers():
    c = label_contrast(_chip("a", lambda m: np.where(m, 4, 5)))
    assert c["cloud_frac"] == pytest.approx(0.5)
    assert c["vis_cloud"] == pytest.approx(0.6) and c["vis_clear"] == pytest.approx(0.05)
    assert c["contrast"] == pytest.approx(0.55)
    assert c["bright_frac"] == pytest.approx(0.5)


def test_split_noisy_labels_rules():
    good = _chip("good", lambda m: np.where(m, 4, 5))
    inverted = _chip("inverted", lambda m: np.where(m, 5, 4))  # the dark half labelled cloud
    overcast_dark = _chip("dark_overcast", lambda m: np.full(m.shape, 4), bright=0.06)
    overcast = _chip("overcast", lambda m: np.full(m.shape, 4), dark=0.5)
    clear_bright = _chip("clear_but_bright", lambda m: np.full(m.shape, 5))
    clear = _chip("clear", lambda m: np.full(m.shape, 5), bright=0.05)
    ignored = _chip("half_fill", lambda m: np.where(m, IGNORE, 5))  # fill pixels do not count
    kept, dropped = split_noisy_labels(
        [good, inverted, overcast_dark, overcast, clear_bright, clear, ignored]
    )
    assert [s.name for s in kept] == ["good", "overcast", "clear", "half_fill"]
    assert [s.name for s in dropped] == ["inverted", "dark_overcast", "clear_but_bright"]
    # the contrast threshold is a parameter
    assert split_noisy_labels([good], min_contrast=0.6)[1] == [good]


class _Teacher:
    """Stands in for ukis-csmask's predict(): cloud where blue is bright."""

    def predict(self, x, *, bands, wavelengths, level):
        p = np.zeros((x.shape[0], 3, *x.shape[2:]), np.float32)
        bright = x[:, 0] > 0.3
        p[:, 1][bright], p[:, 0][~bright] = 1.0, 1.0
        return p


def test_rejected_chips_rejoin_as_teacher_only():
    bad = _chip("inverted", lambda m: np.where(m, 5, 4), size=64)
    out = distill_training_data(
        {"oncloudn": [], "l8biome": [], "synthetic": []},
        teacher=_Teacher(),
        unlabelled=False,
        relabel=[bad],
    )
    (scene,) = out["unlabelled:oncloudn_relabel:4"]
    assert (scene.label == IGNORE).all()  # the rejected human label is gone
    np.testing.assert_array_equal(scene.soft[1] > 0.5, bad.image[0] > 0.3)  # teacher's instead


def test_cli_flag_sets_clean_labels():
    from xcloud.train.cli import _parser, config_from_args

    cfg = config_from_args(_parser().parse_args(["fine", "--clean-labels", "oncloudn"]))
    assert cfg.clean_labels == ("oncloudn",)
    assert config_from_args(_parser().parse_args(["fine"])).clean_labels == ()


def test_unknown_clean_source_is_named(tmp_path):
    from xcloud.train.cli import load_training

    with pytest.raises(ValueError, match="'sentinel9'"):
        load_training(str(tmp_path), ("sentinel9",))


def test_card_rule_follows_the_function_defaults(monkeypatch):
    """The model card's text of the cleaning rule is read from split_noisy_labels' defaults."""
    from xcloud.train import cli

    assert "cloud >= 0.015 brighter" in cli._cleaning_rule()
    defaults = dict(split_noisy_labels.__kwdefaults__, min_contrast=0.05)
    monkeypatch.setattr(split_noisy_labels, "__kwdefaults__", defaults)
    assert "cloud >= 0.05 brighter" in cli._cleaning_rule()
