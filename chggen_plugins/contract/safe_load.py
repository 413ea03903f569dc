"""Read a checkpoint's tensors without running any code the file names (for adapters to use).

A pytorch-lightning `.ckpt` (DiffCSP's, MatterGen's) pickles the training callbacks (keyed by their
classes), omegaconf hyperparameters and the optimizer state beside the weights. torch's own
`weights_only` loader refuses such files, and a full unpickling runs whatever callable the file names
(a `__reduce__` of `os.system` is enough). This loader lets the unpickler build only tensors and plain
containers; every other class or function named in the file becomes an inert stand-in that runs no
code and keeps no data, whether or not the real package is installed.
"""

from __future__ import annotations

import pickle
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

# What rebuilding tensors and ordered dicts needs (storages are resolved by torch.load itself).
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
}


class StandIn:
    """Accepts whatever the pickle does to an object of an unknown class and keeps nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


@lru_cache(maxsize=None)
def _stand_in(module: str, name: str) -> type:
    return type(name, (StandIn,), {"__module__": module, "__qualname__": name})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        return _stand_in(module, name)


def _load(file: Any, **kwargs: Any) -> Any:
    return _Unpickler(file, **kwargs).load()


_PICKLE_MODULE = types.ModuleType("chggen_restricted_pickle")
_PICKLE_MODULE.Unpickler = _Unpickler
_PICKLE_MODULE.load = _load


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint as a dict: tensors and plain containers real, everything else `StandIn`."""
    return torch.load(path, map_location="cpu", pickle_module=_PICKLE_MODULE, weights_only=False)
