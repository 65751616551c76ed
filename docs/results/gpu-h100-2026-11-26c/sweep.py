"""One-off sweep on the GPU: fine by CUDA_BLOCK_PX, cascade by CUDA_UNIT_PX (tensor path on)."""
import json, os, sys, time, warnings
sys.path.insert(0, "benchmarks")
warnings.simplefilter("ignore")
import numpy as np
import gpu as G
import xcloud  # noqa
import xcloud.masking as masking
from xcloud.inference import core
dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
res = {}
cubes = [("demo", G.demo_cube(4096), G.S2)]
npz = "gpu_in/gpu_inputs.npz"
if os.path.exists(npz):
    cubes.append(("l8scene", np.load(npz)["l8scene"], G.L8))
for name, dn, meta in cubes:
    arr = G._array(dn, meta, 2048)
    ov = G._overview(dn, meta)
    kw = meta["kw"]
    arr.isel(y=slice(0, 512), x=slice(0, 512)).cloud.mask("fine", device=dev, **kw).compute()
    r = res.setdefault(name, {})
    for rep in range(3):
        for b in (256, 512, 1024, 0):
            core.CUDA_BLOCK_PX = b
            t = time.perf_counter(); arr.cloud.mask("fine", device=dev, **kw).values
            r.setdefault(f"fine_block{b}", []).append(time.perf_counter() - t)
        core.CUDA_BLOCK_PX = 512
        for u in (256, 512, 1024):
            masking.CUDA_UNIT_PX = u
            t = time.perf_counter(); arr.cloud.mask(device=dev, overview=ov, **kw).values
            r.setdefault(f"cascade_unit{u}_overview_given", []).append(time.perf_counter() - t)
        masking.CUDA_UNIT_PX = 512
    print(name, "chunks 2048:", {k: round(float(np.median(v)), 3) for k, v in r.items()}, flush=True)
json.dump(res, open(os.path.join(os.environ.get("OUT", "/tmp"), "sweep.json"), "w"), indent=1)
