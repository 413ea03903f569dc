"""Registers MatterGen checkpoints with chggen (entry-point group `chggen`, name `mattergen`)."""

from __future__ import annotations

from chggen_plugins.hookspecs import ModelSpec, hookimpl

from .generate import generate
from .model import MatterGenScoreModel


def load(source: str | None) -> MatterGenScoreModel:
    return MatterGenScoreModel.load(source)


@hookimpl
def chggen_score_models() -> list[ModelSpec]:
    return [ModelSpec(
        "mattergen", load, needs_source=True, generate=generate,
        summary="MatterGen checkpoint (--model-source: a directory with config.yaml and "
                "checkpoints/last.ckpt, or a published name when online); positions scored on its "
                "own wrapped-VE ladder (1000 levels), lattice and species fixed; its own generator "
                "takes only the atom count from the composition")]
