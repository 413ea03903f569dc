"""A DiffCSP checkpoint as a chggen ScoreModel: positions scored with lattice and species fixed.

The network is conditioned on the integer time step t = level + 1 and on the crystal's true lattice
(in inpainting the lattice is known, so it is given clean at every step; DiffCSP itself trains the
network on a noisy lattice unless the run set cost_lattice = 0). The de novo model also takes atom
types as a soft one-hot; known species go in as the exact one-hot.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.contract.safe_load import load_checkpoint
from chggen_plugins.errors import ChggenError, first_line

from .network import CSPNetConfig, DiffCSPNetwork
from .noise import DiffCSPProcess, cosine_beta_tables, wrapped_normal_tables
from .run import RunSettings, read_run


def load_weights(network: DiffCSPNetwork, state: object, where: str) -> None:
    """Strict load with a one-line error naming the first missing / unexpected / misshapen keys."""
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ChggenError(f"{where}: no tensor 'state_dict' in this checkpoint")
    expected = network.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise ChggenError(f"{where}: weights do not match the network built from hparams.yaml: "
                          f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}, unexpected "
                          f"{unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}")
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ChggenError(f"{where}: {key} has shape {tuple(state[key].shape)} in the checkpoint but "
                              f"{tuple(value.shape)} in the network built from hparams.yaml")
    network.load_state_dict(state, strict=True)


class DiffCSPScoreModel:
    """score = -sqrt(sigmas_norm[t]) * coordinate output, per unit fractional coordinate."""

    def __init__(self, network: DiffCSPNetwork, noise_process: DiffCSPProcess,
                 max_atoms_trained: int | None = None, source: str = "", trained_steps: int | None = None) -> None:
        self.network = network.eval()
        # chggen_plugins.contract.provenance: random weights say so; a checkpoint's Lightning global_step tells
        self._trained_steps = trained_steps
        self.trained = None if trained_steps is None else trained_steps > 0
        self.provenance = (f"DiffCSP {source or 'network'}" + ("" if trained_steps is None
                           else f", {trained_steps} training steps"))
        self.noise_process = noise_process
        self.elements = frozenset(range(1, network.config.max_atoms + 1))
        self.max_atoms_trained = max_atoms_trained
        self.source = source
        self._warned_size = False

    @classmethod
    def untrained(cls, config: CSPNetConfig, seed: int = 0, sigma_begin: float = 0.005,
                  sigma_end: float = 0.5, step_lr: float = 1e-5) -> "DiffCSPScoreModel":
        """Random weights and DiffCSP's schedules (the cosine lattice one for its own sampler) for tests
        and timing."""
        torch.manual_seed(seed)
        network = DiffCSPNetwork(config)
        sigmas, norms = wrapped_normal_tables(config.timesteps, sigma_begin, sigma_end)
        network.sigma_scheduler.sigmas.copy_(sigmas)
        network.sigma_scheduler.sigmas_norm.copy_(norms)
        for name, value in cosine_beta_tables(config.timesteps).items():
            getattr(network.beta_scheduler, name).copy_(value)
        return cls(network, DiffCSPProcess(sigmas, norms, sigma_begin, step_lr, "untrained network"),
                   source="random weights", trained_steps=0)

    @classmethod
    def load(cls, source: Path, step_lr: float | None = None) -> "DiffCSPScoreModel":
        """From a run folder or a .ckpt in one. step_lr defaults to DiffCSP's recommendation for the
        run's task and dataset (1e-5 for an unknown dataset)."""
        run: RunSettings = read_run(Path(source))
        try:
            checkpoint = load_checkpoint(run.checkpoint)
        except Exception as error:  # a truncated or foreign file fails deep inside torch/pickle
            raise ChggenError(f"{run.checkpoint}: not a readable torch checkpoint "
                              f"({type(error).__name__}: {first_line(error)})") from None
        state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
        network = DiffCSPNetwork(run.network)
        load_weights(network, state, str(run.checkpoint))
        schedule = network.sigma_scheduler
        process = DiffCSPProcess(schedule.sigmas, schedule.sigmas_norm, run.sigma_begin,
                                 run.default_step_lr() if step_lr is None else step_lr, str(run.checkpoint))
        steps = checkpoint.get("global_step")
        return cls(network, process, run.max_atoms_trained, str(run.checkpoint),
                   steps if isinstance(steps, int) and not isinstance(steps, bool) else None)

    def with_step_lr(self, step_lr: float) -> "DiffCSPScoreModel":
        """The same network with another corrector step size (DiffCSP's --step_lr)."""
        process = self.noise_process
        schedule = self.network.sigma_scheduler
        return DiffCSPScoreModel(self.network, DiffCSPProcess(schedule.sigmas, schedule.sigmas_norm,
                                                              process.sigma_begin, step_lr, self.source),
                                 self.max_atoms_trained, self.source, self._trained_steps)

    def to(self, device: torch.device | str) -> "DiffCSPScoreModel":
        self.network.to(device)
        return self

    def network_outputs(self, batch: CrystalBatch, t: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """DiffCSP's three outputs (lattice, coordinates, types) at integer step t, float32."""
        numbers = batch.atomic_numbers
        outside = numbers[(numbers < 1) | (numbers > self.network.config.max_atoms)]
        if len(outside):
            raise ChggenError(f"atomic number {int(outside[0])} is outside this DiffCSP model's "
                              f"embedding (1..{self.network.config.max_atoms})")
        self._warn_if_larger_than_trained(batch)
        steps = torch.full((batch.num_crystals,), t, dtype=torch.long, device=batch.device)
        types = numbers
        if self.network.config.predict_types:
            types = F.one_hot(numbers - 1, self.network.config.max_atoms).float()
        return self.network(steps, types, batch.frac_coords.float(), batch.lattice.float(), batch.batch)

    @torch.no_grad()
    def score(self, batch: CrystalBatch, level: int) -> Tensor:
        scale = self.noise_process.score_scale(level)
        _, coords, _ = self.network_outputs(batch, self.noise_process.time_step(level))
        return -scale * coords.double()

    def _warn_if_larger_than_trained(self, batch: CrystalBatch) -> None:
        largest = int(batch.num_atoms.max())
        if self.max_atoms_trained and largest > self.max_atoms_trained and not self._warned_size:
            self._warned_size = True
            warnings.warn(f"{self.source}: crystals of {largest} atoms; this DiffCSP model was trained on "
                          f"at most {self.max_atoms_trained} (data.max_atoms)", stacklevel=3)
