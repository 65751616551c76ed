"""The held-out split of the clear scenes, and the fine stage's ``clear`` source (plain clear
scenes labelled all clear, from the training part only)."""

import numpy as np
import pytest

from xcloud.train.data import EUROSAT_BANDS, SEN12MS_BANDS, load_clear
from xcloud.train.splits import is_clear_val

TRAIN_B02, VAL_B02 = 0.05, 0.09  # blue reflectance that tells the two parts apart


def test_is_clear_val_names():
    assert is_clear_val("Forest_17") and is_clear_val("SeaLake_20")
    assert is_clear_val("ROIs1158_spring_101_32")
    assert not is_clear_val("Forest_16") and not is_clear_val("Forest_2")
    assert not is_clear_val("ROIs1158_spring_101_30") and not is_clear_val("ROIs1970_fall_139_p839")
    assert not is_clear_val("mosaic17")


def _write(path, bands, b02, size):
    import rasterio

    dn = np.full((len(bands), size, size), 600, np.uint16)  # dark, cloud-free land
    dn[bands.index("B02")] = int(b02 * 10000)
    dn[bands.index("B11")] = 1500  # NDSI < 0: not snow
    dn[bands.index("B10")] = 20  # no cirrus
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=len(bands),
                       dtype="uint16") as dst:  # fmt: skip
        dst.write(dn)


@pytest.fixture
def clear_root(tmp_path):
    for cls in ("Forest", "River"):
        for i in range(1, 21):
            b02 = VAL_B02 if i >= 17 else TRAIN_B02
            _write(tmp_path / "clear" / "eurosat" / cls / f"{cls}_{i}.tif", EUROSAT_BANDS, b02, 64)
    for name in ("ROIs1158_spring_101_31", "ROIs1158_spring_101_32"):
        b02 = VAL_B02 if name.endswith("32") else TRAIN_B02
        _write(tmp_path / "clear" / "sen12mscr" / f"{name}.tif", SEN12MS_BANDS, b02, 256)
    return tmp_path


def test_load_clear_splits_partition_the_scenes(clear_root):
    every = {s.name for s in load_clear(clear_root)}
    train = {s.name for s in load_clear(clear_root, split="train")}
    val = {s.name for s in load_clear(clear_root, split="val")}
    assert len(every) == 42 and train | val == every and not train & val
    assert val == {f"{c}_{i}" for c in ("Forest", "River") for i in (17, 18, 19, 20)} | {
        "ROIs1158_spring_101_32"
    }
    with pytest.raises(ValueError, match="split must be None, 'train' or 'val', got 'test'"):
        load_clear(clear_root, split="test")


def _cfg(**weights):
    from xcloud.train.loop import TrainConfig

    return TrainConfig(source_weights={"oncloudn": 0.5, **weights}, seed=0)


def test_clear_source_uses_only_the_training_part(clear_root):
    from xcloud.train.cli import _add_clear_source, _data_card
    from xcloud.train.routing import expand_weights

    everything = load_clear(clear_root)
    train = {"oncloudn": [], "l8biome": [], "synthetic": list(everything)}
    assert _add_clear_source(train, _cfg()) == []  # no weight: nothing changes
    assert len(train["synthetic"]) == 42 and set(train) == {"oncloudn", "l8biome", "synthetic"}

    keys = _add_clear_source(train, _cfg(clear=0.2))
    assert keys == ["clear:eurosat:13", "clear:sen12mscr:13"]
    # the composites lose the held-out scenes too
    assert not any(is_clear_val(s.name) for s in train["synthetic"])
    for key in keys:
        for s in train[key]:
            assert s.label is not None and s.label.shape == s.image.shape[1:]
            assert (s.label == 0).all()  # code 0: clear
            assert min(s.image.shape[1:]) >= 256  # EuroSAT chips as mosaics, crops fit
            blue = s.image[s.bands.index("B02")]
            assert np.allclose(blue, TRAIN_B02), "a held-out scene leaked into training"
    w = expand_weights(_cfg(clear=0.2).source_weights, train)
    assert w["clear:eurosat:13"] == w["clear:sen12mscr:13"] == pytest.approx(0.1)
    card = _data_card(train, {"oncloudn": [], "l8biome": []}, w)
    assert card["train"]["clear"]["scenes"] == sum(len(train[k]) for k in keys)
    assert "is_clear_val" in card["train"]["clear"]["note"]
    plain = {"oncloudn": [], "l8biome": [], "synthetic": train["synthetic"]}
    assert "clear" not in _data_card(plain, {"oncloudn": [], "l8biome": []})["train"]


def _labelled(root):
    """Two On Cloud N chips (one of the val split) and two L8 Biome crops (train, val)."""
    import rasterio

    def write(path, arr, dtype):
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1],
                           count=arr.shape[0], dtype=dtype) as dst:  # fmt: skip
            dst.write(arr.astype(dtype))

    base = root / "labelled"
    for chip in ("zzzz", "adwp"):  # adwp is in ONCLOUDN_VAL
        for b in ("B02", "B03", "B04", "B08"):
            write(
                base / "oncloudn" / "features" / chip / f"{b}.tif",
                np.full((1, 32, 32), 900),
                "uint16",
            )
        write(base / "oncloudn" / "labels" / f"{chip}.tif", np.zeros((1, 32, 32)), "uint8")
    for split, name in (("train", "Barren_1"), ("val", "Forest_2")):
        write(
            base / "l8biome" / split / "images" / f"{name}.tif",
            np.full((8, 32, 32), 0.1),
            "float32",
        )
        write(
            base / "l8biome" / split / "masks" / f"{name}.tif", np.full((1, 32, 32), 128), "uint8"
        )


def test_load_training_exclude_reads_both_splits_and_drops_the_fold(clear_root):
    """A cross-validation fold's run: both splits of every source, minus exactly the excluded
    scenes (clear ones included, whatever ``is_clear_val`` says)."""
    from xcloud.train.cli import _add_clear_source, load_training

    _labelled(clear_root)
    default, _, _ = load_training(str(clear_root))
    assert [s.name for s in default["oncloudn"]] == ["zzzz"]
    assert [s.name for s in default["l8biome"]] == ["Barren_1"]

    held = {"adwp", "Barren_1", "Forest_3", "ROIs1158_spring_101_31"}
    train, _, _ = load_training(str(clear_root), exclude=held)
    assert [s.name for s in train["oncloudn"]] == ["zzzz"]
    assert [s.name for s in train["l8biome"]] == ["Forest_2"]
    names = {s.name for s in train["synthetic"]}
    assert len(names) == 40 and not names & held
    _add_clear_source(train, _cfg(clear=0.2), held_out=False)
    # the fold decides: is_clear_val's scenes stay in, the fold's own stay out
    assert "ROIs1158_spring_101_32" in {s.name for s in train["synthetic"]}
    assert "Forest_17" in {s.name for s in train["synthetic"]}
    assert [s.name for s in train["clear:sen12mscr:13"]] == ["ROIs1158_spring_101_32"]
