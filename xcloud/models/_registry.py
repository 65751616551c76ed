"""Registry of mask models (timm-style): ``register_model``, ``list_models``, ``create_model``."""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from pathlib import Path

from xcloud.errors import ModelUnavailableError, UnknownModelError, did_you_mean, warn
from xcloud.models._spec import ModelSpec, Predictor

WEIGHTS_DIR = Path(__file__).parent / "weights"

_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}
_CACHE: dict[tuple[str, str | None, str], Predictor] = {}
_LOCK = threading.Lock()


def register_model(
    spec: ModelSpec, *, aliases: tuple[str, ...] = (), replace: bool = False
) -> ModelSpec:
    """Add a model to the registry under ``spec.name`` and ``aliases`` (e.g. a weights tag,
    ``"fine.v20"`` for ``"fine"``).

    A name already taken by another spec is replaced with an :class:`XCloudWarning` (silently
    with ``replace=True``), and the models loaded under it are dropped from the cache.
    """
    old = _REGISTRY.get(spec.name)
    if old is not None and old != spec:
        if not replace:
            warn(
                f"register_model: {spec.name!r} was registered already ({old.description!r}); "
                "replacing it. Pass replace=True if that is intended, or pick another name",
            )
        with _LOCK:
            for key in [k for k in _CACHE if k[0] == spec.name]:
                del _CACHE[key]
    _REGISTRY[spec.name] = spec
    for a in aliases:
        _ALIASES[a] = spec.name
    return spec


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a glob ``pattern``, sorted.

    >>> from xcloud.models import list_models
    >>> list_models("ukis*")
    ['ukis-csmask']
    """
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name`` (or an alias).

    Raises :class:`~xcloud.errors.UnknownModelError` with the closest names.
    """
    if not isinstance(name, str):
        raise UnknownModelError(f"model must be a name (str), got {type(name).__name__}: {name!r}")
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; registered models are {sorted(_REGISTRY)}."
            + did_you_mean(name, list(_REGISTRY) + list(_ALIASES))
        )
    return _REGISTRY[key]


def available_models() -> list[str]:
    """Registered models that can run here (weights present, optional dependencies installed)."""
    out = []
    for name in list_models():
        try:
            check_available(get_spec(name))
        except ModelUnavailableError:
            continue
        out.append(name)
    return out


def check_available(spec: ModelSpec) -> None:
    """Raise :class:`ModelUnavailableError` if ``spec`` cannot run in this environment."""
    if spec.unavailable:
        others = [n for n in list_models() if n != spec.name and not get_spec(n).unavailable]
        raise ModelUnavailableError(
            f"model {spec.name!r} is not available: {spec.unavailable} Available models: {others}."
        )
    if spec.weights is not None and not (WEIGHTS_DIR / spec.weights).exists():
        raise ModelUnavailableError(
            f"model {spec.name!r}: weight file {spec.weights!r} is missing from {WEIGHTS_DIR}; "
            "reinstall xcloud."
        )
    import importlib.util

    for mod in spec.requires:
        if importlib.util.find_spec(mod) is None:
            how = (
                f'install it with: pip install "xcloud[{spec.extra}]"'
                if spec.extra is not None
                else "it is one of xcloud's own dependencies: reinstall xcloud"
            )
            raise ModelUnavailableError(f"model {spec.name!r} needs the package {mod!r}; {how}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_path(spec: ModelSpec) -> Path:
    """Path of ``spec``'s weight file, verified against its pinned sha256."""
    if spec.weights is None:
        raise ModelUnavailableError(f"model {spec.name!r} has no xcloud weight file")
    path = WEIGHTS_DIR / spec.weights
    check_available(spec)
    digest = sha256_file(path)
    if spec.sha256 is not None and digest != spec.sha256:
        raise ModelUnavailableError(
            f"weight file {path} has sha256 {digest}, expected {spec.sha256}: the file is "
            "corrupt or was replaced; reinstall xcloud."
        )
    return path


def create_model(name: str, device: str = "cpu") -> Predictor:
    """Load model ``name`` on ``device``; cached per process by (name, weights hash, device).

    >>> from xcloud.models import create_model
    >>> m = create_model("ukis-csmask")
    >>> m.spec.classes
    ('clear', 'cloud', 'cloud_shadow')
    """
    return load_cached(get_spec(name), device)


def load_cached(spec: ModelSpec, device: str) -> Predictor:
    """``spec``'s model on ``device``, loaded once per process (by name, weights hash and
    device) under one lock: what :func:`create_model` and the cascade's router share."""
    key = (spec.name, spec.sha256, device)
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            check_available(spec)
            model = spec.loader(spec, device)
            _CACHE[key] = model
    return model


def clear_cache() -> None:
    """Forget loaded models (tests use this to count loads)."""
    with _LOCK:
        _CACHE.clear()
