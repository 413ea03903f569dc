"""Importing MatterGen 1.0.3 as installed with `--no-deps`: stand-ins first, its missing data file.

Two gaps of the PyPI wheel are closed here, and nothing else about MatterGen is changed:

* `torch_scatter` / `torch_sparse` may be absent: `pure_scatter.install()` registers pure-torch
  stand-ins, after torch_geometric has been imported (so PyG records them as absent and never
  calls into them) and before MatterGen is.
* `GemNetT.__init__` reads `<MODELS_PROJECT_ROOT>/common/gemnet/gemnet-dT.json`, which the wheel
  lacks. `gemnet_scale_root()` points that name at this package's `data/` folder while a model is
  built, and puts it back afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Iterator

from chggen_plugins.errors import ChggenError

from . import pure_scatter

DATA_ROOT = Path(__file__).parent / "data"
INSTALL_HINT = "pip install --no-deps mattergen==1.0.3 (see adapters/mattergen/README.md)"


@lru_cache(maxsize=1)
def mattergen_globals() -> ModuleType:
    """Import MatterGen once, with the stand-ins in place; its import-time print is swallowed."""
    importlib.import_module("torch_geometric")
    pure_scatter.install()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return importlib.import_module("mattergen.common.utils.globals")
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "mattergen":
            raise ChggenError(f"MatterGen is not installed: {INSTALL_HINT}") from None
        raise ChggenError(f"MatterGen needs the package {error.name!r}, which is missing: "
                          "pip install -e adapters/mattergen installs its runtime needs") from None


def mattergen_module(name: str) -> ModuleType:
    """A MatterGen submodule, e.g. mattergen_module("denoiser"), imported after the set-up above."""
    mattergen_globals()
    return importlib.import_module(f"mattergen.{name}")


@contextlib.contextmanager
def gemnet_scale_root() -> Iterator[None]:
    """While building a GemNetT, find gemnet-dT.json in the wheel if it has one, else in `data/`."""
    gemnet = mattergen_module("common.gemnet.gemnet")
    original = gemnet.MODELS_PROJECT_ROOT
    if (Path(original) / "common" / "gemnet" / "gemnet-dT.json").is_file():
        yield
        return
    gemnet.MODELS_PROJECT_ROOT = DATA_ROOT
    try:
        yield
    finally:
        gemnet.MODELS_PROJECT_ROOT = original
