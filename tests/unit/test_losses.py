"""Losses checked against values worked out by hand on tiny grids."""

import math

import pytest
import torch

from xcloud.train.loop import cell_targets
from xcloud.train.losses import adjacency_kernels, adjacency_loss, luotamo_ce, partial_ce

LN4 = math.log(4.0)


def _uniform(h, w, k=4):
    return torch.zeros(1, k, h, w)


def test_partial_ce_singleton_is_cross_entropy():
    # uniform logits: p = 1/4 for each class, CE = ln 4
    assert partial_ce(_uniform(1, 1), torch.tensor([[[0]]])).item() == pytest.approx(LN4, rel=1e-6)


def test_partial_ce_set_label_sums_probabilities():
    # label 4 = {cloud, thin_cloud}: p_S = 1/2 -> ln 2; pixel mean with a clear pixel: (ln4 + ln2)/2
    y = torch.tensor([[[0, 4]]])
    assert partial_ce(_uniform(1, 2), y).item() == pytest.approx((LN4 + math.log(2)) / 2, rel=1e-6)


def test_partial_ce_ignores_255():
    y = torch.tensor([[[0, 255]]])
    logits = _uniform(1, 2)
    logits[0, 0, 0, 1] = 50.0  # would matter if the ignored pixel counted
    assert partial_ce(logits, y).item() == pytest.approx(LN4, rel=1e-6)


def test_focal_down_weights_by_one_minus_p_to_gamma():
    # p = 1/4: (1 - 1/4)^2 ln 4
    got = partial_ce(_uniform(1, 1), torch.tensor([[[3]]]), gamma=2.0).item()
    assert got == pytest.approx(0.5625 * LN4, rel=1e-6)


def test_partial_ce_confident_right_is_near_zero():
    logits = _uniform(1, 1)
    logits[0, 2] = 30.0
    assert partial_ce(logits, torch.tensor([[[4]]])).item() < 1e-6


def test_luotamo_ce_by_hand():
    # uniform p = 1/4, true class 2: alpha_2 * ln4 + sum_{k!=2} beta_k * (-ln 3/4)
    alpha = torch.tensor([1.0, 1.0, 2.0, 1.0])
    beta = torch.tensor([0.5, 0.5, 0.25, 0.5])
    got = luotamo_ce(_uniform(1, 1), torch.tensor([[[2]]]), alpha, beta).item()
    assert got == pytest.approx(2 * LN4 + 1.5 * -math.log(0.75), rel=1e-6)


def test_luotamo_ce_with_unit_weights_and_zero_beta_is_ce():
    logits = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([[[0, 1], [2, 3]]])
    ce = torch.nn.functional.cross_entropy(logits, y).item()
    assert luotamo_ce(logits, y, torch.ones(4), torch.zeros(4)).item() == pytest.approx(
        ce, rel=1e-6
    )


def _hard(grid):
    """Near one-hot logits for a grid of class indices."""
    g = torch.tensor(grid)
    return torch.nn.functional.one_hot(g, 4).permute(2, 0, 1)[None].float() * 60.0


def test_twelve_kernels():
    k = adjacency_kernels()
    assert k.shape == (12, 1, 2, 2)
    assert (k.sum(dim=(1, 2, 3)) == 0).all()
    assert len({tuple(x.flatten().tolist()) for x in k}) == 12


def test_adjacency_loss_by_hand():
    # cloudless (0) / overcast (1) in a 2x2 window:
    # [[0, 1],
    #  [0, 0]]  -> overcast top-right touches three cloudless cells (right-left, vertical,
    # anti-diagonal): 3 of the 12 kernel responses fire -> 3 / 12
    assert adjacency_loss(_hard([[0, 1], [0, 0]])).item() == pytest.approx(0.25, abs=1e-6)


def test_adjacency_loss_allows_partly_cloudy_between():
    assert adjacency_loss(_hard([[0, 2], [0, 2]])).item() == pytest.approx(0.0, abs=1e-6)
    # diagonal neighbours count too: cloudless top-left, overcast bottom-right -> 1 / 12
    assert adjacency_loss(_hard([[0, 2], [2, 1]])).item() == pytest.approx(1 / 12, abs=1e-6)
    # checkerboard [[0,1],[1,0]]: all 4 horizontal / vertical pairs are forbidden, the two
    # diagonals pair equal classes -> 4 / 12
    assert adjacency_loss(_hard([[0, 1], [1, 0]])).item() == pytest.approx(4 / 12, abs=1e-6)


def test_adjacency_loss_is_differentiable():
    logits = _hard([[0, 1], [0, 0]]) / 60.0
    logits.requires_grad_(True)
    adjacency_loss(logits).backward()
    assert logits.grad.abs().sum() > 0


def test_cell_targets_by_hand():
    # 4x4 labels, cells of 2x2: clear | all cloud / mixed | nodata
    y = torch.tensor(
        [[[0, 5, 1, 4], [0, 3, 2, 1], [4, 0, 255, 255], [0, 0, 255, 255]]], dtype=torch.uint8
    )
    assert cell_targets(y, 2).tolist() == [[[0, 1], [2, 3]]]
