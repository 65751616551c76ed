"""Losses for the fine segmenter and the coarse patch classifier.

Fine model: cross-entropy / focal loss over *set-valued* labels (:func:`partial_ce`), so that
On Cloud N's "cloud" (cloud or thin cloud) and "clear" (clear or unlabelled shadow) supervise
the four-class model without inventing a distinction the labels do not make.

Coarse model (Luotamo et al. 2021): class-weighted cross-entropy with per-class weights
``alpha`` (on the true class's log-probability) and ``beta`` (on the log of one minus each
wrong class's probability), eq. 2, plus the adjacency loss, eq. 3-6, which penalises
neighbouring grid cells whose classes cannot lie next to each other (``cloudless`` next to
``overcast``) using twelve 2 x 2 kernels over a differentiable one-hot of the prediction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xcloud.train.data import IGNORE

__all__ = [
    "LABEL_SETS",
    "adjacency_kernels",
    "adjacency_loss",
    "distill_ce",
    "luotamo_ce",
    "partial_ce",
]

#: Allowed classes (clear, cloud, thin_cloud, cloud_shadow) for each training label code.
LABEL_SETS: dict[int, tuple[int, ...]] = {0: (0,), 1: (1,), 2: (2,), 3: (3,), 4: (1, 2), 5: (0, 3)}


def _allowed_mask(target: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, K, H, W)`` bool: class k is allowed at each pixel; and ``(B, H, W)`` valid pixels."""
    table = torch.zeros(256, n_classes, dtype=torch.bool, device=target.device)
    for code, classes in LABEL_SETS.items():
        for k in classes:
            if k < n_classes:
                table[code, k] = True
    allowed = table[target.long()].permute(0, 3, 1, 2)
    valid = target != IGNORE
    return allowed, valid


def partial_ce(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 0.0,
    class_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy (``gamma=0``) or focal loss with set-valued labels.

    For a pixel whose label allows the class set ``S``, the loss is
    ``-(1 - p_S)^gamma log p_S`` with ``p_S = sum_{k in S} softmax(logits)_k``. With singleton
    sets this is ordinary (focal) cross-entropy. Pixels labelled 255 are ignored; the result is
    the mean over the other pixels (weighted by ``class_weight`` of the set's first class).

    Parameters
    ----------
    logits
        ``(B, K, H, W)``.
    target
        ``(B, H, W)`` integer label codes (see :data:`LABEL_SETS`).
    gamma
        Focal exponent.
    class_weight
        Optional ``(K,)`` weights.
    """
    logp = F.log_softmax(logits.float(), dim=1)
    allowed, valid = _allowed_mask(target, logits.shape[1])
    log_ps = torch.logsumexp(logp.masked_fill(~allowed, float("-inf")), dim=1)
    log_ps = torch.where(valid, log_ps, torch.zeros_like(log_ps))
    loss = -log_ps
    if gamma:
        loss = loss * (1.0 - log_ps.exp()).clamp_min(0.0) ** gamma
    w = valid.float()
    if class_weight is not None:
        first = allowed.float().argmax(dim=1)
        w = w * class_weight.to(logits.device)[first]
    return (loss * w).sum() / w.sum().clamp_min(1e-6)


def distill_ce(
    logits: torch.Tensor,
    soft: torch.Tensor,
    *,
    class_weight: torch.Tensor | None = None,
    merge_thin: bool = True,
) -> torch.Tensor:
    """Soft cross-entropy to a teacher's class probabilities (distillation).

    ``soft`` is ``(B, K, H, W)`` teacher probabilities over the student's classes; pixels where
    they sum to 0 have no teacher and are left out. With ``merge_thin`` (4 classes: clear,
    cloud, thin_cloud, cloud_shadow) the teacher's cloud mass rewards the student's cloud *or*
    thin cloud, ``-t_cloud log(p_cloud + p_thin)``, like :func:`partial_ce`'s set-valued labels:
    a teacher without a thin class neither teaches nor suppresses thin cloud. Each pixel is
    weighted by ``sum_k t_k class_weight_k``; the result is the weighted mean.
    """
    logp = F.log_softmax(logits.float(), dim=1)
    t = soft.float()
    if merge_thin and logits.shape[1] == 4:
        log_cloud = torch.logsumexp(logp[:, 1:3], dim=1, keepdim=True)
        logp = torch.cat([logp[:, :1], log_cloud, logp[:, 2:3], logp[:, 3:]], dim=1)
        t = torch.cat([t[:, :1], t[:, 1:2] + t[:, 2:3], torch.zeros_like(t[:, 2:3]), t[:, 3:]], 1)
    valid = t.sum(dim=1) > 0
    ce = -(t * logp).sum(dim=1)
    w = valid.float()
    if class_weight is not None:
        w = w * (t * class_weight.to(t.device)[None, :, None, None]).sum(dim=1)
    return (ce * w).sum() / w.sum().clamp_min(1e-6)


def luotamo_ce(
    logits: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """Class-weighted cross-entropy of Luotamo et al. (2021), eq. 2.

    ``L = -mean_cells [ alpha_y log p_y + sum_{k != y} beta_k log(1 - p_k) ]``

    Parameters
    ----------
    logits
        ``(B, K, h, w)`` cell logits.
    target
        ``(B, h, w)`` cell classes (255 = ignore).
    alpha, beta
        ``(K,)`` weights of the true class's term and of each wrong class's term.
    """
    p = F.softmax(logits.float(), dim=1)
    logp = F.log_softmax(logits.float(), dim=1)
    log1m = torch.log((1.0 - p).clamp_min(1e-7))
    valid = target != IGNORE
    t = torch.where(valid, target, torch.zeros_like(target)).long()
    onehot = F.one_hot(t, logits.shape[1]).permute(0, 3, 1, 2).float()
    a = alpha.to(logits.device).view(1, -1, 1, 1)
    b = beta.to(logits.device).view(1, -1, 1, 1)
    per_cell = -(onehot * a * logp).sum(1) - ((1.0 - onehot) * b * log1m).sum(1)
    return (per_cell * valid).sum() / valid.sum().clamp_min(1)


def adjacency_kernels() -> torch.Tensor:
    """The twelve 2 x 2 kernels of the adjacency loss, ``(12, 1, 2, 2)``.

    Each kernel compares two cells of a 2 x 2 window (horizontal, vertical and both diagonal
    pairs: 6 pairs) with +1 on one and -1 on the other, in both orders (12 kernels). Applied to
    the one-hot channel of one class, a response of +1 marks a cell of that class whose
    neighbour is not of that class.
    """
    pairs = [
        ((0, 0), (0, 1)),
        ((1, 0), (1, 1)),
        ((0, 0), (1, 0)),
        ((0, 1), (1, 1)),
        ((0, 0), (1, 1)),
        ((0, 1), (1, 0)),
    ]
    ks = []
    for a, b in pairs:
        for s in (1.0, -1.0):
            k = torch.zeros(2, 2)
            k[a] = s
            k[b] = -s
            ks.append(k)
    return torch.stack(ks)[:, None]


def adjacency_loss(
    logits: torch.Tensor,
    *,
    cloudless: int = 0,
    overcast: int = 1,
    tau: float = 1.0,
    hard: bool = False,
) -> torch.Tensor:
    """Adjacency loss (Luotamo et al. 2021, eq. 3-6): penalise ``cloudless`` cells next to
    ``overcast`` cells, since a partly-cloudy cell must lie between them.

    A differentiable one-hot ``z`` (softmax with temperature ``tau``; straight-through hard
    one-hot if ``hard``) of the prediction is convolved with the twelve 2 x 2 kernels of
    :func:`adjacency_kernels`. ``e_c = relu(K * z_c)`` marks, for class ``c``, a cell of class
    ``c`` whose neighbour (in the kernel's direction) is not ``c``; a forbidden adjacency is a
    window and direction where the cloudless response and the overcast response of the
    opposite kernel are both on: ``L = mean(e_cloudless[k] * e_overcast[k'])`` with ``k'`` the
    sign-flipped twin of ``k``.
    """
    if logits.shape[-2] < 2 or logits.shape[-1] < 2:  # no 2 x 2 window: no neighbours
        return logits.sum() * 0.0
    z = F.softmax(logits.float() / tau, dim=1)
    if hard:
        idx = z.argmax(dim=1)
        z = F.one_hot(idx, z.shape[1]).permute(0, 3, 1, 2).float() - z.detach() + z
    k = adjacency_kernels().to(logits.device)
    e0 = F.relu(F.conv2d(z[:, cloudless : cloudless + 1], k))  # (B, 12, h-1, w-1)
    e1 = F.relu(F.conv2d(z[:, overcast : overcast + 1], k))
    twin = torch.arange(12, device=logits.device) ^ 1  # kernel 2i and 2i+1 are sign twins
    return (e0 * e1[:, twin]).mean()
