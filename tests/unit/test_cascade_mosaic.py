"""The cascade benchmark's ``gradient`` layout: tiles ordered by labelled cloud cover, rows
alternating direction, so that neighbours have similar cover."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from benchmarks.cascade import _by_cloud_cover  # noqa: E402


def _tile(cover: float, size: int = 10):
    lab = np.zeros((size, size), np.uint8)
    lab.flat[: int(round(cover * size * size))] = 1
    return (np.full((1, size, size), cover, np.float32), lab)


def test_tiles_are_laid_out_by_cloud_cover_in_serpentine_rows():
    covers = [0.5, 0.0, 1.0, 0.2, 0.9, 0.1]
    out = _by_cloud_cover([_tile(c) for c in covers], cols=3)
    got = [round(float(t[0][0, 0, 0]), 3) for t in out]
    # sorted: 0.0 0.1 0.2 | 0.5 0.9 1.0, the second row reversed
    assert got == [0.0, 0.1, 0.2, 1.0, 0.9, 0.5]


def test_unknown_pixels_do_not_count_towards_cover():
    a = _tile(0.3)
    a[1][5:] = 255  # bottom half unknown: the cover is 30 cloud of 50 labelled pixels, 0.6
    b = _tile(0.5)
    out = _by_cloud_cover([a, b], cols=2)
    assert out[0] is b and out[1] is a
