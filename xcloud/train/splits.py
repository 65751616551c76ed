"""Fixed train / validation splits of the labelled data in ``shared/data/labelled``.

On Cloud N: validation holds out whole locations that no training chip comes from
(Chifunfu, Senanga, Kimberley, Eritrea), so the numbers measure generalisation to new scenes.
L8 Biome: the dataset's own ``train`` / ``val`` folders.
"""

ONCLOUDN_VAL = ("adwp", "adwu", "adwz", "adxp", "aeaj", "jaag", "ijgr", "iacc")
L8BIOME_SPLITS = ("train", "val")
