"""Training data: labelled chips, clear scenes with synthetic clouds, augmentation, band subsets.

Every sample is a :class:`Scene`: float32 reflectance ``(C, H, W)``, the bands' wavelengths
``(C, 3)`` (min / centre / max nm) and a ``uint8`` label map in xcloud's *training* codes:

=====  ====================================================================
code   meaning
=====  ====================================================================
0      clear
1      cloud
2      thin cloud
3      cloud shadow
4      cloud or thin cloud (On Cloud N "cloud": the labels do not separate them)
5      clear or cloud shadow (On Cloud N "clear": shadows are not labelled)
255    ignore (fill / nodata)
=====  ====================================================================

Codes 4 and 5 are *set-valued* labels: the loss rewards probability on any class of the set
(see :func:`xcloud.train.losses.partial_ce`).

Sources (see ``shared/data/DATA.md``):

* On Cloud N: 4 bands (B02 B03 B04 B08), L2A, DN / 10000, labels 0 clear / 1 cloud.
* L8 Biome: 7 TOA reflectance bands (B2 B3 B4 B5 B6 B7 B9); B10 (brightness temperature in
  kelvin) is dropped because SEnSeI takes reflectance. Masks 64 shadow / 128 clear / 192 thin /
  255 cloud / 0 fill.
* Clear scenes: EuroSAT (13-band S2 L1C, 64 x 64) and SEN12MS-CR clear patches (13-band L1C,
  256 x 256), kept only if a conservative cloud test finds them cloud-free
  (:func:`is_cloud_free`), with synthetic clouds, thin clouds and shadows composited on them
  (:func:`composite_clouds`) and exact labels.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from xcloud.bands import get_sensor
from xcloud.train.splits import L8BIOME_SPLITS, ONCLOUDN_VAL

__all__ = [
    "LANDSAT8",
    "SENTINEL2",
    "Batcher",
    "Scene",
    "augment",
    "composite_clouds",
    "default_data_root",
    "is_cloud_free",
    "load_clear",
    "load_l8biome",
    "load_oncloudn",
    "mark_unlabelled_shadow",
    "split_noisy_labels",
    "visible_mean",
]

ONCLOUDN_BANDS = ("B02", "B03", "B04", "B08")
L8BIOME_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B9")  # B10 (kelvin) dropped
EUROSAT_BANDS = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B09",
    "B10",
    "B11",
    "B12",
    "B8A",
)
SEN12MS_BANDS = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B10",
    "B11",
    "B12",
)

#: Wavelengths of the training sources' bands, from :mod:`xcloud.bands` (the one table that
#: inference also reads), keyed by the band names the files use.
SENTINEL2: dict[str, tuple[float, float, float]] = dict(
    zip(SEN12MS_BANDS, get_sensor("sentinel-2a-l1c").descriptors(SEN12MS_BANDS), strict=True)
)
_OLI = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B9")
LANDSAT8: dict[str, tuple[float, float, float]] = dict(
    zip(_OLI, get_sensor("landsat-8-l1").descriptors(_OLI), strict=True)
)

#: Common names used by peers (ukis-csmask) for the bands above.
COMMON_NAMES = {
    "B02": "blue", "B03": "green", "B04": "red", "B08": "nir",
    "B2": "blue", "B3": "green", "B4": "red", "B5": "nir", "B6": "swir16", "B7": "swir22",
}  # fmt: skip

IGNORE = 255
L8BIOME_CODES = {64: 3, 128: 0, 192: 2, 255: 1, 0: IGNORE}


@dataclass
class Scene:
    """One image with labels, ready for cropping.

    Attributes
    ----------
    image
        ``(C, H, W)`` float32 reflectance.
    wavelengths
        ``(C, 3)`` float32 min / centre / max nm.
    label
        ``(H, W)`` uint8 training codes (see module docstring); None for clear scenes.
    name, source, level
        Identifier, dataset name and processing level (``"l1c"`` / ``"l2a"``).
    bands
        Band names in channel order.
    soft
        Optional ``(4, H, W)`` float32 teacher probabilities over the fine classes (clear, cloud,
        thin_cloud, cloud_shadow) for distillation (:mod:`xcloud.train.distill`); all zero
        where the teacher has no prediction.
    """

    image: np.ndarray
    wavelengths: np.ndarray
    label: np.ndarray | None
    name: str
    source: str
    level: str
    bands: tuple[str, ...]
    soft: np.ndarray | None = None


def default_data_root() -> Path:
    """``$XCLOUD_DATA`` or ``shared/data`` next to the repository."""
    env = os.environ.get("XCLOUD_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _wl(table: dict[str, tuple[float, float, float]], bands: tuple[str, ...]) -> np.ndarray:
    return np.array([table[b] for b in bands], dtype=np.float32)


def _read(path: str | Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read()


def load_oncloudn(root: str | Path | None = None, *, split: str = "train") -> list[Scene]:
    """On Cloud N chips of the ``train`` or ``val`` split (see :mod:`xcloud.train.splits`)."""
    base = Path(root or default_data_root()) / "labelled" / "oncloudn"
    out = []
    for chip in sorted(os.listdir(base / "features")):
        if (chip in ONCLOUDN_VAL) != (split == "val"):
            continue
        dn = np.concatenate(
            [_read(base / "features" / chip / f"{b}.tif") for b in ONCLOUDN_BANDS]
        ).astype(np.float32)
        lab = _read(base / "labels" / f"{chip}.tif")[0].astype(np.uint8)
        nodata = (dn == 0).all(axis=0)
        label = np.where(lab == 1, 4, 5).astype(np.uint8)
        label[nodata] = IGNORE
        out.append(
            Scene(
                dn / 10000.0,
                _wl(SENTINEL2, ONCLOUDN_BANDS),
                label,
                chip,
                "oncloudn",
                "l2a",
                ONCLOUDN_BANDS,
            )
        )
    return out


def load_l8biome(root: str | Path | None = None, *, split: str = "train") -> list[Scene]:
    """L8 Biome crops of ``split`` (``"train"`` or ``"val"``), thermal band dropped."""
    if split not in L8BIOME_SPLITS:
        raise ValueError(f"split must be one of {L8BIOME_SPLITS}, got {split!r}")
    base = Path(root or default_data_root()) / "labelled" / "l8biome" / split
    out = []
    for path in sorted(glob.glob(str(base / "images" / "*.tif"))):
        img = _read(path)[:7].astype(np.float32)
        raw = _read(base / "masks" / Path(path).name)[0]
        label = np.full(raw.shape, IGNORE, np.uint8)
        for k, v in L8BIOME_CODES.items():
            label[raw == k] = v
        fill = ~np.isfinite(img).all(axis=0)
        label[fill] = IGNORE
        img = np.nan_to_num(img, nan=0.0)
        out.append(
            Scene(
                img,
                _wl(LANDSAT8, L8BIOME_BANDS),
                label,
                Path(path).stem,
                "l8biome",
                "l1c",
                L8BIOME_BANDS,
            )
        )
    return out


def visible_mean(scene: Scene) -> np.ndarray:
    """``(H, W)`` mean reflectance of the bands centred below 700 nm (blue, green, red)."""
    return scene.image[scene.wavelengths[:, 1] < 700].mean(axis=0)


def label_contrast(scene: Scene) -> dict[str, float]:
    """How well a chip's cloud label agrees with its brightness.

    Returns the valid-pixel fractions labelled cloud (codes 1, 2, 4) and clear (0, 5), the mean
    visible reflectance (bands centred below 700 nm) of each, their difference ``contrast``
    (nan when either class is absent) and ``bright_frac``, the fraction of valid pixels with mean
    visible reflectance above 0.3.
    """
    assert scene.label is not None
    lab = scene.label
    valid = lab != IGNORE
    vis = visible_mean(scene)
    cloud = np.isin(lab, (1, 2, 4)) & valid
    clear = np.isin(lab, (0, 5)) & valid
    n = max(int(valid.sum()), 1)
    vc = float(vis[cloud].mean()) if cloud.any() else float("nan")
    vk = float(vis[clear].mean()) if clear.any() else float("nan")
    return {
        "cloud_frac": float(cloud.sum() / n),
        "clear_frac": float(clear.sum() / n),
        "vis_cloud": vc,
        "vis_clear": vk,
        "contrast": vc - vk,
        "bright_frac": float(((vis > 0.3) & valid).sum() / n),
    }


def split_noisy_labels(
    scenes: list[Scene],
    *,
    min_contrast: float = 0.015,
    min_overcast_vis: float = 0.15,
    max_clear_bright: float = 0.2,
) -> tuple[list[Scene], list[Scene]]:
    """Split ``scenes`` into those whose labels agree with the imagery and those that do not.

    Many On Cloud N training chips carry labels that contradict their own imagery (clear ocean
    labelled cloud, a bright cumulus field labelled clear, cloud masks *darker* than the clear
    area). A chip is kept when (see :func:`label_contrast`):

    * both classes cover >= 1 % of it and the labelled cloud is brighter than the labelled clear
      by at least ``min_contrast`` in mean visible reflectance; or
    * it is (almost) all cloud and its mean visible reflectance is >= ``min_overcast_vis``; or
    * it is (almost) all clear and at most ``max_clear_bright`` of it is brighter than 0.3.

    The rule uses only the chip's own image and label (never the validation split or a model);
    it is meant for sources without snow or bright desert in their training chips (it would drop
    an all-clear snow scene), which is why the CLI applies it to On Cloud N only.

    Examples
    --------
    >>> img = np.full((3, 4, 4), 0.05, np.float32); img[:, :2] = 0.6
    >>> from xcloud.bands import get_sensor
    >>> wl = np.array(get_sensor("sentinel-2a-l2a").descriptors(["blue", "green", "red"]), np.float32)
    >>> good = Scene(img, wl, np.where(img[0] > 0.3, 4, 5).astype(np.uint8), "a", "x", "l2a", ("b", "g", "r"))
    >>> bad = Scene(img, wl, np.where(img[0] > 0.3, 5, 4).astype(np.uint8), "b", "x", "l2a", ("b", "g", "r"))
    >>> [s.name for s in split_noisy_labels([good, bad])[0]]
    ['a']
    """
    kept, dropped = [], []
    for s in scenes:
        c = label_contrast(s)
        if c["cloud_frac"] >= 0.01 and c["clear_frac"] >= 0.01:
            ok = c["contrast"] >= min_contrast
        elif c["cloud_frac"] >= 0.01:
            ok = c["vis_cloud"] >= min_overcast_vis
        else:
            ok = c["bright_frac"] <= max_clear_bright
        (kept if ok else dropped).append(s)
    return kept, dropped


def mark_unlabelled_shadow(scenes: list[Scene]) -> tuple[list[Scene], list[str]]:
    """Relabel "clear" as "clear or cloud shadow" (code 5) in chips that label cloud but no shadow.

    Some labelled sets mark cloud shadow only in part of their scenes: of the 9 L8 Biome training
    crops with both cloud and clear, 4 label any shadow, yet the others show dark cloud shadows
    beside their clouds (Barren_03, Urban_00, Shrubland_02) labelled *clear*. Trained on as they
    are, those labels teach that a shadow is clear ground. Code 5 (see the module docstring) lets
    the loss accept clear or shadow there, so the shadow signal comes from the chips, teacher and
    synthetic scenes that do label it. Chips with no cloud keep their labels (no cloud, no cloud
    shadow), as do chips that label some shadow and chips with no plain "clear" (code 0) to
    relabel, such as On Cloud N's, whose clear is already code 5.

    Returns the scenes (relabelled copies where changed) and the names of those relabelled.

    Examples
    --------
    >>> from xcloud.bands import get_sensor
    >>> wl = np.array(get_sensor("sentinel-2a-l2a").descriptors(["blue", "green", "red"]), np.float32)
    >>> img = np.zeros((3, 2, 2), np.float32)
    >>> a = Scene(img, wl, np.array([[0, 1], [0, 0]], np.uint8), "a", "x", "l1c", ("b", "g", "r"))
    >>> b = Scene(img, wl, np.array([[0, 1], [3, 0]], np.uint8), "b", "x", "l1c", ("b", "g", "r"))
    >>> out, names = mark_unlabelled_shadow([a, b])
    >>> names, out[0].label.tolist(), out[1].label.tolist()
    (['a'], [[5, 1], [5, 5]], [[0, 1], [3, 0]])
    """
    out, changed = [], []
    for s in scenes:
        lab = s.label
        if (
            lab is not None
            and np.isin(lab, (1, 2, 4)).any()
            and (lab == 0).any()
            and not (lab == 3).any()
        ):
            s = replace(s, label=np.where(lab == 0, np.uint8(5), lab).astype(np.uint8))
            changed.append(s.name)
        out.append(s)
    return out, changed


def is_cloud_free(image: np.ndarray, bands: tuple[str, ...]) -> bool:
    """Conservative test that an S2 L1C scene has no cloud: cirrus (B10) dark everywhere and
    almost no pixel bright in blue while not snow (NDSI < 0.4)."""
    b = {n: image[i] for i, n in enumerate(bands)}
    if "B10" in b and np.quantile(b["B10"], 0.99) > 0.012:
        return False
    ndsi = (b["B03"] - b["B11"]) / (b["B03"] + b["B11"] + 1e-6)
    bright = (b["B02"] > 0.22) & (ndsi < 0.4)
    return bool(bright.mean() < 0.002)


def load_clear(
    root: str | Path | None = None, *, max_eurosat: int | None = None, split: str | None = None
) -> list[Scene]:
    """Cloud-free S2 L1C scenes (EuroSAT, SEN12MS-CR) that pass :func:`is_cloud_free`.

    ``split``: None (all), ``"train"`` or ``"val"`` (:func:`xcloud.train.splits.is_clear_val`)."""
    if split not in (None, "train", "val"):
        raise ValueError(f"split must be None, 'train' or 'val', got {split!r}")
    base = Path(root or default_data_root()) / "clear"
    out = []
    paths = sorted(glob.glob(str(base / "eurosat" / "*" / "*.tif")))[:max_eurosat]
    for path in paths:
        img = _read(path).astype(np.float32) / 10000.0
        if is_cloud_free(img, EUROSAT_BANDS):
            out.append(
                Scene(
                    img,
                    _wl(SENTINEL2, EUROSAT_BANDS),
                    None,
                    Path(path).stem,
                    "eurosat",
                    "l1c",
                    EUROSAT_BANDS,
                )
            )
    for path in sorted(glob.glob(str(base / "sen12mscr" / "*.tif"))):
        img = _read(path).astype(np.float32) / 10000.0
        if is_cloud_free(img, SEN12MS_BANDS):
            out.append(
                Scene(
                    img,
                    _wl(SENTINEL2, SEN12MS_BANDS),
                    None,
                    Path(path).stem,
                    "sen12mscr",
                    "l1c",
                    SEN12MS_BANDS,
                )
            )
    if split is not None:
        from xcloud.train.splits import is_clear_val

        out = [s for s in out if is_clear_val(s.name) == (split == "val")]
    return out


def smooth_noise(
    rng: np.random.Generator, h: int, w: int, *, octaves: int = 4, base: int = 4
) -> np.ndarray:
    """Fractal value noise in [0, 1] (sum of bilinearly upsampled random grids)."""
    import torch
    import torch.nn.functional as F

    total = np.zeros((h, w), np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        n = base * 2**o
        grid = torch.from_numpy(rng.random((1, 1, n + 1, n + 1), dtype=np.float32))
        up = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0, 0].numpy()
        total += amp * up
        norm += amp
        amp *= 0.5
    total /= norm
    lo, hi = total.min(), total.max()
    return (total - lo) / (hi - lo + 1e-6)


def _cloud_spectrum(rng: np.random.Generator, centre_nm: np.ndarray, *, thin: bool) -> np.ndarray:
    """Plausible cloud-top reflectance per band: flat and bright in the VNIR, lower in the SWIR
    (more so for water than ice clouds), near zero in the 1375 nm water-vapour band for low
    cloud and higher for thin (high, cirrus) cloud."""
    level = rng.uniform(0.35, 0.85)
    out = np.full(centre_nm.shape, level, np.float32)
    out *= 1.0 + rng.uniform(-0.05, 0.1) * (centre_nm < 500)  # slightly bluer
    swir1 = rng.uniform(0.55, 0.95)
    out[(centre_nm > 1500) & (centre_nm < 1800)] *= swir1
    out[centre_nm > 2000] *= swir1 * rng.uniform(0.5, 0.85)
    cirrus = (centre_nm > 1340) & (centre_nm < 1400)
    out[cirrus] = rng.uniform(0.15, 0.5) * level if thin else rng.uniform(0.0, 0.35) * level
    return out


def composite_clouds(
    scene: Scene, rng: np.random.Generator, *, size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Composite synthetic clouds, thin clouds and their shadows onto a clear ``scene``.

    Clouds are thresholded fractal noise; their opacity ``a`` blends the ground with a cloud
    spectrum, ``(1 - a) ground + a cloud``. Shadows are the thick-cloud opacity shifted by a
    random offset (sun-cloud geometry), darkening the ground by 40-75 %.

    Returns
    -------
    image, label
        ``(C, H, W)`` float32 and ``(H, W)`` uint8 in training codes: opacity > 0.5 is cloud,
        0.12-0.5 thin cloud, 0.04-0.12 ignore (too faint to call), shadow where the shifted
        opacity exceeds 0.5 and no cloud lies on top.
    """
    img = scene.image
    c, h, w = img.shape
    if size is not None and (h > size or w > size):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        img = img[:, y : y + size, x : x + size]
        h, w = size, size
    img = img.copy()
    centre = scene.wavelengths[:, 1]
    cover = rng.uniform(0.0, 0.8)
    noise = smooth_noise(rng, h, w, base=int(rng.integers(2, 6)))
    thr = np.quantile(noise, 1.0 - cover)
    soft = rng.uniform(0.05, 0.25)
    alpha = np.clip((noise - thr) / soft, 0.0, 1.0)
    thin = rng.random() < 0.4
    if thin:
        alpha *= rng.uniform(0.15, 0.7)
    # shadow from the opaque part of the cloud, shifted by a random offset
    shadow = np.zeros_like(alpha)
    if not thin and rng.random() < 0.8:
        dy, dx = rng.integers(-h // 6, h // 6 + 1, size=2) if h >= 12 else (0, 0)
        dy = int(dy) or 3
        src = alpha * (alpha > 0.5)
        shadow = np.roll(src, (dy, int(dx)), axis=(0, 1))
    spec = _cloud_spectrum(rng, centre, thin=thin)[:, None, None]
    dark = rng.uniform(0.4, 0.75)
    ground = img * (1.0 - dark * shadow[None])
    # cloud texture: brightness varies inside the cloud
    tex = 0.85 + 0.3 * smooth_noise(rng, h, w, base=8)
    out = (1.0 - alpha[None]) * ground + alpha[None] * spec * tex[None]
    label = np.zeros((h, w), np.uint8)
    label[(shadow > 0.5) & (alpha < 0.04)] = 3
    label[(alpha >= 0.04) & (alpha < 0.12)] = IGNORE
    label[(alpha >= 0.12) & (alpha <= 0.5)] = 2
    label[alpha > 0.5] = 1
    return out.astype(np.float32), label


def augment(
    image: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    *,
    noise: float = 0.005,
    shift: float = 0.02,
    extra: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """Random flips, 90 degree rotations, per-band gain (x0.92-1.08) and offset (+-``shift``),
    and Gaussian noise of standard deviation ``noise``.

    ``extra`` (e.g. ``(K, H, W)`` teacher probabilities) gets the same flips and rotations (no
    gain, offset or noise) and is returned third; the random draws do not depend on it."""
    k = int(rng.integers(4))
    image, label = np.rot90(image, k, axes=(1, 2)), np.rot90(label, k)
    if extra is not None:
        extra = np.rot90(extra, k, axes=(1, 2))
    if rng.random() < 0.5:
        image, label = image[:, :, ::-1], label[:, ::-1]
        if extra is not None:
            extra = extra[:, :, ::-1]
    c = image.shape[0]
    gain = rng.uniform(0.92, 1.08, size=(c, 1, 1)).astype(np.float32)
    offset = rng.uniform(-shift, shift, size=(c, 1, 1)).astype(np.float32)
    image = image * gain + offset + rng.normal(0.0, noise, size=image.shape).astype(np.float32)
    out = np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(label)
    if extra is not None:
        return (*out, np.ascontiguousarray(extra, dtype=np.float32))
    return out


def _window(scene: Scene, size: int, rng: np.random.Generator) -> tuple[slice, slice]:
    _, h, w = scene.image.shape
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return slice(y, y + size), slice(x, x + size)


class Batcher:
    """Random training batches mixing sensors, one band subset per batch.

    Each batch draws a source with probability ``weights`` (labelled sets and the synthetic
    composites), a random subset of 3 to all of that source's bands (in random order), then
    random crops with augmentation. SEnSeI computes its band weights once per band set, so a
    sub-batch shares one band set; :meth:`sample_groups` joins several sub-batches (sources,
    band sets) into one training batch.

    Parameters
    ----------
    sources
        ``{name: scenes}``; scenes with ``label=None`` get synthetic clouds.
    weights
        ``{name: probability}`` (normalised).
    crop
        Crop edge in pixels (multiple of 32).
    min_bands
        Smallest band subset.
    full_bands
        Probability that a batch takes all of its source's bands instead of a random subset
        (0: the subset size is uniform from ``min_bands`` to all, as before).
    teacher
        Also return teacher probabilities (``Scene.soft``, same crops, flips and rotations;
        zeros for scenes without them, e.g. synthetic composites) as a fifth element of
        :meth:`sample`.
    """

    def __init__(
        self,
        sources: dict[str, list[Scene]],
        weights: dict[str, float],
        *,
        batch_size: int = 16,
        crop: int = 128,
        min_bands: int = 3,
        seed: int = 0,
        teacher: bool = False,
        full_bands: float = 0.0,
    ) -> None:
        if not 0.0 <= full_bands <= 1.0:
            raise ValueError(f"full_bands must be a probability in [0, 1], got {full_bands!r}")
        self.sources = {k: v for k, v in sources.items() if v and weights.get(k, 0.0) > 0}
        names = list(self.sources)
        if not names:
            raise ValueError(
                f"no training data: sources {sorted(sources)} are empty or have zero weight in {weights}; "
                "check the data root (XCLOUD_DATA) and source_weights"
            )
        p = np.array([weights[n] for n in names], dtype=np.float64)
        self.names, self.p = names, p / p.sum()
        self.batch_size, self.crop, self.min_bands = batch_size, crop, min_bands
        self.rng = np.random.default_rng(seed)
        self.teacher = teacher
        self.full_bands = full_bands

    def sample_groups(self, groups: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
        """A batch made of ``groups`` sub-batches, each from its own source and band set
        (``batch_size`` is split between them), as :meth:`sample` returns them."""
        sizes = [self.batch_size // groups + (i < self.batch_size % groups) for i in range(groups)]
        return [self.sample(n) for n in sizes if n]

    def sample(self, n: int | None = None) -> tuple:
        """One batch of ``n`` (default ``batch_size``) crops from one source with one band set:
        ``x (n, k, S, S)``, ``y (n, S, S)`` uint8, ``wavelengths (k, 3)``, source name (and,
        with ``teacher=True``, ``soft (n, 4, S, S)`` float32)."""
        rng = self.rng
        name = self.names[int(rng.choice(len(self.names), p=self.p))]
        scenes = self.sources[name]
        n_bands = scenes[0].image.shape[0]
        if self.full_bands > 0 and rng.random() < self.full_bands:  # no draw at 0: same stream
            k = n_bands
        else:
            k = int(rng.integers(min(self.min_bands, n_bands), n_bands + 1))
        subset = rng.permutation(n_bands)[:k]
        xs, ys, ss = [], [], []
        for _ in range(self.batch_size if n is None else n):
            scene = scenes[int(rng.integers(len(scenes)))]
            soft = None
            if scene.label is None:
                _, h, w = scene.image.shape
                size = min(self.crop, h, w)
                img, lab = composite_clouds(scene, rng, size=size)
                if size < self.crop:  # small EuroSAT chips: tile 2x2 with flips to reach the crop
                    reps = -(-self.crop // size)
                    img = np.tile(img, (1, reps, reps))[:, : self.crop, : self.crop]
                    lab = np.tile(lab, (reps, reps))[: self.crop, : self.crop]
            else:
                ys_, xs_ = _window(scene, self.crop, rng)
                assert scene.label is not None
                img, lab = scene.image[:, ys_, xs_], scene.label[ys_, xs_]
                if self.teacher and scene.soft is not None:
                    soft = scene.soft[:, ys_, xs_]
            if self.teacher:
                if soft is None:
                    soft = np.zeros((4, *lab.shape), np.float32)
                img, lab, soft = augment(img[subset], lab, rng, extra=soft)
                ss.append(soft)
            else:
                img, lab = augment(img[subset], lab, rng)
            xs.append(img)
            ys.append(lab)
        out = np.stack(xs), np.stack(ys), scenes[0].wavelengths[subset], name
        if self.teacher:
            return (*out, np.stack(ss))
        return out
