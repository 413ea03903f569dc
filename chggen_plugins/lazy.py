"""Package-level names imported on first use (PEP 562), for the core and for adapters.

`chggen --help` loads every plugin's registration module, and importing a submodule runs its
package's `__init__` first: a package that re-exports its torch or pymatgen classes eagerly makes
every command pay seconds for them. `__getattr__ = lazy_exports(__name__, {...})` keeps the
re-exports and defers the imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `name` from `exports[name]` (a relative module) when asked."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(exports[name], package), name)

    return __getattr__
