"""Exceptions raised by xcloud.

Every error subclasses :class:`XCloudError`, and also the builtin exception that fits
(``ValueError``, ``KeyError``, ...), so ``except ValueError`` keeps working for users who do not
know about xcloud. Messages name the bad value, the valid choices and the fix.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = [
    "XCloudError",
    "UnknownModelError",
    "UnknownSensorError",
    "MissingBandsError",
    "RadiometryError",
    "DimensionError",
    "MissingDependencyError",
    "StoreExistsError",
    "StoreLockedError",
    "StoreTakenError",
    "StoreCorruptError",
    "ModelUnavailableError",
    "DataTypeError",
    "ParameterError",
    "BandSpecError",
    "UnknownBandError",
    "StacError",
    "EmptySearchError",
    "BBoxError",
    "AssetError",
    "ModelMismatchError",
    "XCloudWarning",
    "warn",
]


class XCloudError(Exception):
    """Base class of every error raised by xcloud: catch it to handle any of them.

    >>> import numpy as np, xarray as xr, xcloud
    >>> ds = xr.Dataset({"a": (("y", "x"), np.zeros((4, 4)))})
    >>> try:
    ...     ds.cloud.mask("no-such-model")
    ... except xcloud.XCloudError as err:
    ...     print(type(err).__name__)
    UnknownModelError
    """


class UnknownModelError(XCloudError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnknownSensorError(XCloudError, KeyError):
    """A sensor name that is not in the catalogue."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingBandsError(XCloudError, KeyError):
    """The data lacks bands the model needs."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RadiometryError(XCloudError, ValueError):
    """Values are not reflectance and cannot be scaled to it with what is known."""


class DimensionError(XCloudError, ValueError):
    """The data does not have the dimensions xcloud works on."""


class ModelUnavailableError(XCloudError, ValueError):
    """A registered model cannot run here (no weights yet, or missing optional dependency)."""


class MissingDependencyError(XCloudError, ImportError):
    """An optional dependency is not installed."""


class StoreExistsError(XCloudError, FileExistsError):
    """A Zarr store exists and overwriting it was not asked for, or the path holds files that
    xcloud did not write (which it never deletes)."""


class StoreLockedError(XCloudError, RuntimeError):
    """Another run holds the store's writer lock."""


class StoreTakenError(XCloudError, RuntimeError):
    """Another run took the store over while this one was writing it; this one stops."""


class StoreCorruptError(XCloudError, ValueError):
    """A store's metadata cannot be read, so nothing in it can be trusted or resumed."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Names in ``choices`` closest to ``name`` (for 'did you mean' hints)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    out = [lowered[h] for h in hits]
    # substring matches help with prefixes such as "ukis" -> "ukis-csmask"
    for c in choices:
        if name.lower() in c.lower() and c not in out:
            out.append(c)
    return out[:n]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix, or '' when nothing is close."""
    hits = closest(name, choices)
    if not hits:
        return ""
    return " Did you mean " + " or ".join(repr(h) for h in hits) + "?"


def is_whole(value: Any, low: int | None = None) -> bool:
    """Whether ``value`` is an integer (Python or numpy, not a bool), at least ``low`` if given;
    what keyword checks use before raising :class:`ParameterError`.

    >>> is_whole(3, 1), is_whole(0, 1), is_whole(2.0), is_whole(True)
    (True, False, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return False
    return low is None or int(value) >= low


def is_real(value: Any, *, finite: bool = False) -> bool:
    """Whether ``value`` is a real number (Python or numpy, not a bool), and not NaN or infinite
    when ``finite``.

    >>> is_real(0.5), is_real(float("nan")), is_real(float("nan"), finite=True), is_real("1")
    (True, True, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return not finite or math.isfinite(value)


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise with the exact ``pip install`` hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on environment
        raise MissingDependencyError(
            f"{purpose} needs the optional dependency {module!r}, which is not installed ({e}). "
            f'Install it with: pip install "xcloud[{extra}]"'
        ) from e


class DataTypeError(XCloudError, TypeError):
    """The data has a dtype xcloud cannot treat as reflectance (strings, objects, ...)."""


class ParameterError(XCloudError, ValueError):
    """A keyword argument with a value xcloud cannot use (out of range, or of the wrong type)."""


class BandSpecError(XCloudError, ValueError):
    """A ``bands=`` or ``wavelengths=`` argument that cannot be used as given."""


class UnknownBandError(XCloudError, KeyError):
    """A band name or asset key that a sensor does not have."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class StacError(XCloudError, ConnectionError):
    """The STAC API cannot be reached or answers with an error."""


class EmptySearchError(XCloudError, LookupError):
    """A STAC search found no items."""


class BBoxError(XCloudError, ValueError):
    """A bounding box that is not ``(west, south, east, north)`` in degrees."""


class AssetError(XCloudError, OSError):
    """An item's asset is missing or cannot be read."""


class ModelMismatchError(XCloudError, ValueError):
    """Resuming into a store written by another model, with other settings or from other
    input."""


class XCloudWarning(UserWarning):
    """Something xcloud fixed for you that costs time or memory (e.g. a rechunk)."""


def warn(message: str, category: type[Warning] = XCloudWarning) -> None:
    """Issue a warning attributed to the first caller outside the xcloud package (the user's
    notebook cell or script), however deep inside xcloud it is raised: the accessor, the
    masking adapter and the core call each other, so no fixed ``stacklevel`` fits.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn("look here")
    >>> seen[0].filename.endswith("errors.py")  # attributed to the doctest, not this module
    False
    """
    import os
    import sys
    import warnings

    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
