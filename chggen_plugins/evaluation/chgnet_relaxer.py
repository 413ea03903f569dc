"""Registration of CHGNet, the core's relaxer (`--relaxer chgnet`, the default): the core's own plugin,
registered through the `chggen` entry-point group exactly as an adapter's relaxer is
(adapters/sevennet is the template of an optional one).

Every `chggen` command imports each plugin's registration module, so this module imports nothing
heavy: CHGNet and torch load inside `_calculator`, and `_version` reads only package metadata.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
from typing import TYPE_CHECKING

from chggen_plugins.contract.hookspecs import RelaxerSpec, hookimpl

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

MODEL = "0.3.0"  # CHGNet's MPtrj-pretrained weights, shipped in the chgnet wheel (no download)


def _calculator(device: str) -> Calculator:
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device and version
        model = CHGNet.load(model_name=MODEL, verbose=False, use_device=device)
        return CHGNetCalculator(model=model, use_device=device)


def _version() -> str:
    return f"chgnet {importlib.metadata.version('chgnet')}, model {MODEL}"


@hookimpl
def chggen_relaxers() -> list[RelaxerSpec]:
    return [RelaxerSpec("chgnet", summary=f"CHGNet {MODEL} (MPtrj-pretrained, weights in the chgnet wheel): "
                                          "the paper's relaxer and the default", calculator=_calculator,
                        version=_version)]
