"""Tests of xcloud.bands: sensor catalogue, band resolution, radiometric scaling."""

from __future__ import annotations

import numpy as np
import pytest

from xcloud import bands as B
from xcloud.errors import MissingBandsError, RadiometryError, UnknownSensorError, XCloudError

REQUIRED_SENSORS = [
    "sentinel-2-l1c",
    "sentinel-2-l2a",
    "sentinel-2a-l1c",
    "sentinel-2b-l1c",
    "sentinel-2c-l1c",
    "sentinel-2a-l2a",
    "sentinel-2b-l2a",
    "sentinel-2c-l2a",
    "landsat-5-l1",
    "landsat-5-l2",
    "landsat-7-l1",
    "landsat-7-l2",
    "landsat-8-l1",
    "landsat-8-l2",
    "landsat-9-l1",
    "landsat-9-l2",
    "planetscope-4b",
    "planetscope-8b",
]


# --- catalogue -------------------------------------------------------------------------------


def test_required_sensors_present():
    assert set(REQUIRED_SENSORS) <= set(B.SENSORS)


@pytest.mark.parametrize("name", sorted(B.SENSORS))
def test_sensor_bands_sane(name):
    s = B.SENSORS[name]
    assert s.name == name
    assert s.level in ("l1c", "l2a")
    assert s.bands
    names = [b.name for b in s.bands]
    assert len(names) == len(set(names)), "common names unique within a sensor"
    for b in s.bands:
        assert 300 < b.min <= b.centre <= b.max < 15000
        assert b.descriptor == (b.min, b.centre, b.max)
    keys = [k for b in s.bands for k in {a.lower() for a in b.asset_keys}]
    assert len(keys) == len(set(keys)), "an asset key belongs to one band only"


@pytest.mark.parametrize(
    ("sensor", "key", "name", "desc"),
    [
        ("sentinel-2a-l1c", "B02", "blue", (458, 492.4, 523)),
        ("sentinel-2a-l1c", "B8A", "nir08", (854, 864.7, 875)),
        ("sentinel-2a-l1c", "B10", "cirrus", (1337, 1373.5, 1412)),
        ("sentinel-2a-l1c", "B11", "swir16", (1539, 1613.7, 1682)),
        ("sentinel-2a-l1c", "B12", "swir22", (2078, 2202.4, 2320)),
        ("landsat-8-l1", "B5", "nir", (850.5, 864.7, 878.8)),
        ("landsat-8-l1", "B6", "swir16", (1566.5, 1608.9, 1651.2)),
        ("landsat-8-l1", "B7", "swir22", (2107.4, 2200.7, 2294.1)),
        ("landsat-8-l1", "B9", "cirrus", (1363.2, 1373.4, 1383.6)),
        ("landsat-7-l1", "B4", "nir", (770, 835, 900)),
        ("landsat-5-l1", "B5", "swir16", (1550, 1676, 1750)),
    ],
)
def test_reference_wavelengths(sensor, key, name, desc):
    b = B.get_sensor(sensor).band(key)
    assert b.name == name
    np.testing.assert_allclose(b.descriptor, desc)


def test_s2_has_13_bands_and_l2a_drops_cirrus():
    assert len(B.SENSORS["sentinel-2-l1c"].bands) == 13
    assert "cirrus" not in B.SENSORS["sentinel-2-l2a"].band_names


def test_s2b_centres_differ_slightly():
    a = B.get_sensor("sentinel-2a-l1c").band("B12")
    b = B.get_sensor("sentinel-2b-l1c").band("B12")
    assert b.centre == pytest.approx(2185.7)
    assert 0 < a.centre - b.centre < 20


def test_landsat_numbering_differs():
    assert B.get_sensor("landsat-8-l2").band("SR_B4").name == "red"
    assert B.get_sensor("landsat-7-l2").band("SR_B4").name == "nir"
    assert B.get_sensor("landsat-5-l2").band("SR_B4").name == "nir"
    assert B.get_sensor("landsat-5-l2").band("SR_B1").name == "blue"
    assert B.get_sensor("landsat-8-l2").band("SR_B1").name == "coastal"
    assert B.get_sensor("landsat-7-l1").band("B8").name == "pan"


def test_planetscope_names():
    ps8 = B.get_sensor("planetscope-8b")
    assert ps8.band_names == (
        "coastal",
        "blue",
        "green_i",
        "green",
        "yellow",
        "red",
        "rededge",
        "nir",
    )
    assert B.get_sensor("planetscope-4b").band_names == ("blue", "green", "red", "nir")


def test_default_scaling():
    assert (B.SENSORS["sentinel-2-l2a"].scale, B.SENSORS["sentinel-2-l2a"].offset) == (1e-4, 0)
    assert (B.SENSORS["landsat-8-l2"].scale, B.SENSORS["landsat-8-l2"].offset) == (2.75e-5, -0.2)
    assert (B.SENSORS["landsat-7-l1"].scale, B.SENSORS["landsat-7-l1"].offset) == (2e-5, -0.1)


def test_common_names():
    for name in ["blue", "red", "nir", "swir16", "lwir11", "lwir12", "pan", "yellow", "green_i"]:
        lo, c, hi = B.COMMON_NAMES[name]
        assert lo <= c <= hi
    assert B.COMMON_NAMES["blue"] == B.get_sensor("sentinel-2a-l1c").band("blue").descriptor
    assert B.COMMON_NAMES["lwir11"] == B.get_sensor("landsat-8-l1").band("B10").descriptor
    assert B.COMMON_NAMES["green_i"] != B.COMMON_NAMES["green"]


def test_sensor_is_hashable_and_frozen():
    s = B.get_sensor("s2")
    hash(s)
    with pytest.raises(AttributeError):
        s.name = "x"  # type: ignore[misc]


# --- get_sensor ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("s2", "sentinel-2-l2a"),
        ("Sentinel2", "sentinel-2-l2a"),
        ("sentinel-2", "sentinel-2-l2a"),
        ("S2_L2A", "sentinel-2-l2a"),
        ("SENTINEL-2-L1C", "sentinel-2-l1c"),
        ("landsat-c2-l2", "landsat-8-l2"),
        ("landsat8", "landsat-8-l2"),
        ("Landsat_7_L1", "landsat-7-l1"),
        ("superdove", "planetscope-8b"),
    ],
)
def test_get_sensor_aliases(alias, name):
    assert B.get_sensor(alias).name == name


def test_get_sensor_passes_sensor_through():
    s = B.SENSORS["landsat-9-l2"]
    assert B.get_sensor(s) is s


def test_unknown_sensor_message():
    with pytest.raises(UnknownSensorError, match=r"'sentinel-3'.*valid sensors.*sentinel-2-l2a"):
        B.get_sensor("sentinel-3")
    with pytest.raises(KeyError, match=r"Did you mean 'landsat-8-l2'"):
        B.get_sensor("landsat-8-l3")


def test_unknown_band_key():
    with pytest.raises(B.UnknownBandError, match=r"no band 'B13'.*Did you mean"):
        B.get_sensor("sentinel-2-l1c").band("B13")


# --- guess_sensor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "attrs", "expected"),
    [
        (["B02", "B03", "B04", "B8A", "SCL"], None, "sentinel-2-l2a"),
        (["B01", "B02", "B10", "B12"], None, "sentinel-2-l1c"),
        (["coastal", "rededge1", "nir08", "scl"], None, "sentinel-2-l2a"),
        (["SR_B2", "SR_B5", "SR_B6", "ST_B10", "QA_PIXEL"], None, "landsat-8-l2"),
        (["blue", "nir08", "lwir11", "qa_pixel"], None, "landsat-8-l2"),
        (["SR_B1", "SR_B4", "ST_B6"], None, "landsat-7-l2"),
        (["B2", "B5", "B10", "B11"], None, "landsat-8-l1"),
        (["red", "nir"], {"platform": "sentinel-2b"}, "sentinel-2b-l2a"),
        (["red"], {"platform": "Sentinel-2A", "processing:level": "L1C"}, "sentinel-2a-l1c"),
        (["red"], {"platform": "LANDSAT_5", "processing:level": "L2SP"}, "landsat-5-l2"),
        (["red"], {"constellation": "sentinel-2"}, "sentinel-2-l2a"),
        (["red"], {"instruments": ["oli", "tirs"]}, "landsat-8-l2"),
        (["red"], {"platform": "landsat-9", "processing:level": "L1TP"}, "landsat-9-l1"),
        (["blue", "green_i", "yellow"], None, "planetscope-8b"),
    ],
)
def test_guess_sensor(variables, attrs, expected):
    s = B.guess_sensor(variables, attrs)
    assert s is not None and s.name == expected


@pytest.mark.parametrize(
    "variables",
    [["B1", "B2", "B3", "B4"], ["SR_B2", "SR_B3", "SR_B4", "SR_B5"], ["red", "nir"], []],
)
def test_guess_sensor_ambiguous_is_none(variables):
    assert B.guess_sensor(variables) is None


# --- resolve_bands ---------------------------------------------------------------------------


def _names(resolved):
    return [(r.var, r.name) for r in resolved]


def test_resolve_earth_search_s2_l2a():
    vs = ["coastal", "blue", "green", "red", "rededge1", "nir", "nir08", "swir16", "scl", "aot"]
    out = B.resolve_bands(vs, sensor="sentinel-2-l2a")
    assert [r.name for r in out] == vs[:8]
    assert out[5].centre == pytest.approx(832.8)


def test_resolve_planetary_computer_s2_l2a():
    vs = ["B01", "B02", "B03", "B04", "B05", "B08", "B8A", "B11", "B12", "SCL", "spatial_ref"]
    out = B.resolve_bands(vs)  # sensor guessed from B8A / zero-padded keys
    assert _names(out) == [
        ("B01", "coastal"),
        ("B02", "blue"),
        ("B03", "green"),
        ("B04", "red"),
        ("B05", "rededge1"),
        ("B08", "nir"),
        ("B8A", "nir08"),
        ("B11", "swir16"),
        ("B12", "swir22"),
    ]


def test_resolve_lowercase_keys():
    out = B.resolve_bands(["b02", "b8a"], sensor="s2")
    assert _names(out) == [("b02", "blue"), ("b8a", "nir08")]


def test_resolve_landsat_c2_l2_pc_and_usgs():
    pc = B.resolve_bands(
        ["coastal", "blue", "green", "red", "nir08", "swir16", "swir22", "lwir11", "qa_pixel"],
        sensor="landsat-c2-l2",
    )
    assert [r.name for r in pc] == [
        "coastal",
        "blue",
        "green",
        "red",
        "nir",
        "swir16",
        "swir22",
        "lwir11",
    ]
    usgs = B.resolve_bands(["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "ST_B10", "QA_PIXEL"])
    assert [r.name for r in usgs] == ["blue", "green", "red", "nir", "swir16", "lwir11"]
    assert usgs[3].centre == pytest.approx(864.7)


def test_b4_ambiguity():
    vs = ["B1", "B2", "B3", "B4"]
    # with nothing known, bare Landsat numbers are left alone rather than guessed
    assert B.resolve_bands(vs) == []
    assert [r.name for r in B.resolve_bands(vs, sensor="landsat-8-l1")] == [
        "coastal",
        "blue",
        "green",
        "red",
    ]
    assert [r.name for r in B.resolve_bands(vs, sensor="landsat-7-l1")] == [
        "blue",
        "green",
        "red",
        "nir",
    ]
    five = B.resolve_bands(vs, attrs={"platform": "landsat-5"})
    assert five[3].name == "nir" and five[3].min == 760


def test_common_names_without_sensor():
    out = B.resolve_bands(["Blue", "red", "NIR", "qa", "spatial_ref"])
    assert _names(out) == [("Blue", "blue"), ("red", "red"), ("NIR", "nir")]


def test_bands_mapping():
    out = B.resolve_bands(["b_a", "b_b", "my_nir"], bands={"red": "b_b", "nir": "my_nir"})
    assert _names(out) == [("b_b", "red"), ("my_nir", "nir")]
    assert out[1].descriptor == B.COMMON_NAMES["nir"]


def test_bands_mapping_uses_sensor_wavelengths_and_overrides_auto():
    out = B.resolve_bands(["B02", "B08", "B8A"], sensor="sentinel-2-l2a", bands={"nir": "B8A"})
    assert _names(out) == [("B02", "blue"), ("B8A", "nir")]
    out = B.resolve_bands(["SR_B5"], sensor="landsat-8-l2", bands={"nir": "SR_B5"})
    assert out[0].centre == pytest.approx(864.7)


def test_bands_mapping_errors():
    with pytest.raises(
        B.BandSpecError, match=r"'nirr' is not a known band name.*Did you mean 'nir'"
    ):
        B.resolve_bands(["x"], bands={"nirr": "x"})
    with pytest.raises(ValueError, match=r"variable 'B8'.*does not have.*Did you mean 'B08'"):
        B.resolve_bands(["B02", "B08"], bands={"nir": "B8"})


def test_wavelengths_user_sensor():
    out = B.resolve_bands(
        ["c1", "c2", "mask"],
        wavelengths={"c1": (450, 480, 510), "c2": (770.0, 800.0, 830.0)},
        bands={"red": "c2"},  # wavelengths= wins over bands=
    )
    assert _names(out) == [("c1", "c1"), ("c2", "c2")]
    np.testing.assert_array_equal(
        B.descriptor_array(out), np.array([[450, 480, 510], [770, 800, 830]], dtype=np.float32)
    )


@pytest.mark.parametrize(
    ("desc", "pattern"),
    [
        ((0.45, 0.48, 0.51), r"0\.45 is outside 300 < nm < 15000 \(micrometres"),
        ((450, 400, 510), r"min <= centre <= max"),
        ((450, 480, 20000), r"20000\.0 is outside"),
        ((450, 480), r"is not \(min, centre, max\)"),
    ],
)
def test_wavelengths_errors(desc, pattern):
    with pytest.raises(B.BandSpecError, match=pattern) as info:
        B.resolve_bands(["c1"], wavelengths={"c1": desc})
    assert isinstance(info.value, XCloudError) and isinstance(info.value, ValueError)
    assert "'c1'" in str(info.value)


def test_wavelengths_missing_variable():
    with pytest.raises(B.BandSpecError, match=r"'c3'.*dataset has \['c1', 'c2'\]"):
        B.resolve_bands(["c1", "c2"], wavelengths={"c3": (450, 480, 510)})


def test_duplicate_common_names_keep_first():
    out = B.resolve_bands(["red", "B04"], sensor="s2")
    assert _names(out) == [("red", "red")]


def test_descriptor_array_shape():
    out = B.resolve_bands(["B02", "B03"], sensor="s2")
    arr = B.descriptor_array(out)
    assert arr.shape == (2, 3) and arr.dtype == np.float32
    assert B.descriptor_array([]).shape == (0, 3)


# --- require_bands ---------------------------------------------------------------------------


def test_require_bands_ok_returns_in_model_order():
    vs = ["B08", "B02", "B03", "B04"]
    got = B.require_bands(B.resolve_bands(vs, sensor="s2"), ["blue", "nir"], vs, "m")
    assert [r.var for r in got] == ["B02", "B08"]


def test_require_bands_missing_suggests_single_spare():
    vs = ["B02", "B03", "B04", "SCL"]
    with pytest.raises(MissingBandsError) as info:
        B.require_bands(B.resolve_bands(vs), ["blue", "green", "red", "nir"], vs, "ukis-csmask")
    msg = str(info.value)
    assert msg == (
        "model 'ukis-csmask' needs bands ['blue', 'green', 'red', 'nir']; missing ['nir']; "
        "the dataset has ['B02', 'B03', 'B04', 'SCL']; pass bands={'nir': 'SCL'} if that "
        "variable holds it"
    )


def test_require_bands_missing_generic_hint():
    vs = ["B02", "B03", "SCL", "AOT"]
    with pytest.raises(KeyError, match=r"missing \['red', 'nir'\].*'red': '<variable>'"):
        B.require_bands(B.resolve_bands(vs), ["blue", "red", "nir"], vs, "fine")


# --- radiometry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"s2:processing_baseline": "04.00"}, -0.1),
        ({"s2:processing_baseline": "05.11"}, -0.1),
        ({"processing_baseline": "4.0"}, -0.1),
        ({"s2:processing_baseline": "03.01"}, 0.0),
        ({"s2:processing_baseline": "02.14"}, 0.0),
        ({"s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True}, 0.0),
        ({"BOA_ADD_OFFSET": -1000}, -0.1),
        ({"RADIO_ADD_OFFSET": "-1000"}, -0.1),
        ({"add_offset": -0.05, "s2:processing_baseline": "05.00"}, -0.05),
        ({}, 0.0),
    ],
)
def test_s2_baseline_offset(attrs, expected):
    assert B.s2_baseline_offset(attrs) == pytest.approx(expected)


U16 = np.dtype("uint16")


def test_scaling_float_is_reflectance():
    assert B.reflectance_scaling(np.dtype("float32"), {}, sensor="s2") == (1.0, 0.0)
    assert B.reflectance_scaling(
        np.dtype("float64"), {"scale_factor": 1e-4, "add_offset": -0.1}
    ) == (1e-4, -0.1)


def test_scaling_integer_precedence():
    attrs = {"scale_factor": 2e-4, "add_offset": 0.01}
    assert B.reflectance_scaling(U16, attrs, scale=1e-4, offset=0.0) == (1e-4, 0.0)
    assert B.reflectance_scaling(U16, attrs, sensor="landsat-8-l2") == (2e-4, 0.01)
    assert B.reflectance_scaling(U16, {}, sensor="landsat-8-l2") == (2.75e-5, -0.2)
    assert B.reflectance_scaling(U16, {}, sensor="landsat-8-l1") == (2e-5, -0.1)
    assert B.reflectance_scaling(np.dtype("int16"), {}, scale=1e-4) == (1e-4, 0.0)


def test_scaling_s2_baseline_applies_when_offset_not_given():
    new = {"s2:processing_baseline": "05.09"}
    assert B.reflectance_scaling(U16, new, sensor="sentinel-2-l2a") == (1e-4, pytest.approx(-0.1))
    assert B.reflectance_scaling(U16, new, scale=1e-4, sensor="s2") == (1e-4, pytest.approx(-0.1))
    assert B.reflectance_scaling(U16, new, sensor="s2", offset=0.0) == (1e-4, 0.0)
    old = {"s2:processing_baseline": "03.00"}
    assert B.reflectance_scaling(U16, old, sensor="sentinel-2-l1c") == (1e-4, 0.0)


def test_scaling_thermal_band_override():
    s, o = B.reflectance_scaling(U16, {}, sensor="landsat-8-l2", band="ST_B10")
    assert (s, o) == (pytest.approx(0.00341802), 149.0)


def test_scaling_integer_without_scale_raises():
    with pytest.raises(RadiometryError, match=r"uint16.*pass scale=1e-4 for Sentinel-2"):
        B.reflectance_scaling(U16, {})


def test_module_imports_no_xarray_or_torch():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(B))
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    assert not mods & {"xarray", "torch", "dask"}
