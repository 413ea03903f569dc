"""The settings of `chggen train-diffcsp`: a plain dataclass without torch, so building the command's
options (every `chggen` command builds them) stays cheap; the network config is made on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .network import CSPNetConfig


@dataclass(frozen=True)
class DiffCSPTrainSettings:
    """The run's settings; hidden size, layers and schedule lengths go into hparams.yaml."""

    steps: int = 20000
    batch_size: int = 16
    learning_rate: float = 1e-3
    val_fraction: float = 0.1
    val_times: int = 8            # fixed time steps per validation crystal
    eval_every: int = 500
    seed: int = 0
    max_atoms: int = 24           # larger crystals are left out (a complete graph costs N^2)
    hidden_dim: int = 128
    num_layers: int = 4
    num_freqs: int = 64
    time_dim: int = 128
    timesteps: int = 1000
    sigma_begin: float = 0.005
    sigma_end: float = 0.5
    cost_lattice: float = 1.0
    cost_coord: float = 1.0
    energy_window: float | None = None  # recorded only: the selection happens before training

    def network_config(self) -> CSPNetConfig:
        from .network import CSPNetConfig  # torch: only when a network is built

        return CSPNetConfig(hidden_dim=self.hidden_dim, num_layers=self.num_layers, num_freqs=self.num_freqs,
                            time_dim=self.time_dim, max_atoms=100, timesteps=self.timesteps, layer_norm=True,
                            gram_lattice=True, sinusoid_edges=True, predict_types=False)
