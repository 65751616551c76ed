"""Export trained models: safetensors weights plus a JSON model card.

The card records the architecture (enough to rebuild the network), the bands seen in training,
the classes, the data used and its licences, validation metrics and the weights' sha256.
:mod:`xcloud.models.builtin` registers a model from exactly these two files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from xcloud.models._registry import sha256_file

__all__ = ["DATA_LICENCES", "export_model"]

#: Licences of the training data, for the model card.
DATA_LICENCES: dict[str, str] = {
    "On Cloud N (Radiant Earth, DrivenData, Microsoft)": "CC-BY-4.0",
    "Landsat 8 Biome Cloud Cover Assessment (USGS)": "US public domain",
    "SEN12MS-CR (Ebel et al.)": "CC-BY-4.0",
    "EuroSAT (Helber et al.)": "MIT",
}


def export_model(
    model: torch.nn.Module,
    out_dir: str | Path,
    *,
    name: str,
    version: str = "v1",
    card: dict[str, Any],
) -> tuple[Path, Path, str]:
    """Write ``<name>.<version>.safetensors`` and ``<name>.<version>.json`` into ``out_dir``.

    Parameters
    ----------
    model
        The trained network; ``model.config`` (a dict) goes into the card's ``architecture``.
    card
        Card fields (classes, bands, data, metrics, ...); ``architecture``, ``sha256``,
        ``weights``, ``parameters`` and ``data_licences`` are filled in here.

    Returns
    -------
    weights_path, card_path, sha256
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.{version}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"name": name, "version": version, "format": "pt"})
    digest = sha256_file(weights)
    full = dict(card)
    full.update(
        {
            "name": name,
            "version": version,
            "architecture": {"class": type(model).__name__, **getattr(model, "config", {})},
            "parameters": int(sum(v.numel() for k, v in state.items() if "num_batches" not in k)),
            "weights": weights.name,
            "sha256": digest,
            "data_licences": DATA_LICENCES,
        }
    )
    card_path = out / f"{name}.{version}.json"
    card_path.write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    return weights, card_path, digest
