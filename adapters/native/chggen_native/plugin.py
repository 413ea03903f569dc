"""Registers the native model with chggen (entry-point group `chggen`, name `native`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chggen_plugins.contract.hookspecs import ModelSpec, hookimpl

from .commands import add_train_command

if TYPE_CHECKING:
    from .model import NativeScoreModel

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "native.pt"


def load(source: str | None) -> NativeScoreModel:
    from .model import NativeScoreModel  # torch: only when the model is loaded, not to register it

    return NativeScoreModel.load(Path(source) if source else DEFAULT_WEIGHTS)


@hookimpl
def chggen_score_models() -> list[ModelSpec]:
    return [ModelSpec("native", load, needs_source=not DEFAULT_WEIGHTS.is_file(),
                      summary="bundled SE(3)-equivariant score GNN (Cartesian VE); --model-source "
                              "takes a checkpoint written by `chggen train`")]


@hookimpl
def chggen_add_commands(commands) -> None:
    add_train_command(commands)
