"""Sampler cost, measured side by side in one run (issue: core sampler).

1. Time inside ScoreModel.score vs total sampler time for one batch of 64 crystals: what the loop
   itself adds (noise draws, wrapping, host re-noising) on top of the model.
2. 64 crystals in one batch vs 64 sequential runs with the same model and schedule.

Both are measured for two models: the bundled analytic score (an exact wrapped-Gaussian image or
Fourier sum per atom: cheap, so its overhead share is an upper bound) and the native equivariant
network at its default size (random weights: the cost is the same as trained ones).
3. One native network call per crystal at 12, 36 and 72 atoms (Li4Si8 and its 3x1x1 and 3x2x1
   supercells), one crystal alone and 16 batched, for the network as it is (vesin cell lists on
   CPU, messages once per atom pair in blocks of PAIR_BLOCK pairs) against its first form (all
   pairs times images, a message per edge, every edge's messages at once: `first_form_gather`,
   the network's first message code), side by side.
4. Seconds per inpainted 20-atom structure (Si16 host + 4 Li guests), one sample and k samples in
   one batch as `chggen inpaint --samples k` runs them: the first generation's defaults (200 levels,
   5 corrector steps, r = 3) on the first-form network against the shipped weights' defaults on the
   network as it is (issue 16's target: at most a quarter of the cost).
Run: python benchmarks/sampler_overhead.py [--levels 50] [--crystals 64] [--threads 1]
Writes benchmarks/results/sampler_overhead.json and .csv: one row per figure, `table` = overhead (1, 2),
per_call (3) or per_structure (4).
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import time  # noqa: E402

import torch  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402
from timed_model import TimedModel  # noqa: E402

import chggen_native.network as native_network  # noqa: E402
from chggen_native import NativeScoreModel  # noqa: E402
from chggen_native.graph import all_pairs_graph  # noqa: E402
from chggen_native.plugin import DEFAULT_WEIGHTS  # noqa: E402
from chggen_plugins import InpaintTask, sample_tasks  # noqa: E402
from chggen_plugins.models.analytic import AnalyticSiteModel  # noqa: E402
from chggen_plugins.sampling.inpaint import SamplerSettings  # noqa: E402
from chggen_plugins.sampling.noise import CartesianVE  # noqa: E402
from chggen_plugins.structures.batch import structures_to_batch  # noqa: E402

RADIUS_GRAPH, PAIR_GEOMETRY = native_network.radius_graph, native_network.PairGeometry.__dict__["of"]
GATHER = native_network.Interaction.gather   # the network's own, restored after each first-form run


def li_si_reference() -> Structure:
    """Diamond Si (8 atoms) with Li on the 4 empty tetrahedral sites: 12 atoms, 4 guests."""
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    for frac in ([0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]):
        si.append("Li", frac)
    return si


def run(model, tasks, settings, seed=0):
    start = time.perf_counter()
    sample_tasks(tasks, model, seed=seed, settings=settings)
    return time.perf_counter() - start


def measure(name, make_model, host, crystals, settings) -> dict:
    batched = TimedModel(make_model())
    total = run(batched, [InpaintTask(host, {"Li": 4}, n_samples=crystals)], settings)
    inside = batched.seconds
    sequential = TimedModel(make_model())
    one_by_one = sum(run(sequential, [InpaintTask(host, {"Li": 4})], settings, seed)
                     for seed in range(crystals))
    print(f"{name:<9} {total:>9.2f} {inside:>9.2f} {100 * (total - inside) / inside:>11.1f}% "
          f"{one_by_one:>11.2f} {one_by_one / total:>11.1f}x")
    return {"table": "overhead", "model": name, "crystals": crystals, "batch_s": round(total, 3),
            "score_s": round(inside, 3), "overhead_percent": round(100 * (total - inside) / inside, 2),
            "sequential_s": round(one_by_one, 3), "speed_up": round(one_by_one / total, 3)}


def first_form_graph(frac, lattice, crystal, cutoff):
    """The graph search the network started with: every pair times every image, as tensors."""
    return all_pairs_graph(torch.remainder(frac, 1.0), lattice, crystal, cutoff)


def per_edge(cls, edges, basis, num_atoms):
    """Every edge its own 'pair' (radial = b(r), direction = the unit vector), for the first form."""
    distance = edges.vectors.norm(dim=1)
    return cls(source=edges.source, target=edges.target, radial=basis(distance),
               directional=torch.empty(0),  # not read by first_form_gather
               direction=edges.vectors / distance.unsqueeze(1), images=torch.empty(0))


def first_form_gather(self, s, v, edges):
    """The network's first message code: every edge's filter and messages at once, no blocks."""
    f = self.features
    messages = self.message(self.norm_message(s))
    neighbour_v = native_network._vector_norm(v).reshape(len(v), 3 * f)
    gates = messages.index_select(0, edges.source) * self.filter(edges.radial)
    gate_s, gate_vv, gate_vr = gates.split(f, dim=1)
    edge_v = (neighbour_v.index_select(0, edges.source).view(-1, 3, f) * gate_vv.unsqueeze(1)
              + edges.direction.unsqueeze(2) * gate_vr.unsqueeze(1))
    return (torch.zeros_like(s).index_add_(0, edges.target, gate_s),
            torch.zeros_like(v).index_add_(0, edges.target, edge_v))


class FirstForm:
    """Within this block the network runs as it first did (all-pairs graph, unblocked per-edge messages)."""

    def __enter__(self):
        native_network.radius_graph = first_form_graph
        native_network.PairGeometry.of = classmethod(per_edge)
        native_network.Interaction.gather = first_form_gather

    def __exit__(self, *exc):
        native_network.radius_graph = RADIUS_GRAPH
        native_network.PairGeometry.of = PAIR_GEOMETRY
        native_network.Interaction.gather = GATHER


def per_call_ms(model, batch, repeats: int = 5) -> float:
    model.score(batch, 100)
    start = time.perf_counter()
    for _ in range(repeats):
        model.score(batch, 100)
    return 1000 * (time.perf_counter() - start) / repeats / batch.num_crystals


def per_call_table(reference: Structure) -> list[dict]:
    """ms per crystal for one native call: as it is against its first form, alone and batched."""
    model = NativeScoreModel.untrained(frozenset({3, 14}))
    rows = []
    print(f"\n{'atoms':>5} {'batch':>5} {'ms/crystal now':>15} {'first form':>11} {'ratio':>6}")
    for supercell in ((1, 1, 1), (3, 1, 1), (3, 2, 1)):
        crystal = reference * supercell
        for size in (1, 16):
            batch = structures_to_batch([crystal] * size)
            batch = batch.with_frac_coords(batch.frac_coords + 0.02 * torch.randn(batch.frac_coords.shape,
                                                                                   dtype=batch.frac_coords.dtype))
            now = per_call_ms(model, batch)
            with FirstForm():
                before = per_call_ms(model, batch)
            print(f"{len(crystal):>5} {size:>5} {now:>15.2f} {before:>11.2f} {before / now:>5.1f}x")
            rows.append({"table": "per_call", "atoms": len(crystal), "batch": size, "ms_per_crystal_now": round(now, 3),
                         "ms_per_crystal_first_form": round(before, 3), "ratio": round(before / now, 3)})
    return rows


def cost_per_structure(reference: Structure, samples: int) -> list[dict]:
    """Seconds (and counted calls) per inpainted 20-atom structure: first generation against now."""
    host = reference * (2, 1, 1)
    host.remove_species(["Li"])                      # Si16: 4 Li guests make 20 atoms
    shipped = NativeScoreModel.load(DEFAULT_WEIGHTS)
    first = shipped.with_levels(200, 5)
    settings = SamplerSettings(jump_length=10, resamples=3)
    print(f"\nper inpainted 20-atom structure (Si16 + 4 Li), j = 10, r = 3; first generation: 200 levels, 5 "
          f"correctors, first-form network; now: {shipped.noise_process.num_levels} levels, "
          f"{shipped.noise_process.corrector_steps} correctors at snr {shipped.noise_process.snr}, the network "
          "as it is")
    print(f"{'samples':>7} {'first calls':>11} {'first s/structure':>17} {'now calls':>9} {'now s/structure':>15} "
          f"{'cost now/first':>14}")
    rows = []
    for k in (1, samples):
        task = [InpaintTask(host, {"Li": 4}, n_samples=k)]
        before, now = TimedModel(first), TimedModel(shipped)
        with FirstForm():
            old_seconds = run(before, task, settings) / k
        new_seconds = run(now, task, settings) / k
        print(f"{k:>7} {before.calls:>11} {old_seconds:>17.2f} {now.calls:>9} {new_seconds:>15.2f} "
              f"{new_seconds / old_seconds:>14.2f}")
        rows.append({"table": "per_structure", "samples": k, "first_calls": before.calls,
                     "first_s_per_structure": round(old_seconds, 3), "now_calls": now.calls,
                     "now_s_per_structure": round(new_seconds, 3), "cost_now_over_first": round(new_seconds / old_seconds, 4)})
    return rows


def main() -> None:
    parser = common.argument_parser(__doc__, "sampler_overhead")
    parser.add_argument("--levels", type=int, default=50)
    parser.add_argument("--crystals", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4, help="k for the per-structure cost, in one batch")
    args = parser.parse_args()
    run_settings = common.start(args)

    reference = li_si_reference()
    host = reference.copy()
    host.remove_species(["Li"])
    process = CartesianVE(num_levels=args.levels)
    settings = SamplerSettings(jump_length=10, resamples=3)
    print(f"{args.levels} levels, j=10, r=3, {process.corrector_steps} corrector steps; host Si8 + 4 Li "
          f"guests; {args.crystals} crystals batched vs one at a time")
    print(f"{'model':<9} {'batch s':>9} {'score s':>9} {'overhead':>12} {'sequential s':>11} {'speed-up':>12}")
    rows = [measure("analytic", lambda: AnalyticSiteModel(reference, 0.1, CartesianVE(num_levels=args.levels)),
                    host, args.crystals, settings),
            measure("native", lambda: NativeScoreModel.untrained(frozenset({3, 14})).with_levels(args.levels),
                    host, args.crystals, settings)]
    print("targets: overhead < 10%, batched speed-up >= 5x (analytic), >= 2x (native)")
    rows += per_call_table(reference)
    rows += cost_per_structure(reference, args.samples)
    common.write_results(args.name, run_settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
