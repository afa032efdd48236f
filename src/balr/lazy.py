"""A package's public names imported from their modules on first use (PEP 562).

A package lists `name -> module` and takes its module-level `__getattr__` and `__dir__` from
`lazy_names`, so that importing the package (or one light module of it) does not import what
its other modules need (torch, pandas, pytorch-metric-learning).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, module_of: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public name N is defined in its
    module `module_of[N]`: imported on first use, then kept in the package's `namespace`."""

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module_of[name]}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *module_of])

    return __getattr__, __dir__
