"""``model="s2cloudless"``: Sentinel Hub's LightGBM pixel classifier (CC-BY-SA-4.0), clear/cloud.

Takes the ten Sentinel-2 L1C bands B01 B02 B04 B05 B08 B8A B09 B10 B11 B12. The cloud
probability (after s2cloudless's own disk averaging) is mapped piecewise-linearly so that its
recommended threshold of 0.4 lands on 0.5, where xcloud's arg-max splits clear from cloud. The
dilation step of s2cloudless is not applied (it is a post-processing choice, not a probability).
"""

from __future__ import annotations

import numpy as np

from xcloud.models import ModelSpec, register_model

BANDS = (
    "coastal",
    "blue",
    "red",
    "rededge1",
    "nir",
    "nir08",
    "nir09",
    "cirrus",
    "swir16",
    "swir22",
)
THRESHOLD = 0.4
AVERAGE_OVER = 4  # disk radius in pixels, s2cloudless's default for 60 m; halo covers it


class S2CloudlessPredictor:
    def __init__(self, spec: ModelSpec, device: str):
        from s2cloudless import S2PixelCloudDetector

        self.spec = spec
        self._det = S2PixelCloudDetector(
            threshold=THRESHOLD, all_bands=False, average_over=AVERAGE_OVER, dilation_size=None
        )

    def predict(self, x, *, bands, wavelengths, level):
        idx = [bands.index(b) for b in BANDS]
        data = np.moveaxis(x[:, idx], 1, -1).astype(np.float32)
        p = self._det.get_cloud_probability_maps(data)  # (N, H, W)
        q = np.where(
            p < THRESHOLD, p * 0.5 / THRESHOLD, 0.5 + (p - THRESHOLD) * 0.5 / (1 - THRESHOLD)
        )
        q = np.clip(q, 0.0, 1.0).astype(np.float32)
        return np.stack([1.0 - q, q], axis=1)


def _load(spec: ModelSpec, device: str) -> S2CloudlessPredictor:
    return S2CloudlessPredictor(spec, device)


SPEC = register_model(
    ModelSpec(
        name="s2cloudless",
        description="Sentinel Hub s2cloudless LightGBM pixel classifier, 10 Sentinel-2 L1C bands",
        classes=("clear", "cloud"),
        loader=_load,
        bands=BANDS,
        tile_size=512,
        overlap=32,
        levels=("l1c",),
        licence="CC-BY-SA-4.0 (s2cloudless)",
        extra="peers",
        requires=("s2cloudless", "lightgbm"),
        card={"source": "https://github.com/sentinel-hub/sentinel2-cloud-detector"},
    ),
)
