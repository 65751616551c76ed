"""``model="ukis-csmask"``: DLR's ukis-csmask U-Nets (ONNX; Apache-2.0), clear/cloud/shadow.

The package's own ``CSmask`` class tiles a whole image in memory; here its ONNX sessions run on
xcloud's tiles instead, with the same normalisation and softmax, so the model streams over dask
chunks like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xcloud.bands import LEVELS
from xcloud.models import ModelSpec, register_model

BANDS_4 = ("blue", "green", "red", "nir")
BANDS_6 = BANDS_4 + ("swir16", "swir22")


class UkisPredictor:
    """Runs ukis-csmask's 4- or 6-band model (chosen by the bands present) for L1C or L2A."""

    def __init__(self, spec: ModelSpec, device: str):
        import onnxruntime
        import ukis_csmask

        self.spec = spec
        self._ort = onnxruntime
        self._dir = Path(ukis_csmask.__file__).parent
        self._device = device
        self._sessions: dict[tuple[int, str], tuple] = {}

    def _session(self, nb: int, level: str):
        key = (nb, level)
        if key not in self._sessions:
            from xcloud.device import worker_threads

            path = self._dir / f"model_{nb}b_{level}.onnx"
            meta = json.loads(path.with_suffix(".json").read_text())
            so = self._ort.SessionOptions()
            so.intra_op_num_threads = worker_threads()
            so.inter_op_num_threads = 1
            providers = ["CPUExecutionProvider"]
            if (
                self._device.startswith("cuda")
                and "CUDAExecutionProvider" in self._ort.get_available_providers()
            ):
                providers.insert(0, "CUDAExecutionProvider")
            sess = self._ort.InferenceSession(str(path), sess_options=so, providers=providers)
            stats = meta["data"]["dataset_statistics"]
            mean = np.asarray(stats["img"][0], np.float32)[None, :, None, None]
            std = np.asarray(stats["img"][1], np.float32)[None, :, None, None]
            self._sessions[key] = (sess, tuple(stats["band_names"]), mean, std)
        return self._sessions[key]

    def predict(self, x, *, bands, wavelengths, level):
        nb = 6 if all(b in bands for b in BANDS_6) else 4
        sess, order, mean, std = self._session(nb, level if level in LEVELS else "l1c")
        idx = [bands.index(b) for b in order]
        inp = (x[:, idx].astype(np.float32) - mean) / std
        logits = sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(inp)})[0]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _load(spec: ModelSpec, device: str) -> UkisPredictor:
    return UkisPredictor(spec, device)


SPEC = register_model(
    ModelSpec(
        name="ukis-csmask",
        description="DLR ukis-csmask U-Net (ONNX), 4 or 6 bands, Sentinel-2 / Landsat, L1C or L2A",
        classes=("clear", "cloud", "cloud_shadow"),
        loader=_load,
        bands=BANDS_4,
        optional_bands=("swir16", "swir22"),
        tile_size=256,  # the ONNX graphs are fixed at 256 x 256
        overlap=32,
        levels=LEVELS,
        licence="Apache-2.0 (ukis-csmask)",
        extra=None,  # a core dependency: the default cascade segments with it
        requires=("ukis_csmask", "onnxruntime"),
        card={"source": "https://github.com/dlr-eoc/ukis-csmask"},
    ),
    aliases=("ukis", "csmask"),
)
