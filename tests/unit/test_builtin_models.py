"""The shipped models: registered, weights verified by hash, cards agree with specs."""

from pathlib import Path

import numpy as np
import pytest
from conftest import S2_WL

from xcloud.models import create_model, get_spec, list_models
from xcloud.models._registry import sha256_file, weights_path
from xcloud.models.builtin import COARSE_SPEC, create_coarse

DATA = Path(__file__).parents[1] / "data" / "oncloudn_jaag"


def _spec(name):
    return COARSE_SPEC if name == "coarse" else get_spec(name)


SHIPPED = ("fine", "coarse")


@pytest.mark.parametrize("name", SHIPPED)
def test_registered_with_pinned_weights(name):
    assert ("fine" in list_models()) and ("coarse" not in list_models())  # coarse: routing classes
    spec = _spec(name)
    path = weights_path(spec)  # raises if the hash does not match
    assert sha256_file(path) == spec.sha256 == spec.card["sha256"]
    assert tuple(spec.card["classes"]) == spec.classes
    assert spec.spectral and spec.min_bands == 3 and spec.max_bands == 14


def test_weights_total_under_25_mb():
    total = sum(weights_path(_spec(n)).stat().st_size for n in SHIPPED)
    assert total < 25e6


def test_fine_card_has_validation_metrics_against_ukis():
    card = get_spec("fine").card
    for dataset in ("oncloudn", "l8biome"):
        for model in ("fine", "ukis-csmask"):
            assert 0.0 <= card["validation_metrics"][model][dataset]["cloud_f1"] <= 1.0


def test_fine_detects_thick_cloud_over_real_ground():
    """A real, trained model: thick cloud (90 % opacity, flat bright spectrum with texture)
    composited on the right half of a real Sentinel-2 L2A chip reads as cloud, and more so
    than the untouched left half."""
    rasterio = pytest.importorskip("rasterio")
    x = np.stack(
        [rasterio.open(DATA / f"{b}.tif").read(1) for b in ("B02", "B03", "B04", "B08")]
    ).astype(np.float32)
    x /= 10000.0
    tex = 0.9 + 0.2 * np.random.default_rng(0).random(x[0, :, 128:].shape)
    cloud = np.array([0.55, 0.55, 0.56, 0.57], np.float32)[:, None, None] * tex
    x[:, :, 128:] = 0.1 * x[:, :, 128:] + 0.9 * cloud
    wl = np.array(S2_WL, np.float32)
    p = create_model("fine").predict(
        x[None], bands=("blue", "green", "red", "nir"), wavelengths=wl, level="l2a"
    )[0]
    assert p.shape == (4, *x.shape[1:])
    cloudy = p[1] + p[2]
    right, left = cloudy[:, 156:].mean(), cloudy[:, :100].mean()
    assert right > 0.6
    assert right > left + 0.15


def test_coarse_predict_grid():
    model = create_coarse()
    wl = np.array(S2_WL, np.float32)
    grid = model.predict_grid(
        np.full((1, 4, 32, 48), 0.05, np.float32),
        bands=("blue", "green", "red", "nir"),
        wavelengths=wl,
        level="l2a",
    )
    assert grid.shape == (1, 4, 2, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0, rtol=1e-5)


def test_model_cards_are_pinned_by_hash(tmp_path, monkeypatch):
    """A card sets behaviour (the router's threshold, the architecture): an edited one must not
    load silently, like edited weights."""
    import json
    import shutil

    from xcloud.models import builtin

    for name in builtin.CARD_SHA256:
        shutil.copy(builtin.WEIGHTS_DIR / name, tmp_path / name)
    assert builtin._card(builtin.FINE_WEIGHTS)[0]["architecture"]  # the shipped cards verify
    card = json.loads((tmp_path / "coarse.v10.json").read_text())
    card["route_threshold"] = 0.01
    (tmp_path / "coarse.v10.json").write_text(json.dumps(card))
    monkeypatch.setattr(builtin, "WEIGHTS_DIR", tmp_path)
    damaged, problem = builtin._card(builtin.COARSE_WEIGHTS)
    assert "route_threshold" not in damaged
    assert "not the pinned" in problem and "reinstall" in problem
    assert "architecture" in builtin._card(builtin.FINE_WEIGHTS)[0]  # the other still loads
