"""The setup every stored run shares: its model, what its rows say about the model, and its store.

Why one setup: the campaign, the intercalation sweep and the ordering comparison each loaded the
model, put it on its ladder, resolved its RePaint default, read its provenance, spelled the same
fingerprint keys and row fields and claimed the store, three times over and already drifting (an
ordering row did not say what the weights were). A change to any of these now changes every run.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chggen_plugins.api import ModelLike, check_elements, with_levels
from chggen_plugins.contract.protocol import ScoreModel
from chggen_plugins.contract.provenance import Provenance, model_provenance
from chggen_plugins.contract.registry import load_model
from chggen_plugins.files import output_folder
from chggen_plugins.runs.shards import STORE_NAME
from chggen_plugins.runs.store import ResultStore
from chggen_plugins.sampling.inpaint import SamplerSettings
from chggen_plugins.seeds import check_seed, draw_seed
from chggen_plugins.structures.batch import InpaintTask

RESUME_HINT = "rerun with the same settings to resume, or choose a new --out"


@dataclass(frozen=True)
class ModelRun:
    """A run's model on its ladder with its sampler settings resolved; `model` None: a run whose
    methods need no model (pymatgen or random orderings only)."""

    model: ScoreModel | None
    name: str
    source: str | None
    provenance: Provenance | None
    settings: SamplerSettings

    @property
    def levels(self) -> int:
        """Noise levels of the ladder the model samples on (0 without a model)."""
        return 0 if self.model is None else self.model.noise_process.num_levels

    def fingerprint(self) -> dict[str, str]:
        """The model's part of a store's fingerprint: a resume with another model is refused."""
        weights = "" if self.provenance is None else (self.provenance.text or self.provenance.label)
        return {"model": self.name, "model_source": str(self.source or ""), "weights": weights,
                "levels": str(self.levels),
                "sampler": self.settings.label()}

    def fields(self) -> dict[str, Any]:
        """The model's part of every stored row."""
        return {"backend": self.name, "model_source": self.source,
                "weights": None if self.provenance is None else self.provenance.label,
                "weights_provenance": None if self.provenance is None else self.provenance.text,
                "levels": self.levels, "jump_length": self.settings.jump_length,
                "resamples": self.settings.resamples}


def model_run(model: ModelLike | None, source: str | None, levels: int | None, device: str,
              settings: SamplerSettings, tasks: Sequence[InpaintTask] = (), name: str | None = None) -> ModelRun:
    """Load `model` (a registered name, or a ScoreModel moved to `device`), put it on `levels`, check
    that it knows every element of `tasks`, and resolve `settings`' RePaint default for it.

    Args:
        model: a registered model name, a ScoreModel, or None for a run without a model.
        source: the `--model-source` of a registered name (checkpoint, reference structure).
        levels: noise levels of the ladder (None: the model's own).
        device: torch device.
        settings: the sampler: solver, its steps and churn, RePaint jump length and resamples (None
            resamples: the model's default).
        tasks: the inpainting tasks the run will sample, checked for unknown elements now.
        name: the backend name rows carry (default: the registered name or the class name).

    Returns:
        The ModelRun.
    """
    if model is None:
        return ModelRun(None, name or "none", source, None, settings)
    label = name or (model if isinstance(model, str) else type(model).__name__)
    loaded = load_model(model, source, device) if isinstance(model, str) else model.to(device)
    loaded = with_levels(loaded, levels)
    check_elements(loaded, tasks)
    return ModelRun(loaded, label, source, model_provenance(loaded), settings.for_model(loaded))


def claim_store(out: Path, fingerprint: Mapping[str, str], what: str, hint: str = RESUME_HINT,
                **facts: str) -> ResultStore:
    """The run's results store in `out`, tied to `fingerprint` under its writer lock: a second
    process, a rerun with other settings, or an output folder that is a file, unwritable or holds
    another kind of run, is refused in one line before any work."""
    store = ResultStore(output_folder(Path(out), "output") / STORE_NAME)
    with store.writing():
        store.claim(fingerprint, what, hint, **facts)
    return store


def resolve_seed(seed: int | None, out: Path) -> tuple[int, bool]:
    """The run's seed and whether it was drawn just now.

    `seed` when given (0..2^63-1); without one, the seed of the run already stored in `out` (so a
    rerun resumes it), else a new one, drawn. Every command treats a missing seed this way, so a
    run is always repeatable from what it printed (`announce_seed`) or stored."""
    if seed is not None:
        return check_seed(seed), False
    path = Path(out) / STORE_NAME
    stored = ResultStore(path).metadata.get("fingerprint", {}).get("seed") if path.exists() else None
    if stored is not None:
        return int(stored), False
    return draw_seed(), True


def announce_seed(seed: int, drawn: bool) -> None:
    """Say a drawn seed once the run is under way (after its store is claimed: an input error stays one line)."""
    if drawn:
        print(f"chggen: seed {seed} (drawn; stored with the results)", file=sys.stderr)
