"""DiffCSP's own crystal-structure-prediction sampler: the composition is given, lattice and
positions are generated. It is what `chggen benchmark symmetry` and campaigns run as DiffCSP's `own`
method beside CHGGen, so every crystal it returns has exactly the requested composition.

The sampler (Jiao et al. 2023, the CSP model's `sample`): L_T ~ N(0, I) (3x3, Angstrom), x_T ~ U(0, 1);
for t = T..1, with the network's coordinate output times sqrt(sigmas_norm[t]) being minus the score:
- corrector on positions: x <- x - eta out + sqrt(2 eta) z, eta = step_lr (sigma_t / sigma_1)^2;
- predictor on positions: x <- x - (sigma_t^2 - sigma_{t-1}^2) out + sqrt(sigma_{t-1}^2 (sigma_t^2 -
  sigma_{t-1}^2) / sigma_t^2) z;
- DDPM step on the lattice: L <- (L - (1 - alpha_t) / sqrt(1 - abar_t) eps) / sqrt(alpha_t) +
  posterior_sigma_t z;
positions wrapped into [0, 1) after each step and no noise added at t = 1. Two network calls per step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pymatgen.core import Composition, Element, Lattice, Structure

from chggen_plugins.errors import ChggenError

from .model import DiffCSPScoreModel


def composition_numbers(composition: Composition) -> list[int]:
    """Atomic numbers of one cell of `composition`, which must give whole atom counts."""
    numbers = []
    for element, amount in Composition(composition).items():
        if abs(amount - round(amount)) > 1e-6 or round(amount) < 1:
            raise ChggenError(f"composition {Composition(composition).formula}: {element} has {amount:g} atoms; "
                              "DiffCSP's sampler needs whole atom counts")
        numbers += [Element(str(element)).Z] * round(amount)
    return numbers


def _draws(generator: torch.Generator, last: bool):
    """Standard normal draws of a shape, or zeros at the last step (DiffCSP adds no noise at t = 1)."""
    return lambda shape: torch.zeros(shape) if last else torch.randn(shape, generator=generator)


@torch.no_grad()
def sample_crystals(model: DiffCSPScoreModel, numbers: list[int], num_samples: int, seed: int,
                    step_lr: float | None = None) -> list[Structure]:
    """`num_samples` crystals of the atoms `numbers` from DiffCSP's predictor-corrector sampler.

    Args:
        model: a loaded DiffCSP CSP model (its network and schedules).
        numbers: atomic numbers of one crystal.
        num_samples: crystals, sampled as one batch.
        seed: the draws are reproducible from it (a private generator; torch's global one is untouched).
        step_lr: corrector step size (default: the model's, DiffCSP's recommendation for its run).

    Returns:
        Unrelaxed structures, right-handed (a left-handed sampled cell is inverted together with its
        fractional coordinates: the same points in space).
    """
    network = model.network
    if network.config.predict_types:
        raise ChggenError(f"{model.source}: a de novo DiffCSP model (it samples species too); its own "
                          "sampler here is the CSP one, for CSP checkpoints")
    step_lr = model.noise_process.step_lr if step_lr is None else step_lr
    betas, sigmas = network.beta_scheduler, network.sigma_scheduler
    sigma_begin = model.noise_process.sigma_begin
    generator = torch.Generator().manual_seed(seed)
    atoms = len(numbers)
    batch = torch.arange(num_samples).repeat_interleave(atoms)
    types = torch.tensor(numbers * num_samples)
    lattice = torch.randn((num_samples, 3, 3), generator=generator)
    frac = torch.rand((num_samples * atoms, 3), generator=generator)
    for t in range(network.config.timesteps, 0, -1):
        steps = torch.full((num_samples,), t, dtype=torch.long)
        sigma, previous = sigmas.sigmas[t], sigmas.sigmas[t - 1]
        scale = sigmas.sigmas_norm[t].sqrt()
        noise = _draws(generator, last=t == 1)
        eta = step_lr * (sigma / sigma_begin) ** 2
        _, out, _ = network(steps, types, frac, lattice, batch)
        frac = torch.remainder(frac - eta * out * scale + (2 * eta).sqrt() * noise(frac.shape), 1.0)
        lattice_eps, out, _ = network(steps, types, frac, lattice, batch)
        step = sigma ** 2 - previous ** 2
        spread = (previous ** 2 * step / sigma ** 2).sqrt()
        frac = torch.remainder(frac - step * out * scale + spread * noise(frac.shape), 1.0)
        alpha, abar = betas.alphas[t], betas.alphas_cumprod[t]
        lattice = ((lattice - (1 - alpha) / (1 - abar).sqrt() * lattice_eps) / alpha.sqrt()
                   + betas.sigmas[t] * noise(lattice.shape))
    structures = []
    for index in range(num_samples):
        cell = lattice[index].double()
        coords = frac[batch == index].double()
        volume = torch.linalg.det(cell)
        if abs(volume) < 1e-3:
            raise ChggenError(f"{model.source}: DiffCSP's sampler ended with a flat cell (volume {volume:.2g} A^3) "
                              f"for sample {index}; try another seed or a better-trained checkpoint")
        if volume < 0:
            cell, coords = -cell, torch.remainder(-coords, 1.0)
        structures.append(Structure(Lattice(cell.numpy()), numbers, coords.numpy()))
    return structures


def generate(source: str | None, composition: Composition, num_samples: int, seed: int) -> list[Structure]:
    """The chggen OwnGenerator hook: DiffCSP's CSP samples of exactly `composition`."""
    if source is None:
        raise ChggenError("DiffCSP generation needs --model-source: a DiffCSP run folder (hparams.yaml + *.ckpt)")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ChggenError(f"num_samples must be a positive integer, got {num_samples!r}")
    return sample_crystals(DiffCSPScoreModel.load(Path(source)), composition_numbers(composition), num_samples, seed)
