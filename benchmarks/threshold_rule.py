"""Rule 2026-12-03a (``docs/cv-protocol.md``): should the default's ukis-csmask stage call
shadow only above a probability threshold? Nested selection over the CV folds.

Runs ``benchmarks/accuracy.py --cv`` on the grid (unless ``--from`` names its JSON), then for
each fold picks the threshold that is best on the other folds (mean cloud F1 over the two
labelled sources; clear-scene false alarms no higher than the arg-max's), scores it on the held
out fold, and prints the nested estimate beside the arg-max's and the rule's decision. Writes
``benchmarks/results/threshold_rule.json``.

Run
---
    .venv/bin/python benchmarks/threshold_rule.py [--from benchmarks/results/accuracy_cv.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

GRID = ("cascade", *(f"cascade@cloud_shadow={t}" for t in (0.6, 0.7, 0.8, 0.9)))
RESULTS = Path(__file__).parent / "results"


def _fold(r: dict, src: str, name: str, f: int) -> float:
    return float(r[src]["folds"][f][name])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--from", dest="src", default=None, help="an accuracy_cv.json with the grid")
    a = p.parse_args(argv)
    if a.src is None:
        import accuracy

        cv = accuracy.main(["--cv", "--models", ",".join(GRID)])
    else:
        cv = json.loads(Path(a.src).read_text())
    models, k = cv["models"], cv["k"]

    def cloud(m, f):
        return np.mean([_fold(models[m], s, "cloud_f1", f) for s in ("oncloudn", "l8biome")])

    chosen, held = [], {n: [] for n in ("oncloudn", "l8biome", "shadow", "false_alarm")}
    for f in range(k):
        train = [g for g in range(k) if g != f]
        fa_base = np.mean([_fold(models["cascade"], "clear", "false_alarm", g) for g in train])
        ok = [m for m in GRID
              if np.mean([_fold(models[m], "clear", "false_alarm", g) for g in train]) <= fa_base]  # fmt: skip
        best = max(ok, key=lambda m: (np.mean([cloud(m, g) for g in train]), m == "cascade"))
        chosen.append(best)
        held["oncloudn"].append(_fold(models[best], "oncloudn", "cloud_f1", f))
        held["l8biome"].append(_fold(models[best], "l8biome", "cloud_f1", f))
        held["shadow"].append(_fold(models[best], "l8biome", "shadow_f1", f))
        held["false_alarm"].append(_fold(models[best], "clear", "false_alarm", f))
        print(f"fold {f}: chosen on the other folds: {best}")
    nested = {n: float(np.mean(v)) for n, v in held.items()}
    base = {
        "oncloudn": float(np.mean([_fold(models["cascade"], "oncloudn", "cloud_f1", f) for f in range(k)])),
        "l8biome": float(np.mean([_fold(models["cascade"], "l8biome", "cloud_f1", f) for f in range(k)])),
        "shadow": float(np.mean([_fold(models["cascade"], "l8biome", "shadow_f1", f) for f in range(k)])),
        "false_alarm": float(np.mean([_fold(models["cascade"], "clear", "false_alarm", f) for f in range(k)])),
    }  # fmt: skip
    adopt = (nested["oncloudn"] >= base["oncloudn"] and nested["l8biome"] >= base["l8biome"]
             and nested["shadow"] >= base["shadow"] and nested["false_alarm"] <= base["false_alarm"])  # fmt: skip
    fa_all = np.mean([_fold(models["cascade"], "clear", "false_alarm", f) for f in range(k)])
    ok_all = [m for m in GRID
              if np.mean([_fold(models[m], "clear", "false_alarm", f) for f in range(k)]) <= fa_all]  # fmt: skip
    final = max(ok_all, key=lambda m: (np.mean([cloud(m, f) for f in range(k)]), m == "cascade"))
    for n in base:
        print(f"{n:12s} arg-max {base[n]:.4f}   nested estimate {nested[n]:.4f}")
    print(f"decision: {'adopt ' + final if adopt else 'keep the arg-max'}")
    out = {"rule": "docs/cv-protocol.md, rule 2026-12-03a", "chosen_per_fold": chosen,
           "nested": nested, "argmax": base, "adopt": adopt, "final": final if adopt else None}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "threshold_rule.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
