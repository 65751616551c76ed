"""SEnSeI: a sensor-independent spectral encoder (Francis, Mrziglod, Sidiropoulos & Muller 2022).

SEnSeI turns a reflectance cube with *any* number and order of bands into a fixed-width feature
map. Each band is described by its spectral response (min / centre / max wavelength); a small
permutation-equivariant network turns the set of descriptors into one feature vector per band,
each band's feature vector is multiplied by that band's reflectance (plus a 0.5 offset) at every
pixel, and the results are averaged over the bands.

Because the network only ever sees the *set* of descriptors, permuting the bands (together with
their descriptors) leaves the output unchanged, and a model trained on random band subsets of
several sensors works on any of them.

Per pixel, band multiplication followed by the band mean is a linear map of the reflectances,
so it runs as a single ``einsum`` (a 1x1 convolution) whose weights depend only on the
descriptors; those weights are computed once per band set and cached while the module is in
inference mode.

References
----------
A. Francis, J. Mrziglod, P. Sidiropoulos, J.-P. Muller, "SEnSeI: A Deep Learning Module for
Creating Sensor Independent Cloud Masks", IEEE TGRS 60, 2022, doi:10.1109/TGRS.2021.3128280.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["SEnSeI", "normalise_wavelengths"]

#: Offset added to reflectance before band multiplication, so a zero-reflectance band still
#: contributes its feature vector (Francis et al. 2022).
REFLECTANCE_OFFSET = 0.5


def normalise_wavelengths(wavelengths: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Map wavelengths in nm to SEnSeI's descriptor scale, ``log10(lambda - 300) - 2``.

    Parameters
    ----------
    wavelengths
        ``(C, 3)`` min / centre / max wavelength of each band in nm (any shape works).

    Returns
    -------
    torch.Tensor
        Float32 tensor of the same shape; about 0 at 400 nm and 1.4 at 2500 nm.

    Examples
    --------
    >>> float(normalise_wavelengths(np.array([400.0])))
    0.0
    """
    w = torch.as_tensor(
        np.asarray(wavelengths, dtype=np.float32)
        if not torch.is_tensor(wavelengths)
        else wavelengths
    )
    w = w.float().clamp_min(301.0)
    return torch.log10(w - 300.0) - 2.0


class _DescriptorBlock(nn.Module):
    """Band-wise fully connected layers (Linear + GroupNorm + ReLU), shared by every band."""

    def __init__(self, n_in: int, width: int, depth: int, groups: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [
                nn.Linear(n_in if i == 0 else width, width),
                nn.GroupNorm(groups, width),
                nn.ReLU(),
            ]
        self.net = nn.Sequential(*layers)

    def forward(self, d: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, width)
        return self.net(d)


class _PermutationBlock(nn.Module):
    """Mix information between bands: every ordered pair (i, j) of band vectors is concatenated,
    passed through a shared layer and mean-pooled over j, giving one vector per band again.

    The result for band ``i`` depends on the *set* of other bands, not on their order, which is
    what lets SEnSeI tell e.g. a red band in a 4-band sensor from one in a 13-band sensor.
    """

    def __init__(self, width: int, groups: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * width, width)
        self.norm = nn.GroupNorm(groups, width)

    def forward(self, d: torch.Tensor) -> torch.Tensor:  # (N, W) -> (N, W)
        n = d.shape[0]
        pairs = torch.cat([d[:, None, :].expand(n, n, -1), d[None, :, :].expand(n, n, -1)], dim=-1)
        mixed = self.fc(pairs.reshape(n * n, -1)).reshape(n, n, -1).mean(dim=1)
        return torch.relu(self.norm(mixed)) + d


class SEnSeI(nn.Module):
    """Sensor-independent spectral encoder: ``(B, C, H, W)`` reflectance -> ``(B, F, H, W)``.

    Parameters
    ----------
    out_channels
        Width ``F`` of the output feature map.
    width
        Width of the descriptor network.
    depth
        Number of layers in each descriptor block.
    n_perm
        Number of permutation blocks.

    Notes
    -----
    ``forward(x, wavelengths)`` takes ``x`` of shape ``(B, C, H, W)`` and ``wavelengths`` of
    shape ``(C, 3)`` in nm (min / centre / max of each band). Any ``C >= 1`` works; the model is
    trained with 3 to 14 bands. The band weights are cached per descriptor set when the module
    is not training (call :meth:`clear_cache` after changing parameters in eval mode).

    Examples
    --------
    >>> enc = SEnSeI(out_channels=8)
    >>> x = torch.rand(2, 4, 16, 16)
    >>> wl = torch.tensor([[450., 490., 520.], [540., 560., 580.], [650., 665., 680.], [780., 842., 900.]])
    >>> enc(x, wl).shape
    torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self, out_channels: int = 16, *, width: int = 32, depth: int = 2, n_perm: int = 2
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.descriptor = _DescriptorBlock(3, width, depth)
        self.permutation = nn.ModuleList(_PermutationBlock(width) for _ in range(n_perm))
        self.combined = _DescriptorBlock(width, width, depth)
        self.to_features = nn.Linear(width, out_channels)
        self._cache: dict[tuple[float, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def band_vectors(self, wavelengths: torch.Tensor | np.ndarray) -> torch.Tensor:
        """One feature vector per band, ``(C, F)``, from ``(C, 3)`` wavelengths in nm."""
        d = normalise_wavelengths(wavelengths).to(self.to_features.weight.device)
        h = self.descriptor(d)
        for block in self.permutation:
            h = block(h)
        return self.to_features(self.combined(h))

    def band_weights(
        self, wavelengths: torch.Tensor | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-pixel linear map ``y = W x + b`` equivalent to band multiplication + mean.

        Returns
        -------
        weight, bias
            ``(F, C)`` and ``(F,)``: ``y_f = sum_c W_fc x_c + b_f``.
        """
        key = None
        if not self.training and not torch.is_grad_enabled():
            key = tuple(
                np.asarray(
                    wavelengths.detach().cpu() if torch.is_tensor(wavelengths) else wavelengths,
                    dtype=np.float64,
                )
                .ravel()
                .round(3)
            )
            hit = self._cache.get(key)
            if hit is not None and hit[0].device == self.to_features.weight.device:
                return hit
        v = self.band_vectors(wavelengths)  # (C, F)
        n = v.shape[0]
        weight = v.t() / n
        bias = v.sum(dim=0) * (REFLECTANCE_OFFSET / n)
        if key is not None:
            self._cache[key] = (weight, bias)
        return weight, bias

    def clear_cache(self) -> None:
        """Forget cached band weights."""
        self._cache.clear()

    def train(self, mode: bool = True) -> SEnSeI:  # noqa: D102 - cache is only valid for fixed weights
        self._cache.clear()
        return super().train(mode)

    def forward(self, x: torch.Tensor, wavelengths: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Encode ``x`` ``(B, C, H, W)`` given band ``wavelengths`` ``(C, 3)`` nm."""
        if x.ndim != 4:
            raise ValueError(f"SEnSeI expects x of shape (B, C, H, W), got {tuple(x.shape)}")
        if len(wavelengths) != x.shape[1]:
            raise ValueError(
                f"x has {x.shape[1]} bands but {len(wavelengths)} wavelength rows were given"
            )
        weight, bias = self.band_weights(wavelengths)
        weight = weight.to(x.dtype)
        return torch.nn.functional.conv2d(x, weight[:, :, None, None], bias.to(x.dtype))
