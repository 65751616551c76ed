"""Model specifications and the predictor protocol shared by every model.

A :class:`ModelSpec` is pure metadata: what bands a model needs, what it outputs, how it tiles,
which weight file it loads and under what licence. It is cheap to pickle and to tokenize, so it
can travel inside a dask graph; the weights never do (they load once per worker process).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from xcloud.bands import LEVELS

#: Output class codes (CF ``flag_values``) and names (``flag_meanings``).
CLASSES: dict[str, int] = {"clear": 0, "cloud": 1, "thin_cloud": 2, "cloud_shadow": 3}
NODATA: int = 255
#: The router's classes per grid cell (the coarse model's channels, in order).
ROUTE_CLASSES: tuple[str, ...] = ("cloudless", "overcast", "partly_cloudy", "nodata")
#: Overview pixels per router grid cell edge (the coarse network's output stride).
CELL_OVERVIEW_PX: int = 16
FLAG_VALUES: tuple[int, ...] = (*CLASSES.values(), NODATA)
FLAG_MEANINGS: str = " ".join([*CLASSES, "nodata"])
#: What each code means, in the files and catalogues xcloud writes (COG, STAC, ODC flags).
CODE_DESCRIPTIONS: dict[int, str] = {
    CLASSES["clear"]: "neither cloud nor cloud shadow",
    CLASSES["cloud"]: "opaque cloud",
    CLASSES["thin_cloud"]: "semi-transparent cloud (cirrus, haze): the surface shows through",
    CLASSES["cloud_shadow"]: "cloud shadow",
    NODATA: "no valid input pixel",
}


def flags_definition() -> dict[str, Any]:
    """The mask's ``flags_definition`` attribute, as Open Data Cube describes enumerated masks
    (``odc.algo.enum_to_bool(mask, ["cloud", "cloud_shadow"])`` reads it); a fresh copy each
    call, so that no mask's attributes share one dict.

    >>> flags_definition()["cloud_mask"]["values"]["3"]
    'cloud_shadow'
    """
    return {
        "cloud_mask": {
            "bits": list(range(8)),
            "description": "xcloud cloud mask class codes",
            "values": {
                str(code): name
                for code, name in zip(FLAG_VALUES, FLAG_MEANINGS.split(), strict=True)
            },
        }
    }


#: RGBA (0-1) per class code, for plots and the colour tables of written files; nodata clear.
CLASS_COLOURS: dict[int, tuple[float, float, float, float]] = {
    CLASSES["clear"]: (0.20, 0.63, 0.17, 1.0),
    CLASSES["cloud"]: (1.00, 1.00, 1.00, 1.0),
    CLASSES["thin_cloud"]: (0.65, 0.81, 0.89, 1.0),
    CLASSES["cloud_shadow"]: (0.42, 0.24, 0.60, 1.0),
    NODATA: (0.0, 0.0, 0.0, 0.0),
}


class Predictor(Protocol):
    """What the inference core calls. Implemented by every registered model."""

    spec: ModelSpec

    def predict(
        self,
        x: np.ndarray,
        *,
        bands: tuple[str, ...],
        wavelengths: np.ndarray,
        level: str | None,
    ) -> np.ndarray:
        """Class probabilities for a batch of tiles.

        Parameters
        ----------
        x
            ``(N, C, H, W)`` float32 reflectance, finite (nodata already replaced).
        bands
            The ``C`` band names (STAC ``eo`` common names where known) in channel order.
        wavelengths
            ``(C, 3)`` float array of min / centre / max wavelength in nm.
        level
            Processing level, ``"l1c"`` (top of atmosphere), ``"l2a"`` (surface) or None.

        Returns
        -------
        ``(N, K, H, W)`` float32 probabilities, ``K = len(spec.classes)``, in ``spec.classes`` order.
        """
        ...


@dataclass(frozen=True)
class ModelSpec:
    """Metadata of a registered model.

    Attributes
    ----------
    name
        Registry name, e.g. ``"fine"`` or ``"ukis-csmask"``.
    description
        One line for ``list_models``.
    classes
        Output class names in channel order; a subset of ``clear cloud thin_cloud cloud_shadow``.
    bands
        Band common names the model needs, in the order it wants them. Empty for
        sensor-independent (spectral) models, which take any bands with known wavelengths.
    optional_bands
        Bands used when present (e.g. ukis-csmask's 6-band model adds ``swir16``, ``swir22``).
    min_bands, max_bands
        Accepted band count for spectral models.
    tile_size, overlap
        Inference tile edge and overlap between neighbouring tiles, in pixels. The tile grid
        is anchored at global pixel 0 with stride ``tile_size - overlap``.
    levels
        Processing levels the model accepts (``"l1c"``, ``"l2a"``).
    weights, sha256
        Weight file name inside ``xcloud/models/weights`` and its pinned hash (None for peers
        whose weights ship in their own package).
    licence
        Licence of the weights / training data.
    extra
        ``pip install "xcloud[extra]"`` needed to run it, or None.
    requires
        Modules that must import for it to run (the registry says which is missing and how to
        install it).
    unavailable
        Why it cannot run here, when something is wrong with it (e.g. a model card that does
        not match its pinned hash); None when nothing is.
    loader
        ``loader(spec, device) -> Predictor``. Called once per worker process.
    card
        Free-form model card (metrics, training data) for docs and provenance.
    stages
        For a cascade, the models it chains, ``(coarse, fine)``: :func:`xcloud.mask` routes
        with the first and segments with the second. Empty for ordinary models.
    precisions
        The ``precision=`` values the model's predictor takes (``"auto"`` only, unless its
        ``predict`` accepts ``precision``: see :data:`xcloud.device.PRECISIONS`).
    """

    name: str
    description: str
    classes: tuple[str, ...]
    loader: Callable[[ModelSpec, str], Predictor] = field(repr=False, compare=False)
    bands: tuple[str, ...] = ()
    optional_bands: tuple[str, ...] = ()
    min_bands: int = 1
    max_bands: int = 64
    tile_size: int = 256
    overlap: int = 32
    levels: tuple[str, ...] = LEVELS
    weights: str | None = None
    sha256: str | None = None
    licence: str = "unknown"
    extra: str | None = None
    requires: tuple[str, ...] = ()
    unavailable: str | None = None
    card: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    stages: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ("auto",)

    @property
    def spectral(self) -> bool:
        """True for sensor-independent models that take any bands with wavelengths."""
        return not self.bands

    @property
    def stride(self) -> int:
        return self.tile_size - self.overlap

    def __dask_tokenize__(self):
        return ("xcloud.ModelSpec", self.name, self.sha256, self.tile_size, self.overlap)
