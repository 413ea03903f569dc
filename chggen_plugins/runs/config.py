"""The campaign config: one TOML file, checked key by key so every mistake is one line naming the key.

TOML because Python reads it with the standard library (`tomllib`, 3.11+) and it has comments, typed
numbers and lists of tables (`[[compositions]]`) without YAML's implicit conversions. Relative paths
are relative to the config file. A full example with every key and its default:

    output = "chggen_campaign"       # results.db, summary.csv, plots/, shortlist/, r2scan/
    seed = 0

    [model]
    name = "native"                  # a name from `chggen models` (required)
    source = "weights.pt"            # optional: checkpoint / file the model loads from
    device = "cpu"
    own_samples = 0                  # per composition and cell size, also this many crystals from the
                                     # backend's own sampler (e.g. MatterGen's), relaxed and counted
                                     # beside CHGGen's methods (method "own"; 0 = none)

    [sampler]                        # noise levels come from the model
    jump_length = 10                 # RePaint jump length j (inpainting)
    resamples = 3                    # RePaint resamples r (inpainting; 1 = off; left out: 3, or 1 for
                                     # a host-conditioned model)
    unconditional_resamples = 1      # r for unconditional generation
    solver = "pc"                    # pc (predictor + correctors at every level), heun (EDM: churn +
                                     # Heun steps of the probability-flow ODE) or ode (Heun, no churn)
                                     # steps = 25: heun/ode only, levels visited, evenly spaced (left
                                     # out: every level); 2 x steps - 1 network calls per structure
    churn = 0.0                      # heun only: EDM's gamma, re-noise to sigma * (1 + churn) before a move
    batch_size = 64                  # crystals per sampler run

    [cells]                          # random starting cells of unconditional generation
    v0 = 24.0                        # A^3 per atom (of the first round)
    rounds = 1                       # rounds > 1: each later round takes V0 from the lowest-energy
                                     # relaxed structure of the rounds before it
    systems = ["cubic", "tetragonal", "orthorhombic", "monoclinic", "triclinic", "hexagonal", "rhombohedral"]
    ratios = [0.5, 0.75, 1.0, 1.25, 1.5]
    samples_per_cell = 1
    count = 35                       # optional, instead of samples_per_cell: exactly this many
                                     # structures per composition and cell size, dealt over the cells
                                     # in turn (every system at ratio 1 first, then 1.25, 0.75, ...)

    [relax]
    relaxer = "chgnet"               # a relaxer plugin's name (docs/guides/relaxers.md)
    fmax = 0.1                       # eV/A
    max_steps = 500                  # FIRE steps, shared by the stages
    keep_symmetry = false            # true: ASE FixSymmetry keeps the space group spglib finds at
                                     # 0.01 A when the relaxation starts (same for every method)
    stages = ["all"]                 # ["guests", "all"]: guests first with the host fixed (FixAtoms,
                                     # cell fixed), then everything

    [hosts]
    per_composition = 3              # lowest-energy distinct relaxed unconditional structures used
    samples = 8                      # inpainting samples per host
    cell = "conventional"            # or "primitive"
    methods = ["inpainting"]         # any of "inpainting" (guests placed freely), "inpainting-sym"
                                     # (guests on Wyckoff orbits of the host's group or a subgroup),
                                     # "inpainting-snap" (free, then snapped to the symmetric structure
                                     # spglib finds at snap_symprec before relaxing); may grow on resume
    snap_symprec = 0.5               # A, for "inpainting-snap"
    orbits = "uniform"               # "inpainting-sym": each sample's Wyckoff orbits drawn uniformly
                                     # from those that fit, or "model": the combination nearest to
                                     # where a free inpainting pass put the guests

    [symmetry]
    symprec = 0.1
    angle_tolerance = 10.0
    libraries = ["spglib", "moyopy"] # the first one decides the shortlist's space group

    [stability]                      # MP (MP_API_KEY) > entries file > CHGNet reference hull
    entries = "entries.json"         # optional: JSON list of ComputedEntry
    cache = "hull"                   # MP / reference-hull cache (default <output>/hull)
    reference_max_atoms = 8
    reference_per_formula = 2
    threshold = 0.1                  # Ed screen, eV/atom (0.03 before DFT)

    [shortlist]
    max = 20

    [coordination]                   # optional: CN statistics generated vs training
    training = "data/dataset"        # optional: anything `read_dataset` reads
    max_structures = 300

    [[compositions]]                 # one table per composition (at least one)
    formula = "Li2Si"
    formula_units = [2, 4]           # cells of 6 and 12 atoms
    guests = ["Li"]                  # species generated into the host
    host_files = []                  # optional extra hosts (CIF ...), guests stripped if present
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from pymatgen.core import Composition, Element

from chggen_plugins.contract.devices import check_device
from chggen_plugins.contract.registry import DEFAULT_RELAXER, relaxer_spec
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import DEFAULT_STAGES, FMAX, MAX_STEPS, check_stages
from chggen_plugins.evaluation.stability import DEFAULT_THRESHOLD
from chggen_plugins.evaluation.symmetry import ANGLE_TOLERANCE, LIBRARIES, SYMPREC
from chggen_plugins.runs.methods import CAMPAIGN
from chggen_plugins.sampling import SOLVERS
from chggen_plugins.structures.cells import AXIS_RATIOS, DEFAULT_V0, LATTICE_SYSTEMS
from chggen_plugins.structures.systems import formula as reduced_formula
from chggen_plugins.structures.wyckoff import ORBIT_CHOICES

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

_REQUIRED = object()
DEFAULT_OUTPUT = "chggen_campaign"


def _key(meaning: str, unit: str | None = None, default: Any = MISSING, shown: str | None = None,
         section: str | None = None, name: str | None = None) -> Any:
    """A config key: a dataclass field whose default the loader takes and whose metadata the
    reference page (`markdown`) prints, so the two cannot drift.

    Args:
        meaning: what the key does, for the reference page.
        unit: its unit (None: a count, a name or a flag).
        default: the value a config without the key gets (MISSING: required, or `shown`).
        shown: the default as the page says it, where the loader derives it (a path beside the output).
        section: the TOML table the key sits in, where it differs from its class's ([shortlist] max).
        name: the key's TOML name, where it differs from the field's.

    Returns:
        A dataclass field.
    """
    metadata = {"meaning": meaning, "unit": unit, "shown": shown, "section": section, "name": name}
    return field(metadata=metadata) if default is MISSING else field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The score model that generates every structure."""

    name: str = _key("a score model's name from `chggen models`")
    source: str | None = _key("checkpoint, file or published name the model loads from (relative to the "
                              "config file when such a file exists)", default=None, shown="the model's default")
    device: str = _key("torch device the model runs on", default="cpu")
    own_samples: int = _key("per composition and cell size, also this many crystals from the backend's own "
                            "sampler (e.g. MatterGen's), relaxed and counted beside CHGGen's methods "
                            "(method `own`); 0 = none", default=0)


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    """The RePaint walk; the noise levels come from the model."""

    jump_length: int = _key("RePaint jump length j (inpainting)", "levels", default=10)
    resamples: int | None = _key("RePaint resamples r (inpainting; 1 = off)", default=None,
                                 shown="the model's: 3, or 1 for a host-conditioned model")
    unconditional_resamples: int = _key("RePaint resamples r for unconditional generation", default=1)
    solver: str = _key("the sampler's move down the ladder: pc (predictor + Langevin correctors at every level), "
                       "heun (EDM: churn, then a Heun step of the probability-flow ODE) or ode (Heun steps, no "
                       "churn)", default="pc")
    steps: int | None = _key("heun/ode: ladder levels visited, evenly spaced from the top to 0", "levels",
                             default=None, shown="every level")
    churn: float = _key("heun: EDM's gamma; before each move re-noise up to sigma * (1 + churn)", default=0.0)
    batch_size: int = _key("crystals per sampler run", "crystals", default=64)


@dataclass(frozen=True, kw_only=True)
class CellsConfig:
    """The random starting cells of unconditional generation."""

    v0: float = _key("volume per atom of the first round's cells", "A^3/atom", default=DEFAULT_V0)
    systems: tuple[str, ...] = _key("lattice systems of the random cells", default=LATTICE_SYSTEMS)
    ratios: tuple[float, ...] = _key("axis ratios of the random cells", default=AXIS_RATIOS)
    samples_per_cell: int = _key("structures per random cell (excludes `count`)", default=1)
    rounds: int = _key("rounds of cells; each later round takes V0 from the lowest-energy relaxed "
                       "structure of the rounds before it", default=1)
    count: int | None = _key("instead of samples_per_cell: exactly this many structures per composition "
                             "and cell size, dealt over the cells in turn (every system at ratio 1 "
                             "first, then 1.25, 0.75, ...)", "structures", default=None, shown="not set")

    def per_cell(self, turn: int, grid_size: int) -> int:
        """How many structures the cell dealt `turn`-th of a grid of `grid_size` cells starts."""
        if self.count is None:
            return self.samples_per_cell
        return self.count // grid_size + (turn < self.count % grid_size)


@dataclass(frozen=True, kw_only=True)
class RelaxConfig:
    """The relaxation (FIRE, cell relaxed) of every generated structure, by default with CHGNet."""

    relaxer: str = _key("a relaxer plugin's name: `chgnet` (the core's), or one an adapter registers "
                        "(`sevennet`; docs: relaxers)", default=DEFAULT_RELAXER)
    fmax: float = _key("force convergence threshold", "eV/A", default=FMAX)
    max_steps: int = _key("FIRE step budget of the whole relaxation, shared by its stages; a structure "
                          "still above fmax is `unconverged`", "steps", default=MAX_STEPS)
    keep_symmetry: bool = _key("relax under ASE's FixSymmetry, keeping the space group spglib finds at "
                               "0.01 A when the relaxation starts (the same for every method)", default=False)
    stages: tuple[str, ...] = _key("in order: \"guests\" (guest positions only, host held by FixAtoms, cell "
                                   "fixed; skipped for structures without a host) and \"all\" (positions and "
                                   "cell)", default=DEFAULT_STAGES)


@dataclass(frozen=True, kw_only=True)
class HostsConfig:
    """The hosts guests are inpainted into, and how."""

    per_composition: int = _key("lowest-energy distinct relaxed unconditional structures used as hosts",
                                "hosts", default=3)
    samples: int = _key("inpainting samples per host and method", "structures", default=8)
    cell: str = _key("host cell: \"conventional\" or \"primitive\"", default="conventional")
    methods: tuple[str, ...] = _key("any of \"inpainting\" (guests placed freely), \"inpainting-sym\" "
                                    "(guests on Wyckoff orbits of the host's group or a subgroup), "
                                    "\"inpainting-snap\" (free, then snapped to the symmetric structure "
                                    "spglib finds at snap_symprec before relaxing); may grow on resume",
                                    default=CAMPAIGN[:1])
    snap_symprec: float = _key("spglib tolerance of \"inpainting-snap\"", "A", default=0.5)
    orbits: str = _key("how \"inpainting-sym\" picks each sample's Wyckoff orbits: \"uniform\" (drawn from the "
                       "combinations that fit the host's group or its largest fitting subgroup) or \"model\" (the "
                       "combination, over the host's group and its subgroups, nearest to where a free inpainting "
                       "pass put the guests; one extra sampler pass); docs: symmetric", default=ORBIT_CHOICES[0])


@dataclass(frozen=True)
class SymmetryConfig:
    """Space-group detection of relaxed structures (success: above P1 and P-1)."""

    symprec: float = _key("spglib / moyopy distance tolerance", "A", default=SYMPREC)
    angle_tolerance: float = _key("spglib angle tolerance", "degrees", default=ANGLE_TOLERANCE)
    libraries: tuple[str, ...] = _key("symmetry libraries; the first one decides the shortlist's space group",
                                      default=LIBRARIES)


DEFAULT_SYMMETRY = SymmetryConfig()  # the commands without a config file


@dataclass(frozen=True, kw_only=True)
class StabilityConfig:
    """Ed, the energy above the convex hull: against Materials Project entries (MP_API_KEY set), else
    an entries file, else a hull built here with CHGNet from prototypes (marked APPROXIMATE)."""

    entries: Path | None = _key("JSON list of pymatgen ComputedEntry (monty's dumpfn) to build hulls from",
                                default=None, shown="not set")
    cache: Path = _key("cache of MP entries and reference hulls", shown="`OUTPUT/hull`")
    reference_max_atoms: int = _key("largest prototype cell relaxed for a CHGNet reference hull", "atoms",
                                    default=8)
    reference_per_formula: int = _key("prototypes relaxed per formula for a CHGNet reference hull", default=2)
    threshold: float = _key("Ed screen of the shortlist (0.03 before DFT)", "eV/atom", default=DEFAULT_THRESHOLD)


@dataclass(frozen=True, kw_only=True)
class CoordinationConfig:
    """Optional: coordination numbers of generated against training crystals."""

    training: Path | None = _key("training structures: anything `read_dataset` reads", default=None,
                                 shown="not set (no coordination report)")
    max_structures: int = _key("training structures read at most", "structures", default=300)


@dataclass(frozen=True, kw_only=True)
class CompositionConfig:
    """One `[[compositions]]` table per composition (at least one)."""

    formula: str = _key("the composition, e.g. \"Li2Si\"")
    formula_units: tuple[int, ...] = _key("cell sizes in formula units (Li2Si: [2, 4] gives cells of 6 and "
                                          "12 atoms)", default=(1,))
    guests: tuple[str, ...] = _key("species generated into the host, e.g. [\"Li\"]")
    host_files: tuple[Path, ...] = _key("extra hosts (CIF, POSCAR, ...), guests stripped if present",
                                        default=())

    @property
    def composition(self) -> Composition:
        return Composition(self.formula)

    @property
    def name(self) -> str:
        """Reduced formula without brackets (ZnP2S6, not Zn(PS3)2): uids, tables, file names."""
        return reduced_formula(self.composition)

    def counts(self, units: int) -> dict[str, int]:
        """Atoms of each element in a cell of `units` formula units."""
        return {el.symbol: int(round(amount)) * units for el, amount in self.composition.items()}


@dataclass(frozen=True, kw_only=True)
class CampaignConfig:
    """A whole campaign: the top-level keys, then one table per section."""

    path: Path
    output: Path = _key("output folder (results.db, summary.csv, plots/, shortlist/, r2scan/), relative "
                        "to the config file", shown=f'`"{DEFAULT_OUTPUT}"`')
    seed: int = _key("seed of the whole campaign; each shard's seed is derived from it and its key",
                     default=0)
    model: ModelConfig
    sampler: SamplerConfig
    cells: CellsConfig
    relax: RelaxConfig
    hosts: HostsConfig
    symmetry: SymmetryConfig
    stability: StabilityConfig
    shortlist_max: int = _key("structures in the shortlist at most", "structures", default=20,
                              section="shortlist", name="max")
    coordination: CoordinationConfig
    compositions: tuple[CompositionConfig, ...]

    def fingerprint(self) -> dict[str, str]:
        """Per section, a hash of the settings that decide which structures a campaign makes.

        Thresholds, shortlist size and the coordination report only shape the report, so they may
        change between a run and its resume; anything else may not. Files count by their contents,
        never their paths (a campaign folder moved or copied elsewhere resumes); the hull cache is
        where results are kept, not a setting. "relaxer" is the relaxer's name and version; "relax"
        hashes the same dict as before relaxers were plugins while relaxer and stages are the
        defaults, so the stores made then still resume (store.ADDED_KEYS); "hosts" likewise while
        `orbits` is "uniform" (campaigns from before the key resume).
        """
        stability = self.stability
        defaults = {"relaxer": DEFAULT_RELAXER, "stages": DEFAULT_STAGES}
        relax = {k: v for k, v in asdict(self.relax).items() if defaults.get(k, MISSING) != v}
        hosts = {k: v for k, v in asdict(self.hosts).items()
                 if k != "methods" and not (k == "orbits" and v == ORBIT_CHOICES[0])}
        # solver keys at their defaults leave the hash as it was before they existed (stores resume)
        solver_defaults = {"solver": "pc", "steps": None, "churn": 0.0}
        sampler = {k: v for k, v in asdict(self.sampler).items() if solver_defaults.get(k, MISSING) != v}
        generation = {
            "seed": self.seed, "model": {**asdict(self.model), "source": _source_digest(self.model.source)},
            "sampler": sampler, "cells": asdict(self.cells), "relax": relax,
            "relaxer": f"{self.relax.relaxer} {relaxer_spec(self.relax.relaxer).version()}",
            "hosts": hosts, "symmetry": asdict(self.symmetry),
            "stability": {"entries": None if stability.entries is None else _digest(stability.entries),
                          "reference_max_atoms": stability.reference_max_atoms,
                          "reference_per_formula": stability.reference_per_formula},
            "compositions": [{**asdict(c), "host_files": [(p.name, _digest(p)) for p in c.host_files]}
                             for c in self.compositions],
        }
        return {key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
                for key, value in generation.items()}


def _default(config: type, name: str) -> Any:
    """The declared default of key `name` of a config class: the loader's default, from one place."""
    return next(f.default for f in fields(config) if f.name == name)


# TOML value types of the annotations the config classes use (the reference page names them)
_TOML_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "Path": "path",
               "tuple[str, ...]": "list of strings", "tuple[int, ...]": "list of integers",
               "tuple[float, ...]": "list of numbers", "tuple[Path, ...]": "list of paths"}


def _section(kind: Any) -> type | None:
    """The config class a CampaignConfig field holds (one, or a tuple of them), else None."""
    inner = get_args(kind)[0] if get_origin(kind) is tuple else kind
    return inner if is_dataclass(inner) else None


def _rows(config: type, section: str, rows: dict[str, list[str]]) -> None:
    """Add a table row per key of `config` to `rows[section]`; nested config classes get their own."""
    hints = get_type_hints(config)
    for item in fields(config):
        inner = _section(hints[item.name])
        if inner is not None:
            _rows(inner, f"[{item.name}]" if inner is hints[item.name] else f"[[{item.name}]]", rows)
            continue
        if not item.metadata:  # not a key (the config file's own path)
            continue
        meta = item.metadata
        if meta["shown"] is not None:
            default = meta["shown"]
        elif item.default is MISSING:
            default = "required"
        else:
            default = f"`{json.dumps(item.default)}`"
        written = item.type.removesuffix(" | None")
        if written not in _TOML_TYPES:
            raise TypeError(f"{config.__name__}.{item.name}: no TOML type for {item.type!r}")
        table = f"[{meta['section']}]" if meta["section"] else section
        rows.setdefault(table, []).append(f"| `{meta['name'] or item.name}` | {_TOML_TYPES[written]} | "
                                          f"{default} | {meta['unit'] or ''} | {meta['meaning']} |")


def markdown() -> str:
    """The docs' config reference, printed from the config classes: every key with type, default,
    unit and meaning (`python -m chggen_plugins.runs.config > docs/reference/config.md`).

    Returns:
        The page as Markdown text; a test keeps docs/reference/config.md equal to it.

    Example:
        ```python
        markdown().splitlines()[0]  # -> '# Campaign config reference'
        ```
    """
    rows: dict[str, list[str]] = {}
    _rows(CampaignConfig, "Top level", rows)
    hints = get_type_hints(CampaignConfig)
    lines = ["# Campaign config reference", "",
             "Generated by `python -m chggen_plugins.runs.config` from the config classes in",
             "`chggen_plugins/runs/config.py`, whose defaults the loader uses. A campaign config is one",
             "TOML file (`chggen campaign CONFIG`); only `[model] name` and one `[[compositions]]` table",
             "with `formula` and `guests` are required. Relative paths are relative to the config file;",
             "an unknown or misspelt key is refused in one line naming it.", ""]
    for section, table in rows.items():
        config = _section(hints.get(section.strip("[]"), None))
        about = " ".join(config.__doc__.split()) if config is not None else ""
        lines += [f"## {section}", "", *([about, ""] if about else []),
                  "| key | type | default | unit | meaning |", "|---|---|---|---|---|", *table, ""]
    return "\n".join(lines)


def _digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's relative file names and their digests."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        text = "\n".join(f"{p.relative_to(path)} {_digest(p)}" for p in files)
        return hashlib.sha256(text.encode()).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_digest(source: str | None) -> str | None:
    """A model source as what it holds: a file's or folder's contents, else the name itself (a
    published checkpoint name the adapter resolves)."""
    return _digest(Path(source)) if source is not None and Path(source).exists() else source


class _Table:
    """One TOML table being read: every key taken is checked, and leftovers are unknown keys."""

    def __init__(self, data: Any, where: str, file: Path) -> None:
        self.file, self.where = file, where
        if not isinstance(data, dict):
            raise ChggenError(f"{file}: '{where}' must be a table, got {_kind(data)}")
        self.data = data
        self.taken: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, message: str) -> ChggenError:
        return ChggenError(f"{self.file}: key '{self.key(name)}' {message}")

    def get(self, name: str, kind: str, default: Any = _REQUIRED, hint: str = "",
            allow_empty: bool = False) -> Any:
        self.taken.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise ChggenError(f"{self.file}: missing key '{self.key(name)}'{' (' + hint + ')' if hint else ''}")
            return default
        value = self.data[name]
        checks = {
            "str": lambda v: isinstance(v, str) and v.strip() != "",
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
        }
        item = kind.removeprefix("list:")
        if kind.startswith("list:"):
            if not isinstance(value, list) or not (value or allow_empty) or not all(checks[item](v) for v in value):
                size = "a list" if allow_empty else "a non-empty list"
                raise self.error(name, f"must be {size} of {_PLURALS[item]}, got {value!r}")
            return [float(v) if item == "float" else v for v in value]
        if not checks[kind](value):
            raise self.error(name, f"must be {_NAMES[kind]}, got {value!r}")
        return float(value) if kind == "float" else value

    def positive(self, name: str, kind: str, default: Any, minimum: float = 1) -> Any:
        value = self.get(name, kind, default)
        if value is not None and value < minimum:
            raise self.error(name, f"must be >= {minimum:g}, got {value!r}")
        return value

    def path(self, name: str, base: Path, must_exist: bool = True) -> Path | None:
        text = self.get(name, "str", None)
        if text is None:
            return None
        path = (base / Path(text).expanduser()).resolve()
        if must_exist and not path.exists():
            raise self.error(name, f"names {path}, which does not exist")
        return path

    def table(self, name: str) -> "_Table":
        self.taken.add(name)
        return _Table(self.data.get(name, {}), self.key(name), self.file)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.taken)
        if unknown:
            raise ChggenError(f"{self.file}: unknown key '{self.key(unknown[0])}' (misspelt? see the "
                              "config example in `chggen campaign --help`)")


_NAMES = {"str": "a non-empty string", "int": "an integer", "float": "a number", "bool": "true or false"}
_PLURALS = {"str": "non-empty strings", "int": "integers", "float": "numbers", "bool": "booleans"}


def _kind(value: Any) -> str:
    return type(value).__name__


def _composition(table: _Table, base: Path) -> CompositionConfig:
    formula = table.get("formula", "str", hint="e.g. formula = \"Li2Si\"")
    try:
        composition = Composition(formula)
    except Exception:  # pymatgen raises ValueError or KeyError for text that is not a formula
        raise table.error("formula", f"{formula!r} is not a chemical formula") from None
    unknown = [str(el) for el in composition.elements if not Element.is_valid_symbol(str(el))]
    if unknown or not composition:
        raise table.error("formula", f"{formula!r} is not a formula of known elements")
    if any(abs(amount - round(amount)) > 1e-8 for amount in composition.values()):
        raise table.error("formula", f"{formula!r} has non-integer amounts")
    units = table.get("formula_units", "list:int", list(_default(CompositionConfig, "formula_units")))
    if any(u < 1 for u in units):
        raise table.error("formula_units", f"must be positive integers, got {units}")
    guests = table.get("guests", "list:str", hint="the species generated into the host, e.g. [\"Li\"]")
    symbols = {el.symbol for el in composition.elements}
    for guest in guests:
        if not Element.is_valid_symbol(guest) or guest not in symbols:
            raise table.error("guests", f"{guest!r} is not an element of {formula}")
    if symbols <= set(guests):
        raise table.error("guests", f"must leave host atoms: {formula} without {', '.join(guests)} is empty")
    files = []
    for index, text in enumerate(table.get("host_files", "list:str", [], allow_empty=True)):
        path = (base / Path(text).expanduser()).resolve()
        if not path.is_file():
            raise table.error(f"host_files[{index}]", f"names {path}, which does not exist")
        files.append(path)
    table.done()
    return CompositionConfig(formula=formula, formula_units=tuple(units), guests=tuple(guests), host_files=tuple(files))


def load_config(path: str | Path) -> CampaignConfig:
    """Read and check a campaign config (TOML); any problem is one ChggenError naming the key."""
    path = Path(path)
    if not path.is_file():
        raise ChggenError(f"{path}: no such config file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ChggenError(f"{path}: not valid TOML: {error}") from None
    if not data:
        raise ChggenError(f"{path}: the config is empty (it needs at least [model] name and one "
                          "[[compositions]] table)")
    base = path.resolve().parent
    top = _Table(data, "", path)
    output = (base / Path(top.get("output", "str", DEFAULT_OUTPUT)).expanduser()).resolve()
    existing = next(p for p in (output, *output.parents) if p.exists())
    if not existing.is_dir():
        raise top.error("output", f"names {output}, but {existing} is a file, not a folder; "
                                  "choose another output folder")
    seed = top.get("seed", "int", _default(CampaignConfig, "seed"))

    model = top.table("model")
    source = model.get("source", "str", None)
    if source is not None and (base / Path(source).expanduser()).exists():  # a file next to the config
        source = str((base / Path(source).expanduser()).resolve())  # (else a name the adapter resolves)
    model_config = ModelConfig(
        name=model.get("name", "str", hint="a score model, see `chggen models`"), source=source,
        device=check_device(model.get("device", "str", _default(ModelConfig, "device")),
                            f"{path}: key '{model.key('device')}'"),
        own_samples=model.positive("own_samples", "int", _default(ModelConfig, "own_samples"), minimum=0))
    model.done()

    sampler = top.table("sampler")
    sampler_config = SamplerConfig(**{name: sampler.positive(name, "int", _default(SamplerConfig, name))
                                      for name in ("jump_length", "resamples", "unconditional_resamples",
                                                   "batch_size")},
                                   solver=sampler.get("solver", "str", _default(SamplerConfig, "solver")),
                                   steps=sampler.positive("steps", "int", None, minimum=2),
                                   churn=sampler.positive("churn", "float", 0.0, minimum=0))
    if sampler_config.solver not in SOLVERS:
        raise sampler.error("solver", f"is {sampler_config.solver!r}, not one of {', '.join(SOLVERS)}")
    for name, needs in (("steps", ("heun", "ode")), ("churn", ("heun",))):
        if getattr(sampler_config, name) and sampler_config.solver not in needs:
            raise sampler.error(name, f"is for solver {' or '.join(needs)}, not {sampler_config.solver}")
    sampler.done()

    cells = top.table("cells")
    v0 = cells.get("v0", "float", _default(CellsConfig, "v0"))
    if not v0 > 0:
        raise cells.error("v0", f"must be > 0 A^3/atom, got {v0}")
    systems = cells.get("systems", "list:str", list(_default(CellsConfig, "systems")))
    unknown = [s for s in systems if s not in LATTICE_SYSTEMS]
    if unknown:
        raise cells.error("systems", f"has {unknown[0]!r}, not one of {', '.join(LATTICE_SYSTEMS)}")
    ratios = cells.get("ratios", "list:float", list(_default(CellsConfig, "ratios")))
    if any(r <= 0 for r in ratios):
        raise cells.error("ratios", f"must all be > 0, got {ratios}")
    count = cells.get("count", "int", None)
    if count is not None and "samples_per_cell" in cells.data:
        raise cells.error("count", "and samples_per_cell exclude each other: give one")
    if count is not None and count < 1:
        raise cells.error("count", f"must be >= 1, got {count}")
    cells_config = CellsConfig(v0=v0, systems=tuple(systems), ratios=tuple(ratios), count=count,
                               samples_per_cell=cells.positive("samples_per_cell", "int",
                                                               _default(CellsConfig, "samples_per_cell")),
                               rounds=cells.positive("rounds", "int", _default(CellsConfig, "rounds")))
    cells.done()

    relax = top.table("relax")
    fmax = relax.get("fmax", "float", _default(RelaxConfig, "fmax"))
    if not fmax > 0:
        raise relax.error("fmax", f"must be > 0 eV/A, got {fmax}")
    relaxer = relax.get("relaxer", "str", _default(RelaxConfig, "relaxer"))
    try:
        relaxer_spec(relaxer)  # a typo is refused now, not after the first hour of sampling
    except ChggenError as error:
        raise relax.error("relaxer", str(error)) from None
    stages = relax.get("stages", "list:str", list(_default(RelaxConfig, "stages")))
    relax_config = RelaxConfig(relaxer=relaxer, fmax=fmax,
                               max_steps=relax.positive("max_steps", "int", _default(RelaxConfig, "max_steps"), minimum=0),
                               keep_symmetry=relax.get("keep_symmetry", "bool", _default(RelaxConfig, "keep_symmetry")),
                               stages=check_stages(stages, f"{path}: key '{relax.key('stages')}'"))
    relax.done()

    hosts = top.table("hosts")
    cell = hosts.get("cell", "str", _default(HostsConfig, "cell"))
    if cell not in ("conventional", "primitive"):
        raise hosts.error("cell", f"must be \"conventional\" or \"primitive\", got {cell!r}")
    methods = hosts.get("methods", "list:str", list(_default(HostsConfig, "methods")))
    if any(m not in CAMPAIGN for m in methods) or len(set(methods)) != len(methods):
        raise hosts.error("methods", f"must be distinct names from {', '.join(CAMPAIGN)}, got {methods}")
    snap = hosts.get("snap_symprec", "float", _default(HostsConfig, "snap_symprec"))
    if not snap > 0:
        raise hosts.error("snap_symprec", f"must be > 0 A, got {snap}")
    orbits = hosts.get("orbits", "str", _default(HostsConfig, "orbits"))
    if orbits not in ORBIT_CHOICES:
        raise hosts.error("orbits", f"must be one of {', '.join(map(json.dumps, ORBIT_CHOICES))}, got {orbits!r}")
    hosts_config = HostsConfig(per_composition=hosts.positive("per_composition", "int",
                                                              _default(HostsConfig, "per_composition"), minimum=0),
                               samples=hosts.positive("samples", "int", _default(HostsConfig, "samples")),
                               cell=cell, methods=tuple(methods), snap_symprec=snap, orbits=orbits)
    hosts.done()

    symmetry = top.table("symmetry")
    symprec = symmetry.get("symprec", "float", _default(SymmetryConfig, "symprec"))
    if not symprec > 0:
        raise symmetry.error("symprec", f"must be > 0 A, got {symprec}")
    angle = symmetry.get("angle_tolerance", "float", _default(SymmetryConfig, "angle_tolerance"))
    if not angle > 0:
        raise symmetry.error("angle_tolerance", f"must be > 0 degrees, got {angle}")
    libraries = symmetry.get("libraries", "list:str", list(_default(SymmetryConfig, "libraries")))
    if any(lib not in LIBRARIES for lib in libraries) or len(set(libraries)) != len(libraries):
        raise symmetry.error("libraries", f"must be distinct names from {', '.join(LIBRARIES)}, got {libraries}")
    symmetry_config = SymmetryConfig(symprec, angle, tuple(libraries))
    symmetry.done()

    stability = top.table("stability")
    cache = stability.path("cache", base, must_exist=False) or output / "hull"
    stability_config = StabilityConfig(
        entries=stability.path("entries", base), cache=cache,
        reference_max_atoms=stability.positive("reference_max_atoms", "int",
                                               _default(StabilityConfig, "reference_max_atoms")),
        reference_per_formula=stability.positive("reference_per_formula", "int",
                                                 _default(StabilityConfig, "reference_per_formula")),
        threshold=stability.get("threshold", "float", _default(StabilityConfig, "threshold")))
    stability.done()

    shortlist = top.table("shortlist")
    shortlist_max = shortlist.positive("max", "int", _default(CampaignConfig, "shortlist_max"))
    shortlist.done()

    coordination = top.table("coordination")
    coordination_config = CoordinationConfig(
        training=coordination.path("training", base),
        max_structures=coordination.positive("max_structures", "int", _default(CoordinationConfig, "max_structures")))
    coordination.done()

    top.taken.add("compositions")
    tables = data.get("compositions")
    if tables is None:
        raise ChggenError(f"{path}: missing key 'compositions' (add a [[compositions]] table with "
                          "formula and guests)")
    if not isinstance(tables, list) or not tables:
        raise ChggenError(f"{path}: key 'compositions' must be one or more [[compositions]] tables")
    compositions = tuple(_composition(_Table(t, f"compositions[{i}]", path), base) for i, t in enumerate(tables))
    formulas = [c.name for c in compositions]
    repeated = next((f for f in formulas if formulas.count(f) > 1), None)
    if repeated:
        raise ChggenError(f"{path}: key 'compositions' lists {repeated} twice; merge its formula_units")
    top.done()
    return CampaignConfig(path=path.resolve(), output=output, seed=seed, model=model_config,
                          sampler=sampler_config, cells=cells_config, relax=relax_config, hosts=hosts_config,
                          symmetry=symmetry_config, stability=stability_config, shortlist_max=shortlist_max,
                          coordination=coordination_config, compositions=compositions)


if __name__ == "__main__":
    sys.stdout.write(markdown())
