"""The native score network: PaiNN-style equivariant message passing, conditioned on the noise level.

Each atom carries F scalar channels s [N, F] and F vector channels v [N, 3, F]. Messages mix
neighbours' features through radial filters of the edge length and the edge direction; vectors
are only ever scaled by scalars, summed, or dotted with each other, so rotating the crystal rotates
every vector feature and the output, and leaves the scalars alone (SE(3)-equivariance, tested).
The noise level enters every layer as a learned embedding of log sigma, so the network knows how
far atoms may be from their sites (the CHGGen authors' model was blind to it and divided by sigma).
The output is sigma times the score, a vector per atom of order one at every level. Scalars are
layer-normed and vectors rescaled to unit mean square before they gate anything: without that, a
rare noisy configuration blew one training batch's loss up to 1e31 (the update is quadratic in v).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .graph import radius_graph
from .settings import NetworkConfig

_EPS = 1e-8
# Edges per message block: the [edges, 3, F] message tensors of one block stay in a core's cache
# (1024 x 3 x 64 floats: 0.8 MB); whole batches spilled it and made batching slower per crystal than one
# crystal at a time (`benchmarks/sampler_overhead.py`).
EDGE_BLOCK = 1024


def _vector_norm(v: Tensor) -> Tensor:
    """Rescale each atom's vector channels to unit mean square: a rotation-invariant factor, so the
    result stays equivariant, and the quadratic terms of the update cannot run away."""
    return v / torch.sqrt(v.pow(2).sum(dim=1).mean(dim=1) + _EPS).view(-1, 1, 1)


def _mlp(width_in: int, width_hidden: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width_in, width_hidden), nn.SiLU(), nn.Linear(width_hidden, width_out))


class RadialBasis(nn.Module):
    """sin(k pi r / rc) / r, k = 1..n, times a cosine envelope that reaches zero at the cutoff."""

    def __init__(self, size: int, cutoff: float) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, size + 1, dtype=torch.float32) * math.pi / cutoff)

    def forward(self, distance: Tensor) -> Tensor:
        d = distance.unsqueeze(1)
        envelope = 0.5 * (torch.cos(math.pi * d / self.cutoff) + 1.0)
        return torch.sin(self.frequencies * d) / d.clamp_min(_EPS) * envelope


class NoiseEmbedding(nn.Module):
    """Gaussian bumps along log sigma across the training ladder, then an MLP."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        low, high = math.log(config.sigma_min), math.log(config.sigma_max)
        self.register_buffer("centres", torch.linspace(low, high, config.noise_basis))
        self.width = (high - low) / (config.noise_basis - 1)
        self.mlp = _mlp(config.noise_basis, config.features, config.features)

    def forward(self, sigma: Tensor) -> Tensor:
        bumps = torch.exp(-0.5 * ((torch.log(sigma).unsqueeze(1) - self.centres) / self.width) ** 2)
        return self.mlp(bumps)


class Interaction(nn.Module):
    """One message (neighbours -> atom) and one update (within the atom) block."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        f = config.features
        self.features = f
        self.norm = config.neighbour_norm
        self.noise = nn.Linear(f, f)
        self.norm_message = nn.LayerNorm(f)
        self.norm_update = nn.LayerNorm(f)
        self.message = _mlp(f, f, 3 * f)
        self.filter = nn.Linear(config.radial_basis, 3 * f)
        self.mix_u = nn.Linear(f, f, bias=False)
        self.mix_v = nn.Linear(f, f, bias=False)
        self.update = _mlp(2 * f, f, 3 * f)

    def forward(self, s: Tensor, v: Tensor, noise: Tensor, source: Tensor, target: Tensor,
                radial: Tensor, direction: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features
        s = s + self.noise(noise)
        messages = self.message(self.norm_message(s))                  # [N, 3F]
        neighbour_v = _vector_norm(v).reshape(len(v), 3 * f)           # [N, 3F]
        sum_s, sum_v = torch.zeros_like(s), torch.zeros_like(v)
        for first in range(0, len(source), EDGE_BLOCK):
            block = slice(first, first + EDGE_BLOCK)
            src, dst = source[block], target[block]
            gates = messages.index_select(0, src) * self.filter(radial[block])
            gate_s, gate_vv, gate_vr = gates.split(f, dim=1)
            edge_v = (neighbour_v.index_select(0, src).view(-1, 3, f) * gate_vv.unsqueeze(1)
                      + direction[block].unsqueeze(2) * gate_vr.unsqueeze(1))
            sum_s.index_add_(0, dst, gate_s)
            sum_v.index_add_(0, dst, edge_v)
        s = s + sum_s / self.norm
        v = v + sum_v / self.norm

        v_normed = _vector_norm(v)
        u, w = self.mix_u(v_normed), self.mix_v(v_normed)
        w_norm = torch.sqrt(w.pow(2).sum(dim=1) + _EPS)
        a_vv, a_sv, a_ss = self.update(torch.cat([self.norm_update(s), w_norm], dim=1)).split(f, dim=1)
        v = v + a_vv.unsqueeze(1) * u
        s = s + a_sv * (u * w).sum(dim=1) + a_ss
        return s, v


class ScoreNetwork(nn.Module):
    """frac coords, lattice, species, crystal index, per-atom sigma -> sigma * score [N, 3] (A^-1 * A)."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.max_z + 1, config.features)
        self.noise_embedding = NoiseEmbedding(config)
        self.radial = RadialBasis(config.radial_basis, config.cutoff)
        self.interactions = nn.ModuleList(Interaction(config) for _ in range(config.layers))
        self.out_norm = nn.LayerNorm(config.features)
        self.out_gate = _mlp(config.features, config.features, config.features)
        self.out_mix = nn.Linear(config.features, 1, bias=False)

    def forward(self, frac: Tensor, lattice: Tensor, atomic_numbers: Tensor, crystal: Tensor,
                sigma: Tensor) -> Tensor:
        edges = radius_graph(frac, lattice, crystal, self.config.cutoff)
        distance = edges.vectors.norm(dim=1)
        radial = self.radial(distance)
        direction = edges.vectors / distance.clamp_min(_EPS).unsqueeze(1)
        noise = self.noise_embedding(sigma)
        s = self.embedding(atomic_numbers)
        v = torch.zeros(len(s), 3, self.config.features, dtype=s.dtype, device=s.device)
        for interaction in self.interactions:
            s, v = interaction(s, v, noise, edges.source, edges.target, radial, direction)
        gated = v * self.out_gate(self.out_norm(s + noise)).unsqueeze(1)
        return self.out_mix(gated).squeeze(2)
