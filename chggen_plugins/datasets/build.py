"""The project's own training data: CHGNet-relaxed crystals of given chemical systems.

Each system gets two kinds of starting points, in this order per system:
1. the AFLOW prototypes shipped with pymatgen, decorated with the system's elements (`prototypes.py`);
2. random symmetric crystals from PyXtal, round after round over the system's compositions, each
   with a random number of formula units (cell up to `max_atoms` atoms in the conventional cell)
   and a random space group (2-230) compatible with the atom counts, no pair closer than PyXtal's
   distances or 1 A (`pyxtal_tolerances`); the primitive cell is relaxed.
Systems are interleaved so every system grows at once. Each start is relaxed with CHGNet (FIRE,
fmax 0.1 eV/A, cell and positions), kept only if converged, no pair ended closer than 1 A and the
cell did not blow up (`expansion` <= 2: a decorated layer or molecule prototype can drift apart), and
dropped as a duplicate if pymatgen's StructureMatcher (defaults) matches an already kept structure
of the same reduced composition, whichever system or worker kept it.

Files in `out_dir`, written as it goes (one append and flush per structure):
- `structures.w<k>.extxyz`: kept structures of worker k: total CHGNet energy (`energy`, eV) and info
  `system, source (pyxtal | aflow:<label>), task, formula, sg_symbol, sg_number (spglib via pymatgen,
  symprec 0.1, angle 10), steps, energy_per_atom, initial_energy_per_atom, delta_e, rmsd`.
- `attempts.w<k>.jsonl`: one line per attempted task, whatever came of it.
Resuming: a file present only gzipped (`.extxyz.gz`, `.jsonl.gz`, as committed) is unpacked first;
tasks have deterministic ids and seeds (from `seed`, the system, the formula and the
round), and a task found in any `attempts.w*.jsonl` is never redone. Several processes may share
`out_dir` when each has its own `worker` index (task j of a system belongs to worker j % workers);
they see each other's structures for de-duplication as the files grow. A near-simultaneous find of
the same structure by two workers can slip through: de-duplicate again when merging if that matters.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal import pyxtal
from pyxtal.symmetry import Group
from pyxtal.tolerance import Tol_matrix
from tqdm import tqdm

from chggen_plugins.datasets.readers import read_complete_frames
from chggen_plugins.errors import ChggenError, first_line
from chggen_plugins.evaluation.relax import MAX_STEPS, Relaxer
from chggen_plugins.structures.io import MIN_DISTANCE, closest_pair, from_atoms
from chggen_plugins.structures.prototypes import Decoration, decorate, decorations
from chggen_plugins.structures.systems import DEFAULT_SYSTEMS, ChemicalSystem, expand_systems, formula, parse_system

MAX_EXPANSION = 2.0


def expansion(structure: Structure) -> float:
    """Cell volume over the summed van der Waals sphere volumes of its atoms.

    Crystals stay near or below 1 (molecular sulfur ~1.1, open tetrahedral frameworks up to ~1.9);
    relaxations that pulled the pieces of a cell apart gave 2.2-5.6 at 1-2.3 eV/atom above the
    best structure of the same composition.
    """
    spheres = sum(4 / 3 * math.pi * float(site.specie.van_der_waals_radius) ** 3 for site in structure)
    return structure.volume / spheres


@dataclass(frozen=True)
class Task:
    """One starting structure to make and relax; `id` is stable across runs."""

    id: str
    system: str
    formula: str
    seed: int
    decoration: Decoration | None  # an AFLOW prototype, or None for a random PyXtal crystal

    @property
    def source(self) -> str:
        return f"aflow:{self.decoration.label}" if self.decoration else "pyxtal"


@dataclass
class BuildSummary:
    """Distinct structures per system in out_dir (all workers) and this run's attempts by outcome."""

    counts: dict[str, int]
    outcomes: Counter = field(default_factory=Counter)
    file: Path | None = None


def _task_seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:4], "little")


def system_tasks(system: ChemicalSystem, seed: int, max_atoms: int, prototypes: bool) -> Iterator[Task]:
    """A system's endless task list: decorated prototypes, then PyXtal rounds over its formulas."""
    if prototypes:
        for d in decorations(system, max_atoms):
            yield Task(f"{system.name}/aflow/{d.index}/{d.formula}", system.name, d.formula, 0, d)
    for round_ in itertools.count():
        for name in system.formulas:
            yield Task(f"{system.name}/pyxtal/{name}/seed{seed}/round{round_}", system.name, name,
                       _task_seed(seed, system.name, name, round_), None)


@cache
def compatible_groups(counts: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(g for g in range(2, 231) if Group(g).check_compatible(list(counts))[0])


def pyxtal_tolerances(species: Sequence[str]) -> Tol_matrix:
    """PyXtal's closest allowed distances, each pair of `species` raised to at least MIN_DISTANCE.

    PyXtal's own allow O-O at 0.7 A and P-O at 0.89 A: oxide starts with such a pair were set aside
    by the relaxer (3 of 16 random Li-Co-O starts). Pairs already at 1 A or more (every pair of the
    sulfide and silicide systems) keep their value, so those systems' random starts are unchanged.
    """
    tolerances = Tol_matrix(prototype="atomic")
    for a, b in itertools.combinations_with_replacement(species, 2):
        if tolerances.get_tol(a, b) < MIN_DISTANCE:
            tolerances.set_tol(a, b, MIN_DISTANCE)
    return tolerances


def random_start(task: Task, max_atoms: int) -> Structure:
    """A random symmetric crystal for the task's formula (PyXtal), as its primitive cell."""
    composition = Composition(task.formula)
    rng = np.random.default_rng(task.seed)
    units = int(rng.integers(1, max_atoms // int(composition.num_atoms) + 1))
    species = [e.symbol for e in composition]
    counts = tuple(int(a) * units for a in composition.values())
    groups = compatible_groups(counts)
    if not groups:
        raise ValueError(f"no space group 2-230 fits counts {counts}")
    group = int(rng.choice(groups))
    crystal = pyxtal()
    crystal.from_random(3, group, species, list(counts), random_state=int(rng.integers(2**31)),
                        tm=pyxtal_tolerances(species))
    if not crystal.valid:
        raise ValueError(f"PyXtal found no {task.formula} x{units} crystal in group {group}")
    return crystal.to_pymatgen().get_primitive_structure()


class _Store:
    """Every kept structure in out_dir (own file and siblings'), read incrementally as files grow."""

    def __init__(self, out_dir: Path, worker: int) -> None:
        self.out_dir = out_dir
        self.own = out_dir / f"structures.w{worker}.extxyz"
        self.offsets: dict[Path, int] = {}
        self.kept: dict[str, list[tuple[Structure, str]]] = defaultdict(list)
        self.counts: Counter = Counter()
        self.matcher = StructureMatcher()
        if self.own.exists():  # a crash can leave half a frame at the end: cut it off
            _, end = read_complete_frames(self.own, 0)
            with open(self.own, "r+b") as handle:
                handle.truncate(end)
        self.refresh()

    def refresh(self) -> None:
        for path in sorted(self.out_dir.glob("structures.w*.extxyz")):
            frames, self.offsets[path] = read_complete_frames(path, self.offsets.get(path, 0))
            for number, atoms in enumerate(frames):
                structure = from_atoms(atoms, f"{path} new frame {number}")
                self.kept[formula(structure.composition)].append((structure, str(atoms.info.get("task"))))
                self.counts[str(atoms.info.get("system"))] += 1

    def duplicate_of(self, structure: Structure) -> str | None:
        """Task id of a kept structure that matches, or None."""
        self.refresh()
        for other, task_id in self.kept[formula(structure.composition)]:
            if self.matcher.fit(structure, other):
                return task_id
        return None

    def append(self, atoms) -> None:
        buffer = io.StringIO()
        ase.io.write(buffer, atoms, format="extxyz")
        with open(self.own, "a") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
        self.refresh()


def _restore_compressed(out_dir: Path) -> None:
    """Unpack committed `structures.w*.extxyz.gz` / `attempts.w*.jsonl.gz` that have no plain copy,
    so a checkout that holds only the compressed files resumes instead of starting over."""
    for packed in [*out_dir.glob("structures.w*.extxyz.gz"), *out_dir.glob("attempts.w*.jsonl.gz")]:
        plain = packed.with_suffix("")
        if not plain.exists():
            plain.write_bytes(gzip.decompress(packed.read_bytes()))


def _attempted(out_dir: Path) -> set[str]:
    done = set()
    for path in out_dir.glob("attempts.w*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                done.add(json.loads(line)["task"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a crash: that task is simply tried again
    return done


def _frame(task: Task, structure: Structure, result) -> object:
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = SinglePointCalculator(atoms, energy=result.final_energy * len(atoms))
    analyzer = SpacegroupAnalyzer(structure, symprec=0.1, angle_tolerance=10)
    atoms.info.update(system=task.system, source=task.source, task=task.id, formula=task.formula,
                      sg_symbol=analyzer.get_space_group_symbol(),
                      sg_number=analyzer.get_space_group_number(),
                      steps=result.steps, energy_per_atom=result.final_energy,
                      initial_energy_per_atom=result.initial_energy, delta_e=result.delta_e, rmsd=result.rmsd)
    return atoms


def _attempt(task: Task, relaxer: Relaxer, store: _Store, max_atoms: int) -> tuple[str, str, int, int]:
    """Make, relax, check, de-duplicate and maybe keep one task: (outcome, detail, atoms, steps)."""
    try:
        start = decorate(task.decoration) if task.decoration else random_start(task, max_atoms)
    except Exception as error:  # PyXtal and pymatgen raise many kinds; the task is recorded, not fatal
        return "no_start", f"{type(error).__name__}: {first_line(error)}", 0, 0
    result = relaxer.relax(start)
    if result.error is not None:
        outcome = "set_aside" if result.error.startswith("set aside") else "failed"
        return outcome, result.error, len(start), 0
    if not result.converged:
        return "not_converged", f"fmax {relaxer.fmax} not reached", len(start), result.steps
    pair = closest_pair(result.structure, relaxer.min_distance)
    if pair is not None:
        return "collapsed", f"relaxed pair {pair[0]:.2f} A apart", len(start), result.steps
    if expansion(result.structure) > MAX_EXPANSION:
        return ("expanded", f"volume {expansion(result.structure):.1f} x the van der Waals volume",
                len(start), result.steps)
    match = store.duplicate_of(result.structure)
    if match is not None:
        return "duplicate", match, len(start), result.steps
    store.append(_frame(task, result.structure, result))
    return "kept", f"{result.final_energy:.4f} eV/atom", len(start), result.steps


def build_dataset(out_dir: str | Path, systems: Sequence[str] | None = None, target: int = 500,
                  seed: int = 0, max_atoms: int = 24, *, worker: int = 0, workers: int = 1,
                  max_steps: int = MAX_STEPS, prototypes: bool = True, patience: int = 300,
                  progress: bool = True, relaxer: Relaxer | None = None) -> BuildSummary:
    """Grow out_dir until every system has `target` distinct relaxed structures (all workers
    together) or `patience` attempts in a row by this worker kept nothing new for it.

    systems: "Li-Si" style names (default: `DEFAULT_SYSTEMS`, Li-Si, Zn-P-S, Li-P-S, Li-Ti-S),
    optionally with explicit formulas "Li-Si:LiSi,Li3Si", or the group "cathodes" (every system of
    `CATHODE_SYSTEMS`). `relaxer` overrides `max_steps` (tests pass a loaded model).
    """
    if target < 1 or max_atoms < 1 or patience < 1:
        raise ChggenError(f"dataset build: target ({target}), max_atoms ({max_atoms}) and patience "
                          f"({patience}) must be >= 1")
    if not 0 <= worker < workers:
        raise ChggenError(f"dataset build: worker {worker} is not in 0..{workers - 1}")
    parsed = [parse_system(s, max_atoms) for s in expand_systems(systems or list(DEFAULT_SYSTEMS))]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _restore_compressed(out_dir)
    relaxer = relaxer or Relaxer(max_steps=max_steps)
    store = _Store(out_dir, worker)
    done = _attempted(out_dir)
    log = out_dir / f"attempts.w{worker}.jsonl"
    if log.exists() and log.stat().st_size and not log.read_bytes().endswith(b"\n"):
        with open(log, "a") as handle:
            handle.write("\n")
    misses: Counter = Counter()
    summary = BuildSummary({}, Counter(), store.own)

    def finished(name: str) -> bool:
        return store.counts[name] >= target or misses[name] >= patience

    def distinct() -> int:
        return sum(min(store.counts[s.name], target) for s in parsed)

    def pending(system: ChemicalSystem) -> Iterator[Task]:
        """The system's tasks that are this worker's and not yet attempted by anyone: skipping the
        attempted ones must not cost a system its turn, or a resumed build with a long record for
        one system would try only the others for thousands of turns."""
        for number, task in enumerate(system_tasks(system, seed, max_atoms, prototypes)):
            if number % workers == worker and task.id not in done:
                yield task

    streams = [pending(s) for s in parsed]
    bar = tqdm(total=target * len(parsed), initial=distinct(), desc=f"dataset w{worker}",
               disable=not progress, smoothing=0, mininterval=30)
    with bar:
        for stream in itertools.cycle(streams):
            if all(finished(s.name) for s in parsed):
                break
            task = next(stream)
            if finished(task.system):
                continue
            began = time.perf_counter()
            outcome, detail, n_atoms, steps = _attempt(task, relaxer, store, max_atoms)
            seconds = time.perf_counter() - began
            misses[task.system] = 0 if outcome == "kept" else misses[task.system] + 1
            summary.outcomes[outcome] += 1
            record = dict(task=task.id, system=task.system, outcome=outcome, detail=detail,
                          atoms=n_atoms, steps=steps, seconds=round(seconds, 2))
            with open(log, "a") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
            bar.update(distinct() - bar.n)
            bar.set_postfix(summary.outcomes, refresh=False)
            if progress:
                tqdm.write(f"[w{worker}] {task.id}: {outcome} {detail} "
                           f"({n_atoms} atoms, {steps} steps, {seconds:.1f} s)")
    store.refresh()
    summary.counts = {s.name: store.counts[s.name] for s in parsed}
    return summary
