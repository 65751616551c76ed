"""xcloud: cloud masks for satellite datacubes, lazy and chunked, with sensor-independent models.

>>> import xcloud
>>> "ukis-csmask" in xcloud.list_models()
True
"""

from xcloud import accessor as _accessor  # noqa: E402,F401  (registers ds.cloud / arr.cloud)
from xcloud import peers as _peers  # noqa: E402,F401  (registers ukis-csmask, s2cloudless)
from xcloud._version import __version__
from xcloud.analysis import composite, usable, where_usable  # noqa: E402
from xcloud.errors import XCloudError  # noqa: E402
from xcloud.io.cog import to_cog  # noqa: E402
from xcloud.io.pipeline import mask_to_zarr  # noqa: E402
from xcloud.io.publish import to_stac  # noqa: E402  (pystac imported on call)
from xcloud.io.stac import open_stac  # noqa: E402  (pystac-client / odc-stac imported on call)
from xcloud.io.zarr import to_zarr  # noqa: E402
from xcloud.masking import CascadeOptions, mask, route  # noqa: E402
from xcloud.models import list_models  # noqa: E402

__all__ = [
    "CascadeOptions",
    "XCloudError",
    "__version__",
    "composite",
    "list_models",
    "mask",
    "mask_to_zarr",
    "open_stac",
    "route",
    "to_cog",
    "to_stac",
    "to_zarr",
    "usable",
    "where_usable",
]
