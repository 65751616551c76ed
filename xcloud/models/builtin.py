"""xcloud's own models: the SEnSeI-based ``fine`` segmenter and the ``coarse`` patch classifier.

Both are sensor independent: they take any 3 to 14 bands with known wavelengths (Sentinel-2,
Landsat 5/7/8/9, ...), top-of-atmosphere or surface reflectance. Weights ship inside the package
as safetensors, pinned by sha256, next to a JSON model card (architecture, training data,
validation metrics, licences) written by :mod:`xcloud.train.export`.

Importing this module registers the models; torch is imported only when one is loaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import numpy as np

from xcloud.bands import LEVELS
from xcloud.device import PRECISIONS
from xcloud.errors import ParameterError, warn
from xcloud.models._registry import (
    _REGISTRY,
    WEIGHTS_DIR,
    load_cached,
    register_model,
    weights_path,
)
from xcloud.models._spec import CLASSES, ROUTE_CLASSES, ModelSpec

__all__ = [
    "COARSE_SPEC",
    "CoarsePredictor",
    "FinePredictor",
    "create_coarse",
    "route_threshold_for",
]

FINE_WEIGHTS = "fine.v20.safetensors"
FINE_SHA256 = "db76e62c40860e2f9c87edbee98cb477e63b2b215ca653d63ddc61f906b09f32"
COARSE_WEIGHTS = "coarse.v10.safetensors"
COARSE_SHA256 = "5a9204b6fbb79131f297dec8e0f737b09ce371fa7cc9991fd028dae94c1f277e"
#: Licence of the shipped weights: they derive from CC-BY-4.0 data (On Cloud N, SEN12MS-CR),
#: so attribution is required (see each card's ``data_licences``).
LICENCE = "CC-BY-4.0"


#: Pinned hashes of the model cards: a card sets behaviour (the router's threshold, the
#: architecture the weights load into), so it is checked like the weights.
CARD_SHA256 = {
    "fine.v20.json": "c2c10cdbe1941de0636ac7c40267c76c9112bcfa0a2bfc3570445aa5eee9a99a",
    "coarse.v10.json": "1922eb35bd8c3e1b79c82851a05406f4b6c65f46651ec37b8b0a07037b8912be",
}


def _card(weights: str) -> tuple[dict[str, Any], str | None]:
    """The weights' model card if its sha256 is the pinned one, else an empty card and why the
    model is unavailable (the registry raises that when the model is asked for)."""
    name = weights.replace(".safetensors", ".json")
    path = WEIGHTS_DIR / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:  # the registry reports the missing weight file itself
        return {}, None
    got = hashlib.sha256(raw).hexdigest()
    if got != CARD_SHA256.get(name):
        return {}, (
            f"its model card {path} has sha256 {got}, not the pinned {CARD_SHA256.get(name)}; "
            "the package is damaged or was edited: reinstall xcloud"
        )
    return json.loads(raw), None


_FINE_CARD, _FINE_PROBLEM = _card(FINE_WEIGHTS)
_COARSE_CARD, _COARSE_PROBLEM = _card(COARSE_WEIGHTS)


#: The cascade's router, then its fine stages in order of preference: xcloud.mask segments with
#: the first that is installed and finds its bands in the data. ukis-csmask comes first because
#: it is the most accurate mask xcloud can make (README, "Accuracy"); xcloud's own fine takes
#: any 3-14 bands, so it is the stage of last resort.
CASCADE_STAGES = ("coarse", "ukis-csmask", "fine")
#: The router's threshold for each fine stage, each chosen by the coarse card's rule: the
#: lowest threshold whose trusted cells disagree with that stage on <= 0.3 % of the valid pixels
#: (``benchmarks/route_threshold.py``). The router was trained on fine's output; against
#: ukis-csmask its trusted cells disagree on 0.75 % of the pixels even at 0.98 (On Cloud N,
#: L8 Biome, clear and unlabelled scenes pooled), so with ukis-csmask it routes nothing (1.0)
#: until a router is trained for that stage.
ROUTE_THRESHOLDS = {
    "fine": float(_COARSE_CARD.get("route_threshold", 1.0)),
    "ukis-csmask": 1.0,
}


def route_threshold_for(fine_stage: str) -> float:
    """The router's threshold for a fine stage (:data:`ROUTE_THRESHOLDS`): 1.0, routing
    nothing, for a stage it was not chosen for.

    >>> route_threshold_for("ukis-csmask"), route_threshold_for("s2cloudless")
    (1.0, 1.0)
    """
    return float(ROUTE_THRESHOLDS.get(fine_stage, 1.0))


def _load_net(spec: ModelSpec, device: str, cls: type):
    import torch
    from safetensors.torch import load_file

    arch = dict(spec.card.get("architecture", {}))
    arch.pop("class", None)
    net = cls(widths=tuple(arch["widths"]), n_classes=arch["n_classes"])
    net.load_state_dict(load_file(str(weights_path(spec))))
    net = net.eval().to(device)
    if device == "cpu":  # measured ~2x faster on CPU for these small convolutions
        net = net.to(memory_format=torch.channels_last)
    return net


#: Set once the bf16-without-native-support warning has been given in this process.
_WARNED_BF16: list[bool] = []


class _TorchPredictor:
    """Shared plumbing: numpy in, padding to the network's multiple, softmax, numpy out."""

    multiple = 32

    def __init__(self, spec: ModelSpec, net, device: str) -> None:
        self.spec, self.net, self.device = spec, net, device

    def _checked_wavelengths(self, shape: tuple[int, ...], wavelengths) -> np.ndarray:
        """``wavelengths`` as float32 ``(C, 3)`` for tiles of ``shape`` ``(N, C, H, W)``, or a
        clear error naming the shapes."""
        if len(shape) != 4:
            raise ValueError(
                f"model {self.spec.name!r} expects (N, C, H, W) tiles, got shape {tuple(shape)}"
            )
        wl = np.asarray(wavelengths, dtype=np.float32)
        if wl.shape != (shape[1], 3):
            raise ValueError(
                f"model {self.spec.name!r}: wavelengths must be (C, 3) = ({shape[1]}, 3) min / "
                f"centre / max nm, got shape {wl.shape}"
            )
        return wl

    def _logits(self, x: np.ndarray, wavelengths: np.ndarray, precision: str = "auto"):
        import torch

        wl = self._checked_wavelengths(x.shape, wavelengths)
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        return self._forward(t, wl, precision)

    def _forward(self, t, wl: np.ndarray, precision: str = "auto"):
        """Logits of a float32 tensor ``(N, C, H, W)`` already on the model's device, in the
        arithmetic of ``precision`` (:func:`~xcloud.device.autocast_dtype`)."""
        import torch
        import torch.nn.functional as F

        from xcloud.device import autocast_dtype, native_bf16_cpu

        dtype = autocast_dtype(self.device, precision)
        if (
            dtype is not None
            and self.device == "cpu"
            and not _WARNED_BF16
            and not native_bf16_cpu()
        ):
            _WARNED_BF16.append(True)
            warn(
                "precision='bf16' on a CPU without native bf16 (AVX512-BF16 or AMX): torch "
                "emulates it, which is slower than fp32; pass precision='auto' here",
            )

        h, w = t.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            t = F.pad(t, (0, pw, 0, ph), mode="replicate")
        if self.device == "cpu":
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if dtype is not None:
                with torch.autocast(self.device.partition(":")[0], dtype=dtype):
                    logits = self.net(t, torch.from_numpy(wl))
            else:
                logits = self.net(t, torch.from_numpy(wl))
            return logits.float(), h, w


class FinePredictor(_TorchPredictor):
    """The ``fine`` model: per-pixel probabilities of clear / cloud / thin_cloud / cloud_shadow."""

    def predict(
        self,
        x: np.ndarray,
        *,
        bands: tuple[str, ...],
        wavelengths: np.ndarray,
        level: str | None,
        precision: str = "auto",
    ) -> np.ndarray:
        """``(N, C, H, W)`` reflectance -> ``(N, 4, H, W)`` float32 probabilities."""
        import torch

        logits, h, w = self._logits(x, wavelengths, precision)
        probs = torch.softmax(logits, dim=1)[:, :, :h, :w]
        return np.ascontiguousarray(probs.cpu().numpy(), dtype=np.float32)

    def predict_tensor(self, t, *, wavelengths: np.ndarray, precision: str = "auto"):
        """:meth:`predict` for a float32 tensor ``(N, C, H, W)`` already on the model's device;
        the probabilities stay there (float32). The CUDA pipeline blends tiles on the GPU with
        it (:func:`xcloud.inference.core.predict_tiles`)."""
        import torch

        wl = self._checked_wavelengths(tuple(t.shape), wavelengths)
        logits, h, w = self._forward(t, wl, precision)
        return torch.softmax(logits, dim=1)[:, :, :h, :w]


class CoarsePredictor(_TorchPredictor):
    """The ``coarse`` model: routing classes cloudless / overcast / partly_cloudy / nodata.

    Geometry: the input is an *overview* (the scene block-averaged by ``f``, 16 by design), and
    one grid cell covers 16 x 16 overview pixels, i.e. ``16 f`` full-resolution pixels (256 for
    ``f = 16``: one stride of the fine model's tile grid, anchored at pixel 0). Overviews whose
    edges are not multiples of 16 are padded by edge replication; the grid has
    ``ceil(h / 16) x ceil(w / 16)`` cells.
    """

    multiple = 16

    def predict_grid(
        self,
        overview: np.ndarray,
        *,
        bands: tuple[str, ...],
        wavelengths: np.ndarray,
        level: str | None,
    ) -> np.ndarray:
        """``(N, C, h, w)`` overview reflectance -> ``(N, 4, ceil(h/16), ceil(w/16))`` probabilities."""
        import torch

        logits, _, _ = self._logits(overview, wavelengths)
        return np.ascontiguousarray(torch.softmax(logits, dim=1).cpu().numpy(), dtype=np.float32)

    def predict(
        self, x: np.ndarray, *, bands: tuple[str, ...], wavelengths: np.ndarray, level: str | None
    ) -> np.ndarray:
        """Cell probabilities of :meth:`predict_grid` repeated over each cell's overview pixels,
        ``(N, 4, h, w)``, so the model also fits the per-pixel :class:`Predictor` protocol."""
        grid = self.predict_grid(x, bands=bands, wavelengths=wavelengths, level=level)
        h, w = x.shape[-2:]
        full = grid.repeat(self.multiple, axis=2).repeat(self.multiple, axis=3)
        return np.ascontiguousarray(full[:, :, :h, :w])


def _load_fine(spec: ModelSpec, device: str) -> FinePredictor:
    from xcloud.models.fine import FineNet

    return FinePredictor(spec, _load_net(spec, device, FineNet), device)


def _load_cascade(spec: ModelSpec, device: str):
    raise ParameterError(
        "create_model('cascade'): the cascade is a pipeline (the coarse router, then a fine "
        f"stage of {list(spec.stages[1:])}), not one predictor; mask with "
        "xcloud.mask(ds, 'cascade'), or load a stage: create_model('fine'), create_coarse()"
    )


def _load_coarse(spec: ModelSpec, device: str) -> CoarsePredictor:
    from xcloud.models.coarse import CoarseNet

    return CoarsePredictor(spec, _load_net(spec, device, CoarseNet), device)


#: The coarse classifier's spec. It is *not* in the mask-model registry: its classes are routing
#: classes (cloudless / overcast / partly_cloudy / nodata), not mask classes, so it cannot run
#: through ``xcloud.mask`` on its own. The cascade loads it with :func:`create_coarse`.
COARSE_SPEC = ModelSpec(
    name="coarse",
    description="xcloud coarse patch classifier on an overview: cloudless/overcast/partly_cloudy/nodata per cell",
    classes=ROUTE_CLASSES,
    loader=_load_coarse,
    min_bands=3,
    max_bands=14,
    tile_size=256,
    overlap=0,
    levels=LEVELS,
    weights=COARSE_WEIGHTS,
    sha256=COARSE_SHA256,
    licence=LICENCE,
    card=_COARSE_CARD,
    unavailable=_COARSE_PROBLEM,
)


def create_coarse(device: str = "cpu") -> CoarsePredictor:
    """Load the coarse classifier (weights verified by sha256), cached per device with the
    mask models.

    Examples
    --------
    >>> coarse = create_coarse()
    >>> coarse.spec.classes
    ('cloudless', 'overcast', 'partly_cloudy', 'nodata')
    """
    return load_cached(COARSE_SPEC, device)  # type: ignore[return-value]


def _register() -> None:
    # Only models whose trained weights are present in the package get registered.
    if (WEIGHTS_DIR / FINE_WEIGHTS).exists():
        register_model(
            ModelSpec(
                name="fine",
                description="xcloud SEnSeI + U-Net segmenter, any 3-14 bands (Sentinel-2, Landsat): clear/cloud/thin/shadow",
                classes=tuple(CLASSES),
                loader=_load_fine,
                min_bands=3,
                max_bands=14,
                tile_size=288,
                overlap=32,
                levels=LEVELS,
                precisions=PRECISIONS,
                weights=FINE_WEIGHTS,
                sha256=FINE_SHA256,
                licence=LICENCE,
                card=_FINE_CARD,
                unavailable=_FINE_PROBLEM,
            ),
            aliases=(FINE_WEIGHTS.removesuffix(".safetensors"),),  # the weights' tag
        )
    if "fine" in _REGISTRY and (WEIGHTS_DIR / COARSE_WEIGHTS).exists():
        fine = _REGISTRY["fine"]
        register_model(
            replace(
                fine,
                name="cascade",
                description="default: coarse routing on an overview, the most accurate fine "
                "stage (ukis-csmask, else fine) only where cloud cover is mixed",
                loader=_load_cascade,
                weights=None,
                sha256=f"coarse={COARSE_SHA256} fine={FINE_SHA256}",
                stages=CASCADE_STAGES,
                unavailable=_COARSE_PROBLEM or fine.unavailable,
                card={
                    "stages": {"coarse": COARSE_SPEC.card, "fine": fine.card},
                    "route_thresholds": ROUTE_THRESHOLDS,
                    "note": "a pipeline, not one predictor: routing and the choice of fine "
                    "stage happen in xcloud.mask (see xcloud.inference.cascade)",
                },
            )
        )


_register()
