"""Training a CSPNet with DiffCSP's crystal-structure-prediction objective, saved as a DiffCSP run.

Why here: the adapter was only ever checked on random weights, which cannot catch a wrong time
mapping or score scale. A network trained with DiffCSP's own objective on this project's dataset
(and its content-hash split, so every backend holds out the same crystals) is what proves it.

The objective (Jiao et al., NeurIPS 2023, CSP task; species are given, not diffused). Per crystal an
integer step t is drawn uniformly from 1..T, then
- lattice: DDPM on the 3x3 lattice in Angstrom with the cosine schedule (s = 0.008):
  L_t = sqrt(abar_t) L_0 + sqrt(1 - abar_t) eps_L; the lattice head predicts eps_L;
- coordinates: wrapped normal on fractional coordinates, x_t = (x_0 + sigma_t eps_x) mod 1 with
  sigma_t log-spaced from sigma_begin to sigma_end; the coordinate head predicts minus the score of
  the wrapped kernel at the displacement sigma_t eps_x, divided by the root of its mean square
  sigmas_norm[t] (the adapter's score = -sqrt(sigmas_norm[t]) x output undoes exactly this);
- loss = cost_lattice * mean (pred_L - eps_L)^2 + cost_coord * mean (pred_x - target_x)^2, means over
  all lattice entries and all atom coordinates of the batch.
Crystals enter as DiffCSP's data pipeline gives them: Niggli-reduced, the lattice rebuilt from its
lengths and angles (a fixed orientation), so the lattice noise target is orientation-free.

A run folder holds what DiffCSP's training writes and the adapter reads, `hparams.yaml` and
`epoch=E-step=S.ckpt` (the weights with the lowest validation loss so far), plus `resume.pt`
(weights, optimizer, schedule, step, random state; written atomically), `log.csv` and `split.json`.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
import yaml
from pymatgen.core import Lattice, Structure
from torch import Tensor
from tqdm.auto import tqdm

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.datasets.split import fingerprint, split_dataset
from chggen_plugins.errors import ChggenError
from chggen_plugins.files import replacing
from chggen_plugins.structures.batch import structures_to_batch

from .network import DiffCSPNetwork
from .noise import cosine_beta_tables, wrapped_normal_tables
from .settings import DiffCSPTrainSettings

# What DiffCSP's own CSP training module is called; the adapter's run reader checks for it.
CSP_TARGET = "diffcsp.pl_modules.diffusion.CSPDiffusion"
WRAPPED_IMAGES = 10  # periodic images summed on each side in the wrapped-normal kernel (DiffCSP's N)


def wrapped_normal_minus_score(d: Tensor, sigma: Tensor, images: int = WRAPPED_IMAGES) -> Tensor:
    """-d/dd log sum_k N(d + k; 0, sigma^2): the wrapped normal's score with its sign flipped.

    Written as a softmax over images so a small sigma does not underflow to 0 / 0.
    """
    shifted = d[..., None] + torch.arange(-images, images + 1, dtype=d.dtype, device=d.device)
    sigma = sigma[..., None]
    weights = torch.softmax(-shifted ** 2 / (2 * sigma ** 2), dim=-1)
    return (weights * shifted).sum(-1) / sigma[..., 0] ** 2


def new_network(settings: DiffCSPTrainSettings) -> DiffCSPNetwork:
    """A CSPNet with random weights and both schedules filled in, as DiffCSP builds its module."""
    torch.manual_seed(settings.seed)
    network = DiffCSPNetwork(settings.network_config())
    sigmas, norms = wrapped_normal_tables(settings.timesteps, settings.sigma_begin, settings.sigma_end)
    network.sigma_scheduler.sigmas.copy_(sigmas)
    network.sigma_scheduler.sigmas_norm.copy_(norms)
    for name, value in cosine_beta_tables(settings.timesteps).items():
        getattr(network.beta_scheduler, name).copy_(value)
    return network


def canonical(structure: Structure) -> Structure:
    """Niggli-reduced, with the lattice rebuilt from lengths and angles (DiffCSP's data pipeline)."""
    reduced = structure.get_reduced_structure()
    return Structure(Lattice.from_parameters(*reduced.lattice.parameters), reduced.species,
                     reduced.frac_coords)


@dataclass(frozen=True)
class NoisedCrystals:
    """What the network is given and what it should answer, for one batch at steps `times`."""

    lattice: Tensor        # [B, 3, 3] noised lattice (network input)
    frac_coords: Tensor    # [N, 3] noised fractional coordinates (network input)
    lattice_target: Tensor  # [B, 3, 3] eps_L
    coord_target: Tensor   # [N, 3] normalised minus score of the coordinate kernel


def noised(network: DiffCSPNetwork, batch: CrystalBatch, times: Tensor, eps_lattice: Tensor,
           eps_coords: Tensor) -> NoisedCrystals:
    """DiffCSP's forward process at integer steps `times` [B] with the given standard normal draws.

    Args:
        network: supplies the schedules (its `beta_scheduler` and `sigma_scheduler` buffers).
        batch: clean crystals (float32 lattice and coordinates).
        times: [B] integer steps in 1..T.
        eps_lattice: [B, 3, 3] and eps_coords: [N, 3], standard normal draws.

    Returns:
        The noised inputs and the two regression targets.
    """
    abar = network.beta_scheduler.alphas_cumprod[times][:, None, None]
    sigma = network.sigma_scheduler.sigmas[times][batch.batch][:, None]
    norm = network.sigma_scheduler.sigmas_norm[times][batch.batch][:, None]
    lattice = abar.sqrt() * batch.lattice + (1 - abar).sqrt() * eps_lattice
    frac = torch.remainder(batch.frac_coords + sigma * eps_coords, 1.0)
    target = wrapped_normal_minus_score(sigma * eps_coords, sigma.expand_as(eps_coords)) / norm.sqrt()
    return NoisedCrystals(lattice, frac, eps_lattice, target)


def csp_loss(network: DiffCSPNetwork, batch: CrystalBatch, times: Tensor, generator: torch.Generator,
             settings: DiffCSPTrainSettings) -> Tensor:
    """DiffCSP's CSP training loss on `batch` at steps `times`, noise drawn from `generator`."""
    eps_lattice = torch.randn(batch.lattice.shape, generator=generator)
    eps_coords = torch.randn(batch.frac_coords.shape, generator=generator)
    inputs = noised(network, batch, times, eps_lattice, eps_coords)
    pred_lattice, pred_coords, _ = network(times, batch.atomic_numbers, inputs.frac_coords, inputs.lattice,
                                           batch.batch)
    return (settings.cost_lattice * F.mse_loss(pred_lattice, inputs.lattice_target)
            + settings.cost_coord * F.mse_loss(pred_coords, inputs.coord_target))


def as_batch(structures: Sequence[Structure]) -> CrystalBatch:
    """Clean crystals in float32, the precision the network trains in."""
    batch = structures_to_batch(list(structures))
    return CrystalBatch(batch.frac_coords.float(), batch.lattice.float(), batch.atomic_numbers, batch.batch,
                        batch.fixed)


@torch.no_grad()
def validation_loss(network: DiffCSPNetwork, structures: Sequence[Structure],
                    settings: DiffCSPTrainSettings, chunk: int = 32) -> float:
    """Mean loss over `val_times` evenly spaced steps per crystal with fixed noise: comparable
    between evaluations of one run."""
    generator = torch.Generator().manual_seed(12345)
    times_each = torch.linspace(1, settings.timesteps, settings.val_times).round().long()
    total, count = 0.0, 0
    for start in range(0, len(structures), chunk):
        batch = as_batch(structures[start:start + chunk])
        for t in times_each.tolist():
            times = torch.full((batch.num_crystals,), t, dtype=torch.long)
            total += csp_loss(network, batch, times, generator, settings).item() * batch.num_crystals
            count += batch.num_crystals
    return total / count


def hparams(settings: DiffCSPTrainSettings, data: str, train_size: int, val_size: int) -> dict:
    """DiffCSP's hparams.yaml fields the adapter reads, plus where these weights come from."""
    return {
        "model": {
            "_target_": CSP_TARGET, "time_dim": settings.time_dim, "latent_dim": 0,
            "cost_coord": settings.cost_coord, "cost_lattice": settings.cost_lattice,
            "timesteps": settings.timesteps,
            "decoder": {"hidden_dim": settings.hidden_dim, "max_atoms": 100, "num_layers": settings.num_layers, "act_fn": "silu",
                        "dis_emb": "sin", "num_freqs": settings.num_freqs, "edge_style": "fc",
                        "ln": True, "ip": True},
            "beta_scheduler": {"timesteps": "${model.timesteps}", "scheduler_mode": "cosine"},
            "sigma_scheduler": {"timesteps": "${model.timesteps}", "sigma_begin": settings.sigma_begin,
                                "sigma_end": settings.sigma_end},
        },
        "data": {"root_path": data, "max_atoms": settings.max_atoms},
        "chggen": {"trained_by": "chggen train-diffcsp (this project's code with DiffCSP's CSP objective); "
                                 "not the DiffCSP authors' published weights",
                   "train_structures": train_size, "val_structures": val_size, "settings": asdict(settings)},
    }


def _save_weights(network: DiffCSPNetwork, run_dir: Path, step: int, epoch: int) -> None:
    """The best weights as `epoch=E-step=S.ckpt`, replacing the previous best after it is written."""
    old = sorted(run_dir.glob("epoch=*-step=*.ckpt"))
    path = run_dir / f"epoch={epoch}-step={step}.ckpt"
    with replacing(path) as temporary:
        torch.save({"state_dict": network.state_dict(), "global_step": step, "epoch": epoch}, temporary)
    for stale in old:
        if stale != path:
            stale.unlink()


def trainable(structures: Sequence[Structure], max_atoms: int) -> list[Structure]:
    """The structures of at most `max_atoms` atoms, canonicalised; refuses an empty result."""
    kept = [canonical(s) for s in structures if len(s) <= max_atoms]
    if not kept:
        raise ChggenError(f"no structure of at most {max_atoms} atoms in the training data (--max-atoms)")
    return kept


def train(structures: Sequence[Structure], run_dir: Path, settings: DiffCSPTrainSettings = DiffCSPTrainSettings(),
          data: str = "", progress: bool = True) -> DiffCSPNetwork:
    """Train (or resume in `run_dir`) and return the network with the lowest validation loss.

    Args:
        structures: training data; split by content hash (`chggen_plugins.datasets.split`) before
            the size filter, so the held-out crystals are those of every other backend.
        run_dir: the run folder (created; a run already there is resumed with its own settings,
            except `steps`, which may extend it).
        settings: network size, schedule and optimisation.
        data: the dataset's path, recorded as `data.root_path`.
        progress: show a tqdm bar.

    Returns:
        The best network by validation loss (also saved as `epoch=E-step=S.ckpt`).
    """
    from .model import load_weights

    run_dir = Path(run_dir)
    resume_path = run_dir / "resume.pt"
    state = torch.load(resume_path, weights_only=True) if resume_path.is_file() else None
    if state is not None:
        settings = replace(DiffCSPTrainSettings(**state["settings"]), steps=settings.steps)
    train_set, val_set = split_dataset(structures, settings.val_fraction)
    train_set, val_set = trainable(train_set, settings.max_atoms), trainable(val_set, settings.max_atoms)
    run_dir.mkdir(parents=True, exist_ok=True)
    network = new_network(settings)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, settings.steps) / settings.steps)))
    generator = torch.Generator().manual_seed(settings.seed)
    step, best, seconds = 0, float("inf"), 0.0
    if state is not None:
        load_weights(network, state["network"], str(resume_path))
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        step, best, seconds = state["step"], state["best"], state["seconds"]
        if state["val_fingerprint"] != fingerprint(val_set):
            best = float("inf")  # a grown dataset: losses on different validation sets do not compare
    (run_dir / "hparams.yaml").write_text(yaml.safe_dump(hparams(settings, data, len(train_set), len(val_set)),
                                                         sort_keys=False))
    (run_dir / "split.json").write_text(json.dumps({"train": len(train_set), "val": len(val_set),
                                                    "val_fraction": settings.val_fraction}))
    log_path = run_dir / "log.csv"
    if not log_path.is_file():
        log_path.write_text("step,train_loss,val_loss,seconds\n")
    network.train()
    bar = tqdm(total=settings.steps, initial=step, desc="training DiffCSP", unit="step", disable=not progress)
    running, started = [], time.perf_counter() - seconds
    while step < settings.steps:
        picks = torch.randint(len(train_set), (settings.batch_size,), generator=generator)
        batch = as_batch([train_set[i] for i in picks.tolist()])
        times = torch.randint(1, settings.timesteps + 1, (settings.batch_size,), generator=generator)
        loss = csp_loss(network, batch, times, generator, settings)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 10.0)  # a stray near-singular cell must not end a run
        optimizer.step()
        schedule.step()
        running.append(loss.item())
        step += 1
        bar.update(1)
        if step % settings.eval_every == 0 or step == settings.steps:
            network.eval()
            val = validation_loss(network, val_set, settings)
            network.train()
            elapsed = time.perf_counter() - started
            with open(log_path, "a", newline="") as handle:
                csv.writer(handle).writerow([step, f"{sum(running) / len(running):.5f}", f"{val:.5f}",
                                             f"{elapsed:.1f}"])
            bar.set_postfix(train=f"{sum(running) / len(running):.4f}", val=f"{val:.4f}")
            running = []
            epoch = step * settings.batch_size // len(train_set)
            if val < best:
                best = val
                _save_weights(network, run_dir, step, epoch)
            with replacing(resume_path) as temporary:
                torch.save({"network": network.state_dict(), "optimizer": optimizer.state_dict(),
                            "schedule": schedule.state_dict(), "generator": generator.get_state(),
                            "step": step, "best": best, "seconds": elapsed,
                            "settings": asdict(settings), "val_fingerprint": fingerprint(val_set)}, temporary)
    bar.close()
    best_path = sorted(run_dir.glob("epoch=*-step=*.ckpt"))[0]
    load_weights(network, torch.load(best_path, weights_only=True)["state_dict"], str(best_path))
    return network.eval()
