"""The CHGGen campaign (the paper's Fig. 3), composition by composition:

random cells -> unconditional generation -> CHGNet relax -> host (strip guests, symmetrize) ->
inpainting (k samples per host) -> relax -> space group -> Ed -> shortlist and report.

Every structure is written to the results store (`store.py`) the moment it is evaluated, under a
uid spelled from composition / cell or host / seed / sample / stage. A rerun of the same config
skips what is stored and regenerates only what is missing: sampler batches and their seeds are a
pure function of the config, so a batch redone after a kill gives the same structures, and hosts
and the inpainting that follows are rebuilt from stored rows, never from memory. A config whose
generation settings changed is refused rather than mixed into the same store.

Failures are per item: a structure CHGNet cannot relax is stored with its error, a host that
stays P1/P-1 at every tolerance is stored as skipped; the campaign goes on either way.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure
from tqdm import tqdm

from .batch import InpaintTask
from .config import CampaignConfig, CompositionConfig, SymmetryConfig
from .errors import ChggenError
from .host import Host, host_from_structure, strip_guests, symmetrize_host
from .lattice import lattice_grid
from .pipeline import check_elements, sample_tasks
from .plugins import load_model
from .post.relax import Relaxer, RelaxResult
from .post.stability import Hull, build_hull
from .post.symmetry import space_group
from .protocol import ScoreModel
from .sampling.inpaint import SamplerSettings
from .store import ResultStore, StoredResult
from .structures import read_structure

UNCONDITIONAL = "unconditional"
HOST = "host"
INPAINTING = "inpainting"
GENERATED = (UNCONDITIONAL, INPAINTING)  # the methods whose structures are generated and relaxed
STORE_NAME = "results.db"


def derived_seed(*parts: object) -> int:
    """A 31-bit seed that depends only on `parts`: the same batch gets the same seed on every run."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:4], "little") >> 1


def evaluate(structure: Structure, relaxer: Relaxer, hull: Hull,
             symmetry: SymmetryConfig) -> tuple[RelaxResult, dict[str, Any]]:
    """Relax one generated structure, then its space group (each library) and Ed: the store's fields.

    status: 'relaxed' (FIRE reached fmax), 'unconverged' (step budget spent; energy and symmetry are
    of the last structure), or 'error' (set aside or CHGNet failed; `error` says why).
    """
    result = relaxer.relax(structure)
    if result.structure is None:
        status = "error"
    else:
        status = "relaxed" if result.converged else "unconverged"
    fields: dict[str, Any] = {
        "status": status, "error": result.error, "e_per_atom": result.final_energy,
        "e_initial": result.initial_energy, "delta_e": result.delta_e, "rmsd": result.rmsd,
        "steps": result.steps, "converged": result.converged, "hull": hull.label,
        "hull_approximate": hull.approximate, "symprec": symmetry.symprec,
        "angle_tolerance": symmetry.angle_tolerance,
    }
    if result.structure is not None:
        for library in symmetry.libraries:
            group = space_group(result.structure, symmetry.symprec, symmetry.angle_tolerance, library)
            fields[f"sg_{library}"] = group.number
            fields[f"sg_{library}_symbol"] = group.symbol
        fields["ed"] = hull.decomposition_energy(result.structure.composition, result.final_energy)
    return result, fields


def lowest_distinct(items: Sequence[tuple[Structure, float]], limit: int | None = None) -> list[int]:
    """Indices of `items` (structure, score) by rising score, skipping any structure that pymatgen's
    StructureMatcher (defaults) matches to one already taken; at most `limit` of them."""
    matcher = StructureMatcher()
    order = sorted(range(len(items)), key=lambda i: items[i][1])
    chosen: list[int] = []
    for i in order:
        if limit is not None and len(chosen) == limit:
            break
        if not any(matcher.fit(items[i][0], items[j][0]) for j in chosen):
            chosen.append(i)
    return chosen


@dataclass
class _Unit:
    """Samples to draw from one host (empty for unconditional): one uid and field set per sample."""

    host: Structure
    guests: dict[str, int]
    label: str
    jobs: list[tuple[str, dict[str, Any]]]


def _batches(units: list[_Unit], batch_size: int) -> Iterator[list[_Unit]]:
    """Pack units into sampler runs of at most `batch_size` crystals (big units are split)."""
    pieces = [_Unit(u.host, u.guests, u.label, u.jobs[i:i + batch_size])
              for u in units for i in range(0, len(u.jobs), batch_size)]
    batch: list[_Unit] = []
    for piece in pieces:
        if batch and sum(len(u.jobs) for u in batch) + len(piece.jobs) > batch_size:
            yield batch
            batch = []
        batch.append(piece)
    if batch:
        yield batch


def _guests_text(guests: dict[str, int]) -> str:
    return ",".join(f"{symbol}:{count}" for symbol, count in guests.items())


def _parse_guests(text: str) -> dict[str, int]:
    return {symbol: int(count) for symbol, count in (item.split(":") for item in text.split(","))}


def file_host_guests(framework: Structure, spec: CompositionConfig, where: str) -> dict[str, int]:
    """Guest counts that make `framework` + guests exactly the composition (any number of formula units)."""
    target = spec.composition
    guests = set(spec.guests)
    host_part = {el.symbol: amount for el, amount in target.items() if el.symbol not in guests}
    have = framework.composition.get_el_amt_dict()
    if set(have) != set(host_part):
        raise ChggenError(f"{where}: host elements {'-'.join(sorted(have))} do not match the non-guest "
                          f"elements {'-'.join(sorted(host_part))} of {spec.formula}")
    units = {have[el] / amount for el, amount in host_part.items()}
    if max(units) - min(units) > 1e-8:
        raise ChggenError(f"{where}: host {framework.composition.reduced_formula} is not the host part of "
                          f"{spec.formula} (element ratios differ)")
    unit = units.pop()
    counts = {g: unit * target[g] for g in spec.guests}
    if any(abs(c - round(c)) > 1e-8 for c in counts.values()):
        raise ChggenError(f"{where}: {framework.composition.formula} needs a fractional number of guests "
                          f"for {spec.formula} ({counts})")
    return {g: int(round(c)) for g, c in counts.items()}


@dataclass
class CampaignResult:
    """What a finished campaign left: its store and the report's files and rows."""

    store: ResultStore
    summary: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


class Campaign:
    """One campaign from a config. `model` and `relaxer` override the config's (tests, notebooks);
    `on_result` is called after every stored row (progress hooks)."""

    def __init__(self, config: CampaignConfig, model: ScoreModel | None = None, relaxer: Relaxer | None = None,
                 on_result: Callable[[StoredResult], None] | None = None, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.on_result = on_result
        self.model = model if model is not None else load_model(config.model.name, config.model.source,
                                                                config.model.device)
        self._check_inputs()
        self.store = ResultStore(config.output / STORE_NAME)
        self._check_fingerprint()
        self.relaxer = relaxer if relaxer is not None else Relaxer(config.relax.fmax, config.relax.max_steps)
        self._hulls: dict[tuple[str, ...], Hull] = {}

    def _log(self, message: str) -> None:
        tqdm.write(f"chggen: {message}", file=sys.stderr)

    def _check_inputs(self) -> None:
        """Everything that can be checked before the first (slow) step: elements, host files."""
        empty = Structure(Lattice.cubic(10.0), [], [])
        tasks = [InpaintTask(empty, c.counts(1), 1, label=f"compositions[{i}] ({c.formula})")
                 for i, c in enumerate(self.config.compositions)]
        check_elements(self.model, tasks)
        self.file_hosts = {c.formula: [self._file_framework(c, path) for path in c.host_files]
                           for c in self.config.compositions}

    def _file_framework(self, spec: CompositionConfig, path: Path) -> tuple[Path, Structure, dict[str, int]]:
        structure = read_structure(path)
        present = [g for g in spec.guests if g in structure.composition.get_el_amt_dict()]
        framework = strip_guests(structure, present)[0] if present else structure
        return path, framework, file_host_guests(framework, spec, str(path))

    def _check_fingerprint(self) -> None:
        fingerprint = self.config.fingerprint()
        stored = self.store.metadata.get("fingerprint")
        if stored is None and len(self.store) == 0:
            self.store.metadata = {"fingerprint": fingerprint, "config": str(self.config.path)}
            return
        changed = sorted(k for k in set(fingerprint) | set(stored or {}) if (stored or {}).get(k) != fingerprint.get(k))
        if changed:
            raise ChggenError(f"{self.store.path} holds a campaign made with different settings "
                              f"({', '.join(changed)} changed); resume with the old config or choose a new output")

    def hull(self, composition: Composition) -> Hull:
        """The hull of the composition's chemical system (built or read once per run)."""
        elements = tuple(sorted(el.symbol for el in composition.elements))
        if elements not in self._hulls:
            cfg = self.config.stability
            self._hulls[elements] = build_hull(elements, cfg.entries, cfg.cache, self.relaxer,
                                               cfg.reference_max_atoms, cfg.reference_per_formula,
                                               self.progress)
            self._log(f"Ed of {'-'.join(elements)} against {self._hulls[elements].label}")
        return self._hulls[elements]

    def _write(self, uid: str, fields: dict[str, Any], structure: Structure | None = None,
               generated: Structure | None = None, energy: float | None = None) -> None:
        stored = self.store.add(uid, fields, structure, generated, energy)
        if self.on_result is not None:
            self.on_result(stored)

    def _common(self, spec: CompositionConfig, method: str) -> dict[str, Any]:
        cfg = self.config
        return {"composition": spec.name, "method": method,
                "backend": cfg.model.name, "model_source": cfg.model.source,
                "levels": self.model.noise_process.num_levels, "campaign_seed": cfg.seed,
                "relax_fmax": cfg.relax.fmax, "relax_max_steps": cfg.relax.max_steps}

    def _generate(self, spec: CompositionConfig, method: str, units: list[_Unit], resamples: int,
                  stage: str) -> None:
        """Sample every unit whose rows are missing, relax and store each missing sample.

        `stage` names this call for the seeds (a method may run several times, e.g. in rounds)."""
        settings = SamplerSettings(self.config.sampler.jump_length, resamples)
        hull = self.hull(spec.composition)
        for index, batch in enumerate(_batches(units, self.config.sampler.batch_size)):
            todo = {uid for unit in batch for uid, _ in unit.jobs if uid not in self.store}
            if not todo:
                continue
            seed = derived_seed(self.config.seed, spec.name, stage, index)
            tasks = [InpaintTask(u.host, u.guests, len(u.jobs), label=u.label) for u in batch]
            samples = sample_tasks(tasks, self.model, seed, settings, self.config.model.device, self.progress)
            jobs = [(job, structure) for unit, structures in zip(batch, samples)
                    for job, structure in zip(unit.jobs, structures) if job[0] in todo]
            for (uid, fields), structure in tqdm(jobs, desc=f"{spec.formula} {method}: relax",
                                                 disable=not self.progress, unit="structure"):
                result, measured = evaluate(structure, self.relaxer, hull, self.config.symmetry)
                energy = result.final_energy * len(result.structure) if result.structure is not None else None
                self._write(uid, {**self._common(spec, method), **fields, "seed": seed,
                                  "jump_length": settings.jump_length, "resamples": resamples,
                                  "n_atoms": len(structure), **measured},
                            result.structure, structure, energy)

    def unconditional(self, spec: CompositionConfig) -> None:
        """Random cells of every system and ratio at N * V0, filled by the model from scratch, in
        `cells.rounds` rounds; each later round takes V0 from the best relaxed structure so far."""
        v0 = self.config.cells.v0
        for round_ in range(self.config.cells.rounds):
            if round_ > 0:
                v0 = self._best_volume_per_atom(spec, v0)
            self._unconditional_round(spec, round_, v0)

    def _best_volume_per_atom(self, spec: CompositionConfig, previous: float) -> float:
        """Volume per atom of the lowest-energy relaxed unconditional structure (stored rows only, so
        a resumed campaign derives the same V0), or `previous` when nothing relaxed yet."""
        rows = list(self.store.results(composition=spec.name, method=UNCONDITIONAL, status="relaxed"))
        if not rows:
            self._log(f"{spec.formula}: no relaxed structure yet, V0 stays {previous:.2f} A^3/atom")
            return previous
        best = min(rows, key=lambda r: r.fields["e_per_atom"]).structure
        v0 = best.volume / len(best)
        self._log(f"{spec.formula}: V0 = {v0:.2f} A^3/atom from {best.composition.reduced_formula} "
                  f"at {min(r.fields['e_per_atom'] for r in rows):.4f} eV/atom")
        return v0

    def _unconditional_round(self, spec: CompositionConfig, round_: int, v0: float) -> None:
        cfg = self.config
        units = []
        for fu in spec.formula_units:
            counts = spec.counts(fu)
            n_atoms = sum(counts.values())
            grid = lattice_grid(n_atoms, v0, derived_seed(cfg.seed, spec.formula, fu, round_, "cells"),
                                cfg.cells.systems, cfg.cells.ratios)
            for system, ratio, lattice in grid:
                cell = f"{system}-{ratio:g}"
                jobs = [(f"{spec.name}/x{fu}/{UNCONDITIONAL}/seed{cfg.seed}/round{round_}/{cell}/{k}",
                         {"start_cell": cell, "sample": k, "formula_units": fu, "round": round_, "v0": v0})
                        for k in range(cfg.cells.samples_per_cell)]
                units.append(_Unit(Structure(lattice, [], []), counts, f"{spec.formula} x{fu} {cell}", jobs))
        self._generate(spec, UNCONDITIONAL, units, cfg.sampler.unconditional_resamples,
                       f"{UNCONDITIONAL}/round{round_}")

    def _host_candidates(self, spec: CompositionConfig) -> list[StoredResult]:
        """The lowest-energy distinct relaxed unconditional structures of the composition."""
        rows = list(self.store.results(composition=spec.name,
                                       method=UNCONDITIONAL, status="relaxed"))
        picked = lowest_distinct([(r.structure, r.fields["e_per_atom"]) for r in rows],
                                 self.config.hosts.per_composition)
        return [rows[i] for i in picked]

    def _store_host(self, spec: CompositionConfig, uid: str, parent: str,
                    make: Callable[[], Host]) -> None:
        common = {**self._common(spec, HOST), "parent": parent, "cell_kind": self.config.hosts.cell}
        try:
            host = make()
        except ChggenError as error:  # HostSymmetryError, or guests that do not fit the new cell
            self._log(f"host {uid}: {error}")
            self._write(uid, {**common, "status": "skipped", "error": str(error)})
            return
        self._write(uid, {**common, "status": "host", "guests": _guests_text(host.guests),
                          "n_atoms": len(host.structure), "host_sg": host.spacegroup_number,
                          "host_sg_symbol": host.spacegroup_symbol, "host_symprec": host.symprec,
                          "host_angle_tolerance": host.angle_tolerance, "cell_scale": float(host.cell_scale)},
                    generated=host.structure)

    def hosts(self, spec: CompositionConfig) -> None:
        """Symmetrized frameworks from the best relaxed structures and from the config's host files."""
        cell = self.config.hosts.cell
        for row in self._host_candidates(spec):
            uid = f"{row.uid}/{HOST}"
            if uid not in self.store:
                self._store_host(spec, uid, row.uid,
                                 lambda row=row: host_from_structure(row.structure, list(spec.guests), cell=cell))
        for path, framework, guests in self.file_hosts[spec.formula]:
            uid = f"{spec.name}/{HOST}/file:{path.name}"
            if uid not in self.store:
                self._store_host(spec, uid, str(path),
                                 lambda f=framework, g=guests: symmetrize_host(f, g, cell=cell))

    def inpainting(self, spec: CompositionConfig) -> None:
        """k samples of the guests in every usable host."""
        cfg = self.config
        units = []
        for host in self.store.results(composition=spec.name, method=HOST, status="host"):
            jobs = [(f"{host.uid}/{INPAINTING}/seed{cfg.seed}/{k}",
                     {"start_cell": host.fields["host_sg_symbol"], "sample": k, "parent": host.uid})
                    for k in range(cfg.hosts.samples)]
            units.append(_Unit(host.generated, _parse_guests(host.fields["guests"]), host.uid, jobs))
        if units:
            self._generate(spec, INPAINTING, units, cfg.sampler.resamples, INPAINTING)
        else:
            self._log(f"{spec.formula}: no usable host, inpainting skipped")

    def run(self) -> CampaignResult:
        """Every stage for every composition, then the report (tables, plots, shortlist, r2SCAN inputs)."""
        from .report import write_report  # matplotlib and VASP input sets only when reporting

        for spec in self.config.compositions:
            self.unconditional(spec)
            self.hosts(spec)
            self.inpainting(spec)
        summary, files = write_report(self.config, self.store)
        return CampaignResult(self.store, summary, files)


def run_campaign(config: CampaignConfig, **options: Any) -> CampaignResult:
    """Run (or resume) the campaign of `config`; options as for `Campaign`."""
    return Campaign(config, **options).run()
