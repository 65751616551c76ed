"""Wavelengths have one home, ``xcloud/bands.py``: training and tests read it. A second table
once described Sentinel-2's nir as 785/842/900 nm in training where inference said
780/832.8/886, so the models learned from band descriptors they never saw at inference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
#: Three ascending numbers of 300 to 15000 in brackets: a (min, centre, max) nm triple.
TRIPLE = re.compile(
    r"[\(\[]\s*(\d{3,5}(?:\.\d+)?)\s*,\s*(\d{3,5}(?:\.\d+)?)\s*,\s*(\d{3,5}(?:\.\d+)?)\s*[\)\]]"
)
#: The table's own test compares it with published spectral responses, value by value, and
#: checks that user-described bands (made-up wavelengths) are accepted or refused; this file
#: shows the detector examples.
ALLOWED = {"tests/unit/test_bands.py", "tests/unit/test_one_band_table.py"}


def typed_wavelengths(text: str) -> list[str]:
    hits = []
    for m in TRIPLE.finditer(text):
        lo, c, hi = (float(g) for g in m.groups())
        if 300 <= lo < c < hi <= 15000:
            hits.append(m.group(0))
    return hits


def test_the_detector_finds_a_typed_table():
    assert typed_wavelengths('"B08": (785.0, 842.0, 900.0),') == ["(785.0, 842.0, 900.0)"]
    assert typed_wavelengths("[458, 492, 523]") == ["[458, 492, 523]"]
    assert typed_wavelengths("chunks=(1, 412, 412), shape (256, 256, 256)") == []


@pytest.mark.parametrize("folder", ["xcloud/train", "tests", "benchmarks"])
def test_no_wavelength_is_typed_outside_xcloud_bands(folder):
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel in ALLOWED:
            continue
        hits = typed_wavelengths(path.read_text())
        if hits:
            found[rel] = hits
    assert not found, f"wavelengths typed by hand (read them from xcloud.bands): {found}"


def test_training_reads_the_inference_table():
    from xcloud.bands import get_sensor
    from xcloud.train.data import L8BIOME_BANDS, LANDSAT8, SEN12MS_BANDS, SENTINEL2

    s2, l8 = get_sensor("sentinel-2a-l1c"), get_sensor("landsat-8-l1")
    assert [SENTINEL2[b] for b in SEN12MS_BANDS] == list(s2.descriptors(SEN12MS_BANDS))
    assert [LANDSAT8[b] for b in L8BIOME_BANDS] == list(l8.descriptors(L8BIOME_BANDS))
    assert SENTINEL2["B08"] == (780.0, 832.8, 886.0)  # inference's nir, not 785/842/900
