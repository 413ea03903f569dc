"""Every output table's columns, declared once: name, type, unit and meaning.

Why one declaration: the same column names reach users through CSV headers, printed tables, the
results store and the docs, and were explained nowhere. Writers pass their table here
(`write_table`), which refuses a column the table does not declare, writes the header with units
(`lowest_e_per_atom [eV/atom]`) and writes atomically; `read_table` gives rows back keyed by the bare
names. The docs' output reference is printed from this module (`python -m chggen_plugins.runs.schema`),
and a test keeps the committed page equal to it.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chggen_plugins.errors import ChggenError
from chggen_plugins.files import replacing
from chggen_plugins.runs.methods import MEANINGS

LIBRARY = "{library}"  # a column per symmetry library: spglib, moyopy (the config's [symmetry] libraries)


@dataclass(frozen=True)
class Column:
    """One column: `name` may hold `{library}`, spelled once per symmetry library."""

    name: str
    kind: str          # int, float, str, bool
    unit: str | None   # None: a count, a label or a ratio
    meaning: str

    def header(self, name: str) -> str:
        return f"{name} [{self.unit}]" if self.unit else name

    def matches(self, name: str) -> bool:
        if LIBRARY not in self.name:
            return name == self.name
        return re.fullmatch(re.escape(self.name).replace(re.escape(LIBRARY), r"[a-z]+"), name) is not None


@dataclass(frozen=True)
class Table:
    """A file (or store) and its columns, in the order they are written."""

    name: str
    written_by: str
    about: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        """The declared column for `name`; a ChggenError for an undeclared one (a writer's bug)."""
        for column in self.columns:
            if column.matches(name):
                return column
        raise ChggenError(f"{self.name}: column {name!r} is not declared in chggen_plugins/runs/schema.py")


def _c(name: str, kind: str, unit: str | None, meaning: str) -> Column:
    return Column(name, kind, unit, meaning)


EV_ATOM = "eV/atom"
STATUSES = {
    "relaxed": "FIRE on the relaxer (CHGNet by default) reached fmax: energy and symmetry are of a converged structure",
    "unconverged": "the FIRE step budget ran out: energy and symmetry are of the last structure",
    "error": "no relaxed structure: set aside (a pair closer than 1 A, or no symmetric placement) or "
             "CHGNet failed; `error` says why",
    "host": "a symmetrized framework that guests are inpainted into (campaign and sweep hosts)",
    "skipped": "a host that stayed P1/P-1 at every tolerance, or whose guests do not fit its cell",
    "none converged": "intercalation.csv only: samples were made at this x but none relaxed",
}

_COMPOSITION = _c("composition", "str", None, "the composition's name from the config")
_METHOD = _c("method", "str", None, "how the structure was made (docs: methods)")
_N_ATOMS = _c("n_atoms", "int", None, "atoms in the cell")
_UID = _c("uid", "str", None, "the row's key in results.db: composition/cell or host/method/seed/sample")
_STATUS = _c("status", "str", None, "relaxed, unconverged or error (see the status table)")
_E_PER_ATOM = _c("e_per_atom", "float", EV_ATOM, "energy of the relaxed structure by the run's relaxer (column relaxer; CHGNet by default)")
_SPACE_GROUP = _c("space_group", "str", None, "Hermann-Mauguin symbol of the relaxed structure (spglib)")
_SG_NUMBER = _c("sg_number", "int", None, "space-group number of the relaxed structure (spglib)")
_STEPS = _c("steps", "int", None, "FIRE steps the relaxation took (the sum over its stages)")
_RELAXER = _c("relaxer", "str", None, "the relaxer plugin that relaxed it (`--relaxer`, `[relax] relaxer`)")
_RELAXER_VERSION = _c("relaxer_version", "str", None, "the relaxer's code and weights, e.g. chgnet 0.4.2, model 0.3.0")

SUMMARY = Table("summary.csv", "chggen campaign; chggen benchmark symmetry (symmetry_benchmark.csv)",
                "One row per composition x method x cell size; every generated structure is in the denominator.", (
    _c("backend", "str", None, "the score model (benchmark only: first column)"),
    _c("weights", "str", None, "trained, UNTRAINED (random weights) or not declared"),
    _COMPOSITION, _METHOD,
    _c("orbits", "str", None, "inpainting-sym only: how each sample's Wyckoff orbits were chosen, \"uniform\" "
                              "(drawn) or \"model\" (nearest to a free inpainting pass); printed after the method"),
    _N_ATOMS,
    _c("generated", "int", None, "structures generated (printed: n)"),
    _c("converged", "int", None, "structures relaxed to fmax (printed: conv)"),
    _c("unconverged", "int", None, "structures that ran out of FIRE steps"),
    _c("errors", "int", None, "structures set aside or failed (printed: err)"),
    _c(f"symmetric_{LIBRARY}", "int", None, "relaxed structures above P-1 (space group > 2) by that library"),
    _c(f"rate_{LIBRARY}", "float", None, "symmetry success rate: symmetric / generated"),
    _c(f"rate_{LIBRARY}_low", "float", None, "lower end of the rate's 95% Wilson interval"),
    _c(f"rate_{LIBRARY}_high", "float", None, "upper end of the rate's 95% Wilson interval"),
    _c("symprec", "float", "A", "distance tolerance of the space-group search"),
    _c("angle_tolerance", "float", "deg", "angle tolerance of the space-group search"),
    _c("distinct", "int", None, "relaxed structures pymatgen's StructureMatcher (ltol 0.2, stol 0.3, angle 5 "
                                "deg) tells apart: a high rate of one structure repeated is not diversity "
                                "(printed: dist)"),
    _c("match_or_lower", "int", None, "XtalPaint's success rule: structures whose relaxed structure matches their "
                                      "reference (StructureMatcher, as for distinct) or whose energy is at most "
                                      "1 meV/atom above the reference's; a structure without a relaxed one fails, "
                                      "shown over with_reference (printed: m-o-l)"),
    _c("with_reference", "int", None, "structures that have a reference: for campaign inpainting, the relaxed "
                                      "unconditional structure their host was stripped from, or a host file's own "
                                      "structure, relaxed, when the file holds the guests (unconditional structures "
                                      "and samples of a host file without guests have none; empty: none has)"),
    _c("match_or_lower_rate", "float", None, "match_or_lower / with_reference"),
    _c("median_steps", "float", None, "median FIRE steps of the relaxed structures (printed: med steps)"),
    _c("lowest_e_per_atom", "float", EV_ATOM, "lowest energy of a relaxed structure, by the relaxer (printed: min E/at)"),
    _c("lowest_ed", "float", EV_ATOM, "lowest decomposition energy Ed of a converged one (printed: min Ed)"),
    _c("below_threshold", "int", None, "converged structures with Ed below `threshold` (printed: Ed<thr)"),
    _c("threshold", "float", EV_ATOM, "the config's [stability] threshold"),
    _c("hull", "str", None, "the convex hull Ed was measured against"),
    _c("skipped", "str", None, "benchmark only: why a backend was not run"),
))

SHORTLIST = Table("shortlist.csv", "chggen campaign",
                  "Converged generated structures with Ed below the threshold, lowest Ed first, one per "
                  "distinct structure; each with a CIF and r2SCAN inputs.", (
    _c("rank", "int", None, "1 = lowest Ed"), _UID, _COMPOSITION, _METHOD, _N_ATOMS, _E_PER_ATOM,
    _c("ed", "float", EV_ATOM, "decomposition energy: energy above (> 0) or below (< 0) the hull of the "
                               "other phases"),
    _SPACE_GROUP, _c("library", "str", None, "the symmetry library that named the group"),
    _c("cif", "str", None, "the structure's CIF, relative to the output folder"),
    _c("r2scan", "str", None, "folder of VASP r2SCAN inputs (INCAR, POSCAR, POTCAR.spec)"),
    _c("hull", "str", None, "the convex hull Ed was measured against"), _RELAXER, _RELAXER_VERSION,
))

INTERCALATION = Table("intercalation.csv", "chggen intercalate",
                      "One row per guest content x: the lowest-energy converged structure found there.", (
    _c("x", "float", None, "guests per host formula unit"),
    _c("count", "int", None, "guests in the cell"),
    _c("formula", "str", None, "reduced formula"),
    _c("energy", "float", "eV", "energy of the cell, by the relaxer"),
    _E_PER_ATOM,
    _c("formation_energy", "float", "eV", "per host formula unit, against the empty host and the guest's "
                                          "elemental reference"),
    _c("e_above_hull", "float", "eV", "per host formula unit, above the pseudo-binary hull"),
    _c("on_hull", "bool", None, "on the pseudo-binary convex hull"),
    _SPACE_GROUP, _SG_NUMBER, _STEPS,
    _c("status", "str", None, "relaxed, unconverged, or none converged"),
    _METHOD,
    _c("converged_samples", "int", None, "converged structures at this x"),
    _c("samples", "int", None, "structures generated at this x"),
    _UID,
    _c("cif", "str", None, "the structure's CIF, relative to the output folder"), _RELAXER, _RELAXER_VERSION,
))

VOLTAGE = Table("voltage.csv", "chggen intercalate",
                "One row per step between neighbouring stable contents (pymatgen's InsertionElectrode).", (
    _c("x_charge", "float", None, "guest content at the charged end of the step"),
    _c("x_discharge", "float", None, "guest content at the discharged end"),
    _c("formula_charge", "str", None, "reduced formula at the charged end"),
    _c("formula_discharge", "str", None, "reduced formula at the discharged end"),
    _c("voltage", "float", "V", "average voltage of the step, V = -dE_f / (dx z)"),
    _c("capacity", "float", "mAh/g", "gravimetric capacity of the step"),
    _c("cumulative_capacity", "float", "mAh/g", "capacity up to the end of the step"),
    _c("charge", "int", None, "z, the guest ion's charge (1 for Li, Na, K; 2 for Mg, Zn)"),
))

ORDERINGS = Table("orderings.csv", "chggen order",
                  "One row per candidate ordering, ranked ones first.", (
    _UID, _METHOD, _c("sample", "int", None, "sample index within the method"), _STATUS, _E_PER_ATOM,
    _SPACE_GROUP, _SG_NUMBER,
    _c("ewald_per_atom", "float", EV_ATOM, "Ewald energy with the oxidation states used (empty without them)"),
    _c("site_distance", "float", "A", "largest move of a guest onto its assigned site"),
    _STEPS,
    _c("rank", "int", None, "rank among the lowest distinct relaxed orderings (empty: not kept)"),
    _c("cif", "str", None, "the structure's CIF, relative to the output folder"),
    _c("error", "str", None, "why there is no relaxed structure"), _RELAXER, _RELAXER_VERSION,
))

METHODS = Table("methods.csv", "chggen order", "One row per ordering method.", (
    _METHOD,
    _c("candidates", "int", None, "orderings generated"),
    _c("relaxed", "int", None, "of them relaxed (converged or not)"),
    _c("lowest_e_per_atom", "float", EV_ATOM, "lowest energy, by the relaxer (printed: lowest E)"),
    _c("median_e_per_atom", "float", EV_ATOM, "median energy, by the relaxer (printed: median E)"),
    _c("distinct", "int", None, "relaxed structures StructureMatcher tells apart"),
    _c("symmetric", "int", None, "relaxed structures above P-1 (spglib)"),
    _c("symmetric_rate", "float", None, "symmetric / candidates"),
    _c("cpu_generate_s", "float", "s", "CPU seconds to generate one candidate"),
    _c("cpu_relax_s", "float", "s", "CPU seconds to relax one candidate"),
    _c("cpu_per_candidate_s", "float", "s", "CPU seconds per candidate, generation + relaxation (printed: CPU s/cand)"),
))

COORDINATION = Table("coordination.csv", "chggen campaign (with [coordination] training set)",
                     "Coordination numbers (CrystalNN) per group of structures and species.", (
    _c("group", "str", None, "training, or a method of the campaign"),
    _c("species", "str", None, "the element whose sites are counted"),
    _c("sites", "int", None, "sites counted"),
    _c("mean_cn", "float", None, "mean coordination number"),
    _c("std_cn", "float", None, "its standard deviation"),
    _c("distribution", "str", None, "coordination number:sites, space-separated"),
    _c("failed_structures", "int", None, "structures CrystalNN could not analyse (left out)"),
))

TABLES = (SUMMARY, SHORTLIST, COORDINATION, INTERCALATION, VOLTAGE, ORDERINGS, METHODS)


def write_table(rows: Sequence[dict[str, Any]], path: Path, table: Table) -> Path:
    """Write `rows` as CSV with `table`'s headers (units in brackets), atomically.

    Args:
        rows: one dict per row; a key missing from a row is written empty.
        path: the CSV file; written to a temporary name beside it, then renamed over it.
        table: the declared table; a key it does not declare is refused before anything is written.

    Returns:
        `path`.
    """
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns = [table.column(name) for name in names]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if rows:
        writer.writerow([column.header(name) for column, name in zip(columns, names)])
        writer.writerows([["" if row.get(name) is None else row[name] for name in names] for row in rows])
    with replacing(path) as temporary:
        temporary.write_text(buffer.getvalue())
    return path


def bare_name(header: str) -> str:
    """'lowest_e_per_atom [eV/atom]' -> 'lowest_e_per_atom'."""
    return header.split(" [", 1)[0]


def read_table(path: Path) -> list[dict[str, str]]:
    """A CSV written by `write_table`, rows keyed by the bare column names (values as text)."""
    with open(path, newline="") as handle:
        return [{bare_name(key): value for key, value in row.items()} for row in csv.DictReader(handle)]


def legend(table: Table, printed: Sequence[str]) -> str:
    """One line saying what the printed abbreviations of `table` mean, from the declared meanings."""
    parts = []
    for column in table.columns:
        match = re.search(r"\(printed: ([^)]+)\)", column.meaning)
        if match and match.group(1) in printed:
            meaning = column.meaning[:match.start()].strip()
            parts.append(f"{match.group(1)} = {meaning}" + (f" [{column.unit}]" if column.unit else ""))
    return "; ".join(parts)


def markdown() -> str:
    """The docs' output reference: every table's columns with type, unit and meaning, and the statuses."""
    lines = ["# Output reference", "",
             "Generated by `python -m chggen_plugins.runs.schema` from the declarations in",
             "`chggen_plugins/runs/schema.py`; CSV headers carry the unit in brackets "
             "(`e_per_atom [eV/atom]`). `{library}` stands for each symmetry library of the run "
             "(spglib, moyopy). Energies are the relaxer's (CHGNet unless `relaxer` names another; every",
             "row of results.db records `relaxer`, `relaxer_version` and `relax_stages` too).", ""]
    for table in TABLES:
        lines += [f"## {table.name}", "", f"Written by: {table.written_by}. {table.about}", "",
                  "| column | type | unit | meaning |", "|---|---|---|---|"]
        lines += [f"| `{c.name}` | {c.kind} | {c.unit or ''} | {c.meaning} |" for c in table.columns]
        lines.append("")
    lines += ["## Status values", "", "| status | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in STATUSES.items()]
    lines += ["", "## Methods", "", "The `method` of every row, in every command and store.", "",
              "| method | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in MEANINGS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
