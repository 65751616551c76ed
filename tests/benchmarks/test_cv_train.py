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
    assert cv_train.meets(_scores(0.80, 0.95, 0.30, 0.01), ref)  # an ensemble: no speed target


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


def _counts(tp, fn, fa=0):
    """Fold totals with cloud F1 = 2tp / (2tp + fn) and the given false alarms (of 100)."""
    lab = {"tp": tp, "fp": 0, "fn": fn, "tn": 0, "n": tp + fn, "label_cloud": tp + fn,
           "called_clear": fn, "called_cloud": tp, "called_thin": 0, "called_shadow": 0}  # fmt: skip
    clear = {**dict.fromkeys(lab, 0), "n": 100, "called_clear": 100 - fa}
    return lab, clear


def test_nested_choice_scores_each_fold_with_the_choice_made_on_the_others():
    def cand(f1_by_fold, fa=0):
        out = {}
        for f, (tp, fn) in enumerate(f1_by_fold):
            lab, clear = _counts(tp, fn, fa)
            out.update({("oncloudn", f): lab, ("l8biome", f): lab, ("clear", f): clear})
        return out

    totals = {
        "-@0.0": cand([(50, 50), (50, 50), (50, 50)], fa=5),
        "s@0.25": cand([(90, 10), (10, 90), (90, 10)], fa=5),  # strong on folds 0 and 2 only
        "m@0.5": cand([(99, 1), (99, 1), (99, 1)], fa=9),  # best, but more false alarms
    }
    res = cv_train.nested_choice(totals, 3)
    # only for fold 1 do the other folds (0, 2) favour s@0.25, and fold 1 is where it fails
    assert res["chosen"] == {0: "-@0.0", 1: "s@0.25", 2: "-@0.0"}
    est = res["estimate"]["oncloudn"]["folds"]
    assert [round(e["cloud_f1"], 3) for e in est] == [0.667, 0.182, 0.667]
    assert res["on_all_folds"] == "s@0.25"  # 0.692 over all folds


def test_start_from_copies_a_missing_checkpoint_only(tmp_path, monkeypatch):
    monkeypatch.setattr(cv_train, "RUNS", tmp_path)
    monkeypatch.setitem(cv_train.RECIPE, "steps", 5000)
    short = cv_train.run_dir("m", 0, 2500)
    short.mkdir(parents=True)
    (short / "checkpoint.pt").write_bytes(b"step 2500")
    long0, long1 = cv_train.run_dir("m", 0), cv_train.run_dir("m", 1)
    assert long0 == tmp_path / "m-steps5000" / "fold0" and cv_train.tag() == "-steps5000"
    long1.mkdir(parents=True)
    (long1 / "checkpoint.pt").write_bytes(b"step 3000 of the long run")
    (cv_train.run_dir("m", 1, 2500)).mkdir(parents=True)
    (cv_train.run_dir("m", 1, 2500) / "checkpoint.pt").write_bytes(b"step 2500")
    cv_train.start_from([("m", 0), ("m", 1)], 2500)
    assert (long0 / "checkpoint.pt").read_bytes() == b"step 2500"
    assert (long1 / "checkpoint.pt").read_bytes() == b"step 3000 of the long run"  # kept
