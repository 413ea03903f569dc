"""Relaxation of pymatgen Structures (cell and positions) on any ASE calculator, one at a time.

The calculator is a relaxer plugin's (`chggen_relaxers`; CHGNet by default, `--relaxer NAME`) or any
ASE calculator wrapped in a `LoadedRelaxer`. ASE FIRE on a FrechetCellFilter, fmax 0.1 eV/A, up to
500 steps: with CHGNet the same calculation as CHGNet's own `StructOptimizer` (bit-identical),
without its trajectory bookkeeping. Sequential on purpose: batching CHGNet did not pay on CPU
(measured when the backends were compared).

Stages (`stages`, `[relax] stages`, `--relax-stages`): "all" is the relaxation above; "guests" first
relaxes only the guest positions, host atoms held by ASE `FixAtoms` and the cell fixed (XtalPaint's
guests-first relaxation), so a guest placed badly is moved before it can push the host apart.

Threads decide the speed. `OPENBLAS_NUM_THREADS=1` must be in the environment before numpy is
first imported (the cell filter's 3x3 algebra on several OpenBLAS threads is ~6x slower): importing
`chggen_plugins` first sets it by default, otherwise it is the caller's job. Torch threads are the
caller's choice (`chggen --threads`, default 1: other processes share the cores).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.core import Lattice, Structure
from tqdm import tqdm

from chggen_plugins.contract.registry import DEFAULT_RELAXER, LoadedRelaxer, load_relaxer
from chggen_plugins.errors import ChggenError, first_line
from chggen_plugins.structures.io import MIN_DISTANCE, closest_pair

if TYPE_CHECKING:
    from ase import Atoms

# The relaxer's calculator (and torch with it), ASE's optimizer and pymatgen's ASE adaptor are
# imported where a relaxation needs them: the constants here are used by `chggen --help` and by the
# host checks, which must not pay seconds of imports for them.

FMAX = 0.1  # eV/A, as in the paper
MAX_STEPS = 500
KEEP_SYMPREC = 0.01  # A: the tolerance at which `keep_symmetry` reads the group it keeps
GUESTS, ALL = "guests", "all"
STAGES = (GUESTS, ALL)
DEFAULT_STAGES = (ALL,)  # the paper's one stage (docs/guides/relaxers.md: why it stays the default)


def check_stages(stages: Sequence[str], where: str = "relax stages") -> tuple[str, ...]:
    """`stages` as a tuple when they are distinct names from STAGES (at least one), else one line.

    Args:
        stages: e.g. ["guests", "all"], in the order they run.
        where: what the message names (a config key, a command-line option).

    Returns:
        The stages as a tuple.
    """
    stages = tuple(stages)
    if not stages or any(s not in STAGES for s in stages) or len(set(stages)) != len(stages):
        raise ChggenError(f"{where}: {list(stages)} must be distinct names from {', '.join(STAGES)} "
                          "(e.g. guests,all)")
    return stages


@dataclass
class RelaxResult:
    """What one relaxation gave. `error` is None on success, else why there is no relaxed structure.

    Energies are the relaxer's energies per atom (eV/atom); `delta_e` = final - initial. `rmsd` (A) is the
    root-mean-square site displacement between the input and relaxed positions: fractional
    differences wrapped to the minimum image, the mean (a rigid shift) removed, expressed in the
    relaxed lattice. Sites keep their order through a relaxation, so no matching is needed and cell
    strain alone does not count as displacement.
    """

    structure: Structure | None
    initial_energy: float | None
    final_energy: float | None
    delta_e: float | None
    rmsd: float | None
    steps: int
    converged: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A relaxed structure exists and FIRE reached fmax."""
        return self.error is None and self.converged


def site_rmsd(before: Structure, after: Structure) -> float:
    """RMS site displacement (A) between two orderings of the same sites; see RelaxResult."""
    delta = after.frac_coords - before.frac_coords
    delta -= np.round(delta)
    delta -= delta.mean(axis=0)
    cartesian = after.lattice.get_cartesian_coords(delta)
    return float(np.sqrt((cartesian**2).sum(axis=1).mean()))


class Relaxer:
    """Holds one relaxer's calculator (loaded once) and relaxes structures with it.

    Args:
        fmax: force threshold (eV/A) of every stage.
        max_steps: FIRE steps of the whole relaxation, shared by its stages: each stage may take
            what the stages before it left, so staged and one-stage relaxations have the same budget
            and their step counts compare directly.
        min_distance: a structure with a pair closer than this (A) is set aside, not relaxed.
        relaxer: a relaxer name (`chgnet`, or any a plugin registers) or a LoadedRelaxer wrapping
            any ASE calculator (tests reuse one loaded calculator this way).
        device: where a named relaxer's calculator runs.
        keep_symmetry: ASE FixSymmetry keeps the group spglib finds at the start through every stage.
        stages: `STAGES` names in the order they run (default one "all" stage, the paper's).
    """

    def __init__(self, fmax: float = FMAX, max_steps: int = MAX_STEPS, min_distance: float = MIN_DISTANCE,
                 relaxer: str | LoadedRelaxer = DEFAULT_RELAXER, device: str = "cpu", keep_symmetry: bool = False,
                 stages: Sequence[str] = DEFAULT_STAGES) -> None:
        if fmax <= 0:
            raise ChggenError(f"relax fmax: {fmax} must be > 0 eV/A")
        if max_steps < 0:
            raise ChggenError(f"relax max_steps: {max_steps} must be >= 0")
        self.fmax = fmax
        self.max_steps = max_steps
        self.min_distance = min_distance
        self.keep_symmetry = keep_symmetry
        self.stages = check_stages(stages)
        self.loaded = relaxer if isinstance(relaxer, LoadedRelaxer) else load_relaxer(relaxer, device)
        self.calculator = self.loaded.calculator

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def version(self) -> str:
        return self.loaded.version

    def fields(self) -> dict[str, str]:
        """What every stored row records of the relaxation besides fmax and max_steps: relaxer,
        relaxer_version and relax_stages (comma-separated)."""
        return {"relaxer": self.name, "relaxer_version": self.version, "relax_stages": ",".join(self.stages)}

    def fingerprint(self) -> dict[str, str]:
        """The relaxation's part of a store's fingerprint (intercalation, ordering): "relax" is the
        text stores made before relaxers were plugins hold, with the relaxer and the stages added
        only when they are not the defaults (so such a store still resumes: runs/store.ADDED_KEYS),
        and "relaxer" names relaxer and version."""
        relaxer = "" if self.name == DEFAULT_RELAXER else f" relaxer {self.name}"
        stages = "" if self.stages == DEFAULT_STAGES else f" stages {','.join(self.stages)}"
        return {"relax": f"fmax {self.fmax} steps {self.max_steps}{relaxer}{stages}",
                "relaxer": f"{self.name} {self.version}"}

    def energy(self, structure: Structure) -> float:
        """The calculator's energy per atom (eV/atom) of `structure` as it is, without relaxing."""
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = self.calculator
        return float(atoms.get_potential_energy() / len(atoms))

    def relax(self, structure: Structure, fixed: Collection[int] = ()) -> RelaxResult:
        """Relax one structure; a close pair sets it aside and a calculator failure is recorded, not raised.

        Args:
            structure: the structure as generated.
            fixed: indices of the host sites, held in a "guests" stage (inpainted structures start
                with their host: structures/batch.py). Empty (no host, or every site fixed): the
                "guests" stage is skipped, so unconditional structures relax in one stage.

        Returns:
            The result; `steps` is the sum over the stages that ran.
        """
        pair = closest_pair(structure, self.min_distance)
        if pair is not None:
            distance, i, j = pair
            reason = (f"set aside: sites {i} ({structure[i].species_string}) and {j} "
                      f"({structure[j].species_string}) are {distance:.2f} A apart (< {self.min_distance} A)")
            return RelaxResult(None, None, None, None, None, 0, False, reason)
        fixed = sorted(set(fixed))
        if fixed and not 0 <= fixed[0] <= fixed[-1] < len(structure):
            raise ChggenError(f"fixed sites {fixed[0]}..{fixed[-1]} are not all sites of a {len(structure)}-site structure")
        try:
            return self._relax(structure, fixed)
        except Exception as error:  # any calculator/ASE failure on this structure; the batch goes on
            return RelaxResult(None, None, None, None, None, 0, False,
                               f"relaxation failed: {type(error).__name__}: {first_line(error)}")

    def relax_many(self, structures: Iterable[Structure], progress: bool = False) -> list[RelaxResult]:
        """Relax each structure in turn; failures are recorded per structure."""
        return [self.relax(s) for s in tqdm(list(structures), desc="relax", disable=not progress)]

    def _relax(self, structure: Structure, fixed: list[int]) -> RelaxResult:
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = AseAtomsAdaptor.get_atoms(structure)
        kept: list[Any] = []
        if self.keep_symmetry:  # the group spglib finds at the start is kept through every step
            from ase.constraints import FixSymmetry

            kept = [FixSymmetry(atoms, symprec=KEEP_SYMPREC)]
            atoms.set_constraint(kept[0])
        atoms.calc = self.calculator
        n = len(atoms)
        steps, converged = 0, False
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian")  # FixSymmetry
            initial = atoms.get_potential_energy() / n
            for stage in self.stages:
                if stage == GUESTS and not 0 < len(fixed) < n:
                    continue  # no host, or nothing but host: no guests to relax on their own
                done, converged = self._stage(atoms, stage, kept, fixed, self.max_steps - steps)
                steps += done
            final = atoms.get_potential_energy() / n
        if not (math.isfinite(initial) and math.isfinite(final)):
            raise FloatingPointError(f"non-finite {self.name} energy ({initial}, {final} eV/atom)")
        relaxed = Structure(Lattice(atoms.cell.array), structure.species,
                            atoms.get_scaled_positions(wrap=False), site_properties=structure.site_properties, to_unit_cell=True)
        return RelaxResult(relaxed, float(initial), float(final), float(final - initial),
                           site_rmsd(structure, relaxed), steps, converged)

    def _stage(self, atoms: Atoms, stage: str, kept: list[Any], fixed: list[int], budget: int) -> tuple[int, bool]:
        """Run one stage on `atoms` in place with at most `budget` FIRE steps: (steps, converged).

        "guests": positions of the sites not in `fixed`, the cell fixed; FixAtoms comes after any
        FixSymmetry, so the host is put back exactly after a symmetrized step. "all": positions and
        cell (FrechetCellFilter) under the `kept` constraints only.
        """
        from ase.constraints import FixAtoms
        from ase.filters import FrechetCellFilter
        from ase.optimize import FIRE

        if stage == GUESTS:
            atoms.set_constraint([*kept, FixAtoms(indices=fixed)])
            optimizer = FIRE(atoms, logfile=None)
        else:
            atoms.set_constraint(kept)
            optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
        converged = bool(optimizer.run(fmax=self.fmax, steps=budget))
        atoms.set_constraint(kept)
        return int(optimizer.nsteps), converged
