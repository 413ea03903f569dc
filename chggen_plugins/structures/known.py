"""Three battery cathodes built from published diffraction refinements: end-to-end checks of
inpainting on real hosts (strip the Li, inpaint it back, relax, compare), not training data.

Each is built with pymatgen's `Structure.from_spacegroup` from the paper's space group, cell and
asymmetric unit, so the structure is the refinement itself and not a database copy of it:

- LiCoO2, R-3m (No. 166), hexagonal axes: J. Akimoto, Y. Gotoh, Y. Oosawa, "Synthesis and structure
  refinement of LiCoO2 single crystals", J. Solid State Chem. 141, 298-302 (1998). Li 3a, Co 3b,
  O 6c (0, 0, z).
- LiFePO4 (triphylite), Pnma (No. 62): V. A. Streltsov, E. L. Belokoneva, V. G. Tsirelson,
  N. K. Hansen, "Multipole analysis of the electron density in triphylite, LiFePO4, using X-ray
  diffraction data", Acta Cryst. B49, 147-153 (1993). Li 4a, Fe, P, O1, O2 4c, O3 8d.
- LiMn2O4 (cubic spinel, room temperature), Fd-3m (No. 227) origin choice 2: J. Akimoto,
  Y. Takahashi, Y. Gotoh, S. Mizuta, "Single crystal X-ray diffraction study of the spinel-type
  LiMn2O4", Chem. Mater. 12, 3246-3248 (2000). Li 8a, Mn 16d, O 32e (x, x, x).

The numbers were transcribed into this module from those papers' tables without the originals at
hand in the session that wrote it; tests/test_known_structures.py checks what does not depend on
transcription (space group, formula, the bond lengths a chemist expects: Co-O 1.92 A, P-O 1.52-1.56
A, Mn-O 1.96 A), so a wrong digit in a cell edge shows there, a wrong decimal in a coordinate may not.
Each comes in the smallest cell that holds it, as the benchmark inpaints it: LiCoO2 in its
hexagonal cell (12 atoms, 3 Li: the rhombohedral primitive cell has one Li, which any translation
places), LiFePO4 in its 28-atom cell (primitive already), LiMn2O4 in its 14-atom primitive cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymatgen.core import Lattice, Structure


@dataclass(frozen=True)
class KnownStructure:
    """A refinement as published: the space group, the cell and the asymmetric unit.

    Args:
        formula: reduced formula, e.g. "LiCoO2" (also its key in KNOWN).
        space_group: Hermann-Mauguin symbol pymatgen reads, with the origin choice where the
            group has two ("Fd-3m:2").
        abc: cell edges a, b, c in A.
        angles: alpha, beta, gamma in degrees.
        sites: (element, fractional coordinates) of each Wyckoff position in the paper's table.
        reference: the paper, for the docs and the benchmark's results.
        primitive: reduce the conventional cell to the primitive one (the spinel's 56 atoms to 14).
    """

    formula: str
    space_group: str
    abc: tuple[float, float, float]
    angles: tuple[float, float, float]
    sites: tuple[tuple[str, tuple[float, float, float]], ...]
    reference: str
    primitive: bool = False

    def structure(self) -> Structure:
        """The crystal in the smallest cell the benchmark uses (see the module docstring).

        Returns:
            A new Structure each call (callers strip and decorate it).
        """
        lattice = Lattice.from_parameters(*self.abc, *self.angles)
        species = [element for element, _ in self.sites]
        coords = [list(frac) for _, frac in self.sites]
        built = Structure.from_spacegroup(self.space_group, lattice, species, coords)
        return built.get_primitive_structure() if self.primitive else built


KNOWN: dict[str, KnownStructure] = {
    known.formula: known for known in (
        KnownStructure(
            "LiCoO2", "R-3m", (2.8156, 2.8156, 14.0542), (90.0, 90.0, 120.0),
            (("Li", (0.0, 0.0, 0.0)), ("Co", (0.0, 0.0, 0.5)), ("O", (0.0, 0.0, 0.23951))),
            "J. Akimoto, Y. Gotoh, Y. Oosawa, J. Solid State Chem. 141, 298 (1998)"),
        KnownStructure(
            "LiFePO4", "Pnma", (10.332, 6.010, 4.692), (90.0, 90.0, 90.0),
            (("Li", (0.0, 0.0, 0.0)), ("Fe", (0.28222, 0.25, 0.97472)), ("P", (0.09486, 0.25, 0.41820)),
             ("O", (0.09678, 0.25, 0.74279)), ("O", (0.45710, 0.25, 0.20602)),
             ("O", (0.16558, 0.04646, 0.28478))),
            "V. A. Streltsov, E. L. Belokoneva, V. G. Tsirelson, N. K. Hansen, Acta Cryst. B49, 147 (1993)"),
        KnownStructure(
            "LiMn2O4", "Fd-3m:2", (8.2483, 8.2483, 8.2483), (90.0, 90.0, 90.0),
            (("Li", (0.125, 0.125, 0.125)), ("Mn", (0.5, 0.5, 0.5)), ("O", (0.26311, 0.26311, 0.26311))),
            "J. Akimoto, Y. Takahashi, Y. Gotoh, S. Mizuta, Chem. Mater. 12, 3246 (2000)", primitive=True),
    )
}
