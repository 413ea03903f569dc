"""Periodic radius graph: every neighbour within the cutoff, across however many cell images it takes.

A pair (i, j, image n) is an edge when |x_j + n L - x_i| < cutoff. Two searches find the same edges
(tested against pymatgen's neighbour list):
- on CPU, vesin's cell-list search per crystal (C++; 5-10x faster than the tensor search on 12- to
  72-atom cells, `benchmarks/sampler_overhead.py`), returning each pair's image n;
- on other devices, an all-pairs-times-images tensor search that stays on the device: with
  fractional coordinates in [0, 1) the fractional gap along axis k lies in (-1, 1) and the distance
  is at least |gap_k + n_k| times the cell's height h_k along k, so images n_k in
  [-ceil(cutoff / h_k), ceil(cutoff / h_k)] hold every neighbour, in any cell shape.
Either way the edge vectors are computed here in torch from the inputs' own dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from vesin import NeighborList


@dataclass(frozen=True)
class Edges:
    source: Tensor   # [E] neighbour atom j
    target: Tensor   # [E] centre atom i (messages flow j -> i)
    vectors: Tensor  # [E, 3] x_j + n L - x_i in Angstrom


def cell_heights(lattice: Tensor) -> Tensor:
    """[B, 3] distance between opposite faces of each cell along a, b, c."""
    volume = torch.linalg.det(lattice).abs()
    faces = torch.linalg.cross(lattice[:, [1, 2, 0]], lattice[:, [2, 0, 1]]).norm(dim=2)
    return volume.unsqueeze(1) / faces


def intra_crystal_pairs(crystal: Tensor, num_crystals: int) -> tuple[Tensor, Tensor]:
    """All ordered (i, j) atom pairs within each crystal, self pairs included."""
    counts = torch.bincount(crystal, minlength=num_crystals)
    starts = torch.cumsum(counts, 0) - counts
    per_atom = counts[crystal]                                   # partners of each atom
    centre = torch.repeat_interleave(torch.arange(len(crystal), device=crystal.device), per_atom)
    offset_in_block = torch.arange(len(centre), device=crystal.device) - torch.repeat_interleave(
        torch.cumsum(per_atom, 0) - per_atom, per_atom)
    neighbour = starts[crystal[centre]] + offset_in_block
    return centre, neighbour


def radius_graph(frac: Tensor, lattice: Tensor, crystal: Tensor, cutoff: float) -> Edges:
    """Edges within `cutoff` (Angstrom) for a batch of periodic crystals."""
    frac = torch.remainder(frac, 1.0)
    if frac.device.type == "cpu":
        return cell_list_graph(frac, lattice, crystal, cutoff)
    return all_pairs_graph(frac, lattice, crystal, cutoff)


def cell_list_graph(frac: Tensor, lattice: Tensor, crystal: Tensor, cutoff: float) -> Edges:
    """vesin per crystal (float64 search; a pair is kept when its float64 distance is < cutoff)."""
    search = NeighborList(cutoff=cutoff, full_list=True)
    counts = torch.bincount(crystal, minlength=lattice.shape[0]).tolist()
    frac64, lattice64 = frac.detach().to(torch.float64).numpy(), lattice.detach().to(torch.float64).numpy()
    centres, neighbours, shifts, start = [], [], [], 0
    for index, count in enumerate(counts):
        points = frac64[start:start + count] @ lattice64[index]
        i, j, shift = search.compute(points=points, box=lattice64[index], periodic=True, quantities="ijS")
        centres.append(i + start)
        neighbours.append(j + start)
        shifts.append(shift)
        start += count
    centre = torch.from_numpy(np.concatenate(centres).astype(np.int64))
    neighbour = torch.from_numpy(np.concatenate(neighbours).astype(np.int64))
    shift = torch.from_numpy(np.concatenate(shifts)).to(frac.dtype)
    gap = frac.index_select(0, neighbour) - frac.index_select(0, centre) + shift
    vectors = torch.einsum("pi,pij->pj", gap, lattice.index_select(0, crystal.index_select(0, centre)))
    return Edges(source=neighbour, target=centre, vectors=vectors)


def all_pairs_graph(frac: Tensor, lattice: Tensor, crystal: Tensor, cutoff: float) -> Edges:
    """Every pair times every image that can reach, on the tensors' own device."""
    num_crystals = lattice.shape[0]
    reach = torch.ceil(cutoff / cell_heights(lattice)).amax(dim=0).to(torch.long)  # [3]
    axes = [torch.arange(-int(r), int(r) + 1, device=frac.device, dtype=frac.dtype) for r in reach]
    images = torch.cartesian_prod(*axes)                                           # [K, 3]
    centre, neighbour = intra_crystal_pairs(crystal, num_crystals)
    cell = lattice[crystal[centre]]                                                # [P, 3, 3]
    gap = frac[neighbour] - frac[centre]                                           # [P, 3]
    vectors = torch.einsum("pki,pij->pkj", gap.unsqueeze(1) + images.unsqueeze(0), cell)  # [P, K, 3]
    distance = vectors.norm(dim=2)
    self_image = (centre == neighbour).unsqueeze(1) & (images.abs().sum(dim=1) == 0).unsqueeze(0)
    keep = (distance < cutoff) & ~self_image
    pair_index, _ = keep.nonzero(as_tuple=True)
    return Edges(source=neighbour[pair_index], target=centre[pair_index], vectors=vectors[keep])

