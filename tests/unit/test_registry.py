"""The model registry: names, specs, the per-process cache, and every available model."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from conftest import TEST_MODEL

import xcloud.models as xm
from xcloud.bands import get_sensor
from xcloud.errors import ParameterError, UnknownModelError, XCloudWarning
from xcloud.models import CLASSES
from xcloud.models._registry import _CACHE, clear_cache


def test_list_models_patterns():
    names = xm.list_models()
    assert names == sorted(names)
    assert {"cascade", "s2cloudless", "ukis-csmask"} <= set(names)
    assert xm.list_models("ukis*") == ["ukis-csmask"]
    assert xm.list_models("s2*") == ["s2cloudless"]
    assert xm.list_models("no-such-*") == []


def test_get_spec_and_aliases():
    assert xm.get_spec("ukis-csmask").name == "ukis-csmask"
    assert xm.get_spec("ukis").name == "ukis-csmask"


@pytest.mark.parametrize(("name", "hint"), [("s2cloudles", "s2cloudless"), ("ukis-cs", "ukis")])
def test_get_spec_unknown_suggests_closest(name, hint):
    with pytest.raises(UnknownModelError) as e:
        xm.get_spec(name)
    msg = str(e.value)
    assert repr(name) in msg and "Did you mean" in msg and hint in msg
    assert "registered models are" in msg
    assert isinstance(e.value, KeyError)


def test_get_spec_non_string():
    with pytest.raises(UnknownModelError, match="must be a name"):
        xm.get_spec(3)


def test_create_model_is_cached_per_process():
    clear_cache()
    a = xm.create_model(TEST_MODEL)
    b = xm.create_model(TEST_MODEL)
    assert a is b
    assert len([k for k in _CACHE if k[0] == TEST_MODEL]) == 1
    c = xm.create_model(TEST_MODEL, "cuda")  # a different device is a different cache entry
    assert c is not a
    clear_cache()
    assert xm.create_model(TEST_MODEL) is not a


def test_the_cascade_is_a_pipeline_not_one_predictor():
    with pytest.raises(ParameterError, match="pipeline") as e:
        xm.create_model("cascade")
    assert "xcloud.mask(ds, 'cascade')" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_weights_are_addressable_by_their_tag():
    assert xm.get_spec("fine.v20") is xm.get_spec("fine")


def test_registering_a_taken_name_warns_and_drops_its_loaded_models():
    from xcloud.models._registry import _CACHE, _REGISTRY

    old = xm.get_spec(TEST_MODEL)
    xm.create_model(TEST_MODEL)
    other = dataclasses.replace(old, description="another model under the same name")
    try:
        with pytest.warns(XCloudWarning, match=f"{TEST_MODEL!r} was registered already"):
            xm.register_model(other)
        assert xm.get_spec(TEST_MODEL) is other
        assert not [k for k in _CACHE if k[0] == TEST_MODEL]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            xm.register_model(other)  # the same spec again: nothing to say
            xm.register_model(old, replace=True)  # asked for: silent
    finally:
        _REGISTRY[TEST_MODEL] = old


def test_available_models_are_registered():
    avail = xm.available_models()
    assert set(avail) <= set(xm.list_models())
    assert "ukis-csmask" in avail


@pytest.mark.parametrize("name", xm.list_models())
def test_spec_metadata_is_consistent(name):
    spec = xm.get_spec(name)
    assert spec.classes and set(spec.classes) <= set(CLASSES)
    assert len(set(spec.classes)) == len(spec.classes)
    assert spec.overlap % 2 == 0 and 0 <= spec.overlap < spec.tile_size
    assert set(spec.levels) <= {"l1c", "l2a"}


_S2_WL = {b.name: b.descriptor for b in get_sensor("sentinel-2a-l1c").bands}


@pytest.mark.parametrize(
    "name", [n for n in xm.available_models() if not xm.get_spec(n).stages]
)  # (the cascade is a pipeline of these: tests/integration/test_cascade.py)
def test_every_available_model_smoke(name):
    spec = xm.get_spec(name)
    assert spec.licence and spec.licence != "unknown"  # a runnable model states its licence
    model = xm.create_model(name)
    bands = spec.bands + spec.optional_bands if spec.bands else tuple(_S2_WL)[:4]
    rng = np.random.default_rng(0)
    x = rng.uniform(0.02, 0.3, (1, len(bands), spec.tile_size, spec.tile_size)).astype(np.float32)
    p = model.predict(
        x,
        bands=bands,
        wavelengths=np.asarray([_S2_WL[b] for b in bands], np.float32),
        level=spec.levels[0],
    )
    assert p.shape == (1, len(spec.classes), spec.tile_size, spec.tile_size)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
