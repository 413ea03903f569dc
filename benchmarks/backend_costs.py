"""Cost of one inpainted structure per backend, measured side by side in one run.

Three backends are called through the same protocol (`model.score(batch, level)`), on one CPU thread:

* native     `load_model("native")`: the shipped weights (PaiNN-style, 64 features, 3 layers).
* mattergen  MatterGen at the full `mattergen_base` architecture (GemNet-T, hidden 512, 4 blocks,
             cutoff 7 A, 50 neighbours) with random weights, written by
             `chggen_mattergen.checkpoint.write_untrained_checkpoint` into a temporary folder and
             loaded with `load_model("mattergen", folder)`: the cost of a call is that of trained
             weights.
* diffcsp    DiffCSP's CSP network at full size (CSPNet hidden 512, 6 layers, 128 frequencies) with
             random weights (`DiffCSPScoreModel.untrained`).

What is measured:

1. Time per score call for an 8-atom crystal (the diamond-Si host examples/si_host.cif, Si8) and a
   20-atom one (its 2x1x1 supercell, Si16, + 4 Li on tetrahedral sites), one crystal per batch, at
   noisy positions drawn from the model's own process at levels spread over its ladder: the median
   over several rounds after warm-up rounds, and the same per atom. Rounds interleave the backends,
   so a change in background load hits all of them alike; in each round an untimed call re-warms the
   caches (as back-to-back calls in a sampling run do), then the model is timed for at least one
   call and 50 ms.
2. Score calls per inpainted structure for 100 and 1000 levels, RePaint off (resamples=1) and on
   (jump 10, r=3), each backend with its own process's corrector steps (native 5, MatterGen 1,
   DiffCSP 1). Counted exactly by running the real sampler (`chggen_plugins.sample_tasks`) with the
   backend's noise process and a zero-score stub in place of the network, and checked against the
   closed form calls = R (1 + c) - c, where R = L + (r - 1) j K reverse steps, K = len(range(0, L - j,
   j)) jump points and c corrector steps (no corrector after the last step to clean). DiffCSP's grid
   is its checkpoint's 1000 steps (no `with_levels`), so only 1000 levels are given for it.
3. Estimated seconds per inpainted 20-atom structure = calls x median time per call; then one real
   inpainting (Si16 host + 4 Li, 100 levels, resamples=1) for native and MatterGen, timed end to
   end, next to the estimate, the time spent inside score during the run, and the section-1 probe
   repeated right after the run (whether a gap is load drift or the sampler).

Load average and thread settings are printed: on a shared machine the figures move with the load.

Run: python benchmarks/backend_costs.py [--quick] [--calls 9] [--full-levels 100] [--threads 1]
(about 5 minutes on 2 busy cores; --quick: 3 timed rounds and full runs at 30 levels, about 2.)
Writes benchmarks/results/backend_costs.json and .csv (one row per measured figure, by `table`).
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from chggen_diffcsp import CSPNetConfig, DiffCSPScoreModel  # noqa: E402
from chggen_mattergen.checkpoint import write_untrained_checkpoint  # noqa: E402
from chggen_plugins import CrystalBatch, InpaintTask, load_model, sample_tasks  # noqa: E402
from chggen_plugins.sampling.inpaint import SamplerSettings  # noqa: E402
from timed_model import TimedModel  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
JUMP, RESAMPLES = 10, 3  # the sampler's RePaint defaults
LADDERS = (100, 1000)
ROUND_SECONDS = 0.05  # timed calls per backend, size and round: at least one, more while under this


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


class ZeroScore:
    """A backend's noise process with a free score of zero: the sampler's own walk, no network."""

    def __init__(self, noise_process, elements):
        self.noise_process, self.elements = noise_process, elements
        self.calls = 0

    def score(self, batch, level):
        self.calls += 1
        return torch.zeros_like(batch.frac_coords)

    def to(self, device):
        return self


def closed_form_calls(levels: int, corrector_steps: int, jump: int, resamples: int) -> int:
    """Score calls of one walk: every reverse step calls once, plus the corrector steps at the level
    it lands on unless that is clean (-1), which only the last step reaches."""
    jump_points = len(range(0, levels - jump, jump))
    reverse = levels + (resamples - 1) * jump * jump_points
    return reverse * (1 + corrector_steps) - corrector_steps


# -- structures ------------------------------------------------------------------------------------

def si8() -> Structure:
    return Structure.from_file(EXAMPLES / "si_host.cif")


def li4_si16() -> tuple[Structure, int]:
    """Si16 (2x1x1 of the Si8 host) then 4 Li on empty tetrahedral sites of its first half."""
    crystal = si8()
    crystal.make_supercell([2, 1, 1])
    for frac in ([0.25, 0.5, 0.5], [0.25, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]):
        crystal.append("Li", frac)
    return crystal, 16


def as_batch(structure: Structure, n_fixed: int) -> CrystalBatch:
    count = len(structure)
    return CrystalBatch(frac_coords=torch.tensor(structure.frac_coords, dtype=torch.float64),
                        lattice=torch.tensor(structure.lattice.matrix, dtype=torch.float64)[None],
                        atomic_numbers=torch.tensor(structure.atomic_numbers, dtype=torch.long),
                        batch=torch.zeros(count, dtype=torch.long),
                        fixed=torch.arange(count) < n_fixed)


# -- measurements ----------------------------------------------------------------------------------

def time_calls(models: dict, probes: dict, calls: int, warmup: int) -> dict:
    """{(backend, probe): [seconds per call]}; rounds interleave backends and probes."""
    generator = torch.Generator().manual_seed(0)
    times = {(name, probe): [] for name in models for probe in probes}
    for round_ in range(warmup + calls):
        for name, model in models.items():
            process = model.noise_process
            # levels spread over the ladder, the same fractions for every backend
            fraction = (round_ % calls + 0.5) / calls
            level = min(process.num_levels - 1, int(fraction * process.num_levels))
            for probe, batch in probes.items():
                noisy = batch.with_frac_coords(process.marginal(batch.frac_coords, level, batch, generator))
                # one untimed call first: after another backend's call (MatterGen's 180 MB of weights)
                # the caches are cold, which a sampler calling the same model back to back never sees
                model.score(noisy, level)
                # cheap models: several timed calls per round (until ROUND_SECONDS), so their median
                # rests on many samples spread over the whole section
                spent = 0.0
                while spent < ROUND_SECONDS:
                    start = time.perf_counter()
                    model.score(noisy, level)
                    elapsed = time.perf_counter() - start
                    spent += elapsed
                    if round_ >= warmup:
                        times[(name, probe)].append(elapsed)
    return times


def count_calls(process_for, elements, task, settings) -> tuple[int, float]:
    """(score calls, seconds) of the real sampler with a zero score on this process."""
    stub = ZeroScore(process_for, elements)
    start = time.perf_counter()
    sample_tasks([task], stub, seed=0, settings=settings)
    return stub.calls, time.perf_counter() - start


def main() -> None:
    parser = common.argument_parser(__doc__, "backend_costs")
    parser.add_argument("--calls", type=int, default=None, help="timed rounds per backend and size (9)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--full-levels", type=int, default=None,
                        help="levels of the end-to-end inpainting check (100)")
    parser.add_argument("--quick", action="store_true", help="3 timed rounds, full runs at 30 levels")
    args = parser.parse_args()
    calls = args.calls or (3 if args.quick else 9)
    full_levels = args.full_levels or (30 if args.quick else 100)
    run_settings = {**common.start(args), "calls": calls, "full_levels": full_levels}
    wall_start = time.perf_counter()
    rows: list[dict] = []
    print(f"start: {load()}")

    # -- backends ------------------------------------------------------------------------------
    with tempfile.TemporaryDirectory(prefix="mattergen_base_untrained_") as folder:
        start = time.perf_counter()
        write_untrained_checkpoint(Path(folder))  # defaults: mattergen_base sizes
        mattergen = load_model("mattergen", folder)
        mattergen_setup = time.perf_counter() - start
    native = load_model("native")
    diffcsp = DiffCSPScoreModel.untrained(CSPNetConfig(hidden_dim=512, num_layers=6))
    base = {"native": native, "mattergen": mattergen, "diffcsp": diffcsp}
    parameters = {"native": native.network, "mattergen": mattergen.module, "diffcsp": diffcsp.network}
    print(f"MatterGen base checkpoint written and loaded in {mattergen_setup:.1f} s")
    for name, model in base.items():
        count = sum(p.numel() for p in parameters[name].parameters())
        print(f"  {name:<9} {count / 1e6:6.2f} M parameters; {model.noise_process.describe()}")

    # -- 1. time per call ----------------------------------------------------------------------
    host8 = si8()
    crystal20, host20 = li4_si16()
    probes = {8: as_batch(host8, len(host8)), 20: as_batch(crystal20, host20)}
    # native and MatterGen on the 100-level ladder used below (the cost of a call does not depend on
    # the ladder); DiffCSP on its own 1000 steps
    timed_models = {"native": native.with_levels(100), "mattergen": mattergen.with_levels(100),
                    "diffcsp": diffcsp}
    print(f"\n1. time per score call: {args.warmup} warm-up + {calls} timed rounds per backend and size "
          f"(each an untimed call, then timed calls for >= {1e3 * ROUND_SECONDS:.0f} ms, at least one), "
          f"rounds interleaved; 8 atoms = Si8 ({host8.composition.reduced_formula} host cell), "
          f"20 atoms = Si16 + Li4")
    start = time.perf_counter()
    times = time_calls(timed_models, probes, calls, args.warmup)
    per_call = {key: statistics.median(values) for key, values in times.items()}
    print(f"   {'backend':<9} {'atoms':>5} {'calls':>5} {'median ms':>10} {'min ms':>8} {'max ms':>8} "
          f"{'ms/atom':>8}")
    for (name, atoms), values in times.items():
        median = per_call[(name, atoms)]
        rows.append({"table": "ms_per_call", "backend": name, "atoms": atoms, "calls": len(values),
                     "median_ms": round(1e3 * median, 2), "min_ms": round(1e3 * min(values), 2),
                     "max_ms": round(1e3 * max(values), 2), "ms_per_atom": round(1e3 * median / atoms, 3)})
        print(f"   {name:<9} {atoms:>5} {len(values):>5} {1e3 * median:>10.1f} {1e3 * min(values):>8.1f} "
              f"{1e3 * max(values):>8.1f} {1e3 * median / atoms:>8.2f}")
    print(f"   ({time.perf_counter() - start:.0f} s; {load()})")

    # -- 2. score calls per inpainted structure --------------------------------------------------
    print("\n2. score calls per inpainted structure (real sampler, zero-score stub on each backend's "
          "process, Si16 + Li4) vs the closed form")
    task = InpaintTask(Structure.from_sites(crystal20[:host20]), {"Li": 4})
    settings = {1: SamplerSettings(jump_length=JUMP, resamples=1),
                RESAMPLES: SamplerSettings(jump_length=JUMP, resamples=RESAMPLES)}
    counts: dict = {}
    loop_seconds: dict = {}
    print(f"   {'backend':<9} {'levels':>6} {'c':>2} {'r':>2} {'counted':>8} {'formula':>8} {'loop s':>7}")
    for name, model in base.items():
        for levels in LADDERS:
            if hasattr(model, "with_levels"):
                process = model.with_levels(levels).noise_process
            elif model.noise_process.num_levels == levels:
                process = model.noise_process
            else:
                continue
            for resamples, setting in settings.items():
                counted, seconds = count_calls(process, model.elements, task, setting)
                formula = closed_form_calls(levels, process.corrector_steps, JUMP, resamples)
                assert counted == formula, (name, levels, resamples, counted, formula)
                counts[(name, levels, resamples)] = counted
                loop_seconds[(name, levels, resamples)] = seconds
                rows.append({"table": "calls_per_structure", "backend": name, "levels": levels,
                             "correctors": process.corrector_steps, "resamples": resamples, "calls": counted,
                             "loop_s": round(seconds, 3)})
                print(f"   {name:<9} {levels:>6} {process.corrector_steps:>2} {resamples:>2} {counted:>8} "
                      f"{formula:>8} {seconds:>7.2f}")
    print(f"   DiffCSP has no with_levels: its grid is the checkpoint's {diffcsp.noise_process.num_levels} "
          f"steps, so no 100-level figures. 'loop s' = the sampler's own time without the network.")

    # -- 3. estimate vs a real inpainting --------------------------------------------------------
    print(f"\n3. one real inpainting, Si16 host + 4 Li, {full_levels} levels, resamples=1, seed 0 "
          f"(estimate = counted calls x median time per call at 20 atoms)")
    print(f"   {'backend':<9} {'calls':>6} {'estimate s':>10} {'measured s':>10} {'diff':>7} "
          f"{'in score s':>10} {'ms/call in run':>14} {'re-timed ms/call':>16}")
    for name in ("native", "mattergen"):
        model = TimedModel(base[name].with_levels(full_levels))
        expected_calls = closed_form_calls(full_levels, model.noise_process.corrector_steps, JUMP, 1)
        estimate = expected_calls * per_call[(name, 20)]
        start = time.perf_counter()
        sample_tasks([task], model, seed=0, settings=settings[1])
        measured = time.perf_counter() - start
        assert model.calls == expected_calls, (name, model.calls, expected_calls)
        # section 1's probe again, right after the run: tells load drift from a sampler effect
        again = time_calls({name: timed_models[name]}, {20: probes[20]}, 3, 1)[(name, 20)]
        rows.append({"table": "real_inpainting", "backend": name, "atoms": 20, "levels": full_levels, "calls": model.calls,
                     "estimate_s": round(estimate, 2), "measured_s": round(measured, 2),
                     "in_score_s": round(model.seconds, 2), "retimed_ms_per_call": round(1e3 * statistics.median(again), 2)})
        print(f"   {name:<9} {model.calls:>6} {estimate:>10.1f} {measured:>10.1f} "
              f"{100 * (estimate - measured) / measured:>+6.1f}% {model.seconds:>10.1f} "
              f"{1e3 * model.seconds / model.calls:>14.1f} {1e3 * statistics.median(again):>16.1f}")
    print("   measured = time inside score + the loop's own time (section 2): the estimate is off as much as "
          "ms/call in the run differs from section 1's median; 're-timed' is section 1's probe repeated "
          f"right after the run ({load()})")

    # -- summary ---------------------------------------------------------------------------------
    names = list(base)

    def row(label, values, digits):
        reference = values.get("native")
        cells = []
        for name in names:
            value = values.get(name)
            if value is None:
                cells.append("n/a")
            elif name == "native" or not reference:
                cells.append(f"{value:.{digits}f}")
            else:
                ratio = value / reference
                cells.append(f"{value:.{digits}f} ({ratio:.0f}x)" if ratio >= 100
                             else f"{value:.{digits}f} ({ratio:.3g}x)")
        print(f"{label:<34}" + "".join(f"{cell:>22}" for cell in cells))

    print(f"\nsummary (ratio vs native in brackets; one thread; {load()})")
    print(f"{'':<34}" + "".join(f"{name:>22}" for name in names))
    ladders = {n: "any (with_levels)" if hasattr(base[n], "with_levels")
               else f"{base[n].noise_process.num_levels} fixed" for n in names}
    print(f"{'ladder':<34}" + "".join(f"{ladders[n]:>22}" for n in names))
    for atoms in (8, 20):
        row(f"ms per call, {atoms} atoms", {n: 1e3 * per_call[(n, atoms)] for n in names}, 1)
    for atoms in (8, 20):
        row(f"ms per atom per call, {atoms} atoms", {n: 1e3 * per_call[(n, atoms)] / atoms for n in names}, 2)
    row("corrector steps per level", {n: base[n].noise_process.corrector_steps for n in names}, 0)
    for levels in LADDERS:
        for resamples in (1, RESAMPLES):
            row(f"score calls, {levels} lv, r={resamples}",
                {n: counts.get((n, levels, resamples)) for n in names}, 0)
    for levels in LADDERS:
        for resamples in (1, RESAMPLES):
            row(f"s/structure (20 at), {levels} lv, r={resamples}",
                {n: counts[(n, levels, resamples)] * per_call[(n, 20)]
                 for n in names if (n, levels, resamples) in counts}, 1)
    print(f"\nwall time {time.perf_counter() - wall_start:.0f} s; end: {load()}")
    common.write_results(args.name, run_settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
