"""A campaign's outputs, made from its results store alone (so a resumed campaign reports everything):

summary.csv (+ printed)   per composition, method and cell size: counts, symmetry success rate per
                          library with its Wilson interval, distinct structures, match-or-lower
                          against the structure each host came from, median FIRE steps, lowest
                          energy and Ed
plots/*.png               symmetry success rate vs atoms per cell by method; Ed histogram; dE vs RMSD;
                          coordination numbers generated vs training (when a training set is given)
shortlist/                converged structures with Ed below the threshold, distinct, lowest Ed first:
                          CIFs and shortlist.csv
r2scan/<name>/            r2SCAN relaxation inputs per shortlisted structure (pymatgen MPScanRelaxSet):
                          INCAR, POSCAR and POTCAR.spec (the POTCAR symbols: POTCARs are licensed, so
                          none are written; k-points come from KSPACING in the INCAR)

Every table and plot that shows Ed carries the hull's label; a CHGNet reference hull says APPROXIMATE.
"""

from __future__ import annotations

import statistics
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp.sets import MPScanRelaxSet

from chggen_plugins.evaluation.coordination import CoordinationStats, coordination_stats
from chggen_plugins.evaluation.matching import match_or_lower, structure_matcher
from chggen_plugins.evaluation.stability import passes_screen
from chggen_plugins.evaluation.symmetry import symmetry_success_rate, wilson_interval
from chggen_plugins.runs.config import CampaignConfig, SymmetryConfig
from chggen_plugins.runs.figures import (REFERENCE_COLOUR, count_histogram, empty_note, integer_ticks, method_style,
                                            new_figure, offsets, save_figure, style)
from chggen_plugins.runs.methods import GENERATED, HOST, INPAINTING_SYM, REFERENCE
from chggen_plugins.runs.schema import COORDINATION, SHORTLIST, SUMMARY, legend, write_table
from chggen_plugins.runs.shards import lowest_distinct
from chggen_plugins.runs.store import ResultStore, StoredResult
from chggen_plugins.structures.wyckoff import ORBIT_CHOICES

_RELAXED = ("relaxed", "unconverged")  # statuses with a relaxed (final) structure


def _final(result: StoredResult) -> Structure | None:
    """The relaxed structure, or None for a structure that never reached one (a symmetry failure)."""
    return result.structure if result.get("status") in _RELAXED else None


def reference_of(result: StoredResult, by_uid: Mapping[str, StoredResult]) -> StoredResult | None:
    """The known structure an inpainted sample can be held against, relaxed (converged): the
    structure its host was stripped from, i.e. the row its host row's `parent` names, or for a host
    file that holds the guests, the file's structure (the host's `reference` row). None for
    everything else: unconditional structures, samples of a host file without its guests."""
    host = by_uid.get(result.get("parent"))
    if host is None or host.get("method") != HOST:
        return None
    reference = by_uid.get(host.get("parent")) or by_uid.get(f"{host.uid}/{REFERENCE}")
    return reference if reference is not None and reference.get("status") == "relaxed" else None


def _match_or_lower(items: Sequence[StoredResult], by_uid: Mapping[str, StoredResult],
                    matcher: StructureMatcher) -> tuple[int, int]:
    """(samples counted by XtalPaint's rule, samples that have a reference); a sample with a
    reference but no relaxed structure counts as a failure."""
    counted = referenced = 0
    for item in items:
        reference = reference_of(item, by_uid)
        if reference is None:
            continue
        referenced += 1
        counted += item.get("status") in _RELAXED and match_or_lower(
            item.structure, item.get("e_per_atom"), reference.structure, reference.get("e_per_atom"), matcher)
    return counted, referenced


def summary_rows(results: Iterable[StoredResult], symmetry: SymmetryConfig, threshold: float,
                 methods: Sequence[str] = GENERATED) -> list[dict[str, Any]]:
    """One row per (composition, method, atoms per cell); every generated structure is in the denominator
    (of match-or-lower: every one that has a reference, `reference_of`)."""
    results = list(results)
    by_uid = {result.uid: result for result in results}
    matcher = structure_matcher()
    groups: dict[tuple[str, str, int], list[StoredResult]] = defaultdict(list)
    for result in results:
        if result.get("method") in methods:
            groups[(result.get("composition"), result.get("method"), int(result.get("n_atoms")))].append(result)
    rows = []
    for (composition, method, n_atoms), items in sorted(groups.items(), key=lambda kv: (kv[0][0], methods.index(kv[0][1]), kv[0][2])):
        relaxed = [r for r in items if r.get("status") in _RELAXED]
        row: dict[str, Any] = {
            "composition": composition, "method": method,
            **({"orbits": items[0].get("orbits", ORBIT_CHOICES[0])} if method == INPAINTING_SYM else {}),
            "n_atoms": n_atoms, "generated": len(items),
            "converged": sum(r.get("status") == "relaxed" for r in items),
            "unconverged": sum(r.get("status") == "unconverged" for r in items),
            "errors": sum(r.get("status") == "error" for r in items),
        }
        finals = [_final(r) for r in items]
        for library in symmetry.libraries:
            rate = symmetry_success_rate(finals, symmetry.symprec, symmetry.angle_tolerance, library)
            row[f"symmetric_{library}"] = rate.successes
            row[f"rate_{library}"] = round(rate.rate, 4)
            row[f"rate_{library}_low"] = round(rate.low, 4)
            row[f"rate_{library}_high"] = round(rate.high, 4)
        row["symprec"], row["angle_tolerance"] = symmetry.symprec, symmetry.angle_tolerance
        row["distinct"] = len(lowest_distinct([(r.structure, r.get("e_per_atom")) for r in relaxed]))
        counted, referenced = _match_or_lower(items, by_uid, matcher)  # empty where nothing has a reference
        row["match_or_lower"], row["with_reference"] = (counted, referenced) if referenced else (None, None)
        row["match_or_lower_rate"] = round(counted / referenced, 4) if referenced else None
        row["median_steps"] = statistics.median(r.get("steps") for r in relaxed) if relaxed else None
        row["lowest_e_per_atom"] = round(min(r.get("e_per_atom") for r in relaxed), 5) if relaxed else None
        eds = [r.get("ed") for r in items if r.get("status") == "relaxed"]
        row["lowest_ed"] = round(min(eds), 5) if eds else None
        row["below_threshold"] = sum(passes_screen(ed, threshold) for ed in eds)
        row["threshold"] = threshold
        row["hull"] = next((r.get("hull") for r in relaxed), None)
        row["backend"] = items[0].get("backend")
        row["weights"] = items[0].get("weights")  # trained / UNTRAINED (random weights) / not declared
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]], libraries: Sequence[str], by_backend: bool = False) -> str:
    """The summary as aligned text, with the hulls Ed was measured against underneath; `by_backend`
    adds the backend and its weights to every line (the cross-model benchmark)."""
    first = ["backend", "weights"] if by_backend else []
    header = [*first, "composition", "method", "atoms", "n", "conv", "err",
              *[f"sym {lib} (95% CI)" for lib in libraries], "dist", "m-o-l", "med steps", "min E/at", "min Ed",
              "Ed<thr"]
    lines = [header]
    for row in rows:
        rates = [f"{row[f'symmetric_{lib}']}/{row['generated']} ({row[f'rate_{lib}']:.0%}, "
                 f"{row[f'rate_{lib}_low']:.0%}-{row[f'rate_{lib}_high']:.0%})" for lib in libraries]
        lines.append([*(str(row[key]) for key in ("backend", "weights") if by_backend),
                      row["composition"], row["method"] + (f" ({row['orbits']})" if row.get("orbits") else ""),
                      str(row["n_atoms"]), str(row["generated"]), str(row["converged"]), str(row["errors"]),
                      *rates, str(row["distinct"]),
                      f"{row['match_or_lower']}/{row['with_reference']}" if row.get("with_reference") else "-",
                      _text(row["median_steps"], "g"),
                      _text(row["lowest_e_per_atom"], ".3f"), _text(row["lowest_ed"], ".3f"),
                      str(row["below_threshold"])])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    if rows:
        text.append(legend(SUMMARY, header))
        text.append(f"symmetry: space group > P-1 at symprec {rows[0]['symprec']} A, angle "
                    f"{rows[0]['angle_tolerance']} deg; Ed threshold {rows[0]['threshold']} eV/atom")
    for backend, weights in sorted({(row["backend"], row["weights"]) for row in rows if row["weights"]}):
        text.append(f"model {backend}: weights {weights}")
    for hull in sorted({row["hull"] for row in rows if row["hull"]}):
        text.append(f"Ed against: {hull}")
    return "\n".join(text)


def _text(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def shortlist(results: Iterable[StoredResult], threshold: float, limit: int) -> list[StoredResult]:
    """Converged generated structures with Ed < threshold, lowest Ed first, one per distinct structure."""
    passing = [r for r in results if r.get("method") in GENERATED and r.get("status") == "relaxed"
               and passes_screen(r.get("ed"), threshold)]
    return [passing[i] for i in lowest_distinct([(r.structure, r.get("ed")) for r in passing], limit)]


def write_shortlist(entries: Sequence[StoredResult], out: Path, library: str) -> Path:
    """CIF and r2SCAN inputs (INCAR, POSCAR, POTCAR.spec) of each entry, and shortlist.csv."""
    rows = []
    for rank, entry in enumerate(entries, start=1):
        symbol = str(entry.get(f"sg_{library}_symbol", "P1")).replace("/", "_")
        name = f"{rank:03d}_{entry.get('composition')}_{symbol}"
        cif = out / "shortlist" / f"{name}.cif"
        cif.parent.mkdir(parents=True, exist_ok=True)
        CifWriter(entry.structure).write_file(cif)
        scan = out / "r2scan" / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns that no POTCAR directory is configured
            MPScanRelaxSet(entry.structure).write_input(scan, potcar_spec=True)
        rows.append({"rank": rank, "uid": entry.uid, "composition": entry.get("composition"),
                     "method": entry.get("method"), "n_atoms": entry.get("n_atoms"),
                     "e_per_atom": entry.get("e_per_atom"), "ed": entry.get("ed"),
                     "space_group": entry.get(f"sg_{library}_symbol"), "library": library,
                     "cif": str(cif.relative_to(out)), "r2scan": str(scan.relative_to(out)),
                     "hull": entry.get("hull"), "relaxer": entry.get("relaxer"),
                     "relaxer_version": entry.get("relaxer_version")})
    return write_table(rows, out / "shortlist.csv", SHORTLIST)


def plot_symmetry_rates(rows: Sequence[dict[str, Any]], libraries: Sequence[str], by_backend: bool = False) -> Figure:
    """Symmetry success rate per cell size: one marker per method (and backend, with `by_backend`)
    and library, Wilson 95% bars.

    Cell sizes are categories on the x axis and the series stand side by side within each, never
    joined by lines: sizes usually come from different hosts, and a line between them would
    suggest a trend that was not measured. Colour and marker name the method (the backend, with
    `by_backend`); filled markers are the first library, open ones the second.
    """
    figure, (axes,) = new_figure(7, 4.5) if by_backend else new_figure(6.5, 4)
    if by_backend:  # one library keeps many backends x methods readable; the table has them all
        libraries = libraries[:1]
    weights = {row.get("backend"): row.get("weights") for row in rows}
    backends = list(dict.fromkeys(row["backend"] for row in rows)) if by_backend else [None]
    pairs = sorted(dict.fromkeys((row["backend"] if by_backend else None, row["method"]) for row in rows),
                   key=lambda s: (backends.index(s[0]), GENERATED.index(s[1])))
    series = [(backend, method, library) for backend, method in pairs for library in libraries]
    counts: dict[tuple[Any, str, str], dict[int, list[int]]] = {one: defaultdict(lambda: [0, 0]) for one in series}
    for one in series:
        backend, method, library = one
        for row in rows:
            if row["method"] == method and (not by_backend or row["backend"] == backend):
                counts[one][row["n_atoms"]][0] += row[f"symmetric_{library}"]
                counts[one][row["n_atoms"]][1] += row["generated"]
    sizes = sorted({row["n_atoms"] for row in rows})
    at_size = [[one for one in series if size in counts[one]] for size in sizes]
    step = 0.7 / max((len(present) for present in at_size), default=1)
    position = {}  # (series, size) -> x: the series present at a size, one step apart, centred on its tick
    for index, (size, present) in enumerate(zip(sizes, at_size)):
        shifts = offsets(len(present), step * len(present))
        position.update({(one, size): index + shift for one, shift in zip(present, shifts)})
    for one in series:
        backend, method, library = one
        present = sorted(counts[one])
        rates = np.array([counts[one][n][0] / counts[one][n][1] for n in present])
        bounds = np.array([wilson_interval(*counts[one][n]) for n in present])
        look = method_style(method)
        name = method
        if by_backend:  # random or undeclared weights are named on the marker itself
            look["color"] = style(backends.index(backend))["color"]
            name = f"{backend} {method}" + ("" if weights[backend] == "trained" else f" [{weights[backend]}]")
        open_marker = library != libraries[0]
        axes.errorbar([position[(one, n)] for n in present], rates,
                      yerr=[rates - bounds[:, 0], bounds[:, 1] - rates], linestyle="none", capsize=3,
                      marker=look["marker"], color=look["color"], markersize=6,
                      markerfacecolor="white" if open_marker else look["color"], label=f"{name} ({library})")
    axes.set_xticks(range(len(sizes)), [str(n) for n in sizes])
    axes.set_xlim(-0.5, max(len(sizes), 1) - 0.5)
    if rows:
        axes.set_title(f"space group > P-1 at symprec {rows[0]['symprec']} Å, {rows[0]['angle_tolerance']}°",
                       fontsize=9)
    axes.set_xlabel("atoms per cell")
    axes.set_ylabel("symmetry success rate (fraction)")
    axes.set_ylim(-0.05, 1.05)
    if series:  # beside the axes: inside, a legend of many series would cover markers
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def plot_ed_histogram(results: Sequence[StoredResult], threshold: float) -> Figure:
    """Ed of converged structures, methods side by side in each bin, with the screen threshold;
    the title names the hull(s) once (each hull's label already says APPROXIMATE when it is)."""
    figure, (axes,) = new_figure(6.5, 4)
    converged = [r for r in results if r.get("method") in GENERATED and r.get("status") == "relaxed"]
    eds = [r.get("ed") for r in converged]
    if eds:
        bins = np.linspace(min(min(eds), 0.0), max(max(eds), threshold) + 1e-6, 21)
        values = {method: [r.get("ed") for r in converged if r.get("method") == method] for method in GENERATED}
        count_histogram(axes, {f"{m} ({len(v)})": v for m, v in values.items()},
                        [method_style(m)["color"] for m in values], bins)
    else:
        empty_note(axes, "no converged structure")
        integer_ticks(axes.yaxis)
    axes.axvline(threshold, color=REFERENCE_COLOUR, linestyle="--", label=f"threshold {threshold} eV/atom")
    hulls = dict.fromkeys(r.get("hull").split(" (")[0] for r in converged)
    axes.set_title("Ed against " + "; ".join(hulls) if hulls else "Ed", fontsize=8)
    axes.set_xlabel("Ed, energy above the hull (eV/atom)")
    axes.set_ylabel("structures (count)")
    axes.legend(fontsize=8)
    return figure


def plot_de_vs_rmsd(results: Sequence[StoredResult]) -> Figure:
    """Energy change on relaxation vs RMS displacement, by method (the paper's Fig. 4a,b); open
    markers of different shapes, so structures of two methods at one point both show."""
    figure, (axes,) = new_figure(6.5, 4)
    for method in GENERATED:
        points = [(r.get("rmsd"), r.get("delta_e")) for r in results
                  if r.get("method") == method and r.get("status") in _RELAXED]
        if points:
            x, y = zip(*points)
            look = method_style(method)
            axes.scatter(x, y, s=30, marker=look["marker"], facecolors="none", edgecolors=look["color"],
                         linewidths=1.2, label=f"{method} ({len(points)})")
    axes.set_xlabel("RMSD generated -> relaxed (Å)")
    axes.set_ylabel("ΔE on relaxation (eV/atom)")
    if axes.collections:
        axes.legend(fontsize=8)
    else:
        empty_note(axes, "no relaxed structure")
    return figure


def plot_coordination(stats: Sequence[CoordinationStats]) -> Figure:
    """Per species, the distribution of coordination numbers of each group, bars side by side at
    each (integer) coordination number; each group keeps its colour across the panels."""
    species = sorted({s.species for s in stats})
    groups = list(dict.fromkeys(s.group for s in stats))
    figure, panels = new_figure(4 * max(len(species), 1), 3.5, max(len(species), 1))
    shifts = offsets(len(groups), 0.8)
    width = 0.8 / max(len(groups), 1)
    for axes, element in zip(panels, species):
        for index, (shift, group) in enumerate(zip(shifts, groups)):
            row = next((s for s in stats if s.species == element and s.group == group), None)
            if row is None:
                continue
            numbers = np.array(sorted(row.counts))
            share = np.array([row.counts[n] / row.sites for n in numbers])
            axes.bar(numbers + shift, share, width=width, color=style(index)["color"], edgecolor="white",
                     linewidth=0.5, label=f"{group} ({row.sites} sites)")
        axes.set_xticks(sorted({n for s in stats if s.species == element for n in s.counts}))
        axes.set_title(f"{element}: coordination number (CrystalNN)", fontsize=9)
        axes.set_xlabel("coordination number (neighbours)")
        axes.set_ylabel("fraction of sites")
        axes.set_ylim(0, 1.3)  # fractions reach 1; the headroom keeps the legend off the bars
        axes.legend(fontsize=7, loc="upper right")
    return figure
def coordination_groups(config: CampaignConfig, results: Sequence[StoredResult]) -> dict[str, list[Structure]]:
    """Training structures of the campaign's elements and the converged generated ones, by method,
    each capped at `coordination.max_structures` (a seeded random subset)."""
    from chggen_plugins.datasets import read_dataset  # only when a training set is configured

    cap = config.coordination.max_structures
    rng = np.random.default_rng(config.seed)
    elements = {el.symbol for c in config.compositions for el in c.composition.elements}
    training = [r.structure for r in read_dataset(config.coordination.training)
                if {el.symbol for el in r.structure.composition.elements} <= elements]

    def capped(items: list[Structure]) -> list[Structure]:
        return items if len(items) <= cap else [items[i] for i in sorted(rng.choice(len(items), cap, replace=False))]

    groups = {"training": capped(training)}
    for method in GENERATED:
        groups[method] = capped([r.structure for r in results
                                 if r.get("method") == method and r.get("status") == "relaxed"])
    return groups


def write_report(config: CampaignConfig, store: ResultStore, echo: bool = True) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Every output file of the campaign from its store; prints the summary table when `echo`."""
    out = config.output
    results = list(store.results())
    threshold = config.stability.threshold
    rows = summary_rows(results, config.symmetry, threshold)
    files = {"store": store.path, "summary": write_table(rows, out / "summary.csv", SUMMARY),
             "symmetry_plot": save_figure(plot_symmetry_rates(rows, config.symmetry.libraries),
                                          out / "plots" / "symmetry_rate.png"),
             "ed_plot": save_figure(plot_ed_histogram(results, threshold), out / "plots" / "ed_histogram.png"),
             "de_rmsd_plot": save_figure(plot_de_vs_rmsd(results), out / "plots" / "de_vs_rmsd.png")}
    chosen = shortlist(results, threshold, config.shortlist_max)
    files["shortlist"] = write_shortlist(chosen, out, config.symmetry.libraries[0])
    if config.coordination.training is not None:
        stats = coordination_stats(coordination_groups(config, results))
        table = [{"group": s.group, "species": s.species, "sites": s.sites, "mean_cn": round(s.mean, 3),
                  "std_cn": round(s.std, 3), "distribution": " ".join(f"{k}:{v}" for k, v in s.counts.items()),
                  "failed_structures": s.failed_structures} for s in stats]
        files["coordination"] = write_table(table, out / "coordination.csv", COORDINATION)
        files["coordination_plot"] = save_figure(plot_coordination(stats), out / "plots" / "coordination.png")
    if echo:
        print(format_table(rows, config.symmetry.libraries))
        print(f"shortlist: {len(chosen)} structure(s) with Ed < {threshold} eV/atom -> {files['shortlist']}")
        print(f"results: {store.path}; plots: {out / 'plots'}")
    return rows, files
