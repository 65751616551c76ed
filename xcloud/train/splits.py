"""Fixed train / validation splits of the labelled data in ``shared/data/labelled``.

On Cloud N: validation holds out whole locations that no training chip comes from
(Chifunfu, Senanga, Kimberley, Eritrea), so the numbers measure generalisation to new scenes.
L8 Biome: the dataset's own ``train`` / ``val`` folders.
Clear scenes (``shared/data/clear``): the last four EuroSAT chips of each class (17-20) and one
SEN12MS-CR patch are held out (:func:`is_clear_val`) to measure false alarms on cloud-free land;
only a fine stage that trains on plain clear scenes (source ``clear``) leaves them out.
"""

ONCLOUDN_VAL = ("adwp", "adwu", "adwz", "adxp", "aeaj", "jaag", "ijgr", "iacc")
L8BIOME_SPLITS = ("train", "val")

#: Held-out clear scenes: EuroSAT chips ``<Class>_17`` .. ``<Class>_20`` (4 of 20 per class) and
#: this SEN12MS-CR patch (a neighbour of two training patches of the same ROI, _30 and _31).
CLEAR_VAL_EUROSAT = (17, 18, 19, 20)
CLEAR_VAL_SEN12MS = ("ROIs1158_spring_101_32",)


def is_clear_val(name: str) -> bool:
    """Whether the clear scene named ``name`` (a file stem) is in the held-out split."""
    if name in CLEAR_VAL_SEN12MS:
        return True
    cls, _, num = name.rpartition("_")
    return bool(cls) and num.isdigit() and int(num) in CLEAR_VAL_EUROSAT and "ROIs" not in cls


def cv_folds(scenes, k: int = 5) -> dict[str, int]:
    """Grouped k-fold assignment of ``scenes`` (``(source, group, name, pixels)`` records):
    ``{name: fold}``. Within each source, groups go largest first (pixels, then name) to the
    fold holding the fewest of that source's pixels so far (ties: the lowest fold), so a group
    never spans two folds (``docs/cv-protocol.md``).

    >>> recs = [("s", "A", "a1", 10), ("s", "A", "a2", 10), ("s", "B", "b", 5), ("s", "C", "c", 5)]
    >>> cv_folds(recs, k=2)
    {'a1': 0, 'a2': 0, 'b': 1, 'c': 1}
    """
    if k < 2:
        raise ValueError(f"k={k}: cross-validation needs at least 2 folds")
    out: dict[str, int] = {}
    for source in sorted({r[0] for r in scenes}):
        groups: dict[str, list] = {}
        for src, group, name, pixels in scenes:
            if src == source:
                groups.setdefault(group, []).append((name, pixels))
        load = [0] * k
        for group in sorted(groups, key=lambda g: (-sum(p for _, p in groups[g]), g)):
            fold = min(range(k), key=lambda f: (load[f], f))
            for name, pixels in groups[group]:
                out[name] = fold
                load[fold] += pixels
    return out


def oncloudn_location(chip: str, root) -> str:
    """The location of an On Cloud N chip, from the dataset's ``metadata_all_chips.csv``."""
    import csv
    from pathlib import Path

    path = Path(root) / "labelled" / "oncloudn" / "metadata_all_chips.csv"
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["chip_id"] == chip:
                return row["location"]
    raise KeyError(f"chip {chip!r} is not in {path}")


def l8biome_scene(stem: str) -> str:
    """The Landsat scene of an L8 Biome crop: ``"Barren_00_0214"`` -> ``"Barren_00"``.

    >>> l8biome_scene("Barren_00_0214")
    'Barren_00'
    """
    return "_".join(stem.split("_")[:2])


def clear_group(stem: str) -> str:
    """The group of a clear scene: a SEN12MS-CR patch's ROI and season, or the EuroSAT chip.

    >>> clear_group("ROIs1158_spring_101_32"), clear_group("Forest_3")
    ('ROIs1158_spring_101', 'Forest_3')
    """
    return stem.rsplit("_", 1)[0] if stem.startswith("ROIs") else stem
