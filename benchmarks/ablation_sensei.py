"""Paired ablation: does initialising ``fine``'s SEnSeI from the self-supervised pretraining help?

Steps
-----
1. SEnSeI pretraining (:func:`xcloud.train.sensei_pretrain.pretrain_sensei`, estimator +
   discriminator heads on synthetic band descriptors) for a short budget; it writes
   ``sensei_init.pt``, a state dict keyed like ``FineNet`` (``encoder.sensei.*``).
2. ``fine`` trained twice with the FINE_V1 configuration (``benchmarks/train_default.py``) but a
   short, equal step budget and ``time_limit=None`` (step-exact, same seed, so the same batches,
   augmentations and the same random initialisation of every non-SEnSeI weight):

   * ``scratch``: random initialisation (as fine.v1 was trained);
   * ``pretrained``: the same, then ``encoder.sensei.*`` replaced by the pretrained weights through
     the existing ``TrainConfig.init`` option (loaded with ``strict=False`` in ``loop._run``; the
     script checks that every pretrained key exists in ``FineNet`` with the same shape).

3. Both evaluated on the validation split with :func:`xcloud.train.evaluate.evaluate_all`
   (On Cloud N val chips, L8 Biome val), side-by-side table, JSON in
   ``benchmarks/results/ablation_sensei.json``.

One seed per arm: differences of a point or two of F1 may be noise. On 2 CPU threads the
pretraining's default 1000 steps take ~75 s and ``fine`` runs ~4.5-5 steps/s, so 1600 steps per
arm take ~6 min each.

Run
---
    nice -n 5 .venv/bin/python benchmarks/ablation_sensei.py --steps 1600 --out runs/ablation_sensei_1600
        [--pretrain-steps 1000] [--pretrain-time 180] [--data DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.train_default import FINE_V1  # noqa: E402

KEYS = [
    ("oncloudn", "cloud_f1"),
    ("oncloudn", "ba"),
    ("l8biome", "cloud_f1"),
    ("l8biome", "shadow_f1"),
    ("l8biome", "ba"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None)
    p.add_argument("--steps", type=int, default=1600, help="fine steps per arm (equal)")
    p.add_argument("--pretrain-steps", type=int, default=1000)
    p.add_argument("--pretrain-time", type=float, default=180.0, help="pretraining budget, s")
    p.add_argument("--out", default="runs/ablation_sensei")
    p.add_argument("--json", default="benchmarks/results/ablation_sensei.json")
    args = p.parse_args()

    from xcloud.models.fine import FineNet
    from xcloud.train.cli import load_training, load_validation
    from xcloud.train.data import load_clear
    from xcloud.train.evaluate import evaluate_all, format_table, predict_torch
    from xcloud.train.loop import TrainConfig, train_fine
    from xcloud.train.sensei_pretrain import pretrain_sensei

    out = Path(args.out)
    t_all = time.perf_counter()

    # 1. SEnSeI pretraining
    t0 = time.perf_counter()
    clear = load_clear(args.data)
    *_, pre = pretrain_sensei(
        clear,
        steps=args.pretrain_steps,
        seed=FINE_V1["seed"],
        threads=FINE_V1["threads"],
        out=out / "pretrain",
        time_limit=args.pretrain_time,
    )
    pre["wall_s_incl_data"] = time.perf_counter() - t0
    print("pretraining:", json.dumps(pre, indent=1))
    init = out / "pretrain" / "sensei_init.pt"
    init_state = torch.load(init, map_location="cpu")
    ref = FineNet().state_dict()
    bad = [k for k, v in init_state.items() if k not in ref or ref[k].shape != v.shape]
    assert not bad, f"pretrained keys not in FineNet: {bad}"
    assert all(k.startswith("encoder.sensei.") for k in init_state)
    n_sensei = sum(1 for k in ref if k.startswith("encoder.sensei."))
    assert len(init_state) == n_sensei, (len(init_state), n_sensei)

    # 2. two paired fine runs
    (train, _, _), val = load_training(args.data), load_validation(args.data)
    arms: dict[str, dict] = {}
    for arm in ("scratch", "pretrained"):
        cfg_fields = dict(FINE_V1)
        cfg_fields.update(
            steps=args.steps,
            time_limit=None,
            out=str(out / arm),
            ckpt_every=args.steps,
            init=str(init) if arm == "pretrained" else None,
        )
        cfg = TrainConfig(**cfg_fields)
        model, summary = train_fine(train, cfg, log=print)
        # 3. evaluation
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metrics = evaluate_all({arm: predict_torch(model, threads=cfg.threads)}, val)[arm]
        arms[arm] = {
            "steps_done": summary["steps_done"],
            "train_wall_s": summary["wall_s"],
            "eval_wall_s": time.perf_counter() - t1,
            "metrics": metrics,
            "init": cfg.init,
        }
        print(format_table({arm: metrics}))

    # side-by-side table
    lines = [f"{'':<22}{'scratch':>10}{'pretrained':>12}{'diff':>9}"]
    for k in ("steps_done", "train_wall_s"):
        a, b = arms["scratch"][k], arms["pretrained"][k]
        lines.append(f"{k:<22}{a:>10.0f}{b:>12.0f}{'':>9}")
    for d, m in KEYS:
        a, b = arms["scratch"]["metrics"][d][m], arms["pretrained"]["metrics"][d][m]
        lines.append(f"{d + ' ' + m:<22}{a:>10.3f}{b:>12.3f}{b - a:>+9.3f}")
    table = "\n".join(lines)
    print(table)

    result = {
        "question": "fine with SEnSeI initialised from self-supervised pretraining vs from scratch, equal steps",
        "config": {**FINE_V1, "steps": args.steps, "time_limit": None, "out": str(out)},
        "pretraining": {
            **pre,
            "steps_requested": args.pretrain_steps,
            "time_limit": args.pretrain_time,
        },
        "arms": arms,
        "table": table,
        "total_wall_s": time.perf_counter() - t_all,
        "note": "one seed per arm; small differences may be noise",
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
