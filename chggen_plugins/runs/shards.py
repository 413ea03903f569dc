"""Shards: the independent pieces every run is cut into, and how one is run and stored.

A shard is one sampler run (a host + guest counts, one crystal per job; an empty host is
unconditional generation) or one call of a backend's own sampler, followed by the relaxation,
space group and Ed of every structure (`evaluate`). Its seed is derived from its key alone
(`derived_seed`), so a shard gives the same rows whichever process runs it and in whatever order:
that is what lets the campaign, the intercalation sweep and the ordering comparison resume after a
kill, and what lets `runs/dask.py` run the same shards on Dask workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Composition, Structure

from chggen_plugins.api import sample_tasks
from chggen_plugins.contract.protocol import ScoreModel
from chggen_plugins.contract.registry import installed_models
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.matching import structure_matcher
from chggen_plugins.evaluation.relax import Relaxer, RelaxResult
from chggen_plugins.evaluation.stability import Hull
from chggen_plugins.evaluation.symmetry import snap_to_symmetry, space_group
from chggen_plugins.runs.config import RelaxConfig, SymmetryConfig
from chggen_plugins.runs.store import ResultStore, StoredResult
from chggen_plugins.sampling.inpaint import SamplerSettings, ScoreNotFinite
from chggen_plugins.structures.batch import InpaintTask
from chggen_plugins.structures.wyckoff import ORBIT_CHOICES, NoSymmetricPlacement

STORE_NAME = "results.db"
SHARDS_NAME = "shards"  # per-shard databases of the Dask path


# what a generated structure carries into its row: the group symmetric guests keep, the snapped group
_SAMPLE_PROPERTIES = ("guest_space_group", "guest_space_group_symbol", "guest_wyckoff", "snapped_space_group",
                      "orbit_redraws", "orbit_proposal_distance")


def relaxer_for(config: RelaxConfig) -> Relaxer:
    """The campaign's relaxer from its [relax] settings (here and on Dask workers)."""
    return Relaxer(config.fmax, config.max_steps, relaxer=config.relaxer, keep_symmetry=config.keep_symmetry,
                   stages=config.stages)


def derived_seed(*parts: object) -> int:
    """A 31-bit seed that depends only on `parts`: the same batch gets the same seed on every run."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:4], "little") >> 1


def host_sites(host: Structure, structure: Structure) -> range:
    """The sites of `structure` that are `host`'s: its first len(host) when they are the host's
    species at the host's positions (as the sampler returns them, structures/batch.py), else none.

    A structure that does not start with its host (a snapped conventional cell, a backend's own
    crystal, pymatgen's orderings) has no host to hold, so a staged relaxation gives it one stage.
    """
    n = len(host)
    if n == 0 or n > len(structure) or structure.species[:n] != host.species:
        return range(0)
    offset = structure.frac_coords[:n] - host.frac_coords
    if not np.allclose(structure.lattice.matrix, host.lattice.matrix) or \
            not np.allclose(offset - np.round(offset), 0.0, atol=1e-6):
        return range(0)
    return range(n)


def evaluate(structure: Structure, relaxer: Relaxer, hull: Hull | None, symmetry: SymmetryConfig,
             fixed: Collection[int] = ()) -> tuple[RelaxResult, dict[str, Any]]:
    """Relax one generated structure, then its space group (each library) and Ed: the store's fields.

    status: 'relaxed' (FIRE reached fmax), 'unconverged' (step budget spent; energy and symmetry are
    of the last structure), or 'error' (set aside or the relaxer failed; `error` says why). Without a
    `hull` there is no Ed (an intercalation sweep makes its own pseudo-binary hull afterwards).
    `fixed` are the host's sites (`host_sites`), held in a "guests" stage of the relaxer.
    """
    result = relaxer.relax(structure, fixed)
    if result.structure is None:
        status = "error"
    else:
        status = "relaxed" if result.converged else "unconverged"
    fields: dict[str, Any] = {
        "status": status, "error": result.error, "e_per_atom": result.final_energy,
        "e_initial": result.initial_energy, "delta_e": result.delta_e, "rmsd": result.rmsd,
        "steps": result.steps, "converged": result.converged, "hull": None if hull is None else hull.label,
        "hull_approximate": None if hull is None else hull.approximate, "symprec": symmetry.symprec,
        "angle_tolerance": symmetry.angle_tolerance,
    }
    if result.structure is not None:
        for library in symmetry.libraries:
            group = space_group(result.structure, symmetry.symprec, symmetry.angle_tolerance, library)
            fields[f"sg_{library}"] = group.number
            fields[f"sg_{library}_symbol"] = group.symbol
        if hull is not None:
            fields["ed"] = hull.decomposition_energy(result.structure.composition, result.final_energy)
    return result, fields


def lowest_distinct(items: Sequence[tuple[Structure, float]], limit: int | None = None) -> list[int]:
    """Indices of `items` (structure, score) by rising score, skipping any structure that the
    project's StructureMatcher (evaluation/matching.py) matches to one already taken; at most `limit`."""
    matcher = structure_matcher()
    order = sorted(range(len(items)), key=lambda i: items[i][1])
    chosen: list[int] = []
    for i in order:
        if limit is not None and len(chosen) == limit:
            break
        if not any(matcher.fit(items[i][0], items[j][0]) for j in chosen):
            chosen.append(i)
    return chosen


@dataclass(frozen=True)
class Shard:
    """One independent piece of a campaign: a sampler run (`host` + `guests`, one crystal per job;
    an empty host is unconditional) or, with `own` = (backend, source), one call of that backend's
    own sampler for `guests` as the whole composition; then the relaxation of every structure.
    Plain data, so it can travel to another process; `fields` go into every row it writes."""

    key: str
    host: Structure
    guests: dict[str, int]
    jobs: tuple[tuple[str, dict[str, Any]], ...]
    fields: dict[str, Any]
    seed: int
    settings: SamplerSettings
    device: str
    hull: Hull | None  # None: no Ed (see `evaluate`)
    symmetry: SymmetryConfig
    own: tuple[str, str | None] | None = None
    symmetric: bool = False      # guests on Wyckoff orbits of the host's group (inpainting-sym)
    snap: float | None = None    # symprec to snap generated structures at before relaxing (inpainting-snap)
    orbits: str = ORBIT_CHOICES[0]  # with `symmetric`: how each sample's orbits are chosen (InpaintTask.orbits)

    @property
    def uids(self) -> list[str]:
        return [uid for uid, _ in self.jobs]


def shard_structures(shard: Shard, model: ScoreModel) -> list[Structure]:
    """The shard's generated structures, one per job, in job order (the same on every run)."""
    if shard.own is None:
        task = InpaintTask(shard.host, shard.guests, len(shard.jobs), label=shard.key, symmetric=shard.symmetric,
                            orbits=shard.orbits)
        structures = sample_tasks([task], model, shard.seed, shard.settings, shard.device)[0]
        return [snap_to_symmetry(s, shard.snap) for s in structures] if shard.snap else structures
    backend, source = shard.own
    generate = installed_models()[backend].spec.generate
    if generate is None:
        raise ChggenError(f"model {backend!r} has no own sampler (its ModelSpec sets no `generate`)")
    structures = list(generate(source, Composition(shard.guests), len(shard.jobs), shard.seed))
    if len(structures) != len(shard.jobs) or not all(isinstance(s, Structure) for s in structures):
        raise ChggenError(f"{backend}: its own sampler returned {len(structures)} objects for "
                          f"{len(shard.jobs)} requested structures ({shard.key})")
    return structures


def run_shard(shard: Shard, store: ResultStore, model: ScoreModel | None, relaxer: Relaxer,
              todo: Collection[str] | None = None,
              on_write: Callable[[StoredResult], None] | None = None,
              structures: Sequence[Structure] | None = None) -> int:
    """Generate the shard's structures (or take `structures`, one per job, made elsewhere: several
    shards sampled in one batch) and relax, measure and store every job not in `store` (and in
    `todo`, when given); returns how many rows it wrote. A structure of the wrong composition from
    a backend's own sampler is stored as an error, unrelaxed: it is no candidate."""
    wanted = {uid for uid in shard.uids if uid not in store and (todo is None or uid in todo)}
    if not wanted:
        return 0
    target = Composition(shard.guests).reduced_composition if shard.own else None
    if structures is None:
        try:
            structures = shard_structures(shard, model)
        except (NoSymmetricPlacement, ScoreNotFinite) as error:  # no Wyckoff combination fits the host's
            for uid in sorted(wanted):  # counts, or the model broke down: every sample fails, in the denominator too
                stored = store.add(uid, {**shard.fields, **relaxer.fields(), **dict(shard.jobs)[uid], "status": "error",
                                         "n_atoms": len(shard.host) + sum(shard.guests.values()),
                                         "error": str(error)})
                if on_write is not None:
                    on_write(stored)
            return len(wanted)
    elif len(structures) != len(shard.jobs):
        raise ChggenError(f"{shard.key}: {len(structures)} structures given for {len(shard.jobs)} jobs")
    for (uid, fields), structure in zip(shard.jobs, structures):
        if uid not in wanted:
            continue
        row = {**shard.fields, **relaxer.fields(), **fields, "n_atoms": len(structure),
               **{k: v for k, v in structure.properties.items() if k in _SAMPLE_PROPERTIES}}
        if target is not None and structure.composition.reduced_composition != target:
            row.update(status="error", error=f"own sampler made {structure.composition.reduced_formula}, "
                                             f"not {target.reduced_formula}")
            stored = store.add(uid, row, None, structure)
        else:
            fixed = host_sites(shard.host, structure) if shard.own is None else range(0)
            result, measured = evaluate(structure, relaxer, shard.hull, shard.symmetry, fixed)
            energy = result.final_energy * len(result.structure) if result.structure is not None else None
            stored = store.add(uid, {**row, **measured}, result.structure, structure, energy)
        if on_write is not None:
            on_write(stored)
    return len(wanted)
