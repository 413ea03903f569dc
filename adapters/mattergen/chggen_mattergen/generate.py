"""MatterGen's own unconditional generation (lattice, species and positions), for side-by-side
benchmarks. Nothing here inpaints: that is the core sampler's job.

The sampler is MatterGen's `GuidedPredictorCorrector` set up as its default sampling config
(`sampling_conf/default.yaml`, which the PyPI wheel lacks) says: guidance scale 0 (unconditional),
per step one Langevin corrector (pos snr 0.4, cell snr 0.2, max step 1e6) then one ancestral
predictor for pos and cell and a D3PM ancestral predictor (predict_x0) for species; N equals the
checkpoint's D3PM step count (1000 for the published checkpoints) and eps_t = 1/N. The composition
fixes only the number of atoms per crystal: MatterGen chooses the species itself. Structures are
MatterGen's final mean estimate, unrelaxed.
"""

from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path

import torch
from pymatgen.core import Composition, Lattice, Structure

from chggen_plugins.errors import ChggenError

from .checkpoint import load_module, resolve_source
from .runtime import mattergen_module


def atom_count(composition: Composition) -> int:
    count = composition.num_atoms
    if count < 1 or abs(count - round(count)) > 1e-8:
        raise ChggenError(f"composition {composition.formula}: MatterGen needs a whole positive number "
                          f"of atoms, got {count:g}")
    return int(round(count))


def sampler_for(module: torch.nn.Module):
    """MatterGen's default unconditional predictor-corrector for `module` (a DiffusionLightningModule)."""
    guidance = mattergen_module("diffusion.sampling.classifier_free_guidance")
    wrapped = mattergen_module("diffusion.wrapped.wrapped_predictors_correctors")
    lattice = mattergen_module("common.diffusion.predictors_correctors")
    d3pm = mattergen_module("diffusion.d3pm.d3pm_predictors_correctors")
    embeddings = mattergen_module("property_embeddings")
    species = module.diffusion_module.corruption.discrete_corruptions.get("atomic_numbers")
    if species is None:
        raise ChggenError("this MatterGen checkpoint does not diffuse atom types (no atomic_numbers "
                          "corruption), so its own sampler cannot make whole crystals")
    steps = species.N
    return guidance.GuidedPredictorCorrector.from_pl_module(
        module, N=steps, eps_t=1.0 / steps, guidance_scale=0.0,
        remove_conditioning_fn=embeddings.SetUnconditionalEmbeddingType(),
        keep_conditioning_fn=embeddings.SetConditionalEmbeddingType(),
        predictor_partials={"pos": partial(wrapped.WrappedAncestralSamplingPredictor),
                            "cell": partial(lattice.LatticeAncestralSamplingPredictor),
                            "atomic_numbers": partial(d3pm.D3PMAncestralSamplingPredictor,
                                                      predict_x0=True)},
        corrector_partials={"pos": partial(wrapped.WrappedLangevinCorrector, max_step_size=1e6, snr=0.4),
                            "cell": partial(lattice.LatticeLangevinDiffCorrector, max_step_size=1e6,
                                            snr=0.2)},
        n_steps_corrector=1)


def sample_structures(module: torch.nn.Module, num_atoms: int, num_samples: int, seed: int) -> list[Structure]:
    """`num_samples` crystals of `num_atoms` atoms from MatterGen's sampler, reproducible by `seed`
    (MatterGen draws from torch's global generator: it is seeded in a forked state, then restored)."""
    ChemGraph = mattergen_module("common.data.chemgraph").ChemGraph
    collate = mattergen_module("common.data.collate").collate
    empty = [ChemGraph(pos=torch.full((num_atoms, 3), torch.nan), cell=torch.full((1, 3, 3), torch.nan),
                       atomic_numbers=torch.full((num_atoms,), -1, dtype=torch.long),
                       num_atoms=torch.tensor([num_atoms]), num_nodes=num_atoms)
             for _ in range(num_samples)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            _, mean = sampler_for(module).sample(collate(empty))
        except IndexError as error:  # GemNet's failure on a graph without bond pairs
            raise ChggenError(f"MatterGen's sampler failed inside GemNet ({error}): a sampled cell had "
                              "no atom with two neighbours within its cutoff; try another seed") from None
    structures = []
    for graph in mean.to_data_list():
        species = graph.atomic_numbers.tolist()
        if any(z < 1 or z > 100 for z in species):
            raise ChggenError(f"MatterGen left unresolved species {sorted(set(species))} (mask token 101): "
                              "the checkpoint's D3PM steps must match its sampler")
        # MatterGen wraps in float32, where remainder(-1e-8, 1) is 1.0: wrap again in float64
        structures.append(Structure(Lattice(graph.cell[0].double().cpu().numpy()), species,
                                    graph.pos.double().cpu().numpy() % 1.0))
    return structures


def generate(source: str | None, composition: Composition, num_samples: int, seed: int) -> list[Structure]:
    """The chggen OwnGenerator hook: MatterGen's own samples with the composition's atom count."""
    if source is None:
        raise ChggenError("MatterGen generation needs --model-source: a checkpoint directory "
                          "(config.yaml + checkpoints/last.ckpt)")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ChggenError(f"num_samples must be a positive integer, got {num_samples!r}")
    return sample_structures(_module(resolve_source(source)), atom_count(Composition(composition)),
                             num_samples, seed)


@lru_cache(maxsize=1)
def _module(directory: Path) -> torch.nn.Module:
    """The checkpoint's module, loaded once for the many calls a campaign makes (one per shard)."""
    return load_module(Path(directory))[0]
