"""Weight averages of draws of fine.v14's recipe, and the average with a cloud-logit offset set on
the training chips: fine.v18, fine.v19 and fine.v20.

* **fine.v18** (``docs/results/rules-2026-11-26/rule_v18.md``): every floating-point tensor of
  the four draws' state dicts (fine.v14, fine.v14s1, fine.v15, fine.v17; all fine-tuned 3000 steps
  from fine.v1, only the seed differs) averaged with equal weights in float64; integer tensors
  from fine.v14.
* **fine.v19** (``rule_v19.md``): fine.v18 with a constant ``b`` added to the cloud and thin-cloud
  logits, folded into ``full_res.bias`` (FineNet's logits are ``upsample(head(d)) +
  full_res(feats0)``, so the shift is exact). ``b`` is the smallest of 0.0, 0.1, ..., 3.0 whose
  cloud recall on the *training* chips (On Cloud N and L8 Biome train, mean of the two pooled
  recalls) reaches the four draws' mean; no validation data is used.

* **fine.v20** (``rule_v20.md``): the same procedure (average, then offset) on four fresh draws
  of the recipe, seeds 4-7 (``--version v20``); the average alone is not a candidate.

Needs the draws' exports (``benchmarks/train_default.py --only fine-v14``, ``fine-v14-seed1``,
``fine-v15``, ``fine-v17``; for v20 ``fine-v20-seed4`` ... ``fine-v20-seed7``). Writes the
average, the offset model and ``calib_<version>.json`` under ``runs/soup_v18`` (v19) or
``runs/soup_v20``. Their numbers are in the fine card's ``experiments``.

Run
---
    .venv/bin/python benchmarks/soup.py [--version v19|v20]
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np

DRAWS = (
    "runs/fine_v14/export/fine.v14.safetensors",
    "runs/seed1/nosynth_clear/export/fine.v14s1.safetensors",
    "runs/seed2/nosynth_clear/export/fine.v15.safetensors",
    "runs/seed3/nosynth_clear/export/fine.v17.safetensors",
)
DRAWS_V20 = tuple(
    f"runs/seed{k}/nosynth_clear/export/fine.v20s{k}.safetensors" for k in (4, 5, 6, 7)
)
#: version -> (draws, output folder, name of the average, name of the offset model)
VERSIONS = {
    "v19": (DRAWS, Path("runs/soup_v18"), "fine.v18", "fine.v19"),
    "v20": (DRAWS_V20, Path("runs/soup_v20"), "fine.v20-average", "fine.v20"),
}
#: the logit offsets tried for the offset model (fine.v19, fine.v20), smallest first
GRID = tuple(round(0.1 * i, 1) for i in range(31))


def average(paths: tuple[str, ...] = DRAWS) -> dict:
    """The uniform weight average of the state dicts in ``paths``."""
    from safetensors.torch import load_file

    sds = [load_file(p) for p in paths]
    if any(sd.keys() != sds[0].keys() for sd in sds):
        raise ValueError("the draws do not share one architecture")
    out = {}
    for k, v in sds[0].items():
        if v.is_floating_point():
            out[k] = (sum(sd[k].double() for sd in sds) / len(sds)).to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def _train_logits(net, state: dict, data: dict) -> dict:
    """Logits of every training scene, as xcloud.train.evaluate.predict_torch makes them."""
    from xcloud.train.evaluate import scene_logits

    net.load_state_dict(state)
    return {k: [scene_logits(net, s).numpy() for s in scenes] for k, scenes in data.items()}


def recall(logits: dict, data: dict, b: float = 0.0) -> tuple[float, list[float]]:
    """Mean over the datasets of the pooled cloud recall with ``b`` added to the cloud and
    thin-cloud logits."""
    from xcloud.train.evaluate import Confusion

    shift = np.array([0, b, b, 0], np.float32)[:, None, None]
    per = []
    for k, scenes in data.items():
        conf = Confusion()
        for s, lg in zip(scenes, logits[k], strict=True):
            conf.add((lg + shift).argmax(0).astype(np.uint8), s.label)
        per.append(conf.metrics()["cloud_recall"])
    return float(np.mean(per)), per


def main(argv: list[str] | None = None) -> None:
    import argparse

    import torch
    from safetensors.torch import load_file, save_file

    from xcloud.models import create_model
    from xcloud.train.data import load_l8biome, load_oncloudn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--version", choices=sorted(VERSIONS), default="v19")
    version = p.parse_args(argv).version
    draws, out, avg_name, name = VERSIONS[version]
    missing = [d for d in draws if not Path(d).exists()]
    if missing:
        raise SystemExit(
            f"missing draws {missing}: train them first with benchmarks/train_default.py --only "
            "(see this script's docstring)"
        )
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    soup = average(draws)
    save_file(soup, str(out / f"{avg_name}.safetensors"))
    data = {"oncloudn": load_oncloudn(split="train"), "l8biome": load_l8biome(split="train")}
    net = copy.deepcopy(create_model("fine", "cpu").net).eval()
    draw_r = []
    for d in draws:
        r, per = recall(_train_logits(net, load_file(d), data), data)
        draw_r.append(r)
        print(f"{Path(d).name}: training-chip cloud recall {r:.4f} {np.round(per, 4).tolist()}")
    target = float(np.mean(draw_r))
    logits = _train_logits(net, soup, data)
    trace, chosen = {}, None
    for b in GRID:
        r, per = recall(logits, data, b)
        trace[b] = [r, *per]
        print(f"{avg_name} + {b}: {r:.4f}")
        if r >= target:
            chosen = b
            break
    if chosen is None:
        raise SystemExit(f"no offset up to {GRID[-1]} reaches the draws' recall {target:.4f}")
    model = dict(soup)
    bias = model["full_res.bias"].clone()
    bias[1] += chosen
    bias[2] += chosen
    model["full_res.bias"] = bias
    save_file(model, str(out / f"{name}.safetensors"))
    calib = {"draws": list(draws), "draw_r": draw_r, "target": target, "chosen": chosen,
             "trace": trace}  # fmt: skip
    (out / f"calib_{version}.json").write_text(json.dumps(calib, indent=1))
    print(
        f"target {target:.4f}, b = {chosen}; wrote {out}/{avg_name}.safetensors, {name}.safetensors"
    )


if __name__ == "__main__":
    main()
