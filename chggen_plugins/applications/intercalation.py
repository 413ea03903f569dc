"""Intercalation: sweep the guest content of one fixed host, then its hull and voltage profile.

Given a host (a cathode or anode framework) and a guest (Li, Na, Mg, Zn, ...), where do n guests go,
and which n are stable? For every requested count n in the (super)cell, K samples are inpainted into
the fixed host (every count x K samples in one sampler batch: one score call per step), then host
and guests are relaxed together with CHGNet and measured exactly as a campaign does
(`workflow.run_shard` -> `evaluate`), each row written to OUT/results.db the moment it is finished
(`runs/store.py`: a rerun resumes by uid and refuses changed settings). The empty host and the guest's
elemental solid (the lowest of pymatgen's AFLOW elemental prototypes after relaxation, or a file)
are relaxed with the same CHGNet. `evaluation/voltage.py` turns the lowest energy per count into the
pseudo-binary Host - Guest_x: formation energy per host formula unit, lower hull, stable x and the
voltage steps through pymatgen's InsertionElectrode. Everything reported comes from the store, so a
resumed sweep reports all of it:

    intercalation.csv   x, count, energy, formation energy, on hull, space group, FIRE steps, uid
    voltage.csv         the voltage steps between neighbouring stable x, with capacities
    hull.png            formation energy vs x (every relaxed sample, the lowest per x, the hull)
    voltage.png         the step curve vs x and vs capacity
    structures/*.cif    the host, the lowest structure per count and the guest reference, relaxed
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from pymatgen.core import Element, Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry
from pymatgen.io.cif import CifWriter
from tqdm import tqdm

from chggen_plugins.api import ModelLike, sample_tasks
from chggen_plugins.contract.registry import DEFAULT_RELAXER
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import DEFAULT_STAGES, FMAX, MAX_STEPS, Relaxer
from chggen_plugins.evaluation.stability import reference_candidates
from chggen_plugins.evaluation.voltage import Intercalation, guest_charge, host_units, pseudo_binary
from chggen_plugins.runs.config import DEFAULT_SYMMETRY
from chggen_plugins.runs.methods import HOST, INPAINTING, INPAINTING_SYM, REFERENCE, SWEEP
from chggen_plugins.runs.figures import REFERENCE_COLOUR, empty_note, new_figure, save_figure, style
from chggen_plugins.runs.schema import INTERCALATION, VOLTAGE, write_table
from chggen_plugins.runs.setup import announce_seed, claim_store, model_run, resolve_seed
from chggen_plugins.runs.shards import Shard, run_shard
from chggen_plugins.runs.store import ResultStore, StoredResult
from chggen_plugins.sampling.inpaint import SamplerSettings
from chggen_plugins.structures.batch import InpaintTask
from chggen_plugins.structures.cells import parse_supercell
from chggen_plugins.structures.host import strip_guests
from chggen_plugins.structures.io import StructureLike, to_structure
from chggen_plugins.structures.room import FILLING_LIMIT, guest_room
from chggen_plugins.structures.wyckoff import NoSymmetricPlacement

REFERENCE_PROTOTYPES = 2  # elemental prototypes relaxed for the guest reference (lowest single energies)
REFERENCE_MAX_ATOMS = 4


def parse_counts(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] (--counts)."""
    counts = []
    for item in text.split(","):
        try:
            counts.append(int(item))
        except ValueError:
            raise ChggenError(f"--counts {text!r}: {item.strip()!r} is not an integer; write e.g. 1,2,3,4") from None
    return counts


def _check_counts(counts: Sequence[int], host: Structure, guest: str, cell: str) -> list[int]:
    if not counts:
        raise ChggenError("counts: give at least one guest count (--counts 1,2,3 or --max N)")
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ChggenError(f"counts: {count!r} is not a positive integer number of guests per cell")
    if len(set(counts)) != len(counts):
        raise ChggenError(f"counts: {', '.join(map(str, counts))} repeats a count")
    room = guest_room(host, guest)
    if max(counts) > room:
        raise ChggenError(f"counts: {max(counts)} {guest} do not fit the {host.composition.formula} cell "
                          f"({cell}, {host.volume:.1f} A^3): it holds at most {room} {guest} (atomic-radius "
                          f"spheres filling at most {FILLING_LIMIT} times the cell, as real crystals do); use "
                          "fewer guests or a larger --supercell")
    return sorted(counts)


def prepare_host(host: StructureLike, guest: str, supercell: str | Sequence[int] = (1, 1, 1),
                 strip: bool = False) -> tuple[Structure, tuple[int, int, int]]:
    """The host the sweep fills: read, checked to be free of the guest (or stripped of it), made a supercell."""
    structure, _ = to_structure(host)
    if not Element.is_valid_symbol(guest):
        raise ChggenError(f"guest {guest!r} is not an element symbol")
    cells = parse_supercell(supercell)
    present = structure.composition.get_el_amt_dict().get(guest, 0)
    if present and not strip:
        raise ChggenError(f"host {structure.composition.formula} already contains {int(present)} {guest}; "
                          f"pass --strip (strip=True) to remove them and sweep {guest} into what is left")
    if present:
        structure = strip_guests(structure, guest)[0]
    if len(structure) == 0:
        raise ChggenError(f"host: nothing is left once {guest} is removed")
    return structure.make_supercell(cells, in_place=False), cells


def _digest(structure: Structure) -> str:
    cell = [structure.lattice.matrix.round(6).tolist(), [s.specie.symbol for s in structure],
            structure.frac_coords.round(6).tolist()]
    return hashlib.sha256(json.dumps(cell).encode()).hexdigest()[:16]


def _task(host: Structure, guest: str, count: int, samples: int, method: str) -> InpaintTask | None:
    """The one place a sweep's inpainting task is made; None for a symmetric count that no Wyckoff
    orbit combination of the host's group or its subgroups gives (its free samples still run)."""
    label = f"{guest}{count} into {host.composition.formula}"
    try:
        return InpaintTask(host, {guest: count}, samples, label=label, symmetric=method == INPAINTING_SYM)
    except NoSymmetricPlacement as error:
        _log(f"{label}: no symmetric samples ({error})")
        return None


@dataclass
class IntercalationResult:
    """What a finished sweep left: its store, the pseudo-binary, and the files written."""

    store: ResultStore
    thermo: Intercalation
    files: dict[str, Path] = field(default_factory=dict)


class Sweep:
    """One guest-content sweep: inputs checked and the store claimed on construction (every bad input
    is refused before anything slow), the structures made and stored by `run`. Arguments as for
    `intercalate`."""

    def __init__(self, host: StructureLike, guest: str, counts: Sequence[int], model: ModelLike,
                 out: str | Path, samples: int = 4, supercell: str | Sequence[int] = (1, 1, 1), *,
                 model_source: str | None = None, levels: int | None = None, seed: int | None = None,
                 jump_length: int = 10, resamples: int | None = None, sampler: str = "pc", steps: int | None = None,
                 churn: float = 0.0, fmax: float = FMAX, max_steps: int = MAX_STEPS,
                 reference: StructureLike | None = None, strip: bool = False, symmetric: bool = False,
                 relaxer: str | Relaxer = DEFAULT_RELAXER, stages: Sequence[str] = DEFAULT_STAGES,
                 device: str = "cpu", progress: bool = True,
                 on_result: Callable[[StoredResult], None] | None = None) -> None:
        self.host, cells = prepare_host(host, guest, supercell, strip)
        self.guest, self.cell = guest, "x".join(map(str, cells))
        self.counts = _check_counts(list(counts), self.host, guest, self.cell)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ChggenError(f"samples: {samples!r} must be a positive integer")
        guest_charge(guest)  # a guest without a positive ion has no insertion voltage: refuse it now
        seed, drawn = resolve_seed(seed, Path(out))
        self.samples, self.seed, self.device = samples, seed, device
        self.progress, self.on_result = progress, on_result
        self.methods = SWEEP if symmetric else (INPAINTING,)
        tasks = {(n, method): _task(self.host, guest, n, samples, method)
                 for n in self.counts for method in self.methods}
        self.tasks = {key: task for key, task in tasks.items() if task is not None}
        self.run_model = model_run(model, model_source, levels, device,
                                   SamplerSettings(jump_length, resamples, sampler, steps, churn),
                                   list(self.tasks.values()))
        self.model, self.settings = self.run_model.model, self.run_model.settings
        self.reference = to_structure(reference, "reference")[0] if reference is not None else None
        if self.reference is not None and self.reference.composition.reduced_formula != guest:
            raise ChggenError(f"reference: {self.reference.composition.formula} is not elemental {guest}")
        self.relaxer = relaxer if isinstance(relaxer, Relaxer) else Relaxer(fmax, max_steps, relaxer=relaxer,
                                                                            stages=stages)
        self.fingerprint = {
            "kind": "intercalation", "host": _digest(self.host), "guest": guest, "supercell": self.cell,
            "counts": ",".join(map(str, self.counts)), "samples": str(samples), "methods": ",".join(self.methods),
            **self.run_model.fingerprint(), "seed": str(seed),
            **self.relaxer.fingerprint(),
            "reference": "aflow-prototypes" if self.reference is None else _digest(self.reference)}
        self.common = {"guest": guest, "host_formula": self.host.composition.reduced_formula, "supercell": self.cell,
                       **self.run_model.fields(), "seed": seed, "relax_fmax": self.relaxer.fmax,
                       "relax_max_steps": self.relaxer.max_steps}
        self.out = Path(out)
        self.store = claim_store(self.out, self.fingerprint, "an intercalation sweep")
        announce_seed(seed, drawn)

    def _shard(self, key: str, base: Structure, jobs: list[tuple[str, dict[str, Any]]], method: str,
               count: int = 0) -> Shard:
        guests = {self.guest: count} if count else {}
        return Shard(key, base, guests, tuple(jobs), {**self.common, "method": method}, self.seed, self.settings,
                     self.device, None, DEFAULT_SYMMETRY)

    def _store(self, shard: Shard, structures: Sequence[Structure]) -> None:
        """Relax, measure and store the shard's missing rows, exactly as a campaign does."""
        run_shard(shard, self.store, None, self.relaxer, on_write=self.on_result, structures=structures)

    def references(self) -> None:
        """The empty host and the guest's elemental solid, relaxed with the same CHGNet."""
        self._store(self._shard(HOST, self.host, [(HOST, {"count": 0, "x": 0.0})], HOST), [self.host])
        if len(list(self.store.results(method=REFERENCE))) >= (1 if self.reference is not None else REFERENCE_PROTOTYPES):
            return
        if self.reference is not None:
            candidates = [("file", self.reference)]
        else:
            _log(f"{self.guest} reference: scoring the AFLOW elemental prototypes with CHGNet")
            candidates = reference_candidates([self.guest], self.relaxer, REFERENCE_MAX_ATOMS, REFERENCE_PROTOTYPES)
        for label, candidate in candidates:
            uid = f"{REFERENCE}/{self.guest}/{label}"
            self._store(self._shard(uid, candidate, [(uid, {"source": label})], REFERENCE), [candidate])

    def inpainting(self) -> None:
        """Every count x method x sample in one sampler batch (redone whole on a resume, so every
        structure is the same), then relaxed count by count."""
        units = host_units(self.host.composition, self.host.composition, self.guest, "host")
        shards = {(n, method): self._shard(f"{self.guest}{n}/{method}", self.host,
                                           [(f"{self.guest}{n}/{method}/{k}", {"count": n, "x": n / units, "sample": k})
                                            for k in range(self.samples)], method, n)
                  for n, method in self.tasks}
        if all(uid in self.store for shard in shards.values() for uid in shard.uids):
            return
        made = sample_tasks(list(self.tasks.values()), self.model, self.seed, self.settings, self.device, self.progress)
        generated = dict(zip(self.tasks, made))
        for n in tqdm(self.counts, desc=f"relax {self.guest} counts", unit="count", disable=not self.progress):
            for method in self.methods:
                if (n, method) in shards:
                    self._store(shards[n, method], generated[n, method])

    def run(self, echo: bool = True) -> IntercalationResult:
        """Make and store what is missing, then the pseudo-binary and every output file from the store."""
        with self.store.writing():  # one writer per output: a second sweep on it is refused in one line
            self.references()
            self.inpainting()
        thermo = _thermodynamics(self.store, self.host, self.guest)
        files = write_outputs(thermo, self.store, self.out)
        if echo:
            print(summary_text(thermo, self.store))
            print(f"results: {self.store.path}; tables, plots and structures in {self.out}")
        return IntercalationResult(self.store, thermo, files)


def intercalate(host: StructureLike, guest: str, counts: Sequence[int], model: ModelLike, out: str | Path,
                samples: int = 4, supercell: str | Sequence[int] = (1, 1, 1), *, echo: bool = True,
                **options: Any) -> IntercalationResult:
    """Sweep `counts` guests per (super)cell into `host`: inpaint, relax, store (resumable) and
    report the pseudo-binary hull and the voltage profile in `out`.

    Why one call: intercalation is the practical use of inpainting into a known host; the sweep
    shares the campaign's store, resume and relaxation, so a killed sweep reruns where it stopped.

    Args:
        host: the guest-free host (a Structure, Atoms or file); with `strip=True` its own guests
            are taken out first.
        guest: the guest element, e.g. "Li".
        counts: guests per (super)cell to sweep, e.g. [1, 2, 3, 4]; each must fit the cell
            (`structures.room`).
        model: a registered model name (with `model_source`) or a ScoreModel.
        out: the output folder (new, or one this sweep wrote before).
        samples: inpainted structures per count.
        supercell: "2x1x1" or (2, 1, 1).
        echo: print the tables and where the files are.
        **options: `model_source`, `levels`, `seed` (None: drawn, or the stored one on resume),
            `jump_length`, `resamples`, `sampler`, `steps`, `churn` (as for `inpaint`), `fmax`,
            `max_steps`, `relaxer` (a relaxer name, default chgnet,
            or a Relaxer, which replaces fmax, max_steps and stages), `stages` (e.g. ("guests", "all")),
            `reference` (the
            guest's elemental structure; default: the lowest relaxed AFLOW elemental prototype),
            `strip`, `symmetric` (symmetric samples beside the free ones), `device`, `progress`,
            `on_result` (called after every stored row).

    Returns:
        An IntercalationResult: the store, the pseudo-binary (hull and voltage steps) and the
        files written (intercalation.csv, voltage.csv, hull.png, voltage.png, structures/).

    Raises:
        ChggenError: a bad host, counts that do not fit, an output of another run, in one line.

    Example:
        ```python
        import chggen_plugins as cg
        result = cg.intercalate("examples/tis2_host.cif", "Li", [1, 2], "native", "li_tis2", samples=2)
        [round(step.voltage, 2) for step in result.thermo.steps]   # V vs Li metal
        ```
    """
    return Sweep(host, guest, counts, model, out, samples, supercell, **options).run(echo)


def _log(message: str) -> None:
    tqdm.write(f"chggen: {message}", file=sys.stderr)


def _entry(row: StoredResult) -> ComputedStructureEntry:
    return ComputedStructureEntry(row.structure, row.get("e_per_atom") * len(row.structure), entry_id=row.uid)


def _thermodynamics(store: ResultStore, host: Structure, guest: str) -> Intercalation:
    """The pseudo-binary from stored rows: the host and the lowest guest reference (relaxed, or
    unconverged with a warning), and every converged sample."""
    usable = ("relaxed", "unconverged")
    host_row = next(store.results(method=HOST))
    if host_row.get("status") not in usable:
        raise ChggenError(f"host {host.composition.formula}: CHGNet could not relax it ({host_row.get('error')})")
    references = [r for r in store.results(method=REFERENCE) if r.get("status") in usable]
    if not references:
        raise ChggenError(f"{guest} reference: no elemental structure could be relaxed with CHGNet")
    reference = min(references, key=lambda r: r.get("e_per_atom"))
    for row in (host_row, reference):
        if row.get("status") == "unconverged":
            _log(f"{row.uid}: FIRE did not reach fmax in {row.get('steps')} steps; its energy is used as it is")
    states = [_entry(r) for method in SWEEP for r in store.results(method=method, status="relaxed")]
    return pseudo_binary(_entry(host_row), _entry(reference), states)


def _rows(thermo: Intercalation, store: ResultStore) -> list[dict[str, Any]]:
    """One intercalation.csv row per content: the lowest converged structure found there, or a row
    saying none converged (its counts stay visible)."""
    by_uid = {r.uid: r for r in store.results()}
    made: dict[float, list[StoredResult]] = {0.0: [by_uid[HOST]]}
    for row in by_uid.values():
        if row.get("method") in SWEEP:
            made.setdefault(round(row.get("x"), 10), []).append(row)
    points = {round(p.x, 10): p for p in thermo.points}
    rows = []
    for x, generated in sorted(made.items()):
        point = points.get(x)
        row = by_uid[point.entry.entry_id] if point else generated[0]
        line = {"x": round(x, 6), "count": row.get("count"), "formula": None, "energy": None, "e_per_atom": None,
                "formation_energy": None, "e_above_hull": None, "on_hull": False, "space_group": None,
                "sg_number": None, "steps": None, "status": "none converged", "method": None,
                "converged_samples": 0, "samples": len(generated), "uid": None, "relaxer": None,
                "relaxer_version": None}
        if point:
            line.update(formula=point.entry.composition.reduced_formula, energy=round(point.entry.energy, 6),
                        e_per_atom=round(row.get("e_per_atom"), 6), formation_energy=round(point.formation_energy, 6),
                        e_above_hull=round(point.e_above_hull, 6), on_hull=point.on_hull,
                        space_group=row.get("sg_spglib_symbol"), sg_number=row.get("sg_spglib"),
                        steps=row.get("steps"), status=row.get("status"), method=row.get("method"),
                        converged_samples=point.candidates, uid=row.uid, relaxer=row.get("relaxer"),
                        relaxer_version=row.get("relaxer_version"))
        rows.append(line)
    return rows


def _cif_name(row: dict[str, Any]) -> str:
    symbol = str(row["space_group"] or "P1").replace("/", "_")
    return f"x{row['x']:.4f}_{row['formula']}_{symbol}.cif"


def write_outputs(thermo: Intercalation, store: ResultStore, out: Path) -> dict[str, Path]:
    """intercalation.csv, voltage.csv, hull.png, voltage.png and structures/*.cif from the pseudo-binary."""
    rows = _rows(thermo, store)
    structures = out / "structures"
    structures.mkdir(parents=True, exist_ok=True)
    points = {round(p.x, 6): p for p in thermo.points}
    for row in rows:
        if row["uid"] is not None:
            row["cif"] = f"structures/{_cif_name(row)}"
            CifWriter(points[row["x"]].entry.structure).write_file(out / row["cif"])
    CifWriter(thermo.reference.structure).write_file(structures / f"reference_{thermo.guest}.cif")
    steps = [{"x_charge": round(s.x_charge, 6), "x_discharge": round(s.x_discharge, 6),
              "formula_charge": s.formula_charge, "formula_discharge": s.formula_discharge,
              "voltage": round(s.voltage, 6), "capacity": round(s.capacity, 3),
              "cumulative_capacity": round(s.cumulative_capacity, 3), "charge": thermo.charge} for s in thermo.steps]
    return {"store": store.path, "table": write_table(rows, out / "intercalation.csv", INTERCALATION),
            "voltage": write_table(steps, out / "voltage.csv", VOLTAGE),
            "hull_plot": save_figure(plot_hull(thermo), out / "hull.png"),
            "voltage_plot": save_figure(plot_voltage(thermo), out / "voltage.png"), "structures": structures}


def plot_hull(thermo: Intercalation) -> Figure:
    """Formation energy per host formula unit vs x: every converged sample, the lowest per x, the hull.

    The layers are drawn so none hides another: the hull line and its open squares at the bottom,
    open rings on the lowest sample per x, and every sample as a small dot on top. Each hull phase
    is labelled towards the inside of the axes, so no label leaves the canvas.
    """
    figure, (axes,) = new_figure(6.5, 4)
    hull, lowest, samples = style(3)["color"], style(0)["color"], "0.15"
    stable = thermo.stable
    axes.axhline(0.0, color=REFERENCE_COLOUR, linewidth=0.5, zorder=1)
    axes.plot([p.x for p in stable], [p.formation_energy for p in stable], "-s", color=hull, markersize=10,
              markerfacecolor="none", label="hull", zorder=2)
    axes.scatter([p.x for p in thermo.points], [p.formation_energy for p in thermo.points], s=60,
                 facecolors="none", edgecolors=lowest, linewidths=1.5, label="lowest per x", zorder=3)
    if thermo.samples:
        xs, energies, _ = zip(*thermo.samples)
        axes.scatter(xs, energies, s=10, color=samples, label=f"relaxed samples ({len(thermo.samples)})", zorder=4)
    axes.margins(x=0.08, y=0.15)
    middle = (min(p.x for p in thermo.points) + max(p.x for p in thermo.points)) / 2 if thermo.points else 0.0
    for point in stable:
        right = point.x > middle  # labels point inwards
        axes.annotate(point.entry.composition.reduced_formula, (point.x, point.formation_energy), fontsize=7,
                      textcoords="offset points", xytext=(-6 if right else 6, -8), ha="right" if right else "left",
                      va="top", zorder=5)
    axes.set_xlabel(f"x in {thermo.guest}$_x${thermo.host} (guests per {thermo.host})")
    axes.set_ylabel(f"formation energy (eV per {thermo.host})")
    axes.set_title(f"{thermo.host} - {thermo.guest}: CHGNet energies against the host and "
                   f"{thermo.guest} metal", fontsize=9)
    axes.legend(fontsize=8)
    return figure


def plot_voltage(thermo: Intercalation) -> Figure:
    """The voltage step curve vs x and vs capacity (pymatgen's normalisation)."""
    figure, (by_x, by_capacity) = new_figure(9, 3.8, 2)
    if thermo.steps:
        volts = [s.voltage for s in thermo.steps]
        xs = [thermo.steps[0].x_charge] + [s.x_discharge for s in thermo.steps]
        capacities = [0.0] + [s.cumulative_capacity for s in thermo.steps]
        for axes, edges in ((by_x, xs), (by_capacity, capacities)):
            axes.stairs(volts, edges, baseline=None, color=style(3)["color"], linewidth=1.5)
            axes.set_ylim(min(0.0, min(volts)) - 0.02, max(volts) + 0.1)
        summary = thermo.electrode_summary()
        by_capacity.set_title(f"average {summary['average_voltage']:.3f} V; mAh/g of "
                              f"{summary['normalised_by']}", fontsize=9)
    else:
        for axes in (by_x, by_capacity):
            empty_note(axes, "fewer than two stable contents:\nno voltage step")
    by_x.set_title(f"{thermo.guest} into {thermo.host} (z = {thermo.charge}), V vs {thermo.guest} metal",
                   fontsize=9)
    by_x.set_xlabel(f"x in {thermo.guest}$_x${thermo.host} (guests per {thermo.host})")
    by_capacity.set_xlabel("capacity (mAh/g)")
    for axes in (by_x, by_capacity):
        axes.set_ylabel("voltage (V)")
    return figure


def summary_text(thermo: Intercalation, store: ResultStore) -> str:
    """The printed summary: one line per content, the voltage steps, pymatgen's electrode figures."""
    rows = _rows(thermo, store)
    header = ["x", "count", "formula", "E (eV/cell)", f"Ef (eV/{thermo.host})", "above hull", "hull",
              "space group", "steps", "converged"]
    lines = [header]
    for row in rows:
        def number(key: str) -> str:
            return "-" if row[key] is None else f"{row[key]:.4f}"

        lines.append([f"{row['x']:.4f}", str(row["count"]), row["formula"] or "-", number("energy"),
                      number("formation_energy"), number("e_above_hull"), "yes" if row["on_hull"] else "no",
                      row["space_group"] or "-", "-" if row["steps"] is None else str(row["steps"]),
                      f"{row['converged_samples']}/{row['samples']}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    ref = thermo.reference
    text.append(f"{thermo.guest} reference: {ref.composition.reduced_formula} ({ref.entry_id}), "
                f"{ref.energy_per_atom:.4f} eV/atom (CHGNet); Ef and the hull are against it and the host")
    if not thermo.steps:
        text.append("voltage: fewer than two stable contents (host included), so no voltage step")
        return "\n".join(text)
    for step in thermo.steps:
        text.append(f"step x {step.x_charge:.4f} -> {step.x_discharge:.4f} ({step.formula_charge} -> "
                    f"{step.formula_discharge}): {step.voltage:.3f} V vs {thermo.guest} metal, "
                    f"{step.capacity:.1f} mAh/g")
    figures = thermo.electrode_summary()
    line = (f"average {figures['average_voltage']:.3f} V (z = {thermo.charge}); capacity {figures['capacity_grav']:.1f} "
            f"mAh/g, specific energy {figures['specific_energy']:.1f} Wh/kg")
    if "energy_density" in figures:
        line += f", {figures['capacity_vol']:.1f} mAh/cm3, energy density {figures['energy_density']:.1f} Wh/L"
    text.append(line + f" (pymatgen InsertionElectrode, per mass/volume of {figures['normalised_by']})")
    return "\n".join(text)
