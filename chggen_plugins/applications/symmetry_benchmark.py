"""The cross-model symmetry benchmark (the paper's Fig. 6) as one command.

For every backend asked for and every composition and cell size it runs, through the campaign:
the backend's own unconditional sampler where it has one (method `own`), CHGGen unconditional
generation in random cells, and CHGGen inpainting into the symmetrized hosts of those structures;
every structure is relaxed and refined the same way. Each backend is one ordinary campaign in
OUT/<backend>/ (its campaign.toml is written there, so `chggen campaign OUT/<backend>/campaign.toml`
resumes or extends it); the benchmark then puts their summaries in one table, one CSV and one plot.

MatterGen's own sampler chooses the species itself (only the atom count is given), so its crystals of
another composition count as failures: one denominator for every method.

A backend that is not installed, needs a checkpoint nobody gave, or fails to load is listed as
skipped with the reason; nothing is made up for it. Every row says whether the backend's weights
are trained or random (chggen_plugins.contract.provenance).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Any

from pymatgen.core import Composition, Element

from chggen_plugins.contract.protocol import ScoreModel
from chggen_plugins.contract.registry import DEFAULT_RELAXER, installed_models, load_model, plugins
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import DEFAULT_STAGES
from chggen_plugins.files import output_folder
from chggen_plugins.structures.systems import formula as reduced_formula

CSV_NAME = "symmetry_benchmark.csv"
PLOT_NAME = "symmetry_benchmark.png"


@dataclass(frozen=True)
class Case:
    """One composition at one cell size: 'Li5Si2:14' (14 atoms per cell), guests Li."""

    formula: str
    formula_units: int
    guests: tuple[str, ...]


def parse_cases(text: str) -> list[Case]:
    """'Li5Si2:14,ZnP2S6:9:Zn' -> cases; the guest defaults to the least electronegative element
    (Li in Li-Si, Zn in Zn-P-S), as in the paper."""
    cases = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        formula, _, rest = item.partition(":")
        atoms, _, guest = rest.partition(":")
        try:
            composition = Composition(formula)
        except Exception:  # pymatgen raises ValueError or KeyError for text that is not a formula
            raise ChggenError(f"--compositions: {formula!r} is not a chemical formula") from None
        if not composition or not all(Element.is_valid_symbol(str(el)) for el in composition.elements):
            raise ChggenError(f"--compositions: {formula!r} is not a formula of known elements")
        reduced = composition.reduced_composition
        per_unit = int(round(reduced.num_atoms))
        if not atoms.isdigit() or int(atoms) % per_unit:
            raise ChggenError(f"--compositions: {item!r} needs FORMULA:ATOMS with ATOMS a multiple of "
                              f"{per_unit} ({reduced.reduced_formula}), e.g. {reduced.reduced_formula}:{2 * per_unit}")
        symbols = [el.symbol for el in reduced.elements]
        if len(symbols) < 2:
            raise ChggenError(f"--compositions: {item!r} has one element: nothing is left as a host")
        chosen = guest or min(reduced.elements, key=lambda el: el.X).symbol
        if chosen not in symbols:
            raise ChggenError(f"--compositions: guest {chosen!r} is not an element of {reduced.reduced_formula}")
        cases.append(Case(reduced_formula(reduced), int(atoms) // per_unit, (chosen,)))
    if not cases:
        raise ChggenError("--compositions: give at least one FORMULA:ATOMS, e.g. Li5Si2:14")
    return cases


def load_backend(name: str, source: str | None) -> tuple[ScoreModel | None, str | None]:
    """(the loaded model, None), or (None, why backend `name` cannot run here)."""
    models = installed_models()
    if name not in models:
        broken = plugins().broken
        return None, (f"its plugin failed to load: {broken[name]}" if name in broken else "not installed")
    if models[name].spec.needs_source and source is None:
        return None, f"needs a checkpoint: --model-source {name}=PATH"
    try:
        return load_model(name, source), None
    except ChggenError as error:
        return None, str(error)


def campaign_toml(name: str, source: str | None, cases: Sequence[Case], samples: int, hosts: int,
                  seed: int, max_steps: int, hull_cache: Path, entries: Path | None,
                  relaxer: str = DEFAULT_RELAXER, stages: Sequence[str] = DEFAULT_STAGES) -> str:
    """The campaign of one backend: `samples` structures per method, composition and cell size,
    relaxed with `relaxer` in `stages` (the same for every backend)."""
    has_own = installed_models()[name].spec.generate is not None
    lines = [f"output = {json.dumps('.')}", f"seed = {seed}", "[model]", f"name = {json.dumps(name)}"]
    if source is not None:
        lines.append(f"source = {json.dumps(str(Path(source).resolve()) if Path(source).exists() else source)}")
    if has_own:
        lines.append(f"own_samples = {samples}")
    lines += ["[cells]", f"count = {samples}", "[relax]", f"max_steps = {max_steps}",
              f"relaxer = {json.dumps(relaxer)}", f"stages = {json.dumps(list(stages))}",
              "[hosts]", f"per_composition = {hosts}", f"samples = {ceil(samples / hosts)}",
              "[stability]", f"cache = {json.dumps(str(hull_cache))}"]
    if entries is not None:
        lines.append(f"entries = {json.dumps(str(entries))}")
    for case in cases:
        lines += ["[[compositions]]", f"formula = {json.dumps(case.formula)}",
                  f"formula_units = [{case.formula_units}]", f"guests = {json.dumps(list(case.guests))}"]
    return "\n".join(lines) + "\n"


def run_symmetry_benchmark(models: Sequence[str], sources: dict[str, str], cases: Sequence[Case], samples: int,
                           out: Path, hosts: int = 3, seed: int = 0, max_steps: int = 500,
                           entries: Path | None = None, progress: bool = True, relaxer: str = DEFAULT_RELAXER,
                           stages: Sequence[str] = DEFAULT_STAGES,
                           ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """(summary rows of every backend that ran, [(backend, why skipped)]); writes CSV and plot."""
    from chggen_plugins.applications.campaign import run_campaign
    from chggen_plugins.runs.config import load_config
    from chggen_plugins.runs.figures import save_figure
    from chggen_plugins.runs.report import format_table, plot_symmetry_rates
    from chggen_plugins.runs.schema import SUMMARY, write_table

    if samples < 1 or hosts < 1:
        raise ChggenError(f"--samples and --hosts must be >= 1, got {samples} and {hosts}")
    unknown = sorted(set(sources) - set(models))
    if unknown:
        raise ChggenError(f"--model-source names {unknown[0]!r}, which is not in --models {','.join(models)}")
    known = set(installed_models()) | set(plugins().broken)
    misspelt = [name for name in models if name not in known]
    if misspelt:  # a typo is refused before any campaign, not listed as skipped after them
        raise ChggenError(f"--models: unknown model {misspelt[0]!r}; installed models: {', '.join(sorted(known))}")
    out = output_folder(Path(out).resolve(), "--out")
    rows, skipped = [], []
    libraries: tuple[str, ...] = ()
    for name in models:
        model, reason = load_backend(name, sources.get(name))
        if model is None:
            skipped.append((name, reason))
            continue
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "campaign.toml").write_text(campaign_toml(
            name, sources.get(name), cases, samples, hosts, seed, max_steps, out / "hull",
            Path(entries).resolve() if entries is not None else None, relaxer, stages))
        config = load_config(folder / "campaign.toml")
        libraries = config.symmetry.libraries
        result = run_campaign(config, model=model, progress=progress)
        rows += result.summary
    if not rows:
        raise ChggenError("no model could run: " + "; ".join(f"{name}: {why}" for name, why in skipped))
    write_table(rows + [{"backend": name, "skipped": why} for name, why in skipped], out / CSV_NAME, SUMMARY)
    save_figure(plot_symmetry_rates(rows, libraries, by_backend=True), out / PLOT_NAME)
    print(format_table(rows, libraries, by_backend=True))
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    print(f"table: {out / CSV_NAME}; plot: {out / PLOT_NAME}")
    return rows, skipped
