"""Self-supervised pretraining of SEnSeI on random synthetic band descriptors (Francis et al. 2022).

Spectra come from real pixels: every 13-band Sentinel-2 pixel of the clear scenes (with
synthetic clouds composited on, so bright flat spectra appear too) is linearly interpolated
between band centres into a continuous spectrum from 400 to 2400 nm. Each step draws a random
set of 3 to 14 *synthetic* bands (random centre, random width), integrates the spectrum over
each band, and encodes the pixels with SEnSeI. Two heads read SEnSeI's per-pixel features
(after the fine model's ReLU stem):

* the **estimator** predicts the reflectance of a query band (descriptor in, value out), for
  query bands inside and outside the input set, so the features must carry the spectrum;
* the **discriminator** tells whether a query descriptor was one of the input bands, so the
  features must encode *which* bands were seen.

Loss: MSE(estimator) + BCE(discriminator). The pretrained SEnSeI (and stem) initialise the fine
model (``TrainConfig.init``): :func:`pretrain_sensei` saves them under the fine model's keys.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xcloud.models.sensei import SEnSeI, normalise_wavelengths
from xcloud.train.data import Scene, composite_clouds

__all__ = ["PretrainHeads", "band_values", "pretrain_sensei", "random_bands", "spectra_from_scenes"]


def spectra_from_scenes(
    scenes: list[Scene], *, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pixel spectra ``(n, C)`` and their band centres ``(C,)`` (sorted), half of the
    pixels from scenes with synthetic clouds composited on."""
    out = []
    per = max(1, n // len(scenes))
    for s in scenes:
        img = s.image
        if rng.random() < 0.5:
            img, _ = composite_clouds(s, rng)
        flat = img.reshape(img.shape[0], -1)
        idx = rng.integers(0, flat.shape[1], per)
        out.append(flat[:, idx].T)
    centres = scenes[0].wavelengths[:, 1]
    order = np.argsort(centres)
    spectra = np.concatenate(out)[:n][:, order]
    return spectra.astype(np.float32), centres[order]


def random_bands(rng: np.random.Generator, k: int) -> np.ndarray:
    """``(k, 3)`` random band descriptors (min / centre / max nm), centres in 420-2350 nm."""
    centre = rng.uniform(420.0, 2350.0, k)
    half = rng.uniform(5.0, 80.0, k)
    return np.stack([centre - half, centre, centre + half], axis=1).astype(np.float32)


def band_values(spectra: np.ndarray, centres: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Reflectance of each pixel in each band: the interpolated spectrum averaged over the band
    (5 samples across it). ``(n, C) -> (n, k)``."""
    grid = np.linspace(bands[:, 0], bands[:, 2], 5, axis=1)  # (k, 5)
    out = np.empty((spectra.shape[0], len(bands)), np.float32)
    for j, g in enumerate(grid):
        # linear interpolation between band centres, vectorised over pixels (flat beyond the ends)
        pos = np.clip(np.searchsorted(centres, g) - 1, 0, len(centres) - 2)
        t = np.clip((g - centres[pos]) / (centres[pos + 1] - centres[pos]), 0.0, 1.0)
        vals = spectra[:, pos] * (1 - t) + spectra[:, pos + 1] * t
        out[:, j] = vals.mean(axis=1)
    return out


class PretrainHeads(nn.Module):
    """Estimator and discriminator MLPs on (pixel feature, query descriptor)."""

    def __init__(self, features: int, hidden: int = 64) -> None:
        super().__init__()

        def mlp() -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(features + 3, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Linear(hidden, 1),
            )

        self.estimator, self.discriminator = mlp(), mlp()

    def forward(
        self, feats: torch.Tensor, query: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats (P, F)``, ``query (P, Q, 3)`` normalised -> value and logit, each ``(P, Q)``."""
        z = torch.cat([feats[:, None, :].expand(-1, query.shape[1], -1), query], dim=-1)
        return self.estimator(z)[..., 0], self.discriminator(z)[..., 0]


def pretrain_sensei(
    scenes: list[Scene],
    *,
    steps: int = 1000,
    pixels: int = 4096,
    features: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
    threads: int = 2,
    out: str | Path | None = None,
    time_limit: float | None = None,
) -> tuple[SEnSeI, nn.Module, dict[str, Any]]:
    """Pretrain SEnSeI with the estimator / discriminator heads.

    Returns the encoder, the stem and a summary; with ``out`` also saves ``sensei_init.pt``, a
    state dict keyed like :class:`~xcloud.models.fine.FineNet` (``encoder.sensei.*``) for
    ``TrainConfig.init``.
    """
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    enc = SEnSeI(out_channels=features)
    stem = nn.ReLU()
    heads = PretrainHeads(features)
    params = [*enc.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history = []
    t0 = time.perf_counter()
    pool, centres = spectra_from_scenes(scenes, n=pixels * 8, rng=rng)
    for step in range(steps):
        if step % 200 == 199:
            pool, centres = spectra_from_scenes(scenes, n=pixels * 8, rng=rng)
        spectra = pool[rng.integers(0, len(pool), pixels)]
        k = int(rng.integers(3, 15))
        bands = random_bands(rng, k)
        x = band_values(spectra, centres, bands)  # (P, k)
        n_query = 8
        q_in = bands[rng.integers(0, k, n_query // 2)]
        q_out = random_bands(rng, n_query // 2)
        query = np.concatenate([q_in, q_out])
        target = band_values(spectra, centres, query)
        present = np.array([1.0] * (n_query // 2) + [0.0] * (n_query // 2), np.float32)
        xt = torch.from_numpy(x).T[None, :, :, None]  # (1, k, P, 1): pixels as an image column
        feats = stem(enc(xt, bands))[0, :, :, 0].T  # (P, F)
        qn = normalise_wavelengths(query)[None].expand(len(spectra), -1, -1)
        value, logit = heads(feats, qn)
        loss_est = F.mse_loss(value, torch.from_numpy(target))
        loss_dis = F.binary_cross_entropy_with_logits(
            logit, torch.from_numpy(present)[None].expand_as(logit)
        )
        loss = loss_est * 100.0 + loss_dis
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        history.append((loss_est.item(), loss_dis.item()))
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            break
    summary = {
        "steps_done": len(history),
        "wall_s": time.perf_counter() - t0,
        "estimator_mse_first50": float(np.mean([h[0] for h in history[:50]])),
        "estimator_mse_last50": float(np.mean([h[0] for h in history[-50:]])),
        "discriminator_bce_first50": float(np.mean([h[1] for h in history[:50]])),
        "discriminator_bce_last50": float(np.mean([h[1] for h in history[-50:]])),
    }
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        state = {f"encoder.sensei.{k}": v for k, v in enc.state_dict().items()}
        torch.save(state, Path(out) / "sensei_init.pt")
    return enc.eval(), stem.eval(), summary
