"""What a score model's weights are, so that no table passes random weights off as a trained model.

A ScoreModel may declare two optional attributes:

    trained: bool      False for random (untrained) weights; True for trained weights or an exact score
    provenance: str    one line on where the weights come from (checkpoint, training steps, data)

A model that declares neither is reported as "not declared", never as trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chggen_plugins.errors import ChggenError

TRAINED = "trained"
UNTRAINED = "UNTRAINED (random weights)"
UNDECLARED = "not declared"


@dataclass(frozen=True)
class Provenance:
    trained: bool | None
    text: str | None

    @property
    def label(self) -> str:
        """The word every table shows: trained, UNTRAINED (random weights) or not declared."""
        return {True: TRAINED, False: UNTRAINED, None: UNDECLARED}[self.trained]


def model_provenance(model: Any) -> Provenance:
    """The model's own `trained` and `provenance` attributes, checked."""
    trained = getattr(model, "trained", None)
    text = getattr(model, "provenance", None)
    if trained is not None and not isinstance(trained, bool):
        raise ChggenError(f"{type(model).__name__}.trained must be True, False or absent, got {trained!r}")
    if text is not None and not isinstance(text, str):
        raise ChggenError(f"{type(model).__name__}.provenance must be a string, got {type(text).__name__}")
    return Provenance(trained, text or None)
