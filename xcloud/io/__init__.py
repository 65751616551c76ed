"""Input and output: Zarr mask cubes (and, with the ``stac`` extra, STAC search + load)."""
