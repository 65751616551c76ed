"""The cascade benchmark's ``gradient`` layout (tiles ordered by labelled cloud cover, rows
alternating direction, so that neighbours have similar cover) and its speed-up ceiling."""

import numpy as np

from benchmarks.cascade import _by_cloud_cover, oracle_fine_fraction


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


def test_oracle_skips_pure_and_nodata_cells_but_not_mixed_ones():
    # 2 x 2 units of 256 px, cells of 64 px: unit (0, 0) clear, (0, 1) all nodata,
    # (1, 0) clear with one cloudy pixel, (1, 1) clear next to nodata inside one column of cells
    m = np.zeros((512, 512), np.uint8)
    m[:256, 256:] = 255
    m[400, 10] = 1
    m[256:, 256:288] = 255
    assert oracle_fine_fraction(m, cell=64, unit=256, ring=0) == 0.5
    # the ring spreads from the mixed unit (1, 0) to (0, 0); (1, 1) runs for its nodata edge
    # only and spreads nothing; the all-nodata unit (0, 1) is never pulled in
    assert oracle_fine_fraction(m, cell=64, unit=256, ring=1) == 0.75
    m[400, 10] = 0
    assert oracle_fine_fraction(m, cell=64, unit=256, ring=1) == 0.25
    # a label map's unknown pixels count as nodata: a whole unknown cell is skipped
    lab = np.zeros((512, 512), np.uint8)
    assert oracle_fine_fraction(lab, 64, 256, 0) == 0.0
    lab[:10, :10] = 255
    assert oracle_fine_fraction(lab, 64, 256, 0) == 0.25
    lab[:64, :64] = 255
    assert oracle_fine_fraction(lab, 64, 256, 0) == 0.0
    # an edge that is not a multiple of the unit: the last units are partial, as in the cascade
    assert oracle_fine_fraction(np.zeros((600, 300), np.uint8), 64, 256, 1) == 0.0
