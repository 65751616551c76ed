"""GPU check: precision= on CUDA (fp32 vs auto bf16 vs the CPU's fp32), after the graph-key fix."""
import json, os, sys, time, warnings
sys.path.insert(0, "benchmarks")
warnings.simplefilter("ignore")
import numpy as np, dask
import gpu as G
import xcloud  # noqa
arr = G._array(G.demo_cube(2048), G.S2, 1024)
kw = G.S2["kw"]
res = {}
def run(dev, prec):
    t = time.perf_counter(); m = arr.cloud.mask("fine", device=dev, precision=prec, **kw).values
    return m, time.perf_counter() - t
for dev, prec in (("cuda", "auto"), ("cuda", "fp32"), ("cuda", "bf16")):
    run(dev, prec)
out = {}
for dev, prec in (("cpu", "auto"), ("cuda", "auto"), ("cuda", "fp32"), ("cuda", "bf16"), ("cuda", "auto"), ("cuda", "fp32")):
    m, t = run(dev, prec); out.setdefault((dev, prec), m); res.setdefault(f"{dev}_{prec}_s", []).append(round(t, 3))
cpu = out[("cpu", "auto")]
for k, m in out.items():
    res[f"agree_{k[0]}_{k[1]}_vs_cpu_fp32"] = float((m == cpu).mean())
res["cuda_bf16_equals_auto"] = bool(np.array_equal(out[("cuda", "auto")], out[("cuda", "bf16")]))
a = arr.cloud.mask("fine", device="cuda", **kw); b = arr.isel(x=slice(None, None, -1)).cloud.mask("fine", device="cuda", **kw)
ra, rb = dask.compute(a, b)
res["together_equal_alone"] = bool(np.array_equal(ra.values, a.values) and np.array_equal(rb.values, b.values))
print(json.dumps(res, indent=1))
json.dump(res, open(os.path.join(os.environ.get("OUT", "/tmp"), "prec.json"), "w"), indent=1)
