"""Sensors, band names, wavelengths and radiometric scaling.

The lowest layer of xcloud: it maps the variables of a user's dataset (``"B04"``, ``"SR_B5"``,
``"nir"``, ...) to bands with known wavelengths, so a model can ask for STAC ``eo`` common names
(``"blue"``, ``"nir"``, ``"swir16"``) or, for sensor-independent models, for a ``(C, 3)`` array of
min / centre / max wavelengths. It also works out how to turn integer digital numbers into
reflectance. It imports only numpy and the standard library (never xarray).

Wavelengths are in nanometres. Sources: ESA Sentinel-2 MSI spectral response functions
(S2-SRF, COPE-GSEG-EOPG-TN-15-0007; central wavelength and bandwidth per unit), USGS / Barsi et
al. (2014) for the measured OLI band edges, USGS band designations and Chander et al. (2009) for
TM / ETM+, and Planet's PlanetScope product specification for the Dove / SuperDove bands.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from .errors import (
    BandSpecError,
    MissingBandsError,
    RadiometryError,
    UnknownBandError,
    UnknownSensorError,
    did_you_mean,
)

__all__ = [
    "LEVELS",
    "Band",
    "Sensor",
    "ResolvedBand",
    "BandSpecError",
    "UnknownBandError",
    "SENSORS",
    "COMMON_NAMES",
    "get_sensor",
    "list_sensors",
    "guess_sensor",
    "resolve_bands",
    "require_bands",
    "descriptor_array",
    "reflectance_scaling",
    "s2_baseline_offset",
]

#: Processing levels: ``"l1c"`` top-of-atmosphere and ``"l2a"`` surface reflectance.
LEVELS: tuple[str, ...] = ("l1c", "l2a")
#: ``level=`` values, for type checkers and IDEs (any case is accepted).
Level = Literal["l1c", "l2a", "L1C", "L2A"]

#: Wavelengths outside this open interval (nm) are certainly a unit mistake (µm, or a band index).
WAVELENGTH_RANGE: tuple[float, float] = (300.0, 15000.0)
#: Reflectance above this in more than 1 % of the valid values means they are digital numbers
#: (the masking core checks every block against it).
REFLECTANCE_P99_LIMIT: float = 5.0


# --------------------------------------------------------------------------------------------
# data model


@dataclass(frozen=True)
class Band:
    """One spectral band of a sensor.

    Attributes
    ----------
    name
        STAC ``eo`` common name (``"blue"``, ``"nir"``, ``"swir16"``, ``"rededge1"``, ...).
    min, centre, max
        Band edges and centre wavelength in nm.
    asset_keys
        Names this band goes by in data products (STAC asset keys, file band names), e.g.
        ``("B02", "b02", "blue")``. Matched case-insensitively.
    scale, offset
        Per-band overrides of the sensor's default DN scaling (thermal bands), or None.

    Examples
    --------
    >>> Band("red", 649.0, 664.6, 680.0, ("B04",)).descriptor
    (649.0, 664.6, 680.0)
    """

    name: str
    min: float
    centre: float
    max: float
    asset_keys: tuple[str, ...] = ()
    scale: float | None = None
    offset: float | None = None

    def __post_init__(self) -> None:
        if not (self.min <= self.centre <= self.max):
            raise BandSpecError(
                f"band {self.name!r}: wavelengths must satisfy min <= centre <= max, "
                f"got ({self.min}, {self.centre}, {self.max})"
            )

    @property
    def descriptor(self) -> tuple[float, float, float]:
        """``(min, centre, max)`` wavelength in nm."""
        return (float(self.min), float(self.centre), float(self.max))

    def matches(self, key: str) -> bool:
        """True if ``key`` is this band's common name or one of its asset keys (any case)."""
        k = key.lower()
        return k == self.name.lower() or any(k == a.lower() for a in self.asset_keys)


@dataclass(frozen=True)
class Sensor:
    """A sensor and processing level, with its bands and default DN scaling.

    Attributes
    ----------
    name
        Catalogue key, e.g. ``"sentinel-2-l2a"``.
    platform, instrument
        E.g. ``"sentinel-2a"`` / ``"msi"``.
    bands
        The bands, in the sensor's band-number order.
    level
        ``"l1c"`` (top-of-atmosphere reflectance) or ``"l2a"`` (surface reflectance).
    scale, offset
        Default scaling of the integer products: ``reflectance = DN * scale + offset``.
    aliases
        Other names :func:`get_sensor` accepts.

    Examples
    --------
    >>> s2 = get_sensor("sentinel-2-l2a")
    >>> s2.band("B8A").name
    'nir08'
    >>> s2.band("nir").asset_keys[0]
    'B08'
    """

    name: str
    platform: str
    instrument: str
    bands: tuple[Band, ...]
    level: str
    scale: float
    offset: float = 0.0
    aliases: tuple[str, ...] = ()

    @property
    def band_names(self) -> tuple[str, ...]:
        """Common names of the bands, in band order."""
        return tuple(b.name for b in self.bands)

    @property
    def family(self) -> str:
        """``"sentinel-2"``, ``"landsat"`` or ``"planetscope"``."""
        return _family(self.name)

    def find(self, name_or_key: str) -> Band | None:
        """The band with this common name or asset key (any case), or None."""
        # common names first: an asset key of one band may equal the common name of another
        # (Landsat 5/7 asset "B5" vs nothing, S2 "nir" common name vs Earth Search key "nir")
        k = name_or_key.lower()
        for b in self.bands:
            if b.name.lower() == k:
                return b
        for b in self.bands:
            if b.matches(name_or_key):
                return b
        return None

    def descriptors(self, names_or_keys: Sequence[str]) -> tuple[tuple[float, float, float], ...]:
        """``(min, centre, max)`` nm of each band, by common name or asset key: the wavelengths
        to describe this sensor's bands to a model (training and tests read them here).

        >>> get_sensor("sentinel-2a-l1c").descriptors(["B08"])
        ((780.0, 832.8, 886.0),)
        """
        return tuple(self.band(k).descriptor for k in names_or_keys)

    def band(self, name_or_key: str) -> Band:
        """The band with this common name or asset key (case-insensitive).

        Raises
        ------
        UnknownBandError
            If the sensor has no such band; the message lists its bands.

        Examples
        --------
        >>> get_sensor("landsat-7-l2").band("SR_B4").name
        'nir'
        >>> get_sensor("landsat-8-l2").band("SR_B4").name
        'red'
        """
        b = self.find(name_or_key)
        if b is None:
            choices = [*self.band_names, *(k for b in self.bands for k in b.asset_keys)]
            raise UnknownBandError(
                f"sensor {self.name!r} has no band {name_or_key!r}; its bands are "
                f"{list(self.band_names)} (asset keys "
                f"{[b.asset_keys[0] for b in self.bands if b.asset_keys]})."
                + did_you_mean(name_or_key, choices)
            )
        return b


@dataclass(frozen=True)
class ResolvedBand:
    """A variable of the user's data matched to a band.

    Attributes
    ----------
    var
        The data variable (or band-coordinate value) holding the band.
    name
        Its common name, or ``var`` itself for bands described with ``wavelengths=``.
    min, centre, max
        Wavelengths in nm.
    """

    var: str
    name: str
    min: float
    centre: float
    max: float

    @property
    def descriptor(self) -> tuple[float, float, float]:
        """``(min, centre, max)`` wavelength in nm."""
        return (float(self.min), float(self.centre), float(self.max))


# --------------------------------------------------------------------------------------------
# band tables


def _b(name: str, lo: float, c: float, hi: float, *keys: str, **kw: Any) -> Band:
    return Band(name, float(lo), float(c), float(hi), tuple(keys), **kw)


def _s2_keys(num: str, name: str) -> tuple[str, ...]:
    """``B8A`` -> ("B8A", "b8a", "nir08"); ``B02`` -> ("B02", "b02", "B2", "b2", "blue")."""
    short = "B" + num.lstrip("0") if num.isdigit() else "B" + num
    keys = ["B" + num, "b" + num.lower()]
    if short != "B" + num:
        keys += [short, short.lower()]
    return (*keys, name)


# Sentinel-2A MSI: (band number, common name, min, centre, max). Centres are the S2A SRF
# central wavelengths; edges are the SRF band limits (wider than FWHM in the SWIR, where the
# responses have long shoulders).
_S2A_TABLE: tuple[tuple[str, str, float, float, float], ...] = (
    ("01", "coastal", 432.0, 442.7, 453.0),
    ("02", "blue", 458.0, 492.4, 523.0),
    ("03", "green", 542.0, 559.8, 578.0),
    ("04", "red", 649.0, 664.6, 680.0),
    ("05", "rededge1", 697.0, 704.1, 712.0),
    ("06", "rededge2", 733.0, 740.5, 748.0),
    ("07", "rededge3", 773.0, 782.8, 793.0),
    ("08", "nir", 780.0, 832.8, 886.0),
    ("8A", "nir08", 854.0, 864.7, 875.0),
    ("09", "nir09", 935.0, 945.1, 955.0),
    ("10", "cirrus", 1337.0, 1373.5, 1412.0),
    ("11", "swir16", 1539.0, 1613.7, 1682.0),
    ("12", "swir22", 2078.0, 2202.4, 2320.0),
)
# Sentinel-2B SRF central wavelengths; the band edges move with them.
_S2B_CENTRES: dict[str, float] = {
    "01": 442.3,
    "02": 492.1,
    "03": 559.0,
    "04": 665.0,
    "05": 703.8,
    "06": 739.1,
    "07": 779.7,
    "08": 833.0,
    "8A": 864.0,
    "09": 943.2,
    "10": 1376.9,
    "11": 1610.4,
    "12": 2185.7,
}


def _s2_bands(centres: Mapping[str, float] | None = None, *, l2a: bool = False) -> tuple[Band, ...]:
    out = []
    for num, name, lo, c, hi in _S2A_TABLE:
        if l2a and num == "10":  # the cirrus band is dropped by Sen2Cor
            continue
        shift = 0.0 if centres is None else round(centres[num] - c, 1)
        out.append(
            _b(
                name,
                round(lo + shift, 1),
                round(c + shift, 1),
                round(hi + shift, 1),
                *_s2_keys(num, name),
            )
        )
    return tuple(out)


def _ls_keys(n: int, *extra: str, prefix: str = "SR_B") -> tuple[str, ...]:
    return (f"{prefix}{n}", f"B{n}", f"b{n}", *extra)


# Collection 2 Level-2 surface temperature: DN * 0.00341802 + 149.0 = kelvin.
_ST = {"scale": 0.00341802, "offset": 149.0}

# Landsat 8 OLI / TIRS: measured band edges (Barsi et al. 2014) and centres.
_OLI_TIRS: tuple[Band, ...] = (
    _b("coastal", 435.0, 443.0, 451.0, *_ls_keys(1, "coastal")),
    _b("blue", 452.0, 482.0, 512.1, *_ls_keys(2, "blue")),
    _b("green", 532.7, 561.4, 589.9, *_ls_keys(3, "green")),
    _b("red", 635.9, 654.6, 672.3, *_ls_keys(4, "red")),
    _b("nir", 850.5, 864.7, 878.8, *_ls_keys(5, "nir08", "nir")),
    _b("swir16", 1566.5, 1608.9, 1651.2, *_ls_keys(6, "swir16")),
    _b("swir22", 2107.4, 2200.7, 2294.1, *_ls_keys(7, "swir22")),
    _b("pan", 503.3, 589.5, 675.7, "B8", "b8", "pan"),
    _b("cirrus", 1363.2, 1373.4, 1383.6, "B9", "b9", "cirrus"),
    _b("lwir11", 10600.0, 10895.0, 11190.0, *_ls_keys(10, "lwir11", "lwir", prefix="ST_B"), **_ST),
    _b("lwir12", 11500.0, 12005.0, 12510.0, "B11", "b11", "lwir12"),
)
_OLI_L2_NAMES = {"coastal", "blue", "green", "red", "nir", "swir16", "swir22", "lwir11"}

# Landsat 5 TM: USGS band limits, centres from Chander et al. (2009). B4 is nir, B5 swir16.
_TM: tuple[Band, ...] = (
    _b("blue", 450.0, 485.0, 520.0, *_ls_keys(1, "blue")),
    _b("green", 520.0, 569.0, 600.0, *_ls_keys(2, "green")),
    _b("red", 630.0, 660.0, 690.0, *_ls_keys(3, "red")),
    _b("nir", 760.0, 840.0, 900.0, *_ls_keys(4, "nir08", "nir")),
    _b("swir16", 1550.0, 1676.0, 1750.0, *_ls_keys(5, "swir16")),
    _b("swir22", 2080.0, 2223.0, 2350.0, *_ls_keys(7, "swir22")),
    _b("lwir", 10400.0, 11450.0, 12500.0, *_ls_keys(6, "lwir", "lwir11", prefix="ST_B"), **_ST),
)
# Landsat 7 ETM+: as TM with a narrower nir and swir22, plus a panchromatic band.
_ETM: tuple[Band, ...] = (
    _b("blue", 450.0, 483.0, 520.0, *_ls_keys(1, "blue")),
    _b("green", 520.0, 560.0, 600.0, *_ls_keys(2, "green")),
    _b("red", 630.0, 662.0, 690.0, *_ls_keys(3, "red")),
    _b("nir", 770.0, 835.0, 900.0, *_ls_keys(4, "nir08", "nir")),
    _b("swir16", 1550.0, 1648.0, 1750.0, *_ls_keys(5, "swir16")),
    _b("swir22", 2090.0, 2206.0, 2350.0, *_ls_keys(7, "swir22")),
    _b(
        "lwir",
        10400.0,
        11450.0,
        12500.0,
        *_ls_keys(6, "lwir", "lwir11", "B6_VCID_1", "B6_VCID_2", prefix="ST_B"),
        **_ST,
    ),
    _b("pan", 520.0, 706.0, 900.0, "B8", "b8", "pan"),
)

# PlanetScope SuperDove (PSB.SD); the 4-band product carries its blue, green, red and nir.
_SUPERDOVE: tuple[Band, ...] = (
    _b("coastal", 431.0, 443.0, 452.0, "coastal_blue", "b1", "coastal"),
    _b("blue", 465.0, 490.0, 515.0, "blue", "b2"),
    _b("green_i", 513.0, 531.0, 549.0, "green_i", "b3"),
    _b("green", 547.0, 565.0, 583.0, "green", "b4"),
    _b("yellow", 600.0, 610.0, 620.0, "yellow", "b5"),
    _b("red", 650.0, 665.0, 680.0, "red", "b6"),
    _b("rededge", 697.0, 705.0, 713.0, "rededge", "red_edge", "b7"),
    _b("nir", 845.0, 865.0, 885.0, "nir", "b8"),
)
_PS4: tuple[Band, ...] = tuple(
    replace(b, asset_keys=(b.name, f"b{i}"))
    for i, b in enumerate((_SUPERDOVE[1], _SUPERDOVE[3], _SUPERDOVE[5], _SUPERDOVE[7]), start=1)
)

_S2_L2A_SCALE = (1e-4, 0.0)
_LS_L2_SCALE = (2.75e-5, -0.2)
_LS_L1_SCALE = (2e-5, -0.1)


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _build_catalogue() -> dict[str, Sensor]:
    sensors = [*_sentinel2_sensors(), *_landsat_sensors(), *_planetscope_sensors()]
    return {s.name: s for s in sensors}


def _sentinel2_sensors() -> list[Sensor]:
    sensors: list[Sensor] = []
    s2_variants: tuple[tuple[str, str, Mapping[str, float] | None], ...] = (
        ("sentinel-2", "sentinel-2", None),
        ("sentinel-2a", "sentinel-2a", None),
        ("sentinel-2b", "sentinel-2b", _S2B_CENTRES),
        ("sentinel-2c", "sentinel-2c", None),  # S2C: S2A values until its SRF is tabulated here
    )
    for stem, platform, centres in s2_variants:
        short = stem.replace("sentinel-", "s")  # s2, s2a, ...
        for level in LEVELS:
            aliases = [f"{short}-{level}", f"{stem.replace('-', '')}-{level}"]
            if level == "l2a":
                aliases += [short, stem, stem.replace("-", "")]
            sensors.append(
                Sensor(
                    name=f"{stem}-{level}",
                    platform=platform,
                    instrument="msi",
                    bands=_s2_bands(centres, l2a=level == "l2a"),
                    level=level,
                    scale=_S2_L2A_SCALE[0],
                    offset=_S2_L2A_SCALE[1],
                    aliases=tuple(aliases),
                )
            )
    return sensors


def _landsat_sensors() -> list[Sensor]:
    sensors: list[Sensor] = []
    landsat: tuple[tuple[int, str, tuple[Band, ...]], ...] = (
        (5, "tm", _TM),
        (7, "etm+", _ETM),
        (8, "oli-tirs", _OLI_TIRS),
        (9, "oli-tirs", _OLI_TIRS),  # OLI-2 / TIRS-2 match OLI / TIRS to within a nm or two
    )
    for num, instrument, bands in landsat:
        l2_bands = tuple(b for b in bands if b.name in _OLI_L2_NAMES | {"lwir"})
        l1_bands = tuple(replace(b, scale=None, offset=None) for b in bands)
        l2_aliases = [f"landsat{num}", f"landsat-{num}", f"l{num}", f"landsat{num}-l2"]
        if num == 8:
            l2_aliases += ["landsat-c2-l2", "landsat", "landsat-8-9-l2"]
        sensors.append(
            Sensor(
                name=f"landsat-{num}-l2",
                platform=f"landsat-{num}",
                instrument=instrument,
                bands=l2_bands,
                level="l2a",
                scale=_LS_L2_SCALE[0],
                offset=_LS_L2_SCALE[1],
                aliases=tuple(l2_aliases),
            )
        )
        sensors.append(
            Sensor(
                name=f"landsat-{num}-l1",
                platform=f"landsat-{num}",
                instrument=instrument,
                bands=l1_bands,
                level="l1c",
                scale=_LS_L1_SCALE[0],
                offset=_LS_L1_SCALE[1],
                aliases=(f"landsat{num}-l1", f"l{num}-l1"),
            )
        )
    return sensors


def _planetscope_sensors() -> list[Sensor]:
    sensors: list[Sensor] = []
    sensors.append(
        Sensor(
            name="planetscope-4b",
            platform="planetscope",
            instrument="psb.sd",
            bands=_PS4,
            level="l2a",
            scale=1e-4,
            offset=0.0,
            aliases=("planetscope", "ps4", "ps-4b", "psscene-4b", "dove"),
        )
    )
    sensors.append(
        Sensor(
            name="planetscope-8b",
            platform="planetscope",
            instrument="psb.sd",
            bands=_SUPERDOVE,
            level="l2a",
            scale=1e-4,
            offset=0.0,
            aliases=("superdove", "ps8", "ps-8b", "psscene-8b", "psb.sd"),
        )
    )
    return sensors


#: Every known sensor by name.
SENSORS: dict[str, Sensor] = _build_catalogue()

_ALIASES: dict[str, str] = {}
for _s in SENSORS.values():
    _ALIASES[_norm(_s.name)] = _s.name
    for _a in _s.aliases:
        _ALIASES.setdefault(_norm(_a), _s.name)

#: Generic wavelengths of each common name, for data whose variables are just "blue", "nir", ...
#: Sentinel-2A values for the Sentinel-2 names, Landsat 8 for the thermal and pan bands,
#: SuperDove for the PlanetScope-only names.
COMMON_NAMES: dict[str, tuple[float, float, float]] = {
    **{b.name: b.descriptor for b in SENSORS["sentinel-2a-l1c"].bands},
    **{
        b.name: b.descriptor
        for b in SENSORS["landsat-8-l1"].bands
        if b.name in ("lwir11", "lwir12", "pan")
    },
    "lwir": SENSORS["landsat-7-l1"].band("lwir").descriptor,
    **{
        b.name: b.descriptor
        for b in SENSORS["planetscope-8b"].bands
        if b.name in ("green_i", "yellow", "rededge")
    },
}


# --------------------------------------------------------------------------------------------
# sensors


def list_sensors() -> list[str]:
    """Names of every sensor in the catalogue.

    Examples
    --------
    >>> "landsat-8-l2" in list_sensors()
    True
    """
    return sorted(SENSORS)


def get_sensor(name: str | Sensor) -> Sensor:
    """A sensor by name or alias, case-insensitive (``_`` and ``-`` are interchangeable).

    Raises
    ------
    UnknownSensorError
        For an unknown name; the message lists the valid names and the closest match.

    Examples
    --------
    >>> get_sensor("S2_L2A").name
    'sentinel-2-l2a'
    >>> get_sensor("landsat-c2-l2").name
    'landsat-8-l2'
    """
    if isinstance(name, Sensor):
        return name
    key = _ALIASES.get(_norm(str(name)))
    if key is None:
        raise UnknownSensorError(
            f"unknown sensor {name!r}; valid sensors are {sorted(SENSORS)} "
            f"(aliases such as 's2', 'landsat8', 'landsat-c2-l2' also work)."
            + did_you_mean(_norm(str(name)), [*SENSORS, *_ALIASES])
        )
    return SENSORS[key]


def _family(name: str) -> str:
    for fam in ("sentinel-2", "landsat", "planetscope"):
        if name.startswith(fam):
            return fam
    return name


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


# zero-padded numbers, B8A and B12 never occur in Landsat C2 names; B10 / B11 occur in both
_S2_PROOF = re.compile(r"^(b0[1-9]|b8a|b12)$")
_S2_L2A_VARS = {"scl", "aot", "wvp"}
_ES_S2_NAMES = {"rededge1", "rededge2", "rededge3", "nir09"}
_PS8_NAMES = {"coastal-blue", "green-i", "yellow"}


def guess_sensor(variables: Sequence[str], attrs: Mapping[str, Any] | None = None) -> Sensor | None:
    """The sensor of a dataset, from its attributes and variable names, or None if unsure.

    Attributes checked: ``platform``, ``constellation``, ``instruments`` and
    ``processing:level`` (STAC item properties as odc-stac / stackstac copy them). Variable
    names decide only when they prove the sensor: ``B8A`` or a zero-padded ``B01`` .. ``B12``
    mean Sentinel-2; ``SR_B6`` / ``ST_B10`` / ``lwir11`` mean Landsat 8/9; ``ST_B6`` / ``lwir``
    mean Landsat 5/7. Bare ``B1`` .. ``B7`` give None because ``B4`` is red on Landsat 8/9 but
    nir on Landsat 5/7; ``B9``, ``B10`` or ``B11`` (without ``B12``) prove Landsat 8/9.

    Parameters
    ----------
    variables
        Data variable names (or band-coordinate values).
    attrs
        Dataset attributes, optional.

    Returns
    -------
    Sensor or None

    Examples
    --------
    >>> guess_sensor(["B02", "B03", "B04", "B8A", "SCL"]).name
    'sentinel-2-l2a'
    >>> guess_sensor(["SR_B2", "SR_B5", "SR_B6", "qa_pixel"]).name
    'landsat-8-l2'
    >>> guess_sensor(["B1", "B2", "B3", "B4"]) is None
    True
    >>> guess_sensor(["red", "nir"], {"platform": "landsat-7"}).name
    'landsat-7-l2'
    """
    attrs = attrs or {}
    names = [_norm(v) for v in variables]
    raw = {str(v).strip().lower() for v in variables}
    nset = set(names)

    # level from attributes, else from the variables
    level: str | None = None
    for lv in _as_list(attrs.get("processing:level")) + _as_list(attrs.get("processing_level")):
        lv = lv.lower()
        if lv.startswith("l2") or lv in ("surface", "sr"):
            level = "l2"
        elif lv.startswith("l1"):
            level = "l1"
    if level is None:
        if nset & _S2_L2A_VARS or any(n.startswith(("sr-b", "st-b")) for n in names):
            level = "l2"
        elif "b10" in raw and any(_S2_PROOF.match(r) for r in raw):
            level = "l1"  # Sen2Cor drops the cirrus band, so B10 means L1C

    # platform from attributes
    platform = ""
    for key in ("platform", "constellation", "instruments", "instrument"):
        for v in _as_list(attrs.get(key)):
            v = _norm(v)
            if v.startswith("sentinel-2") or v == "msi":
                platform = platform or v.replace("msi", "sentinel-2")
            elif m := re.match(r"^landsat-?(\d)", v):
                platform = f"landsat-{m.group(1)}"
            elif v in ("tm",):
                platform = platform or "landsat-5"
            elif v in ("etm+", "etm"):
                platform = platform or "landsat-7"
            elif v in ("oli", "tirs", "oli-tirs"):
                platform = platform or "landsat-8"
            elif v.startswith(("planetscope", "psb", "superdove", "dove")):
                platform = platform or "planetscope"
        if platform and platform != "sentinel-2":
            break

    # platform from variable names
    if not platform:
        lwir_l89 = bool(nset & {"sr-b6", "st-b10", "lwir11", "lwir12"})
        lwir_l57 = bool(nset & {"st-b6", "lwir", "b6-vcid-1", "b6-vcid-2"})
        if any(_S2_PROOF.match(r) for r in raw) or nset & (_ES_S2_NAMES | _S2_L2A_VARS):
            platform = "sentinel-2"
        elif lwir_l89 and not lwir_l57:
            platform = "landsat-8"
        elif lwir_l57 and not lwir_l89:
            platform = "landsat-7"
        elif nset & {"b9", "b10", "b11"} and "b12" not in nset:
            platform = "landsat-8"
            level = level or "l1"
        elif nset & _PS8_NAMES:
            platform = "planetscope-8b"

    if not platform:
        return None
    if platform.startswith("sentinel-2"):
        if platform not in ("sentinel-2a", "sentinel-2b", "sentinel-2c"):
            platform = "sentinel-2"
        return SENSORS[f"{platform}-{'l1c' if level == 'l1' else 'l2a'}"]
    if platform.startswith("landsat-"):
        name = f"{platform}-{'l1' if level == 'l1' else 'l2'}"
        return SENSORS.get(name)
    if platform.startswith("planetscope"):
        eight = platform.endswith("8b") or bool(nset & (_PS8_NAMES | {"b5", "b8"}))
        return SENSORS["planetscope-8b" if eight else "planetscope-4b"]
    return None


# --------------------------------------------------------------------------------------------
# band resolution


def _check_wavelengths(var: str, value: Any) -> tuple[float, float, float]:
    try:
        lo, c, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise BandSpecError(
            f"wavelengths[{var!r}] = {value!r} is not (min, centre, max) in nm; "
            f"pass e.g. wavelengths={{{var!r}: (650.0, 665.0, 680.0)}}"
        ) from None
    a, b = WAVELENGTH_RANGE
    bad = [w for w in (lo, c, hi) if not (math.isfinite(w) and a < w < b)]
    if bad:
        hint = " (micrometres? multiply by 1000)" if all(0 < w < 15 for w in (lo, c, hi)) else ""
        raise BandSpecError(
            f"wavelengths[{var!r}] = {(lo, c, hi)}: {bad[0]} is outside {a:g} < nm < {b:g}{hint}; "
            "wavelengths are in nanometres"
        )
    if not lo <= c <= hi:
        raise BandSpecError(
            f"wavelengths[{var!r}] = {(lo, c, hi)} must satisfy min <= centre <= max; "
            "pass (min, centre, max) in that order"
        )
    return (lo, c, hi)


def _known_names(sensor: Sensor | None) -> list[str]:
    names = list(COMMON_NAMES)
    if sensor is not None:
        names += [n for n in sensor.band_names if n not in COMMON_NAMES]
    return names


def _generic(name: str) -> tuple[str, tuple[float, float, float]] | None:
    k = name.strip().lower()
    for cn, desc in COMMON_NAMES.items():
        if cn == k:
            return cn, desc
    return None


def resolve_bands(
    variables: Sequence[str],
    *,
    sensor: str | Sensor | None = None,
    bands: Mapping[str, str] | None = None,
    wavelengths: Mapping[str, tuple[float, float, float]] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> list[ResolvedBand]:
    """Match each data variable to a band with known wavelengths.

    Precedence: ``wavelengths=`` (a user-described band), then ``bands=`` (common name ->
    variable), then the sensor's band names and asset keys (case-insensitive), then
    :data:`COMMON_NAMES`. Variables that match nothing (``"SCL"``, ``"qa_pixel"``,
    ``"spatial_ref"`` ...) are skipped. Each common name is given to one variable only: an
    explicit ``bands=`` entry wins, otherwise the first variable that matches.

    Parameters
    ----------
    variables
        Data variable names (or band-coordinate values), in the order to return them.
    sensor
        Sensor name / alias or :class:`Sensor`. None: :func:`guess_sensor` from ``variables``
        and ``attrs``, falling back to common names only.
    bands
        ``{common_name: variable}``, e.g. ``{"nir": "my_nir"}``.
    wavelengths
        ``{variable: (min, centre, max)}`` in nm, for sensors not in the catalogue.
    attrs
        Dataset attributes, used to guess the sensor.

    Returns
    -------
    list of ResolvedBand
        The recognised variables, in the order of ``variables``.

    Raises
    ------
    BandSpecError
        A ``bands=`` or ``wavelengths=`` entry names an unknown band or a missing variable, or
        gives invalid wavelengths.

    Examples
    --------
    >>> [(r.var, r.name) for r in resolve_bands(["B02", "B8A", "SCL"])]
    [('B02', 'blue'), ('B8A', 'nir08')]
    >>> [r.name for r in resolve_bands(["B3", "B4"], sensor="landsat-7-l1")]
    ['red', 'nir']
    >>> resolve_bands(["x"], wavelengths={"x": (600, 650, 700)})[0].centre
    650.0
    """
    variables = [str(v) for v in variables]
    sens = get_sensor(sensor) if sensor is not None else guess_sensor(variables, attrs)
    wavelengths = dict(wavelengths or {})
    bands = dict(bands or {})
    by_lower = {v.lower(): v for v in variables}

    def find_var(v: str, what: str) -> str:
        if v in variables:
            return v
        if v.lower() in by_lower:
            return by_lower[v.lower()]
        raise BandSpecError(
            f"{what} names variable {v!r}, which the dataset does not have; "
            f"the dataset has {variables}." + did_you_mean(v, variables)
        )

    out: dict[str, ResolvedBand] = {}
    for var, desc in wavelengths.items():
        real = find_var(str(var), f"wavelengths={{{var!r}: ...}}")
        lo, c, hi = _check_wavelengths(str(var), desc)
        out[real] = ResolvedBand(real, real, lo, c, hi)

    known = _known_names(sens)
    for cname, var in bands.items():
        band = sens.find(cname) if sens is not None else None
        generic = _generic(cname)
        if band is not None and band.name.lower() == cname.lower():
            name, desc3 = band.name, band.descriptor
        elif generic is not None:
            name, desc3 = generic
        else:
            raise BandSpecError(
                f"bands={{{cname!r}: {var!r}}}: {cname!r} is not a known band name; "
                f"known names are {known}." + did_you_mean(cname, known)
            )
        real = find_var(str(var), f"bands={{{cname!r}: {var!r}}}")
        if real not in out:  # wavelengths= wins
            out[real] = ResolvedBand(real, name, *desc3)

    taken = {r.name for r in out.values()}
    for var in variables:
        if var in out:
            continue
        band = sens.find(var) if sens is not None else None
        if band is not None:
            name, desc3 = band.name, band.descriptor
        elif (g := _generic(var)) is not None:
            name, desc3 = g
        else:
            continue
        if name in taken:
            continue
        taken.add(name)
        out[var] = ResolvedBand(var, name, *desc3)
    return [out[v] for v in variables if v in out]


def require_bands(
    resolved: Sequence[ResolvedBand],
    needed: Sequence[str],
    available_vars: Sequence[str],
    model: str,
) -> list[ResolvedBand]:
    """Check a model's bands are all present and return them in the model's order.

    Raises
    ------
    MissingBandsError
        Naming the missing bands, the dataset's variables and the ``bands=`` fix; when exactly
        one variable is unrecognised, it is suggested by name.

    Examples
    --------
    >>> r = resolve_bands(["B02", "B03", "B04", "B08"])
    >>> [b.var for b in require_bands(r, ["red", "nir"], ["B02", "B03", "B04", "B08"], "m")]
    ['B04', 'B08']
    """
    by_name = {r.name: r for r in resolved}
    missing = [n for n in needed if n not in by_name]
    if missing:
        used = {r.var for r in resolved}
        spare = [v for v in available_vars if v not in used]
        if len(spare) == 1 and len(missing) == 1:
            fix = f"pass bands={{{missing[0]!r}: {spare[0]!r}}} if that variable holds it"
        else:
            entries = ", ".join(f"{m!r}: '<variable>'" for m in missing)
            it = "it" if len(missing) == 1 else "them"
            fix = f"pass bands={{{entries}}} to say which variable holds {it}"
        raise MissingBandsError(
            f"model {model!r} needs bands {list(needed)}; missing {missing}; "
            f"the dataset has {list(available_vars)}; {fix}"
        )
    return [by_name[n] for n in needed]


def descriptor_array(resolved: Sequence[ResolvedBand]) -> np.ndarray:
    """``(C, 3)`` float32 array of (min, centre, max) wavelengths in nm.

    Examples
    --------
    >>> descriptor_array(resolve_bands(["red", "nir"])).shape
    (2, 3)
    """
    if not resolved:
        return np.zeros((0, 3), dtype=np.float32)
    return np.asarray([r.descriptor for r in resolved], dtype=np.float32)


# --------------------------------------------------------------------------------------------
# radiometry


def _version(value: Any) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", str(value))
    return tuple(int(p) for p in parts[:2]) if parts else None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def s2_baseline_offset(attrs: Mapping[str, Any]) -> float:
    """Reflectance offset of Sentinel-2 DN implied by the processing baseline.

    From baseline 04.00 (January 2022) ESA adds 1000 to every DN so negative reflectance
    survives, hence ``reflectance = DN * 1e-4 - 0.1``. An explicit ``add_offset`` (reflectance
    units) is used as is; ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` (product metadata, in DN) are
    converted with the 1e-4 quantification. Earth Search's ``earthsearch:boa_offset_applied``
    means the offset was already removed.

    Examples
    --------
    >>> s2_baseline_offset({"s2:processing_baseline": "05.10"})
    -0.1
    >>> s2_baseline_offset({"s2:processing_baseline": "03.01"})
    0.0
    """
    if "add_offset" in attrs:
        return float(attrs["add_offset"])
    for key in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET"):
        if key in attrs:
            v = float(np.ravel(np.asarray(attrs[key], dtype=float))[0])
            return v * 1e-4 if abs(v) > 1 else v
    if _truthy(attrs.get("earthsearch:boa_offset_applied", False)):
        return 0.0
    for key in ("s2:processing_baseline", "processing_baseline", "processing:version"):
        if key in attrs:
            ver = _version(attrs[key])
            if ver is not None and ver >= (4, 0):
                return -0.1
            return 0.0
    return 0.0


def reflectance_scaling(
    dtype: np.dtype | type,
    attrs: Mapping[str, Any],
    *,
    scale: float | None = None,
    offset: float | None = None,
    sensor: str | Sensor | None = None,
    band: str | Band | None = None,
) -> tuple[float, float]:
    """``(scale, offset)`` such that ``reflectance = DN * scale + offset``.

    Rules: an explicit ``scale=`` (and ``offset=``) always wins. Otherwise float data is taken
    as reflectance ``(1, 0)`` unless its attributes carry ``scale_factor`` / ``add_offset``;
    integer data uses ``scale_factor`` / ``add_offset`` attributes, then the sensor's default
    (the band's own for thermal bands). For Sentinel-2 integer data whose offset is not given
    otherwise, :func:`s2_baseline_offset` applies.

    Parameters
    ----------
    dtype
        The data's dtype.
    attrs
        The variable's (or dataset's) attributes.
    scale, offset
        Explicit values.
    sensor
        The sensor, for its default scaling.
    band
        Band name / asset key or :class:`Band`, for per-band overrides (thermal).

    Raises
    ------
    RadiometryError
        Integer data with no scale known; the message says what to pass.

    Examples
    --------
    >>> reflectance_scaling(np.dtype("uint16"), {}, sensor="landsat-8-l2")
    (2.75e-05, -0.2)
    >>> reflectance_scaling(np.dtype("uint16"), {"s2:processing_baseline": "05.09"},
    ...                     sensor="sentinel-2-l2a")
    (0.0001, -0.1)
    >>> reflectance_scaling(np.dtype("float32"), {})
    (1.0, 0.0)
    >>> reflectance_scaling(np.dtype("uint16"), {"scale_factor": 1.0, "add_offset": 0.0},
    ...                     sensor="sentinel-2-l2a")
    (0.0001, 0.0)
    """
    dt = np.dtype(dtype)
    sens = get_sensor(sensor) if sensor is not None else None
    attr_scale = attrs.get("scale_factor")
    attr_offset = attrs.get("add_offset")
    if dt.kind in "iu" and attr_scale is not None and float(attr_scale) == 1.0 and not attr_offset:
        # rioxarray.open_rasterio writes scale_factor=1, add_offset=0 for every raster: that is
        # "no scaling information", not a statement that integer DN are reflectance
        attr_scale = attr_offset = None

    if scale is not None:
        if offset is None:
            if attr_offset is not None:
                offset = float(attr_offset)
            elif sens is not None and sens.family == "sentinel-2" and dt.kind in "iu":
                offset = s2_baseline_offset(attrs)
            else:
                offset = 0.0
        return float(scale), float(offset)

    if dt.kind in "fc":
        s = 1.0 if attr_scale is None else float(attr_scale)
        o = offset if offset is not None else attr_offset
        return s, float(o) if o is not None else 0.0

    if dt.kind not in "iub":
        raise RadiometryError(f"cannot scale data of dtype {dt} to reflectance")

    b = sens.band(band) if sens is not None and isinstance(band, str) else band
    b = b if isinstance(b, Band) else None
    if attr_scale is not None:
        s = float(attr_scale)
    elif b is not None and b.scale is not None:
        s = b.scale
    elif sens is not None:
        s = sens.scale
    else:
        raise RadiometryError(
            f"integer data ({dt}) with no scale: pass scale=1e-4 for Sentinel-2 digital numbers, "
            "scale=2.75e-5, offset=-0.2 for Landsat Collection 2 Level-2, sensor='<name>' "
            f"(one of {sorted(SENSORS)}), or set the variable's scale_factor attribute"
        )
    if offset is None:
        if attr_offset is not None:
            offset = float(attr_offset)
        elif b is not None and b.scale is not None and attr_scale is None:
            offset = b.offset or 0.0
        elif sens is not None and sens.family == "sentinel-2":
            offset = s2_baseline_offset(attrs)
        elif sens is not None and attr_scale is None:
            offset = sens.offset
        else:
            offset = 0.0
    return float(s), float(offset)
