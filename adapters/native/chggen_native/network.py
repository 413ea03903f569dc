"""The native score network: PaiNN-style equivariant message passing, conditioned on the noise level.

Each atom carries F scalar channels s [N, F] and F vector channels v [N, 3, F]. Messages mix
neighbours' features through radial filters of the edge length and the edge direction; vectors
are only ever scaled by scalars, summed, or dotted with each other, so rotating the crystal rotates
every vector feature and the output, and leaves the scalars alone (SE(3)-equivariance, tested).
The noise level enters every layer as a learned embedding of log sigma, so the network knows how
far atoms may be from their sites (the CHGGen authors' model was blind to it and divided by sigma).
A host-conditioned network (`NetworkConfig.host_flag`) also embeds, per atom, whether it is a host
atom given at its clean position or a guest at the noise level: trained so, it learns the guests'
score given the exact host, instead of a score of everything noisy that inpainting has to steer.
The output is sigma times the score, a vector per atom of order one at every level. Scalars are
layer-normed and vectors rescaled to unit mean square before they gate anything: without that, a
rare noisy configuration blew one training batch's loss up to 1e31 (the update is quadratic in v).

Messages run over atom pairs, not edges. A message's radial filter is linear in the radial basis
(W b(r) + c), so one pair's messages summed over its periodic images need only the image sums of
b(r), of b(r) times the unit edge vector, of the unit vector and of the image count: exactly the
same output, with the pair's work done once. In the 12- to 36-atom cells of campaigns and training
a pair recurs in 3 to 5 images within 6 A, so each layer does that much less; in 72-atom cells
1.6 times (`benchmarks/sampler_overhead.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .graph import Edges, radius_graph
from .settings import NetworkConfig

_EPS = 1e-8
# Pairs per message block: the [pairs, 3, F] message tensors of one block stay in a core's cache
# (1024 x 3 x 64 floats: 0.8 MB); whole batches spilled it and made batching slower per crystal than one
# crystal at a time (`benchmarks/sampler_overhead.py`).
PAIR_BLOCK = 1024


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


@dataclass(frozen=True)
class PairGeometry:
    """Each ordered neighbour pair (j -> i) once, with sums over its images within the cutoff."""
    source: Tensor       # [P] neighbour atom j
    target: Tensor       # [P] centre atom i
    radial: Tensor       # [P, B] sum of the radial basis b(r)
    directional: Tensor  # [P, 3, B] sum of the unit edge vector times b(r)
    direction: Tensor    # [P, 3] sum of the unit edge vectors
    images: Tensor       # [P, 1] how many images

    @classmethod
    def of(cls, edges: Edges, basis: RadialBasis, num_atoms: int) -> "PairGeometry":
        """Group the radius graph's edges (one per image) by pair and sum them, once per call."""
        distance = edges.vectors.norm(dim=1)
        radial = basis(distance)
        direction = edges.vectors / distance.clamp_min(_EPS).unsqueeze(1)
        pairs, pair_of_edge = torch.unique(edges.target * num_atoms + edges.source, return_inverse=True)
        size = radial.shape[1]
        per_edge = torch.cat([radial, (direction.unsqueeze(2) * radial.unsqueeze(1)).flatten(1), direction,
                              torch.ones_like(distance).unsqueeze(1)], dim=1)
        sums = per_edge.new_zeros(len(pairs), per_edge.shape[1]).index_add_(0, pair_of_edge, per_edge)
        return cls(source=pairs % num_atoms, target=pairs // num_atoms, radial=sums[:, :size],
                   directional=sums[:, size:4 * size].view(-1, 3, size),
                   direction=sums[:, 4 * size:4 * size + 3], images=sums[:, 4 * size + 3:])


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

    def forward(self, s: Tensor, v: Tensor, noise: Tensor, pairs: PairGeometry) -> tuple[Tensor, Tensor]:
        s = s + self.noise(noise)
        sum_s, sum_v = self.gather(s, v, pairs)
        s = s + sum_s / self.norm
        v = v + sum_v / self.norm

        f = self.features
        v_normed = _vector_norm(v)
        u, w = self.mix_u(v_normed), self.mix_v(v_normed)
        w_norm = torch.sqrt(w.pow(2).sum(dim=1) + _EPS)
        a_vv, a_sv, a_ss = self.update(torch.cat([self.norm_update(s), w_norm], dim=1)).split(f, dim=1)
        v = v + a_vv.unsqueeze(1) * u
        s = s + a_sv * (u * w).sum(dim=1) + a_ss
        return s, v

    def gather(self, s: Tensor, v: Tensor, pairs: PairGeometry) -> tuple[Tensor, Tensor]:
        """Sum over every edge j -> i (every pair's every image) of the message: scalar gates
        m_s(j) f_s(r) and vector ones m_vv(j) f_vv(r) v(j) + m_vr(j) f_vr(r) r_hat, f(r) = W b(r) + c."""
        f = self.features
        messages = self.message(self.norm_message(s))                  # [N, 3F]
        neighbour_v = _vector_norm(v).reshape(len(v), 3 * f)           # [N, 3F]
        weight, bias = self.filter.weight, self.filter.bias            # filter of one edge: W b(r) + c
        sum_s, sum_v = torch.zeros_like(s), torch.zeros_like(v)
        for first in range(0, len(pairs.source), PAIR_BLOCK):
            block = slice(first, first + PAIR_BLOCK)
            src, dst = pairs.source[block], pairs.target[block]
            gate_s, gate_vv, gate_vr = messages.index_select(0, src).split(f, dim=1)
            filters = nn.functional.linear(pairs.radial[block], weight[:2 * f]) + pairs.images[block] * bias[:2 * f]
            gate_s, gate_vv = gate_s * filters[:, :f], gate_vv * filters[:, f:]
            radial_v = (nn.functional.linear(pairs.directional[block], weight[2 * f:])
                        + pairs.direction[block].unsqueeze(2) * bias[2 * f:])    # [P, 3, F]
            pair_v = (neighbour_v.index_select(0, src).view(-1, 3, f) * gate_vv.unsqueeze(1)
                      + radial_v * gate_vr.unsqueeze(1))
            sum_s.index_add_(0, dst, gate_s)
            sum_v.index_add_(0, dst, pair_v)
        return sum_s, sum_v


class ScoreNetwork(nn.Module):
    """frac coords, lattice, species, crystal index, per-atom sigma (and, for a host-conditioned
    network, the host mask) -> sigma * score [N, 3] (A^-1 * A)."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.max_z + 1, config.features)
        # row 0: guest (noised), row 1: host (clean); absent in unconditional networks, whose
        # checkpoints therefore load unchanged
        self.host_embedding = nn.Embedding(2, config.features) if config.host_flag else None
        self.noise_embedding = NoiseEmbedding(config)
        self.radial = RadialBasis(config.radial_basis, config.cutoff)
        self.interactions = nn.ModuleList(Interaction(config) for _ in range(config.layers))
        self.out_norm = nn.LayerNorm(config.features)
        self.out_gate = _mlp(config.features, config.features, config.features)
        self.out_mix = nn.Linear(config.features, 1, bias=False)

    def forward(self, frac: Tensor, lattice: Tensor, atomic_numbers: Tensor, crystal: Tensor,
                sigma: Tensor, host: Tensor | None = None) -> Tensor:
        edges = radius_graph(frac, lattice, crystal, self.config.cutoff)
        pairs = PairGeometry.of(edges, self.radial, len(atomic_numbers))
        noise = self.noise_embedding(sigma)
        s = self.embedding(atomic_numbers)
        if self.host_embedding is not None:
            if host is None:
                raise ValueError("a host-conditioned network needs the host mask")
            s = s + self.host_embedding(host.to(torch.long))
        v = torch.zeros(len(s), 3, self.config.features, dtype=s.dtype, device=s.device)
        for interaction in self.interactions:
            s, v = interaction(s, v, noise, pairs)
        gated = v * self.out_gate(self.out_norm(s + noise)).unsqueeze(1)
        return self.out_mix(gated).squeeze(2)
