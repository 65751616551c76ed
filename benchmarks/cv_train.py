"""Cross-validate a ``fine`` training recipe at several student sizes (docs/cv-protocol.md,
rule 2026-12-04b): F1 on held-out folds against Mpx/s, beside ukis-csmask on the same folds.

For each size and fold, ``fine`` is trained from scratch on every scene outside the fold (its
labelled and clear scenes are dropped before anything else: no imagery, no teacher target), and
scored on the fold with ``benchmarks/accuracy.py``'s counts. The teacher's predictions are
cached on disk by the bytes of each input tile, so the runs share one teacher pass.

Run
---
    nice .venv/bin/python benchmarks/cv_train.py [--sizes s,m,l] [--folds 5] [--jobs 2]

Training runs in ``--jobs`` worker processes of one thread each and resumes: a finished
(size, fold) keeps its export under ``runs/cv/<size>/fold<f>/``, an unfinished one its
checkpoint. Writes ``benchmarks/results/cv_train.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import accuracy  # noqa: E402  (benchmarks/, beside this script)

from benchmarks._metrics import machine_info  # noqa: E402
from xcloud.models.fine import FINE_CLASSES  # noqa: E402

RUNS = Path("runs/cv")
#: Rule 2026-12-04b's recipe (docs/cv-protocol.md): ``TrainConfig`` fields.
RECIPE = dict(
    steps=2500, batch_size=16, crop=128, lr=3e-3, weight_decay=1e-4, gamma=1.0, seed=0, threads=1,
    source_weights={"oncloudn": 0.25, "l8biome": 0.3, "synthetic": 0.1, "unlabelled": 0.2,
                    "clear": 0.15},
    groups=4, ckpt_every=250, distill=3.0, distill_weights=(1.0, 1.0, 1.0, 1.0),
    clean_labels=("oncloudn",), partial_shadow=("l8biome",), time_limit=None,
)  # fmt: skip
RULE_STEPS = RECIPE["steps"]
#: Student sizes: SEnSeI width, then the widths of the five encoder stages.
SIZES = {
    "s": (8, 12, 16, 24, 32, 48),
    "m": (16, 24, 32, 48, 64, 96),
    "l": (24, 40, 64, 96, 128, 192),
}
TEACHER_CACHE = RUNS / "teacher"


class CachedTeacher:
    """The distillation teacher with its outputs kept on disk, keyed by input bytes and bands:
    every fold's run asks for the same tiles of the scenes it keeps."""

    def __init__(self, cache: Path = TEACHER_CACHE, model=None) -> None:
        from xcloud.models import create_model
        from xcloud.train.distill import TEACHER

        self.model = model or create_model(TEACHER, "cpu")
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def predict(self, x: np.ndarray, **kw) -> np.ndarray:
        key = hashlib.sha1(np.ascontiguousarray(x).tobytes())
        key.update(repr(sorted(kw.items())).encode())
        path = self.cache / f"{key.hexdigest()}.npy"
        if path.exists():
            return np.load(path)
        out = self.model.predict(x, **kw).astype(np.float32)
        np.save(path.with_suffix(".tmp.npy"), out)
        path.with_suffix(".tmp.npy").rename(path)  # whole files only, for the other worker
        return out


def tag() -> str:
    """What names this run's outputs apart from the rule's: its step count, if not the rule's."""
    return "" if RECIPE["steps"] == RULE_STEPS else f"-steps{RECIPE['steps']}"


def run_dir(size: str, fold: int, steps: int | None = None) -> Path:
    steps = RECIPE["steps"] if steps is None else steps
    return RUNS / f"{size}{'' if steps == RULE_STEPS else f'-steps{steps}'}" / f"fold{fold}"


def start_from(jobs: list[tuple[str, int]], steps: int) -> None:
    """Start each job that has no checkpoint from the checkpoint of the same size and fold
    trained for ``steps`` (its learning rate then follows the longer run's schedule)."""
    import shutil

    for size, fold in jobs:
        ckpt = run_dir(size, fold) / "checkpoint.pt"
        if not ckpt.exists():
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(run_dir(size, fold, steps) / "checkpoint.pt", ckpt)


def export_of(size: str, fold: int) -> Path:
    return run_dir(size, fold) / "export" / f"fine.cv-{size}-f{fold}.safetensors"


def train_one(size: str, fold: int, k: int, held_out: list[str]) -> None:
    """Train ``size`` without the scenes of ``fold`` and export it (resumes a checkpoint)."""
    from xcloud.train.cli import fine_training_data
    from xcloud.train.export import export_model
    from xcloud.train.loop import TrainConfig, train_fine

    out = run_dir(size, fold)
    cfg = TrainConfig(**RECIPE, widths=SIZES[size], out=str(out), resume=True)  # type: ignore[arg-type]
    cfg, data, *_ = fine_training_data(cfg, exclude=held_out, teacher=CachedTeacher())
    model, summary = train_fine(data, cfg, log=print)
    card = {
        "classes": list(FOUR),
        "cv": {"rule": "docs/cv-protocol.md, 2026-12-04b", "size": size, "fold": fold, "k": k,
               "held_out": sorted(held_out), "sources": {k: len(v) for k, v in data.items()}},
        "training": summary,
    }  # fmt: skip
    export_model(model, out / "export", name="fine", version=f"cv-{size}-f{fold}", card=card)


def _register(size: str, fold: int) -> str:
    """Register the exported run as a model beside ``fine`` (same tiling, its own weights)."""
    from xcloud.models import get_spec, register_model

    weights = export_of(size, fold)
    card = json.loads(weights.with_suffix(".json").read_text())
    name = f"fine-cv-{size}-f{fold}"
    spec = replace(get_spec("fine"), name=name, weights=str(weights.resolve()),
                   sha256=_sha(weights), card=card, unavailable=None)  # fmt: skip
    register_model(spec, replace=True)
    return name


#: The classes an ensemble averages over: fine's, in code order (clear 0, cloud 1, thin 2,
#: shadow 3).
FOUR = FINE_CLASSES


def probs4(chip, model: str) -> np.ndarray:
    """``model``'s class probabilities on ``chip`` over :data:`FOUR` (a class it lacks gets
    none), ``(4, H, W)``, NaN where it gives none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = chip.ds.cloud.mask(model, sensor=chip.sensor, probabilities=True).compute()
    classes, v = list(p["class"].values), np.asarray(p.values, np.float32)
    out = np.zeros((len(FOUR),) + v.shape[1:], np.float32)
    for k, c in enumerate(FOUR):
        if c in classes:
            out[k] = v[classes.index(c)]
    out[:, ~np.isfinite(v).all(axis=0)] = np.nan
    return out


def ensemble_codes(a: np.ndarray, b: np.ndarray, w: float = 0.5) -> np.ndarray:
    """Rule 2026-12-04c: the arg-max of the two models' mean probabilities, ``w`` on ``a``
    (rule 2026-12-04d); 255 where either has none."""
    m = w * a + (1 - w) * b
    codes = np.argmax(np.nan_to_num(m, nan=-1.0), axis=0).astype(np.uint8)
    codes[~np.isfinite(m).all(axis=0)] = 255
    return codes


class _Ensemble:
    """``predict_fn`` for :func:`accuracy.fold_totals`: a student with ukis-csmask, whose
    probabilities are computed once per chip for every size."""

    def __init__(self) -> None:
        self.teacher: dict[str, np.ndarray] = {}

    def __call__(self, chip, student: str) -> np.ndarray:
        if chip.name not in self.teacher:
            self.teacher[chip.name] = probs4(chip, "ukis-csmask")
        return ensemble_codes(probs4(chip, student), self.teacher[chip.name])


#: Rule 2026-12-04d's grid: (student size, its weight); weight 0 is ukis-csmask alone.
NESTED = (("-", 0.0), ("s", 0.25), ("s", 0.5), ("s", 0.75), ("m", 0.25), ("m", 0.5), ("m", 0.75))


def nested_totals(chips, folds, k: int) -> dict:
    """Fold totals of every :data:`NESTED` candidate, ``{"<size>@<w>": {(source, fold): ...}}``
    (each fold scored with its own students; ukis-csmask's probabilities computed once)."""
    out: dict = {f"{s}@{w}": {} for s, w in NESTED}
    for f in range(k):
        names = {s: _register(s, f) for s in {s for s, _ in NESTED if s != "-"}}
        for src, _, chip in chips:
            if folds[chip.name] != f:
                continue
            teacher = probs4(chip, "ukis-csmask")
            student = {s: probs4(chip, n) for s, n in names.items()}
            for s, w in NESTED:
                codes = ensemble_codes(student.get(s, teacher), teacher, w)
                accuracy.add_counts(out[f"{s}@{w}"], (src, f), accuracy._chip_counts(chip, codes))
    return out


def nested_choice(totals: dict, k: int) -> dict:
    """Rule 2026-12-04d: per fold the candidate chosen on the other folds, and the nested
    estimate (the chosen candidates' held-out scores, summarised over folds)."""

    def mean_on(cand: str, fs: list[int], src: str, name: str) -> float:
        vals = [accuracy._fold_scores(totals[cand][(src, f)], src)[name] for f in fs]
        return float(np.nanmean(vals))

    def choose(fs: list[int]) -> str:  # the best on folds fs, false alarms no higher there
        fa = mean_on(f"-@{0.0}", fs, "clear", "false_alarm")
        ok = [c for c in totals if mean_on(c, fs, "clear", "false_alarm") <= fa]
        return max(ok, key=lambda c: (mean_on(c, fs, "oncloudn", "cloud_f1")
                                      + mean_on(c, fs, "l8biome", "cloud_f1")) / 2)  # fmt: skip

    chosen, held = {}, {}
    for f in range(k):
        chosen[f] = choose([g for g in range(k) if g != f])
        held.update({key: v for key, v in totals[chosen[f]].items() if key[1] == f})
    every = choose(list(range(k)))
    return {"chosen": chosen, "on_all_folds": every, "estimate": accuracy.summarise(held, k)}


def _sha(path: Path) -> str:
    from xcloud.models._registry import sha256_file

    return sha256_file(path)


def _scored(name: str, compute, weights: list[str] | None = None) -> dict:
    """``compute()``'s fold totals, kept in ``runs/cv/scores/<name>.json`` for the same
    ``weights`` (their sha256), so that a rerun scores only what changed."""
    path = RUNS / "scores" / f"{name}.json"
    if path.exists():
        kept = json.loads(path.read_text())
        if kept["weights"] == weights:
            return {(s, int(f)): v for s, f, v in kept["totals"]}
    totals = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [(s, f, v) for (s, f), v in totals.items()]
    path.write_text(json.dumps({"weights": weights, "totals": rows}))
    return totals


def _workers(jobs: list[tuple[str, int]], held: dict[int, list[str]], k: int, n: int) -> None:
    """Run the unfinished ``jobs`` in ``n`` worker processes (each takes every n-th job)."""
    todo = [j for j in jobs if not export_of(*j).exists()]
    if not todo:
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "folds.json").write_text(json.dumps({str(f): v for f, v in held.items()}))
    procs = []
    for w in range(min(n, len(todo))):
        mine = ",".join(f"{s}:{f}" for s, f in todo[w::n])
        log = open(RUNS / f"worker{w}.log", "a")  # noqa: SIM115 - held open for the child
        cmd = [sys.executable, __file__, "--worker", mine, "--folds", str(k),
               "--steps", str(RECIPE["steps"])]  # fmt: skip
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(
                f"a training worker failed (exit {p.returncode}): see {RUNS}/worker*.log"
            )


def _speed(sizes: list[str]) -> dict[str, float]:
    """Mpx/s of each size and of ukis-csmask on one image, side by side (2 threads)."""
    import fine_speed

    img = fine_speed._image(2048)
    out = {"ukis-csmask": fine_speed.time_ukis(img, 2, 2)}
    for size in sizes:
        out[size] = fine_speed.time_fine(img, 2, 2, name=_register(size, 0))
    return out


def table(res: dict) -> str:
    ref = res["models"]["ukis-csmask"]
    rows = ["| model | params | On Cloud N cloud F1 | L8 Biome cloud F1 | L8 Biome shadow F1 "
            "| clear false alarms | Mpx/s | meets |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def cell(r, src, name, pct=False):
        s = r[src]["summary"][name]
        f = (lambda v: f"{100 * v:.2f} %") if pct else (lambda v: f"{v:.3f}")
        return f"{f(s['mean'])} ({f(s['min'])}-{f(s['max'])})"

    for name, r in res["models"].items():
        rows.append(
            f"| {name} | {r.get('parameters', '')} | {cell(r, 'oncloudn', 'cloud_f1')} | "
            f"{cell(r, 'l8biome', 'cloud_f1')} | {cell(r, 'l8biome', 'shadow_f1')} | "
            f"{cell(r, 'clear', 'false_alarm', True)} | {res['speed'].get(name, float('nan')):.2f}"
            f" | {'' if r is ref else ('yes' if r['meets'] else 'no')} |"
        )
    return "\n".join(rows)


def meets(r: dict, ref: dict, mpx: float | None = None, ref_mpx: float | None = None) -> bool:
    """Rule 2026-12-04b's targets: at least ukis-csmask's cross-validated cloud F1 on each
    labelled source and shadow F1 on L8 Biome, no more false alarms, and, given the speeds,
    3x its Mpx/s (an ensemble, rules 2026-12-04c and d, has no speed target)."""

    def m(x, src, name):
        return x[src]["summary"][name]["mean"]

    return (
        all(m(r, s, "cloud_f1") >= m(ref, s, "cloud_f1") for s in ("oncloudn", "l8biome"))
        and m(r, "l8biome", "shadow_f1") >= m(ref, "l8biome", "shadow_f1")
        and m(r, "clear", "false_alarm") <= m(ref, "clear", "false_alarm")
        and (mpx is None or ref_mpx is None or mpx >= 3 * ref_mpx)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="m,s,l")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--steps", type=int, default=RULE_STEPS, help="other than the rule's: a smoke run"
    )
    p.add_argument("--nested", action="store_true", help="rule 2026-12-04d (after training)")
    p.add_argument(
        "--start-from", type=int, default=None,
        help="start each run from the checkpoint of the run with this many steps (rule 2026-12-04e)",
    )  # fmt: skip
    p.add_argument("--worker", help=argparse.SUPPRESS)  # size:fold,... (one worker's jobs)
    args = p.parse_args()
    RECIPE["steps"] = args.steps
    if args.worker:
        held = {int(f): v for f, v in json.loads((RUNS / "folds.json").read_text()).items()}
        for job in args.worker.split(","):
            size, fold = job.split(":")
            train_one(size, int(fold), args.folds, held[int(fold)])
        return
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; expected some of {sorted(SIZES)}")
    k = args.folds
    chips, folds = accuracy.fold_assignment(k)
    held = {f: sorted(n for n, g in folds.items() if g == f) for f in range(k)}
    jobs = [(s, f) for s in sizes for f in range(k)]
    if args.start_from:
        start_from([j for j in jobs if not export_of(*j).exists()], args.start_from)
    _workers(jobs, held, k, args.jobs)
    if args.nested:
        return _nested(chips, folds, k)
    res: dict = {"k": k, "recipe": RECIPE, "sizes": SIZES, "models": {}}
    ukis = _scored("ukis-csmask", lambda: accuracy.fold_totals(chips, folds, "ukis-csmask"))
    res["models"]["ukis-csmask"] = accuracy.summarise(ukis, k)
    ensemble = _Ensemble()
    for size in sizes:

        def students(size=size, fn=None) -> dict:
            out: dict = {}
            for f in range(k):
                name = _register(size, f)
                out.update(accuracy.fold_totals(chips, folds, name, only=f, predict_fn=fn))
            return out

        digest = [_sha(export_of(size, f)) for f in range(k)]
        totals = _scored(f"fine-{size}{tag()}", students, digest)
        both = _scored(f"ensemble-{size}{tag()}", lambda s=size: students(s, ensemble), digest)
        card = json.loads(export_of(size, 0).with_suffix(".json").read_text())
        res["models"][f"fine-{size}"] = {"parameters": card["parameters"],
                                         **accuracy.summarise(totals, k)}  # fmt: skip
        res["models"][f"ensemble-{size}"] = accuracy.summarise(both, k)
    speed = _speed(sizes)
    res["speed"] = {"ukis-csmask": speed["ukis-csmask"],
                    **{f"fine-{s}": speed[s] for s in sizes}}  # fmt: skip
    ref = res["models"]["ukis-csmask"]
    for name, r in res["models"].items():
        if name.startswith("fine-"):
            r["meets"] = meets(r, ref, res["speed"][name], res["speed"]["ukis-csmask"])
        elif name.startswith("ensemble-"):
            r["meets"] = meets(r, ref)
    print(table(res))
    out = accuracy.RESULTS / f"cv_train{tag()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "cv_train", "machine": machine_info(),
                               "protocol": "docs/cv-protocol.md, rule 2026-12-04b", **res},
                              indent=2, default=float))  # fmt: skip
    print(f"wrote {out}")


def _nested(chips, folds, k: int) -> None:
    totals = nested_totals(chips, folds, k)
    res = nested_choice(totals, k)
    res["candidates"] = {c: accuracy.summarise(t, k) for c, t in totals.items()}
    ref = res["candidates"][f"-@{0.0}"]
    res["adopted"] = meets(res["estimate"], ref)
    print("chosen per fold:", res["chosen"], "; on all folds:", res["on_all_folds"])
    for name, r in [*res["candidates"].items(), ("nested estimate", res["estimate"])]:
        print(f"{name:>16}: " + " / ".join(
            f"{r[src]['summary'][m]['mean']:.3f}" for src, m in
            (("oncloudn", "cloud_f1"), ("l8biome", "cloud_f1"), ("l8biome", "shadow_f1"),
             ("clear", "false_alarm"))))  # fmt: skip
    print("adopted:", res["adopted"])
    out = accuracy.RESULTS / "cv_train_nested.json"
    out.write_text(json.dumps({"benchmark": "cv_train_nested", "machine": machine_info(),
                               "protocol": "docs/cv-protocol.md, rule 2026-12-04d",
                               **res}, indent=2, default=str))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
