"""benchmarks/route_threshold.py's ceiling: what a perfect router could skip, exactly and with
a tolerance."""

import numpy as np
import route_threshold


def test_ceiling_counts_tolerant_cells_and_the_pixels_their_fills_get_wrong():
    ref = np.zeros((128, 128), np.uint8)  # 2 x 2 cells of 64 px, one unit of 128 px
    ref[0, 0] = 1  # a speck in the clear top-left cell
    ref[64:, 64:] = 1  # an overcast cell ...
    ref[100, 100] = 0  # ... with a clear speck
    ref[0:64, 64:128][:3, :] = 3  # 192 shadow pixels: 4.7 % of the top-right cell
    c = route_threshold.ceiling(ref, 64, 128, tolerances=(0.0, 0.005, 0.05))
    exact, half, five = (c["tolerant"][t] for t in (0.0, 0.005, 0.05))
    assert exact["uniform_cells"] == 4096 and exact["skippable_units"] == 0  # bottom-left only
    assert (c["uniform_cells"], c["skippable_units"]) == (4096, 0)
    assert half == {"uniform_cells": 3 * 4096, "skippable_units": 0, "wrong_cells": 2,
                    "wrong_units": 0}  # fmt: skip
    assert five == {"uniform_cells": 4 * 4096, "skippable_units": 4 * 4096,
                    "wrong_cells": 194, "wrong_units": 194}  # fmt: skip


def test_ceiling_never_trusts_a_cell_that_is_partly_nodata():
    ref = np.zeros((64, 64), np.uint8)
    ref[:, :8] = 255
    c = route_threshold.ceiling(ref, 64, 64, tolerances=(0.5,))
    assert c["tolerant"][0.5]["uniform_cells"] == 0
