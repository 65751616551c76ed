"""benchmarks/cv_train.py's pieces that decide and remember: the rule's targets and the
teacher cache shared by the fold runs."""

import cv_train
import numpy as np
from conftest import TEST_MODEL

from xcloud.models import create_model


def _scores(on, l8, shadow, fa):
    def s(v):
        return {"mean": v, "min": v, "max": v, "std": 0.0}

    return {
        "oncloudn": {"summary": {"cloud_f1": s(on)}},
        "l8biome": {"summary": {"cloud_f1": s(l8), "shadow_f1": s(shadow)}},
        "clear": {"summary": {"false_alarm": s(fa)}},
    }


def test_meets_needs_every_target():
    ref = _scores(0.75, 0.90, 0.21, 0.064)
    assert cv_train.meets(_scores(0.76, 0.90, 0.21, 0.064), ref, 3.0, 1.0)
    assert not cv_train.meets(_scores(0.76, 0.89, 0.30, 0.01), ref, 9.0, 1.0)  # L8 cloud
    assert not cv_train.meets(_scores(0.80, 0.95, 0.20, 0.01), ref, 9.0, 1.0)  # shadow
    assert not cv_train.meets(_scores(0.80, 0.95, 0.30, 0.07), ref, 9.0, 1.0)  # false alarms
    assert not cv_train.meets(_scores(0.80, 0.95, 0.30, 0.01), ref, 2.9, 1.0)  # speed


def test_cached_teacher_runs_each_tile_once(tmp_path):
    class Counting:
        def __init__(self):
            self.model, self.calls = create_model(TEST_MODEL), 0

        def predict(self, x, **kw):
            self.calls += 1
            return self.model.predict(x, **kw)

    inner = Counting()
    teacher = cv_train.CachedTeacher(tmp_path, model=inner)
    x = np.random.default_rng(0).uniform(0, 0.5, (2, 4, 64, 64)).astype(np.float32)
    kw = {"bands": ("blue", "green", "red", "nir"), "wavelengths": None, "level": "l1c"}
    first = teacher.predict(x, **kw)
    again = teacher.predict(x.copy(), **kw)
    np.testing.assert_array_equal(first, again)
    assert inner.calls == 1 and len(list(tmp_path.glob("*.npy"))) == 1
    teacher.predict(x, **{**kw, "level": "l2a"})  # another level is another question
    teacher.predict(x[:1], **kw)
    assert inner.calls == 3


def test_ensemble_is_the_argmax_of_the_mean_and_nodata_where_either_has_none():
    a = np.zeros((4, 1, 3), np.float32)
    b = np.zeros((4, 1, 3), np.float32)
    a[:, 0, 0], b[:, 0, 0] = (0.6, 0.1, 0.3, 0.0), (0.2, 0.8, 0.0, 0.0)  # mean: cloud 0.45
    a[:, 0, 1], b[:, 0, 1] = (0.1, 0.0, 0.0, 0.9), (0.5, 0.5, 0.0, 0.0)  # shadow 0.45
    a[:, 0, 2] = np.nan
    assert cv_train.ensemble_codes(a, b).tolist() == [[1, 3, 255]]


def test_scores_are_kept_for_the_same_weights_only(tmp_path, monkeypatch):
    monkeypatch.setattr(cv_train, "RUNS", tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {("oncloudn", 0): {"tp": len(calls)}}

    first = cv_train._scored("fine-m", compute, ["a"])
    assert cv_train._scored("fine-m", compute, ["a"]) == first == {("oncloudn", 0): {"tp": 1}}
    assert cv_train._scored("fine-m", compute, ["b"]) == {("oncloudn", 0): {"tp": 2}}
    assert len(calls) == 2
