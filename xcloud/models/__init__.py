"""The model registry: every mask model xcloud can run, by name.

>>> import xcloud.models as xm
>>> "ukis-csmask" in xm.list_models()
True
>>> xm.list_models("s2*")
['s2cloudless']
"""

from xcloud.models import builtin as _builtin  # noqa: E402,F401  (registers fine, cascade)
from xcloud.models._registry import (
    available_models,
    create_model,
    get_spec,
    list_models,
    register_model,
)
from xcloud.models._spec import (
    CELL_OVERVIEW_PX,
    CLASS_COLOURS,
    CLASSES,
    CODE_DESCRIPTIONS,
    FLAG_MEANINGS,
    FLAG_VALUES,
    NODATA,
    ROUTE_CLASSES,
    ModelSpec,
    Predictor,
    flags_definition,
)

__all__ = [
    "CLASS_COLOURS",
    "CLASSES",
    "CODE_DESCRIPTIONS",
    "FLAG_MEANINGS",
    "FLAG_VALUES",
    "NODATA",
    "ROUTE_CLASSES",
    "CELL_OVERVIEW_PX",
    "ModelSpec",
    "Predictor",
    "available_models",
    "create_model",
    "flags_definition",
    "get_spec",
    "list_models",
    "register_model",
]
