"""Each fact has one home in the package: these greps fail when one is typed a second time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import xcloud

PKG = Path(xcloud.__file__).parent
SOURCES = {p: p.read_text() for p in PKG.rglob("*.py")}

#: fact -> (pattern that types it, the one file allowed to)
FACTS = {
    "the mask classes": (r'"thin_cloud"\s*[:,]\s*(2\s*,\s*)?"cloud_shadow"', "models/_spec.py"),
    "the router's classes": (r'"cloudless",\s*"overcast"', "models/_spec.py"),
    "the router's cell size": (r"CELL\w*\s*(:\s*int\s*)?=\s*16\b", "models/_spec.py"),
    "the nodata code": (r"\bNODATA\s*(:\s*int\s*)?=\s*255", "models/_spec.py"),
    "the training labels' ignore code": (r"\bIGNORE\s*(:\s*int\s*)?=", "train/data.py"),
    "the spatial dimension names": (r'\("latitude",\s*"longitude"\)', "reflectance.py"),
    "the DN detector's limit": (r"(LIMIT|THRESHOLD)\w*\s*(:\s*float\s*)?=\s*5\.0\b", "bands.py"),
    # the router's thresholds live in its model card (JSON, pinned by sha256), not in code
    "the route thresholds": (r"route_threshold\w*\s*[:=][^=\n]*\b0\.\d", None),
}


@pytest.mark.parametrize("fact", FACTS)
def test_one_home(fact):
    pattern, home = FACTS[fact]
    where = sorted(
        str(p.relative_to(PKG)) for p, text in SOURCES.items() if re.search(pattern, text)
    )
    expected = [home] if home else []
    assert where == expected, f"{fact} is typed in {where}; only {home or 'data'} should say it"
