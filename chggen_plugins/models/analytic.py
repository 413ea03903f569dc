"""Registration of the exact-score sanity-check models `analytic` and `analytic-fractional` (the model
itself is in `analytic_model.py`): the core's own plugin, registered through the `chggen` entry-point
group exactly as an adapter is, and a template for one.

Every `chggen` command, `--help` included, imports each plugin's registration module, so this module
imports nothing heavy: torch, the model and the structure readers are imported inside `load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from chggen_plugins.contract.hookspecs import ModelSpec, hookimpl
from chggen_plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from chggen_plugins.models.analytic_model import AnalyticSiteModel

__getattr__ = lazy_exports(__name__, {"AnalyticSiteModel": "chggen_plugins.models.analytic_model",
                                      "wrapped_gaussian_score": "chggen_plugins.models.analytic_model"})


def _loader(fractional: bool, width: float) -> Callable[[str | None], AnalyticSiteModel]:
    def load(source: str | None) -> AnalyticSiteModel:
        from chggen_plugins.models.analytic_model import AnalyticSiteModel
        from chggen_plugins.sampling.noise import CartesianVE, FractionalVE
        from chggen_plugins.structures.io import read_structure

        process = FractionalVE() if fractional else CartesianVE()
        return AnalyticSiteModel(read_structure(Path(source)), width, process)
    return load


@hookimpl
def chggen_score_models() -> list[ModelSpec]:
    return [
        ModelSpec("analytic", _loader(False, 0.1), needs_source=True,
                  summary="exact score of 0.1 A Gaussians around the sites of the reference crystal "
                          "given as --model-source (sanity checks; Cartesian VE)"),
        ModelSpec("analytic-fractional", _loader(True, 0.01), needs_source=True,
                  summary="as 'analytic', 0.01 fractional Gaussians, fractional VE"),
    ]
