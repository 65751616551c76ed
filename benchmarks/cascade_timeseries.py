"""The cascade on a time series: speed-up against the share of uniform scenes.

Each time step is a 1024 x 1024 px Sentinel-2 L2A scene made of four real 512 px On Cloud N
chips (``../shared/data/labelled/oncloudn``, CC-BY-4.0), chosen by their human labels:

* ``clear``: iacc, kgqy, kguj, kgzu (labelled 0 % cloud);
* ``overcast``: adwz, adxp, aeaj, holy (labelled 100 % cloud);
* ``nodata-edged``: the clear chips mirrored, with a swath edge: the pixels below the diagonal
  are nodata (0 DN), as at the edge of a Sentinel-2 orbit;
* ``broken``: three sets of four chips labelled 20-80 % cloud (adwp adwu kgqd kgqj; kgvd khcp
  kgrz kgsm; kgrm kgvr khbj khcx).

Stacks of three steps hold 0, 1, 2 or 3 uniform scenes (clear, overcast, nodata-edged) and
broken ones for the rest. Each stack is masked by ``fine`` everywhere and by the cascade with
the same ``fine`` stage (``fine="fine"``: the default's ukis-csmask stage routes nothing,
``benchmarks/route_threshold.py``), routing inside the graph (the overview computed from the
cube), and again with 512 px routing units (``CascadeOptions(unit=512)``; the default on a CPU
is one 256 px tile stride), side by side in one run on this CPU. Printed per stack: seconds,
speed-up, the units that ran ``fine`` (from ``xcloud.route``), pixel agreement, and cloud F1
of both against the labels. Results go to ``benchmarks/results/cascade_timeseries.json``.

Run
---
    .venv/bin/python benchmarks/cascade_timeseries.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import confusion, machine_info, scores  # noqa: E402

#: The larger routing unit measured beside the default (``CascadeOptions(unit=...)``).
BIG_UNIT = 512
CLEAR = ("iacc", "kgqy", "kguj", "kgzu")
OVERCAST = ("adwz", "adxp", "aeaj", "holy")
BROKEN = (
    ("adwp", "adwu", "kgqd", "kgqj"),
    ("kgvd", "khcp", "kgrz", "kgsm"),
    ("kgrm", "kgvr", "khbj", "khcx"),
)
STACKS = {  # uniform scenes: 0, 1, 2, 3 of 3
    "0/3": ("broken0", "broken1", "broken2"),
    "1/3": ("clear", "broken0", "broken1"),
    "2/3": ("clear", "overcast", "broken0"),
    "3/3": ("clear", "overcast", "nodata-edged"),
}


def _chips() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (DN (4, 512, 512), labels 0 clear / 1 cloud / 255)}`` of the On Cloud N chips."""
    from xcloud.train.data import load_oncloudn

    chips = load_oncloudn(split="train") + load_oncloudn(split="val")
    # training codes: 4 = cloud (incl. thin), 5 = clear (incl. shadow); images are reflectance
    return {
        c.name: (
            np.round(np.nan_to_num(c.image) * 1e4).astype(np.uint16),
            np.where(c.label == 4, 1, np.where(c.label == 5, 0, 255)).astype(np.uint8),
        )
        for c in chips
    }


def _scene(chips: dict, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    a, b, c, d = (chips[n] for n in names)
    img = np.concatenate([np.concatenate([a[0], b[0]], -1), np.concatenate([c[0], d[0]], -1)], -2)
    lab = np.concatenate([np.concatenate([a[1], b[1]], -1), np.concatenate([c[1], d[1]], -1)], -2)
    return img, lab


def scenes() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    chips = _chips()
    out = {"clear": _scene(chips, CLEAR), "overcast": _scene(chips, OVERCAST)}
    for k, names in enumerate(BROKEN):
        out[f"broken{k}"] = _scene(chips, names)
    img, lab = out["clear"]
    img, lab = img[..., ::-1, ::-1].copy(), lab[::-1, ::-1].copy()
    yy, xx = np.mgrid[:1024, :1024]
    edge = yy > xx + 200  # the swath edge, a diagonal
    img[:, edge], lab[edge] = 0, 255
    out["nodata-edged"] = (img, lab)
    return out


def _dataset(steps: list[np.ndarray]):
    import xarray as xr

    cube = np.stack(steps)  # (time, band, y, x) DN
    n = cube.shape[-1]
    return xr.Dataset(
        {b: (("time", "y", "x"), cube[:, i]) for i, b in enumerate(("B02", "B03", "B04", "B08"))},
        coords={"y": 5e6 - 10.0 * np.arange(n), "x": 3e5 + 10.0 * np.arange(n),
                "time": np.arange(len(steps))},
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    ).chunk({"time": 1, "y": 512, "x": 512})  # fmt: skip


def _f1(pred: np.ndarray, lab: np.ndarray) -> float:
    valid = (lab != 255) & (pred != 255)
    return float(scores(confusion(np.isin(pred, (1, 2)), lab == 1, valid))["f1"])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="timed rounds, median reported")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    import dask

    import xcloud  # noqa: F401  (the .cloud accessor)

    warnings.simplefilter("ignore")
    sc = scenes()
    rows = []
    with dask.config.set(scheduler="threads", num_workers=a.threads):
        _dataset([sc["clear"][0]]).cloud.mask("cascade", fine="fine").compute()  # load models
        for stack, names in STACKS.items():
            ds = _dataset([sc[n][0] for n in names])
            lab = np.stack([sc[n][1] for n in names])
            big = xcloud.CascadeOptions(unit=BIG_UNIT)
            t_fine, t_casc, t_big = [], [], []
            for _ in range(a.repeats):  # interleaved, so drift hits all three
                t0 = time.perf_counter()
                fine = ds.cloud.mask("fine").values
                t_fine.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                casc = ds.cloud.mask("cascade", fine="fine").values
                t_casc.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                casc_big = ds.cloud.mask("cascade", fine="fine", cascade=big).values
                t_big.append(time.perf_counter() - t0)
            routing = ds.cloud.route(fine="fine")
            routing_big = ds.cloud.route(fine="fine", cascade=big)
            tf, tc, tb = (float(np.median(t)) for t in (t_fine, t_casc, t_big))
            rows.append({
                "stack": stack, "scenes": list(names), "fine_s": tf, "cascade_s": tc,
                "speedup": tf / tc,
                "fine_units": float(routing.unit_fine.values.mean()),
                "fine_units_per_step": [float(v) for v in routing.fine_fraction.values],
                "agreement": float((casc == fine).mean()),
                "cloud_f1_fine": _f1(fine, lab), "cloud_f1_cascade": _f1(casc, lab),
                f"unit{BIG_UNIT}": {"cascade_s": tb, "speedup": tf / tb,
                                    "fine_units": float(routing_big.unit_fine.values.mean()),
                                    "agreement": float((casc_big == fine).mean())},
            })  # fmt: skip
            r = rows[-1]
            rb = r[f"unit{BIG_UNIT}"]
            print(f"{stack}  {' + '.join(names):32s} fine {tf:5.1f} s  cascade {tc:5.1f} s  "
                  f"{r['speedup']:4.2f}x  units to fine {r['fine_units']:5.1%}  agreement "
                  f"{r['agreement']:.3%}  cloud F1 {r['cloud_f1_fine']:.3f} / "
                  f"{r['cloud_f1_cascade']:.3f}; {BIG_UNIT} px units {rb['speedup']:4.2f}x, "
                  f"{rb['fine_units']:5.1%} to fine, agreement {rb['agreement']:.3%}", flush=True)  # fmt: skip
    out = {"benchmark": "cascade_timeseries", "machine": machine_info(), "rows": rows,
           "repeats": a.repeats}  # fmt: skip
    path = Path(__file__).parent / "results" / "cascade_timeseries.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
