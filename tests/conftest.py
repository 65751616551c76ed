"""Shared fixtures: synthetic reflectance cubes, a real On Cloud N chip, a tiny test model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xcloud.bands import get_sensor
from xcloud.models import ModelSpec, register_model

DATA = Path(__file__).parent / "data"
S2_BANDS = ("B02", "B03", "B04", "B08")
#: Their wavelengths, from xcloud.bands (tests never type a wavelength table of their own).
S2_WL = get_sensor("sentinel-2a-l2a").descriptors(S2_BANDS)


def mirrored_chip(chip: xr.Dataset, mirrors: int, chunk: int) -> xr.Dataset:
    """The On Cloud N ``chip`` (the ``oncloudn_chip`` fixture, 256 px) as float32 reflectance,
    joined to its mirror image ``mirrors`` times, along x then y alternately (2: 512 x 512 px,
    4: 1024 x 1024 px), in chunks of ``chunk`` px."""
    x = np.stack([chip[b].values for b in S2_BANDS]).astype(np.float32) / 10000
    for axis in (-1, -2, -1, -2)[:mirrors]:
        x = np.concatenate([x, np.flip(x, axis)], axis=axis)
    return xr.Dataset(
        {b: (("y", "x"), x[i]) for i, b in enumerate(S2_BANDS)},
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    ).chunk({"y": chunk, "x": chunk})


def count_calls(monkeypatch, cls: type, method: str) -> list[int]:
    """Wrap ``cls.method`` (a predictor's ``predict`` or ``predict_tensor``) for one test so that
    it records the number of tiles of each call; returns that list."""
    calls: list[int] = []
    real = getattr(cls, method)

    def counting(self, x, **kw):
        calls.append(len(x))
        return real(self, x, **kw)

    monkeypatch.setattr(cls, method, counting)
    return calls


#: A tiny deterministic model: fast enough for exact-equality and property tests.
TEST_MODEL = "xcloud-test-box"


class BoxPredictor:
    """Class scores from a 3x3 box mean of brightness and the visible mean (tile-local)."""

    def __init__(self, spec: ModelSpec, device: str):
        self.spec = spec

    def predict(self, x, *, bands, wavelengths, level):
        b = x.mean(axis=1)  # (N, H, W)
        p = np.pad(b, ((0, 0), (1, 1), (1, 1)), mode="edge")
        h, w = b.shape[-2:]
        box = sum(p[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
        vis = x[:, :3].mean(axis=1)
        scores = np.stack(
            [
                np.full_like(box, 0.25),  # clear
                4.0 * (box - 0.3),  # cloud
                0.5 - 10.0 * np.abs(box - 0.22),  # thin_cloud
                20.0 * (0.04 - vis),  # cloud_shadow
            ],
            axis=1,
        )
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _load_box(spec: ModelSpec, device: str) -> BoxPredictor:
    return BoxPredictor(spec, device)


register_model(
    ModelSpec(
        name=TEST_MODEL,
        description="test-only 3x3 box model",
        classes=("clear", "cloud", "thin_cloud", "cloud_shadow"),
        loader=_load_box,
        bands=("blue", "green", "red", "nir"),
        tile_size=64,
        overlap=16,
        licence="test",
    )
)


def reflectance(shape: tuple[int, ...], seed: int = 0, nbands: int = 4) -> np.ndarray:
    """Smooth, varied float32 reflectance ``(nbands, *shape)``: clear land, clouds, shadows."""
    rng = np.random.default_rng(seed)
    *lead, ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    out = np.empty((nbands, *lead, ny, nx), np.float32)
    for idx in np.ndindex(*lead) if lead else [()]:
        field = np.zeros((ny, nx), np.float32)
        for _ in range(6):
            cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
            r = rng.uniform(8, 40)
            amp = rng.uniform(-0.15, 0.7)
            field += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        base = 0.06 + 0.02 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
        for b in range(nbands):
            noise = rng.normal(0, 0.005, (ny, nx)).astype(np.float32)
            veg = 0.2 if b == nbands - 1 else 0.0
            out[(b, *idx)] = np.clip(base + veg + field + noise, 0.0, 1.4)
    return out


def make_dataset(
    ny: int = 96,
    nx: int = 96,
    *,
    time: int | None = None,
    seed: int = 0,
    chunks: dict | None = None,
    names: tuple[str, ...] = S2_BANDS,
    attrs: dict | None = None,
) -> xr.Dataset:
    """An odc-stac style Sentinel-2 L2A reflectance Dataset with x/y(/time) coords."""
    shape = (time, ny, nx) if time else (ny, nx)
    dims = ("time", "y", "x") if time else ("y", "x")
    refl = reflectance(shape, seed=seed, nbands=len(names))
    coords = {"y": 5_000_000.0 - 10.0 * np.arange(ny), "x": 300_000.0 + 10.0 * np.arange(nx)}
    if time:
        coords["time"] = np.array(
            [np.datetime64("2024-01-01") + np.timedelta64(5 * i, "D") for i in range(time)]
        )
    ds = xr.Dataset(
        {n: (dims, refl[i]) for i, n in enumerate(names)},
        coords=coords,
        attrs={"platform": "sentinel-2a", "processing:level": "L2A", **(attrs or {})},
    )
    if chunks:
        ds = ds.chunk(chunks)
    return ds


@pytest.fixture
def s2_dataset() -> xr.Dataset:
    """96 x 96 numpy-backed Sentinel-2 L2A reflectance, bands B02 B03 B04 B08."""
    return make_dataset()


@pytest.fixture(scope="session")
def oncloudn_chip() -> xr.Dataset:
    """Real On Cloud N chip ``jaag`` (256 x 256, uint16 DN, Sentinel-2 L2A, EPSG:32734)."""
    import rioxarray

    bands = {}
    for b in S2_BANDS:
        da = rioxarray.open_rasterio(DATA / "oncloudn_jaag" / f"{b}.tif").squeeze("band", drop=True)
        bands[b] = da.load()
    ds = xr.Dataset(bands)
    ds.attrs.update({"platform": "sentinel-2a", "processing:level": "L2A"})
    return ds
