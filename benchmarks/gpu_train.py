"""Train fine.v6's stage on a GPU, time it, and validate the result beside the CPU run's weights.

fine.v6 (shipped until fine.v12, which is the same stage without the synthetic composites) was
made by ``benchmarks/train_default.py --only fine-v6`` on this project's 2-core CPU: 573 s for its
3000 steps (its card's ``training.wall_s``). This script runs the same stage, with the same data,
configuration and seed, on a CUDA device, and then puts the weights it made through the same
validation as the CPU run's, beside them and ukis-csmask.

Three steps, because the GPU machine has neither ``shared/data`` (nor rasterio to read it) nor
ukis-csmask (the teacher):

1. ``--prepare DIR`` (where the data are): builds the stage's training data exactly as
   :func:`xcloud.train.cli.run_fine` does (label cleaning, partial shadow labels, the teacher's
   soft predictions) and writes it with the configuration and the ``fine.v1`` weights it starts
   from in two parts, ``DIR/part0`` and ``DIR/part1`` (one GPU call carries at most 64 MiB: the
   first part travels in a call of its own and is copied aside there). Images that are
   reflectance x 10000 integers travel as uint16 (restored exactly); the rest (L8 Biome's float
   TOA reflectance, the Landsat 8 xarray-spatial scene) and the teacher's probabilities travel
   as float16: the one difference from the CPU run's inputs (rounding at most 2^-11 relative;
   the largest absolute error is printed).
2. ``--inputs DIR --out RUN`` (on the GPU): trains, writes ``RUN/fine.gpu.safetensors`` and
   ``RUN/gpu_train.json`` (wall time, steps, loss history summary, device).
3. ``--evaluate RUN`` (here again): validation metrics of the GPU-trained weights, the CPU run's
   (``--reference``, default ``runs/fine_v6/export/fine.v6.safetensors``, where
   ``train_default.py --only fine-v6`` writes it, with its card beside it) and ukis-csmask on the
   held-out split, side by side; written to ``benchmarks/results/gpu_train.json``.

Run
---
    .venv/bin/python benchmarks/gpu_train.py --prepare gpu_in
    python benchmarks/gpu_train.py --inputs /tmp/part0 gpu_in/part1 --out $OUT   # on the GPU
    .venv/bin/python benchmarks/gpu_train.py --evaluate <folder with what came back>
"""

from __future__ import annotations

import argparse
import json
import lzma
import pickle
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import machine_info  # noqa: E402
from gpu import as_dn, unpack  # noqa: E402

PACK = "fine_v6_data.pkl.xz"
INIT = "fine.v1.safetensors"
#: sources of each carried part (a GPU call carries at most 64 MiB): the teacher-only scenes, then
#: the rest with the configuration and the initial weights
PARTS = (("unlabelled:",), ("oncloudn", "l8biome", "synthetic"))


def _pack_array(a: np.ndarray) -> np.ndarray:
    """uint16 where ``a`` is reflectance x 10000 integers (restored exactly), else float16."""
    dn = as_dn(a)
    return a.astype(np.float16) if dn is None else dn


def prepare(out: Path, data_root: str | None) -> None:
    from train_default import FINE_V6

    from xcloud.train.cli import fine_training_data
    from xcloud.train.loop import TrainConfig

    cfg, data, *_ = fine_training_data(TrainConfig(**FINE_V6), data_root)
    write_parts(out, dict(FINE_V6, source_weights=cfg.source_weights), data)


def write_parts(out: Path, conf: dict, data: dict) -> None:
    """Pack ``data`` (``{source: scenes}`` as :func:`~xcloud.train.loop.train_fine` takes it)
    into the :data:`PARTS` folders ``out/part<i>``, with ``conf`` (a ``TrainConfig``'s fields)
    and its ``init`` weights in the last part."""
    # a source in no part would be left out of the run without a word: refuse before writing
    missing = [k for k in data if not k.startswith(tuple(p for ps in PARTS for p in ps))]
    if missing:
        raise ValueError(f"sources in no part of {PARTS}: {missing}")
    worst = 0.0
    packed: dict[str, list] = {}
    for key, scenes in data.items():
        packed[key] = []
        for s in scenes:
            img = _pack_array(s.image)
            soft = None if s.soft is None else s.soft.astype(np.float16)
            for a, b in ((img, s.image), (soft, s.soft)):
                if a is not None and a.dtype == np.float16:
                    worst = max(worst, float(np.abs(unpack(a) - b).max()))
            packed[key].append(replace(s, image=img, soft=soft))
    for key, scenes in packed.items():
        print(f"{key}: {len(scenes)} scenes, dtypes {sorted({s.image.dtype.name for s in scenes})}")
    print(f"largest float16 rounding error: {worst:.2e}")
    for i, prefixes in enumerate(PARTS):
        part = out / f"part{i}"
        part.mkdir(parents=True, exist_ok=True)
        keys = [k for k in packed if k.startswith(prefixes)]
        with lzma.open(part / PACK, "wb", preset=6) as f:
            pickle.dump({"config": conf, "data": {k: packed[k] for k in keys}, "order": list(packed),
                         "float16_max_abs_error": worst}, f)  # fmt: skip
        if i == len(PARTS) - 1:
            shutil.copy(conf["init"], part / INIT)
        for p in sorted(part.iterdir()):
            what = ", ".join(keys) if p.name == PACK else "init"
            print(f"{p}: {p.stat().st_size / 1e6:.1f} MB ({what})")


def train(inputs: list[Path], out: Path, device: str, steps: int | None = None) -> dict:
    import torch
    from safetensors.torch import save_file

    from xcloud.train.loop import TrainConfig, train_fine

    packs = [d / PACK for d in inputs]
    inits = [d / INIT for d in inputs if (d / INIT).exists()]
    if not all(p.exists() for p in packs) or not inits or len(packs) != len(PARTS):
        raise SystemExit(
            f"need the {len(PARTS)} part folders that benchmarks/gpu_train.py --prepare DIR wrote "
            f"(DIR/part0 ... DIR/part{len(PARTS) - 1}), got {[str(d) for d in inputs]}"
        )
    t0 = time.perf_counter()
    data: dict = {}
    for p in packs:
        with lzma.open(p, "rb") as f:
            pack = pickle.load(f)
        data.update({
            k: [replace(s, image=unpack(s.image), soft=unpack(s.soft)) for s in v]
            for k, v in pack["data"].items()
        })  # fmt: skip
    # the sources in run_fine's order: the batch sampler draws by position, so the same seed
    # gives the same sequence of batches only in the same order
    data = {k: data[k] for k in pack["order"] if k in data}
    load_s = time.perf_counter() - t0
    missing = set(pack["config"]["source_weights"]) - set(data)
    if missing:
        raise SystemExit(f"sources missing from the parts given: {sorted(missing)}")
    # the run folder (checkpoints every 250 steps, loss history) goes back with the results even
    # if the call is cut off; threads: the machine's, for the few CPU-side torch ops
    conf = dict(pack["config"], init=str(inits[0]), device=device, out=str(out / "run"),
                threads=torch.get_num_threads())  # fmt: skip
    if steps is not None:  # a shorter run, to try the script
        conf["steps"] = steps
    cfg = TrainConfig(**conf)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    model, summary = train_fine(data, cfg, log=print)
    wall = time.perf_counter() - t
    save_file({k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()},
              str(out / "fine.gpu.safetensors"))  # fmt: skip
    hist = np.load(Path(cfg.out) / "history.npy")
    k = max(1, len(hist) // 10)
    res = {
        "machine": machine_info(),
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "torch": torch.__version__,
        "load_s": load_s,
        "train_wall_s": wall,
        "loop_s": summary["wall_s"],
        "steps": summary["steps_done"],
        "s_per_step": summary["wall_s"] / max(1, summary["steps_done"]),
        "loss_first_tenth": float(hist[:k, 1].mean()),
        "loss_last_tenth": float(hist[-k:, 1].mean()),
        "float16_max_abs_error": pack["float16_max_abs_error"],
        "config": cfg.to_json(),
    }
    (out / "gpu_train.json").write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "config"}, indent=1))
    return res


def evaluate(run: Path, reference: Path, data_root: str | None, threads: int, out: Path) -> dict:
    import warnings

    from safetensors.torch import load_file

    from xcloud.models.fine import FineNet
    from xcloud.train.cli import load_validation
    from xcloud.train.evaluate import evaluate_all, format_table, predict_torch, predict_ukis

    if not reference.exists():
        raise SystemExit(
            f"reference weights {reference} not found: run benchmarks/train_default.py --only "
            "fine-v6 (or pass --reference)"
        )
    nets = {}
    for key, path in (("gpu", run / "fine.gpu.safetensors"), ("cpu", reference)):
        nets[key] = FineNet()
        nets[key].load_state_dict(load_file(str(path)))
        nets[key].eval()
    val = load_validation(data_root)
    predictors = {"fine.v6 CPU": predict_torch(nets["cpu"], threads=threads),
                  "fine GPU run": predict_torch(nets["gpu"], threads=threads),
                  "ukis-csmask": predict_ukis}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluate_all(predictors, val)
    print(format_table(metrics))
    run_info = json.loads((run / "gpu_train.json").read_text())
    card = json.loads(reference.with_suffix(".json").read_text())
    cpu_wall = card["training"]["wall_s"]
    res = {"gpu_run": run_info, "cpu_run_wall_s": cpu_wall,
           "cpu_run_steps": card["training"]["steps_done"],
           "speedup_over_cpu_run": cpu_wall / run_info["loop_s"], "validation_metrics": metrics}  # fmt: skip
    print(
        f"\n{run_info['gpu']}: {run_info['steps']} steps in {run_info['loop_s']:.0f} s "
        f"({run_info['s_per_step']:.3f} s/step); the CPU run (fine.v6, this project's 2-core CPU): "
        f"{card['training']['steps_done']} steps in {cpu_wall:.0f} s: "
        f"{res['speedup_over_cpu_run']:.2f}x"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"results: {out}")
    return res


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--prepare", metavar="DIR", help="write the carried inputs here and stop")
    g.add_argument(
        "--inputs",
        metavar="DIR",
        nargs="+",
        help="train from the part folders --prepare wrote (DIR/part0 DIR/part1)",
    )
    g.add_argument("--evaluate", metavar="RUN", help="validate the weights a GPU run wrote")
    p.add_argument("--out", default="gpu_train_out", help="with --inputs: where results go")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=None, help="with --inputs: fewer steps, to try it")
    p.add_argument("--data", default=None, help="shared data root (default: $XCLOUD_DATA)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--reference",
        default="runs/fine_v6/export/fine.v6.safetensors",
        help="with --evaluate: the CPU run's weights (card beside them)",
    )
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "gpu_train.json"))
    args = p.parse_args(argv)
    if args.prepare:
        prepare(Path(args.prepare), args.data)
    elif args.inputs:
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit(
                "benchmarks/gpu_train.py --inputs needs a CUDA device; torch sees none"
            )
        train([Path(d) for d in args.inputs], Path(args.out), args.device, args.steps)
    else:
        evaluate(
            Path(args.evaluate), Path(args.reference), args.data, args.threads, Path(args.results)
        )


if __name__ == "__main__":
    main()
