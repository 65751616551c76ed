"""docs/api.md is generated from the docstrings (docs/gen_api.py) and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_api_reference_covers_the_public_api():
    import xcloud
    import xcloud.bands
    import xcloud.errors
    import xcloud.plot

    text = _gen_api().render()
    # re-exports are documented where they live
    home = {"list_models": "xcloud.models", "XCloudError": "xcloud.errors"}
    names = [f"{home.get(n, 'xcloud')}.{n}" for n in xcloud.__all__ if n != "__version__"]
    names += [f"xcloud.plot.{n}" for n in xcloud.plot.__all__]
    names += [f"xcloud.bands.{n}" for n in xcloud.bands.__all__]
    names += [f"xcloud.errors.{n}" for n in xcloud.errors.__all__]
    names += ["ds.cloud.mask", "ds.cloud.plot_rgb", "ds.cloud.plot", "xcloud.models.ModelSpec"]
    missing = [n for n in names if f"`{n}" not in text]
    assert not missing, f"docs/api.md lacks {missing}: add them to SECTIONS in docs/gen_api.py"
    assert "$ xcloud mask --help" in text and "--resume" in text


def test_api_reference_is_up_to_date():
    text = _gen_api().render()
    current = (DOCS / "api.md").read_text()
    assert current == text, "docs/api.md is out of date: run python docs/gen_api.py"
