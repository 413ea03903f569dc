"""DiffCSP's CSPNet decoder, written for chggen, with DiffCSP's parameter names and shapes.

The network (Jiao et al., "Crystal Structure Prediction by Joint Equivariant Diffusion", NeurIPS 2023)
sees every crystal as a complete graph with self-loops. An edge i -> j carries the two node states,
the lattice's Gram matrix L L^T (9 numbers, invariant to rotating the crystal) and a Fourier
embedding of the fractional displacement (x_j - x_i) mod 1, so the fractional output is invariant to
rotations and periodic translations. Each layer: LayerNorm, edge MLP, mean over each node's edges,
node MLP, residual. Outputs: a per-atom fractional vector (minus the normalised coordinate score), a
per-crystal 3x3 lattice output and, for the de novo model, per-atom type logits over 100 classes.

`DiffCSPNetwork` adds the two noise schedules as buffers so that its `state_dict` has exactly the
keys of DiffCSP's Lightning module (`decoder.*`, `beta_scheduler.*`, `sigma_scheduler.*`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

NUM_TYPE_CLASSES = 100  # the de novo model's type one-hot and type_out always have 100 classes


@dataclass(frozen=True)
class CSPNetConfig:
    """What fixes the shapes of a DiffCSP checkpoint (names follow DiffCSP's hparams.yaml)."""

    hidden_dim: int = 512
    num_layers: int = 6
    num_freqs: int = 128       # Fourier frequencies k = 0..num_freqs-1 of the displacement
    time_dim: int = 256        # sinusoidal embedding of the integer time step
    max_atoms: int = 100       # embedding classes: atomic numbers 1..max_atoms
    timesteps: int = 1000      # length of the schedules, minus the t = 0 entry
    layer_norm: bool = True    # DiffCSP's `ln`
    gram_lattice: bool = True  # DiffCSP's `ip`: lattice output is multiplied onto L
    sinusoid_edges: bool = True  # DiffCSP's `dis_emb: sin` (else the raw 3-vector)
    predict_types: bool = False  # the de novo model: soft one-hot input (Linear) and type_out

    @property
    def displacement_dim(self) -> int:
        return 6 * self.num_freqs if self.sinusoid_edges else 3


def time_embedding(t: Tensor, dim: int) -> Tensor:
    """[B, dim] the transformer sinusoids of integer steps t [B]: sines, then cosines."""
    half = dim // 2
    rates = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / (half - 1)))
    angles = t.to(rates.dtype)[:, None] * rates[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def displacement_embedding(diff: Tensor, num_freqs: int) -> Tensor:
    """[E, 6 K] sin and cos of 2 pi k d for each axis d of `diff` [E, 3] (axis-major), k = 0..K-1."""
    freqs = 2.0 * math.pi * torch.arange(num_freqs, device=diff.device, dtype=diff.dtype)
    angles = (diff[:, :, None] * freqs).reshape(len(diff), -1)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def complete_graph(batch: Tensor, num_atoms: Tensor) -> tuple[Tensor, Tensor]:
    """Every ordered pair (i, j) of atoms of the same crystal, self-pairs included, i-major.

    Returns (source i [E], target j [E]); the order is that of a dense block-diagonal adjacency.
    """
    per_atom = num_atoms[batch]
    source = torch.repeat_interleave(torch.arange(len(batch), device=batch.device), per_atom)
    first_atom = torch.cumsum(num_atoms, 0) - num_atoms
    row_start = torch.cumsum(per_atom, 0) - per_atom
    within = torch.arange(len(source), device=batch.device) - torch.repeat_interleave(row_start, per_atom)
    return source, first_atom[batch[source]] + within


def _mlp(width_in: int, width: int) -> nn.Sequential:
    """Linear, SiLU, Linear, SiLU: DiffCSP's edge and node MLPs (indices 0 and 2 hold weights)."""
    return nn.Sequential(nn.Linear(width_in, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU())


def _segment_mean(values: Tensor, index: Tensor, size: int) -> Tensor:
    total = values.new_zeros((size, values.shape[1])).index_add_(0, index, values)
    count = values.new_zeros(size).index_add_(0, index, values.new_ones(len(index)))
    return total / count.clamp(min=1.0)[:, None]


class CSPLayer(nn.Module):
    """One message-passing layer with a residual connection."""

    def __init__(self, config: CSPNetConfig) -> None:
        super().__init__()
        hidden = config.hidden_dim
        self.edge_mlp = _mlp(2 * hidden + 9 + config.displacement_dim, hidden)
        self.node_mlp = _mlp(2 * hidden, hidden)
        if config.layer_norm:
            self.layer_norm = nn.LayerNorm(hidden)

    def forward(self, h: Tensor, edge_features: Tensor, source: Tensor, target: Tensor) -> Tensor:
        """`edge_features` [E, 9 + displacement_dim]: Gram matrix and displacement embedding."""
        normed = self.layer_norm(h) if hasattr(self, "layer_norm") else h
        messages = self.edge_mlp(torch.cat([normed[source], normed[target], edge_features], dim=1))
        gathered = _segment_mean(messages, source, len(h))
        return h + self.node_mlp(torch.cat([normed, gathered], dim=1))


class CSPNet(nn.Module):
    """The decoder: atom types, fractional coordinates, lattice and time step in; three heads out."""

    def __init__(self, config: CSPNetConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_dim
        if config.predict_types:
            self.node_embedding = nn.Linear(config.max_atoms, hidden)
        else:
            self.node_embedding = nn.Embedding(config.max_atoms, hidden)
        self.atom_latent_emb = nn.Linear(hidden + config.time_dim, hidden)
        for index in range(config.num_layers):
            self.add_module(f"csp_layer_{index}", CSPLayer(config))
        self.coord_out = nn.Linear(hidden, 3, bias=False)
        self.lattice_out = nn.Linear(hidden, 9, bias=False)
        if config.layer_norm:
            self.final_layer_norm = nn.LayerNorm(hidden)
        if config.predict_types:
            self.type_out = nn.Linear(hidden, NUM_TYPE_CLASSES)

    def forward(self, t: Tensor, atom_types: Tensor, frac_coords: Tensor, lattice: Tensor,
                batch: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """t [B] integer steps; atom_types [N] atomic numbers (CSP) or [N, max_atoms] soft one-hot
        (de novo); frac_coords [N, 3]; lattice [B, 3, 3] rows = cell vectors; batch [N].

        Returns (lattice output [B, 3, 3], coordinate output [N, 3], type logits [N, 100] or None).
        """
        config = self.config
        num_atoms = torch.bincount(batch, minlength=len(lattice))
        source, target = complete_graph(batch, num_atoms)
        diff = torch.remainder(frac_coords[target] - frac_coords[source], 1.0)
        if config.sinusoid_edges:
            diff = displacement_embedding(diff, config.num_freqs)
        gram = (lattice @ lattice.transpose(-1, -2)).reshape(-1, 9)
        edge_features = torch.cat([gram[batch[source]], diff], dim=1)

        types = atom_types if config.predict_types else atom_types - 1
        h = torch.cat([self.node_embedding(types), time_embedding(t, config.time_dim)[batch]], dim=1)
        h = self.atom_latent_emb(h)
        for index in range(config.num_layers):
            h = self._modules[f"csp_layer_{index}"](h, edge_features, source, target)
        if config.layer_norm:
            h = self.final_layer_norm(h)

        lattice_out = self.lattice_out(_segment_mean(h, batch, len(lattice))).reshape(-1, 3, 3)
        if config.gram_lattice:
            lattice_out = lattice_out @ lattice
        types_out = self.type_out(h) if config.predict_types else None
        return lattice_out, self.coord_out(h), types_out


class _Buffers(nn.Module):
    """A module that only holds named tensors (DiffCSP's schedulers, as far as a state dict sees)."""

    def __init__(self, names: tuple[str, ...], length: int) -> None:
        super().__init__()
        for name in names:
            self.register_buffer(name, torch.zeros(length))


class DiffCSPNetwork(nn.Module):
    """CSPNet plus DiffCSP's schedule buffers: the state-dict layout of a DiffCSP checkpoint.

    The buffers start as zeros; their values come only from a checkpoint (sigmas_norm is a Monte
    Carlo estimate made when the original model was built, so recomputing it would change results).
    """

    def __init__(self, config: CSPNetConfig) -> None:
        super().__init__()
        self.config = config
        self.decoder = CSPNet(config)
        self.beta_scheduler = _Buffers(("betas", "alphas", "alphas_cumprod", "sigmas"), config.timesteps + 1)
        self.sigma_scheduler = _Buffers(("sigmas", "sigmas_norm"), config.timesteps + 1)

    def forward(self, t: Tensor, atom_types: Tensor, frac_coords: Tensor, lattice: Tensor,
                batch: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        return self.decoder(t, atom_types, frac_coords, lattice, batch)
