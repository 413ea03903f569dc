"""Denoising score matching for the native network, resumable, on CPU or any torch device.

Every crystal of a mini-batch gets a level of the sampler's own ladder; its atoms are displaced by
sigma * z in Angstrom and wrapped; the target is sigma times the exact score of the wrapped kernel
q(x | x0) (the analytic model's image/Fourier sum), not the minimum-image -d / sigma^2 of the
CHGGen code, which is wrong once sigma approaches the cell size. Loss: mean |output - target|^2.

A host-conditioned network (`NetworkConfig.host_flag`) is trained on the task inpainting asks of it:
each crystal draws a guest set (`draw_guests`: one species entirely, a random 10-60% of the atoms,
the atoms nearest a random site, or every atom so the same network still generates from nothing);
only guests are noised, host atoms stay at their clean positions and are flagged as host, and the
loss is over guests alone. An unconditional network sees every atom as a guest, as before.

The run directory holds everything needed to resume after a kill: `resume.pt` (model, optimizer,
schedule, step and random state, written atomically in one file), `last.pt` (the latest model),
`best.pt` (the model with the lowest validation loss so far), `log.csv`, `split.json`. Resuming on
a grown dataset is allowed; the best-so-far is then reset, since losses on different validation
sets do not compare.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import torch
from pymatgen.core import Structure
from tqdm.auto import tqdm

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.datasets.split import fingerprint, split_dataset
from chggen_plugins.errors import ChggenError
from chggen_plugins.models.analytic import wrapped_gaussian_score
from chggen_plugins.sampling.noise import CartesianVE
from chggen_plugins.structures.batch import structures_to_batch

from .model import NativeScoreModel, read_checkpoint, save_atomically
from .settings import NetworkConfig, TrainSettings


def supercell_of(structure: Structure, min_atoms: int) -> Structure:
    """The structure repeated along its shortest (repeated) lattice vector, one repeat at a time, until
    it holds at least `min_atoms` atoms: a near-isotropic supercell. In a small cell every image of an
    atom moves with it under noise; in a supercell the copies are noised independently, as the
    guests of a large host are."""
    scaling = [1, 1, 1]
    while len(structure) * scaling[0] * scaling[1] * scaling[2] < min_atoms:
        lengths = [length * repeats for length, repeats in zip(structure.lattice.abc, scaling)]
        scaling[lengths.index(min(lengths))] += 1
    return structure * scaling


def training_crystals(train_set: Sequence[Structure], settings: TrainSettings,
                      generator: torch.Generator) -> list[Structure]:
    """One mini-batch: crystals drawn with replacement; with `settings.supercell_atoms`, each one
    smaller than that becomes its supercell with probability `settings.supercell_fraction` (the
    extra draw happens only then, so runs without supercells keep their random stream)."""
    picks = torch.randint(len(train_set), (settings.batch_size,), generator=generator)
    crystals = [train_set[i] for i in picks.tolist()]
    if settings.supercell_atoms > 0:
        grow = torch.rand(settings.batch_size, generator=generator) < settings.supercell_fraction
        crystals = [supercell_of(c, settings.supercell_atoms) if g and len(c) < settings.supercell_atoms else c
                    for c, g in zip(crystals, grow.tolist())]
    return crystals


# How a host-conditioned training crystal chooses its guests, with the probability of each way.
GUEST_SETS = {"species": 0.25, "subset": 0.30, "sphere": 0.20, "all": 0.25}
GUEST_SHARE = (0.1, 0.6)  # share of the atoms that are guests in the "subset" and "sphere" draws


def _guests_of_crystal(frac: torch.Tensor, lattice: torch.Tensor, numbers: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor:
    """[n] bool guest mask of one crystal (three uniform draws and, for "subset", a permutation)."""
    n = len(numbers)
    pick, where, share = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
    way = next((way for way, edge in zip(GUEST_SETS, itertools.accumulate(GUEST_SETS.values()))
                if pick < edge), "all")
    species = torch.unique(numbers)
    if way == "all" or (way == "species" and len(species) == 1):
        return torch.ones(n, dtype=torch.bool)
    if way == "species":
        return numbers == species[min(int(where * len(species)), len(species) - 1)]
    low, high = GUEST_SHARE
    count = min(n, max(1, round((low + (high - low) * share) * n)))
    chosen = torch.zeros(n, dtype=torch.bool)
    if way == "subset":
        chosen[torch.randperm(n, generator=generator)[:count]] = True
        return chosen
    centre = min(int(where * n), n - 1)                          # "sphere": the atoms nearest a site
    gap = frac - frac[centre]
    distance = ((gap - torch.round(gap)) @ lattice).norm(dim=1)  # minimum image (near enough to rank)
    chosen[torch.argsort(distance, stable=True)[:count]] = True
    return chosen


def draw_guests(batch: CrystalBatch, generator: torch.Generator) -> CrystalBatch:
    """The batch with `fixed` set to the host of a guest set drawn per crystal (`GUEST_SETS`)."""
    starts = torch.cumsum(batch.num_atoms, 0) - batch.num_atoms
    guests = [_guests_of_crystal(batch.frac_coords[start:start + count], batch.lattice[index],
                                 batch.atomic_numbers[start:start + count], generator)
              for index, (start, count) in enumerate(zip(starts.tolist(), batch.num_atoms.tolist()))]
    return replace(batch, fixed=~torch.cat(guests).to(batch.device))


def training_ladder(model: NativeScoreModel) -> CartesianVE:
    """The ladder training draws its noise levels from: the default 200 levels over the network's
    sigma range, whatever ladder the checkpoint records for sampling (`train(..., sample_levels=)`)."""
    config = model.network.config
    return CartesianVE(config.sigma_max, config.sigma_min)


def noisy_batch(model: NativeScoreModel, batch: CrystalBatch, levels: torch.Tensor,
                generator: torch.Generator) -> tuple[CrystalBatch, torch.Tensor, torch.Tensor]:
    """(noisy batch, per-atom sigma, target sigma * score) for one level per crystal; atoms marked
    `fixed` (a host-conditioned network's host) stay clean and get no target (zero)."""
    process = training_ladder(model)
    levels = levels.to(batch.device)
    sigma = process.sigmas.to(batch.device)[levels][batch.batch]                  # [N]
    # drawn on the CPU generator whatever the device: a run's noise is the same on CPU and GPU
    noise = torch.randn(batch.frac_coords.shape, generator=generator, dtype=torch.float64).to(batch.device)
    host = batch.fixed.unsqueeze(1)
    noisy = torch.where(host, batch.frac_coords,
                        process.displace(batch.frac_coords, sigma.unsqueeze(1) * noise, batch))
    target = torch.zeros_like(noisy)
    cell = batch.atom_lattice()
    for level in torch.unique(levels).tolist():
        atoms = (levels[batch.batch] == level) & ~batch.fixed
        std = process.sigma(level)
        target[atoms] = std * wrapped_gaussian_score(noisy[atoms] - batch.frac_coords[atoms], cell[atoms], std)
    return batch.with_frac_coords(noisy), sigma, target


def dsm_loss(model: NativeScoreModel, batch: CrystalBatch, levels: torch.Tensor,
             generator: torch.Generator) -> torch.Tensor:
    """Mean over guest atoms (every atom of an unconditional batch) of |output - target|^2."""
    noisy, sigma, target = noisy_batch(model, batch, levels, generator)
    output = model.network_output(noisy, sigma)
    guests = ~batch.fixed
    return (output[guests] - target[guests].to(output.dtype)).pow(2).sum(dim=1).mean()


@torch.no_grad()
def validation_loss(model: NativeScoreModel, structures: Sequence[Structure], levels_each: int = 8,
                    seed: int = 1234) -> float:
    """Mean loss on fixed noise draws at evenly spread levels: comparable across runs and models of
    one kind. A host-conditioned model is scored on guest sets drawn with the same fixed seed (its
    training task); an unconditional one on every atom."""
    generator = torch.Generator().manual_seed(seed)
    ladder = training_ladder(model).num_levels
    spread = torch.linspace(0, ladder - 1, levels_each).round().to(torch.long)
    total, count = 0.0, 0
    for start in range(0, len(structures), 16):
        chunk = list(structures[start:start + 16])
        for level in spread.tolist():
            batch = structures_to_batch(chunk)
            if model.host_conditioned:
                batch = draw_guests(batch, generator)
            batch = batch.to(model.device)
            levels = torch.full((len(chunk),), level, dtype=torch.long)
            total += dsm_loss(model, batch, levels, generator).item() * len(chunk)
            count += len(chunk)
    return total / count


def optimizer_step(model: NativeScoreModel, optimizer: torch.optim.Optimizer, train_set: Sequence[Structure],
                   settings: TrainSettings, generator: torch.Generator) -> float:
    """One mini-batch (guest sets drawn for a host-conditioned model), one AdamW step; the loss."""
    batch = structures_to_batch(training_crystals(train_set, settings, generator))
    if model.host_conditioned:
        batch = draw_guests(batch, generator)
    batch = batch.to(settings.device)
    levels = torch.randint(training_ladder(model).num_levels, (settings.batch_size,), generator=generator)
    loss = dsm_loss(model, batch, levels, generator)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.network.parameters(), 10.0)
    optimizer.step()
    return loss.item()


def steps_within(seconds: float, structures: Sequence[Structure], settings: TrainSettings,
                 config: NetworkConfig, evaluations: int = 5, probe_steps: int = 10) -> int:
    """How many optimizer steps of this network and batch size fit in `seconds` of wall time on
    `settings.device`, `evaluations` validations included, after the time this measurement takes:
    measured on a throw-away copy of the network, as the machine runs now (other jobs on it
    included). A time budget is what a lent accelerator gives; the cosine schedule needs the step
    count up front."""
    begun = time.perf_counter()
    train_set, val_set = split_dataset(structures, settings.val_fraction)
    elements = frozenset(z for s in structures for z in s.atomic_numbers)
    model = NativeScoreModel.untrained(elements, config, seed=settings.seed).to(settings.device)
    optimizer = torch.optim.AdamW(model.network.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed)
    for _ in range(3):  # warm-up: allocator, kernels
        optimizer_step(model, optimizer, train_set, settings, generator)
    started = time.perf_counter()
    for _ in range(probe_steps):
        optimizer_step(model, optimizer, train_set, settings, generator)
    per_step = (time.perf_counter() - started) / probe_steps
    started = time.perf_counter()
    validation_loss(model, val_set, settings.val_levels)
    per_validation = time.perf_counter() - started
    left = seconds - (time.perf_counter() - begun)
    steps = int((left - evaluations * per_validation) / per_step)
    if steps < evaluations:
        raise ChggenError(f"a time budget of {seconds:g} s fits no training here: a step takes {per_step:.3f} s "
                          f"and a validation {per_validation:.1f} s")
    return steps


def _check_elements(model: NativeScoreModel, structures: Sequence[Structure]) -> None:
    seen = {z for s in structures for z in s.atomic_numbers}
    if not seen <= model.elements:
        raise ChggenError(f"training data has elements {sorted(seen - model.elements)} the checkpoint "
                          f"being resumed was not built for (it knows {sorted(model.elements)})")


def train(structures: Sequence[Structure], run_dir: Path, settings: TrainSettings = TrainSettings(),
          config: NetworkConfig = NetworkConfig(), recipe: dict | None = None,
          progress: bool = True, sample_levels: int | None = None,
          sample_correctors: int | None = None, sample_snr: float | None = None) -> NativeScoreModel:
    """Train (or resume training in `run_dir`) and return the best model by validation loss.
    `sample_levels` / `sample_correctors` / `sample_snr`: the ladder the checkpoints record as the
    model's default for sampling (None: as it is); training itself always draws from `training_ladder`."""
    if settings.supercell_atoms < 0 or not 0 <= settings.supercell_fraction <= 1:
        raise ChggenError(f"training: supercell atoms {settings.supercell_atoms} must be >= 0 and supercell "
                          f"fraction {settings.supercell_fraction} within 0..1")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_set, val_set = split_dataset(structures, settings.val_fraction)
    elements = frozenset(z for s in structures for z in s.atomic_numbers)
    resume_path = run_dir / "resume.pt"
    if resume_path.is_file():
        state = read_checkpoint(resume_path)
        model = NativeScoreModel.from_state(state["model"], str(resume_path), settings.device)
        _check_elements(model, structures)
    else:
        model = NativeScoreModel.untrained(elements, config, seed=settings.seed)
        model.metadata = {"data_recipe": recipe or {}, "train_settings": asdict(settings),
                          "train_structures": len(train_set), "val_structures": len(val_set)}
        state = None
    if (sample_levels, sample_correctors, sample_snr) != (None, None, None):  # the ladder checks its values
        levels = model.noise_process.num_levels if sample_levels is None else sample_levels
        model = model.with_levels(levels, sample_correctors, sample_snr)
    model.to(settings.device)
    model.network.train()
    optimizer = torch.optim.AdamW(model.network.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, settings.steps) / settings.steps)))
    generator = torch.Generator().manual_seed(settings.seed)
    step, best, seconds = 0, float("inf"), 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step, best, seconds = state["step"], state["best"], state["seconds"]
        if state.get("val_fingerprint") != fingerprint(val_set):
            best = float("inf")
    (run_dir / "split.json").write_text(json.dumps({"train": len(train_set), "val": len(val_set),
                                                    "val_fraction": settings.val_fraction}))
    log_path = run_dir / "log.csv"
    if not log_path.is_file():
        log_path.write_text("step,train_loss,val_loss,seconds\n")

    bar = tqdm(total=settings.steps, initial=step, desc="training", unit="step", disable=not progress)
    running, started = [], time.perf_counter() - seconds
    while step < settings.steps:
        running.append(optimizer_step(model, optimizer, train_set, settings, generator))
        schedule.step()
        step += 1
        bar.update(1)
        if step % settings.eval_every == 0 or step == settings.steps:
            model.network.eval()
            val = validation_loss(model, val_set, settings.val_levels)
            model.network.train()
            elapsed = time.perf_counter() - started
            with open(log_path, "a", newline="") as handle:
                csv.writer(handle).writerow([step, f"{sum(running) / len(running):.5f}", f"{val:.5f}",
                                             f"{elapsed:.1f}"])
            bar.set_postfix(train=f"{sum(running) / len(running):.4f}", val=f"{val:.4f}")
            running = []
            model.metadata.update(step=step, val_loss=val, train_seconds=round(elapsed, 1))
            if val < best:
                best = val
                model.save(run_dir / "best.pt")
            model.save(run_dir / "last.pt")
            save_atomically({"model": model.state(), "optimizer": optimizer.state_dict(),
                             "schedule": schedule.state_dict(), "generator": generator.get_state(),
                             "step": step, "best": best, "seconds": elapsed,
                             "val_fingerprint": fingerprint(val_set)}, resume_path)
    bar.close()
    return NativeScoreModel.load(run_dir / "best.pt")
