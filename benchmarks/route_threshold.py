"""Choose the cascade router's ``route_threshold`` for a fine stage, by the coarse card's rule.

The rule (the one ``coarse``'s model card applies to ``fine``): a cell is *trusted* when the
router's argmax is cloudless or overcast with probability >= the threshold and the cell is all
valid; its pixels are then filled (clear or cloud) without running the fine stage. The
*disagreement* of a threshold is the share of all valid pixels that lie in trusted cells and
where the fine stage, run everywhere, says something else than the fill. The chosen threshold
is the lowest whose pooled disagreement is <= 0.3 %.

Scenes: every labelled and clear scene of ``benchmarks/accuracy.py --cv`` (On Cloud N, L8
Biome, EuroSAT, SEN12MS-CR) and the unlabelled scenes with blue, green, red and nir
(``landsat8_xrspatial``, ``sen12mscr_cloudy``); per-cell figures do not depend on routing
units or the safety ring, so mosaics are not needed. Printed per source and pooled, written to
``benchmarks/results/route_threshold.json``, with the ceiling any router has on these scenes:
the share of valid pixels in cells (and in whole routing units) where the fine stage's own mask
is uniform, the most the cascade can skip without disagreeing with it; the same with a
tolerance (a cell filled with its majority when at most 0.5, 1 or 2 % of its pixels differ, and
the pixels those fills get wrong), and at other routing unit sizes. Scenes smaller than a unit
count as one unit.

Run
---
    .venv/bin/python benchmarks/route_threshold.py [--fine ukis-csmask]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
LIMIT = 0.003


def scenes():
    """``(source, name, Dataset, sensor)`` for every scene the rule is measured on."""
    import xarray as xr

    from benchmarks.accuracy import all_chips
    from xcloud.train.routing import load_unlabelled

    for source, _, chip in all_chips():
        yield source, chip.name, chip.ds, chip.sensor
    sensors = {"landsat8_xrspatial": "landsat-8-l1", "sen12mscr_cloudy": "sentinel-2a-l1c"}
    for s in load_unlabelled(sources=tuple(sensors)):
        h, w = s.image.shape[1:]
        ds = xr.Dataset(
            {b: (("y", "x"), s.image[i]) for i, b in enumerate(s.bands)},
            coords={"y": -np.arange(h), "x": np.arange(w)},  # row 0 north
        ).chunk({"y": 512, "x": 512})
        yield s.source, s.name, ds, sensors[s.source]


def cell_counts(ds, sensor, fine: str, thresholds) -> dict:
    """Valid pixels, and per threshold the trusted pixels and those the stage disagrees on."""
    import xcloud

    r = ds.cloud.route(
        "cascade", fine=fine, cascade=xcloud.CascadeOptions(route_threshold=0.0), sensor=sensor
    )
    ref = np.asarray(ds.cloud.mask(fine, sensor=sensor).values)
    cls, prob = r["cell_class"].values, r["cell_probability"].values
    trusted0 = r["trusted"].values & (cls <= 1)  # all-valid cells the router calls uniform
    cell = int(r.attrs["cell_size_px"])
    fill = np.where(cls == 1, 1, 0).astype(np.uint8)
    h, w = ref.shape[-2:]

    def big(a):  # (cell grid) -> pixels
        return np.repeat(np.repeat(a, cell, axis=-2), cell, axis=-1)[..., :h, :w]

    valid = ref != 255
    wrong = big(fill) != ref
    out = {"valid": int(valid.sum()), "thresholds": {}}
    out.update(ceiling(ref, cell, int(r.attrs["unit_size_px"])))
    out["by_unit"] = {  # the same at other unit sizes: what smaller units could skip
        u: {t: v["skippable_units"] for t, v in ceiling(ref, cell, u, (0.0, 0.005))["tolerant"].items()}
        for u in UNITS
    }  # fmt: skip
    for t in thresholds:
        tr = big(trusted0 & (prob >= t)) & valid
        out["thresholds"][t] = {"trusted": int(tr.sum()), "disagree": int((tr & wrong).sum())}
    return out


#: Shares of a cell's valid pixels that may differ from its fill (the cascade's agreement
#: target is 99.5 %, so a fill may leave up to 0.5 % of a cube's pixels to the minority).
TOLERANCES = (0.0, 0.005, 0.01, 0.02)
#: Routing unit sizes the ceiling is also given at (the stage's own is 448 px for ukis-csmask).
UNITS = (64, 128, 256, 448, 896)


def ceiling(ref: np.ndarray, cell: int, unit: int, tolerances=TOLERANCES) -> dict:
    """What a perfect router could skip: valid pixels in cells where the fine stage's mask is
    all clear or all cloud but for at most a share ``t`` of their valid pixels (filled with the
    majority; ``t`` = 0: exactly), and in units made only of such cells (or of cells without
    valid pixels), which the cascade can skip whole; with the pixels those fills get wrong.
    Keys ``uniform_cells`` and ``skippable_units`` are for ``t`` = 0; ``tolerant`` has every
    ``t``."""
    h, w = ref.shape[-2:]
    ny, nx = -(-h // cell), -(-w // cell)
    pad = np.full(ref.shape[:-2] + (ny * cell, nx * cell), 255, np.uint8)
    pad[..., :h, :w] = ref
    blocks = pad.reshape(ref.shape[:-2] + (ny, cell, nx, cell))
    n_valid = (blocks != 255).sum(axis=(-3, -1))
    n_clear = (blocks == 0).sum(axis=(-3, -1))
    n_cloud = (blocks == 1).sum(axis=(-3, -1))
    minority = n_valid - np.maximum(n_clear, n_cloud)  # wrong if filled with the majority
    edge = (n_valid > 0) & (n_valid < cell * cell)  # partly nodata: the router never trusts it
    k = unit // cell
    uy, ux = -(-ny // k), -(-nx // k)
    out: dict = {"tolerant": {}}
    for t in tolerances:
        ok = ((minority <= t * n_valid) & ~edge) | (n_valid == 0)
        okp = np.ones(ok.shape[:-2] + (uy * k, ux * k), bool)
        okp[..., :ny, :nx] = ok
        unit_ok = okp.reshape(ok.shape[:-2] + (uy, k, ux, k)).all(axis=(-3, -1))
        in_unit = np.repeat(np.repeat(unit_ok, k, axis=-2), k, axis=-1)[..., :ny, :nx]
        out["tolerant"][t] = {
            "uniform_cells": int((n_valid * (ok & (n_valid > 0))).sum()),
            "skippable_units": int((n_valid * in_unit).sum()),
            "wrong_cells": int((minority * ok).sum()),
            "wrong_units": int((minority * in_unit).sum()),
        }
    out.update({n: out["tolerant"][tolerances[0]][n] for n in ("uniform_cells", "skippable_units")})
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fine", default="ukis-csmask", help="the fine stage (a registry name)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "route_threshold.json"))
    args = p.parse_args(argv)

    import dask

    import xcloud  # noqa: F401  (the accessor)

    warnings.simplefilter("ignore")
    totals: dict[str, dict] = {}
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=2):
        for source, name, ds, sensor in scenes():
            try:
                c = cell_counts(ds, sensor, args.fine, THRESHOLDS)
            except Exception as e:  # a scene the stage cannot take (bands): say so, go on
                print(f"  skip {source}/{name}: {type(e).__name__}: {str(e)[:100]}")
                continue
            for key in (source, "all"):
                tot = totals.setdefault(key, {"valid": 0, "scenes": 0, "thresholds": {},
                                              "uniform_cells": 0, "skippable_units": 0})  # fmt: skip
                for n in ("valid", "uniform_cells", "skippable_units"):
                    tot[n] += c[n]
                for u, v in c["by_unit"].items():
                    d = tot.setdefault("by_unit", {}).setdefault(u, dict.fromkeys(v, 0))
                    for t in v:
                        d[t] += v[t]
                for t, v in c["tolerant"].items():
                    d = tot.setdefault("tolerant", {}).setdefault(t, dict.fromkeys(v, 0))
                    for n in v:
                        d[n] += v[n]
                tot["scenes"] += 1
                for t, v in c["thresholds"].items():
                    d = tot["thresholds"].setdefault(t, {"trusted": 0, "disagree": 0})
                    d["trusted"] += v["trusted"]
                    d["disagree"] += v["disagree"]
    rows = []
    for key, tot in totals.items():
        for t, v in tot["thresholds"].items():
            rows.append({"source": key, "threshold": t, "scenes": tot["scenes"],
                         "trusted": v["trusted"] / max(tot["valid"], 1),
                         "disagreement": v["disagree"] / max(tot["valid"], 1)})  # fmt: skip
    print(f"fine stage {args.fine!r}; {time.perf_counter() - t0:.0f} s")
    print(f"{'source':<20} {'thr':>5} {'trusted px':>11} {'disagreement':>13}")
    for r in rows:
        print(f"{r['source']:<20} {r['threshold']:>5.2f} {r['trusted']:>10.1%} "
              f"{r['disagreement']:>12.3%}")  # fmt: skip
    print(f"\nceiling (a perfect router): valid pixels in cells where {args.fine!r} is uniform, "
          "and in units made only of such cells")  # fmt: skip
    ceilings = {}
    for key, tot in totals.items():
        ceilings[key] = {
            n: tot[n] / max(tot["valid"], 1) for n in ("uniform_cells", "skippable_units")
        }
        print(
            f"{key:<20} {ceilings[key]['uniform_cells']:>10.1%} {ceilings[key]['skippable_units']:>10.1%}"
        )
    print("\nwith a tolerance t (cells filled with their majority if at most t of their valid "
          "pixels differ): skippable share, and the share of valid pixels the fills get wrong")  # fmt: skip
    print(f"{'source':<20} {'t':>6} {'cells':>8} {'wrong':>7} {'units':>8} {'wrong':>7}")
    for key, tot in totals.items():
        ceilings[key]["tolerant"] = {}
        for t, v in tot["tolerant"].items():
            r = {n: v[n] / max(tot["valid"], 1) for n in v}
            ceilings[key]["tolerant"][t] = r
            print(f"{key:<20} {t:>6.3f} {r['uniform_cells']:>8.1%} {r['wrong_cells']:>7.2%} "
                  f"{r['skippable_units']:>8.1%} {r['wrong_units']:>7.2%}")  # fmt: skip
    print("\nunits a perfect router could skip, by unit size (exactly / with t = 0.005)")
    print(f"{'source':<20} " + " ".join(f"{u:>13}" for u in UNITS))
    for key, tot in totals.items():
        by = {
            u: {t: n / max(tot["valid"], 1) for t, n in v.items()}
            for u, v in tot["by_unit"].items()
        }
        ceilings[key]["by_unit"] = by
        print(f"{key:<20} " + " ".join(f"{by[u][0.0]:>6.1%}/{by[u][0.005]:>6.1%}" for u in UNITS))
    ok = [r["threshold"] for r in rows if r["source"] == "all" and r["disagreement"] <= LIMIT]
    chosen = min(ok) if ok else 1.0
    print(f"chosen (lowest threshold with pooled disagreement <= {LIMIT:.1%}): {chosen}")
    out = {"fine": args.fine, "rule": f"lowest threshold with disagreement <= {LIMIT}",
           "chosen": chosen, "rows": rows, "ceiling": ceilings}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
