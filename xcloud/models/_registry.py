"""Registry of mask models (timm-style): ``register_model``, ``list_models``, ``create_model``."""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from pathlib import Path

from xcloud.errors import ModelUnavailableError, UnknownModelError, did_you_mean
from xcloud.models._spec import ModelSpec, Predictor

WEIGHTS_DIR = Path(__file__).parent / "weights"

_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}
_CACHE: dict[tuple[str, str | None, str], Predictor] = {}
_LOCK = threading.Lock()
_BUILTINS_LOADED = False


def register_model(spec: ModelSpec, *, aliases: tuple[str, ...] = ()) -> ModelSpec:
    """Add a model to the registry (replacing one of the same name)."""
    _REGISTRY[spec.name] = spec
    for a in aliases:
        _ALIASES[a] = spec.name
    return spec


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    # Importing these modules registers their models; they import nothing heavy at import time.
    import xcloud.models.builtin  # noqa: F401
    import xcloud.peers  # noqa: F401
    from xcloud.models import cascade

    cascade.register()


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a glob ``pattern``, sorted.

    >>> from xcloud.models import list_models
    >>> list_models("ukis*")
    ['ukis-csmask']
    """
    _load_builtins()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name`` (or an alias).

    Raises :class:`~xcloud.errors.UnknownModelError` with the closest names.
    """
    _load_builtins()
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
    unavailable = spec.card.get("unavailable")
    if unavailable:
        others = [
            n for n in list_models() if n != spec.name and not get_spec(n).card.get("unavailable")
        ]
        raise ModelUnavailableError(
            f"model {spec.name!r} is not available: {unavailable} Available models: {others}."
        )
    if spec.weights is not None and not (WEIGHTS_DIR / spec.weights).exists():
        raise ModelUnavailableError(
            f"model {spec.name!r}: weight file {spec.weights!r} is missing from {WEIGHTS_DIR}; "
            "reinstall xcloud."
        )
    import importlib.util

    for mod in spec.card.get("requires", ()):
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
    spec = get_spec(name)
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
