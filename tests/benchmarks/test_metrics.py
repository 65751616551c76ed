"""The benchmark metrics against hand-computed confusion matrices."""

import math

import numpy as np
import pytest

from benchmarks._metrics import Confusion, confusion, scores


def test_confusion_counts_by_hand():
    pred = np.array([[1, 1, 0], [0, 1, 0]], bool)
    truth = np.array([[1, 0, 0], [1, 1, 0]], bool)
    # tp: (0,0) (1,1); fp: (0,1); fn: (1,0); tn: (0,2) (1,2)
    assert confusion(pred, truth) == Confusion(tp=2, fp=1, fn=1, tn=2)


def test_valid_mask_drops_pixels():
    pred = np.array([1, 1, 0, 0], bool)
    truth = np.array([1, 0, 1, 0], bool)
    valid = np.array([True, False, True, False])
    assert confusion(pred, truth, valid) == Confusion(tp=1, fp=0, fn=1, tn=0)


def test_scores_by_hand():
    # tp=40 fp=10 fn=20 tn=30, n=100
    s = scores(Confusion(tp=40, fp=10, fn=20, tn=30))
    assert s["oa"] == pytest.approx(0.70)
    assert s["precision"] == pytest.approx(0.80)
    assert s["recall"] == pytest.approx(40 / 60)
    assert s["ba"] == pytest.approx((40 / 60 + 30 / 40) / 2)
    assert s["f1"] == pytest.approx(2 * 40 / (80 + 10 + 20))
    assert s["n"] == 100


def test_pooling_sums_counts_before_ratios():
    a = Confusion(tp=1, fp=0, fn=0, tn=0)
    b = Confusion(tp=0, fp=0, fn=9, tn=10)
    pooled = scores(a + b)
    assert pooled["recall"] == pytest.approx(0.1)  # not the mean of per-chip recalls (0.5)


def test_undefined_ratios_are_nan():
    s = scores(Confusion(tp=0, fp=0, fn=0, tn=5))
    assert s["oa"] == 1.0
    assert math.isnan(s["precision"]) and math.isnan(s["recall"]) and math.isnan(s["f1"])


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        confusion(np.zeros(3, bool), np.zeros(4, bool))


def test_accuracy_table_blanks_cloud_scores_on_clear_scenes():
    """On the clear-scene set the labels hold no cloud: precision and F1 are 0 by arithmetic and
    recall undefined, so the table shows '-' there and the false-alarm line carries the measure."""
    from benchmarks import accuracy

    pred = np.array([1, 0, 0, 0, 3, 0, 0, 0, 0, 0])
    truth = np.zeros(10, bool)
    cloud = scores(confusion((pred == 1) | (pred == 2), truth))
    assert cloud["precision"] == 0.0 and cloud["f1"] == 0.0  # what used to be printed
    r = {"cloud": cloud, "seconds": 0.1, "chips": ["a"],
         "false_alarm": {"cloud_or_thin": 0.1, "shadow": 0.1, "any": 0.2}}  # fmt: skip
    row, fa = [ln for ln in accuracy.table({"clear-val": {"fine": r}}).splitlines()[2:]]
    assert row.split()[:7] == ["clear-val", "fine", "0.900", "-", "-", "-", "-"]
    assert "any 20.00%" in fa
    labelled = dict(r, false_alarm=None)  # a labelled set keeps its scores
    assert "0.000" in accuracy.table({"oncloudn-val": {"fine": labelled}}).splitlines()[2]


def test_near_and_extent_counts_by_hand():
    from benchmarks._metrics import extent_counts, near

    label = np.zeros((7, 7), bool)
    label[3, 3] = True
    ring1 = near(label, 1)
    assert ring1.sum() == 9 and ring1[2:5, 2:5].all()  # the 3 x 3 square around it
    assert near(label, 0).sum() == 1 and not near(np.zeros((3, 3), bool), 2).any()
    edge = np.zeros((4, 4), bool)
    edge[0, 0] = True
    assert near(edge, 1).sum() == 4  # clipped at the border
    pred = np.zeros((7, 7), bool)
    pred[3, 2:5] = True  # the cloud pixel and one halo pixel on each side
    pred[0, 0] = True  # one far false alarm
    valid = np.ones((7, 7), bool)
    valid[3, 4] = False  # an invalid halo pixel is not counted
    c = extent_counts(pred, label, valid, px=1)
    assert c == {"pred": 3, "label": 1, "rim": 7, "rim_fp": 1, "far": 40, "far_fp": 1}
