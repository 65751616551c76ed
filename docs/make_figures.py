"""Make the figures under docs/ (``python docs/make_figures.py``; a few seconds on a CPU).

``docs/routing.png``: how the cascade routes a real scene. The input is a 512 x 1280 px
Sentinel-2 mosaic: on the left the bundled sample (On Cloud N chip ``adwp``, broken cumulus,
CC-BY-4.0, Radiant Earth Foundation, DrivenData, Microsoft); in the middle a cloud-free
SEN12MS-CR patch and its mirror images (Ebel et al., CC-BY-4.0; from ``../shared/data``, the
On Cloud N test chip ``jaag`` where that is absent); on the right a strip of nodata, as
outside a swath. All contain modified Copernicus Sentinel data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import xarray as xr  # noqa: E402

import xcloud  # noqa: E402,F401
from xcloud.data import open_sample  # noqa: E402
from xcloud.plot import plot_routing  # noqa: E402

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BANDS = ("B02", "B03", "B04", "B08")


def mosaic() -> xr.Dataset:
    sample = open_sample(chunks=None).isel(time=0)
    left = np.stack([sample[b].values for b in BANDS]).astype(np.float32) / 1e4
    clear = ROOT.parent / "shared" / "data" / "clear" / "sen12mscr" / "ROIs1970_fall_139_p839.tif"
    if clear.exists():  # 13 bands B01 .. B08 B8A B09 .. B12: B02 B03 B04 B08 are bands 2 3 4 8
        with rasterio.open(clear) as src:
            x = src.read([2, 3, 4, 8]).astype(np.float32) / 1e4
    else:
        chip = []
        for b in BANDS:
            with rasterio.open(ROOT / "tests" / "data" / "oncloudn_jaag" / f"{b}.tif") as src:
                chip.append(src.read(1))
        x = np.stack(chip).astype(np.float32) / 1e4
    top = np.concatenate([x, x[..., ::-1]], axis=-1)
    middle = np.concatenate([top, top[..., ::-1, :]], axis=-2)
    outside = np.full((len(BANDS), 512, 256), np.nan, np.float32)
    full = np.concatenate([left, middle, outside], axis=-1)
    ny, nx = full.shape[-2:]
    return xr.Dataset(
        {b: (("y", "x"), full[i]) for i, b in enumerate(BANDS)},
        coords={"y": 10.0 * np.arange(ny)[::-1], "x": 10.0 * np.arange(nx)},
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    )


def routing_png(path: Path = DOCS / "routing.png") -> Path:
    ds = mosaic()
    routing = ds.cloud.route("cascade")
    mask = ds.cloud.mask("cascade", routing=routing)
    fig, axs = plt.subplots(2, 1, figsize=(10, 8.4), constrained_layout=True)
    plot_routing(routing, background=ds, ax=axs[0])
    ds.cloud.plot_rgb(mask=mask, ax=axs[1], title="cascade mask over true colour")
    fig.savefig(path, dpi=70)
    plt.close(fig)
    print(
        f"wrote {path}: fine fraction {float(routing.fine_fraction):.0%}, "
        f"trusted cells {float(routing.trusted.mean()):.0%}"
    )
    return path


if __name__ == "__main__":
    routing_png()
