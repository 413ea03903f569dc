"""Registration of SevenNet's 7net-0 as the relaxer `sevennet`, through the `chggen` entry-point group.

7net-0 (SevenNet-0, 11 Jul 2024, trained on MPtrj like CHGNet) ships inside the `sevenn` wheel, so it
loads offline. This module is imported by every `chggen` command and so imports nothing heavy:
sevenn (and torch, e3nn, torch_geometric with it) loads inside `_calculator`, and `_version` reads
package metadata only. It is the template of an adapter that brings a relaxer
(docs/guides/relaxers.md).
"""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import TYPE_CHECKING

from chggen_plugins import RelaxerSpec, hookimpl

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator

MODEL = "7net-0"


def _calculator(device: str) -> Calculator:
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():  # on CPU there is no tensor-product accelerator to enable
        warnings.filterwarnings("ignore", message="No tensor product accelerator")
        return SevenNetCalculator(model=MODEL, device=device)


def _version() -> str:
    return f"sevenn {importlib.metadata.version('sevenn')}, model {MODEL}"


@hookimpl
def chggen_relaxers() -> list[RelaxerSpec]:
    return [RelaxerSpec("sevennet", summary="SevenNet-0 (7net-0, MPtrj-trained, weights in the sevenn wheel)",
                        calculator=_calculator, version=_version)]
