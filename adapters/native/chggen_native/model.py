"""The native network as a chggen ScoreModel, and its checkpoint file.

A checkpoint is one torch file holding only tensors and plain containers (so it loads with
`weights_only=True`): the network's hyperparameters, the elements it was trained on, its noise
process, its weights, and free-form metadata (the training data's recipe, the training run).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.errors import ChggenError, first_line
from chggen_plugins.sampling.noise import CartesianVE

from .network import ScoreNetwork
from .settings import NetworkConfig

FORMAT = "chggen-native/1"


def noise_settings(process: CartesianVE) -> dict[str, float | int]:
    return {"sigma_max": float(process.sigmas[-1]), "sigma_min": float(process.sigmas[0]),
            "num_levels": process.num_levels, "corrector_steps": process.corrector_steps,
            "snr": process.snr}


class NativeScoreModel:
    """Cartesian VE score model: score = network output / sigma (the network predicts sigma * score)."""

    def __init__(self, network: ScoreNetwork, elements: frozenset[int],
                 noise_process: CartesianVE | None = None, metadata: dict[str, Any] | None = None) -> None:
        config = network.config
        self.network = network
        self.elements = frozenset(int(z) for z in elements)
        self.noise_process = noise_process or CartesianVE(config.sigma_max, config.sigma_min)
        self.metadata = dict(metadata or {})
        too_heavy = [z for z in self.elements if not 0 < z <= config.max_z]
        if too_heavy:
            raise ChggenError(f"elements {too_heavy} are outside the network's embedding (1..{config.max_z})")

    @property
    def trained(self) -> bool:
        """True once a training run has recorded a step (chggen_plugins.contract.provenance)."""
        return "step" in self.metadata

    @property
    def provenance(self) -> str:
        if not self.trained:
            return f"{'host-conditioned ' if self.host_conditioned else ''}native network, random initial weights"
        meta = self.metadata
        recipe = meta.get("data_recipe", {})
        kind = "host-conditioned native network" if self.host_conditioned else "native network"
        return (f"{kind} trained {meta['step']} steps on {meta.get('train_structures', '?')} of "
                f"{recipe.get('structures', '?')} structures ({', '.join(recipe.get('systems', {}))}), "
                f"validation loss {meta.get('val_loss', float('nan')):.4f}")

    @classmethod
    def untrained(cls, elements: frozenset[int], config: NetworkConfig = NetworkConfig(),
                  seed: int = 0) -> "NativeScoreModel":
        torch.manual_seed(seed)
        return cls(ScoreNetwork(config), elements)

    def with_levels(self, num_levels: int, corrector_steps: int | None = None,
                    snr: float | None = None) -> "NativeScoreModel":
        """The same network on a coarser or finer ladder over the same sigma range (and, if given,
        another number of Langevin corrector steps per level or another corrector snr): the network
        is conditioned on sigma itself, so any ladder inside its training range is valid."""
        process = self.noise_process
        correctors = process.corrector_steps if corrector_steps is None else corrector_steps
        ladder = CartesianVE(float(process.sigmas[-1]), float(process.sigmas[0]), num_levels, correctors,
                             process.snr if snr is None else snr)
        return NativeScoreModel(self.network, self.elements, ladder, self.metadata)

    @property
    def host_conditioned(self) -> bool:
        """True for weights trained with the host clean and only guests noised (the protocol's
        optional attribute): the sampler then keeps host atoms exact at every level."""
        return self.network.config.host_flag

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: torch.device | str) -> "NativeScoreModel":
        self.network.to(device)
        return self

    def network_output(self, batch: CrystalBatch, sigma: Tensor) -> Tensor:
        """[N, 3] sigma * score for per-atom noise levels `sigma` [N] (training calls this too); a
        host-conditioned network also reads `batch.fixed` (True: a clean host atom)."""
        dtype = next(self.network.parameters()).dtype
        return self.network(batch.frac_coords.to(dtype), batch.lattice.to(dtype), batch.atomic_numbers,
                            batch.batch, sigma.to(dtype), batch.fixed)

    @torch.no_grad()
    def score(self, batch: CrystalBatch, level: int) -> Tensor:
        sigma = self.noise_process.sigma(level)
        sigmas = torch.full((len(batch.atomic_numbers),), sigma, device=batch.device)
        return self.network_output(batch, sigmas).to(torch.float64) / sigma

    def state(self) -> dict[str, Any]:
        """Everything the model is, as tensors and plain containers."""
        return {"format": FORMAT, "network": self.network.config.to_dict(),
                "noise": noise_settings(self.noise_process), "elements": sorted(self.elements),
                "metadata": self.metadata,
                "state_dict": {name: tensor.cpu() for name, tensor in self.network.state_dict().items()}}

    @classmethod
    def from_state(cls, state: Any, where: str, device: str = "cpu") -> "NativeScoreModel":
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ChggenError(f"{where}: not a chggen native checkpoint (expected format {FORMAT!r})")
        network = ScoreNetwork(NetworkConfig(**state["network"]))
        try:
            network.load_state_dict(state["state_dict"])
        except RuntimeError as error:
            lines = str(error).splitlines()
            raise ChggenError(f"{where}: weights do not match the recorded network "
                              f"({(lines[1] if len(lines) > 1 else lines[0]).strip()})") from None
        network.eval()
        return cls(network.to(device), frozenset(state["elements"]), CartesianVE(**state["noise"]),
                   state.get("metadata", {}))

    def save(self, path: Path) -> None:
        save_atomically(self.state(), path)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "NativeScoreModel":
        return cls.from_state(read_checkpoint(path, device), str(path), device)


def save_atomically(state: dict[str, Any], path: Path) -> None:
    """Write via a temporary name: a run killed while saving never leaves a truncated file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)


def read_checkpoint(path: Path, device: str = "cpu") -> Any:
    """A torch file of tensors and plain containers only (weights_only: no code runs on load)."""
    path = Path(path)
    if not path.is_file():
        raise ChggenError(f"{path}: no such native checkpoint")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise ChggenError(f"{path}: not a readable torch checkpoint: {_what_it_is(path, error)}") from None


def _what_it_is(path: Path, error: Exception) -> str:
    """What a file torch.load refused is: its own errors (KeyError for a text file) tell a user nothing."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        return "the file is empty"
    if zipfile.is_zipfile(path):
        return f"a zip archive, but not the one torch.save writes ({first_line(error)})"
    if head.startswith(b"\x80"):
        return "a pickle that torch's safe (weights-only) loader refuses, not the zip archive torch.save writes"
    try:
        first = head.decode("utf-8").split("\n", 1)[0].strip()
    except UnicodeDecodeError:
        return "binary data, neither the zip archive torch.save writes nor a pickle"
    return f"a text file (starting {first[:40]!r}), not the zip archive torch.save writes"
