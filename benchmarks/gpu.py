"""The CUDA path on a GPU: inference speed and bf16 agreement, and the training loop's step time.

Needs a CUDA device. Measured side by side in one run, on one machine:

* **Inference** through ``ds.cloud.mask`` on two cubes of real pixels, dask-chunked
  (``--chunk`` px, threaded scheduler):

  - ``demo``: the bundled Sentinel-2 L2A demo scene (512 px, B02 B03 B04 B08) tiled with
    rotations to ``--size`` px: real pixels, repeated, so a throughput and agreement cube, not
    an accuracy one;
  - ``l8scene``: the whole Landsat 8 scene of ``benchmarks/cascade.py`` (blue, green, red,
    nearly clear), if ``--inputs`` holds it.

  For each: ``fine`` on CUDA (bf16 autocast, up to 16 tiles per model call, shared between the
  tasks that wait for the model, tiles cut and blended on the GPU, chunks split into work
  blocks of ``CUDA_BLOCK_PX``) against the same without the split, and against the pipeline
  before both (tiles cut and blended on the host, chunks as they are; the three alternate), and
  against ``fine`` on the
  same machine's CPU (fp32, all its cores); the pixel agreement of the two masks; ``cascade`` on
  CUDA with its fraction of units that ran ``fine`` and its agreement with CUDA ``fine``, once
  with the overview coarsened from the cube (a cube without overviews: every chunk is read for
  it) and once given the overview in memory (what a COG's overview level gives
  :func:`xcloud.open_stac` cubes, here without the small cost of reading it); and ``cascade``
  with ``routing=False`` on CUDA against CUDA ``fine`` (bit for bit on the CPU, see
  ``tests/integration/test_cascade.py``; on CUDA the shared calls batch other tiles together).
  CUDA timings are the median of ``--repeats`` runs after a warm-up.

* **Profile** (``--skip profile`` leaves it out): one model call by batch size, the pipeline
  with the model replaced by a constant (its CPU-side ceiling), tiles per call 8 / 16 / 32,
  cascade routing units of 256 / 512 / 1024 px.

* **Training**: :func:`xcloud.train.loop.train_fine` with fine.v6's step configuration (batch
  16, crop 128, 4 band-subset groups, coarse factors 2 and 4, lr 1e-3) for ``--train-steps``
  steps on CUDA and ``--cpu-steps`` on the CPU, seconds per step of each. The data are
  synthetic clouds on the clear scenes (small enough to carry in one call); a step's cost
  depends on the batch and the network, not on the source. ``benchmarks/gpu_train.py`` trains
  the real stage on all of its data.

The device machine has no ``shared/data`` and no rasterio, so the inputs are prepared where the
data are and carried: ``--prepare DIR`` writes ``DIR/gpu_inputs.npz`` (the Landsat scene as
uint16 reflectance x 10000) and ``DIR/gpu_clear.pkl`` (the clear scenes as loaded by
:func:`xcloud.train.data.load_clear`). Results go to ``benchmarks/results/gpu.json``.

Run
---
    .venv/bin/python benchmarks/gpu.py --prepare gpu_in          # where shared/data is
    python benchmarks/gpu.py --inputs gpu_in [--size 4096]       # on the GPU machine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _metrics import machine_info  # noqa: E402

S2 = {"bands": ("B02", "B03", "B04", "B08"), "attrs": {"platform": "sentinel-2a"},
      "kw": {"scale": 1e-4, "level": "l2a"}}  # fmt: skip
L8 = {"bands": ("blue", "green", "red"), "attrs": {"platform": "landsat-8"},
      "kw": {"scale": 1e-4, "sensor": "landsat-8-l1"}}  # fmt: skip


def prepare(out: Path) -> None:
    from cascade import _l8scene

    from xcloud.train.data import load_clear

    out.mkdir(parents=True, exist_ok=True)
    img = _l8scene()[0]
    dn = np.clip(np.round(img * 10000), 0, 65535).astype(np.uint16)
    np.savez_compressed(out / "gpu_inputs.npz", l8scene=dn)
    packed = []
    for s in load_clear():  # uint16 DN where that restores the float image exactly (half the size)
        dn = as_dn(s.image)
        packed.append(s if dn is None else replace(s, image=dn))
    with open(out / "gpu_clear.pkl", "wb") as f:
        pickle.dump(packed, f)
    for p in sorted(out.iterdir()):
        print(f"{p}: {p.stat().st_size / 1e6:.1f} MB")


def as_dn(a: np.ndarray) -> np.ndarray | None:
    """``a`` as uint16 reflectance x 10000 if :func:`unpack` restores it exactly, else None.

    >>> as_dn(np.array([0.0, 0.1234], np.float32)).tolist(), as_dn(np.array([0.12345], np.float32))
    ([0, 1234], None)
    """
    q = np.round(a * 10000)
    if not (np.isfinite(q).all() and q.min() >= 0 and q.max() <= 65535):
        return None
    q = q.astype(np.uint16)
    return q if np.array_equal(unpack(q), a) else None


def unpack(a: np.ndarray | None) -> np.ndarray | None:
    """float32 reflectance from what was carried: uint16 DN / 10000, float16 / float32 as is."""
    if a is None:
        return None
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 10000.0
    return a.astype(np.float32, copy=False)


def demo_cube(size: int) -> np.ndarray:
    """The bundled demo scene tiled with rotations: ``(4, size, size)`` uint16 DN."""
    import tifffile

    from xcloud.data import SAMPLE_PATH

    tile = tifffile.imread(SAMPLE_PATH)
    n = -(-size // tile.shape[-1])
    rows = [
        np.concatenate([np.rot90(tile, (r + c) % 4, axes=(1, 2)) for c in range(n)], axis=2)
        for r in range(n)
    ]
    return np.ascontiguousarray(np.concatenate(rows, axis=1)[:, :size, :size])


def _array(dn: np.ndarray, meta: dict, chunk: int):
    import xarray as xr

    arr = xr.DataArray(dn, dims=("band", "y", "x"), coords={"band": list(meta["bands"])})
    arr.attrs.update(meta["attrs"], nodata=0)
    return arr.chunk({"band": -1, "y": chunk, "x": chunk})


def _overview(dn: np.ndarray, meta: dict, f: int = 4):
    """The factor-``f`` overview a COG would hold (nodata-ignoring block means), in memory."""
    import xarray as xr

    from xcloud.inference.cascade import compute_overview

    x = np.where(dn > 0, dn.astype(np.float32), np.float32(np.nan))
    m = compute_overview(x, f)[:-1]  # the last channel is the valid fraction
    ov = xr.DataArray(m, dims=("band", "y", "x"), coords={"band": list(meta["bands"])})
    ov.attrs.update(meta["attrs"])
    return ov


def _time(fn, repeats: int):
    out, times = None, []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times)), times


def inference(name: str, dn: np.ndarray, meta: dict, args) -> dict:
    import torch

    import xcloud  # noqa: F401

    arr = _array(dn, meta, args.chunk)
    mpx = dn.shape[-2] * dn.shape[-1] / 1e6
    kw = dict(meta["kw"])
    small = arr.isel(y=slice(0, 512), x=slice(0, 512))
    gpu = args.device
    for dev in (gpu, "cpu"):  # load the models and warm up, outside the timings
        small.cloud.mask("cascade", fine="fine", device=dev, **kw).compute()
        small.cloud.mask("fine", device=dev, **kw).compute()

    def run(model: str, dev: str, **extra):
        if model == "cascade":  # routing against the stage its router was trained for
            extra.setdefault("fine", "fine")
        return lambda: arr.cloud.mask(model, device=dev, **kw, **extra).values

    all_gpu, all_host, all_unsplit = [], [], []
    for _ in range(args.repeats):  # the three CUDA pipelines alternate, side by side
        fine_gpu, t, _ = _time(run("fine", gpu), 1)
        all_gpu.append(t)
        with _pipeline(tensor_path=False, split=False):
            host, t, _ = _time(run("fine", gpu), 1)
        all_host.append(t)
        with _pipeline(tensor_path=True, split=False):
            unsplit, t, _ = _time(run("fine", gpu), 1)
        all_unsplit.append(t)
    t_gpu, t_host = float(np.median(all_gpu)), float(np.median(all_host))
    t_unsplit = float(np.median(all_unsplit))
    fine_cpu, t_cpu, _ = _time(run("fine", "cpu"), 1)

    def cascade_gpu():
        routing = arr.cloud.route(device=gpu, **kw)
        m = arr.cloud.mask(device=gpu, routing=routing, **kw)
        return m.values, float(routing.fine_fraction.values)

    (casc, frac), t_casc, _ = _time(cascade_gpu, args.repeats)
    ov = _overview(dn, meta)

    def cascade_given_overview():
        routing = arr.cloud.route(device=gpu, cascade=xcloud.CascadeOptions(overview=ov), **kw)
        m = arr.cloud.mask(device=gpu, routing=routing, **kw)
        return m.values, float(routing.fine_fraction.values)

    (casc_ov, frac_ov), t_casc_ov, _ = _time(cascade_given_overview, args.repeats)
    off, t_off, _ = _time(run("cascade", gpu, routing=False), 1)
    valid = fine_cpu != 255
    res = {
        "cube": name, "shape": list(dn.shape), "megapixels": mpx, "chunk": args.chunk,
        "fine_cuda": {"seconds": t_gpu, "all_seconds": all_gpu, "mpx_per_s": mpx / t_gpu},
        "fine_cuda_host_blend": {"seconds": t_host, "all_seconds": all_host,
                                 "mpx_per_s": mpx / t_host,
                                 "tensor_path_speedup": t_host / t_gpu,
                                 "agreement_with_fine_cuda": float((host == fine_gpu).mean())},
        "fine_cuda_unsplit": {"seconds": t_unsplit, "all_seconds": all_unsplit,
                              "mpx_per_s": mpx / t_unsplit, "block_speedup": t_unsplit / t_gpu,
                              "agreement_with_fine_cuda": float((unsplit == fine_gpu).mean())},
        "fine_cpu": {"seconds": t_cpu, "mpx_per_s": mpx / t_cpu,
                     "threads": torch.get_num_threads()},
        "speedup_over_cpu": t_cpu / t_gpu,
        "agreement_cuda_bf16_vs_cpu_fp32": float((fine_gpu == fine_cpu).mean()),
        "class_fractions_cpu": {c: float((fine_cpu[valid] == k).mean())
                                for k, c in enumerate(("clear", "cloud", "thin", "shadow"))},
        "class_fractions_cuda": {c: float((fine_gpu[valid] == k).mean())
                                 for k, c in enumerate(("clear", "cloud", "thin", "shadow"))},
        "cascade_cuda": {"seconds": t_casc, "mpx_per_s": mpx / t_casc, "fine_fraction": frac,
                         "agreement_with_fine_cuda": float((casc == fine_gpu).mean()),
                         "speedup_over_fine_cuda": t_gpu / t_casc},
        "cascade_cuda_overview_given": {
            "seconds": t_casc_ov, "mpx_per_s": mpx / t_casc_ov, "fine_fraction": frac_ov,
            "agreement_with_fine_cuda": float((casc_ov == fine_gpu).mean()),
            "speedup_over_fine_cuda": t_gpu / t_casc_ov,
        },
        "cascade_routing_off_cuda": {
            "seconds": t_off,
            "identical_to_fine_cuda": bool(np.array_equal(off, fine_gpu)),
            "agreement_with_fine_cuda": float((off == fine_gpu).mean()),
        },
    }  # fmt: skip
    return res


@contextlib.contextmanager
def _pipeline(*, tensor_path: bool, split: bool):
    """The CUDA pipeline with stage A's tiles cut, filled and blended on the GPU or in numpy on
    the host with every tile's probabilities copied back (``tensor_path``,
    ``xcloud.inference.core._on_device``), and with the dask chunks split into work blocks of
    ``CUDA_BLOCK_PX`` or not (``split``). Both off is the pipeline before either existed."""
    from xcloud.inference import core

    real_on, real_block = core._on_device, core.CUDA_BLOCK_PX
    if not tensor_path:
        core._on_device = lambda device, job: False
    if not split:
        core.CUDA_BLOCK_PX = 0
    try:
        yield
    finally:
        core._on_device, core.CUDA_BLOCK_PX = real_on, real_block


def _median_call(fn, repeats: int = 5) -> float:
    """Median seconds of ``fn()`` after two warm-up calls, the GPU's queue drained each time."""
    import torch

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def profile(args) -> dict:
    """Where the accelerator's inference time goes.

    * one ``fine`` model call (numpy in, numpy probabilities out, as the pipeline calls it) by
      batch size, on the accelerator and on the CPU;
    * the pipeline with the model replaced by a constant (the CPU-side ceiling of any device);
    * ``fine`` and the cascade with :data:`xcloud.inference.core.CUDA_BATCH` (tiles per shared
      model call) 8, 16 and 32;
    * the cascade with routing units (:data:`xcloud.masking.CUDA_UNIT_PX`) of 256, 512 and
      1024 px, given its overview and coarsening it from the cube;
    * on CUDA, the torch profiler's table of one 64-tile call.
    """
    from xcloud.inference import core
    from xcloud.models import builtin, create_model
    from xcloud.train.data import SENTINEL2, _wl

    gpu = args.device
    dn = demo_cube(args.size)
    x = dn.astype(np.float32) / 10000.0
    wl = _wl(SENTINEL2, S2["bands"])
    rng = np.random.default_rng(0)
    res: dict = {"model_call_s": {}, "null_model_pipeline_s": {}, "cascade_by_batch_s": {}}
    for dev in (gpu, "cpu"):
        model = create_model("fine", dev)
        for b in (1, 8, 16, 64, 128):
            ys = rng.integers(0, x.shape[-2] - 288, b)
            xs = rng.integers(0, x.shape[-1] - 288, b)
            tiles = np.stack([x[:, y : y + 288, c : c + 288] for y, c in zip(ys, xs, strict=True)])

            def call(model=model, tiles=tiles):
                return model.predict(tiles, bands=S2["bands"], wavelengths=wl, level="l2a")

            t = _median_call(call, repeats=3 if dev == "cpu" else 5)
            res["model_call_s"][f"{dev}_batch{b}"] = t
            print(f"model call {dev} batch {b:4d}: {t * 1e3:8.1f} ms "
                  f"({b * 0.0829 / t:7.1f} Mpx/s of tiles)", flush=True)  # fmt: skip
    arr = _array(dn, S2, args.chunk)
    kw = dict(S2["kw"])

    def timed(model, dev, **extra):
        if model == "cascade":  # routing against the stage its router was trained for
            extra.setdefault("fine", "fine")
        f = lambda: arr.cloud.mask(model, device=dev, **kw, **extra).values  # noqa: E731
        f()
        return _time(f, 2)[1]

    real_predict = builtin.FinePredictor.predict

    def constant(self, tiles, *, bands, wavelengths, level):
        p = np.zeros((tiles.shape[0], 4) + tiles.shape[-2:], np.float32)
        p[:, 0] = 1.0
        return p

    real_tensor = builtin.FinePredictor.predict_tensor

    def constant_tensor(self, t, *, wavelengths):
        import torch

        p = torch.zeros((t.shape[0], 4) + tuple(t.shape[-2:]), device=t.device)
        p[:, 0] = 1.0
        return p

    builtin.FinePredictor.predict = constant
    builtin.FinePredictor.predict_tensor = constant_tensor
    try:
        null = res["null_model_pipeline_s"]
        null["fine"] = timed("fine", gpu)
        with _pipeline(tensor_path=False, split=False):
            null["fine_host_blend_unsplit"] = timed("fine", gpu)
        null["cascade_routing_off"] = timed("cascade", gpu, routing=False)
        null["cascade"] = timed("cascade", gpu)
    finally:
        builtin.FinePredictor.predict = real_predict
        builtin.FinePredictor.predict_tensor = real_tensor
    print("null-model pipeline:", res["null_model_pipeline_s"], flush=True)
    l8 = None
    npz = Path(args.inputs) / "gpu_inputs.npz"
    if npz.exists():
        l8 = _array(np.load(npz)["l8scene"], L8, args.chunk)
    default = core.CUDA_BATCH
    try:
        for b in (8, 16, 32):
            core.CUDA_BATCH = b
            by = res["cascade_by_batch_s"].setdefault(f"batch{b}", {})
            by["fine"] = timed("fine", gpu)
            by["cascade"] = timed("cascade", gpu)
            by["cascade_routing_off"] = timed("cascade", gpu, routing=False)
            if l8 is not None:
                for m in ("fine", "cascade"):
                    f = lambda m=m: l8.cloud.mask(m, device=gpu, **L8["kw"]).values  # noqa: E731
                    f()
                    by[f"l8scene_{m}"] = _time(f, 2)[1]
            print(f"batch {b}:", by, flush=True)
    finally:
        core.CUDA_BATCH = default
    # the cascade's routing unit on the accelerator (xcloud.masking.CUDA_UNIT_PX)
    import xcloud.masking as masking

    default_unit = masking.CUDA_UNIT_PX
    cubes = [("demo", arr, dn, S2)] + ([("l8scene", l8, l8.values, L8)] if l8 is not None else [])
    res["cascade_by_unit_s"] = {}
    try:
        for name, a, d, meta in cubes:
            ov = _overview(d, meta)
            f = lambda a=a, meta=meta: a.cloud.mask("fine", device=gpu, **meta["kw"]).values  # noqa: E731
            f()
            by = res["cascade_by_unit_s"].setdefault(name, {"fine": _time(f, 2)[1]})
            for u in (256, 512, 1024):
                masking.CUDA_UNIT_PX = u
                for label, extra in (("overview_given", {"overview": ov}), ("from_cube", {})):

                    def g(a=a, meta=meta, extra=extra):
                        return a.cloud.mask(device=gpu, **meta["kw"], **extra).values

                    g()
                    by[f"unit{u}_{label}"] = _time(g, 2)[1]
            print(f"cascade by unit, {name}:", by, flush=True)
    finally:
        masking.CUDA_UNIT_PX = default_unit
    if gpu == "cuda":  # the kernels of one 64-tile call (where the copy back dominated)
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        model = create_model("fine", gpu)
        t64 = np.ascontiguousarray(np.stack([x[:, :288, :288]] * 64))
        model.predict(t64, bands=S2["bands"], wavelengths=wl, level="l2a")
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            model.predict(t64, bands=S2["bands"], wavelengths=wl, level="l2a")
        table = p.key_averages().table(sort_by="cuda_time_total", row_limit=12)
        res["fine_call64_kernels"] = table
        print(table, flush=True)
    return res


def training(args) -> dict:
    import torch

    from xcloud.train.loop import TrainConfig, train_fine

    pkl = Path(args.inputs) / "gpu_clear.pkl"
    if not pkl.exists():
        raise SystemExit(f"{pkl} not found: run benchmarks/gpu.py --prepare {args.inputs} first")
    with open(pkl, "rb") as f:
        clear = [replace(s, image=unpack(s.image)) for s in pickle.load(f)]
    out: dict = {"scenes": len(clear), "source": "synthetic clouds on the clear scenes"}
    for key, dev, steps in (("accelerator", args.device, args.train_steps),
                            ("cpu", "cpu", args.cpu_steps)):  # fmt: skip
        if steps <= 0:
            continue
        cfg = TrainConfig(
            steps=steps, batch_size=16, crop=128, lr=1e-3, groups=4, coarse_factors=[2, 4],
            adjacency_weight=0.5, distill=0.0, source_weights={"synthetic": 1.0}, seed=0,
            threads=torch.get_num_threads(), device=dev, out=f"/tmp/xcloud_gpu_train_{key}",
            ckpt_every=10**9, time_limit=args.train_time_limit,
        )  # fmt: skip
        t = time.perf_counter()
        _, summary = train_fine({"synthetic": clear}, cfg)
        wall = time.perf_counter() - t
        hist = np.load(Path(cfg.out) / "history.npy")
        k = max(1, len(hist) // 10)
        out[key] = {"device": dev,
            "steps": summary["steps_done"], "wall_s": wall, "loop_s": summary["wall_s"],
            "s_per_step": summary["wall_s"] / max(1, summary["steps_done"]),
            "loss_first_tenth": float(hist[:k, 1].mean()),
            "loss_last_tenth": float(hist[-k:, 1].mean()),
        }  # fmt: skip
        print(f"train {key}: {out[key]}", flush=True)
    if "accelerator" in out and "cpu" in out:
        out["speedup_over_cpu"] = out["cpu"]["s_per_step"] / out["accelerator"]["s_per_step"]
    return out


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prepare", help="write the carried inputs to this folder and stop")
    p.add_argument("--inputs", default="gpu_in", help="folder written by --prepare")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=3000)
    p.add_argument("--cpu-steps", type=int, default=30)
    p.add_argument("--train-time-limit", type=float, default=240.0)
    p.add_argument("--skip", nargs="*", default=[], choices=["demo", "l8scene", "train", "profile"])
    p.add_argument("--device", default="cuda", help="the accelerator (cpu only to try the script)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    args = p.parse_args(argv)
    if args.prepare:
        prepare(Path(args.prepare))
        return None
    warnings.simplefilter("ignore")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA device; torch sees none")
    res: dict = {"machine": machine_info(), "device": args.device,
                 "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
                 "torch": torch.__version__, "inference": []}  # fmt: skip

    def save() -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2))

    cubes = []
    if "demo" not in args.skip:
        cubes.append(("demo", demo_cube(args.size), S2))
    npz = Path(args.inputs) / "gpu_inputs.npz"
    if "l8scene" not in args.skip and npz.exists():
        cubes.append(("l8scene", np.load(npz)["l8scene"], L8))
    for name, dn, meta in cubes:
        r = inference(name, dn, meta, args)
        res["inference"].append(r)
        save()
        print(json.dumps(r, indent=1), flush=True)
    if "profile" not in args.skip:
        res["profile"] = profile(args)
        save()
    if "train" not in args.skip:
        res["training"] = training(args)
        save()
    print(_summary(res))
    print(f"results: {args.out}")
    return res


def _summary(res: dict) -> str:
    """The ratios, side by side, one line each."""
    lines = [f"\n{res['gpu'] or res['device']}, torch {res['torch']}"]
    for r in res["inference"]:
        c, o = r["cascade_cuda"], r["cascade_cuda_overview_given"]
        lines.append(
            f"{r['cube']:8s} fine {r['fine_cuda']['mpx_per_s']:5.1f} Mpx/s "
            f"({r['fine_cuda_host_blend']['tensor_path_speedup']:.2f}x the host-blend, unsplit "
            f"pipeline; {r['fine_cuda_unsplit']['block_speedup']:.2f}x unsplit) = "
            f"{r['speedup_over_cpu']:.2f}x the CPU's {r['fine_cpu']['threads']} threads; "
            f"mask = CPU mask on {100 * r['agreement_cuda_bf16_vs_cpu_fp32']:.2f} %; cascade "
            f"{o['speedup_over_fine_cuda']:.2f}x fine given the overview, "
            f"{c['speedup_over_fine_cuda']:.2f}x coarsening it ({100 * c['fine_fraction']:.1f} % "
            f"of units ran fine)"
        )
    t = res.get("training")
    if t and "accelerator" in t:
        cpu = f", CPU {t['cpu']['s_per_step']:.3f} s" if "cpu" in t else ""
        lines.append(f"training: {t['accelerator']['s_per_step']:.3f} s per step{cpu}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
