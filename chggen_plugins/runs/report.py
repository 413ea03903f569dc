"""A campaign's outputs, made from its results store alone (so a resumed campaign reports everything):

summary.csv (+ printed)   per composition, method and cell size: counts, symmetry success rate per
                          library with its Wilson interval, median FIRE steps, lowest energy and Ed
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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from pymatgen.core import Structure
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp.sets import MPScanRelaxSet

from chggen_plugins.evaluation.coordination import CoordinationStats, coordination_stats
from chggen_plugins.evaluation.stability import passes_screen
from chggen_plugins.evaluation.symmetry import symmetry_success_rate, wilson_interval
from chggen_plugins.files import replacing
from chggen_plugins.runs.config import CampaignConfig, SymmetryConfig
from chggen_plugins.runs.methods import GENERATED
from chggen_plugins.runs.schema import COORDINATION, SHORTLIST, SUMMARY, legend, write_table
from chggen_plugins.runs.shards import lowest_distinct
from chggen_plugins.runs.store import ResultStore, StoredResult

_RELAXED = ("relaxed", "unconverged")  # statuses with a relaxed (final) structure


def _final(result: StoredResult) -> Structure | None:
    """The relaxed structure, or None for a structure that never reached one (a symmetry failure)."""
    return result.structure if result.get("status") in _RELAXED else None


def summary_rows(results: Iterable[StoredResult], symmetry: SymmetryConfig, threshold: float,
                 methods: Sequence[str] = GENERATED) -> list[dict[str, Any]]:
    """One row per (composition, method, atoms per cell); every generated structure is in the denominator."""
    groups: dict[tuple[str, str, int], list[StoredResult]] = defaultdict(list)
    for result in results:
        if result.get("method") in methods:
            groups[(result.get("composition"), result.get("method"), int(result.get("n_atoms")))].append(result)
    rows = []
    for (composition, method, n_atoms), items in sorted(groups.items(), key=lambda kv: (kv[0][0], methods.index(kv[0][1]), kv[0][2])):
        relaxed = [r for r in items if r.get("status") in _RELAXED]
        row: dict[str, Any] = {
            "composition": composition, "method": method, "n_atoms": n_atoms, "generated": len(items),
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
              *[f"sym {lib} (95% CI)" for lib in libraries], "med steps", "min E/at", "min Ed", "Ed<thr"]
    lines = [header]
    for row in rows:
        rates = [f"{row[f'symmetric_{lib}']}/{row['generated']} ({row[f'rate_{lib}']:.0%}, "
                 f"{row[f'rate_{lib}_low']:.0%}-{row[f'rate_{lib}_high']:.0%})" for lib in libraries]
        lines.append([*(str(row[key]) for key in ("backend", "weights") if by_backend),
                      row["composition"], row["method"], str(row["n_atoms"]), str(row["generated"]),
                      str(row["converged"]), str(row["errors"]), *rates, _text(row["median_steps"], "g"),
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


def save_figure(figure: Figure, path: Path) -> Path:
    """Lay out `figure`, write it to `path` (PNG at 120 dpi, folders made) and return `path`."""
    figure.tight_layout()
    with replacing(path) as temporary:
        figure.savefig(temporary, dpi=120, format=path.suffix.lstrip(".") or "png")
    return path


def plot_symmetry_rates(rows: Sequence[dict[str, Any]], libraries: Sequence[str], path: Path,
                        by_backend: bool = False) -> Path:
    """Symmetry success rate vs atoms per cell, one line per method (and backend, with `by_backend`)
    and library, Wilson 95% bars."""
    figure = Figure(figsize=(7, 4.5) if by_backend else (6, 4))
    axes = figure.add_subplot()
    if by_backend:  # one library keeps many backends x methods readable; the table has them all
        libraries = libraries[:1]
    weights = {row.get("backend"): row.get("weights") for row in rows}
    series = list(dict.fromkeys((row["backend"] if by_backend else None, row["method"]) for row in rows))
    for backend, method in sorted(series, key=lambda s: (str(s[0]), GENERATED.index(s[1]))):
        name = method
        if by_backend:  # random or undeclared weights are named on the line itself
            name = f"{backend} {method}" + ("" if weights[backend] == "trained" else f" [{weights[backend]}]")
        for style, library in zip(("-o", "--s"), libraries):
            counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            for row in rows:
                if row["method"] == method and (not by_backend or row["backend"] == backend):
                    counts[row["n_atoms"]][0] += row[f"symmetric_{library}"]
                    counts[row["n_atoms"]][1] += row["generated"]
            if not counts:
                continue
            sizes = sorted(counts)
            rates = np.array([counts[n][0] / counts[n][1] for n in sizes])
            bounds = np.array([wilson_interval(*counts[n]) for n in sizes])
            axes.errorbar(sizes, rates, yerr=[rates - bounds[:, 0], bounds[:, 1] - rates], fmt=style,
                          capsize=3, label=f"{name} ({library})")
    if rows:
        axes.set_title(f"space group > P-1 at symprec {rows[0]['symprec']} A, {rows[0]['angle_tolerance']} deg",
                       fontsize=9)
    axes.set_xlabel("atoms per cell")
    axes.set_ylabel("symmetry success rate")
    axes.set_ylim(-0.05, 1.05)
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_ed_histogram(results: Sequence[StoredResult], threshold: float, path: Path) -> Path:
    """Ed of converged structures by method, with the screen threshold and the hull's label."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    converged = [r for r in results if r.get("method") in GENERATED and r.get("status") == "relaxed"]
    eds = [r.get("ed") for r in converged]
    if eds:
        bins = np.linspace(min(min(eds), 0.0), max(max(eds), threshold) + 1e-6, 30)
        for method in GENERATED:
            values = [r.get("ed") for r in converged if r.get("method") == method]
            if values:
                axes.hist(values, bins=bins, alpha=0.6, label=f"{method} ({len(values)})")
    axes.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold} eV/atom")
    hulls = sorted({r.get("hull") for r in converged})
    approximate = any(r.get("hull_approximate") for r in converged)
    axes.set_title(("APPROXIMATE hull (CHGNet reference): " if approximate else "")
                   + "; ".join(h.split(" (")[0] for h in hulls), fontsize=8)
    axes.set_xlabel("Ed (eV/atom)")
    axes.set_ylabel("structures")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_de_vs_rmsd(results: Sequence[StoredResult], path: Path) -> Path:
    """Energy change on relaxation vs RMS displacement, by method (the paper's Fig. 4a,b)."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    for method in GENERATED:
        points = [(r.get("rmsd"), r.get("delta_e")) for r in results
                  if r.get("method") == method and r.get("status") in _RELAXED]
        if points:
            x, y = zip(*points)
            axes.scatter(x, y, s=14, alpha=0.7, label=f"{method} ({len(points)})")
    axes.set_xlabel("RMSD generated -> relaxed (A)")
    axes.set_ylabel("dE on relaxation (eV/atom)")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_coordination(stats: Sequence[CoordinationStats], path: Path) -> Path:
    """Per species, the distribution of coordination numbers of each group side by side."""
    species = sorted({s.species for s in stats})
    groups = list(dict.fromkeys(s.group for s in stats))
    figure = Figure(figsize=(4 * max(len(species), 1), 3.5))
    width = 0.8 / max(len(groups), 1)
    for column, element in enumerate(species, start=1):
        axes = figure.add_subplot(1, max(len(species), 1), column)
        for offset, group in enumerate(groups):
            row = next((s for s in stats if s.species == element and s.group == group), None)
            if row is None:
                continue
            numbers = np.array(sorted(row.counts))
            share = np.array([row.counts[n] / row.sites for n in numbers])
            axes.bar(numbers + offset * width - 0.4 + width / 2, share, width=width,
                     label=f"{group} ({row.sites} sites)")
        axes.set_title(f"{element}: coordination number (CrystalNN)", fontsize=9)
        axes.set_xlabel("CN")
        axes.set_ylabel("fraction of sites")
        axes.legend(fontsize=7)
    return save_figure(figure, path)


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
             "symmetry_plot": plot_symmetry_rates(rows, config.symmetry.libraries, out / "plots" / "symmetry_rate.png"),
             "ed_plot": plot_ed_histogram(results, threshold, out / "plots" / "ed_histogram.png"),
             "de_rmsd_plot": plot_de_vs_rmsd(results, out / "plots" / "de_vs_rmsd.png")}
    chosen = shortlist(results, threshold, config.shortlist_max)
    files["shortlist"] = write_shortlist(chosen, out, config.symmetry.libraries[0])
    if config.coordination.training is not None:
        stats = coordination_stats(coordination_groups(config, results))
        table = [{"group": s.group, "species": s.species, "sites": s.sites, "mean_cn": round(s.mean, 3),
                  "std_cn": round(s.std, 3), "distribution": " ".join(f"{k}:{v}" for k, v in s.counts.items()),
                  "failed_structures": s.failed_structures} for s in stats]
        files["coordination"] = write_table(table, out / "coordination.csv", COORDINATION)
        files["coordination_plot"] = plot_coordination(stats, out / "plots" / "coordination.png")
    if echo:
        print(format_table(rows, config.symmetry.libraries))
        print(f"shortlist: {len(chosen)} structure(s) with Ed < {threshold} eV/atom -> {files['shortlist']}")
        print(f"results: {store.path}; plots: {out / 'plots'}")
    return rows, files
