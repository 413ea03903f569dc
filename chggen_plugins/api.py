"""The Python API: structures in, structures out, one batched sampler run in between."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Mapping, Sequence, Union

import numpy as np
import torch
from ase import Atoms
from pymatgen.core import Element, Lattice, Structure

from chggen_plugins.contract.devices import check_device, use_default_threads
from chggen_plugins.contract.protocol import ScoreModel, check_score_model
from chggen_plugins.contract.registry import load_model
from chggen_plugins.errors import ChggenError, ChggenWarning
from chggen_plugins.sampling.inpaint import SamplerSettings, ScoreNotFinite, proposal_level, sample, start_level_of
from chggen_plugins.seeds import MAX_SEED, check_seed, draw_seed
from chggen_plugins.structures.batch import InpaintTask, batch_to_structures, tasks_to_batch, tasks_to_orbits
from chggen_plugins.structures.host import select_guests, symmetric_host
from chggen_plugins.structures.io import MIN_DISTANCE, StructureLike, check_lattice, to_atoms, to_structure
from chggen_plugins.structures.wyckoff import fitting_plans, propose_plan

ModelLike = Union[ScoreModel, str]
ORBIT_REDRAWS = 3  # rounds in which symmetric samples whose atoms met are drawn and sampled again

use_default_threads()  # one torch thread unless $CHGGEN_THREADS says otherwise (contract/devices.py: why)


def _resolve_model(model: ModelLike, device: str) -> ScoreModel:
    check_device(device)
    if isinstance(model, str):
        return load_model(model, device=device)
    return check_score_model(model, "model").to(device)


def with_levels(model: ScoreModel, levels: int | None) -> ScoreModel:
    """The model on a ladder of `levels` noise levels over its own sigma range.

    Why: fewer levels cost fewer network calls, more give finer steps. Only a network conditioned on
    sigma (or t) can be asked between its training levels, so only models with a `with_levels`
    method offer it (native, MatterGen, analytic); DiffCSP's network knows only its own integer
    steps, so its ladder is fixed and asking for another is refused.

    Args:
        model: a loaded score model.
        levels: number of noise levels, at least 2; None leaves the model as it is.

    Returns:
        The model on the new ladder (a copy; `model` is unchanged), or `model` itself for None.

    Raises:
        ChggenError: `levels` is not an integer >= 2, or the model's ladder is fixed.

    Example:
        ```python
        import chggen_plugins as cg
        model = cg.api.with_levels(cg.load_model("native"), 50)
        model.noise_process.num_levels  # -> 50
        ```
    """
    if levels is None:
        return model
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ChggenError(f"levels: {levels!r} must be an integer >= 2")
    if not hasattr(model, "with_levels"):
        raise ChggenError(f"levels: {type(model).__name__} has a fixed ladder of "
                          f"{model.noise_process.num_levels} noise levels; leave --levels out")
    return model.with_levels(levels)


def check_elements(model: ScoreModel, tasks: Sequence[InpaintTask]) -> None:
    """Refuse, before any sampling, a task with an element the model cannot score.

    Why: every atom of a crystal, host atoms included, is scored, so a model that knows Li but not Si
    cannot inpaint Li into a Si host; sampling anyway would give noise, not an error.

    Args:
        model: the score model; `model.elements` are the atomic numbers it knows.
        tasks: the inpainting tasks (hosts and guests) about to be sampled.

    Returns:
        None when every element of every task is known.

    Raises:
        ChggenError: naming the task, the unknown elements and the ones the model knows.

    Example:
        ```python
        import chggen_plugins as cg
        from chggen_plugins.api import check_elements
        task = cg.InpaintTask(Structure.from_file("examples/si_host.cif"), {"Cs": 1}, 1)
        check_elements(cg.load_model("native"), [task])
        # -> chggen_plugins.errors.ChggenError: task: element(s) Cs unknown to NativeScoreModel, which knows ...
        ```
    """
    for task in tasks:
        unknown = sorted(set(task.atomic_numbers) - set(model.elements))
        if unknown:
            symbols = ", ".join(Element.from_Z(z).symbol for z in unknown)
            known = ", ".join(Element.from_Z(z).symbol for z in sorted(model.elements))
            raise ChggenError(f"{task.label or 'task'}: element(s) {symbols} unknown to "
                              f"{type(model).__name__}, which knows {known}")


def sample_tasks(tasks: Sequence[InpaintTask], model: ModelLike, seed: int | None = None,
                 settings: SamplerSettings = SamplerSettings(), device: str = "cpu",
                 progress: bool = False, levels: int | None = None,
                 start_sigma: float | None = None) -> list[list[Structure]]:
    """All samples of all tasks in one batch (one score call per step); a list of samples per task.

    Why one batch: a score call costs about the same for one crystal as for many, so hosts of any
    size, symmetric and free tasks alike, are sampled together. The same seed, tasks and model give
    bit-identical structures on CPU (the seed also draws the Wyckoff assignments of symmetric tasks).

    Args:
        tasks: what to sample: each an `InpaintTask` (host, guest counts, samples, and optionally
            `symmetric`, `space_group`, `start`).
        model: a registered model name or a ScoreModel.
        seed: same seed, same structures (None: drawn); an integer in 0..2^63-1.
        settings: the sampler: solver ("pc", "heun", "ode"), its steps and churn, and the RePaint
            walk (jump length j, resamples r); see `SamplerSettings`.
        device: torch device.
        progress: show a progress bar.
        levels: noise levels of the model's ladder (see `with_levels`); None: the model's own.
        start_sigma: every task then has a `start` placement, noised by this much (the model's noise
            units, A for native) and refined from there (partial regeneration).

    Returns:
        Per task, in order, its `n_samples` pymatgen Structures (host sites first, then guests).
        A symmetric sample whose atoms met (a pair under 1 A) is sampled again with a new Wyckoff
        assignment, up to ORBIT_REDRAWS times (`properties["orbit_redraws"]` counts them).

    Raises:
        ChggenError: a bad seed, an element the model does not know, or `start_sigma` and start
            placements given without each other.

    Example:
        ```python
        import chggen_plugins as cg
        host = Structure.from_file("examples/si_host.cif")
        per_task = cg.sample_tasks([cg.InpaintTask(host, {"Li": 4}, 8),
                                    cg.InpaintTask(host, {"Li": 4}, 8, symmetric=True)], "native", seed=0)
        len(per_task), len(per_task[1])  # -> (2, 8)
        ```
    """
    seed = None if seed is None else check_seed(seed)  # an ordinary mistake is named before any loading
    model = with_levels(_resolve_model(model, device), levels)
    tasks = list(tasks)
    check_elements(model, tasks)
    without = [task.label or f"task {i}" for i, task in enumerate(tasks) if task.start is None]
    if start_sigma is not None and without:
        raise ChggenError(f"start sigma {start_sigma:g} given, but {', '.join(without[:3])} has no start placement")
    if start_sigma is None and len(without) < len(tasks):
        raise ChggenError("a start placement needs a start sigma: how far the placement may move (e.g. 0.5 A)")
    start_level = None if start_sigma is None else start_level_of(model, start_sigma)
    seed = draw_seed() if seed is None else seed
    expanded, owners, distances = _proposed_orbits(tasks, model, seed, settings, device, start_level)
    samples = _sample_batch(expanded, model, seed, settings, device, progress, start_level)
    samples = _redraw_met_orbits(samples, expanded, model, seed, settings, device, start_level)
    regrouped: list[list[Structure]] = [[] for _ in tasks]
    for owner, distance, task_samples in zip(owners, distances, samples):
        for structure in task_samples if distance is not None else ():
            structure.properties["orbit_proposal_distance"] = round(distance, 4)
        regrouped[owner] += task_samples
    return regrouped


def _proposed_orbits(tasks: list[InpaintTask], model: ScoreModel, seed: int, settings: SamplerSettings,
                     device: str, start_level: int | None
                     ) -> tuple[list[InpaintTask], list[int], list[float | None]]:
    """Tasks with `orbits="model"` become one task per sample, each with the orbit combination
    nearest to where a free inpainting pass of the same host put that sample's guests (the pass is
    one extra batch, seeded from `seed`); other tasks pass through. Returns the tasks to sample,
    for each the index of the task it came from, and the mean distance (A) of the free pass's
    guests to the proposed orbits (None for tasks passed through)."""
    asked = [number for number, task in enumerate(tasks) if task.orbits == "model" and task.proposed is None]
    if not asked:
        return tasks, list(range(len(tasks))), [None] * len(tasks)
    free = _sample_batch([replace(tasks[number], symmetric=False, orbits="uniform") for number in asked], model,
                         (seed + 7_919) % (MAX_SEED + 1), settings, device, False, start_level)
    expanded, owners, distances = [], [], []
    for number, task in enumerate(tasks):
        if number not in asked:
            expanded.append(task)
            owners.append(number)
            distances.append(None)
            continue
        plans = fitting_plans(task.host, task.guests)
        for placed in free[asked.index(number)]:
            guests = placed[len(task.host):]
            positions = {symbol: np.array([site.frac_coords for site in guests if site.specie.symbol == symbol])
                         for symbol in task.guests}
            plan, distance, placement = propose_plan(plans, task.host.lattice, positions)
            expanded.append(replace(task, n_samples=1, proposed=plan, proposed_at=placement))
            owners.append(number)
            distances.append(distance)
    return expanded, owners, distances


def _sample_batch(tasks: list[InpaintTask], model: ScoreModel, seed: int, settings: SamplerSettings,
                  device: str, progress: bool, start_level: int | None) -> list[list[Structure]]:
    """One sampler run over all `tasks` in one batch (the seed draws the noise and the assignments).

    Tasks with a proposed placement (`orbits="model"`) are refined from it in a run of their own,
    which starts at `proposal_level`: one walk has one start level.
    """
    refined = [i for i, task in enumerate(tasks) if task.proposed_at is not None]
    if refined and len(refined) < len(tasks):
        rest = [i for i in range(len(tasks)) if i not in refined]
        runs = {}
        for part, indices in enumerate((rest, refined)):
            runs |= dict(zip(indices, _sample_batch([tasks[i] for i in indices], model, (seed + part) % (MAX_SEED + 1),
                                                    settings, device, progress, start_level)))
        return [runs[i] for i in range(len(tasks))]
    if refined:
        start_level = proposal_level(model)
    batch = tasks_to_batch(tasks).to(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    orbits, assignments = tasks_to_orbits(tasks, np.random.default_rng(seed))
    try:
        result = sample(model, batch, settings, generator, progress=progress,
                        orbits=orbits.to(device) if orbits is not None else None, start_level=start_level)
    except ScoreNotFinite as error:  # the sampler knows batch indices; name the tasks and samples instead
        raise ScoreNotFinite(error.model, error.step, error.level, error.crystals,
                             _samples_named(tasks, error.crystals)) from None
    return batch_to_structures(tasks, result.frac_coords, assignments)


def _redraw_met_orbits(samples: list[list[Structure]], tasks: list[InpaintTask], model: ScoreModel, seed: int,
                       settings: SamplerSettings, device: str, start_level: int | None) -> list[list[Structure]]:
    """Symmetric samples whose atoms met (a pair under 1 A: copies of a free orbit that closed in on
    each other or on a host atom) are sampled again with a freshly drawn assignment, up to
    ORBIT_REDRAWS rounds, only those samples; each symmetric sample records its rounds in
    `properties["orbit_redraws"]` (one that still has `close_pairs` after the last round is kept,
    and set aside before relaxation as before). Why: 13 of 17 failed Li-Si symmetric samples were
    orbit copies that met; the assignment, not the model, had made them impossible."""
    for task, task_samples in zip(tasks, samples):
        for structure in task_samples if task.symmetric else ():
            structure.properties["orbit_redraws"] = 0
    for round_ in range(1, ORBIT_REDRAWS + 1):
        crowded = {number: [i for i, s in enumerate(samples[number]) if s.properties["close_pairs"]]
                   for number, task in enumerate(tasks) if task.symmetric}
        crowded = {number: indices for number, indices in crowded.items() if indices}
        if not crowded:
            break
        again = _sample_batch([replace(tasks[number], n_samples=len(indices)) for number, indices in crowded.items()],
                              model, (seed + round_ * 1_000_003) % (MAX_SEED + 1), settings, device, False, start_level)
        for (number, indices), redrawn in zip(crowded.items(), again):
            for index, structure in zip(indices, redrawn):
                structure.properties["orbit_redraws"] = round_
                samples[number][index] = structure
    return samples


def _samples_named(tasks: Sequence[InpaintTask], crystals: Sequence[int]) -> str:
    """'Li4Si8 host sample 2, task 1 sample 0' for batch indices (tasks' samples lie in order)."""
    owners = [(number, index) for number, task in enumerate(tasks) for index in range(task.n_samples)]
    names = []
    for crystal in crystals[:5]:
        number, index = owners[crystal]
        task = tasks[number]
        names.append(f"{task.label or f'task {number}'} ({task.host.composition.formula or 'no host'}) "
                     f"sample {index}")
    return ", ".join(names) + (f" and {len(crystals) - 5} more" if len(crystals) > 5 else "")


def prepare_host(host: Structure, guests: Mapping[str, int], *, regenerate_existing: bool = False,
                 regenerate_sites: Sequence[int] | None = None, regenerate_species: Sequence[str] | None = None,
                 around: Sequence[float] | int | None = None, within: float | None = None,
                 symmetric: bool = False) -> tuple[Structure, dict[str, int], dict[str, str]]:
    """The host and guest counts an inpainting samples, from the user's structure and choices.

    Why here and not in the CLI: `chggen inpaint` and `inpaint()` must turn the same choices into the
    same host. Atoms chosen for regeneration are taken out of `host` and added to the guests; a
    symmetric run on a host that is P1/P-1 at 0.01 A symmetrizes it first (its cell and guest counts
    may change).

    Args:
        host: the structure given.
        guests: new guest counts, e.g. {"Li": 2}.
        regenerate_existing: the host's own atoms of the guest elements are generated again too.
        regenerate_sites: 0-based site indices of `host` to generate again.
        regenerate_species: elements whose atoms (within `within` of `around`, if given) are generated again.
        around: centre of a sphere of atoms to generate again: a site index or fractional coordinates.
        within: the sphere's radius in A.
        symmetric: the run keeps the host's space group.

    Returns:
        (host, guests, notes): notes say what was regenerated (`regenerated`) and how the host was
        symmetrized (`host_symmetrized`), as text every sample carries in its properties.

    Example:
        ```python
        from chggen_plugins.api import prepare_host
        li4si8 = Structure.from_file("examples/li4si8_reference.cif")
        host, guests, notes = prepare_host(li4si8, {}, regenerate_species=["Li"])
        guests, notes  # -> ({'Li': 4}, {'regenerated': 'Li:4'})
        ```
    """
    counts = dict(guests)  # checked by InpaintTask: a count must be a positive integer
    regenerated: dict[str, int] = {}
    if any(item is not None for item in (regenerate_sites, regenerate_species, around, within)):
        host, regenerated = select_guests(host, regenerate_sites, regenerate_species, around, within)
        counts = {s: regenerated.get(s, 0) + counts.get(s, 0) for s in {**regenerated, **counts}}
    if regenerate_existing:
        present = [symbol for symbol in counts if symbol in host.composition]
        if present:
            host, existing = select_guests(host, species=present)
            counts = {symbol: count + existing.get(symbol, 0) for symbol, count in counts.items()}
            regenerated = {s: regenerated.get(s, 0) + existing.get(s, 0) for s in {**regenerated, **existing}}
    notes = {"regenerated": _counts_text(regenerated)} if regenerated else {}
    if symmetric:
        symmetrized = symmetric_host(host, counts)
        if symmetrized.structure is not host:
            notes["host_symmetrized"] = (f"at symprec {symmetrized.symprec} A to {symmetrized.spacegroup_symbol} "
                                         f"({len(symmetrized.structure)} atoms)")
        host, counts = symmetrized.structure, dict(symmetrized.guests)
        notes["host_space_group"] = symmetrized.spacegroup_symbol
    return host, counts, notes


def _counts_text(counts: Mapping[str, int]) -> str:
    return ",".join(f"{symbol}:{count}" for symbol, count in counts.items())


def inpaint(host: StructureLike, guests: Mapping[str, int], model: ModelLike, n_samples: int = 1,
            seed: int | None = None, jump_length: int = 10, resamples: int | None = None, device: str = "cpu",
            progress: bool = False, symmetric: bool = False, space_group: int | None = None,
            levels: int | None = None, start: StructureLike | None = None,
            start_sigma: float | None = None, regenerate_existing: bool = False,
            regenerate_sites: Sequence[int] | None = None, regenerate_species: Sequence[str] | None = None,
            around: Sequence[float] | int | None = None,
            within: float | None = None, orbits: str = "uniform", sampler: str = "pc", steps: int | None = None,
            churn: float = 0.0) -> list[Structure] | list[Atoms]:
    """Generate `guests` into a fixed `host`; the host comes back bit for bit (lattice and species too).

    Args:
        host: a pymatgen Structure, ASE Atoms or a structure file; given Atoms, Atoms come back.
        guests: guest counts per structure, e.g. {"Li": 4} (may be empty when atoms are regenerated).
        model: a registered model name (see `installed_models`) or a ScoreModel.
        n_samples: structures to generate.
        seed: same seed, same structures (None: drawn).
        jump_length: RePaint jump length j.
        resamples: RePaint resamples r (None: the model's default, 3; 1 for a host-conditioned model).
        device: torch device.
        progress: show a progress bar.
        symmetric: keep the host's space group (or the largest subgroup that fits the counts, or
            `space_group`): guests on Wyckoff orbits, recorded in each sample's `properties`; a
            P1/P-1 host is symmetrized first.
        space_group: with `symmetric`, the subgroup to keep.
        orbits: with `symmetric`, how each sample's Wyckoff orbits are chosen: "uniform" (drawn from
            the combinations of the host's group, or its largest subgroup that fits) or "model" (the
            combination nearest to where a free inpainting pass put the guests, over the host's
            group and its subgroups; one extra sampling pass).
        levels: noise levels of the model's ladder (see `with_levels`).
        start: a structure in the host's cell holding a placement of the guests, refined instead of
            sampled from nothing; with `start_sigma` (model noise units, A for native) it is noised
            by that much and the walk descends from the level of that noise.
        start_sigma: see `start`.
        regenerate_existing: the host's own atoms of the guest elements are generated again with
            the new ones (a host with 2 Li and guests {"Li": 2} gives 4 new Li).
        regenerate_sites: 0-based site indices of `host` to generate again (see `prepare_host`).
        regenerate_species: elements whose atoms (within `within` of `around`, if given) are
            generated again.
        around: centre of a sphere of atoms to generate again: a site index or fractional coordinates.
        within: the sphere's radius in A.
        sampler: the move down the noise ladder: "pc" (the paper's predictor + Langevin correctors
            at every level), "heun" (EDM's stochastic sampler: churn, then Heun steps of the
            probability-flow ODE) or "ode" (Heun steps, deterministic in the guests); heun and ode
            make 2 network calls per step; measured on the native weights they place guests
            worse than pc at equal calls (docs: Benchmarks, few-step solvers), so pc is the default.
        steps: heun/ode: levels of the ladder visited, evenly spaced (None: every level); for pc
            use `levels`.
        churn: heun: EDM's gamma, re-noising to sigma * (1 + churn) before each step (0: none).

    Returns:
        `n_samples` structures; each carries in `properties` the guest counts (`guests`), its pairs
        of atoms under 1 A (`close_pairs`, warned about when above 0) and what `prepare_host` did
        (`regenerated`, `host_symmetrized`, `host_space_group`).

    Raises:
        ChggenError: guests that cannot fit the host's cell (`structures.room`), unknown elements,
            a bad host or settings, in one line.

    Example:
        ```python
        import chggen_plugins as cg
        samples = cg.inpaint("examples/si_host.cif", {"Li": 4}, "native", n_samples=2, seed=0)
        ```
    """
    structure, was_atoms = to_structure(host)
    structure, counts, notes = prepare_host(structure, guests, regenerate_existing=regenerate_existing,
                                            regenerate_sites=regenerate_sites,
                                            regenerate_species=regenerate_species, around=around,
                                            within=within, symmetric=symmetric)
    placement = None if start is None else to_structure(start, "start")[0]
    task = InpaintTask(structure, counts, n_samples, symmetric=symmetric,
                       space_group=space_group, start=placement, orbits=orbits)
    settings = SamplerSettings(jump_length, resamples, sampler, steps, churn)
    samples = sample_tasks([task], model, seed, settings, device, progress, levels, start_sigma)[0]
    for structure in samples:
        structure.properties.update(guests=_counts_text(counts), **notes)
    crowded = sum(structure.properties["close_pairs"] > 0 for structure in samples)
    if crowded:
        warnings.warn(f"{crowded} of {len(samples)} samples have atoms closer than {MIN_DISTANCE} A (their "
                      "`close_pairs` property counts the pairs): not physical as they stand; relax them, "
                      "or ask for fewer guests", ChggenWarning, stacklevel=2)
    return [to_atoms(s) for s in samples] if was_atoms else samples


def generate(lattice: Lattice | Structure | Atoms | np.ndarray, composition: Mapping[str, int],
             model: ModelLike, n_samples: int = 1, seed: int | None = None, jump_length: int = 10,
             resamples: int = 1, device: str = "cpu", progress: bool = False,
             levels: int | None = None, sampler: str = "pc", steps: int | None = None,
             churn: float = 0.0) -> list[Structure]:
    """Unconditional generation of every atom of `composition` in a fixed cell.

    It is the inpainting loop with an empty host, so every backend that inpaints also generates.
    RePaint jumps are off by default (`resamples=1`): there is no host to harmonise with.

    Args:
        lattice: the cell: a pymatgen Lattice, a Structure or Atoms (their cell is used) or a 3x3
            matrix whose rows are the cell vectors in A.
        composition: atoms per structure, e.g. {"Li": 4, "Si": 8}.
        model: a registered model name or a ScoreModel.
        n_samples: structures to generate.
        seed: same seed, same structures (None: drawn).
        jump_length: RePaint jump length j.
        resamples: RePaint resamples r (1: no jumps).
        device: torch device.
        progress: show a progress bar.
        levels: noise levels of the model's ladder (see `with_levels`).
        sampler: the move down the noise ladder, as for `inpaint`.
        steps: heun/ode levels visited, as for `inpaint`.
        churn: heun's churn, as for `inpaint`.

    Returns:
        `n_samples` pymatgen Structures in the given cell.

    Raises:
        ChggenError: a lattice that is not 3x3 or is degenerate, or an element the model does not know.

    Example:
        ```python
        import chggen_plugins as cg
        host = Structure.from_file("examples/si_host.cif")
        structures = cg.generate(host.lattice, {"Li": 4, "Si": 8}, "native", n_samples=8, seed=0)
        ```
    """
    if isinstance(lattice, Structure):
        lattice = lattice.lattice
    elif isinstance(lattice, Atoms):
        lattice = Lattice(np.asarray(lattice.cell))
    elif not isinstance(lattice, Lattice):
        array = np.asarray(lattice, dtype=float)
        if array.shape != (3, 3):
            raise ChggenError(f"lattice: expected a 3x3 matrix, got shape {array.shape}")
        lattice = Lattice(array)
    check_lattice(lattice, "lattice")
    task = InpaintTask(Structure(lattice, [], []), dict(composition), n_samples, label="composition")
    return sample_tasks([task], model, seed, SamplerSettings(jump_length, resamples, sampler, steps, churn),
                        device, progress, levels)[0]
