"""CHGNet relaxation of pymatgen Structures (cell and positions), one structure at a time.

ASE FIRE on a FrechetCellFilter with CHGNetCalculator, fmax 0.1 eV/A, up to 500 steps: the same
calculation as CHGNet's own `StructOptimizer` (bit-identical), without its trajectory bookkeeping.
Sequential on purpose: batching CHGNet did not pay on CPU (measured when the backends were compared).

Threads decide the speed. `OPENBLAS_NUM_THREADS=1` must be in the environment before numpy is
first imported (the cell filter's 3x3 algebra on several OpenBLAS threads is ~6x slower): importing
`chggen_plugins` first sets it by default, otherwise it is the caller's job. Torch threads are the
caller's choice (`chggen --threads`, default 1: other processes share the cores).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pymatgen.core import Lattice, Structure
from tqdm import tqdm

from chggen_plugins.errors import ChggenError, first_line
from chggen_plugins.structures.io import MIN_DISTANCE, closest_pair

if TYPE_CHECKING:
    from chgnet.model import CHGNet

# CHGNet (and torch with it), ASE's optimizer and pymatgen's ASE adaptor are imported where a
# relaxation needs them: the constants here are used by `chggen --help` and by the
# host checks, which must not pay seconds of imports for them.

FMAX = 0.1  # eV/A, as in the paper
MAX_STEPS = 500
KEEP_SYMPREC = 0.01  # A: the tolerance at which `keep_symmetry` reads the group it keeps


@dataclass
class RelaxResult:
    """What one relaxation gave. `error` is None on success, else why there is no relaxed structure.

    Energies are CHGNet energies per atom (eV/atom); `delta_e` = final - initial. `rmsd` (A) is the
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
    """Holds one CHGNet model (loaded once, offline from the wheel) and relaxes structures with it."""

    def __init__(self, fmax: float = FMAX, max_steps: int = MAX_STEPS,
                 min_distance: float = MIN_DISTANCE, model: CHGNet | None = None,
                 device: str = "cpu", keep_symmetry: bool = False) -> None:
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        if fmax <= 0:
            raise ChggenError(f"relax fmax: {fmax} must be > 0 eV/A")
        if max_steps < 0:
            raise ChggenError(f"relax max_steps: {max_steps} must be >= 0")
        self.fmax = fmax
        self.max_steps = max_steps
        self.min_distance = min_distance
        self.keep_symmetry = keep_symmetry
        with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device and version
            self.model = model if model is not None else CHGNet.load(verbose=False, use_device=device)
            self.calculator = CHGNetCalculator(model=self.model, use_device=device)

    def relax(self, structure: Structure) -> RelaxResult:
        """Relax one structure; a close pair sets it aside and a CHGNet failure is recorded, not raised."""
        pair = closest_pair(structure, self.min_distance)
        if pair is not None:
            distance, i, j = pair
            reason = (f"set aside: sites {i} ({structure[i].species_string}) and {j} "
                      f"({structure[j].species_string}) are {distance:.2f} A apart (< {self.min_distance} A)")
            return RelaxResult(None, None, None, None, None, 0, False, reason)
        try:
            return self._relax(structure)
        except Exception as error:  # any CHGNet/ASE failure on this structure; the batch goes on
            return RelaxResult(None, None, None, None, None, 0, False,
                               f"relaxation failed: {type(error).__name__}: {first_line(error)}")

    def relax_many(self, structures: Iterable[Structure], progress: bool = False) -> list[RelaxResult]:
        """Relax each structure in turn; failures are recorded per structure."""
        return [self.relax(s) for s in tqdm(list(structures), desc="relax", disable=not progress)]

    def _relax(self, structure: Structure) -> RelaxResult:
        from ase.filters import FrechetCellFilter
        from ase.optimize import FIRE
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = AseAtomsAdaptor.get_atoms(structure)
        if self.keep_symmetry:  # the group spglib finds at the start is kept through every step
            from ase.constraints import FixSymmetry

            atoms.set_constraint(FixSymmetry(atoms, symprec=KEEP_SYMPREC))
        atoms.calc = self.calculator
        n = len(atoms)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="logm result may be inaccurate")
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian")  # FixSymmetry
            initial = atoms.get_potential_energy() / n
            optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
            converged = bool(optimizer.run(fmax=self.fmax, steps=self.max_steps))
            final = atoms.get_potential_energy() / n
        if not (math.isfinite(initial) and math.isfinite(final)):
            raise FloatingPointError(f"non-finite CHGNet energy ({initial}, {final} eV/atom)")
        relaxed = Structure(Lattice(atoms.cell.array), structure.species,
                            atoms.get_scaled_positions(wrap=False), site_properties=structure.site_properties, to_unit_cell=True)
        return RelaxResult(relaxed, float(initial), float(final), float(final - initial),
                           site_rmsd(structure, relaxed), int(optimizer.nsteps), converged)
