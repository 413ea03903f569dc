"""Registers MatterGen checkpoints with chggen (entry-point group `chggen`, name `mattergen`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chggen_plugins.contract.hookspecs import ModelSpec, hookimpl

if TYPE_CHECKING:
    from pymatgen.core import Composition, Structure

    from .model import MatterGenScoreModel

# torch, omegaconf and MatterGen are imported by `load` and `generate`, not here: every `chggen`
# command registers the plugin.


def load(source: str | None) -> MatterGenScoreModel:
    from .model import MatterGenScoreModel

    return MatterGenScoreModel.load(source)


def generate(source: str | None, composition: Composition, num_samples: int, seed: int) -> list[Structure]:
    """MatterGen's own sampler (`chggen_mattergen.generate.generate`)."""
    from . import generate as own

    return own.generate(source, composition, num_samples, seed)


@hookimpl
def chggen_score_models() -> list[ModelSpec]:
    return [ModelSpec(
        "mattergen", load, needs_source=True, generate=generate,
        summary="MatterGen checkpoint (--model-source: a directory with config.yaml and "
                "checkpoints/last.ckpt, or a published name when online); positions scored on its "
                "own wrapped-VE ladder (1000 levels), lattice and species fixed; its own generator "
                "takes only the atom count from the composition")]
