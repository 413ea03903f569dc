"""The CHGGen campaign (the paper's Fig. 3), composition by composition:

random cells -> unconditional generation -> CHGNet relax -> host (strip guests, symmetrize) ->
inpainting (k samples per host) -> relax -> space group -> Ed -> shortlist and report.

Every structure is written to the results store (`runs/store.py`) the moment it is evaluated, under a
uid spelled from composition / cell or host / seed / sample / stage. A rerun of the same config
skips what is stored and regenerates only what is missing: sampler batches and their seeds are a
pure function of the config, so a batch redone after a kill gives the same structures, and hosts
and the inpainting that follows are rebuilt from stored rows, never from memory. A config whose
generation settings changed is refused rather than mixed into the same store.

Failures are per item: a structure CHGNet cannot relax is stored with its error, a host that
stays P1/P-1 at every tolerance is stored as skipped; the campaign goes on either way.

The work is cut into independent shards (`runs/shards.py`): one per composition x cell size x
cell x seed for unconditional generation, one per host x seed for inpainting (hosts need the relaxed
unconditional structures, so they come after), one per composition x cell size for a backend's own
sampler. The plain path runs the shards here, one after another, into results.db; `runs/dask.py`
runs the same shards on Dask workers.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymatgen.core import Composition, Lattice, Structure
from tqdm import tqdm

from chggen_plugins.contract.protocol import ScoreModel
from chggen_plugins.contract.registry import installed_models
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import Relaxer
from chggen_plugins.evaluation.stability import Hull, build_hull
from chggen_plugins.runs.config import CampaignConfig, CompositionConfig, SamplerConfig
from chggen_plugins.runs.methods import HOST, INPAINTING_SNAP, INPAINTING_SYM, OWN, REFERENCE, UNCONDITIONAL
from chggen_plugins.runs.setup import claim_store, model_run
from chggen_plugins.runs.shards import Shard, derived_seed, evaluate, lowest_distinct, relaxer_for, run_shard
from chggen_plugins.runs.store import ResultStore, StoredResult
from chggen_plugins.sampling.inpaint import SamplerSettings
from chggen_plugins.structures.batch import InpaintTask
from chggen_plugins.structures.cells import lattice_grid
from chggen_plugins.structures.host import Host, host_from_structure, strip_guests, symmetrize_host
from chggen_plugins.structures.io import read_structure
from chggen_plugins.structures.wyckoff import ORBIT_CHOICES

if TYPE_CHECKING:
    from distributed import Client


def sampler_settings(config: SamplerConfig) -> SamplerSettings:
    """The sampler settings a campaign's [sampler] table asks for (resamples None: the model's default)."""
    return SamplerSettings(config.jump_length, config.resamples, config.solver, config.steps, config.churn)


def deal_order(grid: Sequence[tuple[str, float, Lattice]]) -> list[int]:
    """Grid indices in the order `cells.count` deals structures: every lattice system at axis ratio 1
    first, then ratios further from 1 on a log scale (1.25, 0.75, 1.5, 0.5), so a small count still
    spans the systems."""
    return sorted(range(len(grid)), key=lambda i: (abs(math.log(grid[i][1])), grid[i][1], i))


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


def _writer(method: Callable) -> Callable:
    """A Campaign method that adds rows runs holding results.db's writer lock (`ResultStore.writing`):
    a second process on the same output is refused instead of storing every structure again."""
    @functools.wraps(method)
    def locked(self: "Campaign", *args: Any, **kwargs: Any) -> Any:
        with self.store.writing():
            return method(self, *args, **kwargs)
    return locked


@dataclass
class CampaignResult:
    """What a finished campaign left: its store and the report's files and rows."""

    store: ResultStore
    summary: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


class Campaign:
    """One campaign from a config. `model` and `relaxer` override the config's (tests, notebooks);
    `on_result` is called after every row that reaches results.db (progress hooks). With a Dask
    `client` the shards run on its workers (see `runs/dask.py`), otherwise here, one by one."""

    def __init__(self, config: CampaignConfig, model: ScoreModel | None = None, relaxer: Relaxer | None = None,
                 on_result: Callable[[StoredResult], None] | None = None, progress: bool = True,
                 client: "Client | None" = None) -> None:
        self.progress = progress
        self.on_result = on_result
        self.client = client
        self._model_override, self._relaxer_override = model, relaxer
        empty = Structure(Lattice.cubic(10.0), [], [])
        tasks = [InpaintTask(empty, c.counts(1), 1, label=f"compositions[{i}] ({c.formula})")
                 for i, c in enumerate(config.compositions)]
        self.run_model = model_run(model if model is not None else config.model.name, config.model.source, None,
                                   config.model.device, sampler_settings(config.sampler),
                                   tasks, name=config.model.name)
        self.model = self.run_model.model
        # the model's RePaint default, fixed in the config before the store is claimed
        config = replace(config, sampler=replace(config.sampler, resamples=self.run_model.settings.resamples))
        self.config = config
        self._check_inputs()
        self.store = claim_store(config.output, config.fingerprint(), "a campaign",  # a second campaign stops here
                                 "resume with the old config or choose a new output", config=str(config.path))
        self.relaxer = relaxer if relaxer is not None else relaxer_for(config.relax)
        self._hulls: dict[tuple[str, ...], Hull] = {}
        self._workers = None  # the Dask side (distributed.ShardRunner), made on first use

    def _log(self, message: str) -> None:
        tqdm.write(f"chggen: {message}", file=sys.stderr)

    def _check_inputs(self) -> None:
        """What else can be checked before the first (slow) step: the own sampler, host files."""
        name = self.config.model.name
        if self.config.model.own_samples and installed_models()[name].spec.generate is None:
            raise ChggenError(f"{self.config.path}: key 'model.own_samples' asks for model {name!r}'s own "
                              "sampler, but it has none (only backends such as mattergen bring one)")
        self.file_hosts = {c.formula: [self._file_framework(c, path) for path in c.host_files]
                           for c in self.config.compositions}

    def _file_framework(self, spec: CompositionConfig, path: Path
                        ) -> tuple[Path, Structure, dict[str, int], Structure | None]:
        """(path, framework, guest counts, the file's whole structure when it is of the composition:
        the reference its samples are held against, else None)."""
        structure = read_structure(path)
        present = [g for g in spec.guests if g in structure.composition.get_el_amt_dict()]
        framework = strip_guests(structure, present)[0] if present else structure
        whole = structure.composition.reduced_composition == spec.composition.reduced_composition
        return path, framework, file_host_guests(framework, spec, str(path)), structure if whole else None

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
        return {"composition": spec.name, "method": method, **self.run_model.fields(), "campaign_seed": cfg.seed,
                "relax_fmax": cfg.relax.fmax, "relax_max_steps": cfg.relax.max_steps, **self.relaxer.fields()}

    def _shards(self, spec: CompositionConfig, method: str, key: str, host: Structure, guests: dict[str, int],
                jobs: list[tuple[str, dict[str, Any]]], resamples: int,
                own: tuple[str, str | None] | None = None) -> list[Shard]:
        """The jobs of one cell or host as shards of at most `sampler.batch_size` crystals each."""
        cfg = self.config
        symmetric, snap = method == INPAINTING_SYM, cfg.hosts.snap_symprec if method == INPAINTING_SNAP else None
        orbits = cfg.hosts.orbits if symmetric else ORBIT_CHOICES[0]
        size = cfg.sampler.batch_size
        hull = self.hull(spec.composition)
        shards = []
        for part, first in enumerate(range(0, len(jobs), size)):
            shard_key = f"{key}/part{part}"
            seed = derived_seed(cfg.seed, shard_key)
            settings = replace(sampler_settings(cfg.sampler), resamples=resamples)
            fields = {**self._common(spec, method), "seed": seed, "jump_length": settings.jump_length,
                      "resamples": resamples, **({"orbits": orbits} if symmetric else {})}
            shards.append(Shard(shard_key, host, dict(guests), tuple(jobs[first:first + size]), fields, seed,
                                settings, cfg.model.device, hull, cfg.symmetry, own, symmetric, snap, orbits))
        return shards

    @_writer
    def execute(self, shards: Sequence[Shard]) -> None:
        """Run every shard with rows missing from results.db: here, or on the Dask client's workers."""
        if self.client is not None:
            if self._workers is None:
                from chggen_plugins.runs.dask import ShardRunner  # Dask only when asked for
                self._workers = ShardRunner(self.client, self.config, self._model_override,
                                            self._relaxer_override)
            self._workers.run(shards, self.store, self.on_result, self.progress)
            return
        total = sum(len(s.jobs) for s in shards)
        with tqdm(total=total, desc="generate + relax", disable=not self.progress, unit="structure") as bar:
            for shard in shards:
                run_shard(shard, self.store, self.model, self.relaxer, on_write=self.on_result)
                bar.update(len(shard.jobs))

    def unconditional(self, spec: CompositionConfig) -> None:
        """Random cells of every system and ratio at N * V0, filled by the model from scratch, in
        `cells.rounds` rounds; each later round takes V0 from the best relaxed structure so far."""
        for round_ in range(self.config.cells.rounds):
            self.execute(self.unconditional_shards(spec, round_))

    def unconditional_shards(self, spec: CompositionConfig, round_: int) -> list[Shard]:
        """One shard per cell size x lattice system x axis ratio (x batch) of round `round_`; with
        `cells.count` the count is dealt over the cells in `deal_order` (cells left over start nothing)."""
        cfg = self.config
        v0 = cfg.cells.v0
        if round_ > 0:
            v0 = self._best_volume_per_atom(spec, v0)
        shards = []
        for fu in spec.formula_units:
            counts = spec.counts(fu)
            n_atoms = sum(counts.values())
            grid = list(lattice_grid(n_atoms, v0, derived_seed(cfg.seed, spec.formula, fu, round_, "cells"),
                                     cfg.cells.systems, cfg.cells.ratios))
            turn = {index: rank for rank, index in enumerate(deal_order(grid))}
            for index, (system, ratio, lattice) in enumerate(grid):
                samples = cfg.cells.per_cell(turn[index], len(grid))
                if not samples:
                    continue
                cell = f"{system}-{ratio:g}"
                prefix = f"{spec.name}/x{fu}/{UNCONDITIONAL}/seed{cfg.seed}/round{round_}/{cell}"
                jobs = [(f"{prefix}/{k}", {"start_cell": cell, "sample": k, "formula_units": fu,
                                           "round": round_, "v0": v0})
                        for k in range(samples)]
                shards += self._shards(spec, UNCONDITIONAL, prefix, Structure(lattice, [], []), counts, jobs,
                                       cfg.sampler.unconditional_resamples)
        return shards

    def _best_volume_per_atom(self, spec: CompositionConfig, previous: float) -> float:
        """Volume per atom of the lowest-energy relaxed unconditional structure (stored rows only, so
        a resumed campaign derives the same V0), or `previous` when nothing relaxed yet."""
        rows = self._relaxed_unconditional(spec)
        if not rows:
            self._log(f"{spec.formula}: no relaxed structure yet, V0 stays {previous:.2f} A^3/atom")
            return previous
        best = min(rows, key=lambda r: r.fields["e_per_atom"])
        v0 = best.structure.volume / len(best.structure)
        self._log(f"{spec.formula}: V0 = {v0:.2f} A^3/atom from {best.structure.composition.reduced_formula} "
                  f"at {best.fields['e_per_atom']:.4f} eV/atom")
        return v0

    def _relaxed_unconditional(self, spec: CompositionConfig) -> list[StoredResult]:
        """Relaxed unconditional rows by uid: the order rows reached the store (which differs between
        the plain and the Dask path) must not decide ties."""
        rows = self.store.results(composition=spec.name, method=UNCONDITIONAL, status="relaxed")
        return sorted(rows, key=lambda r: r.uid)

    def _host_candidates(self, spec: CompositionConfig) -> list[StoredResult]:
        """The lowest-energy distinct relaxed unconditional structures of the composition."""
        rows = self._relaxed_unconditional(spec)
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

    @_writer
    def hosts(self, spec: CompositionConfig) -> None:
        """Symmetrized frameworks from the best relaxed structures and from the config's host files."""
        cell = self.config.hosts.cell
        for row in self._host_candidates(spec):
            uid = f"{row.uid}/{HOST}"
            if uid not in self.store:
                self._store_host(spec, uid, row.uid,
                                 lambda row=row: host_from_structure(row.structure, list(spec.guests), cell=cell))
        for path, framework, guests, whole in self.file_hosts[spec.formula]:
            uid = f"{spec.name}/{HOST}/file:{path.name}"
            if uid not in self.store:
                self._store_host(spec, uid, str(path),
                                 lambda f=framework, g=guests: symmetrize_host(f, g, cell=cell))
            if whole is not None and f"{uid}/{REFERENCE}" not in self.store:
                self._store_reference(spec, f"{uid}/{REFERENCE}", path, whole)

    def _store_reference(self, spec: CompositionConfig, uid: str, path: Path, structure: Structure) -> None:
        """A host file that holds the guests is a known structure of the composition: relaxed once,
        stored as the host's reference (one relaxation), so its samples get match-or-lower too."""
        result, measured = evaluate(structure, self.relaxer, self.hull(spec.composition), self.config.symmetry)
        energy = result.final_energy * len(result.structure) if result.structure is not None else None
        self._write(uid, {**self._common(spec, REFERENCE), "parent": str(path), "n_atoms": len(structure),
                          **measured}, result.structure, structure, energy)

    def inpainting(self, spec: CompositionConfig) -> None:
        """k samples of the guests in every usable host."""
        self.execute(self.inpainting_shards(spec))

    def inpainting_shards(self, spec: CompositionConfig) -> list[Shard]:
        """One shard per stored usable host and inpainting method (x batch): its k samples."""
        cfg = self.config
        shards = []
        for host in self.store.results(composition=spec.name, method=HOST, status="host"):
            for method in cfg.hosts.methods:
                prefix = f"{host.uid}/{method}/seed{cfg.seed}"
                jobs = [(f"{prefix}/{k}", {"start_cell": host.fields["host_sg_symbol"], "sample": k,
                                           "parent": host.uid}) for k in range(cfg.hosts.samples)]
                shards += self._shards(spec, method, prefix, host.generated,
                                       _parse_guests(host.fields["guests"]), jobs, cfg.sampler.resamples)
        if not shards:
            self._log(f"{spec.formula}: no usable host, inpainting skipped")
        return shards

    def own_shards(self, spec: CompositionConfig, count: int) -> list[Shard]:
        """`count` structures per cell size from the backend's own sampler (ModelSpec.generate)."""
        cfg = self.config
        shards = []
        for fu in spec.formula_units:
            prefix = f"{spec.name}/x{fu}/{OWN}/seed{cfg.seed}"
            jobs = [(f"{prefix}/{k}", {"start_cell": OWN, "sample": k, "formula_units": fu}) for k in range(count)]
            shards += self._shards(spec, OWN, prefix, Structure(Lattice.cubic(1.0), [], []), spec.counts(fu), jobs,
                                   1, own=(cfg.model.name, cfg.model.source))
        return shards

    @_writer
    def stages(self) -> None:
        """Every stage for every composition, stage by stage so that shards of all compositions run
        side by side: unconditional rounds, the backend's own sampler (if asked), hosts, inpainting."""
        compositions = self.config.compositions
        for round_ in range(self.config.cells.rounds):
            self.execute([shard for spec in compositions for shard in self.unconditional_shards(spec, round_)])
        if self.config.model.own_samples:
            self.execute([shard for spec in compositions for shard in self.own_shards(spec, self.config.model.own_samples)])
        for spec in compositions:
            self.hosts(spec)
        self.execute([shard for spec in compositions for shard in self.inpainting_shards(spec)])

    @_writer
    def run(self) -> CampaignResult:
        """Every stage, then the report (tables, plots, shortlist, r2SCAN inputs)."""
        from chggen_plugins.runs.report import write_report  # matplotlib and VASP input sets only when reporting

        self.stages()
        summary, files = write_report(self.config, self.store)
        return CampaignResult(self.store, summary, files)


def run_campaign(config: CampaignConfig, **options: Any) -> CampaignResult:
    """Run (or resume) the campaign of `config`; options as for `Campaign`."""
    return Campaign(config, **options).run()
