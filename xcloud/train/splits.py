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
