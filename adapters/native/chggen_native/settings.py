"""The native network's and its training's settings: plain dataclasses, no torch, so that `chggen
train`'s options (built with every `chggen` command, `--help` included) show their defaults cheaply."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NetworkConfig:
    features: int = 64
    layers: int = 3
    cutoff: float = 6.0            # Angstrom
    radial_basis: int = 16
    noise_basis: int = 16
    sigma_min: float = 0.01        # range of the noise embedding (the training ladder)
    sigma_max: float = 10.0
    neighbour_norm: float = 16.0   # messages are summed then divided by this (typical degree)
    max_z: int = 100
    host_flag: bool = False        # host-conditioned: each atom embeds whether it is a clean host atom,
                                   # and training noises only a drawn guest set (train.draw_guests)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 20000
    batch_size: int = 16
    learning_rate: float = 1e-3
    val_fraction: float = 0.1
    val_levels: int = 8           # noise levels per validation structure (fixed draws)
    eval_every: int = 500
    seed: int = 0
    device: str = "cpu"           # any torch device; batches and noise draws are made on the CPU
    supercell_atoms: int = 0      # > 0: smaller training crystals are drawn as supercells of >= this many atoms
    supercell_fraction: float = 0.5  # ... this share of the time
