"""Registry entry of the default model, ``cascade`` (coarse routing + fine segmentation).

The cascade needs xcloud's own trained ``coarse`` and ``fine`` models. Until both ship, the
entry exists so that ``model="cascade"`` (the default) fails with a clear message listing the
models that do run, rather than with placeholder weights.
"""

from __future__ import annotations

from xcloud.errors import ModelUnavailableError
from xcloud.models._spec import ModelSpec


def _load(spec: ModelSpec, device: str):
    raise ModelUnavailableError(spec.card["unavailable"])


def register() -> None:
    from xcloud.models._registry import _REGISTRY, register_model

    if "cascade" in _REGISTRY:
        return
    if {"fine", "coarse"} <= set(_REGISTRY):
        return  # the real cascade registers itself with the fine/coarse models
    register_model(
        ModelSpec(
            name="cascade",
            description="coarse-to-fine cascade (needs xcloud's own coarse + fine models)",
            classes=("clear", "cloud", "thin_cloud", "cloud_shadow"),
            loader=_load,
            card={
                "unavailable": "xcloud's own 'coarse' and 'fine' models are not trained yet, so "
                "the cascade cannot run; pass model= one of the available models."
            },
        )
    )
