"""Registry of model architectures: a name -> ``nn.Module`` class mapping with a factory.

Architectures register themselves with :func:`register_model` at import; the modules that
define them are listed in ``_ARCHITECTURE_MODULES`` and imported lazily by the factory, so
``import lobule.models.registry`` does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from lobule.core.errors import UnknownModelError

_REGISTRY: dict[str, type] = {}

# Modules whose import registers architectures. Each area adds its module here.
_ARCHITECTURE_MODULES = (
    "lobule.models.resnet",
    "lobule.models.deeplab",
    "lobule.models.unet",
    "lobule.models.laddernet",
    "lobule.models.fewshot",
)


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: register an ``nn.Module`` subclass under ``name``.

    Raises
    ------
    ValueError
        If ``name`` is already taken by another class.
    """

    def decorator(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {_REGISTRY[name]!r}")
        _REGISTRY[name] = cls
        return cls

    return decorator


def _import_all() -> None:
    for module in _ARCHITECTURE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # an area not built yet
            if exc.name != module:
                raise


def available_models() -> list[str]:
    """Sorted names of all registered architectures."""
    _import_all()
    return sorted(_REGISTRY)


def model_class(name: str) -> type:
    """The class registered under ``name``.

    Raises
    ------
    UnknownModelError
        If no architecture has that name; the message lists the valid names.
    """
    _import_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model architecture {name!r}; valid names: {', '.join(sorted(_REGISTRY)) or 'none'}"
        ) from None


def create_model(name: str, **kwargs: Any):
    """Instantiate the architecture ``name`` with constructor arguments ``kwargs``.

    Raises
    ------
    UnknownModelError
        If no architecture has that name.
    """
    return model_class(name)(**kwargs)
